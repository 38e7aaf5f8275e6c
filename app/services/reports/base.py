"""The one base of every report download: the report is built once — a title, its filters, the summary figures
and a table held as a pandas DataFrame, an optional chart — and rendered from that as CSV or PDF.

Headings are written in English in the services, marked with ``N_`` for the catalog; the CSV keeps them as they
are (a stable format for integrators), the PDF shows them in the reader's language. Drawing the chart
(matplotlib) and the PDF (xhtml2pdf) is CPU work of up to seconds: it runs in the hub's thread pool when the
process is gevent-patched, so the loop keeps serving sockets and pages meanwhile."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd
from flask import current_app
from flask_babel import gettext

from app.models.types import utcnow
from app.services import ServiceError
from app.services.csvio import write_rows

MAX_PDF_ROWS = 2000
PALETTE = ("#0f766e", "#f59e0b", "#dc2626", "#6366f1", "#0ea5e9", "#84cc16")


def N_(text: str) -> str:  # noqa: N802 - gettext's name for "mark for the catalog, translate later"
    """Mark a heading for the catalog; it is translated where it is shown (the PDF), not where it is defined."""
    return text


def off_loop(work: Callable[..., Any], *args: Any) -> Any:
    """``work(*args)`` in a native thread of the gevent hub's pool when gevent patched this process (the calling
    greenlet waits, the others run); a plain call otherwise."""
    from gevent import monkey

    if not monkey.is_module_patched("threading"):
        return work(*args)
    from gevent import get_hub

    return get_hub().threadpool.apply(work, args)


@dataclass(frozen=True)
class Chart:
    """What a report's chart shows: named series over labels, as bars or lines, or a donut of parts."""

    labels: Sequence[str] = ()
    series: Sequence[tuple[str, Sequence[float]]] = ()
    kind: str = "bar"  # "bar", "line" or "donut" (series: one value per label; centre: the middle text)
    ylabel: str = "kWh"
    colours: Sequence[str] = ()
    centre: str = ""


@dataclass
class Report:
    """A report built once. ``table`` columns are the (English) headings; ``totals`` is the table's last row."""

    title: str
    table: pd.DataFrame
    filters: dict[str, object] = field(default_factory=dict)
    summary: Sequence[tuple[str, object]] = ()
    chart: Chart | None = None
    totals: Sequence | None = None
    note: str | None = None

    @classmethod
    def of(cls, title: str, columns: Sequence[str], rows, **kwargs) -> Report:
        """A report over ``rows`` (any iterable of sequences), values kept exactly as given."""
        return cls(title, pd.DataFrame(list(rows), columns=list(columns), dtype=object), **kwargs)

    def rows(self) -> Iterator[tuple]:
        """The table's rows as tuples, in order."""
        return self.table.itertuples(index=False, name=None)

    def csv(self) -> Iterator[str]:
        """The table as CSV text, headed by the English column names."""
        return write_rows(list(self.table.columns), self.rows())

    def pdf(self) -> bytes:
        """The report as PDF bytes (A4 landscape, repeating header, page numbers), headings translated."""
        chart = self.chart and replace(self.chart, series=[(gettext(n), v) for n, v in self.chart.series],
                                       ylabel=gettext(self.chart.ylabel) if self.chart.ylabel else "")
        png = off_loop(draw_chart, chart) if chart else None
        rows = [list(r) for r in self.rows()]
        if self.totals is not None and rows:
            rows.append([gettext(self.totals[0]), *self.totals[1:]])
        html = current_app.jinja_env.get_template("hes/report_pdf.html").render(
            title=gettext(self.title), filters={gettext(k): v for k, v in self.filters.items()},
            summary=[(gettext(label), value) for label, value in self.summary],
            columns=[gettext(c) for c in self.table.columns], rows=rows, note=self.note,
            chart=base64.b64encode(png).decode() if png else None,
            app_name=current_app.config.get("APP_NAME", "HES Core"),
            generated=utcnow().strftime("%Y-%m-%d %H:%M UTC"))
        body, failed = off_loop(_html_to_pdf, html)
        if failed:
            raise ServiceError(f"The {self.title} report could not be rendered as PDF.", status=500)
        return body


def capped(rows, total: int) -> tuple[list[Sequence], str | None]:
    """At most ``MAX_PDF_ROWS`` rows, and a (translated) note saying so when there were more."""
    kept = []
    for row in rows:
        if len(kept) == MAX_PDF_ROWS:
            break
        kept.append(row)
    note = (gettext("The table shows the first %(shown)d of %(total)d rows; the CSV download has all of them.",
                    shown=MAX_PDF_ROWS, total=total) if total > MAX_PDF_ROWS else None)
    return kept, note


def _html_to_pdf(html: str) -> tuple[bytes, bool]:
    from xhtml2pdf import pisa

    out = io.BytesIO()
    status = pisa.CreatePDF(html, dest=out, encoding="utf-8")
    return out.getvalue(), bool(status.err)


def draw_chart(chart: Chart) -> bytes | None:
    """The chart as PNG bytes (None without data); pure drawing, safe in a worker thread."""
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
