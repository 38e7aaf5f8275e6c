"""Data completeness: profile intervals expected against received (and received on time, within
``HES_ON_TIME_HOURS``) per meter, area and local day. "Received" is a complete load-profile row,
the same definition the gaps API uses (``app.services.gaps``); on-time counts come from the rollups."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import gettext
from sqlalchemy import select

from app.extensions import db
from app.models import Area, ConsumptionDaily, Meter, MeterBrand, MeterStatus
from app.services.csvio import write_rows
from app.services.reports.base import N_, Chart, Report
from app.services.reports.common import scope_names
from app.services.reports.periods import check_range, local_days, utc_range
from app.services.scope import Scope

FIELD_STATUSES = (MeterStatus.installed, MeterStatus.active)
CSV_COLUMNS = [N_("Meter"), N_("Area"), N_("Date"), N_("Expected"), N_("Received"), N_("On time"),
               N_("Completeness (%)"), N_("On time (%)")]
AREA_COLUMNS = [N_("Area"), N_("Meters"), N_("Expected"), N_("Received"), N_("On time"), N_("Completeness (%)"),
                N_("On time (%)")]


def expected_intervals(day: dt.date, tz: ZoneInfo, period_minutes: int) -> int:
    """Profile intervals in a local day (fewer on a spring-forward day, more on a fall-back day)."""
    lo, hi = utc_range(day, day, tz)
    return int((hi - lo).total_seconds() // 60 // max(1, period_minutes))


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


def _meters(scope: Scope):
    return (select(Meter.id, Meter.number, Area.name, MeterBrand.profile_period_minutes, Meter.brand_id)
            .join(MeterBrand, MeterBrand.id == Meter.brand_id).outerjoin(Area, Area.id == Meter.area_id)
            .where(Meter.status.in_(FIELD_STATUSES), *scope.meter_clauses()))


def _received(scope: Scope, start: dt.date, end: dt.date, tz: ZoneInfo, meter_ids=None):
    lo, hi = utc_range(start, end, tz)
    stmt = select(ConsumptionDaily.meter_id, ConsumptionDaily.bucket, ConsumptionDaily.intervals,
                  ConsumptionDaily.on_time).where(ConsumptionDaily.bucket >= lo, ConsumptionDaily.bucket < hi)
    return stmt.where(ConsumptionDaily.meter_id.in_(meter_ids if meter_ids is not None else _meters(scope)
                                                    .with_only_columns(Meter.id)))


def _received_days(scope: Scope, meters: list, start: dt.date, end: dt.date,
                   tz: ZoneInfo) -> dict[tuple[int, dt.date], tuple[int, int]]:
    """(received, on time) per (meter id, local day): complete profile rows, as the gaps define them."""
    from app.services.gaps import received_per_day

    lo, hi = utc_range(start, end, tz)
    received = received_per_day(meters, lo, hi, tz)
    on_time = {(meter_id, bucket.astimezone(tz).date()): value for meter_id, bucket, _i, value in db.session.execute(
        _received(scope, start, end, tz, [m.id for m in meters]))}
    return {key: (got, min(got, on_time.get(key, 0))) for key, got in received.items()}


def completeness(scope: Scope, start: dt.date, end: dt.date, tz: ZoneInfo, worst: int = 50) -> dict:
    """Totals per day and per area, the overall figures, and the ``worst`` meters by completeness."""
    check_range(start, end)
    days = local_days(start, end)
    meters = db.session.execute(_meters(scope)).all()
    per_meter: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    per_day: dict[dt.date, list[int]] = {d: [0, 0, 0] for d in days}
    period_of = {m.id: m.profile_period_minutes for m in meters}
    expected_cache: dict[tuple[dt.date, int], int] = {}

    def expected(day: dt.date, period: int) -> int:
        if (day, period) not in expected_cache:
            expected_cache[(day, period)] = expected_intervals(day, tz, period)
        return expected_cache[(day, period)]

    for meter in meters:
        for day in days:
            exp = expected(day, meter.profile_period_minutes)
            per_meter[meter.id][0] += exp
            per_day[day][0] += exp
    for (meter_id, day), (intervals, on_time) in _received_days(scope, meters, start, end, tz).items():
        if meter_id not in period_of or day not in per_day:
            continue
        for acc in (per_meter[meter_id], per_day[day]):
            acc[1] += intervals
            acc[2] += on_time
    areas: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for meter in meters:
        acc = areas[meter.name or "(no area)"]
        acc[0] += 1
        for i in range(3):
            acc[i + 1] += per_meter[meter.id][i]
    totals = [sum(v[i] for v in per_day.values()) for i in range(3)]
    ranked = sorted(meters, key=lambda m: (per_meter[m.id][1] / per_meter[m.id][0] if per_meter[m.id][0] else 1,
                                           m.number))
    return {
        "summary": {"meters": len(meters), "expected": totals[0], "received": totals[1], "on_time": totals[2],
                    "completeness_pct": _pct(totals[1], totals[0]), "on_time_pct": _pct(totals[2], totals[0])},
        "days": [{"date": d.isoformat(), "expected": v[0], "received": v[1], "on_time": v[2],
                  "completeness_pct": _pct(v[1], v[0]), "on_time_pct": _pct(v[2], v[0])} for d, v in per_day.items()],
        "areas": [{"area": name, "meters": v[0], "expected": v[1], "received": v[2], "on_time": v[3],
                   "completeness_pct": _pct(v[2], v[1]), "on_time_pct": _pct(v[3], v[1])}
                  for name, v in sorted(areas.items())],
        "worst_meters": [{"meter": m.number, "area": m.name, "expected": per_meter[m.id][0],
                          "received": per_meter[m.id][1], "on_time": per_meter[m.id][2],
                          "completeness_pct": _pct(per_meter[m.id][1], per_meter[m.id][0])} for m in ranked[:worst]],
    }


def completeness_rows(scope: Scope, start: dt.date, end: dt.date, tz: ZoneInfo) -> Iterator[list]:
    """One row per meter and local day (days without data count as nothing received)."""
    days = local_days(start, end)
    meters = db.session.execute(_meters(scope).order_by(Meter.number)).all()
    for offset in range(0, len(meters), 1000):
        batch = meters[offset:offset + 1000]
        received = _received_days(scope, batch, start, end, tz)
        for meter in batch:
            for day in days:
                exp = expected_intervals(day, tz, meter.profile_period_minutes)
                got, on_time = received.get((meter.id, day), (0, 0))
                yield [meter.number, meter.name or "", day.isoformat(), exp, got, on_time,
                       _fmt(_pct(got, exp)), _fmt(_pct(on_time, exp))]


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def completeness_csv(scope: Scope, start: dt.date, end: dt.date, tz: ZoneInfo) -> Iterator[str]:
    """Per meter and day completeness as streamed CSV text."""
    check_range(start, end)
    return write_rows(CSV_COLUMNS, completeness_rows(scope, start, end, tz))


def completeness_pdf(scope: Scope, start: dt.date, end: dt.date, tz: ZoneInfo) -> bytes:
    """The completeness report as PDF: summary, chart per day and the per-area table with totals."""
    data = completeness(scope, start, end, tz)
    s = data["summary"]
    rows = [[a["area"], a["meters"], a["expected"], a["received"], a["on_time"], _fmt(a["completeness_pct"]),
             _fmt(a["on_time_pct"])] for a in data["areas"]]
    chart = Chart([d["date"] for d in data["days"]],
                  [(N_("Received %"), [d["completeness_pct"] or 0 for d in data["days"]]),
                   (N_("On time %"), [d["on_time_pct"] or 0 for d in data["days"]])], ylabel="%")
    hours = current_app.config.get("HES_ON_TIME_HOURS", 4)
    return Report.of(
        N_("Data Completeness"), AREA_COLUMNS, rows,
        filters={**scope_names(scope), N_("From"): start.isoformat(), N_("To"): end.isoformat(),
                 N_("Time zone"): tz.key, N_("On time"): gettext("within %(hours)s h", hours=hours)},
        summary=[(N_("Completeness"), f"{_fmt(s['completeness_pct'])}%"), (N_("On time"), f"{_fmt(s['on_time_pct'])}%"),
                 (N_("Intervals expected"), f"{s['expected']:,}"), (N_("Intervals received"), f"{s['received']:,}"),
                 (N_("Meters"), s["meters"])],
        chart=chart,
        totals=[N_("Total"), s["meters"], s["expected"], s["received"], s["on_time"], _fmt(s["completeness_pct"]),
                _fmt(s["on_time_pct"])]).pdf()
