"""Consumption statistics per meter or area (with sub-areas): hourly, daily, weekly and monthly totals in the
utility's zone for any date range, read from the rollups — never by scanning raw readings — plus the raw
register readings as a streamed CSV.

At fleet scale the answers come from aggregates the database keeps as the daily rollup changes (migration
0090): per area and day for the series and totals, and per meter running totals for the largest meters and the
count of meters with data, so a request reads a few rows a day and two a meter instead of one per meter-day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from flask_babel import gettext
from sqlalchemy import (
    DateTime,
    Integer,
    String,
    and_,
    cast,
    func,
    literal,
    null,
    select,
    tuple_,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import aliased

from app.extensions import db
from app.models import (
    Area,
    Channel,
    ConsumptionAreaDaily,
    ConsumptionDaily,
    ConsumptionDailyRunning,
    ConsumptionHourly,
    Customer,
    Meter,
    Reading,
)
from app.services.csvio import write_rows
from app.services.reports.base import N_, Chart, Report, capped
from app.services.reports.common import kwh, scope_names
from app.services.reports.periods import check_range, period_label, period_start, utc_range
from app.services.scope import Scope, area_ids_subquery

CSV_COLUMNS = [N_("Meter"), N_("Customer"), N_("Area"), N_("Period"), N_("Import (kWh)"), N_("Export (kWh)"),
               N_("Net (kWh)"), N_("Intervals")]
METER_COLUMNS = [N_("Meter"), N_("Customer"), N_("Area"), N_("Import (kWh)"), N_("Export (kWh)"), N_("Net (kWh)"),
                 N_("Intervals")]
READING_COLUMNS = [N_("Meter"), N_("Register"), N_("Time"), N_("Value (kWh)")]
ENERGY_OBIS = ("1.0.1.8.0.255", "1.0.2.8.0.255")


def _table(granularity: str):
    return ConsumptionHourly if granularity == "hourly" else ConsumptionDaily


def _scoped(stmt, model, scope: Scope):
    return stmt.where(model.meter_id.in_(scope.meter_ids())) if scope.restricted else stmt


def _per_bucket(scope: Scope, model, lo: dt.datetime, hi: dt.datetime):
    """SELECT of (bucket, import Wh, export Wh, meters with a row, intervals) per rollup bucket with data.

    On SQLite the fleet or an area reads the per-area daily aggregate (a few rows a day, kept by triggers as the
    rollup changes); PostgreSQL (concurrent writers: a shared per-area row would serialise ingest, migration 0130)
    and a customer or one meter read the meter-day rows. Hours are read from the meter-hour rows."""
    if model is ConsumptionDaily and scope.customer_id is None and scope.meter_id is None \
            and db.engine.dialect.name == "sqlite":
        agg = ConsumptionAreaDaily
        stmt = (select(agg.bucket, func.sum(agg.import_wh), func.sum(agg.export_wh), func.sum(agg.meters),
                       func.sum(agg.intervals))
                .where(agg.bucket >= lo, agg.bucket < hi).group_by(agg.bucket).having(func.sum(agg.meters) > 0)
                .order_by(agg.bucket))
        return stmt.where(agg.area_id.in_(area_ids_subquery(scope.area_id))) if scope.area_id is not None else stmt
    stmt = (select(model.bucket, func.sum(model.import_wh), func.sum(model.export_wh), func.count(model.meter_id),
                   func.sum(model.intervals))
            .where(model.bucket >= lo, model.bucket < hi).group_by(model.bucket).order_by(model.bucket))
    if model is ConsumptionHourly and not scope.restricted and db.engine.dialect.name == "sqlite":
        # No index on the hourly bucket there (migration 0170): every meter's hours through its primary key.
        return stmt.where(model.meter_id.in_(scope.meter_ids()))
    return _scoped(stmt, model, scope)


def daily_rows(scope: Scope, start: dt.date, end: dt.date, tz: ZoneInfo) -> list[tuple]:
    """(bucket, import Wh, export Wh, meters, intervals) per day with data: what the summary and the daily, weekly
    and monthly series are made of (read once when a request needs both)."""
    check_range(start, end)
    lo, hi = utc_range(start, end, tz)
    return [tuple(row) for row in db.session.execute(_per_bucket(scope, ConsumptionDaily, lo, hi))]


def consumption_series(scope: Scope, start: dt.date, end: dt.date, granularity: str, tz: ZoneInfo, *,
                       per_day: list[tuple] | None = None) -> list[dict]:
    """Totals of the meters in scope per local hour, day, ISO week or month (only periods with data); ``per_day``
    is :func:`daily_rows` when the caller read them already (not for hourly)."""
    check_range(start, end, granularity)
    lo, hi = utc_range(start, end, tz)
    if per_day is None or granularity == "hourly":
        per_day = db.session.execute(_per_bucket(scope, _table(granularity), lo, hi))
    periods: dict[object, list] = {}
    for bucket, imp, exp, meters, intervals in per_day:
        local = bucket.astimezone(tz)
        key = local if granularity == "hourly" else period_start(local.date(), granularity)
        acc = periods.setdefault(key, [0.0, 0.0, 0, 0])
        acc[0] += imp or 0.0
        acc[1] += exp or 0.0
        acc[2] = max(acc[2], int(meters))
        acc[3] += int(intervals or 0)
    return [{"period": period_label(key, granularity), "start": key.isoformat(), "import_kwh": kwh(i),
             "export_kwh": kwh(e), "net_kwh": kwh(i - e), "meters": m, "intervals": n}
            for key, (i, e, m, n) in periods.items()]


def _meters_with_totals():
    """SELECT of the distinct meters that have running totals, walked as a skip scan of the primary key (one index
    probe a meter: neither SQLite nor PostgreSQL skips through an index by itself), so the fleet's report visits
    the meters with data rather than every meter in the registry."""
    run, following = ConsumptionDailyRunning, aliased(ConsumptionDailyRunning, name="next_total")
    walk = select(select(func.min(run.meter_id)).scalar_subquery().label("meter_id")).cte("with_totals",
                                                                                        recursive=True)
    walk = walk.union_all(select(select(func.min(following.meter_id)).where(following.meter_id > walk.c.meter_id)
                                 .scalar_subquery()).where(walk.c.meter_id.is_not(None)))
    return select(walk.c.meter_id).where(walk.c.meter_id.is_not(None)).subquery("meters_with_totals")


def _meter_sums(scope: Scope, start: dt.date, end: dt.date, tz: ZoneInfo):
    """Per meter in scope with data in the range: energy, intervals and days with data, as the difference of
    its running totals at the range's two ends (a few index probes a meter, whatever the length of the range).

    The fleet walks the meters that have running totals; a narrower scope its own meters. On PostgreSQL each
    probe costs tens of microseconds of executor overhead: its parallel hash aggregate over the range's meter-day
    rows was faster at 10,000 meters with data (bench/RESULTS.md, issue 13), so it sums those rows instead."""
    lo, hi = utc_range(start, end, tz)
    if db.engine.dialect.name == "postgresql":
        daily = ConsumptionDaily
        return _scoped(select(daily.meter_id, func.sum(daily.import_wh).label("imp"),
                              func.sum(daily.export_wh).label("exp"), func.sum(daily.intervals).label("n"),
                              func.count().label("days"))
                       .where(daily.bucket >= lo, daily.bucket < hi).group_by(daily.meter_id), daily, scope)
    run = ConsumptionDailyRunning

    def last(meter_id, *clauses):
        return select(func.max(run.bucket)).where(run.meter_id == meter_id, *clauses).scalar_subquery()

    # The meter's last day with data in the range (none: the meter is left out after one probe), then its last
    # day before the range. OFFSET 0 keeps each step a subquery of its own: flattened into the join, SQLite
    # scanned every running-total row and probed for each.
    if scope.restricted:
        with_data = (select(Meter.id.label("meter_id"),
                            last(Meter.id, run.bucket >= lo, run.bucket < hi).correlate(Meter).label("upper"))
                     .where(*scope.meter_clauses()).offset(0).subquery())
    else:
        walked = _meters_with_totals()
        with_data = (select(walked.c.meter_id,
                            last(walked.c.meter_id, run.bucket >= lo, run.bucket < hi).correlate(walked)
                            .label("upper")).offset(0).subquery())
    ends = (select(with_data.c.meter_id, with_data.c.upper,
                   last(with_data.c.meter_id, run.bucket < lo).correlate(with_data).label("lower"))
            .where(with_data.c.upper.is_not(None)).offset(0).subquery())
    upper, lower = aliased(run, name="upper_total"), aliased(run, name="lower_total")

    def between(column: str, name: str):
        return (getattr(upper, column) - func.coalesce(getattr(lower, column), 0)).label(name)

    return (select(ends.c.meter_id, between("import_wh", "imp"), between("export_wh", "exp"),
                   between("intervals", "n"), between("days", "days"))
            .join(upper, and_(upper.meter_id == ends.c.meter_id, upper.bucket == ends.c.upper))
            .outerjoin(lower, and_(lower.meter_id == ends.c.meter_id, lower.bucket == ends.c.lower)))


def meter_totals(scope: Scope, start: dt.date, end: dt.date, tz: ZoneInfo, *, limit: int | None = 100,
                 offset: int = 0) -> list[dict]:
    """Per meter in scope: its energy over the range, largest consumers first."""
    return meter_page(scope, start, end, tz, limit=limit, offset=offset)[0]


def meter_page(scope: Scope, start: dt.date, end: dt.date, tz: ZoneInfo, *, limit: int | None = 100,
               offset: int = 0) -> tuple[list[dict], int]:
    """A page of :func:`meter_totals` and how many meters have data in the range, from one pass over the meters.

    The page of meters is chosen from the per-meter sums first; meter, customer and area names are joined for
    that page only (joining them before grouping made SQLite sort every meter-day row)."""
    check_range(start, end)
    sums = _meter_sums(scope, start, end, tz).subquery()
    top = (select(sums.c.meter_id, Meter.number, sums.c.imp, sums.c.exp, sums.c.n,
                  func.count().over().label("meters"))
           .join(Meter, Meter.id == sums.c.meter_id).order_by(sums.c.imp.desc(), Meter.number))
    if limit is not None:
        top = top.limit(limit).offset(offset)
    top = top.subquery()
    stmt = (select(top.c.meter_id, top.c.number, Customer.name, Area.name, top.c.imp, top.c.exp, top.c.n,
                   top.c.meters)
            .join(Meter, Meter.id == top.c.meter_id)
            .outerjoin(Customer, Customer.id == Meter.customer_id)
            .outerjoin(Area, Area.id == Meter.area_id)
            .order_by(top.c.imp.desc(), top.c.number))
    rows = db.session.execute(stmt).all()
    meters = rows[0][-1] if rows else meters_with_data(scope, start, end, tz)
    return [{"meter_id": mid, "meter": number, "customer": customer, "area": area, "import_kwh": kwh(i),
             "export_kwh": kwh(e), "net_kwh": kwh((i or 0) - (e or 0)), "intervals": int(n or 0)}
            for mid, number, customer, area, i, e, n, _count in rows], int(meters)


def page_and_days(scope: Scope, start: dt.date, end: dt.date, tz: ZoneInfo, *, limit: int | None = 100,
                  offset: int = 0) -> tuple[list[dict], int, list[tuple]]:
    """:func:`meter_page` and :func:`daily_rows` together: (page of meters, meters with data, rows per day).

    On PostgreSQL both come from one pass over the range's meter-day rows, ``GROUP BY GROUPING SETS ((meter_id),
    (bucket))``: the per-meter sums and the per-day sums of one hash aggregate, instead of two aggregates each
    reading the same rows. The page keeps :func:`meter_page`'s order (largest import first, ties by meter
    number) and the per-day rows :func:`daily_rows`' columns and order. Elsewhere the two functions are called."""
    check_range(start, end)
    if db.engine.dialect.name != "postgresql":
        meters, with_data = meter_page(scope, start, end, tz, limit=limit, offset=offset)
        return meters, with_data, daily_rows(scope, start, end, tz)
    lo, hi = utc_range(start, end, tz)
    daily = ConsumptionDaily
    sums = _scoped(select(daily.meter_id, daily.bucket, func.sum(daily.import_wh).label("imp"),
                          func.sum(daily.export_wh).label("exp"), func.sum(daily.intervals).label("n"),
                          func.count().label("day_meters"), func.grouping(daily.meter_id).label("per_day"))
                   .where(daily.bucket >= lo, daily.bucket < hi)
                   .group_by(func.grouping_sets(tuple_(daily.meter_id), tuple_(daily.bucket))),
                   daily, scope).cte("meter_and_day_sums")
    with_data = select(func.count()).select_from(sums).where(sums.c.per_day == 0).scalar_subquery()
    top = (select(sums.c.meter_id, Meter.number, sums.c.imp, sums.c.exp, sums.c.n)
           .join(Meter, Meter.id == sums.c.meter_id).where(sums.c.per_day == 0)
           .order_by(sums.c.imp.desc(), Meter.number))
    if limit is not None:
        top = top.limit(limit).offset(offset)
    top = top.subquery()
    page = (select(literal(0).label("kind"), top.c.meter_id, top.c.number, Customer.name.label("customer"),
                   Area.name.label("area"), cast(null(), DateTime(timezone=True)).label("bucket"), top.c.imp,
                   top.c.exp, top.c.n, cast(null(), Integer).label("day_meters"), with_data.label("meters"))
            .join(Meter, Meter.id == top.c.meter_id)
            .outerjoin(Customer, Customer.id == Meter.customer_id)
            .outerjoin(Area, Area.id == Meter.area_id))
    days = select(literal(1).label("kind"), cast(null(), Integer).label("meter_id"),
                  cast(null(), String).label("number"), cast(null(), String).label("customer"),
                  cast(null(), String).label("area"), sums.c.bucket, sums.c.imp, sums.c.exp, sums.c.n,
                  sums.c.day_meters, with_data.label("meters")).where(sums.c.per_day == 1)
    both = union_all(page, days).subquery("page_and_days")
    rows = db.session.execute(select(both).order_by(both.c.kind, both.c.bucket, both.c.imp.desc(),
                                                    both.c.number)).all()
    meters = [{"meter_id": mid, "meter": number, "customer": customer, "area": area, "import_kwh": kwh(i),
               "export_kwh": kwh(e), "net_kwh": kwh((i or 0) - (e or 0)), "intervals": int(n or 0)}
              for kind, mid, number, customer, area, _bucket, i, e, n, _rows, _count in rows if kind == 0]
    per_day = [(bucket, i, e, count, n) for kind, _mid, _number, _c, _a, bucket, i, e, n, count, _m in rows
               if kind == 1]
    return meters, int(rows[0][-1]) if rows else 0, per_day


