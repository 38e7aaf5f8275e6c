"""Event-loop lag while a report PDF renders, in a gevent-patched process as the live HES, three ways in the same
run: the chart (matplotlib) and the PDF (xhtml2pdf) called inline on the loop (the baseline), in the hub's thread
pool (they hold the GIL, so this helps little), and in a long-lived child process (``render_pdf``, what the HES
does).
``LoopLagMonitor`` samples how late a 50 ms tick wakes up; the goal is max < 1 s and p99 < 100 ms.

    .venv/bin/python -m bench.bench_pdf_loop [--rows 1500] [--renders 3]
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import time  # noqa: E402
from contextlib import contextmanager  # noqa: E402

from bench.common import bench_app, print_table  # noqa: E402


def _report(rows: int):
    from app.services.reports.base import Chart, Report

    labels = [f"2026-03-{d:02d}" for d in range(1, 31)]
    return Report.of("Energy Consumption", ["Meter", "Period", "Import (kWh)", "Export (kWh)"],
                     ([f"BM{i:08d}", labels[i % 30], f"{i * 1.5:.3f}", "0.000"] for i in range(rows)),
                     filters={"Area": "Bench"}, summary=[("Rows", rows)],
                     chart=Chart(labels, [("Import (kWh)", [float(d) for d in range(30)])]))


def _lag_while(render, renders: int) -> tuple[float, float, float]:
    """(max lag ms, p99 lag ms, wall seconds per render) over ``renders`` renders, the loop sampled meanwhile."""
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
    return snapshot["max_ms"], snapshot["p99_ms"], wall / renders


@contextmanager
def _rendering(way: str):
    """The report base with its chart and PDF rendered ``way``: "inline", "thread" or "child" (as shipped)."""
    from app.services.reports import base, render_pdf

    shipped = base.pdf_of, base.png_of
    if way == "inline":
        base.pdf_of, base.png_of = render_pdf.html_to_pdf, render_pdf.draw_chart
    elif way == "thread":
        base.pdf_of = lambda html: base.off_loop(render_pdf.html_to_pdf, html)
        base.png_of = lambda chart: base.off_loop(render_pdf.draw_chart, chart)
    try:
        yield
    finally:
        base.pdf_of, base.png_of = shipped


def _smallest_pdf_seconds() -> tuple[float, float]:
    """Wall seconds for the smallest PDF in a new child (its start-up included) and then in the same child."""
    from app.services.reports.render_pdf import pdf_of, stop_children

    stop_children()
    times = []
    for _ in range(2):
        began = time.perf_counter()
        pdf_of("<p>x</p>")
        times.append(time.perf_counter() - began)
    return times[0], times[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1500)
    parser.add_argument("--renders", type=int, default=3)
    args = parser.parse_args()
    app = bench_app()
    results = {}
    with app.test_request_context("/"):
        report = _report(args.rows)
        for way in ("inline", "thread", "child"):
            with _rendering(way):
                report.pdf()  # warm up: imports, fonts
                results[way] = _lag_while(report.pdf, args.renders)
    cold, warm = _smallest_pdf_seconds()
    rows = []
    for way, label in (("inline", "inline on the loop"), ("thread", "in the thread pool"),
                       ("child", "in a child process")):
        worst, p99, per = results[way]
        goal = "baseline" if way == "inline" else ("max < 1000, p99 < 100" if way == "child" else "")
        rows += [(f"loop lag max / p99, {label} (ms)", f"{worst:.0f} / {p99:.0f}", goal),
                 (f"wall per render, {label} (s)", f"{per:.2f}", "")]
    inline_max, child_max = results["inline"][0], results["child"][0]
    rows += [("lag max ratio inline ÷ child", f"{inline_max / max(child_max, 0.1):.1f}", "≫ 1"),
             ("smallest PDF in a new child / in a running one (s)", f"{cold:.2f} / {warm:.2f}",
              "children are kept: start-up paid once")]
    print_table(f"PDF rendering and the event loop ({args.rows} rows × {args.renders} renders)", rows)


if __name__ == "__main__":
    main()
