"""The comms node's side of the database: who a meter is, unknown meters, online state, node heartbeats
and identity conflicts. The node calls these through the ``NodeHandlers`` built by ``node_handlers``."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app
from sqlalchemy import select, update

from app.comms.node import Conflict, MeterLink, NodeHandlers, NodeStatus, Sighting
from app.comms.session import HLS_AUTH
from app.extensions import db
from app.models import CommsNode, Meter, Severity, UnregisteredConnection
from app.models.types import UTC
from app.services import ServiceError

log = logging.getLogger(__name__)


def lookup_meter(identity: str) -> MeterLink | None:
    """The registered meter with this number, with its own session when it can prove itself (HLS)."""
    meter = db.session.execute(select(Meter).where(Meter.number == identity)).scalar()
    if meter is None:
        return None
    if meter.effective["auth"] not in HLS_AUTH:
        return MeterLink(meter.id)
    from app.services.secrets import advance_invocation_counter, session_params

    try:
        params, secret_id = session_params(meter, response_timeout=float(current_app.config.get(
            "HES_IDENTIFY_TIMEOUT", 20)))
    except ServiceError as exc:
        log.warning("meter %s uses HLS but cannot be verified: %s", identity, exc.message)
        return MeterLink(meter.id)
    app = current_app._get_current_object()

    def persist_counter(value: int) -> None:
        if secret_id is not None:
            with app.app_context():
                advance_invocation_counter(secret_id, value)

    return MeterLink(meter.id, params, persist_counter)


def record_sighting(sighting: Sighting) -> None:
    """List (or refresh) a dial-in connection from a meter nobody registered."""
    from app.realtime.emit import emit_event

    now = dt.datetime.now(UTC)
    row = _unregistered_row(sighting.identity, now)
    row.remote_addr, row.node_id, row.connected, row.last_seen = sighting.remote, sighting.node_id, True, now
    row.first_frame_hex, row.how_identified = sighting.first_frame[:128].hex() or None, sighting.how
    row.connections = (row.connections or 0) + 1
    db.session.commit()
    emit_event("unregistered_connection", {"identity": sighting.identity, "remote": sighting.remote,
                                           "seen_at": now.isoformat()})


def _unregistered_row(identity: str, now: dt.datetime) -> UnregisteredConnection:
    row = db.session.execute(
        select(UnregisteredConnection).where(UnregisteredConnection.identity == identity)).scalar()
    if row is None:
        row = UnregisteredConnection(identity=identity, first_seen=now, connections=0, pushes=0)
        db.session.add(row)
    return row


def unregistered_gone(identity: str) -> None:
    """The unregistered meter's connection closed (or it was registered and adopted)."""
    db.session.execute(update(UnregisteredConnection).where(UnregisteredConnection.identity == identity)
                       .values(connected=False))
    db.session.commit()


def set_online(meter_id: int, online: bool, node_id: str | None) -> None:
    """A dial-in meter attached to or left this node."""
    from app.services.meter_status import set_online as record

    record(meter_id, online, node_id=node_id)


def seen(times: dict[int, float]) -> list[int]:
    """Heartbeats of many meters as one batched last-seen update; returns those of them marked offline."""
    from app.services.meter_status import touch_last_seen

    touch_last_seen({mid: dt.datetime.fromtimestamp(ts, UTC) for mid, ts in times.items()})
    return list(db.session.execute(select(Meter.id).where(Meter.id.in_(list(times)), Meter.online.is_(False)))
                .scalars())


def node_status(status: NodeStatus) -> None:
    """Record the node's heartbeat: listeners, sockets held and counters (shown on the nodes page)."""
    now = dt.datetime.now(UTC)
    row = db.session.get(CommsNode, status.node_id)
    if row is None or status.started:
        row = row or CommsNode(node_id=status.node_id)
        row.started_at, row.pid = now, os.getpid()
        db.session.add(row)
    row.listen, row.push_listen = status.listen, status.push_listen
    row.heartbeat_at, row.connections, row.counters = now, status.connections, dict(status.counters)
    db.session.commit()


def record_conflict(conflict: Conflict) -> None:
    """Two connections claimed one meter, or one failed to prove it: an alert with both addresses."""
    from app.services import audit
    from app.services.alerts import raise_alert

    meter = db.session.get(Meter, conflict.meter_id)
    addresses = f"live connection {conflict.live_remote}, new connection {conflict.new_remote}" \
        if conflict.live_remote else f"connection from {conflict.new_remote}"
    title = f"Identity conflict on meter {conflict.identity}: {addresses} ({conflict.outcome})"
    raise_alert(conflict.meter_id, "identity_conflict", title, severity=Severity.critical, kind="security",
                details={"live_remote": conflict.live_remote, "new_remote": conflict.new_remote,
                         "outcome": conflict.outcome}, commit=False)
    audit.record("identity_conflict", "meter", meter.id if meter else None, title)
    db.session.commit()


def _in_context(app: Flask, func: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        with app.app_context():
            try:
                return func(*args, **kwargs)
            except Exception:
                db.session.rollback()
                raise

    return call


def node_handlers(app: Flask) -> NodeHandlers:
    """The services a comms node calls back, each in its own app context."""
    from app.services.push_ingest import handle_pushes

    return NodeHandlers(
        lookup_meter=_in_context(app, lookup_meter),
        unregistered=_in_context(app, record_sighting),
        unregistered_gone=_in_context(app, unregistered_gone),
        set_online=_in_context(app, set_online),
        seen=_in_context(app, seen),
        status=_in_context(app, node_status),
        pushes=_in_context(app, lambda batch: handle_pushes(batch, node_id=app.config["HES_NODE_ID"])),
        conflict=_in_context(app, record_conflict),
    )
