""""Run detection now" as a job: the request records a ``DetectionRun`` and queues a task; the task runs the
detection with progress on the record (meters checked so far) and its summary when done; the Investigations
page polls the record. At 100,000 meters a run takes minutes: it never runs inside the HTTP request.

One run at a time: asking while one is queued or running answers that run. A run left running by a process
that stopped is failed at that node's next start (``fail_interrupted``)."""

from __future__ import annotations

import datetime as dt
import logging
import time

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.models import DetectionRun
from app.models.analytics import DETECTION_RUNNING
from app.models.types import utcnow
from app.services import NotFound

log = logging.getLogger(__name__)
PROGRESS_SECONDS = 0.5  # the record is written at most this often while meters are checked
QUEUED_FOR_AT_MOST = dt.timedelta(hours=1)  # an older queued run (no consumer took it) no longer blocks a new one


def submit(as_of: dt.date | None, user_id: int | None) -> tuple[DetectionRun, bool]:
    """The run to watch and whether it was started now: a new one queued, or the one already under way."""
    current = db.session.execute(select(DetectionRun).where(DetectionRun.state.in_(DETECTION_RUNNING))
                                 .order_by(DetectionRun.id.desc()).limit(1)).scalar()
    if current is not None and (current.state == "running" or current.created_at > utcnow() - QUEUED_FOR_AT_MOST):
        return current, False
    run = DetectionRun(state="queued", as_of=as_of, user_id=user_id)
    db.session.add(run)
    db.session.commit()
    from app.tasks.jobs import detection_job

    detection_job(run.id)
    return db.session.get(DetectionRun, run.id), True


def run(run_id: int) -> None:
    """Run the detection for a queued run, writing its progress and then its summary or failure."""
    from app.services.analytics.detection import run_detection

    job = db.session.get(DetectionRun, run_id)
    if job is None or job.finished:
        return
    job.state, job.started_at = "running", utcnow()
    job.node_id = current_app.config.get("HES_NODE_ID")
    db.session.commit()
    state = {"at": 0.0}

    def progress(checked: int, meters: int) -> None:
        if checked < meters and time.monotonic() - state["at"] < PROGRESS_SECONDS:
            return
        state["at"] = time.monotonic()
        row = db.session.get(DetectionRun, run_id)
        row.checked, row.meters = checked, meters
        row.progress = min(95, int(95 * checked / meters)) if meters else 95
        db.session.commit()

    try:
        result = run_detection(job.as_of, progress=progress)
        job = db.session.get(DetectionRun, run_id)
        summary = result.as_dict()
        job.state, job.progress, job.result = "done", 100, summary
        job.as_of, job.meters, job.checked = result.as_of, result.meters, result.meters
    except Exception as exc:
        log.exception("detection run %s failed", run_id)
        db.session.rollback()
        job = db.session.get(DetectionRun, run_id)
        job.state = "failed"
        job.message = f"{exc.__class__.__name__}: {str(exc)[:300]}"
    job.finished_at = utcnow()
    db.session.commit()


def get(run_id: int) -> DetectionRun:
    """A detection run (every user who may run detection sees the fleet's runs)."""
    job = db.session.get(DetectionRun, run_id) if 0 < run_id < 2**31 else None
    if job is None:
        raise NotFound(f"No detection run {run_id}.")
    return job


def latest() -> DetectionRun | None:
    """The most recent run, for the page to show on opening (a run under way is picked up again)."""
    return db.session.execute(select(DetectionRun).order_by(DetectionRun.id.desc()).limit(1)).scalar()


def fail_interrupted(node_id: str) -> int:
    """Runs this node was running when it stopped are failed with the reason (called at start-up)."""
    jobs = db.session.execute(select(DetectionRun).where(DetectionRun.node_id == node_id,
                                                         DetectionRun.state == "running")).scalars().all()
    for job in jobs:
        job.state, job.finished_at = "failed", utcnow()
        job.message = "The HES stopped during this run; run the detection again."
    db.session.commit()
    return len(jobs)