def meters_with_data(scope: Scope, start: dt.date, end: dt.date, tz: ZoneInfo) -> int:
    """How many meters in scope have a daily rollup row in the range."""
    return int(db.session.execute(select(func.count()).select_from(_meter_sums(scope, start, end, tz).subquery())
                                  ).scalar())


def consumption_summary(scope: Scope, start: dt.date, end: dt.date, tz: ZoneInfo, *,
                        meters: int | None = None, per_day: list[tuple] | None = None) -> dict:
    """Totals over the range: energy, meters with data (``meters`` when the caller counted them already, as
    :func:`meter_page` does), meters in scope, average per meter and per day (``per_day``: :func:`daily_rows`
    when the caller read them already)."""
    check_range(start, end)
    per_day = daily_rows(scope, start, end, tz) if per_day is None else per_day
    imp, exp = sum(row[1] or 0.0 for row in per_day), sum(row[2] or 0.0 for row in per_day)
    days_with_data = len(per_day)
    meters = meters_with_data(scope, start, end, tz) if meters is None else meters
    in_scope = db.session.execute(select(func.count(Meter.id)).where(*scope.meter_clauses())).scalar()
    # "Per day" is over the days that have data: a range of 30 days with 7 days of readings is not 30 days of use.
    return {"start": start.isoformat(), "end": end.isoformat(), "days": (end - start).days + 1,
            "days_with_data": int(days_with_data), "import_kwh": kwh(imp), "export_kwh": kwh(exp),
            "net_kwh": kwh(imp - exp), "meters_with_data": int(meters), "meters": int(in_scope),
            "avg_kwh_per_meter": kwh(imp / meters) if meters else 0.0,
            "avg_kwh_per_day": kwh(imp / days_with_data) if days_with_data else 0.0}


