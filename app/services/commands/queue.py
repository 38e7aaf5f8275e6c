"""The command queue: create (idempotent), claim, execute with bounded retries, store and forward for
offline dial-in meters, expire, cancel; every transition is written once, audited and pushed live.

States: queued → sent → succeeded | failed | expired | cancelled. A command is *claimed* by one
atomic UPDATE (queued → sent) so two workers, a retry and a reconnecting meter can never send it
twice; commands to one meter run one at a time, by priority and then in the order they were created:
an operator's disconnect or reconnect first, then other operator commands, then customers' own token
entries (which are also rate-limited per customer and meter), so a customer cannot hold back operators.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from typing import Any

from flask import current_app
from sqlalchemy import and_, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from app.extensions import db
from app.models import CommandJob, CommMode, FirmwareTransfer, JobTracking, Meter
from app.models.commands import FINAL_STATES, Command, CommandState
from app.models.types import UTC
from app.services import Forbidden, NotFound, ServiceError, TooManyRequests, audit
from app.services.commands.kinds import TOKEN_STATUS, validate_params
from app.services.meter_access import MeterUnreachable, run_on_meter

log = logging.getLogger(__name__)
OPEN_STATES = (CommandState.queued, CommandState.sent)
BUSY_RETRY_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 60.0
STALE_SECONDS = 120
# A command's priority among its meter's queued commands and in the task queue (higher first).
RELAY_PRIORITY = 55  # an operator's disconnect / reconnect
STAFF_PRIORITY = 50  # other commands of operators and admins (the task queue's PRIORITY_COMMAND)
CUSTOMER_PRIORITY = 40  # a customer's own token entry
CUSTOMER_TOKENS = 5  # default of HES_CUSTOMER_TOKENS: token entries a customer may make on one meter ...
CUSTOMER_TOKEN_WINDOW_SECONDS = 600  # ... within this many seconds (HES_CUSTOMER_TOKEN_WINDOW_SECONDS)


def _cfg(name: str, default: float) -> float:
    return float(current_app.config.get(name, default))


def now_utc() -> dt.datetime:
    """The current time (UTC, aware)."""
    return dt.datetime.now(UTC)


def _tasks():
    from app.tasks import commands as command_tasks

    return command_tasks


# ----- presentation -----------------------------------------------------------------------------

def summary(command: Command) -> dict[str, Any]:
    """The short result shown in progress rows: values by key, relay state, token status, or the error."""
    result = command.result or {}
    if command.state in (CommandState.failed, CommandState.expired, CommandState.cancelled):
        return {"error": command.reason or command.state.value}
    if "values" in result:
        return {v["key"]: {"value": v.get("value", v.get("written")), "unit": v.get("unit")}
                for v in result["values"]}
    if "relay_state" in result:
        return {"relay": result["relay_state"]}
    if "token_status" in result:
        return {"token": TOKEN_STATUS.get(result["token_status"], "?"), "credit": result.get("credit")}
    if "version_after" in result:
        return {"firmware": result["version_after"]}
    if "drift_after_seconds" in result:
        return {"clock drift s": result["drift_after_seconds"]}
    return {k: v for k, v in result.items() if k in ("waiting",)}


def as_dict(command: Command) -> dict[str, Any]:
    """A command as the API and pages show it."""
    meter = command.meter
    out = {
        "id": command.id, "kind": command.kind, "meter_id": command.meter_id,
        "number": meter.number if meter else None, "job_id": command.job_id, "params": command.params or {},
        "state": command.state.value, "reason": command.reason, "result": command.result,
        "attempts": command.attempts, "requested_by": command.requested_by.username if command.requested_by else None,
        "created_at": command.created_at.isoformat() if command.created_at else None,
        "sent_at": command.sent_at.isoformat() if command.sent_at else None,
        "finished_at": command.finished_at.isoformat() if command.finished_at else None,
        "expires_at": command.expires_at.isoformat() if command.expires_at else None,
        "idempotency_key": public_key(command.idempotency_key),
    }
    if command.kind == "firmware":
        transfer = db.session.execute(select(FirmwareTransfer)
                                      .where(FirmwareTransfer.command_id == command.id)).scalar()
        if transfer is not None:
            out["transfer"] = transfer_dict(transfer)
    return out


def transfer_dict(transfer: FirmwareTransfer) -> dict[str, Any]:
    """Per-meter image transfer progress."""
    total = transfer.blocks_total or 0
    return {"status": transfer.status, "block_size": transfer.block_size, "blocks_total": total,
            "blocks_done": transfer.blocks_done, "blocks_sent": transfer.blocks_sent, "sessions": transfer.sessions,
            "resumed_from": transfer.resumed_from, "progress": round(transfer.blocks_done / total, 4) if total else 0.0,
            "version_before": transfer.version_before, "version_after": transfer.version_after}


def emit_command(command: Command, **extra: Any) -> None:
    """Push the command's state to staff and to the meter's customer."""
    from app.realtime.emit import emit_event

    meter = command.meter
    emit_event("command_updated", {
        "id": command.id, "meter_id": command.meter_id, "number": meter.number if meter else None,
        "kind": command.kind, "state": command.state.value, "reason": command.reason, "result": command.result,
        "job_id": command.job_id, **extra}, customer_id=meter.customer_id if meter else None)


# ----- creation ---------------------------------------------------------------------------------

def check_allowed(user, meter: Meter, kind: str) -> None:
    """Customers may only load tokens on their own meters, and only while the site setting allows it."""
    from app.security import is_customer_only
    from app.services.settings import get_setting

    if user is None or not is_customer_only(user):
        return
    if kind != "token":
        raise Forbidden("Customers may only load tokens.")
    if not get_setting("customer_token_entry"):
        raise Forbidden("Token entry by customers is switched off.")
    if meter.customer is None or meter.customer.user_id != user.id:
        raise NotFound(f"Meter {meter.id} not found.")


def command_priority(user, kind: str) -> int:
    """Operators' commands go before customers' (priority per role, then per kind)."""
    from app.security import is_customer_only

    if user is not None and is_customer_only(user):
        return CUSTOMER_PRIORITY
    return RELAY_PRIORITY if kind in ("disconnect", "reconnect") else STAFF_PRIORITY


def limit_customer_tokens(user, meter: Meter) -> None:
    """A customer enters at most ``HES_CUSTOMER_TOKENS`` tokens on a meter per window; the next one is refused
    with a 429 that says when it will be accepted."""
    from app.security import is_customer_only

    if user is None or not is_customer_only(user):
        return
    limit = int(_cfg("HES_CUSTOMER_TOKENS", CUSTOMER_TOKENS))
    window = dt.timedelta(seconds=_cfg("HES_CUSTOMER_TOKEN_WINDOW_SECONDS", CUSTOMER_TOKEN_WINDOW_SECONDS))
    now = now_utc()
    recent = db.session.execute(
        select(Command.created_at).where(Command.meter_id == meter.id, Command.kind == "token",
                                         Command.requested_by_id == user.id, Command.created_at > now - window)
        .order_by(Command.created_at.desc()).limit(limit)).scalars().all()
    if len(recent) < limit:
        return
    oldest = recent[-1] if recent[-1].tzinfo else recent[-1].replace(tzinfo=UTC)
    free_at = oldest + window
    wait = max(1, math.ceil((free_at - now).total_seconds()))
    minutes = window.total_seconds() / 60
    raise TooManyRequests(
        f"Too many tokens entered on meter {meter.number}: at most {limit} every {minutes:g} minutes. "
        f"You can enter the next one in {wait} s (at {free_at:%H:%M:%S} UTC).", retry_after=wait)


def expiry(expires_in: Any = None) -> dt.datetime:
    """When an undelivered command expires: ``expires_in`` seconds (1 s .. 30 days) or the site default."""
    if expires_in in (None, ""):
        seconds = _cfg("HES_COMMAND_EXPIRY_HOURS", 24) * 3600
    else:
        try:
            seconds = float(expires_in)
        except (TypeError, ValueError) as exc:
            raise ServiceError("'expires_in' is a number of seconds.", status=422) from exc
        if not 1 <= seconds <= 30 * 86400:
            raise ServiceError("'expires_in' must be between 1 second and 30 days.", status=422)
    return now_utc() + dt.timedelta(seconds=seconds)


def scoped_key(user, key) -> str | None:
    """An idempotency key as stored: prefixed with the caller's user id, so keys never meet across users (another
    user's key is neither found nor refused with 409)."""
    text = str(key or "").strip()
    if not text:
        return None
    return f"{getattr(user, 'id', None) or 0}:{text}"[:80]


