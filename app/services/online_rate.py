"""Meter visibility: paged, scoped lists of meters with their live state (Real-Time Monitoring), the
fleet's online-rate figures and report (Online Rate), and the parameters the listed meters offer.

A meter has been *seen* once the comms node recorded it online (``first_seen`` set). The online
rate is ``online now ÷ meters in service`` (every meter that is not decommissioned).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

from flask_babel import gettext
from sqlalchemy import case, func, or_, select

from app.extensions import db
from app.models import Area, Customer, Meter, MeterBrand, MeterStatus, ObisPoint, Sim
from app.services import ServiceError
from app.services.csvio import write_rows
from app.services.reports.base import MAX_PDF_ROWS, N_, Chart, Report
from app.services.scope import Scope

VISIBILITY = ("all", "never", "online")  # the Online Rate page's dropdown
ONLINE_STATES = ("", "online", "offline", "never", "ever")
MAX_PAGE_SIZE = 500
REPORT_COLUMNS = [N_("Meter Number"), N_("Customer"), N_("Area"), N_("Online Now"), N_("First Seen"),
                  N_("Last Seen"), N_("Status")]


@dataclass(frozen=True)
class MeterFilter:
    """What a meter list shows: a scope plus search text, life-cycle status and online state."""

    scope: Scope = Scope()
    q: str = ""
    status: str = ""
    online: str = ""  # "" | online | offline | never (never seen) | ever (seen at least once or online now)
    in_service: bool = False  # leave decommissioned meters out

    def validated(self) -> MeterFilter:
        """This filter with its values checked (ServiceError 400 on unknown values)."""
        if self.status and self.status not in MeterStatus.__members__:
            raise ServiceError(f"Unknown status '{self.status}' (use one of: {', '.join(MeterStatus)}).")
        if self.online not in ONLINE_STATES:
            raise ServiceError(f"Unknown online filter '{self.online}' (use one of: {', '.join(ONLINE_STATES[1:])}).")
        return replace(self, q=self.q.strip()[:40])

    def clauses(self) -> list:
        """WHERE clauses on ``Meter``."""
        clauses = self.scope.meter_clauses()
        if self.q:
            clauses.append(func.lower(Meter.number).contains(self.q.lower(), autoescape=True))
        if self.status:
            clauses.append(Meter.status == MeterStatus(self.status))
        if self.in_service:
            clauses.append(Meter.status != MeterStatus.decommissioned)
        seen = or_(Meter.first_seen.is_not(None), Meter.online.is_(True))
        clauses.extend({
            "online": [Meter.online.is_(True)],
            "offline": [Meter.online.is_(False)],
            "never": [~seen],
            "ever": [seen],
        }.get(self.online, []))
        return clauses


def visibility_filter(scope: Scope, visibility: str) -> MeterFilter:
    """The Online Rate page's filter: ``all``, ``never`` (never online) or ``online`` (ever or now)."""
    if visibility not in VISIBILITY:
        raise ServiceError(f"Unknown filter '{visibility}' (use one of: {', '.join(VISIBILITY)}).")
    online = {"all": "", "never": "never", "online": "ever"}[visibility]
    return MeterFilter(scope=scope, online=online, in_service=True)


def _row_select(flt: MeterFilter):
    return (
        select(Meter.id, Meter.number, Meter.status, Meter.online, Meter.first_seen, Meter.last_seen,
               Meter.concentrator_id, Meter.comm_mode, Meter.relay_state, Meter.firmware_version, Meter.node_id,
               Meter.brand_id, MeterBrand.title, Area.name, Customer.name, Customer.account_number, Sim.number,
               Sim.ip_address)
        .join(MeterBrand, Meter.brand_id == MeterBrand.id)
        .outerjoin(Area, Meter.area_id == Area.id)
        .outerjoin(Customer, Meter.customer_id == Customer.id)
        .outerjoin(Sim, Meter.sim_id == Sim.id)
        .where(*flt.clauses())
    )


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def meter_page(flt: MeterFilter, page: int = 0, page_size: int = 25) -> dict:
    """One page of meters (ordered by number) with details and live state, plus the matching count."""
    flt = flt.validated()
    page_size = max(1, min(int(page_size), MAX_PAGE_SIZE))
    page = max(0, int(page))
    count = int(db.session.execute(select(func.count(Meter.id)).where(*flt.clauses())).scalar() or 0)
    stmt = _row_select(flt).order_by(Meter.number).limit(page_size).offset(page * page_size)
    rows = [
        {"id": mid, "number": number, "status": str(status), "online": bool(online), "first_seen": _iso(first),
         "last_seen": _iso(last), "concentrator_id": conc, "comm_mode": str(mode), "relay_state": str(relay),
         "firmware_version": fw, "node_id": node, "brand_id": brand_id, "brand": brand, "area": area,
         "customer": customer, "account_number": account, "sim": sim, "ip_address": ip}
        for (mid, number, status, online, first, last, conc, mode, relay, fw, node, brand_id, brand, area, customer,
             account, sim, ip) in db.session.execute(stmt)
    ]
    return {"count": count, "page": page, "page_size": page_size, "result": rows}


