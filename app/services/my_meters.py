"""My Meters: what a customer sees of their own account — details, meters, consumption, prepaid tokens and
alerts — always limited to the customer record linked to the signed-in user (nobody else's meter, ever)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.extensions import db
from app.models import Alert, AlertState, Customer, Meter
from app.models.types import UTC
from app.services import MAX_ID, NotFound, ServiceError
from app.services.reports.consumption import consumption_series
from app.services.reports.periods import local_days, local_today, period_label, period_start
from app.services.scope import Scope

PERIODS = ("daily", "weekly", "monthly")
DAILY_DAYS = 30
WEEKLY_WEEKS = 12
MONTHLY_MONTHS = 12
TOKEN_HISTORY = 10
RECENT_ALERT_DAYS = 30
ALERT_LIMIT = 20


class NoCustomerRecord(NotFound):
    """The signed-in user has no customer record (staff, or a customer login not linked yet)."""

    def __init__(self) -> None:
        super().__init__("No customer record is linked to this user: My Meters is for customer accounts.")


def own_customer(user) -> Customer | None:
    """The customer record linked to ``user`` (None for anonymous users and for staff without one)."""
    if not getattr(user, "is_authenticated", False) or getattr(user, "id", None) is None:
        return None
    return db.session.execute(select(Customer).where(Customer.user_id == user.id)).scalar()


def require_customer(user) -> Customer:
    """The user's customer record, or ``NoCustomerRecord`` (404)."""
    customer = own_customer(user)
    if customer is None:
        raise NoCustomerRecord()
    return customer


def parse_meter_id(raw: Any) -> int:
    """A meter id from a query string: a positive whole number, else a 400."""
    text = str(raw or "").strip()
    if not text.isdecimal() or int(text) > MAX_ID:
        raise ServiceError("Give 'meter_id': the id of one of your meters.")
    return int(text)


def own_meter(customer: Customer, meter_id: int) -> Meter:
    """One of the customer's meters; any other id — existing or not — is simply not found."""
    meter = db.session.execute(select(Meter).where(Meter.id == meter_id, Meter.customer_id == customer.id)).scalar()
    if meter is None:
        raise NotFound(f"Meter {meter_id} was not found.")
    return meter


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def meter_card(meter: Meter) -> dict[str, Any]:
    """What a customer's meter card shows: identity, live status, relay and credit."""
    return {"id": meter.id, "number": meter.number, "brand": meter.brand.title if meter.brand else None,
            "status": meter.status.value, "online": bool(meter.online), "last_seen": _iso(meter.last_seen),
            "relay_state": meter.relay_state.value if meter.relay_state else "unknown",
            "credit_balance": meter.credit_balance, "installed_at": _iso(meter.installed_at)}


def customer_meters(customer: Customer) -> list[Meter]:
    """The customer's meters in number order."""
    return list(db.session.execute(select(Meter).options(selectinload(Meter.brand))
                                   .where(Meter.customer_id == customer.id).order_by(Meter.number)).scalars())


def _alert_dict(alert: Alert, numbers: dict[int, str]) -> dict[str, Any]:
    return {"id": alert.id, "meter_id": alert.meter_id, "number": numbers.get(alert.meter_id),
            "alert_type": alert.alert_type, "severity": alert.severity.value, "state": alert.state.value,
            "title": alert.title, "count": alert.count, "first_at": _iso(alert.first_at),
            "last_at": _iso(alert.last_at), "resolved_at": _iso(alert.resolved_at)}


def customer_alerts(customer: Customer, now: dt.datetime | None = None) -> dict[str, list[dict]]:
    """The alerts on the customer's meters: every active one, and those closed in the last 30 days."""
    now = now or dt.datetime.now(UTC)
    numbers = dict(db.session.execute(select(Meter.id, Meter.number).where(Meter.customer_id == customer.id)).all())
    if not numbers:
        return {"active": [], "recent": []}
    mine = Alert.meter_id.in_(list(numbers))
    active = db.session.execute(select(Alert).where(mine, Alert.state == AlertState.active)
                                .order_by(Alert.last_at.desc()).limit(ALERT_LIMIT)).scalars()
    recent = db.session.execute(select(Alert).where(
        mine, Alert.state != AlertState.active, Alert.last_at >= now - dt.timedelta(days=RECENT_ALERT_DAYS))
        .order_by(Alert.last_at.desc()).limit(ALERT_LIMIT)).scalars()
    return {"active": [_alert_dict(a, numbers) for a in active], "recent": [_alert_dict(a, numbers) for a in recent]}