def public_key(stored: str | None) -> str | None:
    """The key as its caller gave it."""
    return stored.split(":", 1)[1] if stored and ":" in stored else stored


def _by_key(key: str) -> Command | None:
    return db.session.execute(select(Command).where(Command.idempotency_key == key)).scalar()


def _same_request(existing: Command, kind: str, meter_id: int) -> Command:
    if existing.kind != kind or existing.meter_id != meter_id:
        raise ServiceError("This Idempotency-Key was already used for a different command.", status=409)
    return existing


def create_command(kind: str, meter_id: int, params: dict | None, *, user=None,
                   idempotency_key: str | None = None, expires_in: Any = None) -> tuple[Command, bool]:
    """Queue one command (or return the one already created with this idempotency key); returns (command, created)."""
    key = scoped_key(user, idempotency_key)
    if key is not None and (existing := _by_key(key)) is not None:
        return _same_request(existing, kind, meter_id), False
    meter = db.session.get(Meter, meter_id)
    if meter is None:
        raise NotFound(f"Meter {meter_id} not found.")
    check_allowed(user, meter, kind)
    clean = validate_params(kind, meter, params)
    if kind == "token":
        limit_customer_tokens(user, meter)
    command = Command(kind=kind, meter_id=meter.id, params=clean, state=CommandState.queued, idempotency_key=key,
                      requested_by_id=getattr(user, "id", None), expires_at=expiry(expires_in), attempts=0,
                      priority=command_priority(user, kind))
    db.session.add(command)
    try:
        db.session.flush()
    except IntegrityError:
        # A double click raced us to the same key: the other request's command is the answer.
        db.session.rollback()
        existing = _by_key(key) if key else None
        if existing is None:
            raise
        return _same_request(existing, kind, meter_id), False
    if kind == "firmware":
        db.session.add(FirmwareTransfer(command_id=command.id, meter_id=meter.id, image_id=clean["image_id"]))
    audit.record("command", "command", command.id, f"{kind} queued for {meter.number}", user=user,
                 details={"kind": kind, "meter": meter.number, "params": clean,
                          "expires_at": command.expires_at.isoformat()})
    db.session.commit()
    _dispatch_committed(command)
    return command, True


