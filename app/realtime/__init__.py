"""Live push to browsers over Socket.IO (status, alerts, readings, job progress)."""

from __future__ import annotations

from flask import Flask

from app.extensions import socketio


def init_realtime(app: Flask) -> None:
    """Attach Socket.IO; with Redis configured, processes meet through its message queue.

    The handlers are registered before the first ``init_app``: Flask-SocketIO keeps a decorator's handler for later
    servers only if no server exists yet when it runs (after, it goes to that server alone), and each ``init_app``
    builds a new server — a second app in the process (the tests' second database, a task consumer's own app)
    would otherwise get a server without the connect handler, which accepts every socket unauthenticated."""
    from app.realtime import namespaces  # noqa: F401  (registers the handlers)

    socketio.init_app(
        app,
        async_mode=app.config.get("HES_ASYNC_MODE", "gevent"),
        message_queue=app.config.get("HES_REDIS_URL") or None,
        # None = same origin only (scheme://Host of the request); [] would switch the Origin check off.
        cors_allowed_origins=_origins(app.config.get("HES_SOCKET_ORIGINS")),
    )


def _origins(value: str | None) -> list[str] | None:
    """Extra origins allowed to open a socket (``HES_SOCKET_ORIGINS``, comma separated); none means same-origin."""
    origins = [o.strip().rstrip("/") for o in (value or "").split(",") if o.strip()]
    return origins or None
