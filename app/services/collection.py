"""Scheduled and on-demand collection: profiles (with automatic gap backfill), event logs, clock
sync. Each operation (see ``app.services.operations``) runs on the node that holds the meter's socket.

Collection state is explicit: each (meter, profile) has a ``CollectionCursor``, the capture time of
the last row read *from that profile*; the next read starts there. Pushes, on-demand reads and the
other profiles never move it (they do not touch cursors at all). Load profile, daily snapshot,
monthly billing and each event log are separate series with separate cursors.

Shared by design: a daily snapshot or billing row of a cumulative register (kWh import/export) is
the same register value at the same instant as the load-profile row of that instant, so it is the
same reading (key meter, channel, time) and is stored once; every row the meter holds is read and
counted (``rows``/``stored``) whatever another profile already stored. Billing max demand is its
own channel (1.0.1.6.0.255). The cursors stay separate."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from app.comms.cosem import normalise_obis
from app.comms.session import DlmsError, DlmsSession, ProfileRead, scale
from app.extensions import db
from app.models import Channel, CollectionCursor, Meter, Reading, Source
from app.models.types import UTC
from app.services.ingest import Value, first_reading, store_readings, timestamp_problem, timestamp_window

log = logging.getLogger(__name__)
CLOCK_OBIS = "0.0.1.0.0.255"
IMPORT_OBIS = "1.0.1.8.0.255"


def _config_number(name: str, default: float) -> float:
    return float(current_app.config.get(name, default))


def last_stored(meter_id: int, obis: str) -> dt.datetime | None:
    """The newest stored timestamp of a meter's channel."""
    return db.session.execute(select(func.max(Reading.ts)).join(Channel, Reading.channel_id == Channel.id).where(
        Reading.meter_id == meter_id, Channel.obis == obis)).scalar()


def profile_values(session: DlmsSession, meter: Meter, columns: list[dict], rows: list[list],
                   source_for: Any) -> list[Value]:
    """Turn profile rows into values: the clock column gives the time, registers are scaled."""
    clock_index = next((i for i, c in enumerate(columns) if c["class_id"] == 8), None)
    if clock_index is None:
        raise DlmsError(250, "profile has no clock column; cannot time-stamp its rows")
    scalers = {}
    for i, column in enumerate(columns):
        if i != clock_index and column["class_id"] in (3, 4) and column["attribute"] == 2:
            scalers[i] = session.scaler_unit(column["obis"], column["class_id"])[0]
    values = []
    for row in rows:
        ts = row[clock_index]
        if not isinstance(ts, dt.datetime):
            continue  # a row without a valid time cannot be placed
        source = source_for(ts)
        for i, column in enumerate(columns):
            if i == clock_index or i >= len(row) or isinstance(row[i], bool) or not isinstance(row[i], int | float):
                continue
            raw = row[i]
            value = scale(raw, scalers[i]) if i in scalers else raw
            values.append(Value(meter.id, normalise_obis(column["obis"]), ts, float(value), source=source))
    return values


def cursor_of(meter_id: int, profile: str) -> CollectionCursor | None:
    """The collection cursor of one profile of one meter."""
    return db.session.get(CollectionCursor, (meter_id, profile))


def advance_cursor(meter_id: int, profile: str, last_ts: dt.datetime | None, rows: int,
                   entry: int | None = None, captures: list[str] | None = None,
                   capture_period: int | None = None) -> None:
    """Move a profile's cursor forward to ``last_ts`` (never back) and its entry to ``entry`` (the newest
    entry read, when read by entry); added to the session, not committed."""
    cursor = cursor_of(meter_id, profile)
    now = dt.datetime.now(UTC)
    if cursor is None:
        if last_ts is None:
            return
        db.session.add(CollectionCursor(meter_id=meter_id, profile=profile, last_ts=last_ts, last_entry=entry,
                                        rows_read=rows, updated_at=now, captures=captures,
                                        capture_period=capture_period))
        return
    cursor.rows_read = (cursor.rows_read or 0) + rows
    cursor.updated_at = now
    if captures is not None and cursor.captures != captures:
        cursor.captures = captures
    if capture_period is not None:
        cursor.capture_period = capture_period
    if last_ts is not None and last_ts > cursor.last_ts:
        cursor.last_ts = last_ts
    if entry is not None:
        cursor.last_entry = entry


