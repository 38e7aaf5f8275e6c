"""Investigation and technical-loss reports as CSV and PDF."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from app.services.analytics import investigations, loss
from app.services.csvio import write_rows
from app.services.reports.common import scope_names
from app.services.reports.pdf import capped, chart_png, render_pdf
from app.services.scope import Scope


def investigations_csv(scope: Scope, state: str, tz: ZoneInfo) -> Iterator[str]:
    """Every investigation in scope as CSV text."""
    investigations.investigation_query(scope, state)  # validates the state before the download starts
    return write_rows(investigations.REPORT_COLUMNS, investigations.report_rows(scope, state, tz))


def investigations_pdf(scope: Scope, state: str, tz: ZoneInfo) -> bytes:
    """The investigations report: case figures, precision per rule (chart) and the cases."""
    investigations.investigation_query(scope, state)
    figures = investigations.summary(scope)
    precision = investigations.rule_precision(scope)
    rows, note = capped(investigations.report_rows(scope, state, tz), figures["total"])
    chart = chart_png([p["rule"] for p in precision], [("Precision %", [100 * (p["precision"] or 0)
                                                                         for p in precision])], ylabel="%")
    totals = ["Total", "", "", "", f"{figures['open']} open", "", "", "", f"{figures['theft_confirmed']} theft",
              f"{figures['energy_recovered_kwh']:.3f}", f"{figures['amount_recovered']:.2f}", "", "", ""]
    return render_pdf(
        "Investigations",
        filters={**scope_names(scope), "State": state or "all", "Time zone": tz.key},
        summary=[("Open", figures["open"]), ("Closed", figures["closed"]),
                 ("Theft confirmed", figures["theft_confirmed"]),
                 ("Energy recovered (kWh)", f"{figures['energy_recovered_kwh']:,.3f}"),
                 ("Amount recovered", f"{figures['amount_recovered']:,.2f}")],
        columns=investigations.REPORT_COLUMNS, rows=rows, chart=chart, totals=totals, note=note)


def loss_csv(scope: Scope, start: dt.date, end: dt.date, granularity: str, tz: ZoneInfo) -> Iterator[str]:
    """The energy balance per supplied area and period as CSV text."""
    rows = loss.energy_balance(scope, start, end, granularity, tz)
    return write_rows(loss.COLUMNS, loss.balance_csv_rows(rows))


def loss_pdf(scope: Scope, start: dt.date, end: dt.date, granularity: str, tz: ZoneInfo) -> bytes:
    """The technical-loss report: totals, energy in against consumers per period (chart) and the balance table."""
    rows = loss.energy_balance(scope, start, end, granularity, tz)
    e_in = sum(r["energy_in_kwh"] for r in rows)
    e_out = sum(r["consumers_kwh"] for r in rows)
    pct = f"{100 * (e_in - e_out) / e_in:.2f}" if e_in else ""
    periods = sorted({r["period"] for r in rows})
    chart = chart_png(periods, [("Energy in", [sum(r["energy_in_kwh"] for r in rows if r["period"] == p)
                                               for p in periods]),
                                ("Consumers", [sum(r["consumers_kwh"] for r in rows if r["period"] == p)
                                               for p in periods])])
    return render_pdf(
        "Technical Loss",
        filters={**scope_names(scope), "From": start.isoformat(), "To": end.isoformat(),
                 "Granularity": granularity.capitalize(), "Alert above": f"{loss.loss_threshold_pct():g}%"},
        summary=[("Energy in (kWh)", f"{e_in:,.3f}"), ("Consumers (kWh)", f"{e_out:,.3f}"),
                 ("Loss (kWh)", f"{e_in - e_out:,.3f}"), ("Loss (%)", pct or "n/a"),
                 ("Areas", len({r["area_id"] for r in rows}))],
        columns=loss.COLUMNS, rows=list(loss.balance_csv_rows(rows)), chart=chart,
        totals=["Total", "", "", f"{e_in:.3f}", f"{e_out:.3f}", f"{e_in - e_out:.3f}", pct, ""])
