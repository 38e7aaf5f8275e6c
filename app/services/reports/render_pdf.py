"""The CPU-heavy half of a report PDF — drawing its chart (matplotlib) and HTML → PDF (xhtml2pdf) — run in a
child process, so the HES's gevent loop keeps serving while it runs (both hold the GIL for up to seconds, which
a thread pool does not help). ``in_child`` starts ``python -m app.services.reports.render_pdf MODE`` and waits
for it cooperatively (gevent's subprocess when the process is patched); the child reads its input on stdin
and writes the result on stdout:

    pdf    HTML (UTF-8) in, PDF bytes out
    chart  a ``Chart`` as JSON in, PNG bytes out (nothing when there is nothing to draw)

A failure exits non-zero with the reason on stderr. This module imports neither Flask nor pandas, so the
child starts quickly."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

PALETTE = ("#0f766e", "#f59e0b", "#dc2626", "#6366f1", "#0ea5e9", "#84cc16")
MODULE = "app.services.reports.render_pdf"  # this module's name, also when it runs as ``__main__``
TIMEOUT_SECONDS = 120
MAX_CHILDREN = 2  # renders at once per HES process; more wait their turn rather than crowd the cores
_ROOT = Path(__file__).resolve().parents[3]  # the directory holding the ``app`` package
_children: threading.BoundedSemaphore | None = None  # made on first use: gevent's own once the process is patched


class RenderError(RuntimeError):
    """The child failed, or ran past ``TIMEOUT_SECONDS``."""


@dataclass(frozen=True)
class Chart:
    """What a report's chart shows: named series over labels, as bars or lines, or a donut of parts."""

    labels: Sequence[str] = ()
    series: Sequence[tuple[str, Sequence[float]]] = ()
    kind: str = "bar"  # "bar", "line" or "donut" (series: one value per label; centre: the middle text)
    ylabel: str = "kWh"
    colours: Sequence[str] = ()
    centre: str = ""


def in_child(mode: str, data: bytes, timeout: float = TIMEOUT_SECONDS) -> bytes:
    """Run ``mode`` ("pdf" or "chart") on ``data`` in a child process and return its stdout."""
    global _children
    if _children is None:
        _children = threading.BoundedSemaphore(MAX_CHILDREN)
    with _children:
        try:
            done = subprocess.run([sys.executable, "-m", MODULE, mode], input=data, capture_output=True,
                                  cwd=_ROOT, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise RenderError(f"{mode} rendering took longer than {timeout:g} s") from exc
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        raise RenderError(f"{mode} rendering failed (exit {done.returncode}): {reason[0]}")
    return done.stdout


def pdf_of(html: str) -> bytes:
    """``html`` as PDF bytes, rendered in a child process."""
    return in_child("pdf", html.encode("utf-8"))


def png_of(chart: Chart) -> bytes | None:
    """``chart`` as PNG bytes (None without data), drawn in a child process."""
    return in_child("chart", json.dumps(asdict(chart)).encode("utf-8")) or None


def html_to_pdf(html: str) -> bytes:
    """``html`` as PDF bytes, in this process; raises ``RenderError`` when xhtml2pdf reports errors."""
    from xhtml2pdf import pisa

    out = io.BytesIO()
    status = pisa.CreatePDF(html, dest=out, encoding="utf-8")
    if status.err:
        raise RenderError(f"xhtml2pdf reported {status.err} error(s)")
    return out.getvalue()


def draw_chart(chart: Chart) -> bytes | None:
    """The chart as PNG bytes (None without data), in this process."""
    if chart.kind == "donut":
        return _donut(chart)
    if not chart.labels or not chart.series:
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 3.0), dpi=150)  # the shared template shows charts at 390 × 180
    ax = fig.add_subplot(1, 1, 1)
    labels, series = list(chart.labels), list(chart.series)
    positions = range(len(labels))
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        if chart.kind == "line":
            ax.plot(positions, values, label=name, color=colour, linewidth=1.8)
        else:
            ax.bar([p + (i - (len(series) - 1) / 2) * width for p in positions], values, width=width, label=name,
                   color=colour)
    step = max(1, len(labels) // 14)
    ax.set_xticks(list(positions)[::step], [labels[i] for i in range(0, len(labels), step)], fontsize=7,
                  rotation=30, ha="right")
    ax.tick_params(axis="y", labelsize=7)
    ax.set_ylabel(chart.ylabel, fontsize=8)
    ax.grid(axis="y", color="#e2e8f0", linewidth=0.6)
    ax.spines[["top", "right"]].set_visible(False)
    if len(series) > 1:
        ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _donut(chart: Chart) -> bytes | None:
    """A donut of (label, value, colour) parts with a legend; None when all are zero."""
    parts = [(label, values[0], colour) for (label, values), colour in zip(chart.series, chart.colours, strict=True)]
    shown = [(label, value, colour) for label, value, colour in parts if value > 0]
    if not shown:
        return None
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    fig = Figure(figsize=(5.2, 2.4), dpi=150)
    ax = fig.add_axes((0.0, 0.0, 0.5, 1.0))
    ax.pie([v for _, v, _ in shown], colors=[c for _, _, c in shown], startangle=90, counterclock=False,
           wedgeprops={"width": 0.32, "edgecolor": "white", "linewidth": 2})
    ax.set_aspect("equal")
    if chart.centre:
        ax.text(0, 0, chart.centre, ha="center", va="center", fontsize=15, fontweight="bold", color="#0f172a")
    legend = fig.add_axes((0.52, 0.0, 0.48, 1.0))
    legend.axis("off")
    total = sum(v for _, v, _ in parts) or 1
    for i, (label, value, colour) in enumerate(parts):
        y = 0.7 - i * 0.2
        legend.add_patch(FancyBboxPatch((0.0, y - 0.035), 0.06, 0.07, color=colour, boxstyle="round,pad=0.01"))
        legend.text(0.1, y, f"{label}: {value:g} ({100 * value / total:.1f}%)", va="center", fontsize=9,
                    color="#1e293b")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def main(argv: Sequence[str]) -> int:
    """The child: the mode in ``argv[0]``, the input on stdin, the result on stdout."""
    mode = argv[0] if argv else ""
    data = sys.stdin.buffer.read()
    if mode == "pdf":
        out = html_to_pdf(data.decode("utf-8"))
    elif mode == "chart":
        out = draw_chart(Chart(**json.loads(data))) or b""
    else:
        print(f"usage: python -m {MODULE} pdf|chart  (input on stdin)", file=sys.stderr)
        return 2
    sys.stdout.buffer.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