_last_dispatch_error = [0.0]
_undispatched: dict[tuple[str, int], int] = {}  # ("command" | "job", id) -> priority: written, not yet enqueued
_redispatcher: list[threading.Thread | None] = [None]
REDISPATCH_SECONDS = 2.0


def _dispatch_committed(command: Command) -> None:
    """Announce and enqueue a command that is already written (see ``dispatch``)."""
    try:
        emit_command(command)
    except Exception as exc:  # noqa: BLE001 - a lost Socket.IO message queue: the page re-fetches
        _log_dispatch_error(f"command {command.id} not announced ({exc})")
    dispatch("command", command.id, command.priority)


def dispatch(what: str, ident: int, priority: int = STAFF_PRIORITY) -> None:
    """Enqueue a written command (``what="command"``) or group job's fan-out (``"job"``). With the task queue lost
    (Redis down) it is kept here and retried every ``REDISPATCH_SECONDS`` until the queue takes it, so it runs
    seconds after Redis is back; the caller still gets its 201 (an error here made clients retry and create
    duplicates). Should this process stop first, the sweeper dispatches what it left queued. The error is logged
    at most once a minute."""
    try:
        _enqueue(what, ident, priority)
    except Exception as exc:  # noqa: BLE001 - any queue/broker failure; the row is committed either way
        _log_dispatch_error(f"{what} {ident} stored but not dispatched ({exc}); it is dispatched when the task "
                            "queue answers again")
        _undispatched[(what, ident)] = priority
        if _redispatcher[0] is None:
            _redispatcher[0] = threading.Thread(target=_redispatch, name="command-redispatch", daemon=True)
            _redispatcher[0].start()