def _entry_of(read: ProfileRead) -> int | None:
    """The newest entry a read covered: known when it went by entry (entries in use at the time)."""
    return read.entries_in_use if read.method == "entry" else None


def _capture_period(session: DlmsSession, profile_obis: str, cursor: CollectionCursor | None) -> int | None:
    """The profile's capture period in seconds, read once per cursor (None when the meter will not say)."""
    if cursor is not None and cursor.capture_period is not None:
        return cursor.capture_period
    try:
        value = session.get(profile_obis, 7, 4)
    except DlmsError:
        return None
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def read_new_rows(session: DlmsSession, meter: Meter, obis: str, cursor: CollectionCursor | None,
                  start: dt.datetime, end: dt.datetime) -> ProfileRead:
    """The rows of a profile not read yet. A brand whose meters keep entry numbers (``profile_read:
    entry``) is read by entry from the cursor's entry on, so rows whatever their timestamps (a clock
    days ahead or years behind) are read once and reach the timestamp checks; otherwise, or when entry
    numbers cannot be trusted, by time from the cursor's time (``start``) to ``end``."""
    if (meter.brand.objects or {}).get("profile_read") == "entry":
        last_entry = cursor.last_entry if cursor is not None else None
        read = session.read_since_entry(obis, last_entry, start)
        if read is not None:
            if last_entry is None:  # the first read: rows older than its start, unless their stamps are wrong
                clock = next((i for i, c in enumerate(read.columns) if c["class_id"] == 8), None)
                window, first = timestamp_window(), first_reading([meter.id]).get(meter.id)
                read.rows = [row for row in read.rows if clock is None or not isinstance(row[clock], dt.datetime)
                             or row[clock] >= start or timestamp_problem(row[clock], window, first)]
            return read
    return session.read_profile(obis, start, end)


def _store_profile(session: DlmsSession, meter: Meter, profile_obis: str, default_days: float,
                   topic: str) -> dict[str, Any]:
    now = dt.datetime.now(UTC)
    period = dt.timedelta(minutes=meter.brand.profile_period_minutes or 15)
    cursor = cursor_of(meter.id, topic)
    # Gap backfill: always ask from this profile's own cursor, so missed rows come back by themselves.
    start = cursor.last_ts if cursor is not None else now - dt.timedelta(days=default_days)
    read = read_new_rows(session, meter, profile_obis, cursor, start, now)
    columns, rows = read
    values = profile_values(session, meter, columns, rows,
                            lambda ts: Source.SCHEDULE if now - ts <= 2 * period else Source.BACKFILL)
    result = store_readings(values, commit=False)
    # The time cursor moves to the newest row that passed the timestamp checks (quarantined rows never
    # move it); the entry cursor to the newest entry read (quarantined ones too: they are not read again).
    captures = [normalise_obis(c["obis"]) for c in columns if c["class_id"] in (3, 4) and c["attribute"] == 2]
    advance_cursor(meter.id, topic, result.latest, len(rows), entry=_entry_of(read), captures=captures,
                   capture_period=_capture_period(session, profile_obis, cursor))
    db.session.commit()
    if values:
        from app.realtime.emit import emit_event
        from app.services.outbox import enqueue_readings

        if enqueue_readings(meter, values, topic):
            db.session.commit()
        emit_event("reading_stored", {"meter_id": meter.id, "number": meter.number, "values": result.inserted,
                                      "topic": topic}, customer_id=meter.customer_id)
    return {"from": start.isoformat(), "to": now.isoformat(), "rows": len(rows), "values": len(values),
            "inserted": result.inserted, "revised": result.revised, "kept": result.kept,
            "stored": result.total, "quarantined": result.quarantined}


def _profile_obis(meter: Meter, name: str) -> str | None:
    return ((meter.brand.objects or {}).get("profiles") or {}).get(name)


