"""Live push to browsers over Socket.IO (status, alerts, readings, job progress)."""

from __future__ import annotations

from flask import Flask

from app.extensions import socketio


def init_realtime(app: Flask) -> None:
    """Attach Socket.IO; with Redis configured, processes meet through its message queue."""
    socketio.init_app(
        app,
        async_mode=app.config.get("HES_ASYNC_MODE", "gevent"),
        message_queue=app.config.get("HES_REDIS_URL") or None,
        cors_allowed_origins=[],
    )
    from app.realtime import namespaces  # noqa: F401  (registers the handlers)
