"""Benchmark: import 100,000 meters from CSV through the import service on SQLite (goal < 30 s)."""

from __future__ import annotations

import argparse
import io

from bench.common import bench_app, print_table, timed


def meter_csv(count: int) -> bytes:
    """A meters CSV with ``count`` rows spread over a few areas."""
    out = io.StringIO()
    out.write("Meter Number,Concentrator ID,Meter Type,Area\n")
    for i in range(count):
        out.write(f"BM{i:08d},DCU-{i // 500:04d},hes_sim,{('A1', 'A2', 'A3')[i % 3]}\n")
    return out.getvalue().encode()


def main() -> None:
    """Import the file twice: once creating every meter, once updating every meter."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--meters", type=int, default=100_000)
    args = parser.parse_args()
    app = bench_app()
    from app.extensions import db
    from app.models import Area
    from app.services.fleet_import import import_meters

    data = meter_csv(args.meters)
    times: dict[str, float] = {}
    with app.app_context():
        db.session.add_all([Area(name=f"Area {n}", code=code) for n, code in enumerate(("A1", "A2", "A3"))])
        db.session.commit()
        with timed("create", times):
            created = import_meters(data)
        with timed("update", times):
            updated = import_meters(data)
    assert created.created == args.meters and updated.updated == args.meters
    print_table(f"Meter CSV import, {args.meters:,} rows, SQLite", [
        ("first import (create) s", f"{times['create']:.1f}", "< 30 s"),
        ("create rows/s", f"{args.meters / times['create']:,.0f}", ""),
        ("re-import (update) s", f"{times['update']:.1f}", "< 30 s"),
        ("update rows/s", f"{args.meters / times['update']:,.0f}", ""),
    ])


if __name__ == "__main__":
    main()