def _enqueue(what: str, ident: int, priority: int) -> None:
    if what == "job":
        _tasks().enqueue_job(ident)
    else:
        _tasks().enqueue_command(ident, priority=priority)


def _redispatch() -> None:
    """Retry the enqueues that failed, in priority order, until none is left (then end)."""
    try:
        while _undispatched:
            time.sleep(REDISPATCH_SECONDS)
            for (what, ident), priority in sorted(_undispatched.items(), key=lambda item: -item[1]):
                try:
                    _enqueue(what, ident, priority)
                except Exception:  # noqa: BLE001 - still lost: try again later
                    break
                _undispatched.pop((what, ident), None)
        log.warning("the task queue answers again; every command stored meanwhile was dispatched")
    finally:
        _redispatcher[0] = None


def _log_dispatch_error(message: str) -> None:
    if time.monotonic() - _last_dispatch_error[0] > 60:
        _last_dispatch_error[0] = time.monotonic()
        log.error(message)


# ----- execution --------------------------------------------------------------------------------

def _claim(command: Command) -> bool:
    """queued → sent, only when no other command of the meter is running or waiting ahead of it (higher priority,
    or the same and older; and, for
    firmware, while fewer transfers than the concurrency limit are running). A running firmware transfer does
    not hold back other commands: they run inside its association between blocks (see ``meter_gate``)."""
    other = aliased(Command)
    running = other.state == CommandState.sent
    if command.kind != "firmware":
        running = and_(running, other.kind != "firmware")
    before = (other.priority > command.priority) | and_(other.priority == command.priority, other.id < command.id)
    ahead = select(other.id).where(other.meter_id == command.meter_id, other.id != command.id, (
        running | and_(other.state == CommandState.queued, before))).exists()
    conditions = [Command.id == command.id, Command.state == CommandState.queued, ~ahead]
    if command.kind == "firmware":
        running = aliased(Command)
        count = (select(func.count(running.id)).where(running.kind == "firmware", running.state == CommandState.sent)
                 .scalar_subquery())
        conditions.append(count < int(_cfg("HES_FIRMWARE_CONCURRENCY", 4)))
    now = now_utc()
    claimed = db.session.execute(update(Command).where(*conditions).values(
        state=CommandState.sent, sent_at=now, attempts=Command.attempts + 1, reason=None,
        node_id=current_app.config.get("HES_NODE_ID"))).rowcount == 1
    db.session.commit()
    return claimed


def finish(command: Command, state: CommandState, reason: str | None = None, result: dict | None = None) -> bool:
    """Move an open command to a final state exactly once; count it in its job, audit and push it."""
    values: dict[str, Any] = {"state": state, "reason": reason, "finished_at": now_utc()}
    if result is not None:
        values["result"] = result
    changed = db.session.execute(update(Command).where(Command.id == command.id, Command.state.in_(OPEN_STATES))
                                 .values(**values)).rowcount == 1
    if not changed:
        db.session.rollback()
        return False
    db.session.refresh(command)
    meter = command.meter
    audit.record("command_result", "command", command.id,
                 f"{command.kind} on {meter.number}: {state.value}" + (f" — {reason}" if reason else ""),
                 user=command.requested_by,
                 details={"kind": command.kind, "meter": meter.number, "state": state.value, "reason": reason,
                          "result": summary(command), "job_id": command.job_id})
    job_state = _count_in_job(command, state) if command.job_id else None
    db.session.commit()
    emit_command(command)
    if job_state is not None:
        from app.realtime.emit import emit_event

        emit_event("job_progress", {**job_state, "meter_id": command.meter_id, "number": meter.number,
                                    "command_id": command.id, "state": state.value, "result": summary(command),
                                    "reason": reason})
    return True