def customer_tokens(meter: Meter, user) -> list[dict[str, Any]]:
    """The latest tokens sent to one of the customer's meters (who sent it is only "you" or "the utility")."""
    from app.services.commands import token_history

    username = getattr(user, "username", None)
    out = []
    for row in token_history(meter.id, TOKEN_HISTORY):
        by = row.pop("requested_by", None)
        out.append({**row, "by_you": by is not None and by == username})
    return out


def customer_summary(customer: Customer, user, now: dt.datetime | None = None) -> dict[str, Any]:
    """Everything the My Meters page shows at once: account, meter cards with token history, alerts."""
    from app.services.settings import get_setting

    meters = customer_meters(customer)
    return {
        "customer": {"id": customer.id, "account_number": customer.account_number, "name": customer.name,
                     "address": customer.address, "phone": customer.phone, "email": customer.email},
        "meters": [{**meter_card(m), "tokens": customer_tokens(m, user)} for m in meters],
        "alerts": customer_alerts(customer, now),
        "token_entry": bool(get_setting("customer_token_entry")),
        "generated_at": (now or dt.datetime.now(UTC)).isoformat(),
    }


def _months_back(day: dt.date, months: int) -> dt.date:
    """The first day of the month ``months`` before the month of ``day``."""
    index = day.year * 12 + day.month - 1 - months
    return dt.date(index // 12, index % 12 + 1, 1)


def period_window(period: str, today: dt.date) -> tuple[dt.date, dt.date, list[str]]:
    """The local date range of a chart and the label of every point in it (last 30 days, the last 12 ISO weeks
    from Monday, or the last 12 months)."""
    if period == "daily":
        start = today - dt.timedelta(days=DAILY_DAYS - 1)
        return start, today, [d.isoformat() for d in local_days(start, today)]
    if period == "weekly":
        start = period_start(today, "weekly") - dt.timedelta(weeks=WEEKLY_WEEKS - 1)
        return start, today, [period_label(start + dt.timedelta(weeks=k), "weekly") for k in range(WEEKLY_WEEKS)]
    if period == "monthly":
        start = _months_back(today, MONTHLY_MONTHS - 1)
        return start, today, [f"{_months_back(today, k):%Y-%m}" for k in range(MONTHLY_MONTHS - 1, -1, -1)]
    raise ServiceError(f"Unknown period '{period}' (use daily, weekly or monthly).")


def customer_consumption(customer: Customer, meter_id: int, period: str, tz: ZoneInfo,
                         today: dt.date | None = None) -> dict[str, Any]:
    """kWh per local day (last 30), ISO week (last 12) or month (last 12) of one of the customer's meters, from the
    rollups.

    Every bar of the window is listed; a period without any rollup row has ``None`` (no data), not zero.
    """
    if period not in PERIODS:
        raise ServiceError(f"Unknown period '{period}' (use daily, weekly or monthly).")
    meter = own_meter(customer, meter_id)
    today = today or local_today(tz)
    start, end, labels = period_window(period, today)
    scope = Scope(customer_id=customer.id, meter_id=meter.id)
    by_label = {row["period"]: row for row in consumption_series(scope, start, end, period, tz)}
    points = []
    for label in labels:
        row = by_label.get(label)
        points.append({"period": label,
                       "import_kwh": row["import_kwh"] if row else None,
                       "export_kwh": row["export_kwh"] if row else None})
    imported = [p["import_kwh"] for p in points if p["import_kwh"] is not None]
    return {"meter_id": meter.id, "number": meter.number, "period": period, "unit": "kWh", "timezone": tz.key,
            "start": start.isoformat(), "end": end.isoformat(), "points": points, "total_kwh": round(sum(imported), 3),
            "periods_with_data": len(imported),
            "average_kwh": round(sum(imported) / len(imported), 3) if imported else None}
