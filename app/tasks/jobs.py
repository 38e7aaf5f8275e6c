"""Huey tasks: each wraps a service call in an app context. Priorities: on-demand > commands > schedules."""

from __future__ import annotations

import logging
import random

from huey import crontab

from app.tasks import PRIORITY_ON_DEMAND, PRIORITY_SCHEDULE, huey
from app.tasks.context import task_context

log = logging.getLogger(__name__)
RETRY_BASE_SECONDS = 60


def enqueue_all(meter_ids, enqueue) -> None:
    """``enqueue(meter_id)`` for each meter. On the SQLite queue each is a committed SQLite write whose fsync
    does not yield: 10,000 of them (5,000 meters × 2 schedules) held the event loop for 12–29 s on this machine
    (bench_soak), so they run in a native thread of the hub's pool; Redis enqueues yield on their own."""
    from huey.storage import SqliteStorage

    def run() -> None:
        for meter_id in meter_ids:
            enqueue(meter_id)

    if isinstance(huey.storage, SqliteStorage):
        from app.services.reports.base import off_loop

        off_loop(run)
    else:
        run()


def _retry_collect(meter_id: int, kind: str, attempt: int) -> bool:
    """Schedule the next attempt of a collection with jittered exponential backoff, unless this was the last one
    (``HES_COLLECT_RETRIES``). Returns whether a retry follows."""
    from flask import current_app

    if attempt >= int(current_app.config.get("HES_COLLECT_RETRIES", 3)):
        return False
    delay = RETRY_BASE_SECONDS * 2 ** attempt * random.uniform(0.8, 1.2)
    collect.schedule(args=(meter_id, kind, attempt + 1), delay=delay)
    return True


@huey.task(priority=PRIORITY_SCHEDULE)
def collect(meter_id: int, kind: str, attempt: int = 0) -> dict | None:
    """Run one collection operation on one meter; unreachable meters, profile reads that came back empty from a
    meter holding entries, and a database that went away mid-collection are retried with backoff."""
    from sqlalchemy.exc import DBAPIError

    from app.extensions import db
    from app.services import database_unavailable
    from app.services.meter_access import MeterUnreachable, run_on_meter
    from app.services.operations import SCHEDULE_OPERATIONS

    with task_context():
        try:
            result = run_on_meter(meter_id, SCHEDULE_OPERATIONS[kind])
            if attempt:  # a retry read it: a "profile read failed" alert resolves by itself
                from app.services.read_failures import profile_read_recovered

                profile_read_recovered(meter_id, kind)
            return result
        except MeterUnreachable as exc:
            _retry_collect(meter_id, kind, attempt)
            log.info("collect %s from meter %s: %s (attempt %d)", kind, meter_id, exc, attempt + 1)
            return None
        except DBAPIError as exc:
            if database_unavailable(exc) is None:
                raise
            # The database restarted, failed over or stayed locked: the meter still holds its data and the
            # collection cursor makes a retry exactly-once, so the round is not lost until the next schedule.
            try:
                db.session.rollback()
            except DBAPIError:
                pass  # the connection is gone; the pool replaces it (pre-ping)
            retrying = _retry_collect(meter_id, kind, attempt)
            log.warning("collect %s from meter %s: database unavailable (%s); %s (attempt %d)", kind, meter_id,
                        str(exc.orig or exc).splitlines()[0], "retrying" if retrying else "no retries left",
                        attempt + 1)
            return None
        except Exception as exc:
            from app.services.read_failures import profile_read_error, profile_read_failed

            failure = profile_read_error(exc)
            if failure is None:
                raise
            # The meter holds entries but answered none: a failure, retried and shown as an alert.
            retrying = _retry_collect(meter_id, kind, attempt)
            profile_read_failed(meter_id, kind, failure, attempt, retrying)
            log.warning("collect %s from meter %s failed: %s (attempt %d)", kind, meter_id, failure, attempt + 1)
            return None