def _count_in_job(command: Command, state: CommandState) -> dict[str, Any]:
    column = JobTracking.done if state == CommandState.succeeded else JobTracking.failed
    job_id = command.job_id
    db.session.execute(update(JobTracking).where(JobTracking.job_id == job_id).values({column: column + 1}))
    done, failed, finished_at, total, kind = db.session.execute(
        select(JobTracking.done, JobTracking.failed, JobTracking.finished_at, CommandJob.total, CommandJob.kind)
        .join(CommandJob, CommandJob.id == JobTracking.job_id).where(JobTracking.job_id == job_id)).one()
    if done + failed >= total and finished_at is None and db.session.execute(
            update(JobTracking).where(JobTracking.job_id == job_id, JobTracking.finished_at.is_(None))
            .values(finished_at=now_utc())).rowcount == 1:
        finished_at = now_utc()
        audit.record("job_finished", "command_job", job_id, f"{kind} job {job_id} finished: {done} succeeded, "
                     f"{failed} failed of {total}", user=db.session.get(CommandJob, job_id).requested_by,
                     details={"done": done, "failed": failed, "total": total})
    return {"job_id": job_id, "kind": kind, "done": done, "failed": failed, "total": total,
            "finished": finished_at is not None}


def _requeue(command: Command, reason: str) -> None:
    db.session.execute(update(Command).where(Command.id == command.id, Command.state == CommandState.sent)
                       .values(state=CommandState.queued, reason=reason))
    db.session.commit()
    db.session.refresh(command)
    emit_command(command)


def _wait_for_meter(command: Command) -> None:
    """Store and forward: leave the command queued until the meter dials in (or it expires)."""
    waiting = "waiting for the meter to connect"
    if (command.result or {}).get("waiting") != waiting:
        db.session.execute(update(Command).where(Command.id == command.id, Command.state == CommandState.queued)
                           .values(result={"waiting": waiting}))
        db.session.commit()
        db.session.refresh(command)
        emit_command(command)
    _tasks().schedule_expiry(command.id, command.expires_at)


def _operation(command: Command) -> tuple[str, dict[str, Any], float | None]:
    params = command.params or {}
    kind = command.kind
    if kind in ("disconnect", "reconnect"):
        return "command_relay", {"connect": kind == "reconnect"}, None
    if kind == "token":
        return "command_token", {"token": params["token"], "retry": command.attempts > 1}, None
    if kind == "set":
        return "command_set", {"values": params["values"]}, None
    if kind == "load_limit":
        return "command_load_limit", {"threshold": params["threshold"]}, None
    if kind == "clock_sync":
        return "command_clock_sync", {}, None
    if kind == "read":
        return "command_read", {"points": params["points"], "start": params.get("from"), "end": params.get("to")}, None
    return "command_firmware", {"command_id": command.id}, _cfg("HES_FIRMWARE_TIMEOUT_MINUTES", 120) * 60


def _max_attempts(command: Command) -> int:
    return int(_cfg("HES_FIRMWARE_ATTEMPTS", 6) if command.kind == "firmware" else _cfg("HES_COMMAND_ATTEMPTS", 3))


def _unreachable(command: Command, meter: Meter, exc: Exception) -> str:
    attempts = command.attempts
    if attempts >= _max_attempts(command):
        finish(command, CommandState.failed, f"Unreachable after {attempts} attempt(s): {exc}")
        return CommandState.failed.value
    _requeue(command, f"Attempt {attempts} failed: {exc}")
    if meter.comm_mode == CommMode.dial_in and not meter.online:
        _wait_for_meter(command)
        return CommandState.queued.value
    delay = min(MAX_BACKOFF_SECONDS, _cfg("HES_COMMAND_RETRY_SECONDS", 20) * 2 ** (attempts - 1))
    _tasks().enqueue_command(command.id, delay=delay, priority=command.priority)
    return CommandState.queued.value


