"""Monthly consumption report for one area of 10,000 meters × 30 days, on SQLite and PostgreSQL, and the
streamed CSV of raw register readings (rows/s).

The daily rollups (10,000 × 30 rows, what the report reads) are filled directly with bulk inserts; raw
15-minute readings are bulk-loaded for ``--raw-meters`` meters (all 10,000 = 28.8 M readings) to time the
CSV stream. Goals: report < 2 s on PostgreSQL, < 5 s on SQLite; CSV > 200k rows/s.

    .venv/bin/python -m bench.bench_reports [--meters 10000] [--days 30] [--raw-meters 2000] [--no-pg]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
import uuid

import numpy as np
from sqlalchemy import create_engine, insert, text

from bench.common import bench_app, print_table

PG_URL = os.environ.get("HES_BENCH_PG_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
FIRST_DAY = dt.date(2026, 3, 1)


def _seed_fleet(meters: int) -> int:
    """A region with ten wards and ``meters`` meters spread over them; returns the region id."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Area, Meter, MeterBrand

    brand = db.session.execute(select(MeterBrand.id).where(MeterBrand.name == "hes_sim")).scalar_one()
    region = Area(name="Bench Region", code="BENCH")
    db.session.add(region)
    db.session.flush()
    wards = []
    for i in range(10):
        ward = Area(name=f"Bench Ward {i}", parent_id=region.id)
        db.session.add(ward)
        db.session.flush()
        wards.append(ward.id)
    db.session.execute(insert(Meter), [
        {"number": f"BM{i:08d}", "brand_id": brand, "area_id": wards[i % 10], "status": "active",
         "comm_mode": "dial_in", "online": False, "relay_state": "unknown"} for i in range(meters)])
    db.session.commit()
    return region.id


def _fill_daily(days: int, tz) -> int:
    """Daily rollups for every meter and local day; returns the row count."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import ConsumptionDaily, Meter
    from app.services.reports.periods import local_midnight

    ids = list(db.session.execute(select(Meter.id)).scalars())
    rng = np.random.default_rng(1)
    rows = 0
    for day in range(days):
        bucket = local_midnight(FIRST_DAY + dt.timedelta(days=day), tz)
        wh = rng.uniform(3000, 15000, len(ids))
        db.session.execute(insert(ConsumptionDaily), [
            {"meter_id": m, "bucket": bucket, "import_wh": float(w), "export_wh": 0.0, "intervals": 96,
             "on_time": 96} for m, w in zip(ids, wh, strict=True)])
        rows += len(ids)
    db.session.commit()
    return rows


def _fill_readings(raw_meters: int, days: int, tz) -> int:
    """15-minute import-register readings of the first ``raw_meters`` meters, bulk-loaded; returns the count."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Meter
    from app.services.ingest import channel_id
    from app.services.reports.periods import local_midnight
    from app.services.rollups import IMPORT_OBIS

    cid = channel_id(IMPORT_OBIS)
    db.session.commit()
    ids = list(db.session.execute(select(Meter.id).order_by(Meter.id).limit(raw_meters)).scalars())
    start = local_midnight(FIRST_DAY, tz)
    stamps = [start + dt.timedelta(minutes=15 * i) for i in range(days * 96)]
    steps = np.arange(len(stamps)) * 250.0
    conn = db.session.connection()
    if db.engine.dialect.name == "postgresql":
        # Generated server-side: one INSERT … SELECT over generate_series per batch of meters.
        for offset in range(0, len(ids), 500):
            conn.execute(text(
                "INSERT INTO reading (meter_id, channel_id, ts, value, quality, source, received_at) "
                "SELECT m, :cid, :start + s * interval '15 minutes', 10000.0 * m + 250.0 * s, 0, 0, "
                ":start + s * interval '15 minutes' FROM unnest(CAST(:ids AS integer[])) AS m, "
                "generate_series(0, :n - 1) AS s"), {"cid": cid, "start": start, "n": len(stamps),
                                                    "ids": ids[offset:offset + 500]})
    else:
        texts = [ts.strftime("%Y-%m-%d %H:%M:%S.%f") for ts in stamps]
        for m in ids:
            values = 10_000.0 * m + steps
            conn.exec_driver_sql(
                "INSERT INTO reading (meter_id, channel_id, ts, value, quality, source, received_at) "
                "VALUES (?, ?, ?, ?, 0, 0, ?)", [(m, cid, t, float(v), t) for t, v in zip(texts, values, strict=True)])
    db.session.commit()
    return len(ids) * len(stamps)


REPEAT = 10


def _p(samples: list[float], pct: int) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(pct / 100 * len(ordered)))]