def _stream(stmt, batch: int = 5000) -> Iterator:
    """Rows of a SELECT from a connection of its own, so a download streams after the request's session ends."""
    with db.engine.connect() as conn:
        yield from conn.execution_options(stream_results=True, yield_per=batch).execute(stmt)


def consumption_rows(scope: Scope, start: dt.date, end: dt.date, granularity: str, tz: ZoneInfo
                     ) -> Iterator[list]:
    """One row per meter and period (kWh), meters in number order; weekly and monthly fold local days."""
    check_range(start, end, granularity)
    model = _table(granularity)
    lo, hi = utc_range(start, end, tz)
    stmt = (select(Meter.number, Customer.name, Area.name, model.bucket, model.import_wh, model.export_wh,
                   model.intervals)
            .join(Meter, Meter.id == model.meter_id)
            .outerjoin(Customer, Customer.id == Meter.customer_id)
            .outerjoin(Area, Area.id == Meter.area_id)
            .where(model.bucket >= lo, model.bucket < hi, *scope.meter_clauses())
            .order_by(Meter.number, model.bucket))
    labels: dict[dt.datetime, str] = {}

    def label(bucket: dt.datetime) -> str:
        if bucket not in labels:
            local = bucket.astimezone(tz)
            labels[bucket] = period_label(local if granularity == "hourly"
                                          else period_start(local.date(), granularity), granularity)
        return labels[bucket]

    current: list | None = None
    for number, customer, area, bucket, imp, exp, intervals in _stream(stmt):
        key = (number, label(bucket))
        if current is not None and current[0] == key:
            current[1] += imp
            current[2] += exp
            current[3] += intervals
            continue
        if current is not None:
            yield _row(current)
        current = [key, imp, exp, intervals, customer or "", area or ""]
    if current is not None:
        yield _row(current)