def _collect(session: DlmsSession, meter: Meter, profile: str, default_days: float) -> dict[str, Any]:
    obis = _profile_obis(meter, profile)
    if not obis:
        return {"skipped": f"brand has no {profile.replace('_', ' ')} profile"}
    return _store_profile(session, meter, obis, default_days, profile)


def collect_load_profile(session: DlmsSession, meter: Meter) -> dict[str, Any]:
    """Read the load profile from the last stored interval to now and store it."""
    return _collect(session, meter, "load_profile", _config_number("HES_BACKFILL_DAYS", 7))


def collect_daily_snapshot(session: DlmsSession, meter: Meter) -> dict[str, Any]:
    """Read the daily energy snapshots (midnight register values) not stored yet."""
    return _collect(session, meter, "daily", _config_number("HES_BACKFILL_DAYS", 7))


def collect_billing(session: DlmsSession, meter: Meter) -> dict[str, Any]:
    """Read monthly billing rows not stored yet (up to 400 days back the first time)."""
    return _collect(session, meter, "billing", 400)


def collect_events(session: DlmsSession, meter: Meter) -> dict[str, Any]:
    """Read every event log from its newest stored event on; new events raise alerts."""
    from app.services.alerts import emit_raised
    from app.services.events import RawEvent, store_events

    logs = (meter.brand.objects or {}).get("event_logs") or {}
    now = dt.datetime.now(UTC)
    stored, raised = 0, []
    for name, obis in logs.items():
        cursor = cursor_of(meter.id, f"log:{name}")
        start = cursor.last_ts if cursor is not None else now - dt.timedelta(
            days=_config_number("HES_BACKFILL_DAYS", 7))
        # The end bound is a little in the future: range bounds travel with whole-second (or coarser)
        # precision, and an event logged this very second must not fall outside.
        read = read_new_rows(session, meter, obis, cursor, start, now + dt.timedelta(minutes=5))
        columns, rows = read
        clock = next((i for i, c in enumerate(columns) if c["class_id"] == 8), 0)
        code_col = next((i for i, c in enumerate(columns) if i != clock), None)
        raw = [RawEvent(row[clock], int(row[code_col]), name)
               for row in rows if code_col is not None and isinstance(row[clock], dt.datetime)
               and isinstance(row[code_col], int)]
        stored += len(store_events(meter, raw, raised=raised))
        window, first = timestamp_window(), first_reading([meter.id]).get(meter.id)
        good = [r.ts for r in raw if timestamp_problem(r.ts.astimezone(UTC), window, first) is None]
        advance_cursor(meter.id, f"log:{name}", max(good).astimezone(UTC) if good else None, len(rows),
                       entry=_entry_of(read))
        db.session.commit()
        emit_raised(raised)
        raised = []
    return {"logs": len(logs), "new_events": stored}


def sync_clock(session: DlmsSession, meter: Meter, threshold_seconds: float | None = None) -> dict[str, Any]:
    """Measure the meter's clock drift, record it, and set the clock when it exceeds the threshold."""
    from app.services.events import RawEvent, store_events

    threshold = threshold_seconds if threshold_seconds is not None else _config_number("HES_CLOCK_THRESHOLD", 10)
    before = dt.datetime.now(UTC)
    meter_time = session.read_clock()
    after = dt.datetime.now(UTC)
    drift = (meter_time - (before + (after - before) / 2)).total_seconds()
    meter.clock_drift_seconds = round(drift, 3)
    corrected = abs(drift) > threshold
    if corrected:
        session.set_clock(dt.datetime.now(UTC))
        store_events(meter, [RawEvent(dt.datetime.now(UTC), 0, "hes", "hes", {"drift_seconds": round(drift, 3)})],
                     mapped_types=["clock_set"])
    db.session.commit()
    return {"drift_seconds": round(drift, 3), "corrected": corrected}


def missing_ranges(meter_id: int, start: dt.datetime, end: dt.datetime, period: dt.timedelta | None = None,
                   profile: str = "load_profile") -> list[tuple[dt.datetime, dt.datetime]]:
    """Capture times of a meter's profile between start and end with no complete row stored (see gaps)."""
    from app.services.gaps import missing_ranges as ranges

    return ranges(meter_id, start, end, profile=profile, period=period)
