"""Investigations: assign, take notes, close with the field visit's outcome and what was recovered; closed
cases give each rule its precision (share of its cases confirmed as theft)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import case, func, select
from sqlalchemy.orm import selectinload

from app.extensions import db
from app.models import (
    Alert,
    AlertState,
    Area,
    Customer,
    Investigation,
    InvestigationNote,
    InvestigationOutcome,
    InvestigationState,
    Meter,
    RuleFinding,
)
from app.models.types import utcnow
from app.services import NotFound, ServiceError, alerts, audit
from app.services.reports.base import N_
from app.services.scope import Scope

STATES = ("", "open", "closed")


def _user_name(user) -> str:
    return getattr(user, "username", None) or "system"


def investigation_query(scope: Scope, state: str = ""):
    """SELECT of the investigations of the meters in scope, newest first."""
    if state not in STATES:
        raise ServiceError(f"Unknown state '{state}' (use open or closed).")
    stmt = select(Investigation).join(Meter, Meter.id == Investigation.meter_id).where(*scope.meter_clauses())
    if state:
        stmt = stmt.where(Investigation.state == InvestigationState(state))
    return stmt.order_by(Investigation.state.desc(), Investigation.score.desc(), Investigation.id.desc())


def investigation_page(scope: Scope, state: str = "", page: int = 0, size: int = 50) -> list[dict]:
    """One page of investigations in scope as JSON."""
    stmt = investigation_query(scope, state).limit(size).offset(max(0, page) * size)
    return [as_dict(case) for case in db.session.execute(stmt).scalars()]


def get_investigation(investigation_id: int, scope: Scope) -> Investigation:
    """One investigation in scope (404 otherwise)."""
    found = db.session.execute(investigation_query(scope).where(Investigation.id == investigation_id)
                               .options(selectinload(Investigation.notes))).scalar()
    if found is None:
        raise NotFound(f"Investigation {investigation_id} was not found.")
    return found


def as_dict(case: Investigation, *, with_findings: bool = False) -> dict:
    """JSON form of an investigation."""
    meter = case.meter
    data = {
        "id": case.id, "meter_id": case.meter_id, "meter": meter.number if meter else None,
        "area": meter.area.full_name if meter and meter.area else None,
        "customer": meter.customer.name if meter and meter.customer else None,
        "state": case.state.value, "rules": case.rules or [], "score": case.score, "reason": case.reason,
        "assigned_to": case.assigned_to.username if case.assigned_to else None,
        "outcome": case.outcome.value if case.outcome else None,
        "energy_recovered_kwh": case.energy_recovered_kwh, "amount_recovered": case.amount_recovered,
        "opened_at": case.opened_at.isoformat(), "closed_at": case.closed_at.isoformat() if case.closed_at else None,
        "alert_id": case.alert_id,
        "notes": [{"author": n.author, "text": n.text, "at": n.created_at.isoformat()} for n in case.notes],
    }
    if with_findings:
        data["findings"] = [
            {"rule": f.rule, "as_of": f.as_of.isoformat(), "score": f.score, "reason": f.reason, "details": f.details}
            for f in db.session.execute(select(RuleFinding).where(RuleFinding.investigation_id == case.id)
                                        .order_by(RuleFinding.as_of.desc(), RuleFinding.score.desc())).scalars()]
    return data


def assignees() -> list[dict]:
    """The active users a case can be given to: those whose roles may work investigations, by name."""
    from flask import current_app

    sm = current_app.appbuilder.sm
    may_work = sm.find_permission_view_menu("can_edit", "InvestigationApi")
    users = [u for u in sm.get_all_users() if u.active and any(may_work in r.permissions for r in u.roles)]
    return sorted(({"username": u.username, "name": f"{u.first_name} {u.last_name}".strip() or u.username}
                   for u in users), key=lambda u: u["name"].lower())


def assign(case: Investigation, username: str | None, user=None) -> Investigation:
    """Give the case to a user (by user name), or unassign it with an empty name."""
    from flask import current_app

    assignee = None
    if username:
        assignee = current_app.appbuilder.sm.find_user(username=username)
        if assignee is None:
            raise ServiceError(f"There is no user '{username}'.", status=422)
    case.assigned_to_id = assignee.id if assignee else None
    _note(case, f"Assigned to {username}." if username else "Unassigned.", user)
    audit.record("assign", "investigation", case.id, f"assigned to {username or 'nobody'}", user=user)
    db.session.commit()
    return case


def add_note(case: Investigation, text: str, user=None) -> Investigation:
    """Append a note."""
    text = (text or "").strip()
    if not text:
        raise ServiceError("A note needs some text.", status=422)
    _note(case, text[:5000], user)
    db.session.commit()
    return case


def _note(case: Investigation, text: str, user) -> None:
    case.notes.append(InvestigationNote(author_id=getattr(user, "id", None), author=_user_name(user), text=text))


def close(case: Investigation, outcome: str, *, energy_kwh: float | None = None, amount: float | None = None,
          note: str | None = None, user=None) -> Investigation:
    """Close the case with the field visit's outcome; its alert is resolved."""
    if case.state == InvestigationState.closed:
        raise ServiceError(f"Investigation {case.id} is already closed.", status=409)
    if outcome not in InvestigationOutcome.__members__:
        raise ServiceError(f"Unknown outcome '{outcome}' (use one of: {', '.join(InvestigationOutcome)}).",
                           status=422)
    for name, value in (("energy_recovered_kwh", energy_kwh), ("amount_recovered", amount)):
        if value is not None and value < 0:
            raise ServiceError(f"'{name}' cannot be negative.", status=422)
    case.state, case.outcome = InvestigationState.closed, InvestigationOutcome(outcome)
    case.energy_recovered_kwh, case.amount_recovered = energy_kwh, amount
    case.closed_at, case.closed_by_id = utcnow(), getattr(user, "id", None)
    _note(case, f"Closed: {outcome.replace('_', ' ')}." + (f" {note.strip()}" if note and note.strip() else ""), user)
    audit.record("close", "investigation", case.id, f"closed as {outcome}",
                 {"energy_recovered_kwh": energy_kwh, "amount_recovered": amount}, user=user)
    db.session.commit()
    if case.alert_id is not None:
        alert = db.session.get(Alert, case.alert_id)
        if alert is not None and alert.state != AlertState.resolved:
            alerts.resolve([alert.id], user, f"Investigation {case.id} closed: {outcome.replace('_', ' ')}")
    return case


