"""DLMS pushes (Data-Notification) from meters: decoded with the brand's push object list and
stored as events (event-code objects) and readings (registers), in one transaction."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from app.comms.cosem import normalise_obis, to_python
from app.comms.framing import FrameError
from app.comms.push import PushError, decode_push
from app.extensions import db
from app.models import Meter, MeterBrand, Source
from app.models.types import UTC
from app.services.events import RawEvent, store_events
from app.services.ingest import Value, store_readings

log = logging.getLogger(__name__)
# Objects that carry "the last event code" of a log: 0.0.96.11.E.255, E = log number.
EVENT_CODE_GROUP = (0, 0, 96, 11)


@dataclass(frozen=True)
class PushSpec:
    """What a brand's pushes carry: the object list, register scalers, and event log names."""

    objects: list[tuple[int, str, int]]
    scalers: dict[str, int]
    logs: list[str]


_specs: dict[tuple[int, dt.datetime], PushSpec] = {}


def push_spec(brand: MeterBrand) -> PushSpec:
    """The brand's push description, cached until the brand changes."""
    key = (brand.id, brand.updated_at)
    spec = _specs.get(key)
    if spec is None:
        objects = [(int(c), str(o), int(a)) for c, o, a in (brand.objects or {}).get("push_objects") or []]
        scalers = {p.obis: p.scaler for p in brand.points if p.scaler is not None}
        logs = list(((brand.objects or {}).get("event_logs") or {}).keys())
        spec = _specs[key] = PushSpec(objects, scalers, logs)
    return spec


def _decode(meter: Meter, frame: bytes) -> tuple[list[RawEvent], list[Value], bool]:
    """The events and register values one push frame carries (and whether it had an object list)."""
    spec = push_spec(meter.brand)
    push = decode_push(frame, spec.objects or None)
    when = push.timestamp
    for obj in push.objects:
        if obj["class_id"] == 8 and isinstance(obj["value"], dt.datetime):
            when = obj["value"]
    when = (when or dt.datetime.now(UTC)).astimezone(UTC)
    events, values = [], []
    for obj in push.objects:
        obis, value = normalise_obis(obj["obis"]), to_python(obj["value"])
        parts = tuple(int(x) for x in obis.split("."))
        if parts[:4] == EVENT_CODE_GROUP and isinstance(value, int):
            if value:
                index = parts[4]
                events.append(RawEvent(when, value, spec.logs[index] if index < len(spec.logs) else f"log{index}",
                                       source="push"))
        elif obj["class_id"] in (3, 4) and isinstance(value, int | float) and not isinstance(value, bool):
            values.append(Value(meter.id, obis, when, float(value) * 10 ** spec.scalers.get(obis, 0),
                                source=Source.PUSH))
    if not push.objects:
        log.info("push from %s without an object list: %r", meter.number, push.values)
    return events, values, bool(push.objects)


def handle_pushes(batch: list[tuple[int, bytes]]) -> dict:
    """Store a batch of pushes (from many meters) in one transaction, then emit their alerts.

    A frame that cannot be decoded is counted and skipped; the rest of the batch is stored."""
    from app.services.alerts import emit_raised

    values, raised, stored, bad = [], [], 0, 0
    per_meter: dict[int, list[RawEvent]] = {}
    for meter_id, frame in batch:
        meter = db.session.get(Meter, meter_id)
        try:
            events, meter_values, _ = _decode(meter, frame)
        except (PushError, FrameError) as exc:
            bad += 1
            log.warning("undecodable push from %s: %s", meter.number, exc)
            continue
        values += meter_values
        per_meter.setdefault(meter_id, []).extend(events)
    if values:
        # Register snapshots between profile intervals: no bucket changes (see store_readings).
        store_readings(values, rollups=False, commit=False)
    for meter_id, events in per_meter.items():
        if events:
            stored += len(store_events(db.session.get(Meter, meter_id), events, raised=raised))
    db.session.commit()
    emit_raised(raised)
    return {"pushes": len(batch), "events": stored, "values": len(values), "undecodable": bad}


def handle_push(meter_id: int, frame: bytes) -> dict:
    """Decode one push frame from a meter and store what it carries."""
    return handle_pushes([(meter_id, frame)])
