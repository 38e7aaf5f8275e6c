"""PDF reports shared by every report page: title, filters, summary figures, an optional chart and a table,
rendered from ``templates/hes/report_pdf.html`` by xhtml2pdf; charts are drawn server-side with matplotlib."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Sequence

from flask import current_app

from app.models.types import utcnow
from app.services import ServiceError


def donut_chart_png(parts: Sequence[tuple[str, float, str]], centre: str = "") -> bytes | None:
    """A donut chart of (label, value, colour) parts with a legend, as PNG bytes; None when all are zero."""
    shown = [(label, value, colour) for label, value, colour in parts if value > 0]
    if not shown:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    fig = Figure(figsize=(5.2, 2.4), dpi=150)
    ax = fig.add_axes((0.0, 0.0, 0.5, 1.0))
    ax.pie([v for _, v, _ in shown], colors=[c for _, _, c in shown], startangle=90, counterclock=False,
           wedgeprops={"width": 0.32, "edgecolor": "white", "linewidth": 2})
    ax.set_aspect("equal")
    if centre:
        ax.text(0, 0, centre, ha="center", va="center", fontsize=15, fontweight="bold", color="#0f172a")
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


def render_report(title: str, *, filters: dict[str, str], summary: Sequence[tuple[str, object]],
                  columns: Sequence[str], rows: Iterable[Sequence], chart_png: bytes | None = None,
                  note: str | None = None) -> bytes:
    """Render a report (A4 landscape, repeating table header, page numbers) and return the PDF bytes."""
    from xhtml2pdf import pisa

    html = current_app.jinja_env.get_template("hes/report_pdf.html").render(
        title=title, filters=filters, summary=summary, columns=columns, rows=rows, note=note,
        chart=base64.b64encode(chart_png).decode() if chart_png else None,
        app_name=current_app.config.get("APP_NAME", "HES Core"),
        generated=utcnow().strftime("%Y-%m-%d %H:%M UTC"),
    )
    out = io.BytesIO()
    status = pisa.CreatePDF(html, dest=out, encoding="utf-8")
    if status.err:
        raise ServiceError(f"The {title} report could not be rendered as PDF.", status=500)
    return out.getvalue()
