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
from app.services.bootstrap import prepare_database  # noqa: E402

log = logging.getLogger("hes")


def bootstrap_admin(app) -> str:
    """Create the admin from HES_ADMIN_USER/HES_ADMIN_PASSWORD, or generate a password; returns the banner line."""
    from app.cli import ensure_admin

    username = os.environ.get("HES_ADMIN_USER", "admin")
    with app.app_context():
        created, generated = ensure_admin(username, os.environ.get("HES_ADMIN_PASSWORD"))
    if created and generated:
        return f"{username} / {generated}   (generated and shown once: change it after signing in)"
    if created:
        return f"{username}   (created from HES_ADMIN_PASSWORD)"
    return f"{username}   (existing account)"


def configure_logging() -> str:
    """HES_LOG_LEVEL for everything when set; otherwise HES's own messages at INFO and the frameworks' (FAB's
    permission sync, Huey's consumer, Socket.IO) at WARNING. Returns the level in force for the banner."""
    level = os.environ.get("HES_LOG_LEVEL", "").upper()
    logging.basicConfig(level=level or "WARNING", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from app.logs import limit_repeats

    limit_repeats()  # a lost Redis: each repeated error once a minute, not every worker's every poll
    if not level:
        for name in ("app", "hes", "simulator"):
            logging.getLogger(name).setLevel(logging.INFO)
    logging.getLogger("geventwebsocket.handler").setLevel(logging.WARNING)  # per-request access lines
    if not level:  # FAB warns at every start that it cannot search its own user/role columns
        logging.getLogger("flask_appbuilder.models.filters").setLevel(logging.ERROR)
    return level or "WARNING (frameworks), INFO (HES)"


def banner(app, admin: str, log_level: str, web: bool) -> str:
    """What a newcomer needs on the first screen: where the console is, how to sign in, where meters dial."""
    from app.services.settings import meter_endpoint

    cfg = app.config
    host, port = cfg["HES_WEB_HOST"], cfg["HES_WEB_PORT"]
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    with app.app_context():
        dial = meter_endpoint()
    demo = int(cfg.get("HES_DEMO_METERS", 0) or 0)
    rows = [("Console", f"http://{shown_host}:{port}/" if web else "off (HES_WEB=off: comms node only)"),
            ("Admin login", admin),
            ("Meters dial", f"{dial}   (listening on {cfg['HES_METER_LISTEN']}; set HES_METER_ADDRESS to override)"),
            ("Demo fleet", f"{demo} simulated meters (SIM00000001 …) dialing in; HES_DEMO_METERS=0 turns it off"
             if demo > 0 else "off"),
            ("Logs", f"{log_level}; HES_LOG_LEVEL=INFO or DEBUG for more")]
    width = max(len(label) for label, _ in rows)
    lines = ["", "HES Core is running", *(f"  {label.ljust(width)}  {value}" for label, value in rows), ""]
    return "\n".join(lines)


def main() -> None:
    """Prepare the database and run every part of the HES until interrupted."""
    log_level = configure_logging()
    app = create_app()
    prepare_database(app)
    admin = bootstrap_admin(app)
    from app.runtime import start_background_services

    stop = start_background_services(app)
    web = str(app.config.get("HES_WEB", "on")).lower() != "off"
    print(banner(app, admin, log_level, web), flush=True)
    try:
        if web:
            from app.webserver import serve

            serve(app, app.config["HES_WEB_HOST"], app.config["HES_WEB_PORT"])
        else:
            gevent.wait()  # the comms node and task consumers run in greenlets until SIGTERM
    finally:
        stop()


if __name__ == "__main__":
    main()
