"""Hourly and daily consumption per meter in the utility's zone, recomputed for the days a batch
of readings touched (so late and backfilled data land in the right buckets, exactly once)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from functools import lru_cache
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import and_, delete, insert, select

from app.extensions import db
from app.models import ConsumptionDaily, ConsumptionHourly, Reading
from app.models.types import UTC

IMPORT_OBIS = "1.0.1.8.0.255"
EXPORT_OBIS = "1.0.2.8.0.255"
EPSILON = dt.timedelta(microseconds=1)


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


def refresh_rollups(keyed: dict) -> None:
    """Recompute the rollups of the local days touched by these (meter, channel, ts) keys."""
    from app.services.ingest import channel_id

    import_id, export_id = channel_id(IMPORT_OBIS), channel_id(EXPORT_OBIS)
    touched: dict[int, list[dt.datetime]] = defaultdict(list)
    for meter_id, cid, ts in keyed:
        if cid in (import_id, export_id):
            touched[meter_id].append(ts)
    if not touched:
        return
    tz = utility_zone()
    on_time = dt.timedelta(hours=float(current_app.config.get("HES_ON_TIME_HOURS", 4)))
    for meter_id, stamps in touched.items():
        first_day = local_day_start(min(stamps) - EPSILON, tz)
        last_day = local_day_start(max(stamps), tz)
        # The reading after the batch changes too (its interval now starts later or earlier).
        nxt = db.session.execute(select(Reading.ts).where(
            Reading.meter_id == meter_id, Reading.channel_id == import_id, Reading.ts > max(stamps)
        ).order_by(Reading.ts).limit(1)).scalar()
        if nxt is not None:
            last_day = max(last_day, local_day_start(nxt - EPSILON, tz))
        _recompute(meter_id, import_id, export_id, first_day, next_local_day(last_day, tz), tz, on_time)


def _series(meter_id: int, cid: int, start: dt.datetime, end: dt.datetime) -> list[tuple]:
    prev = db.session.execute(select(Reading.ts, Reading.value, Reading.received_at).where(
        Reading.meter_id == meter_id, Reading.channel_id == cid, Reading.ts <= start
    ).order_by(Reading.ts.desc()).limit(1)).all()
    rows = db.session.execute(select(Reading.ts, Reading.value, Reading.received_at).where(
        Reading.meter_id == meter_id, Reading.channel_id == cid, Reading.ts > start, Reading.ts <= end
    ).order_by(Reading.ts)).all()
    return list(prev) + list(rows)


def _recompute(meter_id: int, import_id: int, export_id: int, start: dt.datetime, end: dt.datetime,
               tz: ZoneInfo, on_time: dt.timedelta) -> None:
    hourly: dict[dt.datetime, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    daily: dict[dt.datetime, list[float]] = defaultdict(lambda: [0.0, 0.0, 0, 0])
    for column, cid in ((0, import_id), (1, export_id)):
        series = _series(meter_id, cid, start, end)
        for (_t0, v0, _r0), (t1, v1, r1) in zip(series, series[1:], strict=False):
            if t1 <= start:
                continue
            # An interval's energy belongs to the bucket it ends in (clamped: a reset is not negative use).
            delta = max(v1 - v0, 0.0)
            hour, day = local_hour_start(t1 - EPSILON, tz), local_day_start(t1 - EPSILON, tz)
            hourly[hour][column] += delta
            daily[day][column] += delta
            if column == 0:
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
