"""What every report shares: whose meters it covers (customer scope, area subtree, one meter) and units."""

from __future__ import annotations

from flask_babel import gettext
from sqlalchemy import select

from app.extensions import db
from app.models import Area, Meter
from app.services import MAX_ID, NotFound
from app.services.reports.base import N_
from app.services.scope import Scope, area_ids_subquery, restricted_customer_id

WH_PER_KWH = 1000.0


def request_scope(area_id: int | None = None, meter: str | int | None = None) -> Scope:
    """The scope of the signed-in user, narrowed to an area and/or a meter (by id or number).

    A meter or area the user may not see is reported as not found (404), never as someone else's data.
    """
    customer_id = restricted_customer_id()
    meter_id = None
    if meter not in (None, ""):
        text = str(meter)
        column = Meter.id if isinstance(meter, int) or text.isascii() and text.isdigit() and _is_id(int(text)) \
            else Meter.number
        value = int(meter) if column is Meter.id else str(meter).strip()
        stmt = select(Meter.id).where(column == value)
        if customer_id is not None:
            stmt = stmt.where(Meter.customer_id == customer_id)
        meter_id = db.session.execute(stmt).scalar()
        if meter_id is None:
            raise NotFound(f"Meter '{meter}' was not found.")
    if area_id is not None:
        if db.session.get(Area, area_id) is None:
            raise NotFound(f"Area {area_id} was not found.")
        if customer_id is not None and not db.session.execute(
                select(Meter.id).where(Meter.customer_id == customer_id,
                                       Meter.area_id.in_(area_ids_subquery(area_id))).limit(1)).first():
            raise NotFound(f"Area {area_id} was not found.")
    return Scope(customer_id=customer_id, area_id=area_id, meter_id=meter_id)


def _is_id(value: int) -> bool:
    """Meter numbers are often all digits: a number that matches a meter's number wins over an id (and one too
    large for an id column is a number)."""
    if value > MAX_ID:
        return False
    return db.session.execute(select(Meter.id).where(Meter.number == str(value))).scalar() is None


def scope_names(scope: Scope) -> dict[str, str]:
    """Human names of the scope for report headings (keys translated where the report is shown)."""
    names = {}
    area = db.session.get(Area, scope.area_id) if scope.area_id is not None else None
    names[N_("Area")] = area.full_name if area else gettext("All areas")
    if scope.meter_id is not None:
        names[N_("Meter")] = db.session.execute(select(Meter.number).where(Meter.id == scope.meter_id)).scalar()
    return names


def kwh(wh: float | None, digits: int = 3) -> float:
    """Wh (registers) as kWh (reports), rounded."""
    return round((wh or 0.0) / WH_PER_KWH, digits)
