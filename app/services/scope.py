"""Row-level visibility: customers see only their own meters; everyone can narrow by area."""

from __future__ import annotations

from dataclasses import dataclass

from flask import g, has_request_context, request, session
from flask_appbuilder.models.filters import BaseFilter
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import aliased

from app.extensions import db
from app.models import Area, Meter
from app.security import is_customer_only
from app.services import MAX_ID

NOBODY = -1


@dataclass(frozen=True)
class Scope:
    """Whose meters a page, figure or report covers: one customer's (``NOBODY`` = none), an area with its
    sub-areas, one meter; all None is the whole fleet. Written once for the dashboard, reports and analytics."""

    customer_id: int | None = None
    area_id: int | None = None
    meter_id: int | None = None

    def meter_clauses(self) -> list:
        """WHERE clauses on ``Meter``."""
        clauses = []
        if self.customer_id is not None:
            clauses.append(Meter.customer_id == self.customer_id)
        if self.area_id is not None:
            clauses.append(Meter.area_id.in_(area_ids_subquery(self.area_id)))
        if self.meter_id is not None:
            clauses.append(Meter.id == self.meter_id)
        return clauses

    def meter_ids(self):
        """SELECT of the ids of the meters in scope (every meter when unrestricted)."""
        return select(Meter.id).where(*self.meter_clauses())

    @property
    def restricted(self) -> bool:
        """True when the scope is narrower than the whole fleet."""
        return self.customer_id is not None or self.area_id is not None or self.meter_id is not None


def restricted_customer_id() -> int | None:
    """The customer id the current user is limited to, ``NOBODY`` if none is linked, else None."""
    if not has_request_context():
        return None
    user = g.user if getattr(g, "user", None) is not None else current_user
    if not getattr(user, "is_authenticated", False) or not is_customer_only(user):
        return None
    from app.models import Customer

    cid = db.session.execute(select(Customer.id).where(Customer.user_id == user.id)).scalar()
    return cid if cid is not None else NOBODY


def area_ids_subquery(area_id: int):
    """SELECT of the ids of an area and all its descendants (never correlated to an outer query)."""
    path = db.session.execute(select(Area.path).where(Area.id == area_id)).scalar()
    tree = aliased(Area, name="scope_area")
    if path is None:
        return select(tree.id).where(tree.id == NOBODY).correlate(None)
    return select(tree.id).where(tree.path.startswith(path, autoescape=True)).correlate(None)


def meter_ids_in_area(area_id: int):
    """SELECT of the ids of meters in an area or below it."""
    scoped = aliased(Meter, name="scope_meter")
    return select(scoped.id).where(scoped.area_id.in_(area_ids_subquery(area_id))).correlate(None)


def customer_meter_ids(customer_id: int):
    """SELECT of the ids of a customer's meters."""
    scoped = aliased(Meter, name="scope_meter")
    return select(scoped.id).where(scoped.customer_id == customer_id).correlate(None)


def scope_clause(model, column_name: str, customer_id: int):
    """The WHERE clause limiting ``model`` to one customer's rows, by the column that links it."""
    column = getattr(model, column_name)
    if column_name == "customer_id":
        return column == customer_id
    if model.__tablename__ == "customer":
        return model.id == customer_id
    return column.in_(customer_meter_ids(customer_id))


def area_clause(model, column_name: str, area_id: int):
    """The WHERE clause limiting ``model`` to an area and its descendants."""
    column = getattr(model, column_name)
    if column_name == "area_id":
        return column.in_(area_ids_subquery(area_id))
    if model.__tablename__ == "customer":
        scoped = aliased(Meter, name="scope_meter")
        return model.id.in_(
            select(scoped.customer_id).where(scoped.area_id.in_(area_ids_subquery(area_id))).correlate(None)
        )
    if model.__tablename__ == "sim":
        # A SIM is in the area of the meter it sits in; a SIM in no meter is in no area.
        scoped = aliased(Meter, name="scope_meter")
        return model.id.in_(
            select(scoped.sim_id).where(scoped.area_id.in_(area_ids_subquery(area_id))).correlate(None)
        )
    return column.in_(meter_ids_in_area(area_id))


def selected_area_id() -> int | None:
    """The area chosen in the top bar (``?area=`` or the session), if any."""
    if not has_request_context():
        return None
    raw = request.args.get("area")
    if raw is not None:
        session["area_id"] = int(raw) if raw.isdecimal() and int(raw) <= MAX_ID else None
    return session.get("area_id")


class CustomerScopeFilter(BaseFilter):
    """Base filter: a Customer-role user only ever sees rows of their own meters."""

    name = "Customer scope"

    def apply(self, query, value):
        customer_id = restricted_customer_id()
        if customer_id is None:
            return query
        return query.filter(scope_clause(self.model, self.column_name, customer_id))


class SelectedAreaFilter(BaseFilter):
    """Base filter: narrow every list to the area picked in the top bar (and its sub-areas)."""

    name = "Selected area"

    def apply(self, query, value):
        area_id = selected_area_id() if not request.path.startswith("/api/") else None
        if area_id is None:
            return query
        return query.filter(area_clause(self.model, self.column_name, area_id))


class AreaTreeFilter(BaseFilter):
    """Search filter "in area (with sub-areas)"; REST: ``(col:area_id,opr:in_area,value:ID)``."""

    name = "In area (with sub-areas)"
    arg_name = "in_area"

    def apply(self, query, value):
        try:
            area_id = int(value)
        except (TypeError, ValueError):
            return query.filter(self.model.id == NOBODY)
        return query.filter(area_clause(self.model, self.column_name, area_id))


def scoped_base_filters(customer_column: str, area_column: str | None = None) -> list:
    """The base filters every meter-related list and API applies (customer scope, chosen area)."""
    return [[customer_column, CustomerScopeFilter, None], [area_column or customer_column, SelectedAreaFilter, None]]


class MeterNumberFilter(BaseFilter):
    """Search filter by meter number on a ``meter_id`` column; REST: ``(col:meter_id,opr:meter_number,value:X)``."""

    name = "Meter number"
    arg_name = "meter_number"

    def apply(self, query, value):
        scoped = aliased(Meter, name="number_meter")
        ids = select(scoped.id).where(scoped.number == str(value).strip()).correlate(None)
        return query.filter(getattr(self.model, self.column_name).in_(ids))
