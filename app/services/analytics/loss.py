"""Technical loss: the energy balance of every area that has a supply (feeder/transformer) meter.

Energy in is the supply meter's import; energy out is the import of every consumer meter in the area and
its sub-areas (supply meters of sub-areas are not consumers). Loss = in − out, as kWh and as % of in.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import func, select

from app.extensions import db
from app.models import Area, ConsumptionDaily, Meter, Severity
from app.services import Forbidden, ServiceError
from app.services.alerts import raise_alert
from app.services.analytics.series import supply_meter_ids
from app.services.reports.base import N_
from app.services.reports.periods import local_today, period_label, period_start, utc_range, utility_zone
from app.services.scope import Scope, area_ids_subquery

ALERT_TYPE = "technical_loss"
GRANULARITIES = ("daily", "monthly")
COLUMNS = [N_("Area"), N_("Supply meter"), N_("Period"), N_("Energy in (kWh)"), N_("Consumers (kWh)"),
           N_("Loss (kWh)"), N_("Loss (%)"), N_("Consumer meters reporting")]


def loss_threshold_pct() -> float:
    """Loss above this % of the energy in raises a "loss" alert (``HES_LOSS_THRESHOLD_PCT``, default 15)."""
    return float(current_app.config.get("HES_LOSS_THRESHOLD_PCT", 15) or 15)


def supplied_areas(scope: Scope) -> list[tuple[int, str, int, str]]:
    """(area id, full name, supply meter id, its number) of the areas in scope that have a supply meter."""
    if scope.customer_id is not None:
        raise Forbidden("Technical loss is not available to customers.")
    stmt = (select(Area, Meter.number).join(Meter, Meter.id == Area.supply_meter_id).order_by(Area.path))
    if scope.area_id is not None:
        stmt = stmt.where(Area.id.in_(area_ids_subquery(scope.area_id)))
    return [(area.id, area.full_name, area.supply_meter_id, number) for area, number in db.session.execute(stmt)]


def energy_balance(scope: Scope, start: dt.date, end: dt.date, granularity: str = "daily",
                   tz: ZoneInfo | None = None) -> list[dict]:
    """One row per supplied area and local day (or month) from ``start`` to ``end``."""
    if granularity not in GRANULARITIES:
        raise ServiceError(f"Unknown granularity '{granularity}' (use daily or monthly).")
    tz = tz or utility_zone()
    lo, hi = utc_range(start, end, tz)
    rows = []
    for area_id, name, supply_id, number in supplied_areas(scope):
        inflow: dict[dt.date, float] = defaultdict(float)
        outflow: dict[dt.date, float] = defaultdict(float)
        reporting: dict[dt.date, int] = defaultdict(int)
        for bucket, wh in db.session.execute(
                select(ConsumptionDaily.bucket, ConsumptionDaily.import_wh)
                .where(ConsumptionDaily.meter_id == supply_id, ConsumptionDaily.bucket >= lo,
                       ConsumptionDaily.bucket < hi)):
            inflow[period_start(bucket.astimezone(tz).date(), granularity)] += wh
        for bucket, wh, meters in db.session.execute(
                select(ConsumptionDaily.bucket, func.sum(ConsumptionDaily.import_wh),
                       func.count(ConsumptionDaily.meter_id))
                .join(Meter, Meter.id == ConsumptionDaily.meter_id)
                .where(Meter.area_id.in_(area_ids_subquery(area_id)), Meter.id.not_in(supply_meter_ids()),
                       ConsumptionDaily.bucket >= lo, ConsumptionDaily.bucket < hi)
                .group_by(ConsumptionDaily.bucket)):
            period = period_start(bucket.astimezone(tz).date(), granularity)
            outflow[period] += wh
            reporting[period] = max(reporting[period], int(meters))
        consumers = db.session.execute(select(func.count(Meter.id)).where(
            Meter.area_id.in_(area_ids_subquery(area_id)), Meter.id.not_in(supply_meter_ids()))).scalar()
        for period in sorted(set(inflow) | set(outflow)):
            e_in, e_out = inflow[period] / 1000.0, outflow[period] / 1000.0
            loss = e_in - e_out
            rows.append({"area_id": area_id, "area": name, "supply_meter": number,
                         "period": period_label(period, granularity), "energy_in_kwh": round(e_in, 3),
                         "consumers_kwh": round(e_out, 3), "loss_kwh": round(loss, 3),
                         "loss_pct": round(100.0 * loss / e_in, 2) if e_in > 0 else None,
                         "meters_reporting": reporting[period], "consumer_meters": int(consumers)})
    return rows


def balance_csv_rows(rows: list[dict]):
    """Energy-balance rows in the CSV/PDF column order."""
    for r in rows:
        yield [r["area"], r["supply_meter"], r["period"], f"{r['energy_in_kwh']:.3f}", f"{r['consumers_kwh']:.3f}",
               f"{r['loss_kwh']:.3f}", "" if r["loss_pct"] is None else f"{r['loss_pct']:.2f}",
               f"{r['meters_reporting']}/{r['consumer_meters']}"]


def check_losses(day: dt.date | None = None) -> list[dict]:
    """Raise a "loss" alert for every area whose loss on ``day`` (default: yesterday) exceeds the threshold."""
    tz = utility_zone()
    day = day or local_today(tz) - dt.timedelta(days=1)
    threshold = loss_threshold_pct()
    over = [r for r in energy_balance(Scope(), day, day, "daily", tz)
            if r["loss_pct"] is not None and r["loss_pct"] > threshold]
    for r in over:
        raise_alert(None, ALERT_TYPE, f"Technical loss {r['loss_pct']:.1f}% in {r['area']} on {r['period']}",
                    severity=Severity.critical if r["loss_pct"] > 2 * threshold else Severity.warning,
                    kind="loss", area_id=r["area_id"], details={**r, "threshold_pct": threshold}, commit=False)
    db.session.commit()
    return over
