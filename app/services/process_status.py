"""Every HES process reports itself: its roles (web, comms, tasks), its event-loop lag over the last minute
(``app.comms.looplag``), RSS, open files and the sizes of its in-process caches (so a leak can be told from
a cache that fills up to its fleet size), written every HES_PROCESS_HEARTBEAT_SECONDS (default 15) to
``hes_process`` and shown on System › Comms Nodes and ``GET /api/v1/comms_node/processes``."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from collections.abc import Callable

import gevent
from flask import Flask
from sqlalchemy import delete

from app.comms.looplag import gc_pauses, process_monitor
from app.extensions import db
from app.models import HesProcess
from app.models.types import UTC

log = logging.getLogger(__name__)
FORGET_AFTER = dt.timedelta(minutes=10)  # a process silent this long has stopped: its row goes


def process_key() -> str:
    """host:pid of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def resources() -> dict[str, float]:
    """This process's resident memory (MiB) and open file descriptors (Linux /proc; empty elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            rss_pages = int(statm.read().split()[1])
        return {"rss_mib": round(rss_pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1),
                "fds": len(os.listdir("/proc/self/fd"))}
    except OSError:
        return {}


# In-process caches and tables that grow with the fleet: (label, module, attribute, how to count).
TRACKED = (("channel ids", "app.services.ingest", "_channel_ids", len),
           ("meter object caches", "app.services.meter_access", "_object_caches", len),
           ("push specs", "app.services.push_ingest", "_specs", len),
           ("profile stamps", "app.comms.session", "_STAMPS", len),
           ("profile stamp texts", "app.services.meter_ops", "_ISO", len),
           ("partition months", "app.services.partitions", "_known", lambda known: sum(map(len, known.values()))))


def cache_sizes() -> dict[str, int]:
    """Entries in each tracked cache of this process, and the comms node's connection tables."""
    import importlib

    from app.comms.node import get_node

    sizes = {}
    for label, module, attribute, count in TRACKED:
        found = getattr(importlib.import_module(module), attribute, None)
        if found is not None:
            sizes[label] = count(found)
    node = get_node()
    if node is not None:
        sizes.update({"node connections": len(node.connections), "node unregistered": len(node.unregistered),
                      "node last-seen batch": len(node._seen)})
    return sizes


def report(roles: str, node_id: str | None, started: dt.datetime) -> None:
    """Write this process's row now (and drop rows of processes silent for FORGET_AFTER)."""
    now = dt.datetime.now(UTC)
    key = process_key()
    row = db.session.get(HesProcess, key) or HesProcess(key=key, pid=os.getpid(), started_at=started)
    row.roles, row.node_id, row.heartbeat_at = roles, node_id, now
    row.stats = {**process_monitor().snapshot(), **gc_pauses().snapshot(), **resources(), "caches": cache_sizes()}
    db.session.add(row)
    db.session.execute(delete(HesProcess).where(HesProcess.heartbeat_at < now - FORGET_AFTER))
    db.session.commit()


def roles_of(app: Flask, web: bool | None = None) -> str:
    """The parts this process runs, from its configuration."""
    cfg = app.config

    def on(key: str) -> bool:
        return str(cfg.get(key, "on")).lower() != "off"

    parts = [("web", on("HES_WEB") if web is None else web), ("comms", on("HES_COMMS")), ("tasks", on("HES_TASKS"))]
    return ", ".join(name for name, running in parts if running) or "none"


def start_process_status(app: Flask, roles: str | None = None) -> Callable[[], None]:
    """Start the loop-lag monitor and the heartbeat greenlet; return a function that stops the heartbeat."""
    roles = roles or roles_of(app)
    every = float(app.config.get("HES_PROCESS_HEARTBEAT_SECONDS", 15))
    started = dt.datetime.now(UTC)
    process_monitor()
    gc_pauses()

    def loop() -> None:
        while True:
            try:
                with app.app_context():
                    report(roles, app.config.get("HES_NODE_ID") if "comms" in roles else None, started)
            except Exception:  # a database hiccup must not end the reporting
                log.exception("could not record this process's status")
                with app.app_context():
                    db.session.rollback()
            gevent.sleep(every)

    greenlet = gevent.spawn(loop)
    return lambda: greenlet.kill(block=False)
