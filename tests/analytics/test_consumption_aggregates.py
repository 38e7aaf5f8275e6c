"""The consumption answers (summary and largest meters) equal the straightforward computation on the same data:
one GROUP BY over the meter-day rollup joined to meters, customers and areas, as the reports did before."""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select, update

from app.extensions import db
from app.models import Area, ConsumptionDaily, Customer, Meter
from app.services.reports.common import kwh
from app.services.reports.consumption import (
    consumption_series,
    consumption_summary,
    daily_rows,
    meter_page,
    meter_totals,
    page_and_days,
)
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


def _straightforward_series(scope: Scope, start: dt.date, end: dt.date) -> list[tuple]:
    """(day, import kWh, export kWh, meters, intervals) per day with data, straight from the meter-day rollup."""
    lo, hi = utc_range(start, end, UTC)
    rows = db.session.execute(
        select(ConsumptionDaily.bucket, func.sum(ConsumptionDaily.import_wh), func.sum(ConsumptionDaily.export_wh),
               func.count(), func.sum(ConsumptionDaily.intervals))
        .join(Meter, Meter.id == ConsumptionDaily.meter_id)
        .where(ConsumptionDaily.bucket >= lo, ConsumptionDaily.bucket < hi, *scope.meter_clauses())
        .group_by(ConsumptionDaily.bucket).order_by(ConsumptionDaily.bucket)).all()
    return [(b.date().isoformat(), kwh(i), kwh(e), m, n) for b, i, e, m, n in rows]


def _assert_same_as_straightforward(scopes, start: dt.date, end: dt.date) -> None:
    for scope in scopes:
        expected_summary, expected_meters = _straightforward(scope, start, end)
        summary = consumption_summary(scope, start, end, UTC)
        assert {k: summary[k] for k in expected_summary} == expected_summary, scope
        assert meter_totals(scope, start, end, UTC, limit=None) == expected_meters, scope
        assert meter_page(scope, start, end, UTC, limit=3, offset=1) == (expected_meters[1:4], len(expected_meters))
        series = consumption_series(scope, start, end, "daily", UTC)
        assert [(p["period"], p["import_kwh"], p["export_kwh"], p["meters"], p["intervals"]) for p in series] \
            == _straightforward_series(scope, start, end), scope


def test_aggregates_follow_rollup_changes_area_moves_and_deleted_meters(app, fleet):
    """The per-area and running aggregates are kept by the database: after rollup rows are revised, deleted and
    added in the middle of a meter's history, a meter moves to the other ward and another is deleted, every
    answer still equals the straightforward query."""
    first = dt.date(2026, 6, 1)
    start, end = first + dt.timedelta(days=3), first + dt.timedelta(days=12)
    scopes = (Scope(), Scope(area_id=fleet.region), Scope(area_id=fleet.ward_a), Scope(area_id=fleet.ward_b),
              Scope(meter_id=fleet.meters["A2"]))
    with app.app_context():
        for n, meter in enumerate(fleet.meters.values()):
            fill_days(meter, first, [None if (n + d) % 5 == 0 else float(n + d) for d in range(16)],
                      export_kwh=0.25 * (n % 2))
        _assert_same_as_straightforward(scopes, start, end)
        a2, a3, b1 = fleet.meters["A2"], fleet.meters["A3"], fleet.meters["B1"]
        day = lambda d: dt.datetime.combine(first + dt.timedelta(days=d), dt.time(0), tzinfo=UTC)  # noqa: E731
        db.session.execute(update(ConsumptionDaily).where(ConsumptionDaily.meter_id == a2,
                                                          ConsumptionDaily.bucket == day(6))
                           .values(import_wh=ConsumptionDaily.import_wh + 4500.0, intervals=90))
        db.session.execute(delete(ConsumptionDaily).where(ConsumptionDaily.meter_id == a3,
                                                          ConsumptionDaily.bucket.in_([day(1), day(8)])))
        assert db.session.get(ConsumptionDaily, (a2, day(9))) is None  # A2 has no row that day: one is added
        db.session.execute(insert(ConsumptionDaily), [{"meter_id": a2, "bucket": day(9), "import_wh": 7000.0,
                                                       "export_wh": 0.0, "intervals": 96, "on_time": 96}])
        db.session.execute(update(Meter).where(Meter.id == b1).values(area_id=fleet.ward_a))
        db.session.commit()
        _assert_same_as_straightforward(scopes, start, end)
        db.session.execute(delete(Meter).where(Meter.id == a3))
        db.session.commit()
        _assert_same_as_straightforward(scopes, start, end)
        _assert_same_as_straightforward(scopes, first, first + dt.timedelta(days=15))


def test_page_and_days_in_one_pass_equal_the_page_and_the_days_apart(app, fleet):
    """``page_and_days`` (one GROUPING SETS pass on PostgreSQL) gives what ``meter_page`` and ``daily_rows`` give
    apart: the same page in the same order (meters tied on import ordered by number), the same count of meters
    with data, the same per-day rows — for every scope, an empty page past the end and a range without data."""
    first = dt.date(2026, 7, 1)
    start, end = first + dt.timedelta(days=2), first + dt.timedelta(days=11)
    scopes = (Scope(), Scope(area_id=fleet.region), Scope(area_id=fleet.ward_a), Scope(meter_id=fleet.meters["A2"]))
    with app.app_context():
        for n, meter in enumerate(fleet.meters.values()):
            # Every other meter has the same energy each day: ties on the total that only the number breaks.
            fill_days(meter, first, [None if (n + d) % 7 == 0 else (5.0 if n % 2 else float(n + d))
                                     for d in range(14)], export_kwh=0.5 * (n % 2))
        for scope in scopes:
            for lo, hi, limit, offset in ((start, end, 100, 0), (start, end, 2, 1), (start, end, None, 0),
                                          (start, end, 3, 50), (first + dt.timedelta(days=40),
                                                                first + dt.timedelta(days=45), 100, 0)):
                meters, with_data = meter_page(scope, lo, hi, UTC, limit=limit, offset=offset)
                per_day = daily_rows(scope, lo, hi, UTC)
                assert page_and_days(scope, lo, hi, UTC, limit=limit, offset=offset) == (meters, with_data, per_day), \
                    (scope, lo, limit, offset)
        whole = meter_page(Scope(), start, end, UTC, limit=None)[0]
        tied = [m for m in whole if m["import_kwh"] == whole[-1]["import_kwh"]]
        assert len(tied) > 1 and [m["meter"] for m in tied] == sorted(m["meter"] for m in tied)