def rule_precision(scope: Scope) -> list[dict]:
    """Per rule, over closed investigations in scope: cases, outcomes and precision (theft confirmed ÷ closed)."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {o.value: 0 for o in InvestigationOutcome})
    for rules, outcome in db.session.execute(
            select(Investigation.rules, Investigation.outcome).join(Meter, Meter.id == Investigation.meter_id)
            .where(Investigation.state == InvestigationState.closed, *scope.meter_clauses())):
        for rule in rules or []:
            counts[rule][outcome.value] += 1
    rows = []
    for rule, by_outcome in sorted(counts.items()):
        closed = sum(by_outcome.values())
        rows.append({"rule": rule, "closed": closed, **by_outcome,
                     "precision": round(by_outcome["theft_confirmed"] / closed, 3) if closed else None})
    return rows


def summary(scope: Scope) -> dict:
    """Open and closed cases, confirmed thefts and the energy and amount recovered, in scope."""
    row = db.session.execute(
        select(func.count(Investigation.id),
               func.coalesce(func.sum(case((Investigation.state == InvestigationState.open, 1), else_=0)), 0),
               func.coalesce(func.sum(case((Investigation.outcome == InvestigationOutcome.theft_confirmed, 1),
                                           else_=0)), 0),
               func.coalesce(func.sum(Investigation.energy_recovered_kwh), 0.0),
               func.coalesce(func.sum(Investigation.amount_recovered), 0.0))
        .join(Meter, Meter.id == Investigation.meter_id).where(*scope.meter_clauses())).one()
    total, open_cases, confirmed, energy, amount = row
    return {"total": int(total), "open": int(open_cases), "closed": int(total) - int(open_cases),
            "theft_confirmed": int(confirmed), "energy_recovered_kwh": round(float(energy), 3),
            "amount_recovered": round(float(amount), 2)}


REPORT_COLUMNS = [N_("Case"), N_("Meter"), N_("Customer"), N_("Area"), N_("State"), N_("Rules"), N_("Score"),
                  N_("Assigned to"), N_("Outcome"), N_("Energy recovered (kWh)"), N_("Amount recovered"), N_("Opened"),
                  N_("Closed"), N_("Reason")]


def report_rows(scope: Scope, state: str = "", tz=None, limit: int | None = None):
    """Rows of the investigations report (times in the utility's zone)."""
    stmt = (select(Investigation.id, Meter.number, Customer.name, Area.name, Investigation.state,
                   Investigation.rules, Investigation.score, Investigation.assigned_to_id, Investigation.outcome,
                   Investigation.energy_recovered_kwh, Investigation.amount_recovered, Investigation.opened_at,
                   Investigation.closed_at, Investigation.reason)
            .join(Meter, Meter.id == Investigation.meter_id)
            .outerjoin(Customer, Customer.id == Meter.customer_id)
            .outerjoin(Area, Area.id == Meter.area_id)
            .where(*scope.meter_clauses()))
    if state:
        stmt = stmt.where(Investigation.state == InvestigationState(state))
    stmt = stmt.order_by(Investigation.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    from flask import current_app

    users = {u.id: u.username for u in current_app.appbuilder.sm.get_all_users()}
    for (case_id, number, customer, area, st, rules, score, assignee, outcome, energy, amount, opened, closed,
         reason) in db.session.execute(stmt):
        yield [case_id, number, customer or "", area or "", st.value, " ".join(rules or []), f"{score:.2f}",
               users.get(assignee, ""), outcome.value if outcome else "",
               "" if energy is None else f"{energy:.3f}", "" if amount is None else f"{amount:.2f}",
               _local(opened, tz), _local(closed, tz), reason or ""]


def _local(value: dt.datetime | None, tz) -> str:
    if value is None:
        return ""
    return (value.astimezone(tz) if tz else value).strftime("%Y-%m-%d %H:%M")
