"""Group jobs: one kind of command over a selection of meters or an area, confirmed, rate limited,
idempotent, with per-meter progress counted as each command finishes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import Area, CommandJob, FirmwareTransfer, JobTracking, Meter, MeterStatus
from app.models.commands import Command, CommandState
from app.services import MAX_ID, NotFound, ServiceError, audit
from app.services.commands.kinds import CHANGING, KINDS, validate_params
from app.services.commands.queue import as_dict, dispatch, expiry, finish, now_utc, scoped_key
from app.services.scope import meter_ids_in_area

MONITORING_ALIASES = {"execute": "set"}


def _target_ids(meter_ids: Any, area_id: Any, numbers: Any = None) -> tuple[list[int], int | None]:
    if numbers:
        wanted = {str(n).strip() for n in numbers if str(n).strip()}
        found = dict(db.session.execute(select(Meter.number, Meter.id).where(Meter.number.in_(wanted))).all())
        missing = sorted(wanted - set(found))
        if missing:
            raise NotFound(f"Meter number(s) not found: {', '.join(missing[:20])}.")
        return sorted(found.values()), None
    if area_id not in (None, ""):
        if not str(area_id).isdecimal() or int(area_id) > MAX_ID or db.session.get(Area, int(area_id)) is None:
            raise NotFound(f"Area {area_id!r} not found.")
        ids = list(db.session.execute(select(Meter.id).where(Meter.id.in_(meter_ids_in_area(int(area_id))),
                                                             Meter.status != MeterStatus.decommissioned)
                                      .order_by(Meter.id)).scalars())
        return ids, int(area_id)
    if not isinstance(meter_ids, list) or not all(str(m).isdecimal() and int(m) <= MAX_ID for m in meter_ids):
        raise ServiceError("Give the target meters as 'meter_ids' (a list of ids) or an 'area_id'.", status=422)
    ids = sorted({int(m) for m in meter_ids})
    found = set(db.session.execute(select(Meter.id).where(Meter.id.in_(ids))).scalars()) if ids else set()
    missing = [m for m in ids if m not in found]
    if missing:
        raise NotFound(f"Meter(s) not found: {', '.join(map(str, missing[:20]))}.")
    return ids, None


def _check_rate(user) -> None:
    limit = int(current_app.config.get("HES_JOBS_PER_MINUTE", 10))
    since = now_utc() - dt.timedelta(minutes=1)
    recent = db.session.execute(select(func.count(CommandJob.id)).where(
        CommandJob.requested_by_id == getattr(user, "id", None), CommandJob.created_at >= since)).scalar()
    if recent >= limit:
        raise ServiceError(f"At most {limit} group jobs a minute; wait a moment and try again.", status=429)


def _job_params(body: dict) -> dict:
    params = dict(body.get("params") or {})
    for name in ("points", "values", "token", "threshold", "image_id", "from", "to", "point", "value"):
        if name in body and name not in params:
            params[name] = body[name]
    return params


def create_job(body: dict, *, user=None, idempotency_key: str | None = None) -> tuple[CommandJob, bool]:
    """Create a group job and its commands (all validated first; nothing is queued if one is invalid)."""
    key = scoped_key(user, idempotency_key or body.get("idempotency_key"))
    if key is not None:
        existing = db.session.execute(select(JobTracking).where(JobTracking.idempotency_key == key)).scalar()
        if existing is not None:
            return existing.job, False
    kind = MONITORING_ALIASES.get(str(body.get("kind", "")), str(body.get("kind", "")))
    if kind not in KINDS:
        raise ServiceError(f"Unknown kind {kind!r}; use one of {', '.join(KINDS)}.", status=422)
    ids, area_id = _target_ids(body.get("meter_ids"), body.get("area_id", body.get("area")), body.get("meter_numbers"))
    if not ids:
        raise ServiceError("The job has no target meters.", status=422)
    max_meters = int(current_app.config.get("HES_JOB_MAX_METERS", 100_000))
    if len(ids) > max_meters:
        raise ServiceError(f"A job may target at most {max_meters} meters.", status=422)
    if kind in CHANGING and body.get("confirm") is not True:
        raise ServiceError(f"Confirm the {kind} of {len(ids)} meter(s): send \"confirm\": true.", status=428)
    _check_rate(user)
    params = _job_params(body)
    expires_at = expiry(body.get("expires_in"))
    meters = db.session.execute(select(Meter).where(Meter.id.in_(ids))).scalars().all()
    clean_by_brand: dict[int, dict] = {}
    for meter in meters:
        if meter.brand_id not in clean_by_brand:
            clean_by_brand[meter.brand_id] = validate_params(kind, meter, params)
    job = CommandJob(kind=kind, params=next(iter(clean_by_brand.values())), total=len(ids),
                     requested_by_id=getattr(user, "id", None))
    db.session.add(job)
    db.session.flush()
    db.session.add(JobTracking(job_id=job.id, idempotency_key=key, area_id=area_id, done=0, failed=0))
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        existing = db.session.execute(select(JobTracking).where(JobTracking.idempotency_key == key)).scalar()
        if existing is None:
            raise
        return existing.job, False
    rows = [{"kind": kind, "meter_id": m.id, "job_id": job.id, "params": clean_by_brand[m.brand_id],
             "state": CommandState.queued, "attempts": 0, "requested_by_id": job.requested_by_id,
             "created_at": now_utc(), "expires_at": expires_at} for m in sorted(meters, key=lambda m: m.id)]
    db.session.execute(Command.__table__.insert(), [dict(r, state=r["state"].value) for r in rows])
    if kind == "firmware":
        command_ids = db.session.execute(select(Command.id, Command.meter_id).where(Command.job_id == job.id)).all()
        db.session.add_all([FirmwareTransfer(command_id=cid, meter_id=mid, image_id=job.params["image_id"])
                            for cid, mid in command_ids])
    numbers = [m.number for m in meters[:50]]
    audit.record("job", "command_job", job.id, f"{kind} job on {len(ids)} meter(s)" +
                 (f" in area {area_id}" if area_id else ""), user=user,
                 details={"kind": kind, "params": job.params, "targets": len(ids), "area_id": area_id,
                          "meters": numbers, "confirmed": body.get("confirm") is True})
    db.session.commit()
    dispatch("job", job.id)  # a lost Redis does not make a written job a 500 (see ``queue.dispatch``)
    return job, True


def job_dict(job: CommandJob, with_states: bool = True) -> dict[str, Any]:
    """A job with its progress."""
    tracking = db.session.get(JobTracking, job.id)
    out = {"id": job.id, "job_id": job.id, "kind": job.kind, "params": job.params, "total": job.total,
           "done": tracking.done if tracking else 0, "failed": tracking.failed if tracking else 0,
           "area_id": tracking.area_id if tracking else None,
           "finished_at": tracking.finished_at.isoformat() if tracking and tracking.finished_at else None,
           "created_at": job.created_at.isoformat() if job.created_at else None,
           "requested_by": job.requested_by.username if job.requested_by else None}
    out["finished"] = out["finished_at"] is not None
    if with_states:
        counts = db.session.execute(select(Command.state, func.count(Command.id)).where(Command.job_id == job.id)
                                    .group_by(Command.state)).all()
        out["states"] = {state.value if hasattr(state, "value") else str(state): n for state, n in counts}
    return out


def get_job(job_id: int) -> CommandJob:
    """A job by id, or 404."""
    job = db.session.get(CommandJob, job_id)
    if job is None:
        raise NotFound(f"Job {job_id} not found.")
    return job


def job_commands(job_id: int, page: int = 0, page_size: int = 100, state: str | None = None) -> dict[str, Any]:
    """One page of a job's per-meter commands."""
    get_job(job_id)
    query = select(Command).where(Command.job_id == job_id)
    if state:
        query = query.where(Command.state == state)
    count = db.session.execute(select(func.count()).select_from(query.subquery())).scalar()
    rows = db.session.execute(query.order_by(Command.id).offset(page * page_size).limit(page_size)).scalars()
    return {"count": count, "page": page, "page_size": page_size, "result": [as_dict(c) for c in rows]}


def list_jobs(limit: int = 50) -> list[dict[str, Any]]:
    """The latest jobs with their progress."""
    jobs = db.session.execute(select(CommandJob).order_by(CommandJob.id.desc()).limit(limit)).scalars()
    return [job_dict(job, with_states=False) for job in jobs]


def cancel_job(job_id: int, user=None) -> dict[str, Any]:
    """Cancel every command of the job that has not been sent yet."""
    job = get_job(job_id)
    who = getattr(user, "username", None) or "system"
    queued = db.session.execute(select(Command).where(Command.job_id == job.id,
                                                      Command.state == CommandState.queued)).scalars().all()
    cancelled = sum(finish(command, CommandState.cancelled, f"Job cancelled by {who}.") for command in queued)
    audit.record("job_cancel", "command_job", job.id, f"job {job.id}: {cancelled} queued command(s) cancelled by {who}",
                 user=user)
    db.session.commit()
    return {**job_dict(job), "cancelled": cancelled}
