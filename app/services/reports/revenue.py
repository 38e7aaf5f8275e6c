"""Investigation and technical-loss reports as CSV and PDF."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from flask_babel import gettext

from app.services.analytics import investigations, loss
from app.services.csvio import write_rows
from app.services.reports.base import N_, Chart, Report, capped
from app.services.reports.common import scope_names
from app.services.reports.consumption import GRANULARITIES
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
    chart = Chart([p["rule"] for p in precision], [(N_("Precision %"), [100 * (p["precision"] or 0)
                                                                      for p in precision])], ylabel="%")
    totals = [N_("Total"), "", "", "", gettext("%(n)d open", n=figures["open"]), "", "", "",
              gettext("%(n)d theft", n=figures["theft_confirmed"]), f"{figures['energy_recovered_kwh']:.3f}",
              f"{figures['amount_recovered']:.2f}", "", "", ""]
    states = {"": N_("All"), "open": N_("Open"), "closed": N_("Closed")}
    return Report.of(
        N_("Investigations"), investigations.REPORT_COLUMNS, rows,
        filters={**scope_names(scope), N_("State"): gettext(states[state]), N_("Time zone"): tz.key},
        summary=[(N_("Open"), figures["open"]), (N_("Closed"), figures["closed"]),
                 (N_("Theft confirmed"), figures["theft_confirmed"]),
                 (N_("Energy recovered (kWh)"), f"{figures['energy_recovered_kwh']:,.3f}"),
                 (N_("Amount recovered"), f"{figures['amount_recovered']:,.2f}")],
        chart=chart, totals=totals, note=note).pdf()


def loss_csv(scope: Scope, start: dt.date, end: dt.date, granularity: str, tz: ZoneInfo) -> Iterator[str]:
    """The energy balance per supplied area and period as CSV text."""
    rows = loss.energy_balance(scope, start, end, granularity, tz)
    return Report.of(N_("Technical Loss"), loss.COLUMNS, loss.balance_csv_rows(rows)).csv()


def loss_pdf(scope: Scope, start: dt.date, end: dt.date, granularity: str, tz: ZoneInfo) -> bytes:
    """The technical-loss report: totals, energy in against consumers per period (chart) and the balance table."""
    rows = loss.energy_balance(scope, start, end, granularity, tz)
    e_in = sum(r["energy_in_kwh"] for r in rows)
    e_out = sum(r["consumers_kwh"] for r in rows)
    pct = f"{100 * (e_in - e_out) / e_in:.2f}" if e_in else ""
    periods = sorted({r["period"] for r in rows})
    chart = Chart(periods, [(N_("Energy in"), [sum(r["energy_in_kwh"] for r in rows if r["period"] == p)
                                               for p in periods]),
                            (N_("Consumers"), [sum(r["consumers_kwh"] for r in rows if r["period"] == p)
                                               for p in periods])])
    return Report.of(
        N_("Technical Loss"), loss.COLUMNS, loss.balance_csv_rows(rows),
        filters={**scope_names(scope), N_("From"): start.isoformat(), N_("To"): end.isoformat(),
                 N_("Granularity"): gettext(GRANULARITIES.get(granularity, granularity)),
                 N_("Alert above"): f"{loss.loss_threshold_pct():g}%"},
        summary=[(N_("Energy in (kWh)"), f"{e_in:,.3f}"), (N_("Consumers (kWh)"), f"{e_out:,.3f}"),
                 (N_("Loss (kWh)"), f"{e_in - e_out:,.3f}"), (N_("Loss (%)"), pct or gettext("n/a")),
                 (N_("Areas"), len({r["area_id"] for r in rows}))],
        chart=chart, totals=[N_("Total"), "", "", f"{e_in:.3f}", f"{e_out:.3f}", f"{e_in - e_out:.3f}", pct,
                             ""]).pdf()