def execute(command_id: int) -> str | None:
    """Run one queued command if it can run now; returns its state afterwards."""
    command = db.session.get(Command, command_id)
    if command is None:
        return None
    if command.state in FINAL_STATES or command.state == CommandState.sent:
        return command.state.value
    if command.expires_at is not None and command.expires_at <= now_utc():
        finish(command, CommandState.expired, "Expired before the meter could be reached.")
        return CommandState.expired.value
    meter = command.meter
    sent = {"id": command.id, "meter_id": meter.id, "number": meter.number, "kind": command.kind, "state": "sent",
            "reason": None, "result": None, "job_id": command.job_id}
    customer_id = meter.customer_id
    if meter.comm_mode == CommMode.dial_in and not meter.online:
        _wait_for_meter(command)
        return CommandState.queued.value
    if not _claim(command):
        db.session.refresh(command)
        if command.state == CommandState.queued:
            _tasks().enqueue_command(command.id, delay=BUSY_RETRY_SECONDS, priority=command.priority)
        return command.state.value
    from app.realtime.emit import emit_event

    emit_event("command_updated", sent, customer_id=customer_id)
    name, kwargs, timeout = _operation(command)
    try:
        result = run_on_meter(meter.id, name, timeout=timeout, **kwargs)
    except MeterUnreachable as exc:
        db.session.rollback()
        return _unreachable(command, meter, exc)
    except ServiceError as exc:
        db.session.rollback()
        finish(command, CommandState.failed, exc.message)
        return CommandState.failed.value
    except Exception as exc:  # an unexpected bug must still end the command, not leave it "sent" forever
        log.exception("command %s failed", command.id)
        db.session.rollback()
        finish(command, CommandState.failed, f"Internal error: {exc}")
        return CommandState.failed.value
    if result.get("cancelled"):
        state = CommandState.cancelled
    else:
        state = CommandState.succeeded if result.get("ok") else CommandState.failed
    finish(command, state, result.get("reason"), result)
    return state.value


def run_pending(meter_id: int) -> int:
    """Run the queued commands of a meter that just connected, by priority then oldest first; returns how many
    ran."""
    ids = list(db.session.execute(select(Command.id).where(Command.meter_id == meter_id,
                                                           Command.state == CommandState.queued)
                                  .order_by(Command.priority.desc(), Command.id)).scalars())
    ran = 0
    for command_id in ids:
        state = execute(command_id)
        if state == CommandState.queued.value:
            break
        ran += 1
    return ran


def on_meter_status(meter: Meter, online: bool, at: dt.datetime) -> None:
    """Status listener: a dial-in meter that comes online gets its stored commands."""
    if not online or meter.comm_mode != CommMode.dial_in:
        return
    pending = db.session.execute(select(Command.id).where(Command.meter_id == meter.id,
                                                          Command.state == CommandState.queued).limit(1)).scalar()
    if pending is not None:
        _tasks().enqueue_pending(meter.id)


def expire_if_due(command_id: int) -> bool:
    """Expire one queued command whose expiry has passed."""
    command = db.session.get(Command, command_id)
    if command is None or command.state != CommandState.queued or command.expires_at is None:
        return False
    if command.expires_at > now_utc():
        return False
    return finish(command, CommandState.expired, "The meter did not connect before the command expired.")


def sweep(limit: int = 1000) -> dict[str, int]:
    """Periodic: expire what is due, and re-enqueue reachable queued commands nobody has touched lately
    (a task lost with a crashed process)."""
    now = now_utc()
    due = list(db.session.execute(select(Command.id).where(Command.state == CommandState.queued,
                                                           Command.expires_at <= now).limit(limit)).scalars())
    expired = sum(expire_if_due(command_id) for command_id in due)
    stale_before = now - dt.timedelta(seconds=_cfg("HES_COMMAND_STALE_SECONDS", STALE_SECONDS))
    stale = db.session.execute(
        select(Command.id, Command.priority).join(Meter, Meter.id == Command.meter_id)
        .where(Command.state == CommandState.queued, func.coalesce(Command.sent_at, Command.created_at) < stale_before,
               (Meter.comm_mode == CommMode.dial_out) | Meter.online.is_(True))
        .order_by(Command.priority.desc(), Command.id).limit(limit)).all()
    for command_id, priority in stale:
        _tasks().enqueue_command(command_id, priority=priority)
    return {"expired": expired, "requeued": len(stale), "abandoned": _fail_abandoned(now)}


