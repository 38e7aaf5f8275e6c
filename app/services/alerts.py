"""The Active Alerts inbox: raise (folding repeats), acknowledge, resolve — and push each change live."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from app.extensions import db
from app.models import Alert, AlertState, Meter, Severity
from app.models.types import UTC
from app.services import NotFound, ServiceError, audit


def _payload(alert: Alert, number: str | None) -> dict:
    return {"id": alert.id, "meter_id": alert.meter_id, "number": number, "alert_type": alert.alert_type,
            "kind": alert.kind, "severity": alert.severity.value, "title": alert.title, "count": alert.count,
            "state": alert.state.value, "last_at": alert.last_at.isoformat() if alert.last_at else None}


def _emit(name: str, alert: Alert) -> None:
    from app.realtime.emit import emit_event

    meter = db.session.get(Meter, alert.meter_id) if alert.meter_id else None
    emit_event(name, _payload(alert, meter.number if meter else None),
               customer_id=meter.customer_id if meter else None)


def raise_alert(meter_id: int | None, alert_type: str, title: str, *, severity: Severity = Severity.warning,
                kind: str = "event", details: dict | None = None, at: dt.datetime | None = None,
                area_id: int | None = None, commit: bool = True, emit: bool = True) -> Alert:
    """Open an alert, or fold a repeat of the same meter and type into the active one (count + 1)."""
    at = at or dt.datetime.now(UTC)
    alert = db.session.execute(select(Alert).where(
        Alert.meter_id == meter_id if meter_id is not None else Alert.meter_id.is_(None),
        Alert.alert_type == alert_type, Alert.state == AlertState.active,
        Alert.area_id == area_id if meter_id is None else True,
    ).order_by(Alert.id.desc()).limit(1)).scalar()
    if alert is None:
        if area_id is None and meter_id is not None:
            area_id = db.session.execute(select(Meter.area_id).where(Meter.id == meter_id)).scalar()
        alert = Alert(meter_id=meter_id, area_id=area_id, kind=kind, alert_type=alert_type, severity=severity,
                      title=title, details=details, first_at=at, last_at=at, count=1)
        db.session.add(alert)
    else:
        alert.count += 1
        alert.last_at = max(alert.last_at, at)
        alert.details = details or alert.details
        if _rank(severity) > _rank(alert.severity):
            alert.severity = severity
    db.session.flush()
    if commit:
        db.session.commit()
    if emit:
        _emit("alert_raised", alert)
    return alert


def emit_raised(alerts: list[Alert]) -> None:
    """Push alerts raised with ``emit=False`` once their transaction has committed."""
    for alert in alerts:
        _emit("alert_raised", alert)


def _rank(severity: Severity) -> int:
    return {Severity.info: 0, Severity.warning: 1, Severity.critical: 2}[severity]


def _transition(alert_ids: list[int], user, comment: str | None, target: AlertState) -> list[Alert]:
    alerts = db.session.execute(select(Alert).where(Alert.id.in_(alert_ids))).scalars().all()
    if len(alerts) != len(set(alert_ids)):
        raise NotFound("Some alerts were not found.")
    allowed = {AlertState.acknowledged: {AlertState.active},
               AlertState.resolved: {AlertState.active, AlertState.acknowledged}}[target]
    now, verb = dt.datetime.now(UTC), "acknowledge" if target == AlertState.acknowledged else "resolve"
    for alert in alerts:
        if alert.state not in allowed:
            raise ServiceError(f"Alert {alert.id} is already {alert.state.value}.", status=409)
        alert.state = target
        if target == AlertState.acknowledged:
            alert.acknowledged_at, alert.acknowledged_by_id, alert.ack_comment = now, getattr(user, "id", None), comment
        else:
            alert.resolved_at, alert.resolved_by_id, alert.resolve_comment = now, getattr(user, "id", None), comment
        audit.record(verb, "alert", alert.id, f"{target.value}: {alert.title}", {"comment": comment})
    db.session.commit()
    for alert in alerts:
        _emit(f"alert_{target.value}", alert)
    return alerts


def acknowledge(alert_ids: list[int], user, comment: str | None = None) -> list[Alert]:
    """Acknowledge active alerts (single or bulk): they leave the active list and stay in the log."""
    return _transition(alert_ids, user, comment, AlertState.acknowledged)


def resolve(alert_ids: list[int], user, comment: str | None = None) -> list[Alert]:
    """Close alerts (active or acknowledged)."""
    return _transition(alert_ids, user, comment, AlertState.resolved)


def resolve_automatically(meter_id: int, alert_type: str, reason: str) -> int:
    """Close the active alert of a condition that cleared by itself (e.g. communication restored)."""
    alerts = db.session.execute(select(Alert).where(
        Alert.meter_id == meter_id, Alert.alert_type == alert_type,
        Alert.state.in_([AlertState.active, AlertState.acknowledged]))).scalars().all()
    now = dt.datetime.now(UTC)
    for alert in alerts:
        alert.state, alert.resolved_at, alert.resolve_comment = AlertState.resolved, now, reason
    db.session.commit()
    for alert in alerts:
        _emit("alert_resolved", alert)
    return len(alerts)
