"""HES Core: a head-end system for smart electricity meters."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask

from app import input_guards
from app.services import MAX_ID
from config import Config

log = logging.getLogger(__name__)


def create_app(config: Config | dict | None = None) -> Flask:
    """Build the web application; nothing is registered at import time."""
    app = Flask(__name__, static_folder="static", template_folder="templates")
    _bounded_int_routes(app)  # before any route is registered
    _bounded_query_numbers(app)
    input_guards.install(app)
    cfg = config if config is not None else Config()
    app.config.update(cfg.as_dict() if isinstance(cfg, Config) else cfg)

    from app import cli, extensions
    from app.realtime import init_realtime
    from app.views import register_all

    extensions.db.init_app(app)
    _tune_sqlite(app)
    extensions.csrf.init_app(app)  # before AppBuilder so API blueprints get exempted
    input_guards.install_api_csrf(app)
    extensions.migrate.init_app(app, extensions.db, directory=str(Path(__file__).parent.parent / "migrations"))
    app.config.setdefault("FAB_CREATE_DB", False)  # tables come from Alembic migrations only
    init_realtime(app)
    with app.app_context():
        appbuilder = extensions.new_appbuilder()
        appbuilder.init_app(app, extensions.db.session)
        register_all(appbuilder)
    cli.register(app)
    from app.services.meter_view import install_brand_stamps

    install_brand_stamps()
    _subscribe_status_listeners()
    _security_headers(app)
    _cookie_sessions(app)
    return app


def _cookie_sessions(app: Flask) -> None:
    """Flask's cookie sessions, except that a request without a session cookie (an API call with a bearer token)
    gets its empty session without the signing serializer being built for it (every request built one)."""
    from flask.sessions import SecureCookieSessionInterface

    class SessionInterface(SecureCookieSessionInterface):
        def open_session(self, app, request):
            if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
                return self.session_class()
            return super().open_session(app, request)

    app.session_interface = SessionInterface()


def _bounded_int_routes(app: Flask) -> None:
    """``<int:...>`` in a route stops at the largest BIGINT: a larger number matches no row (404) instead of
    reaching the database as an integer it cannot hold (OverflowError / DataError, a 500)."""
    from werkzeug.routing import IntegerConverter

    class IdConverter(IntegerConverter):
        def __init__(self, url_map, fixed_digits=0, min=None, max=MAX_ID, signed=False):  # noqa: A002
            super().__init__(url_map, fixed_digits, min, max, signed)

    app.url_map.converters["int"] = IdConverter


# Whole-number query arguments and the largest value any of them can mean; a larger one is refused with 400 before
# a view runs (it would otherwise reach the database or date arithmetic as a number they cannot hold: a 500).
QUERY_NUMBER_LIMITS = {"area": MAX_ID, "area_id": MAX_ID, "job_id": MAX_ID, "meter_ids": MAX_ID,
                       "page": 10**9, "page_size": 10**9, "days": 36600}


def _bounded_query_numbers(app: Flask) -> None:
    from flask import jsonify, request

    @app.before_request
    def refuse_oversized_numbers():
        for name in QUERY_NUMBER_LIMITS.keys() & request.args.keys():
            for part in request.args.get(name, "").split(","):
                part = part.strip()
                if part.isascii() and part.isdigit() and int(part) > QUERY_NUMBER_LIMITS[name]:
                    return jsonify(message=f"'{name}' is out of range (at most {QUERY_NUMBER_LIMITS[name]})."), 400
        return None

    @app.before_request
    def refuse_nul_characters():
        """PostgreSQL text cannot hold NUL: refuse it in query strings, form fields and JSON (400, not a 500).
        Uploaded files (CSV, firmware images) are not looked at."""
        texts = [*request.args.values(), *request.form.values()]
        if any("\x00" in value for value in texts) or (request.is_json and b"\\u0000" in request.get_data()):
            return jsonify(message="Text must not contain NUL (\\u0000) characters."), 400
        return None


def _subscribe_status_listeners() -> None:
    """Online/offline transitions become comm lost/restored events (and alerts)."""
    from app.services import status_hooks
    from app.services.events import on_status_change

    status_hooks.subscribe(on_status_change)


def _tune_sqlite(app: Flask) -> None:
    """WAL lets readers run beside the writer; under gevent the greenlets take turns as the writer (see
    ``app.sqlite_writer``) and SQLite's own busy wait, which blocks the event loop, stays short."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    from sqlalchemy import event

    from app.extensions import db
    from app.sqlite_writer import BUSY_MS, install_writer_turns

    with app.app_context():
        engine = db.engine
    private_file(engine.url.database)
    busy_ms = BUSY_MS if install_writer_turns(engine) else 30000

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def private_file(path: str | None) -> None:
    """Create the SQLite file readable by its owner only (0600; SQLite gives its -wal/-shm files the same mode)
    and take group/other access away from an existing one."""
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    import os

    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        if os.stat(path).st_mode & 0o077 and os.stat(path).st_uid == os.getuid():
            os.chmod(path, 0o600)


def _security_headers(app: Flask) -> None:
    @app.after_request
    def add_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response
