"""Start HES Core in one process on the embedded default: web + Socket.IO, the comms node
(meter listener), the task consumer and, for the demo, a simulated meter fleet.

``make run`` calls this. Every part is configured from the environment (see README).
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import logging  # noqa: E402
import os  # noqa: E402

import gevent  # noqa: E402

from app import create_app  # noqa: E402
from app.extensions import socketio  # noqa: E402
from app.services.bootstrap import prepare_database  # noqa: E402

log = logging.getLogger("hes")


def bootstrap_admin(app) -> None:
    """Create the admin from HES_ADMIN_USER/HES_ADMIN_PASSWORD, or generate and print a password once."""
    from app.cli import ensure_admin

    username = os.environ.get("HES_ADMIN_USER", "admin")
    with app.app_context():
        created, generated = ensure_admin(username, os.environ.get("HES_ADMIN_PASSWORD"))
    if created and generated:
        banner = f"  Admin login: {username} / {generated}  (shown once; change it after signing in)  "
        print("=" * len(banner), banner, "=" * len(banner), sep="\n", flush=True)
    elif created:
        print(f"Admin user '{username}' created from HES_ADMIN_PASSWORD.", flush=True)


def main() -> None:
    """Prepare the database and run every part of the HES until interrupted."""
    logging.basicConfig(level=os.environ.get("HES_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("geventwebsocket.handler").setLevel(logging.WARNING)  # per-request access lines
    app = create_app()
    prepare_database(app)
    bootstrap_admin(app)
    from app.runtime import start_background_services

    stop = start_background_services(app)
    host, port = app.config["HES_WEB_HOST"], app.config["HES_WEB_PORT"]
    web = str(app.config.get("HES_WEB", "on")).lower() != "off"
    where = f"web console: http://{host}:{port}/   " if web else "comms node (no web)   "
    print(f"HES Core {where}meters dial: {app.config['HES_METER_LISTEN']}", flush=True)
    try:
        if web:
            socketio.run(app, host=host, port=port, log_output=False, use_reloader=False)
        else:
            gevent.wait()  # the comms node and task consumers run in greenlets until SIGTERM
    finally:
        stop()


if __name__ == "__main__":
    main()
