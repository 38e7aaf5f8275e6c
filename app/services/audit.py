"""The audit trail: every create, update, delete, import and command, by whom."""

from __future__ import annotations

from flask import g, has_request_context, request
from flask_login import current_user

from app.extensions import db
from app.models import AuditLog


def acting_user():
    """The signed-in user of this request (UI session or JWT), or None."""
    if not has_request_context():
        return None
    user = getattr(g, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        user = current_user if getattr(current_user, "is_authenticated", False) else None
    return user


def record(action: str, object_type: str, object_id=None, summary: str | None = None,
           details: dict | None = None, user=None) -> AuditLog:
    """Append an audit row in the current transaction (committed with the change it records)."""
    user = user or acting_user()
    row = AuditLog(
        user_id=getattr(user, "id", None),
        username=getattr(user, "username", None) or "system",
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        summary=(summary or "")[:255] or None,
        details=details,
        remote_addr=request.remote_addr if has_request_context() else None,
    )
    db.session.add(row)
    return row


def append(action: str, object_type: str, object_id=None, summary: str | None = None,
           details: dict | None = None, user=None) -> None:
    """``record`` as one INSERT sent now, in the current transaction (committed with the request's work),
    without the ORM's unit of work (an object, a flush and its hooks): for the hot paths that only add
    their audit row (on-demand reads)."""
    from app.models.types import utcnow

    user = user or acting_user()
    db.session.execute(_INSERT, {
        "at": utcnow(), "user_id": getattr(user, "id", None), "username": getattr(user, "username", None) or "system",
        "action": action, "object_type": object_type, "object_id": None if object_id is None else str(object_id),
        "summary": (summary or "")[:255] or None, "details": details,
        "remote_addr": request.remote_addr if has_request_context() else None})


_INSERT = AuditLog.__table__.insert()


AUDITED_TABLES = {"area", "meter", "sim", "customer", "meter_brand", "obis_point", "hes_setting", "ab_user",
                  "ab_role", "meter_secret", "subscription", "schedule"}
# Secrets: a change is recorded as "changed", never with the value (not even encrypted).
REDACTED = {"password", "password_enc", "block_cipher_key_enc", "authentication_key_enc", "secret_enc"}
# Bookkeeping that changes by itself (sign-ins, sessions, the schedule dispatcher): not a change anyone made.
IGNORED = {"changed_on", "updated_at", "last_login", "login_count", "fail_login_count", "invocation_counter",
           "last_run_at", "next_run_at", "last_meters"}


def _changes(obj) -> dict:
    """Changed columns as [old, new] (secrets as "changed"), and changed collections (a user's roles, a role's
    permissions) as {"added": [...], "removed": [...]}."""
    from sqlalchemy import inspect

    state = inspect(obj)
    columns = obj.__class__.__table__.c
    relationships = state.mapper.relationships
    out = {}
    for attr in state.attrs:
        if attr.key in IGNORED:
            continue
        hist = attr.history
        if not hist.has_changes():
            continue
        if attr.key in columns:
            if attr.key in REDACTED:
                out[attr.key] = "changed"
                continue
            old = hist.deleted[0] if hist.deleted else None
            new = hist.added[0] if hist.added else None
            out[attr.key] = [_plain(old), _plain(new)]
        elif attr.key in relationships and relationships[attr.key].uselist:
            out[attr.key] = {"added": sorted(str(v) for v in hist.added),
                             "removed": sorted(str(v) for v in hist.deleted)}
    return out


def _plain(value):
    if value is None or isinstance(value, (int, float, str, bool)):
        return value
    return getattr(value, "value", None) or str(value)


def _on_before_flush(session, flush_context, instances) -> None:
    if session.info.get("skip_audit"):
        return
    rows = []
    for action, objects in (("create", session.new), ("update", session.dirty), ("delete", session.deleted)):
        for obj in objects:
            table = getattr(obj, "__tablename__", None)
            if table not in AUDITED_TABLES:
                continue
            details = _changes(obj) if action != "delete" else None
            if action == "update" and (not session.is_modified(obj) or not details):
                continue
            rows.append((action, table, getattr(obj, "id", None), repr(obj), details))
    for action, table, object_id, summary, details in rows:
        record(action, table, object_id, summary[:255], details)


def install_audit_listener() -> None:
    """Record an audit row for every ORM create/update/delete of the audited tables."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    if not event.contains(Session, "before_flush", _on_before_flush):
        event.listen(Session, "before_flush", _on_before_flush)
