"""Missing data, one definition for the gaps API and the completeness report.

A profile of a meter is expected to hold a row at every capture time: multiples of its capture
period (epoch-aligned, so 15-minute rows end on quarter hours and daily rows at UTC midnight
shifted to the utility's zone). A row is *received* when every register the profile captures
(its capture objects, as the meter answered them and the cursor keeps them) has a stored value at
that instant. Anything else is a gap, whichever register is missing.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import BigInteger, Integer, cast, func, select

from app.extensions import db
from app.models import Channel, CollectionCursor, Meter, Reading
from app.models.types import UTC

IMPORT_OBIS = "1.0.1.8.0.255"
DAY = 86400


@dataclass(frozen=True)
class ProfileDefinition:
    """What one profile of one meter captures, and how often."""

    profile: str
    captures: tuple[str, ...]
    period: dt.timedelta

    @property
    def seconds(self) -> int:
        """The capture period in whole seconds."""
        return int(self.period.total_seconds())


def definition(meter: Meter, profile: str = "load_profile") -> ProfileDefinition:
    """The meter's own cursor first, then another meter of its brand, then the brand's defaults."""
    cursor = db.session.get(CollectionCursor, (meter.id, profile))
    if cursor is None or not cursor.captures:
        cursor = db.session.execute(select(CollectionCursor).join(Meter, Meter.id == CollectionCursor.meter_id).where(
            Meter.brand_id == meter.brand_id, CollectionCursor.profile == profile,
            CollectionCursor.captures.is_not(None)).limit(1)).scalar() or cursor
    default = DAY if profile == "daily" else 60 * (meter.brand.profile_period_minutes or 15)
    captures = tuple(cursor.captures) if cursor is not None and cursor.captures else (IMPORT_OBIS,)
    seconds = cursor.capture_period if cursor is not None and cursor.capture_period else default
    return ProfileDefinition(profile, captures, dt.timedelta(seconds=seconds))


def _offset_seconds(when: dt.datetime, period: int) -> int:
    """Where the grid of a daily (or longer) period starts: local midnight of the utility's zone."""
    if period < DAY:
        return 0
    from app.services.rollups import utility_zone

    offset = when.astimezone(utility_zone()).utcoffset()
    return -int(offset.total_seconds()) if offset else 0


