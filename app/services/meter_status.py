"""Online/offline state and last-seen times of meters, written once and pushed live."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import bindparam, select, update

from app.extensions import db
from app.models import Meter
from app.models.types import UTC


def set_online(meter_id: int, online: bool, node_id: str | None = None) -> bool:
    """Record a status change (and who owns the socket); emit it when it changed. Returns changed."""
    from app.realtime.emit import emit_event

    now = dt.datetime.now(UTC)
    meter = db.session.get(Meter, meter_id)
    if meter is None:
        return False
    changed = meter.online != online
    meter.online = online
    if online:
        meter.last_seen = now
        meter.first_seen = meter.first_seen or now
        meter.node_id = node_id
    elif node_id is None:
        meter.node_id = None
    db.session.commit()
    if changed:
        emit_event("meter_status_changed", {
            "meter_id": meter.id, "number": meter.number, "online": online,
            "last_seen": meter.last_seen.isoformat() if meter.last_seen else None, "node_id": meter.node_id,
        }, customer_id=meter.customer_id)
        from app.services import status_hooks

        status_hooks.notify(meter, online, now)
    return changed


LAST_SEEN_RESOLUTION = dt.timedelta(seconds=30)


def mark_reached(meter: Meter) -> None:
    """A dial-out meter answered: online now; only a change of state costs a full status write, and a meter
    seen less than ``LAST_SEEN_RESOLUTION`` ago is not written again (a commit per read session was a fifth of
    the HES's own time on the read path)."""
    now = dt.datetime.now(UTC)
    if not meter.online:
        set_online(meter.id, True)
    elif meter.last_seen is None or now - meter.last_seen >= LAST_SEEN_RESOLUTION:
        touch_last_seen({meter.id: now})


def touch_last_seen(seen: dict[int, dt.datetime]) -> None:
    """Batch-update last-seen times (heartbeats); never moves a time backwards."""
    if not seen:
        return
    stmt = (update(Meter.__table__).where(Meter.__table__.c.id == bindparam("mid"))
            .where((Meter.__table__.c.last_seen.is_(None)) | (Meter.__table__.c.last_seen < bindparam("seen")))
            .values(last_seen=bindparam("seen")))
    db.session.execute(stmt, [{"mid": mid, "seen": ts} for mid, ts in seen.items()])
    db.session.commit()


def online_ids() -> set[int]:
    """Ids of meters currently marked online."""
    return set(db.session.execute(select(Meter.id).where(Meter.online.is_(True))).scalars())
