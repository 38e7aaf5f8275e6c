"""Emit helpers: every live event goes to staff, and to the owning customer's room only.

Event names (the browser islands listen for these):
``meter_status_changed`` {meter_id, number, online, last_seen, node_id}
``unregistered_connection`` {identity, remote, seen_at}
``alert_raised`` / ``alert_acknowledged`` / ``alert_resolved``
    {id, meter_id, number, alert_type, severity, title, count}
``reading_stored`` {meters: n, values: n} (batched)
``job_progress`` {job_id, done, failed, total, meter_id, state, result}
``command_updated`` {id, meter_id, kind, state, reason, result}
"""

from __future__ import annotations

import logging

from app.extensions import socketio
from app.realtime.namespaces import STAFF_ROOM, customer_room

log = logging.getLogger(__name__)


def emit_event(name: str, payload: dict, customer_id: int | None = None) -> None:
    """Send to staff and, when the row belongs to a customer, to that customer's room."""
    try:
        socketio.emit(name, payload, to=STAFF_ROOM)
        if customer_id is not None:
            socketio.emit(name, payload, to=customer_room(customer_id))
    except Exception:  # live push is best effort; the database stays the source of truth
        log.exception("Socket.IO emit of %s failed", name)