def online_rate_summary(scope: Scope) -> dict:
    """Meters in service in scope: total, online now, ever online, never online and the online rate in %."""
    seen = or_(Meter.first_seen.is_not(None), Meter.online.is_(True))
    total, online, ever = db.session.execute(
        select(func.count(Meter.id),
               func.coalesce(func.sum(case((Meter.online.is_(True), 1), else_=0)), 0),
               func.coalesce(func.sum(case((seen, 1), else_=0)), 0))
        .where(Meter.status != MeterStatus.decommissioned, *scope.meter_clauses())
    ).one()
    total, online, ever = int(total), int(online), int(ever)
    return {"total": total, "online_now": online, "ever_online": ever, "never_online": total - ever,
            "online_rate": round(100.0 * online / total, 1) if total else 0.0}


def _local(value: dt.datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _report_rows(flt: MeterFilter, timezone: str, limit: int | None = None) -> Iterator[list]:
    """Report rows from a connection of its own, so a download streams after the request's session ends."""
    zone = ZoneInfo(timezone)
    stmt = (select(Meter.number, Customer.name, Area.name, Meter.online, Meter.first_seen, Meter.last_seen,
                   Meter.status)
            .outerjoin(Area, Meter.area_id == Area.id)
            .outerjoin(Customer, Meter.customer_id == Customer.id)
            .where(*flt.clauses())
            .order_by(Meter.number))
    if limit is not None:
        stmt = stmt.limit(limit)
    with db.engine.connect() as conn:
        for number, customer, area, online, first, last, status in conn.execution_options(
                stream_results=True, yield_per=2000).execute(stmt):
            yield [number, customer or "", area or "", "yes" if online else "no", _local(first, zone),
                   _local(last, zone), str(status)]


def online_rate_csv(flt: MeterFilter, timezone: str = "UTC") -> Iterator[str]:
    """The per-meter visibility report as streamed CSV text (times in the utility's zone)."""
    return write_rows(REPORT_COLUMNS, _report_rows(flt.validated(), timezone))


def online_rate_pdf(flt: MeterFilter, *, visibility: str, area_name: str | None, timezone: str = "UTC") -> bytes:
    """The Online Rate report as a PDF: filters, summary, a status chart and up to ``MAX_PDF_ROWS`` meters."""
    flt = flt.validated()
    summary = online_rate_summary(flt.scope)
    offline_seen = summary["ever_online"] - summary["online_now"]
    chart = Chart(series=[(N_("Online now"), [summary["online_now"]]), (N_("Offline (seen before)"), [offline_seen]),
                          (N_("Never online"), [summary["never_online"]])],
                  colours=("#16a34a", "#dc2626", "#94a3b8"), kind="donut", ylabel="",
                  centre=f"{summary['online_rate']:.1f}%")
    count = int(db.session.execute(select(func.count(Meter.id)).where(*flt.clauses())).scalar() or 0)
    note = (gettext("Showing the first %(shown)d of %(total)d meters; download the CSV for all of them.",
                    shown=MAX_PDF_ROWS, total=count) if count > MAX_PDF_ROWS else None)
    shown = {"all": N_("All"), "never": N_("Never online"), "online": N_("Online (ever or now)")}
    return Report.of(
        N_("Online Rate"), REPORT_COLUMNS, _report_rows(flt, timezone, limit=MAX_PDF_ROWS),
        filters={N_("Area"): area_name or gettext("All areas"), N_("Meters"): gettext(shown[visibility]),
                 N_("Time zone"): timezone},
        summary=[(N_("Online rate"), f"{summary['online_rate']:.1f}%"), (N_("Online now"), summary["online_now"]),
                 (N_("Never online"), summary["never_online"]), (N_("Total meters"), summary["total"]),
                 (N_("Meters listed"), count)],
        chart=chart, note=note).pdf()


def area_name(area_id: int | None) -> str | None:
    """The full name of an area, for report headings."""
    area = db.session.get(Area, area_id) if area_id is not None else None
    return area.full_name if area is not None else None


def brand_parameters(scope: Scope, meter_ids: list[int] | None = None) -> list[dict]:
    """The OBIS points of the brands of the given meters (or of every meter in scope), merged by key,
    each flagged readable/writable, ordered by group then the brand's own order."""
    brands = select(Meter.brand_id).where(*scope.meter_clauses())
    if meter_ids:
        brands = brands.where(Meter.id.in_(meter_ids))
    stmt = (select(ObisPoint, MeterBrand.title)
            .join(MeterBrand, ObisPoint.brand_id == MeterBrand.id)
            .where(ObisPoint.brand_id.in_(brands.distinct()))
            .order_by(ObisPoint.group, ObisPoint.position))
    merged: dict[str, dict] = {}
    for point, brand in db.session.execute(stmt):
        item = merged.setdefault(point.key, {
            "key": point.key, "name": point.name, "obis": point.obis, "group": point.group, "unit": point.unit,
            "access": point.access, "readable": point.readable, "writable": point.writable, "brands": []})
        item["brands"].append(brand)
    return list(merged.values())
