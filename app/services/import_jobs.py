"""Fleet CSV imports as jobs: the one path of the import page and the REST API.

An upload is spooled to the data dir (never held in memory) and recorded as an ``ImportJob``. A small file is
imported within the request; a larger one in the background (a greenlet of this process under gevent) while the
job's page shows its progress, then its counts or its errors by line and column. Either way the importer streams
the file and yields the event loop as it goes (``app.services.fleet_import``), so web, Socket.IO and meter I/O
carry on. ``HES_IMPORT_MAX_MB`` caps a file at what one import does in seconds (see bench/bench_import.py)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from flask import current_app

from app.extensions import db
from app.models import ImportJob
from app.models.imports import RUNNING_STATES
from app.models.types import utcnow
from app.services import NotFound, ServiceError
from app.services.fleet_import import BATCH, IMPORTERS, ImportRejected

log = logging.getLogger(__name__)
MAX_MB = 8  # default of HES_IMPORT_MAX_MB: ~200,000 SIM rows, under a minute on a 2-core machine
INLINE_KB = 512  # default of HES_IMPORT_INLINE_KB: files up to this size are imported within the request
PROGRESS_SECONDS = 0.5  # the job row is updated at most this often while checking


class FileTooLarge(ServiceError):
    """The upload is over the import cap."""

    status = 413


def max_bytes() -> int:
    """The largest file an import takes."""
    return int(float(current_app.config.get("HES_IMPORT_MAX_MB", MAX_MB)) * 1024 * 1024)


def check_size(content_length: int | None) -> None:
    """Refuse an upload over the cap before its body is read (the request's length bounds the file's)."""
    if content_length is not None and content_length > max_bytes() + 64 * 1024:
        raise _too_large()


def _too_large() -> FileTooLarge:
    limit = current_app.config.get("HES_IMPORT_MAX_MB", MAX_MB)
    return FileTooLarge(f"The file is larger than the import limit of {limit} MB (HES_IMPORT_MAX_MB); "
                        "split it into several files.")


def _spool_dir() -> Path:
    path = Path(current_app.config["HES_DATA_DIR"]) / "imports"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def submit(kind: str, upload, user_id: int | None) -> ImportJob:
    """Record and start the import of an uploaded file (a werkzeug ``FileStorage``); returns the job, finished
    when the file was small enough to import within the request."""
    if kind not in IMPORTERS:
        raise NotFound(f"Nothing imports '{kind}'.")
    if upload is None or not upload.filename:
        raise ServiceError("Send the CSV file as the multipart field 'file'.")
    job = ImportJob(kind=kind, filename=upload.filename[:255], state="queued", user_id=user_id,
                    node_id=current_app.config.get("HES_NODE_ID"))
    db.session.add(job)
    db.session.flush()
    path = _spool_dir() / f"{job.id}.csv"
    path.touch(mode=0o600)
    if upload.stream.seekable():
        upload.stream.seek(0)
    with path.open("wb") as out:
        copied = _copy(upload.stream, out, max_bytes())
    if copied is None:
        path.unlink(missing_ok=True)
        db.session.rollback()
        raise _too_large()
    job.size_bytes = copied
    db.session.commit()
    if copied <= int(current_app.config.get("HES_IMPORT_INLINE_KB", INLINE_KB)) * 1024:
        run(job.id)
    else:
        app = current_app._get_current_object()
        threading.Thread(target=_run_in_app, args=(app, job.id), name=f"import-{job.id}", daemon=True).start()
    return db.session.get(ImportJob, job.id)


def _copy(source, out, limit: int) -> int | None:
    """Copy in blocks, yielding between them; None when more than ``limit`` bytes come."""
    from app.services.csvio import READ_BLOCK, cooperate

    total = 0
    while block := source.read(READ_BLOCK):
        total += len(block)
        if total > limit:
            return None
        out.write(block)
        cooperate()
    return total


def _run_in_app(app, job_id: int) -> None:
    with app.app_context():
        try:
            run(job_id)
        finally:
            db.session.remove()


def run(job_id: int) -> None:
    """Import the job's spooled file and record the outcome on the job (the file is removed after)."""
    job = db.session.get(ImportJob, job_id)
    path = _spool_dir() / f"{job_id}.csv"
    user = db.session.get(current_app.appbuilder.sm.user_model, job.user_id) if job.user_id else None
    state = {"at": 0.0, "written_to": 0}

    def progress(phase: str, fraction: float, line: int) -> None:
        if phase == "checking" and time.monotonic() - state["at"] < PROGRESS_SECONDS:
            return
        state["at"] = time.monotonic()
        if phase == "writing":
            state["written_to"] = line
        job.state, job.line = phase, line
        job.progress = min(99, int(fraction * 50) + (50 if phase == "writing" else 0))
        db.session.commit()  # while writing, together with the chunk it reports

    try:
        job.state = "checking"
        db.session.commit()
        with path.open("rb") as stream:
            result = IMPORTERS[job.kind](stream, progress, user=user)
        job = db.session.get(ImportJob, job_id)
        job.state, job.progress, job.created, job.updated = "done", 100, result.created, result.updated
        job.message = f"Imported: {result.created} created, {result.updated} updated."
    except ImportRejected as exc:
        db.session.rollback()
        job = db.session.get(ImportJob, job_id)
        job.state, job.message, job.errors = "rejected", exc.message, exc.errors
    except Exception as exc:
        log.exception("import job %s failed", job_id)
        db.session.rollback()
        job = db.session.get(ImportJob, job_id)
        job.state, job.message = "failed", _failure(exc, state["written_to"])
    finally:
        path.unlink(missing_ok=True)
    job.finished_at = utcnow()
    db.session.commit()


def _failure(exc: Exception, written_to: int) -> str:
    kept = (f"Rows up to line {written_to} were written (chunks of {BATCH:,} rows are committed one by one); "
            if written_to else "Nothing was written; ")
    return (f"The import stopped: {exc.__class__.__name__}: {str(exc)[:300]}. {kept}importing the same file again "
            f"completes it (rows are matched by their number, so none is duplicated).")


def get(kind: str, job_id: int, user) -> ImportJob:
    """A job of ``kind`` started by ``user`` (an Admin sees every job)."""
    from app.security import ADMIN, role_names

    job = db.session.get(ImportJob, job_id) if 0 < job_id < 2**31 else None
    if job is None or job.kind != kind or (job.user_id != user.id and ADMIN not in role_names(user)):
        raise NotFound(f"No import job {job_id}.")
    return job


def fail_interrupted(node_id: str) -> int:
    """Jobs this node was running when it stopped are failed with the reason (called at start-up)."""
    jobs = db.session.query(ImportJob).filter(ImportJob.node_id == node_id,
                                               ImportJob.state.in_(RUNNING_STATES)).all()
    for job in jobs:
        job.state, job.finished_at = "failed", utcnow()
        job.message = ("The HES stopped during this import. Chunks of the file may have been written; importing "
                       "the same file again completes it (rows are matched by their number, so none is duplicated).")
        (Path(current_app.config["HES_DATA_DIR"]) / "imports" / f"{job.id}.csv").unlink(missing_ok=True)
    db.session.commit()
    return len(jobs)
