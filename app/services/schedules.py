"""Collection schedules: defaults, due-time arithmetic in the utility's zone, and target meters."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select

from app.extensions import db
from app.models import CommMode, Meter, MeterStatus, Schedule
from app.models.types import UTC
from app.services.rollups import local_day_start, utility_zone
from app.services.scope import area_ids_subquery

DEFAULT_SCHEDULES = [
    # name, kind, interval (min), offset (min), spread (s)
    ("Load profile (every 15 min)", "load_profile", 15, 2, 240),
    ("Event logs (every 15 min)", "events", 15, 7, 240),
    ("Daily energy snapshot", "daily_snapshot", 1440, 15, 1800),
    ("Monthly billing profile", "billing", 1440, 45, 1800),
    ("Clock synchronisation (daily)", "clock_sync", 1440, 150, 3600),
    ("Health check (every 5 min)", "health_check", 5, 0, 0),
]


def ensure_default_schedules() -> int:
    """Create the default schedules the first time (admins edit them afterwards)."""
    if db.session.execute(select(Schedule.id).limit(1)).scalar() is not None:
        return 0
    for name, kind, interval, offset, spread in DEFAULT_SCHEDULES:
        db.session.add(Schedule(name=name, kind=kind, interval_minutes=interval, offset_minutes=offset,
                                spread_seconds=spread, enabled=True))
    db.session.commit()
    return len(DEFAULT_SCHEDULES)


def next_run(schedule: Schedule, after: dt.datetime) -> dt.datetime:
    """The first slot after ``after``: every interval from local midnight, shifted by the offset."""
    tz = utility_zone()
    day = local_day_start(after, tz)
    step = dt.timedelta(minutes=max(1, schedule.interval_minutes))
    slot = day + dt.timedelta(minutes=schedule.offset_minutes % max(1, schedule.interval_minutes))
    if schedule.interval_minutes >= 1440:
        slot = day + dt.timedelta(minutes=schedule.offset_minutes)
    while slot <= after:
        slot += step
    return slot


def due_schedules(now: dt.datetime) -> list[Schedule]:
    """Enabled schedules whose time has come."""
    return list(db.session.execute(select(Schedule).where(
        Schedule.enabled.is_(True), or_(Schedule.next_run_at.is_(None), Schedule.next_run_at <= now)
    ).order_by(Schedule.id)).scalars())


def target_meters(schedule: Schedule) -> list[int]:
    """Meters a schedule collects from: in service, of its brand/area, and reachable now."""
    stmt = select(Meter.id).where(Meter.status.in_([MeterStatus.active, MeterStatus.installed]),
                                  or_(Meter.comm_mode == CommMode.dial_out, Meter.online.is_(True)))
    if schedule.brand_id is not None:
        stmt = stmt.where(Meter.brand_id == schedule.brand_id)
    if schedule.area_id is not None:
        stmt = stmt.where(Meter.area_id.in_(area_ids_subquery(schedule.area_id)))
    return list(db.session.execute(stmt.order_by(Meter.id)).scalars())


def mark_run(schedule: Schedule, now: dt.datetime, meters: int) -> None:
    """Record a run and set the next due time."""
    schedule.last_run_at, schedule.last_meters = now, meters
    schedule.next_run_at = next_run(schedule, now)


def now_utc() -> dt.datetime:
    """The current time (one place, so tests can reason about it)."""
    return dt.datetime.now(UTC)