def _row(acc: list) -> list:
    (number, period), imp, exp, intervals, customer, area = acc
    return [number, customer, area, period, f"{imp / 1000:.3f}", f"{exp / 1000:.3f}", f"{(imp - exp) / 1000:.3f}",
            intervals]


def consumption_csv(scope: Scope, start: dt.date, end: dt.date, granularity: str, tz: ZoneInfo
                    ) -> Iterator[str]:
    """The per-meter, per-period consumption as streamed CSV text."""
    check_range(start, end, granularity)
    return write_rows(CSV_COLUMNS, consumption_rows(scope, start, end, granularity, tz))


def reading_rows(scope: Scope, start: dt.date, end: dt.date, tz: ZoneInfo) -> Iterator[tuple]:
    """The raw energy-register readings (kWh) in range, by meter, register and time; times in the local zone."""
    check_range(start, end)
    lo, hi = utc_range(start, end, tz)
    channels = dict(db.session.execute(select(Channel.id, Channel.obis).where(Channel.obis.in_(ENERGY_OBIS))).all())
    if not channels:
        return
    numbers = dict(db.session.execute(select(Meter.id, Meter.number).where(*scope.meter_clauses())).all())
    sqlite = db.engine.dialect.name == "sqlite"
    # The stored instant is read without per-row conversion (text on SQLite, an aware datetime from the driver
    # on PostgreSQL) and formatted once per distinct instant.
    ts_column = type_coerce(Reading.ts, String if sqlite else DateTime(timezone=True))
    stmt = (select(Reading.meter_id, Reading.channel_id, ts_column, Reading.value)
            .where(Reading.channel_id.in_(list(channels)), Reading.ts >= lo, Reading.ts < hi)
            .order_by(Reading.meter_id, Reading.channel_id, Reading.ts))
    if scope.restricted:
        stmt = stmt.where(Reading.meter_id.in_(scope.meter_ids()))
    labels: dict = {}
    for meter_id, channel_id, ts, value in _stream(stmt, 20000):
        text = labels.get(ts)
        if text is None:
            moment = dt.datetime.fromisoformat(ts).replace(tzinfo=dt.UTC) if sqlite else ts
            text = labels[ts] = moment.astimezone(tz).isoformat(sep=" ", timespec="seconds")
        yield numbers.get(meter_id, meter_id), channels[channel_id], text, value / 1000.0


