"""Meter health: dial-in meters that went silent or whose node died go offline; dial-out meters are really
connected to (a probe association every health check for those not reached since the last one), and every
failed session counts. After ``HES_DIAL_OUT_FAILURES`` failures in a row a dial-out meter is offline (the
"communication lost" event and alert); the first successful session restores it."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from app.comms.session import DlmsSession
from app.extensions import db
from app.models import CommMode, CommsNode, Meter, MeterStatus
from app.models.types import UTC

log = logging.getLogger(__name__)
HEALTH_INTERVAL_MINUTES = 5


def _cfg(name: str, default: float) -> float:
    return float(current_app.config.get(name, default))


def probe(session: DlmsSession, meter: Meter) -> dict[str, Any]:
    """The health probe: the association itself is the proof; the clock read proves the meter answers."""
    return {"ok": True, "meter_time": session.read_clock().isoformat()}


def session_failed(meter_id: int, reason: str) -> bool:
    """A session to a dial-out meter failed: count it; the Nth failure in a row takes the meter offline.
    Returns True when this failure took it offline."""
    from app.services.meter_status import set_online

    db.session.rollback()
    db.session.execute(update(Meter).where(Meter.id == meter_id)
                       .values(comm_failures=Meter.comm_failures + 1))
    db.session.commit()
    failures, online = db.session.execute(select(Meter.comm_failures, Meter.online)
                                          .where(Meter.id == meter_id)).one()
    limit = int(_cfg("HES_DIAL_OUT_FAILURES", 3))
    if online and failures >= limit:
        log.info("meter %s offline after %d failed sessions: %s", meter_id, failures, reason)
        set_online(meter_id, False)
        return True
    return False


def session_succeeded(meter: Meter) -> None:
    """A session to a dial-out meter worked: the failure count starts again and the meter is online."""
    from app.services.meter_status import mark_reached

    if meter.comm_failures:
        db.session.execute(update(Meter).where(Meter.id == meter.id).values(comm_failures=0))
        db.session.commit()
    mark_reached(meter)


# A node whose heartbeat (every 5 s) is this old has stopped: its meters are offline. Routing gives up on a node
# sooner (NODE_STALE_SECONDS); taking a busy node's whole fleet offline after three late heartbeats made thousands of
# connected meters show offline in the 5,000-meter soak.
NODE_DEAD_SECONDS = 60


def _dial_in_checks(now: dt.datetime) -> tuple[int, int]:
    """Dial-in meters marked online: offline when silent past the missed heartbeats or their node died."""
    from app.services.meter_status import set_online

    heartbeat = _cfg("HES_HEARTBEAT_SECONDS", 60)
    silent_after = now - dt.timedelta(seconds=heartbeat * _cfg("HES_MISSED_HEARTBEATS", 3) * 2)
    dead_nodes = set(db.session.execute(select(CommsNode.node_id).where(
        CommsNode.heartbeat_at < now - dt.timedelta(seconds=NODE_DEAD_SECONDS))).scalars())
    online = db.session.execute(select(Meter.id, Meter.node_id, Meter.last_seen).where(
        Meter.online.is_(True), Meter.comm_mode == CommMode.dial_in)).all()
    stale = [mid for mid, node, seen in online if node in dead_nodes or seen is None or seen < silent_after]
    for meter_id in stale:
        set_online(meter_id, False)
    return len(online), len(stale)


def dial_out_due(now: dt.datetime) -> list[int]:
    """Dial-out meters in service not reached since the last health check (a recent session is proof enough)."""
    reached_after = now - dt.timedelta(minutes=HEALTH_INTERVAL_MINUTES)
    return list(db.session.execute(select(Meter.id).where(
        Meter.comm_mode == CommMode.dial_out, Meter.status.in_([MeterStatus.active, MeterStatus.installed]),
        (Meter.last_seen.is_(None)) | (Meter.last_seen < reached_after) | (Meter.comm_failures > 0)
    ).order_by(Meter.id)).scalars())


def health_check() -> dict[str, int]:
    """The periodic health check: dial-in supervision here, a probe task per due dial-out meter (spread over
    a minute). Reports how many meters it checked."""
    from app.tasks.jobs import enqueue_probes

    now = dt.datetime.now(UTC)
    dial_in, marked_offline = _dial_in_checks(now)
    probes = dial_out_due(now)
    enqueue_probes(probes, spread_seconds=_cfg("HES_HEALTH_SPREAD_SECONDS", 60))
    return {"checked": dial_in + len(probes), "dial_in": dial_in, "dial_out_probed": len(probes),
            "marked_offline": marked_offline}
