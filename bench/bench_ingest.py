"""Ingest benchmark (issue 4a): decoded readings into the database through the storage service
(staged merge with revision check, rollups in the same transaction), next to a raw ``executemany`` (SQLite) / ``COPY``
(PostgreSQL) of the same number of rows into the same table in the same run.
Goals (issue 13): at least 0.85x raw executemany on SQLite, 0.75x raw binary COPY on PostgreSQL, measured in
the same run with the two interleaved batch by batch."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
import uuid

from bench.common import bench_app, print_table

UTC = dt.UTC
CHANNELS = ("1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.32.27.0.255", "1.0.31.27.0.255")
START = dt.datetime(2026, 1, 1, tzinfo=UTC)


def batches(meter_ids: list[int], days: int, start: dt.datetime = START, overlap: bool = False):
    """One profile read per meter per day: 96 intervals x 4 channels. ``overlap``: after the first day each read
    brings the day before's last interval again, as the collector's do (a profile is read from its cursor's time
    on, the last stored interval included)."""
    from app.services.ingest import Value

    for day in range(days):
        for meter_id in meter_ids:
            values = []
            for slot in range(-1 if overlap and day else 0, 96):
                ts = start + dt.timedelta(days=day, minutes=15 * slot)
                base = (day * 96 + slot) * 250.0
                values += [Value(meter_id, CHANNELS[0], ts, 1e6 + base), Value(meter_id, CHANNELS[1], ts, 0.0),
                           Value(meter_id, CHANNELS[2], ts, 230.1), Value(meter_id, CHANNELS[3], ts, 4.2)]
            yield values


def make_meters(prefix: str, count: int, start: dt.datetime = START) -> list[int]:
    from app.extensions import db
    from app.models import Meter, MeterBrand

    brand = db.session.execute(db.select(MeterBrand.id).where(MeterBrand.name == "hes_sim")).scalar_one()
    # Installed a month before the first day, as a fleet's meters are (the service screens stamps against it).
    installed = start - dt.timedelta(days=30)
    db.session.execute(db.insert(Meter), [{"number": f"{prefix}{i:07d}", "brand_id": brand, "installed_at": installed}
                                          for i in range(count)])
    db.session.commit()
    return list(db.session.execute(db.select(Meter.id).where(Meter.number.like(f"{prefix}%"))
                                   .order_by(Meter.id)).scalars())


def run(app, meters: int, days: int, start: dt.datetime = START, overlap: bool = False) -> tuple[float, float]:
    """(service values/s, raw rows/s) on the app's database; both count the rows stored (``overlap``: the interval
    read again is handed to the service, not to the raw COPY, and counted by neither).

    The two are interleaved batch by batch (service, raw, raw, service, ...), so both see the same table
    sizes and the same load from whatever else runs on the machine; each batch is its own transaction."""
    from app.extensions import db
    from app.services.ingest import channel_id, sqlite_ts, store_readings

    with app.app_context():
        service_ids, raw_ids = make_meters("SVC", meters, start), make_meters("RAW", meters, start)
        prepared = list(batches(service_ids, days, start, overlap))  # decoded before the clock starts
        channels = [channel_id(c) for c in CHANNELS]
        db.session.commit()
        sqlite = db.engine.dialect.name == "sqlite"
        now = dt.datetime.now(UTC)
        raw_batches = [[(v.meter_id, channels[CHANNELS.index(v.obis)], sqlite_ts(v.ts) if sqlite else v.ts,
                         v.value, 0, 0, sqlite_ts(now) if sqlite else now) for v in values]
                       for values in batches(raw_ids, days, start)]

        def service(values) -> int:
            return store_readings(values).inserted

        def raw(rows) -> int:
            conn = db.session.connection()
            if sqlite:
                conn.exec_driver_sql("INSERT INTO reading (meter_id, channel_id, ts, value, quality, source, "
                                     "received_at) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            else:
                with conn.connection.driver_connection.cursor() as cur, cur.copy(
                        "COPY reading (meter_id, channel_id, ts, value, quality, source, received_at) "
                        "FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(RAW_TYPES)
                    for row in rows:
                        copy.write_row(row)
            db.session.commit()
            return len(rows)

        spent, done = [0.0, 0.0], [0, 0]
        for index, pair in enumerate(zip(prepared, raw_batches, strict=True)):
            for side in ((0, 1) if index % 2 == 0 else (1, 0)):
                began = time.perf_counter()
                done[side] += (service, raw)[side](pair[side])
                spent[side] += time.perf_counter() - began
        return done[0] / spent[0], done[1] / spent[1]


RAW_TYPES = ("int4", "int4", "timestamptz", "float8", "int2", "int2", "timestamptz")


GOALS = {"sqlite": 0.85, "postgresql": 0.75}  # issue 13


def goal(ratio: float, dialect: str) -> str:
    """The goal and whether this run met it."""
    return f">= {GOALS[dialect]} ({'met' if ratio >= GOALS[dialect] else 'not met'})"


def main() -> None:
    """SQLite, then PostgreSQL when configured."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--meters", type=int, default=200)
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--postgresql", default=os.environ.get("HES_TEST_DATABASE_URL", ""))
    parser.add_argument("--recent", action="store_true",
                        help="the last days before today (the areas' quarter-hours are written; by default the days "
                             "are in January 2026, older than the kept window, as a backfill's)")
    parser.add_argument("--overlap", action="store_true",
                        help="each read after the first brings the last stored interval again, as a collection "
                             "round does (by default the days follow one another without overlap)")
    args = parser.parse_args()
    start = START
    if args.recent:
        start = dt.datetime.combine(dt.datetime.now(UTC).date() - dt.timedelta(days=args.days), dt.time(0), tzinfo=UTC)
    service, raw = run(bench_app(), args.meters, args.days, start, args.overlap)
    rows = [("SQLite: storage service values/s", f"{service:,.0f}", ""),
            ("SQLite: raw executemany rows/s (same table)", f"{raw:,.0f}", "baseline"),
            ("SQLite: service / raw", f"{service / raw:.2f}", goal(service / raw, "sqlite"))]
    if args.postgresql:
        from sqlalchemy import create_engine, text

        schema = f"hes_bench_{uuid.uuid4().hex[:8]}"
        engine = create_engine(args.postgresql)
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            sep = "&" if "?" in args.postgresql else "?"
            service, raw = run(bench_app(f"{args.postgresql}{sep}options=-csearch_path%3D{schema}"),
                               args.meters, args.days, start, args.overlap)
            rows += [("PostgreSQL: storage service values/s", f"{service:,.0f}", ""),
                     ("PostgreSQL: raw binary COPY rows/s (same table)", f"{raw:,.0f}", "baseline"),
                     ("PostgreSQL: service / raw", f"{service / raw:.2f}", goal(service / raw, "postgresql"))]
        finally:
            with engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            engine.dispose()
    print_table(f"Ingest: {args.meters} meters x {args.days} days x 96 intervals x 4 channels from {start:%Y-%m-%d}, "
                f"one batch per meter-day{' (and the interval before it again)' if args.overlap else ''}, "
                "rollups maintained", rows)


if __name__ == "__main__":
    main()
