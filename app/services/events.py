"""Meter events: brand codes mapped to standard HES event types, stored once, alerts raised."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select

from app.extensions import db
from app.models import Event, Meter, MeterBrand, Severity
from app.models.types import UTC

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventType:
    """A standard HES event type: its severity and whether it opens an alert."""

    title: str
    severity: Severity
    alert: bool


EVENT_TYPES: dict[str, EventType] = {
    "power_fail": EventType("Power failure", Severity.warning, False),
    "power_restore": EventType("Power restored", Severity.info, False),
    "cover_open": EventType("Meter cover opened", Severity.critical, True),
    "magnetic_tamper": EventType("Magnetic tamper", Severity.critical, True),
    "reverse_flow": EventType("Reverse energy flow", Severity.critical, True),
    "neutral_missing": EventType("Neutral missing", Severity.critical, True),
    "bypass": EventType("Current bypass suspected", Severity.critical, True),
    "overload": EventType("Overload / load violation", Severity.warning, True),
    "relay_disconnected": EventType("Relay disconnected", Severity.info, False),
    "relay_connected": EventType("Relay connected", Severity.info, False),
    "low_credit": EventType("Low credit", Severity.warning, True),
    "firmware_activated": EventType("Firmware activated", Severity.info, False),
    "clock_set": EventType("Clock set", Severity.info, False),
    "clock_fault": EventType("Meter clock fault (timestamps out of range)", Severity.warning, True),
    "comm_lost": EventType("Communication lost", Severity.warning, True),
    "comm_restored": EventType("Communication restored", Severity.info, False),
}
TAMPER_TYPES = {"cover_open", "magnetic_tamper", "reverse_flow", "neutral_missing", "bypass"}


def event_type(name: str) -> EventType:
    """The catalogue entry of a type (unknown vendor codes are informational)."""
    return EVENT_TYPES.get(name) or EventType(name.replace("_", " ").capitalize(), Severity.info, False)


def map_event(brand: MeterBrand, log_name: str, code: int) -> str:
    """A brand's event code as a standard type: the brand plugin first, then the brand's code table."""
    from app.plugins.manager import hook

    mapped = hook().hes_map_event(brand=brand.name, log=log_name, code=int(code))
    if mapped:
        return mapped
    by_log = ((brand.objects or {}).get("event_codes_by_log") or {}).get(log_name) or {}
    return by_log.get(str(int(code))) or (brand.event_codes or {}).get(str(int(code))) or f"code_{int(code)}"


@dataclass(frozen=True)
class RawEvent:
    """An event as read from a meter log or push, before mapping."""

    ts: dt.datetime
    code: int
    log: str
    source: str = "log"
    details: dict | None = None


def _sources(source: str) -> set[str]:
    return set(source.split("+")) if source else set()


def _match_window() -> dt.timedelta:
    from flask import current_app

    return dt.timedelta(seconds=float(current_app.config.get("HES_EVENT_MATCH_SECONDS", 120)))


def store_events(meter: Meter, raw: list[RawEvent], *, mapped_types: list[str] | None = None,
                 raised: list | None = None) -> list[Event]:
    """Store events not seen before (re-reading a log adds nothing) and raise alerts for new ones,
    in one transaction; live pushes go out after it commits.

    The same event from two sources (a push and the event log: same meter, type and code, meter
    times within HES_EVENT_MATCH_SECONDS) is one event whose ``source`` names both ("log+push");
    the log's time, the meter's own record, wins. Meter events whose timestamps fail the checks are
    quarantined with a clock fault instead.

    Given a ``raised`` list, nothing is committed or pushed: the alerts are appended to it, and the
    caller commits (one transaction for a batch of pushes) and then emits them."""
    from app.services.alerts import emit_raised, raise_alert
    from app.services.ingest import first_reading, quarantine, raise_clock_fault, timestamp_problem, timestamp_window
    from app.services.outbox import enqueue_events

    if not raw:
        return []
    types = mapped_types or [map_event(meter.brand, r.log, r.code) for r in raw]
    window, faults = timestamp_window(), {}
    first = first_reading([meter.id]).get(meter.id)
    checked = []
    for r, name in zip(raw, types, strict=True):
        ts = r.ts.astimezone(UTC)
        problem = None if r.source == "hes" else timestamp_problem(ts, window, first)
        if problem:
            if quarantine(meter.id, "event", r.source, ts, problem, code=int(r.code)):
                faults.setdefault(meter.id, problem)
        else:
            checked.append((r, name, ts))
    alerts: list = []
    if faults:
        raise_clock_fault(faults, faults, alerts)
    new = []
    if checked:
        tolerance = _match_window()
        lo, hi = min(c[2] for c in checked) - tolerance, max(c[2] for c in checked) + tolerance
        known = list(db.session.execute(select(Event).where(Event.meter_id == meter.id, Event.ts >= lo,
                                                            Event.ts <= hi)).scalars())
        exact = {(e.ts, e.event_type, e.code): e for e in known}
        for r, name, ts in checked:
            key = (ts, name, int(r.code))
            twin = exact.get(key)
            if twin is None and r.source != "hes":
                twin = next((e for e in known if e.event_type == name and e.code == int(r.code)
                             and r.source not in _sources(e.source) and abs(e.ts - ts) <= tolerance), None)
            if twin is not None:
                if r.source not in _sources(twin.source):
                    twin.source = "+".join(sorted(_sources(twin.source) | {r.source}))
                    if r.source == "log":
                        twin.ts = ts  # the meter's own record of when it happened
                exact[key] = twin
                continue
            kind = event_type(name)
            event = Event(meter_id=meter.id, ts=ts, event_type=name, code=int(r.code), severity=kind.severity,
                          source=r.source, log=r.log, details=r.details)
            db.session.add(event)
            exact[key] = event
            known.append(event)
            new.append(event)
    if new:
        db.session.flush()
    for event in new:
        kind = event_type(event.event_type)
        if kind.alert:
            alerts.append(raise_alert(meter.id, event.event_type, f"{kind.title} on meter {meter.number}",
                                      severity=kind.severity, at=event.ts, commit=False, emit=False,
                                      details={"event_id": event.id, "code": event.code}))
    if new:
        enqueue_events(meter, new, commit=False)
    if raised is not None:
        raised.extend(alerts)
        return new
    db.session.commit()
    emit_raised(alerts)
    return new


def record_hes_event(meter: Meter, name: str, at: dt.datetime | None = None, details: dict | None = None) -> None:
    """An event the HES itself observed about a meter (communication lost/restored)."""
    store_events(meter, [RawEvent(at or dt.datetime.now(UTC), 0, "hes", "hes", details)], mapped_types=[name])


def on_status_change(meter: Meter, online: bool, at: dt.datetime) -> None:
    """Status listener: record comm lost/restored; restoring closes the comm-lost alert."""
    from app.services.alerts import resolve_automatically

    if online:
        if meter.first_seen is not None and meter.first_seen < at:
            record_hes_event(meter, "comm_restored", at)
        resolve_automatically(meter.id, "comm_lost", "communication restored")
    else:
        record_hes_event(meter, "comm_lost", at)
