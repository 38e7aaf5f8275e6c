"""Event-loop lag while a report PDF renders, in a gevent-patched process as the live HES: the report base's
``off_loop`` (chart and xhtml2pdf in the hub's thread pool) against the same render called inline on the loop,
in the same run. ``LoopLagMonitor`` samples how late a 50 ms tick wakes up; the ratio is inline ÷ off-loop.

    .venv/bin/python -m bench.bench_pdf_loop [--rows 1500] [--renders 3]
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import time  # noqa: E402

from bench.common import bench_app, print_table  # noqa: E402


def _report(rows: int):
    from app.services.reports.base import Chart, Report

    labels = [f"2026-03-{d:02d}" for d in range(1, 31)]
    return Report.of("Energy Consumption", ["Meter", "Period", "Import (kWh)", "Export (kWh)"],
                     ([f"BM{i:08d}", labels[i % 30], f"{i * 1.5:.3f}", "0.000"] for i in range(rows)),
                     filters={"Area": "Bench"}, summary=[("Rows", rows)],
                     chart=Chart(labels, [("Import (kWh)", [float(d) for d in range(30)])]))


def _lag_while(render, renders: int) -> tuple[float, float]:
    """(max lag ms, wall seconds) over ``renders`` renders with the loop sampled meanwhile."""
    from app.comms.looplag import LoopLagMonitor

    lag = LoopLagMonitor(window=3600).start()
    time.sleep(0.2)  # a few clean samples first
    began = time.perf_counter()
    for _ in range(renders):
        render()
    wall = time.perf_counter() - began
    time.sleep(0.2)
    snapshot = lag.snapshot()
    lag.stop()
    return snapshot["max_ms"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1500)
    parser.add_argument("--renders", type=int, default=3)
    args = parser.parse_args()
    app = bench_app()
    from app.services.reports import base

    with app.test_request_context("/"):
        report = _report(args.rows)
        report.pdf()  # warm up: imports, fonts
        threaded_lag, threaded_wall = _lag_while(report.pdf, args.renders)
        pooled = base.off_loop
        base.off_loop = lambda work, *a: work(*a)  # the baseline: the same work, called on the loop
        try:
            inline_lag, inline_wall = _lag_while(report.pdf, args.renders)
        finally:
            base.off_loop = pooled
    print_table(f"PDF rendering and the event loop ({args.rows} rows × {args.renders} renders)", [
        ("loop lag max, rendered inline (ms)", inline_lag, "baseline"),
        ("loop lag max, rendered off the loop (ms)", threaded_lag, "≪ baseline"),
        ("lag ratio inline ÷ off-loop", f"{inline_lag / max(threaded_lag, 0.1):.1f}", "> 1"),
        ("wall per render inline (s)", f"{inline_wall / args.renders:.2f}", ""),
        ("wall per render off the loop (s)", f"{threaded_wall / args.renders:.2f}", "≈ inline"),
    ])


if __name__ == "__main__":
    main()
