"""DLMS pushes (Data-Notification) from meters: decoded with the brand's push object list and
stored as events (event-code objects) and readings (registers)."""

from __future__ import annotations

import datetime as dt
import logging

from app.comms.cosem import normalise_obis, to_python
from app.comms.push import decode_push
from app.extensions import db
from app.models import Meter, Source
from app.models.types import UTC
from app.services.events import RawEvent, store_events
from app.services.ingest import Value, store_readings

log = logging.getLogger(__name__)
# Objects that carry "the last event code" of a log: 0.0.96.11.E.255, E = log number.
EVENT_CODE_GROUP = (0, 0, 96, 11)


def _log_name(meter: Meter, obis: str) -> str:
    """The brand's name of the event log matching an event-code object (by E group)."""
    e_group = obis.split(".")[4]
    logs = list(((meter.brand.objects or {}).get("event_logs") or {}).keys())
    index = int(e_group)
    return logs[index] if index < len(logs) else f"log{index}"


def handle_push(meter_id: int, frame: bytes) -> dict:
    """Decode one push frame from a meter and store what it carries."""
    meter = db.session.get(Meter, meter_id)
    objects = [tuple(o) for o in (meter.brand.objects or {}).get("push_objects") or []]
    push = decode_push(frame, [(int(c), str(o), int(a)) for c, o, a in objects] or None)
    when = push.timestamp
    for obj in push.objects:
        if obj["class_id"] == 8 and isinstance(obj["value"], dt.datetime):
            when = obj["value"]
    when = (when or dt.datetime.now(UTC)).astimezone(UTC)
    points = {p.obis: p for p in meter.brand.points}
    events, values = [], []
    for obj in push.objects:
        obis, value = normalise_obis(obj["obis"]), to_python(obj["value"])
        parts = tuple(int(x) for x in obis.split("."))
        if parts[:4] == EVENT_CODE_GROUP and isinstance(value, int):
            if value:
                events.append(RawEvent(when, value, _log_name(meter, obis), source="push"))
        elif obj["class_id"] in (3, 4) and isinstance(value, int | float) and not isinstance(value, bool):
            point = points.get(obis)
            scaler = point.scaler if point is not None and point.scaler is not None else 0
            values.append(Value(meter.id, obis, when, float(value) * 10 ** scaler, source=Source.PUSH))
    new_events = store_events(meter, events) if events else []
    if values:
        store_readings(values)
    if not push.objects:
        log.info("push from %s without an object list: %r", meter.number, push.values)
    return {"events": len(new_events), "values": len(values)}
