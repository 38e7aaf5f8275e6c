"""WSGI entry for web-only processes at scale: ``gunicorn -k geventwebsocket.gunicorn.workers.GeventWebSocketWorker
-w 4 wsgi:app``. Meter connections and tasks run in comms-node processes (``python run.py`` with
HES_WEB=off), which these web workers reach through Redis (HES_REDIS_URL)."""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

from app import create_app  # noqa: E402
from app.services.process_status import start_process_status  # noqa: E402

app = create_app()
start_process_status(app, roles="web")  # this worker's loop lag on System › Comms Nodes