def _straightforward(scope, start: dt.date, end: dt.date, tz) -> None:
    """What the report cost before the aggregates: per-day totals, per-meter sums and meters with data, each a
    GROUP BY over every meter-day row of the area in range."""
    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import ConsumptionDaily, Meter
    from app.services.reports.periods import utc_range

    lo, hi = utc_range(start, end, tz)
    rows = (ConsumptionDaily.bucket >= lo, ConsumptionDaily.bucket < hi,
            ConsumptionDaily.meter_id.in_(select(Meter.id).where(*scope.meter_clauses())))
    db.session.execute(select(ConsumptionDaily.bucket, func.sum(ConsumptionDaily.import_wh),
                              func.count(ConsumptionDaily.meter_id)).where(*rows).group_by(ConsumptionDaily.bucket)
                       ).all()
    db.session.execute(select(ConsumptionDaily.meter_id, func.sum(ConsumptionDaily.import_wh)).where(*rows)
                       .group_by(ConsumptionDaily.meter_id).order_by(func.sum(ConsumptionDaily.import_wh).desc())
                       .limit(100)).all()
    db.session.execute(select(func.count(func.distinct(ConsumptionDaily.meter_id))).where(*rows)).scalar()


def run_backend(name: str, url: str | None, meters: int, days: int, raw_meters: int) -> list[tuple]:
    """Seed one database, then time the report, its CSV and PDF, and the raw CSV stream."""
    app = bench_app(url, HES_TIMEZONE="Africa/Lagos")
    from app.services.reports.consumption import (
        consumption_csv,
        consumption_pdf,
        consumption_series,
        consumption_summary,
        meter_totals,
        readings_csv,
    )
    from app.services.reports.periods import utility_zone
    from app.services.scope import Scope

    out = []
    with app.test_request_context():
        tz = utility_zone()
        t0 = time.perf_counter()
        region = _seed_fleet(meters)
        daily = _fill_daily(days, tz)
        seeded = time.perf_counter() - t0
        t0 = time.perf_counter()
        readings = _fill_readings(raw_meters, days, tz)
        loaded = time.perf_counter() - t0
        if name == "postgresql":
            from app.extensions import db

            db.session.execute(text("ANALYZE"))
            db.session.commit()
        scope = Scope(area_id=region)
        start, end = FIRST_DAY, FIRST_DAY + dt.timedelta(days=days - 1)
        timings, baseline = [], []
        for _ in range(REPEAT):
            t0 = time.perf_counter()
            summary = consumption_summary(scope, start, end, tz)
            consumption_series(scope, start, end, "daily", tz)
            consumption_series(scope, start, end, "monthly", tz)
            meter_totals(scope, start, end, tz, limit=100)
            timings.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            _straightforward(scope, start, end, tz)
            baseline.append(time.perf_counter() - t0)
        assert summary["meters_with_data"] == meters, summary
        t0 = time.perf_counter()
        csv_rows = sum(chunk.count("\r\n") for chunk in consumption_csv(scope, start, end, "daily", tz)) - 1
        csv_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        pdf = consumption_pdf(scope, start, end, "daily", tz)
        pdf_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        raw_rows = sum(chunk.count("\r\n") for chunk in readings_csv(scope, start, end, tz)) - 1
        raw_seconds = time.perf_counter() - t0
        assert raw_rows == readings, (raw_rows, readings)
    goal = "< 2 s" if name == "postgresql" else "< 5 s"
    out.append((f"{name}: seed {meters:,} meters + {daily:,} daily rollups", f"{seeded:.1f} s", ""))
    out.append((f"{name}: bulk-load {readings:,} raw readings", f"{loaded:.1f} s", ""))
    out.append((f"{name}: monthly area report (summary, daily + monthly series, top meters), p50 / p95 of {REPEAT}",
                f"{_p(timings, 50):.3f} / {_p(timings, 95):.3f} s", goal))
    out.append((f"{name}: same-run baseline, the straightforward GROUP BYs over the meter-day rollup, p50 / p95",
                f"{_p(baseline, 50):.3f} / {_p(baseline, 95):.3f} s "
                f"({_p(baseline, 95) / _p(timings, 95):.1f}x the report's p95)", "baseline"))
    out.append((f"{name}: CSV per meter per day ({csv_rows:,} rows)", f"{csv_seconds:.2f} s "
                f"({csv_rows / csv_seconds:,.0f} rows/s)", ""))
    out.append((f"{name}: PDF ({len(pdf):,} bytes)", f"{pdf_seconds:.2f} s", ""))
    out.append((f"{name}: CSV stream of raw readings ({raw_rows:,} rows)",
                f"{raw_rows / raw_seconds:,.0f} rows/s", "> 200,000 rows/s"))
    with app.app_context():
        from app.extensions import db

        db.session.remove()
        db.engine.dispose()
    return out


def main() -> None:
    """Parse arguments, run SQLite then PostgreSQL (dedicated schema, dropped afterwards), print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--raw-meters", type=int, default=2_000, help="meters whose raw readings are loaded")
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    raw_meters = min(args.raw_meters, args.meters)
    rows = run_backend("sqlite", None, args.meters, args.days, raw_meters)
    if not args.no_pg:
        schema = f"hes_bench_{uuid.uuid4().hex[:8]}"
        engine = create_engine(PG_URL)
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            rows += run_backend("postgresql", f"{PG_URL}?options=-csearch_path%3D{schema}", args.meters, args.days,
                                raw_meters)
        finally:
            with engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            engine.dispose()
    print_table(f"Consumption reports: {args.meters:,} meters × {args.days} days (HES_TIMEZONE Africa/Lagos)", rows)


if __name__ == "__main__":
    main()
