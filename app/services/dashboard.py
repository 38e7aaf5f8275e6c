"""Dashboard figures: fleet counts, active alerts, energy of the past hour, today's data completeness
and the latest events, all limited to a customer and/or an area (with its sub-areas).

* **Energy of the past hour** needs quarter-hours, finer than the hourly rollup. For staff it comes
  from ``energy_quarter`` (per area, kept as intervals land); for one customer it is computed
  from the ``reading`` table: the cumulative active-energy-import register (OBIS ``1.0.1.8.0.255``)
  of every meter is differenced reading to reading (SQL ``LAG``), each positive difference belongs
  to the quarter-hour its interval ends in (the rollups' convention), and the differences are
  summed across meters for the four complete quarter-hours before now. Negative differences
  (register reset or rollover) are ignored.
* **Data completeness today** is the number of complete load-profile rows (every register the profile
  captures stored) since local midnight (``HES_TIMEZONE``) divided by the capture times due since
  then, per meter in the field (installed or active) and its own capture period: the same definition
  as the gaps API and the completeness report (``app.services.gaps``).
"""

from __future__ import annotations

import datetime as dt
from itertools import pairwise

from sqlalchemy import and_, case, func, or_, select

from app.extensions import db
from app.models import (
    Alert,
    AlertState,
    Channel,
    EnergyQuarter,
    Event,
    Meter,
    MeterStatus,
    Reading,
)
from app.models.types import utcnow
from app.services.rollups import local_day_start, zone
from app.services.scope import Scope, area_ids_subquery

ENERGY_IMPORT_OBIS = "1.0.1.8.0.255"
INTERVAL = dt.timedelta(minutes=15)
BUCKETS = 4  # the past hour in quarter-hours
UNIT_TO_KWH = {"wh": 0.001, "kwh": 1.0, "mwh": 1000.0}
DEFAULT_UNIT = "Wh"  # registers are stored in Wh unless the channel says otherwise (as the rollups assume)
FIELD_STATUSES = (MeterStatus.installed, MeterStatus.active)


