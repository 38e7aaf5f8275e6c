"""The command log and its audit trail as CSV, token history per meter, and waiting for an outcome."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import select
from sqlalchemy.orm import aliased

from app.extensions import db
from app.models import AuditLog, Meter
from app.models.commands import FINAL_STATES, Command
from app.services import ServiceError
from app.services.commands.kinds import TOKEN_STATUS
from app.services.commands.queue import as_dict
from app.services.csvio import write_rows

COMMAND_COLUMNS = ["id", "created_at", "requested_by", "kind", "meter", "job_id", "params", "state", "reason",
                   "result", "attempts", "sent_at", "finished_at", "expires_at"]
AUDIT_COLUMNS = ["at", "username", "action", "object_type", "object_id", "summary", "details", "remote_addr"]
AUDIT_TYPES = ("command", "command_job", "firmware_image")


def _time(value: str | None, name: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ServiceError(f"'{name}' must be an ISO 8601 date or date-time.", status=422) from exc
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def command_select(meter_ids=None, kind: str | None = None, state: str | None = None, start: str | None = None,
                   end: str | None = None, number: str | None = None):
    """The commands matching the filters (``meter_ids`` a select of visible meter ids, or None for all)."""
    stmt = select(Command)
    if meter_ids is not None:
        stmt = stmt.where(Command.meter_id.in_(meter_ids))
    if kind:
        stmt = stmt.where(Command.kind == kind)
    if state:
        stmt = stmt.where(Command.state == state)
    if number:
        stmt = stmt.where(Command.meter_id.in_(select(Meter.id).where(Meter.number == number)))
    if (since := _time(start, "from")) is not None:
        stmt = stmt.where(Command.created_at >= since)
    if (until := _time(end, "to")) is not None:
        stmt = stmt.where(Command.created_at < until)
    return stmt


def _plain(value: Any) -> str:
    return "" if value in (None, {}, []) else json.dumps(value, default=str, separators=(",", ":"))


def _iso(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()


def export_commands(stmt) -> Iterator[str]:
    """The command log as CSV (who, when, what, which meter, outcome and what was read back)."""
    from app.services.fleet_import import _stream

    user = aliased(User)
    rows = (select(Command.id, Command.created_at, user.username, Command.kind, Meter.number, Command.job_id,
                   Command.params, Command.state, Command.reason, Command.result, Command.attempts, Command.sent_at,
                   Command.finished_at, Command.expires_at)
            .join(Meter, Meter.id == Command.meter_id).outerjoin(user, user.id == Command.requested_by_id)
            .where(Command.id.in_(stmt.with_only_columns(Command.id).scalar_subquery())).order_by(Command.id))

    def lines():
        for r in _stream(rows):
            yield [r[0], _iso(r[1]), r[2] or "", r[3], r[4], r[5], _plain(r[6]), getattr(r[7], "value", r[7]),
                   r[8], _plain(r[9]), r[10], _iso(r[11]), _iso(r[12]), _iso(r[13])]

    return write_rows(COMMAND_COLUMNS, lines())


def export_audit(start: str | None = None, end: str | None = None) -> Iterator[str]:
    """The audit rows of commands, jobs and firmware uploads as CSV."""
    from app.services.fleet_import import _stream

    stmt = select(AuditLog.at, AuditLog.username, AuditLog.action, AuditLog.object_type, AuditLog.object_id,
                  AuditLog.summary, AuditLog.details, AuditLog.remote_addr).where(AuditLog.object_type.in_(AUDIT_TYPES))
    if (since := _time(start, "from")) is not None:
        stmt = stmt.where(AuditLog.at >= since)
    if (until := _time(end, "to")) is not None:
        stmt = stmt.where(AuditLog.at < until)
    return write_rows(AUDIT_COLUMNS, ([_iso(r[0]), *r[1:6], _plain(r[6]), r[7]]
                                      for r in _stream(stmt.order_by(AuditLog.id))))


def token_history(meter_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """The tokens sent to a meter, newest first, with the status the meter reported and the credit read back."""
    commands = db.session.execute(select(Command).where(Command.meter_id == meter_id, Command.kind == "token")
                                  .order_by(Command.id.desc()).limit(limit)).scalars()
    out = []
    for c in commands:
        result = c.result or {}
        status = result.get("token_status")
        out.append({"id": c.id, "token": (c.params or {}).get("token"), "state": c.state.value, "reason": c.reason,
                    "token_status": status,
                    "token_status_text": TOKEN_STATUS.get(status) if status is not None else None,
                    "credit_before": result.get("credit_before"), "credit": result.get("credit"),
                    "created_at": _iso(c.created_at), "finished_at": _iso(c.finished_at) or None,
                    "requested_by": c.requested_by.username if c.requested_by else None})
    return out


def wait_for_outcome(command: Command, seconds: float) -> dict[str, Any]:
    """Poll the command until it reaches a final state or ``seconds`` pass; returns it as a dict."""
    deadline = time.monotonic() + max(0.0, min(seconds, 120.0))
    while True:
        db.session.expire_all()
        current = db.session.get(Command, command.id)
        if current.state in FINAL_STATES or time.monotonic() >= deadline:
            return as_dict(current)
        db.session.rollback()  # end the read transaction so SQLite sees the worker's commits
        time.sleep(0.2)
