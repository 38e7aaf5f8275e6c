"""The consumption answers (summary and largest meters) equal the straightforward computation on the same data:
one GROUP BY over the meter-day rollup joined to meters, customers and areas, as the reports did before."""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from app.extensions import db
from app.models import Area, ConsumptionDaily, Customer, Meter
from app.services.reports.common import kwh
from app.services.reports.consumption import consumption_summary, meter_totals
from app.services.reports.periods import utc_range
from app.services.scope import Scope
from tests.analytics.conftest import fill_days

UTC = ZoneInfo("UTC")


def _straightforward(scope: Scope, start: dt.date, end: dt.date) -> tuple[dict, list[dict]]:
    lo, hi = utc_range(start, end, UTC)
    rows = db.session.execute(
        select(Meter.id, Meter.number, Customer.name, Area.name, func.sum(ConsumptionDaily.import_wh),
               func.sum(ConsumptionDaily.export_wh), func.sum(ConsumptionDaily.intervals))
        .join(Meter, Meter.id == ConsumptionDaily.meter_id)
        .outerjoin(Customer, Customer.id == Meter.customer_id).outerjoin(Area, Area.id == Meter.area_id)
        .where(ConsumptionDaily.bucket >= lo, ConsumptionDaily.bucket < hi, *scope.meter_clauses())
        .group_by(Meter.id, Meter.number, Customer.name, Area.name)
        .order_by(func.sum(ConsumptionDaily.import_wh).desc(), Meter.number)).all()
    days = db.session.execute(select(func.count(func.distinct(ConsumptionDaily.bucket))).where(
        ConsumptionDaily.bucket >= lo, ConsumptionDaily.bucket < hi,
        ConsumptionDaily.meter_id.in_([r[0] for r in rows]))).scalar()
    imp, exp = sum(r[4] for r in rows), sum(r[5] for r in rows)
    summary = {"import_kwh": kwh(imp), "export_kwh": kwh(exp), "meters_with_data": len(rows),
               "days_with_data": days}
    return summary, [{"meter_id": r[0], "meter": r[1], "customer": r[2], "area": r[3], "import_kwh": kwh(r[4]),
                      "export_kwh": kwh(r[5]), "net_kwh": kwh(r[4] - r[5]), "intervals": int(r[6])} for r in rows]


def test_summary_and_largest_meters_equal_the_straightforward_answer(app, fleet):
    rnd = random.Random(13)
    first = dt.date(2026, 5, 1)
    with app.app_context():
        for n, meter in enumerate(fleet.meters.values()):
            fill_days(meter, first + dt.timedelta(days=n), [None if rnd.random() < 0.2 else round(rnd.uniform(0, 30), 2)
                                                            for _ in range(20)], export_kwh=0.5 * (n % 3))
        for scope in (Scope(), Scope(area_id=fleet.ward_a), Scope(meter_id=fleet.meters["B1"])):
            for start, end in ((first, first + dt.timedelta(days=29)), (first + dt.timedelta(days=5), first +
                                                                          dt.timedelta(days=9))):
                expected_summary, expected_meters = _straightforward(scope, start, end)
                summary = consumption_summary(scope, start, end, UTC)
                assert {k: summary[k] for k in expected_summary} == expected_summary
                assert expected_summary["meters_with_data"] > 0
                assert meter_totals(scope, start, end, UTC, limit=None) == expected_meters
                assert meter_totals(scope, start, end, UTC, limit=2, offset=1) == expected_meters[1:3]