def floor_interval(moment: dt.datetime, interval: dt.timedelta = INTERVAL) -> dt.datetime:
    """The start of the interval (aligned to UTC midnight) that contains ``moment``."""
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + ((moment - midnight) // interval) * interval


def fleet_counts(scope: Scope) -> dict:
    """Meters in service (not decommissioned): total, online, offline, and how many are in the warehouse."""
    row = db.session.execute(
        select(
            func.count(Meter.id),
            func.coalesce(func.sum(case((Meter.online.is_(True), 1), else_=0)), 0),
            func.coalesce(func.sum(case((Meter.status == MeterStatus.warehouse, 1), else_=0)), 0),
        ).where(Meter.status != MeterStatus.decommissioned, *scope.meter_clauses())
    ).one()
    total, online, warehouse = (int(v) for v in row)
    return {"total": total, "online": online, "offline": total - online, "warehouse": warehouse,
            "online_percent": round(100.0 * online / total, 1) if total else None}


def active_alert_count(scope: Scope) -> int:
    """Alerts still waiting in the Active Alerts inbox, for the meters (or areas) in scope."""
    stmt = select(func.count(Alert.id)).where(Alert.state == AlertState.active)
    meter_ids = scope.meter_ids()
    if scope.customer_id is not None:
        stmt = stmt.where(Alert.meter_id.in_(meter_ids))
    elif scope.area_id is not None:
        stmt = stmt.where(or_(Alert.meter_id.in_(meter_ids),
                              and_(Alert.meter_id.is_(None), Alert.area_id.in_(area_ids_subquery(scope.area_id)))))
    return int(db.session.execute(stmt).scalar() or 0)


def _energy_channel() -> Channel | None:
    return db.session.execute(select(Channel).where(Channel.obis == ENERGY_IMPORT_OBIS)).scalar()


def energy_last_hour(scope: Scope, now: dt.datetime | None = None) -> dict:
    """kWh imported by all meters in scope per quarter-hour over the past hour, and the total.

    Staff scopes (the fleet or an area) read the per-area quarter-hour aggregate kept as intervals
    land; a single customer's few meters are differenced from their readings directly."""
    end = floor_interval(now or utcnow())
    edges = [end - INTERVAL * (BUCKETS - i) for i in range(BUCKETS + 1)]
    buckets = [{"start": a.isoformat(), "end": b.isoformat(), "kwh": 0.0} for a, b in pairwise(edges)]
    channel = _energy_channel()
    if channel is not None and scope.customer_id is None:
        factor = UNIT_TO_KWH.get((channel.unit or DEFAULT_UNIT).strip().lower(), UNIT_TO_KWH["wh"])
        stmt = select(EnergyQuarter.bucket, func.sum(EnergyQuarter.import_wh)).where(
            EnergyQuarter.bucket >= edges[0], EnergyQuarter.bucket < end).group_by(EnergyQuarter.bucket)
        if scope.area_id is not None:
            stmt = stmt.where(EnergyQuarter.area_id.in_(area_ids_subquery(scope.area_id)))
        per_start = dict(db.session.execute(stmt).all())
        for bucket, start in zip(buckets, edges, strict=False):
            bucket["kwh"] = round(float(per_start.get(start) or 0.0) * factor, 3)
    elif channel is not None:
        factor = UNIT_TO_KWH.get((channel.unit or DEFAULT_UNIT).strip().lower(), UNIT_TO_KWH["wh"])
        delta = Reading.value - func.lag(Reading.value).over(partition_by=Reading.meter_id, order_by=Reading.ts)
        lagged = select(Reading.ts.label("ts"), delta.label("delta")).where(
            Reading.channel_id == channel.id, Reading.ts > edges[0] - INTERVAL * BUCKETS, Reading.ts <= end)
        if scope.restricted:
            lagged = lagged.where(Reading.meter_id.in_(scope.meter_ids()))
        lagged = lagged.subquery()
        sums = [func.coalesce(func.sum(case((and_(lagged.c.ts > a, lagged.c.ts <= b, lagged.c.delta >= 0),
                                              lagged.c.delta), else_=0.0)), 0.0)
                for a, b in pairwise(edges)]
        for bucket, value in zip(buckets, db.session.execute(select(*sums)).one(), strict=True):
            bucket["kwh"] = round(float(value) * factor, 3)
    return {"unit": "kWh", "interval_minutes": int(INTERVAL.total_seconds() // 60), "buckets": buckets,
            "total_kwh": round(sum(b["kwh"] for b in buckets), 3)}


def completeness_today(scope: Scope, timezone: str = "UTC", now: dt.datetime | None = None) -> dict:
    """Complete profile rows since local midnight vs. capture times due, for the meters in the field
    (``app.services.gaps.expected_and_received``: the gaps API's and the completeness report's definition)."""
    from app.services.gaps import expected_and_received

    now = now or utcnow()
    since = local_day_start(now, zone(timezone))
    meters = db.session.execute(select(Meter.id, Meter.brand_id).where(
        Meter.status.in_(FIELD_STATUSES), *scope.meter_clauses())).all()
    counts = expected_and_received(meters, since, now).values()
    expected = sum(due for due, _got in counts)
    received = sum(min(got, due) for due, got in counts)
    percent = round(100.0 * received / expected, 1) if expected else None
    return {"since": since.isoformat(), "as_of": now.isoformat(), "meters": len(meters), "expected": expected,
            "received": received, "percent": percent}


def latest_events(scope: Scope, limit: int = 10) -> list[dict]:
    """The most recent meter events in scope, newest first."""
    stmt = (select(Event.id, Event.ts, Event.event_type, Event.code, Event.severity, Event.source, Meter.id,
                   Meter.number)
            .join(Meter, Event.meter_id == Meter.id)
            .where(*scope.meter_clauses())
            .order_by(Event.ts.desc(), Event.id.desc())
            .limit(limit))
    from app.services.events import event_type

    return [{"id": eid, "ts": ts.isoformat(), "event_type": etype, "title": event_type(etype).title, "code": code,
             "severity": str(severity),
             "source": source, "meter_id": meter_id, "meter_number": number}
            for eid, ts, etype, code, severity, source, meter_id, number in db.session.execute(stmt)]


def completeness_now(scope: Scope, timezone: str = "UTC") -> dict:
    """Today's completeness for a page or API call, from the last count (``app.services.recent``, with its
    ``as_of``): counting today's profile rows of 100,000 meters reads every reading since midnight (seconds)."""
    from app.services.recent import recent

    return recent("completeness_today", scope, timezone)


def dashboard_summary(scope: Scope, timezone: str = "UTC", now: dt.datetime | None = None) -> dict:
    """Every dashboard figure in one JSON-ready dict (at a given ``now``: every figure computed for that instant;
    else today's completeness may be up to a minute old, see :func:`completeness_now`)."""
    completeness = completeness_today(scope, timezone, now) if now else completeness_now(scope, timezone)
    now = now or utcnow()
    return {
        "generated_at": now.isoformat(),
        "area_id": scope.area_id,
        "meters": fleet_counts(scope),
        "active_alerts": active_alert_count(scope),
        "energy": energy_last_hour(scope, now),
        "completeness": completeness,
        "events": latest_events(scope),
    }
