"""Revenue leakage: per area, the meters with zero consumption over 48 h, reverse energy flow, tamper events,
relay open yet consuming, credit exhausted yet relay closed, long offline, and far below the area's pattern —
with the daily trend, as JSON, CSV and PDF."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import gettext
from sqlalchemy import func, or_, select

from app.extensions import db
from app.models import Area, ConsumptionDaily, ConsumptionHourly, Customer, Event, Meter, MeterStatus, RelayState
from app.models.types import utcnow
from app.services.analytics.rules import TAMPER_EVENT_TYPES
from app.services.analytics.series import supply_meter_ids
from app.services.reports.base import N_, Chart, Report
from app.services.reports.common import scope_names
from app.services.reports.periods import local_days, local_today, utc_range
from app.services.scope import Scope

INDICATORS = {
    "zero_consumption": N_("Zero consumption (48 h)"),
    "reverse_flow": N_("Reverse energy flow (48 h)"),
    "tamper": N_("Meters with tamper events"),
    "relay_open_consuming": N_("Relay open but consuming"),
    "credit_exhausted_relay_closed": N_("Credit exhausted, relay closed"),
    "long_offline": N_("Long offline"),
    "below_area_pattern": N_("Far below the area's pattern"),
}
FIELD_STATUSES = (MeterStatus.installed, MeterStatus.active)
CSV_COLUMNS = [N_("Meter"), N_("Customer"), N_("Area"), N_("Indicator"), N_("Value")]
AREA_COLUMNS = [N_("Area"), N_("Meters"), *INDICATORS.values()]


def _settings() -> dict:
    cfg = current_app.config
    return {"offline_days": float(cfg.get("HES_LEAKAGE_OFFLINE_DAYS", 3) or 3),
            "below_ratio": float(cfg.get("HES_LEAKAGE_BELOW_RATIO", 0.3) or 0.3),
            "min_hours": int(float(cfg.get("HES_LEAKAGE_MIN_HOURS", 36) or 36))}


def leakage(scope: Scope, tz: ZoneInfo, *, days: int = 30, now: dt.datetime | None = None) -> dict:
    """Indicators per area, the exceptions per meter and the daily trend over the last ``days`` days."""
    now = now or utcnow()
    days = max(1, min(int(days), 366))
    settings = _settings()
    meters = {m.id: m for m in db.session.execute(
        select(Meter.id, Meter.number, Meter.area_id, Meter.relay_state, Meter.credit_balance, Meter.last_seen,
               Meter.status, Area.name.label("area"), Customer.name.label("customer"))
        .outerjoin(Area, Area.id == Meter.area_id).outerjoin(Customer, Customer.id == Meter.customer_id)
        .where(Meter.status.in_(FIELD_STATUSES), Meter.id.not_in(supply_meter_ids()), *scope.meter_clauses()))}
    ids = select(Meter.id).where(Meter.status.in_(FIELD_STATUSES), *scope.meter_clauses())
    since = now - dt.timedelta(hours=48)
    recent = {mid: (imp, exp, hours) for mid, imp, exp, hours in db.session.execute(
        select(ConsumptionHourly.meter_id, func.sum(ConsumptionHourly.import_wh), func.sum(ConsumptionHourly.export_wh),
               func.count()).where(ConsumptionHourly.bucket >= since, ConsumptionHourly.bucket < now,
                                   ConsumptionHourly.meter_id.in_(ids)).group_by(ConsumptionHourly.meter_id))}
    today = local_today(tz, now)
    first = today - dt.timedelta(days=days - 1)  # the last ``days`` local days, today included (as the trend)
    lo, _hi = utc_range(first, today, tz)
    tampers = dict(db.session.execute(
        select(Event.meter_id, func.count()).where(Event.ts >= lo, Event.ts < now, Event.meter_id.in_(ids),
                                                   Event.event_type.in_(TAMPER_EVENT_TYPES))
        .group_by(Event.meter_id)).all())
    week = _weekly_means(ids, today, tz)
    area_mean: dict[int, list[float]] = defaultdict(list)
    for mid, mean in week.items():
        if mid in meters and meters[mid].area_id is not None:
            area_mean[meters[mid].area_id].append(mean)
    offline_cutoff = now - dt.timedelta(days=settings["offline_days"])
    exceptions = []
    for mid, m in meters.items():
        imp, exp, hours = recent.get(mid, (None, None, 0))
        found = {}
        if hours >= settings["min_hours"] and (imp or 0) <= 0:
            found["zero_consumption"] = f"0 kWh in {hours} h of data"
        if (exp or 0) > 0:
            found["reverse_flow"] = f"{exp / 1000:.3f} kWh exported"
        if tampers.get(mid):
            found["tamper"] = f"{tampers[mid]} events in {days} days"
        if m.relay_state == RelayState.disconnected and (imp or 0) > 0:
            found["relay_open_consuming"] = f"{imp / 1000:.3f} kWh with the relay open"
        if m.credit_balance is not None and m.credit_balance <= 0 and m.relay_state == RelayState.connected:
            found["credit_exhausted_relay_closed"] = f"credit {m.credit_balance:.2f}"
        if m.status == MeterStatus.active and (m.last_seen is None or m.last_seen < offline_cutoff):
            found["long_offline"] = ("never seen" if m.last_seen is None
                                     else f"last seen {m.last_seen.astimezone(tz):%Y-%m-%d %H:%M}")
        peers = area_mean.get(m.area_id, [])
        if mid in week and len(peers) >= 3:
            average = sum(peers) / len(peers)
            if average > 0 and week[mid] < settings["below_ratio"] * average:
                found["below_area_pattern"] = f"{week[mid]:.2f} kWh/day against {average:.2f} kWh/day"
        exceptions.extend({"meter_id": mid, "meter": m.number, "customer": m.customer or "", "area": m.area or "",
                           "indicator": key, "label": INDICATORS[key], "value": value} for key, value in found.items())
    return {"as_of": now.isoformat(), "days": days, "settings": settings,
            "totals": {key: sum(1 for e in exceptions if e["indicator"] == key) for key in INDICATORS}
            | {"tamper_events": sum(tampers.values()), "meters": len(meters)},
            "areas": _by_area(meters, exceptions, tampers), "exceptions": exceptions,
            "trend": _trend(ids, first, today, tz, now)}


def _weekly_means(ids, today: dt.date, tz: ZoneInfo) -> dict[int, float]:
    lo, hi = utc_range(today - dt.timedelta(days=7), today - dt.timedelta(days=1), tz)
    return {mid: float(avg) / 1000.0 for mid, avg in db.session.execute(
        select(ConsumptionDaily.meter_id, func.avg(ConsumptionDaily.import_wh))
        .where(ConsumptionDaily.bucket >= lo, ConsumptionDaily.bucket < hi, ConsumptionDaily.meter_id.in_(ids))
        .group_by(ConsumptionDaily.meter_id))}


def _by_area(meters: dict, exceptions: list[dict], tampers: dict) -> list[dict]:
    rows: dict[str, dict] = {}
    for m in meters.values():
        row = rows.setdefault(m.area or "(no area)", {"area": m.area or "(no area)", "meters": 0,
                                                      "tamper_events": 0, **dict.fromkeys(INDICATORS, 0)})
        row["meters"] += 1
        row["tamper_events"] += tampers.get(m.id, 0)
    for e in exceptions:
        rows[e["area"] or "(no area)"][e["indicator"]] += 1
    return [rows[name] for name in sorted(rows)]


def _trend(ids, first: dt.date, last: dt.date, tz: ZoneInfo, now: dt.datetime) -> list[dict]:
    """Per local day up to ``now``: meters with zero consumption, meters exporting, and tamper events (the same
    events the totals count, so the trend adds up to them)."""
    days = {d: {"date": d.isoformat(), "zero_consumption": 0, "reverse_flow": 0, "tamper_events": 0}
            for d in local_days(first, last)}
    lo, hi = utc_range(first, last, tz)
    for bucket, imp, exp in db.session.execute(
            select(ConsumptionDaily.bucket, ConsumptionDaily.import_wh, ConsumptionDaily.export_wh)
            .where(ConsumptionDaily.bucket >= lo, ConsumptionDaily.bucket < hi, ConsumptionDaily.meter_id.in_(ids),
                   ConsumptionDaily.intervals > 0, or_(ConsumptionDaily.import_wh <= 0,
                                                       ConsumptionDaily.export_wh > 0))):
        day = days.get(bucket.astimezone(tz).date())
        if day is not None:
            day["zero_consumption"] += imp <= 0
            day["reverse_flow"] += exp > 0
    for ts, in db.session.execute(select(Event.ts).where(Event.ts >= lo, Event.ts < min(hi, now),
                                                         Event.meter_id.in_(ids),
                                                         Event.event_type.in_(TAMPER_EVENT_TYPES))):
        day = days.get(ts.astimezone(tz).date())
        if day is not None:
            day["tamper_events"] += 1
    return list(days.values())


def leakage_csv(data: dict) -> Iterator[str]:
    """The exceptions, one row per meter and indicator, as CSV text."""
    return Report.of(N_("Revenue Leakage"), CSV_COLUMNS, ([e["meter"], e["customer"], e["area"], e["label"],
                                                            e["value"]] for e in data["exceptions"])).csv()


def leakage_pdf(scope: Scope, data: dict, tz: ZoneInfo) -> bytes:
    """The leakage report as PDF: indicator totals, the trend chart and the per-area table with totals."""
    trend = data["trend"]
    chart = Chart([t["date"] for t in trend],
                  [(N_("Zero consumption"), [t["zero_consumption"] for t in trend]),
                   (N_("Reverse flow"), [t["reverse_flow"] for t in trend]),
                   (N_("Tamper events"), [t["tamper_events"] for t in trend])], kind="line",
                  ylabel=N_("meters / events"))
    rows = [[a["area"], a["meters"], *(a[key] for key in INDICATORS)] for a in data["areas"]]
    totals = [N_("Total"), data["totals"]["meters"], *(data["totals"][key] for key in INDICATORS)]
    return Report.of(
        N_("Revenue Leakage"), AREA_COLUMNS, rows,
        filters={**scope_names(scope), N_("Trend"): gettext("last %(days)d days", days=data["days"]),
                 N_("Time zone"): tz.key},
        summary=[(INDICATORS[k], data["totals"][k]) for k in ("zero_consumption", "reverse_flow", "tamper",
                                                              "relay_open_consuming", "long_offline")]
        + [(N_("Tamper events"), data["totals"]["tamper_events"])],
        chart=chart, totals=totals).pdf()
