"""Hourly and daily consumption per meter in the utility's zone, recomputed for the days a batch
of readings touched (so late and backfilled data land in the right buckets, exactly once)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from functools import lru_cache
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import and_, delete, insert, select, text

from app.extensions import db
from app.models import ConsumptionDaily, ConsumptionHourly, EnergyQuarter, Meter, Reading
from app.models.types import UTC

IMPORT_OBIS = "1.0.1.8.0.255"
EXPORT_OBIS = "1.0.2.8.0.255"
EPSILON = dt.timedelta(microseconds=1)
INTERVAL_GRID = 900  # profile intervals end on quarter hours; other readings are register snapshots


@lru_cache(maxsize=8)
def zone(name: str) -> ZoneInfo:
    """The ZoneInfo of a zone name."""
    return ZoneInfo(name)


def utility_zone() -> ZoneInfo:
    """HES_TIMEZONE as a ZoneInfo."""
    return zone(current_app.config.get("HES_TIMEZONE", "UTC"))


def local_day_start(ts: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The UTC instant the utility's local day containing ``ts`` starts."""
    return dt.datetime.combine(ts.astimezone(tz).date(), dt.time(0), tzinfo=tz).astimezone(UTC)


def local_hour_start(ts: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The UTC instant the utility's local hour containing ``ts`` starts."""
    local = ts.astimezone(tz)
    # Subtract minutes/seconds in UTC, so DST folds and half-hour offsets stay right.
    return (ts - dt.timedelta(minutes=local.minute, seconds=local.second, microseconds=local.microsecond))


def next_local_day(day_start: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """Start of the following local day (23, 24 or 25 hours later)."""
    local_date = day_start.astimezone(tz).date() + dt.timedelta(days=1)
    return dt.datetime.combine(local_date, dt.time(0), tzinfo=tz).astimezone(UTC)


def refresh_rollups(keyed: dict, *, all_new: bool = False, received_at: dt.datetime | None = None) -> None:
    """Bring the rollups up to date for these (meter, channel, ts) -> (value, ...) keys.

    Appending new intervals after a meter's last reading (the normal collection round) adds their
    energy to the buckets; anything else (backfill between readings, a revised value) recomputes
    the local days it touched from the stored readings.
    """
    from app.services.ingest import channel_id

    import_id, export_id = channel_id(IMPORT_OBIS), channel_id(EXPORT_OBIS)
    touched: dict[int, dict[int, list[tuple[dt.datetime, float]]]] = defaultdict(lambda: defaultdict(list))
    for (meter_id, cid, ts), value in keyed.items():
        if cid in (import_id, export_id):
            touched[meter_id][cid].append((ts, value[0]))
    if not touched:
        return
    tz = utility_zone()
    on_time = dt.timedelta(hours=float(current_app.config.get("HES_ON_TIME_HOURS", 4)))
    areas = dict(db.session.execute(select(Meter.id, Meter.area_id).where(Meter.id.in_(list(touched)))).all())
    quarters: dict[tuple[int, dt.datetime], float] = defaultdict(float)
    for meter_id, channels in touched.items():
        stamps = [ts for series in channels.values() for ts, _v in series]
        # The reading after the batch changes too (its interval now starts later or earlier).
        nxt = _as_utc(db.session.execute(NEXT_READING, {"m": meter_id, "i": import_id, "e": export_id,
                                                         "t": _ts_param(max(stamps))}).scalar())
        if all_new and nxt is None:
            _append(meter_id, channels, import_id, min(stamps), tz, on_time, received_at,
                    quarters, areas.get(meter_id) or 0)
            continue
        first_day = local_day_start(min(stamps) - EPSILON, tz)
        last_day = local_day_start(max(stamps if nxt is None else [*stamps, nxt]) - EPSILON, tz)
        _recompute(meter_id, import_id, export_id, first_day, next_local_day(last_day, tz), tz, on_time)
    if quarters:
        _upsert_add(EnergyQuarter, [{"area_id": a, "bucket": b, "import_wh": wh} for (a, b), wh in quarters.items()],
                    ("import_wh",), keys=["area_id", "bucket"])


# Plain SQL for the statements run once per stored batch: they are on the ingest hot path.
NEXT_READING = text("SELECT ts FROM reading WHERE meter_id = :m AND channel_id IN (:i, :e) AND ts > :t "
                    "ORDER BY ts LIMIT 1")
PREVIOUS_VALUES = text(
    "SELECT * FROM (SELECT channel_id, value FROM reading WHERE meter_id = :m AND channel_id = :i AND ts < :ti "
    "ORDER BY ts DESC LIMIT 1) a UNION ALL "
    "SELECT * FROM (SELECT channel_id, value FROM reading WHERE meter_id = :m AND channel_id = :e AND ts < :te "
    "ORDER BY ts DESC LIMIT 1) b")


def _ts_param(ts: dt.datetime):
    """A timestamp bound to plain SQL: SQLite compares the stored text, PostgreSQL a timestamptz."""
    if db.engine.dialect.name == "sqlite":
        from app.services.ingest import sqlite_ts

        return sqlite_ts(ts)
    return ts


def _as_utc(value) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
    return dt.datetime.fromisoformat(value).replace(tzinfo=UTC)


def _append(meter_id: int, channels: dict, import_id: int, first: dt.datetime, tz: ZoneInfo,
            on_time: dt.timedelta, received_at: dt.datetime | None,
            quarters: dict[tuple[int, dt.datetime], float], area_id: int) -> None:
    """Add the energy of intervals appended after the last stored reading to their buckets (and the
    area's quarter-hours, for the live dashboard)."""
    hourly: dict[dt.datetime, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    daily: dict[dt.datetime, list[float]] = defaultdict(lambda: [0.0, 0.0, 0, 0])
    last = max(ts for series in channels.values() for ts, _v in series)
    buckets_of = _bucketer(first - dt.timedelta(days=1), last, tz)
    received_at = received_at or dt.datetime.now(UTC)
    for series in channels.values():
        series.sort()
    firsts = {cid: series[0][0] for cid, series in channels.items()}
    export_id = next((cid for cid in channels if cid != import_id), -1)
    previous = dict(db.session.execute(PREVIOUS_VALUES, {
        "m": meter_id, "i": import_id, "e": export_id, "ti": _ts_param(firsts.get(import_id, first)),
        "te": _ts_param(firsts.get(export_id, first))}).all())
    for cid, series in channels.items():
        column = 0 if cid == import_id else 1
        prev = previous.get(cid)
        for ts, value in series:
            if prev is not None:
                hour, day = buckets_of(ts)
                delta = max(value - prev, 0.0)
                hourly[hour][column] += delta
                daily[day][column] += delta
                if column == 0:
                    quarters[(area_id, _quarter_of(ts))] += delta
                if column == 0 and int(ts.timestamp()) % INTERVAL_GRID == 0:
                    hourly[hour][2] += 1
                    daily[day][2] += 1
                    if received_at - ts <= on_time:
                        daily[day][3] += 1
            prev = value
    for model, buckets, fields in ((ConsumptionHourly, hourly, ("import_wh", "export_wh", "intervals")),
                                   (ConsumptionDaily, daily, ("import_wh", "export_wh", "intervals", "on_time"))):
        rows = [{"meter_id": meter_id, "bucket": bucket, **dict(zip(fields, values, strict=True))}
                for bucket, values in buckets.items()]
        if rows:
            _upsert_add(model, rows, fields)


def _quarter_of(ts: dt.datetime) -> dt.datetime:
    """The quarter-hour (UTC) an interval ending at ``ts`` belongs to."""
    seconds = int(ts.timestamp()) - 1
    return dt.datetime.fromtimestamp(seconds - seconds % INTERVAL_GRID, UTC)


def _upsert_add(model, rows: list[dict], fields: tuple[str, ...], keys: list[str] | None = None) -> None:
    if db.engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    stmt = dialect_insert(model)
    stmt = stmt.on_conflict_do_update(index_elements=keys or ["meter_id", "bucket"],
                                      set_={f: getattr(model, f) + getattr(stmt.excluded, f) for f in fields})
    db.session.execute(stmt, rows)


def _series(meter_id: int, cid: int, start: dt.datetime, end: dt.datetime) -> list[tuple]:
    prev = db.session.execute(select(Reading.ts, Reading.value, Reading.received_at).where(
        Reading.meter_id == meter_id, Reading.channel_id == cid, Reading.ts <= start
    ).order_by(Reading.ts.desc()).limit(1)).all()
    rows = db.session.execute(select(Reading.ts, Reading.value, Reading.received_at).where(
        Reading.meter_id == meter_id, Reading.channel_id == cid, Reading.ts > start, Reading.ts <= end
    ).order_by(Reading.ts)).all()
    return list(prev) + list(rows)


def _bucketer(start: dt.datetime, end: dt.datetime, tz: ZoneInfo):
    """A function (interval end) -> (local hour start, local day start) for instants in [start, end].

    When the zone's offset is the same over the whole range (no DST change), buckets are integer
    arithmetic on epoch seconds; across a change, the exact local-time conversion is used."""
    offset = start.astimezone(tz).utcoffset()
    if offset == end.astimezone(tz).utcoffset() == (end - EPSILON).astimezone(tz).utcoffset():
        shift = int(offset.total_seconds())
        cache: dict[int, tuple[dt.datetime, dt.datetime]] = {}

        def fixed(t1: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
            local = int(t1.timestamp()) - 1 + shift  # the second before the interval ends
            hour = local - local % 3600
            found = cache.get(hour)
            if found is None:
                found = cache[hour] = (dt.datetime.fromtimestamp(hour - shift, UTC),
                                       dt.datetime.fromtimestamp(hour - hour % 86400 - shift, UTC))
            return found

        return fixed
    return lambda t1: (local_hour_start(t1 - EPSILON, tz), local_day_start(t1 - EPSILON, tz))


def _recompute(meter_id: int, import_id: int, export_id: int, start: dt.datetime, end: dt.datetime,
               tz: ZoneInfo, on_time: dt.timedelta) -> None:
    hourly: dict[dt.datetime, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    daily: dict[dt.datetime, list[float]] = defaultdict(lambda: [0.0, 0.0, 0, 0])
    buckets_of = _bucketer(start, end, tz)
    for column, cid in ((0, import_id), (1, export_id)):
        series = _series(meter_id, cid, start, end)
        for (_t0, v0, _r0), (t1, v1, r1) in zip(series, series[1:], strict=False):
            if t1 <= start:
                continue
            # An interval's energy belongs to the bucket it ends in (clamped: a reset is not negative use).
            delta = max(v1 - v0, 0.0)
            hour, day = buckets_of(t1)
            hourly[hour][column] += delta
            daily[day][column] += delta
            if column == 0 and int(t1.timestamp()) % INTERVAL_GRID == 0:
                hourly[hour][2] += 1
                daily[day][2] += 1
                if r1 is not None and r1 - t1 <= on_time:
                    daily[day][3] += 1
    for model, buckets, fields in ((ConsumptionHourly, hourly, ("import_wh", "export_wh", "intervals")),
                                   (ConsumptionDaily, daily, ("import_wh", "export_wh", "intervals", "on_time"))):
        db.session.execute(delete(model).where(and_(model.meter_id == meter_id, model.bucket >= start,
                                                    model.bucket < end)))
        rows = [{"meter_id": meter_id, "bucket": bucket, **dict(zip(fields, values, strict=True))}
                for bucket, values in buckets.items() if start <= bucket < end]
        if rows:
            db.session.execute(insert(model), rows)