def readings_csv(scope: Scope, start: dt.date, end: dt.date, tz: ZoneInfo) -> Iterator[str]:
    """The raw energy-register readings as streamed CSV text."""
    check_range(start, end)
    return write_rows(READING_COLUMNS, reading_rows(scope, start, end, tz))


PERIOD_COLUMNS = [N_("Period"), N_("Import (kWh)"), N_("Export (kWh)"), N_("Net (kWh)"), N_("Meters reporting"),
                  N_("Intervals")]
GRANULARITIES = {"hourly": N_("Hourly"), "daily": N_("Daily"), "weekly": N_("Weekly"), "monthly": N_("Monthly")}


def consumption_pdf(scope: Scope, start: dt.date, end: dt.date, granularity: str, tz: ZoneInfo) -> bytes:
    """The consumption report as PDF: filters, summary, chart of the periods, and the period table with totals."""
    series = consumption_series(scope, start, end, granularity, tz)
    summary = consumption_summary(scope, start, end, tz)
    rows = [[p["period"], f"{p['import_kwh']:.3f}", f"{p['export_kwh']:.3f}", f"{p['net_kwh']:.3f}", p["meters"],
             p["intervals"]] for p in series]
    rows, note = capped(rows, len(rows))
    totals = [N_("Total"), f"{sum(p['import_kwh'] for p in series):.3f}",
              f"{sum(p['export_kwh'] for p in series):.3f}", f"{sum(p['net_kwh'] for p in series):.3f}",
              summary["meters_with_data"], sum(p["intervals"] for p in series)]
    chart = Chart([p["period"] for p in series], [(N_("Import (kWh)"), [p["import_kwh"] for p in series])] + (
        [(N_("Export (kWh)"), [p["export_kwh"] for p in series])] if summary["export_kwh"] else []),
        kind="line" if granularity == "hourly" else "bar")
    return Report.of(
        N_("Energy Consumption"), PERIOD_COLUMNS, rows,
        filters={**scope_names(scope), N_("From"): start.isoformat(), N_("To"): end.isoformat(),
                 N_("Granularity"): gettext(GRANULARITIES.get(granularity, granularity)), N_("Time zone"): tz.key},
        summary=[(N_("Import (kWh)"), f"{summary['import_kwh']:,.3f}"),
                 (N_("Export (kWh)"), f"{summary['export_kwh']:,.3f}"),
                 (N_("Meters with data"), f"{summary['meters_with_data']} / {summary['meters']}"),
                 (N_("Average per meter (kWh)"), f"{summary['avg_kwh_per_meter']:,.3f}"),
                 (N_("Average per day (kWh)"), f"{summary['avg_kwh_per_day']:,.3f}")],
        chart=chart, totals=totals, note=note).pdf()
