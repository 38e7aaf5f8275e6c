"""Huey tasks of the command queue: run a command, run a reconnected meter's stored commands, fan out a
group job, expire what the meters never collected. Each wraps a service call in an app context."""

from __future__ import annotations

import datetime as dt

from huey import crontab

from app.tasks import PRIORITY_COMMAND, huey
from app.tasks.context import task_context


@huey.task(priority=PRIORITY_COMMAND)
def execute_command(command_id: int) -> None:
    """Run one command if it can run now (the service decides: wait, retry, expire or send)."""
    from app.services.commands import execute

    with task_context():
        execute(command_id)


@huey.task(priority=PRIORITY_COMMAND)
def run_pending_commands(meter_id: int) -> None:
    """A dial-in meter connected: send what was stored for it, oldest first."""
    from app.services.commands import run_pending

    with task_context():
        run_pending(meter_id)


@huey.task(priority=PRIORITY_COMMAND)
def dispatch_job(job_id: int) -> None:
    """Enqueue every queued command of a group job."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models.commands import Command, CommandState

    with task_context():
        ids = db.session.execute(select(Command.id).where(Command.job_id == job_id,
                                                          Command.state == CommandState.queued)
                                 .order_by(Command.id)).scalars().all()
    for command_id in ids:
        execute_command(command_id)


@huey.task(priority=PRIORITY_COMMAND)
def recover_command(command_id: int) -> None:
    """Resolve a command a stopped node left sent."""
    from app.services.commands.queue import recover

    with task_context():
        recover(command_id)


@huey.task()
def expire_command(command_id: int) -> None:
    """Expire a stored command whose meter never connected."""
    from app.services.commands import expire_if_due

    with task_context():
        expire_if_due(command_id)


@huey.periodic_task(crontab(minute="*"))
def sweep_commands() -> None:
    """Every minute: expire due commands and re-enqueue forgotten ones."""
    from app.services.commands import sweep

    with task_context():
        sweep()


def enqueue_command(command_id: int, delay: float = 0, priority: int = PRIORITY_COMMAND) -> None:
    """Queue a command's execution now or after ``delay`` seconds, at the command's priority."""
    if delay > 0:
        execute_command.schedule(args=(command_id,), delay=delay, priority=priority)
    else:
        execute_command(command_id, priority=priority)


def enqueue_recovery(command_id: int) -> None:
    """Queue the resolution of a command a stopped node left sent."""
    recover_command(command_id)


def enqueue_pending(meter_id: int) -> None:
    """Queue the run of a meter's stored commands."""
    run_pending_commands(meter_id)


def enqueue_job(job_id: int) -> None:
    """Queue the fan-out of a group job."""
    dispatch_job(job_id)


def schedule_expiry(command_id: int, expires_at: dt.datetime | None) -> None:
    """Expire the command at its expiry time unless it ran by then."""
    if expires_at is None:
        return
    delay = max(0.0, (expires_at - dt.datetime.now(dt.UTC)).total_seconds()) + 0.2
    expire_command.schedule(args=(command_id,), delay=delay)
