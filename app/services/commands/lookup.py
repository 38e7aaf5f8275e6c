"""Find a meter by number for the Remote and Meter Reading/Setting pages: its customer, live state and the
parameters of its brand grouped as the pages show them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.extensions import db
from app.models import Meter
from app.services import NotFound
from app.services.brands import GROUPS

SEARCH_LIMIT = 20


def search_meters(q: str, customer_id: int | None = None, area_ids=None, limit: int = SEARCH_LIMIT) -> list[dict]:
    """Meters whose number starts with (then contains) ``q``, exact match first."""
    q = (q or "").strip()
    if not q:
        return []
    stmt = select(Meter).where(Meter.number.ilike(f"%{q.replace('%', '').replace('_', '')}%"))
    if customer_id is not None:
        stmt = stmt.where(Meter.customer_id == customer_id)
    if area_ids is not None:
        stmt = stmt.where(Meter.area_id.in_(area_ids))
    meters = db.session.execute(stmt.order_by(Meter.number).limit(200)).scalars().all()
    meters.sort(key=lambda m: (m.number != q, not m.number.startswith(q), m.number))
    return [{"id": m.id, "number": m.number, "online": m.online, "customer": m.customer.name if m.customer else None,
             "brand": m.brand.title} for m in meters[:limit]]


def _points(meter: Meter) -> list[dict[str, Any]]:
    order = {g: i for i, g in enumerate(GROUPS)}
    points = sorted(meter.brand.points, key=lambda p: (order.get(p.group, len(order)), p.position))
    return [{"key": p.key, "name": p.name, "obis": p.obis, "class_id": p.class_id, "attribute": p.attribute,
             "method": p.method, "unit": p.unit, "scaler": p.scaler, "group": p.group, "access": p.access,
             "datatype": p.datatype, "readable": p.readable, "writable": p.writable,
             "profile": p.class_id == 7 and p.attribute == 2} for p in points]


def meter_card(meter: Meter) -> dict[str, Any]:
    """What the left quarter shows (customer details, status) plus the brand's parameters."""
    if meter is None:
        raise NotFound("Meter not found.")
    customer = meter.customer
    return {
        "id": meter.id, "number": meter.number, "online": meter.online,
        "last_seen": meter.last_seen.isoformat() if meter.last_seen else None,
        "status": meter.status.value, "comm_mode": meter.comm_mode.value,
        "relay_state": meter.relay_state.value if meter.relay_state else None,
        "credit_balance": meter.credit_balance, "firmware_version": meter.firmware_version,
        "clock_drift_seconds": meter.clock_drift_seconds,
        "brand": {"name": meter.brand.name, "title": meter.brand.title},
        "area": meter.area.full_name if meter.area else None,
        "sim": {"number": meter.sim.number, "ip_address": meter.sim.ip_address, "port": meter.sim.port}
        if meter.sim else None,
        "customer": {"name": customer.name, "account_number": customer.account_number, "address": customer.address,
                     "phone": customer.phone, "email": customer.email} if customer else None,
        "points": _points(meter),
    }