@huey.task(priority=PRIORITY_SCHEDULE)
def probe_meter(meter_id: int) -> bool:
    """Health check of one dial-out meter: associate with it (a failure is counted by the session itself)."""
    from app.services.meter_access import MeterUnreachable, run_on_meter

    with task_context():
        try:
            run_on_meter(meter_id, "health_probe")
            return True
        except MeterUnreachable as exc:
            log.info("health probe of meter %s: %s", meter_id, exc)
            return False


def enqueue_probes(meter_ids: list[int], spread_seconds: float = 0) -> None:
    """Queue a health probe per dial-out meter, spread so a fleet is not dialled in one second."""
    def one(meter_id: int) -> None:
        if spread_seconds > 0:
            probe_meter.schedule(args=(meter_id,), delay=random.uniform(0, spread_seconds))
        else:
            probe_meter(meter_id)

    enqueue_all(meter_ids, one)


def dispatch_due_schedules() -> dict:
    """Enqueue the per-meter tasks of every due schedule, spread over its jitter window."""
    from app.extensions import db
    from app.services.health import health_check
    from app.services.schedules import due_schedules, mark_run, now_utc, target_meters

    now = now_utc()
    planned: dict[str, int] = {}
    for schedule in due_schedules(now):
        if schedule.kind == "health_check":
            report = health_check()
            mark_run(schedule, now, report["checked"])
            planned["health_check"] = report["checked"]
            continue
        meters = target_meters(schedule)
        # Jitter: a fleet must not dial (or be asked) all in the same second.
        enqueue_all(meters, lambda meter_id, s=schedule: collect.schedule(
            args=(meter_id, s.kind), delay=random.uniform(0, s.spread_seconds or 0)))
        mark_run(schedule, now, len(meters))
        planned[schedule.kind] = planned.get(schedule.kind, 0) + len(meters)
    db.session.commit()
    return planned


@huey.periodic_task(crontab(minute="*"), priority=PRIORITY_SCHEDULE)
def dispatch_schedules() -> dict:
    """Every minute: start what the schedules say is due."""
    with task_context():
        return dispatch_due_schedules()


@huey.task()
def deliver_outbox() -> dict:
    """Send due data-pusher deliveries."""
    from app.services.outbox import deliver_due

    with task_context():
        return deliver_due()


@huey.periodic_task(crontab(minute="*"))
def deliver_outbox_periodically() -> dict:
    """Every minute: retry deliveries whose backoff has passed."""
    from app.services.outbox import deliver_due

    with task_context():
        return deliver_due()


@huey.periodic_task(crontab(minute="17", hour="3"))
def maintain_partitions() -> list[str]:
    """Daily: make sure the coming months' reading partitions exist (PostgreSQL)."""
    from app.services.partitions import ensure_partitions

    with task_context():
        return ensure_partitions()


@huey.periodic_task(crontab(minute="30", hour="4"))
def detect_theft_daily() -> dict:
    """Daily: run the theft rules and the learned model; findings open investigation alerts."""
    from app.services.analytics.detection import run_detection

    with task_context():
        return run_detection()


@huey.task(priority=PRIORITY_ON_DEMAND)
def detection_job(run_id: int) -> None:
    """A detection run an operator asked for ("Run detection now"), with progress on its record."""
    from app.services.analytics import detection_jobs

    with task_context():
        detection_jobs.run(run_id)


@huey.periodic_task(crontab(minute="45", hour="4"))
def check_losses_daily():
    """Daily: energy balance of areas with a supply meter; losses above the threshold raise an alert."""
    from app.services.analytics.loss import check_losses

    with task_context():
        return check_losses()


@huey.periodic_task(crontab(minute="23", hour="2"))
def prune_energy_quarters() -> int:
    """Daily: drop dashboard quarter-hour aggregates older than a week."""
    from app.extensions import db
    from app.models import EnergyQuarter
    from app.models.types import utcnow
    from app.services.rollups import QUARTERS_KEPT

    with task_context():
        deleted = db.session.execute(EnergyQuarter.__table__.delete().where(
            EnergyQuarter.bucket < utcnow() - QUARTERS_KEPT)).rowcount
        db.session.commit()
        return deleted
