"""The Flask app that task functions run in (set by the process that consumes the queue)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app, has_app_context

log = logging.getLogger(__name__)

_app: Flask | None = None


def set_task_app(app: Flask) -> None:
    """Register the app whose context tasks run in."""
    global _app
    _app = app


@contextmanager
def task_context() -> Iterator[Flask]:
    """An app context for a task (reusing the caller's when a task runs inline)."""
    if has_app_context():
        yield current_app._get_current_object()
        return
    if _app is None:
        from app import create_app

        set_task_app(create_app())
    with _app.app_context():
        try:
            yield _app
        finally:
            _close_session()


def _close_session() -> None:
    """Close the task's database session before its app context ends. On a connection the database dropped the
    close's rollback fails as well: logged, not raised, so a task that has done (or rescheduled) its work is not
    failed by its teardown; the pool replaces the connection."""
    from sqlalchemy.exc import DBAPIError

    from app.extensions import db

    try:
        db.session.remove()
    except DBAPIError as exc:
        log.warning("closing the task's database session failed (connection lost): %s",
                    str(exc.orig or exc).splitlines()[0])
        db.session.registry.clear()  # dropped unclosed: its connection is already invalidated
