"""Build the rules' input from the rollups: each meter's daily and hourly kWh by local day, its tamper
events, and its area's per-meter daily average."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import func, select

from app.extensions import db
from app.models import Area, ConsumptionDaily, ConsumptionHourly, Event, Meter, MeterStatus
from app.services.analytics.rules import TAMPER_EVENT_TYPES, MeterSeries
from app.services.reports.periods import local_days, utc_range

BATCH = 500
FIELD_STATUSES = (MeterStatus.installed, MeterStatus.active)


def supply_meter_ids():
    """SELECT of the meters that feed an area (feeder/transformer meters are not consumers)."""
    return select(Area.supply_meter_id).where(Area.supply_meter_id.is_not(None))


def consumer_meters(meter_ids: Iterable[int] | None = None) -> list[tuple[int, str, int | None]]:
    """(id, number, area id) of the consumer meters in the field, optionally limited to some ids."""
    stmt = select(Meter.id, Meter.number, Meter.area_id).where(
        Meter.status.in_(FIELD_STATUSES), Meter.id.not_in(supply_meter_ids())).order_by(Meter.id)
    if meter_ids is not None:
        stmt = stmt.where(Meter.id.in_(list(meter_ids)))
    return [tuple(row) for row in db.session.execute(stmt)]


def area_daily_means(days: list[dt.date], tz: ZoneInfo) -> tuple[dict[int, tuple], dict[int, int]]:
    """Per area: the mean daily kWh per consumer meter for each day, and how many meters had data."""
    start, end = utc_range(days[0], days[-1], tz)
    rows = db.session.execute(
        select(Meter.area_id, ConsumptionDaily.bucket, func.avg(ConsumptionDaily.import_wh))
        .join(Meter, Meter.id == ConsumptionDaily.meter_id)
        .where(ConsumptionDaily.bucket >= start, ConsumptionDaily.bucket < end, Meter.area_id.is_not(None),
               Meter.status.in_(FIELD_STATUSES), Meter.id.not_in(supply_meter_ids()))
        .group_by(Meter.area_id, ConsumptionDaily.bucket))
    index = {day: i for i, day in enumerate(days)}
    means: dict[int, list] = defaultdict(lambda: [None] * len(days))
    for area_id, bucket, avg_wh in rows:
        i = index.get(bucket.astimezone(tz).date())
        if i is not None:
            means[area_id][i] = float(avg_wh) / 1000.0
    counts = dict(db.session.execute(
        select(Meter.area_id, func.count(func.distinct(ConsumptionDaily.meter_id)))
        .join(Meter, Meter.id == ConsumptionDaily.meter_id)
        .where(ConsumptionDaily.bucket >= start, ConsumptionDaily.bucket < end, Meter.area_id.is_not(None),
               Meter.status.in_(FIELD_STATUSES), Meter.id.not_in(supply_meter_ids()))
        .group_by(Meter.area_id)).all())
    return {area: tuple(values) for area, values in means.items()}, counts


def _optional(values: np.ndarray) -> tuple:
    return tuple(None if np.isnan(v) else float(v) for v in values)


def load_series(meters: list[tuple[int, str, int | None]], days: list[dt.date], tz: ZoneInfo
                ) -> Iterator[MeterSeries]:
    """The series of each meter over the local days (read in batches, so memory stays flat)."""
    start, end = utc_range(days[0], days[-1], tz)
    day_index = {day: i for i, day in enumerate(days)}
    local_hour: dict[dt.datetime, tuple[int, int] | None] = {}

    def hour_slot(bucket: dt.datetime) -> tuple[int, int] | None:
        if bucket not in local_hour:
            local = bucket.astimezone(tz)
            i = day_index.get(local.date())
            local_hour[bucket] = None if i is None else (i, local.hour)
        return local_hour[bucket]

    for offset in range(0, len(meters), BATCH):
        batch = meters[offset:offset + BATCH]
        ids = [m[0] for m in batch]
        row_of = {meter_id: r for r, meter_id in enumerate(ids)}
        daily = np.full((len(ids), 2, len(days)), np.nan)
        hourly = np.full((len(ids), len(days), 24), np.nan)
        for meter_id, bucket, imp, exp in db.session.execute(
                select(ConsumptionDaily.meter_id, ConsumptionDaily.bucket, ConsumptionDaily.import_wh,
                       ConsumptionDaily.export_wh)
                .where(ConsumptionDaily.meter_id.in_(ids), ConsumptionDaily.bucket >= start,
                       ConsumptionDaily.bucket < end)):
            i = day_index.get(bucket.astimezone(tz).date())
            if i is not None:
                daily[row_of[meter_id], :, i] = (imp / 1000.0, exp / 1000.0)
        for meter_id, bucket, imp in db.session.execute(
                select(ConsumptionHourly.meter_id, ConsumptionHourly.bucket, ConsumptionHourly.import_wh)
                .where(ConsumptionHourly.meter_id.in_(ids), ConsumptionHourly.bucket >= start,
                       ConsumptionHourly.bucket < end)):
            slot = hour_slot(bucket)
            if slot is not None:
                cell = hourly[row_of[meter_id], slot[0], slot[1]]
                # The repeated hour of a DST fall-back day adds to the same local hour.
                hourly[row_of[meter_id], slot[0], slot[1]] = imp / 1000.0 + (0.0 if np.isnan(cell) else cell)
        events: dict[int, list] = defaultdict(list)
        for meter_id, ts, kind in db.session.execute(
                select(Event.meter_id, Event.ts, Event.event_type)
                .where(Event.meter_id.in_(ids), Event.ts >= start, Event.ts < end,
                       Event.event_type.in_(TAMPER_EVENT_TYPES))):
            events[meter_id].append((ts, kind))
        for r, (meter_id, number, _area) in enumerate(batch):
            yield MeterSeries(meter_id=meter_id, days=tuple(days), import_kwh=_optional(daily[r, 0]),
                              export_kwh=_optional(daily[r, 1]),
                              hourly_kwh=tuple(_optional(hourly[r, i]) for i in range(len(days))),
                              events=tuple(sorted(events.get(meter_id, ()))), number=number)


def lookback_days(as_of: dt.date, lookback: int) -> list[dt.date]:
    """The ``lookback`` local days before ``as_of`` (which is not included: it is not over yet)."""
    return local_days(as_of - dt.timedelta(days=lookback), as_of - dt.timedelta(days=1))