def _fail_abandoned(now: dt.datetime) -> int:
    # "sent" by a node that stopped reporting: resolve it now (a node resolves its own at start-up); "sent" long
    # past any timeout on a live node means the run was lost: say so instead of blocking the meter.
    from app.models import CommsNode
    from app.services.meter_access import NODE_STALE_SECONDS

    stale = now - dt.timedelta(seconds=NODE_STALE_SECONDS)
    dead = select(CommsNode.node_id).where(CommsNode.heartbeat_at < stale).scalar_subquery()
    orphans = list(db.session.execute(select(Command.id).where(
        Command.state == CommandState.sent, Command.node_id.in_(dead), Command.sent_at < stale)).scalars())
    for command_id in orphans:
        _tasks().enqueue_recovery(command_id)
    limits = {"firmware": _cfg("HES_FIRMWARE_TIMEOUT_MINUTES", 120) + 10}
    default = _cfg("HES_COMMAND_STUCK_MINUTES", 30)
    rows = db.session.execute(select(Command).where(Command.state == CommandState.sent,
                                                    Command.sent_at < now - dt.timedelta(minutes=default))).scalars()
    failed = 0
    for command in list(rows):
        if command.sent_at < now - dt.timedelta(minutes=limits.get(command.kind, default)):
            failed += finish(command, CommandState.failed, "No outcome was recorded (the process running it stopped); "
                             "check the meter before sending again.")
    return failed


# ----- crash recovery ---------------------------------------------------------------------------

INTERRUPTED = "The HES stopped while this command was being sent"


def recover_interrupted(node_id: str) -> list[int]:
    """Start-up: every command this node (or a node-less older run) left ``sent`` is queued for resolution now,
    not held for the stuck timeout. Returns their ids."""
    ids = list(db.session.execute(select(Command.id).where(
        Command.state == CommandState.sent, (Command.node_id == node_id) | Command.node_id.is_(None))
        .order_by(Command.id)).scalars())
    for command_id in ids:
        _tasks().enqueue_recovery(command_id)
    if ids:
        log.info("resolving %d command(s) interrupted by the last stop: %s", len(ids), ids)
    return ids


def _repeat_unsafe(command: Command) -> str | None:
    """Why sending this command again could do something twice (None: asking the meter again is safe).

    Relay, load limit, settings and clock writes leave a state the repeat reads back; a token repeat checks the
    meter's last entered token first (never entered twice); a firmware transfer resumes from the meter's first
    missing block; reads change nothing. A method invoked through ``set`` leaves no state to check."""
    if command.kind != "set":
        return None
    from app.services.brands import point_by_ref

    methods = [key for key in (command.params or {}).get("values", {})
               if (point := point_by_ref(command.meter.brand, key)) is not None and point.access == "x"
               and point.class_id != 115]
    return f"it invokes {', '.join(methods)}, whose outcome the meter does not record" if methods else None


def recover(command_id: int) -> str | None:
    """Resolve one interrupted command: send it again where the meter's own state makes that safe (the run reads
    the outcome back: relay state, token history, written values), otherwise fail it with the reason."""
    command = db.session.get(Command, command_id)
    if command is None or command.state != CommandState.sent:
        return None if command is None else command.state.value
    unsafe = _repeat_unsafe(command)
    if unsafe:
        finish(command, CommandState.failed, f"{INTERRUPTED}, and {unsafe}: check the meter before sending it "
               "again.")
        return CommandState.failed.value
    _requeue(command, f"{INTERRUPTED}; asking the meter again.")
    return execute(command.id)


def cancel(command_id: int, user=None) -> Command:
    """Cancel a command that has not reached the meter (or stop a firmware transfer between blocks)."""
    command = db.session.get(Command, command_id)
    if command is None:
        raise NotFound(f"Command {command_id} not found.")
    who = getattr(user, "username", None) or "system"
    if command.state == CommandState.queued:
        if not finish(command, CommandState.cancelled, f"Cancelled by {who}."):
            db.session.refresh(command)
            raise ServiceError(f"Command {command_id} is already {command.state.value}.", status=409)
        return command
    if command.state == CommandState.sent and command.kind == "firmware":
        db.session.execute(update(FirmwareTransfer).where(FirmwareTransfer.command_id == command.id)
                           .values(status="cancelling"))
        audit.record("command_cancel", "command", command.id, f"firmware transfer on {command.meter.number}: "
                     f"cancel requested by {who}", user=user)
        db.session.commit()
        return command
    raise ServiceError(f"Command {command_id} is {command.state.value}; only queued commands (and running "
                       "firmware transfers) can be cancelled.", status=409)
