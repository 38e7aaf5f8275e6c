"""PDF pieces of the report pages: bar and line charts drawn server-side with matplotlib, a totals row, and a
row cap so a PDF stays printable (the CSV has every row); rendering is the shared ``app.services.pdf``."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

from app.services.pdf import render_report

MAX_PDF_ROWS = 2000
PALETTE = ("#0f766e", "#f59e0b", "#dc2626", "#6366f1", "#0ea5e9", "#84cc16")


def chart_png(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], *, kind: str = "bar",
              ylabel: str = "kWh") -> bytes | None:
    """A bar or line chart of one or more named series over the labels, as PNG bytes (None without data)."""
    if not labels or not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 3.0), dpi=150)  # the shared template shows charts at 390 × 180
    ax = fig.add_subplot(1, 1, 1)
    positions = range(len(labels))
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        if kind == "line":
            ax.plot(positions, values, label=name, color=colour, linewidth=1.8)
        else:
            ax.bar([p + (i - (len(series) - 1) / 2) * width for p in positions], values, width=width, label=name,
                   color=colour)
    step = max(1, len(labels) // 14)
    ax.set_xticks(list(positions)[::step], [labels[i] for i in range(0, len(labels), step)], fontsize=7,
                  rotation=30, ha="right")
    ax.tick_params(axis="y", labelsize=7)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.grid(axis="y", color="#e2e8f0", linewidth=0.6)
    ax.spines[["top", "right"]].set_visible(False)
    if len(series) > 1:
        ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def render_pdf(title: str, *, filters: dict[str, str], summary: Sequence[tuple[str, object]],
               columns: Sequence[str], rows: Iterable[Sequence], chart: bytes | None = None,
               totals: Sequence | None = None, note: str | None = None) -> bytes:
    """The report as PDF bytes in the shared layout, with the totals as the table's last row."""
    table = list(rows)
    if totals is not None and table:
        table.append(totals)
    return render_report(title, filters=filters, summary=summary, columns=columns, rows=table, chart_png=chart,
                         note=note)


def capped(rows: Iterable[Sequence], total: int) -> tuple[list[Sequence], str | None]:
    """At most ``MAX_PDF_ROWS`` rows, and a note saying so when there were more."""
    kept = []
    for row in rows:
        if len(kept) == MAX_PDF_ROWS:
            break
        kept.append(row)
    note = (f"The table shows the first {MAX_PDF_ROWS} of {total} rows; the CSV download has all of them."
            if total > MAX_PDF_ROWS else None)
    return kept, note
