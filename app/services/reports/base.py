"""The one base of every report download: the report is built once — a title, its filters, the summary figures
and a table held as a pandas DataFrame, an optional chart — and rendered from that as CSV or PDF.

Headings are written in English in the services, marked with ``N_`` for the catalog; the CSV keeps them as they
are (a stable format for integrators), the PDF shows them in the reader's language. Drawing the chart
(matplotlib) and the PDF (xhtml2pdf) is CPU work of up to seconds that holds the GIL: it runs in a child process
(``render_pdf``), awaited cooperatively, so the loop keeps serving sockets and pages meanwhile."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd
from flask import current_app
from flask_babel import gettext

from app.models.types import utcnow
from app.services import ServiceError
from app.services.csvio import write_rows
from app.services.reports.render_pdf import Chart, RenderError, pdf_of, png_of

MAX_PDF_ROWS = 2000


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
        png = png_of(chart) if chart else None
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
        try:
            return pdf_of(html)
        except RenderError as exc:
            current_app.logger.error("PDF of %s: %s", self.title, exc)
            raise ServiceError(f"The {self.title} report could not be rendered as PDF.", status=500) from exc


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