def expected_times(start: dt.datetime, end: dt.datetime, period: dt.timedelta) -> list[dt.datetime]:
    """Capture times in [start, end] on the period's grid."""
    seconds = int(period.total_seconds())
    if seconds <= 0:
        return []
    shift = _offset_seconds(start, seconds)
    first = -(-(int(start.timestamp()) - shift) // seconds) * seconds + shift
    last = int(end.timestamp())
    return [dt.datetime.fromtimestamp(t, UTC) for t in range(first, last + 1, seconds)]


def complete_times(meter_ids: Iterable[int], captures: tuple[str, ...], start: dt.datetime,
                   end: dt.datetime) -> dict[int, set[dt.datetime]]:
    """Per meter, the instants in [start, end] where every captured register has a stored value."""
    ids = list(meter_ids)
    if not ids:
        return {}
    channels = list(db.session.execute(select(Channel.id).where(Channel.obis.in_(captures))).scalars())
    if len(channels) < len(set(captures)):
        return {m: set() for m in ids}  # a register never stored: no row can be complete
    seen: dict[tuple[int, dt.datetime], int] = defaultdict(int)
    for meter_id, ts in db.session.execute(select(Reading.meter_id, Reading.ts).where(
            Reading.meter_id.in_(ids), Reading.channel_id.in_(channels), Reading.ts >= start, Reading.ts <= end)):
        seen[(meter_id, ts)] += 1
    out: dict[int, set[dt.datetime]] = {m: set() for m in ids}
    for (meter_id, ts), count in seen.items():
        if count == len(channels):
            out[meter_id].add(ts)
    return out


def missing_times(meter: Meter, start: dt.datetime, end: dt.datetime, profile: str = "load_profile",
                  period: dt.timedelta | None = None) -> tuple[ProfileDefinition, list[dt.datetime]]:
    """The definition used and the expected capture times without a complete row."""
    found = definition(meter, profile)
    if period is not None:
        found = ProfileDefinition(found.profile, found.captures, period)
    have = complete_times([meter.id], found.captures, start, end)[meter.id]
    return found, [t for t in expected_times(start, end, found.period) if t not in have]


def as_ranges(times: list[dt.datetime], period: dt.timedelta) -> list[tuple[dt.datetime, dt.datetime]]:
    """Consecutive capture times folded into [from, to] ranges."""
    ranges: list[list[dt.datetime]] = []
    for t in times:
        if ranges and t - ranges[-1][1] == period:
            ranges[-1][1] = t
        else:
            ranges.append([t, t])
    return [(a, b) for a, b in ranges]


def missing_ranges(meter_id: int, start: dt.datetime, end: dt.datetime, profile: str = "load_profile",
                   period: dt.timedelta | None = None) -> list[tuple[dt.datetime, dt.datetime]]:
    """Missing capture times of a meter's profile as [from, to] ranges."""
    meter = db.session.get(Meter, meter_id)
    found, times = missing_times(meter, start, end, profile, period)
    return as_ranges(times, found.period)


def by_definition(meters: list) -> dict[ProfileDefinition, list[int]]:
    """Meter ids grouped by their load-profile definition (own cursor first, else one lookup per brand).
    ``meters`` need ``id`` and ``brand_id``. The meters' own cursors are read in one query, not one per meter."""
    groups: dict[ProfileDefinition, list[int]] = defaultdict(list)
    ids = {m.id for m in meters}
    own = {meter_id: (captures, period) for meter_id, captures, period in db.session.execute(
        select(CollectionCursor.meter_id, CollectionCursor.captures, CollectionCursor.capture_period)
        .where(CollectionCursor.profile == "load_profile", CollectionCursor.captures.is_not(None)))
        if meter_id in ids and captures}
    brand_default: dict[int, ProfileDefinition] = {}
    for m in meters:
        if m.id in own:
            captures, period = own[m.id]
            seconds = period or 60 * (_brand_period(m.brand_id) or 15)
            found = ProfileDefinition("load_profile", tuple(captures), dt.timedelta(seconds=seconds))
        else:
            found = brand_default.get(m.brand_id)
            if found is None:
                found = brand_default[m.brand_id] = definition(db.session.get(Meter, m.id))
        groups[found].append(m.id)
    return groups


def _brand_period(brand_id: int) -> int | None:
    from app.models import MeterBrand

    return db.session.execute(select(MeterBrand.profile_period_minutes).where(MeterBrand.id == brand_id)).scalar()


def _on_grid(found: ProfileDefinition, ts: dt.datetime) -> bool:
    return bool(found.seconds) and int(ts.timestamp()) % found.seconds == 0


def received_per_day(meters: list, start: dt.datetime, end: dt.datetime, tz) -> dict[tuple[int, dt.date], int]:
    """Complete load-profile rows per (meter id, local day) in [start, end): the completeness report's
    "received", by the same definition as the gaps. ``meters`` need ``id`` and ``brand_id``."""
    out: dict[tuple[int, dt.date], int] = defaultdict(int)
    first = start + dt.timedelta(microseconds=1)  # an interval ending at midnight belongs to the day before
    for found, ids in by_definition(meters).items():
        for meter_id, stamps in complete_times(ids, found.captures, first, end).items():
            for ts in stamps:
                if _on_grid(found, ts):
                    # A row belongs to the local day its interval ends in (as the rollups count it).
                    out[(meter_id, (ts - dt.timedelta(seconds=1)).astimezone(tz).date())] += 1
    return out


def expected_and_received(meters: list, start: dt.datetime, end: dt.datetime) -> dict[int, tuple[int, int]]:
    """Per meter id, (capture times due, complete rows) in (start, end]: the dashboard's completeness,
    by the same definition as the gaps. ``meters`` need ``id`` and ``brand_id``.

    Complete rows are counted by the database (per meter: its on-grid instants where every captured register is
    stored), a batch of meters at a time; nothing per row comes back to Python."""
    out: dict[int, tuple[int, int]] = {}
    first = start + dt.timedelta(microseconds=1)  # the row at ``start`` closes the interval before it
    for found, ids in by_definition(meters).items():
        due = sum(1 for t in expected_times(start, end, found.period) if t > start)
        counts = complete_counts(ids, found, first, end)
        out.update((meter_id, (due, counts.get(meter_id, 0))) for meter_id in ids)
    return out


COUNT_BATCH = 5000  # meter ids per statement (well under SQLite's and PostgreSQL's bound-parameter limits)


def complete_counts(meter_ids: list[int], found: ProfileDefinition, start: dt.datetime, end: dt.datetime
                    ) -> dict[int, int]:
    """Per meter, how many instants in [start, end] on the profile's grid have every captured register stored."""
    channels = list(db.session.execute(select(Channel.id).where(Channel.obis.in_(found.captures))).scalars())
    if not meter_ids or not found.seconds or len(channels) < len(set(found.captures)):
        return {}
    if db.engine.dialect.name == "sqlite":
        epoch = cast(func.strftime("%s", Reading.ts), Integer)
    else:
        epoch = cast(func.floor(func.extract("epoch", Reading.ts)), BigInteger)
    out: dict[int, int] = {}
    for offset in range(0, len(meter_ids), COUNT_BATCH):
        rows = (select(Reading.meter_id, Reading.ts)
                .where(Reading.meter_id.in_(meter_ids[offset:offset + COUNT_BATCH]), Reading.channel_id.in_(channels),
                       Reading.ts >= start, Reading.ts <= end, epoch % found.seconds == 0)
                .group_by(Reading.meter_id, Reading.ts).having(func.count() == len(channels)).subquery())
        out.update(db.session.execute(select(rows.c.meter_id, func.count()).group_by(rows.c.meter_id)).all())
    return out
