"""The Flask app that task functions run in (set by the process that consumes the queue)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app, has_app_context

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
        yield _app
