"""Shared fixtures: an app on a fresh SQLite file (and PostgreSQL when configured), users per role,
JWT tokens, and a clean fleet for every test."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text

from app import create_app
from config import Config
from tests.support.simulator import SimulatorPool, listening_socket

pytest_plugins = ["tests.support.browser"]

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("HES_TEST_DATABASE_URL") else [])
# Emptied after every test, in an order that respects foreign keys.
CLEANUP_SQL = [
    "DELETE FROM rule_finding", "DELETE FROM investigation_note", "DELETE FROM investigation",
    "DELETE FROM detection_run", "DELETE FROM slow_figure",
    "DELETE FROM audit_log", "DELETE FROM consumption_hourly", "DELETE FROM consumption_daily",
    "DELETE FROM energy_quarter",
    "DELETE FROM unregistered_connection", "DELETE FROM push_failure", "DELETE FROM delivery",
    "DELETE FROM subscription",
    "DELETE FROM schedule WHERE area_id IS NOT NULL OR brand_id IS NOT NULL", "DELETE FROM reading_revision",
    "DELETE FROM reading", "DELETE FROM event", "DELETE FROM collection_cursor", "DELETE FROM quarantined_row",
    "DELETE FROM alert", "DELETE FROM firmware_transfer", "DELETE FROM firmware_image",
    "DELETE FROM command_job_tracking", "DELETE FROM command", "DELETE FROM command_job",
    "DELETE FROM hes_user_preference",
    "DELETE FROM hes_setting", "UPDATE area SET supply_meter_id = NULL, parent_id = NULL",
    "DELETE FROM meter", "DELETE FROM customer", "DELETE FROM sim", "DELETE FROM area", "DELETE FROM channel",
    "DELETE FROM obis_point WHERE brand_id IN (SELECT id FROM meter_brand WHERE source = 'ui')",
    "DELETE FROM meter_brand WHERE source = 'ui'",
]


def _pg_url(schema: str) -> str:
    base = os.environ["HES_TEST_DATABASE_URL"]
    engine = create_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def _drop_pg_schema(schema: str) -> None:
    engine = create_engine(os.environ["HES_TEST_DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def make_config(tmp_path, database_url: str | None = None, **overrides) -> dict:
    """A test configuration in a temporary data dir."""
    os.environ["HES_DATA_DIR"] = str(tmp_path)
    cfg = Config().as_dict()
    cfg.update(TESTING=True, WTF_CSRF_ENABLED=False, RATELIMIT_ENABLED=False, HES_ASYNC_MODE="threading",
               SERVER_NAME=None, HES_SLOW_FIGURES_MAX_AGE=0)  # tests change data between calls
    if database_url:
        cfg["SQLALCHEMY_DATABASE_URI"] = database_url
    cfg.update(overrides)
    return cfg


@pytest.fixture(scope="session", params=BACKENDS)
def app(request, tmp_path_factory):
    """The HES app on a migrated database with roles and plugin brands."""
    from app.services.bootstrap import prepare_database

    tmp = tmp_path_factory.mktemp(f"hes-{request.param}")
    schema = None
    url = None
    if request.param == "postgresql":
        schema = f"hes_test_{uuid.uuid4().hex[:10]}"
        url = _pg_url(schema)
    application = create_app(make_config(tmp, url))
    prepare_database(application)
    yield application
    with application.app_context():
        from app.extensions import db

        db.session.remove()
        db.engine.dispose()
    if schema:
        _drop_pg_schema(schema)


@pytest.fixture(autouse=True)
def _clean_tables(request):
    """Empty the HES tables after each test that used the app."""
    yield
    if "app" not in request.fixturenames:
        return
    application = request.getfixturevalue("app")
    from app.extensions import db

    with application.app_context():
        db.session.rollback()
        for statement in CLEANUP_SQL:
            db.session.execute(text(statement))
        from app.services.ingest import forget_channel_cache

        forget_channel_cache()
        sm = application.appbuilder.sm
        for user in sm.get_all_users():
            if user.username.startswith("t_"):
                db.session.delete(user)
        db.session.commit()


@pytest.fixture
def db_session(app):
    """The SQLAlchemy session inside an app context."""
    from app.extensions import db

    with app.app_context():
        yield db.session


def _make_user(app, role: str, username: str, customer_id: int | None = None):
    from app.extensions import db
    from app.models import Customer

    sm = app.appbuilder.sm
    user = sm.find_user(username=username) or sm.add_user(
        username, "Test", role, f"{username}@example.test", sm.find_role(role), password="pw-" + username
    )
    if customer_id is not None:
        db.session.get(Customer, customer_id).user_id = user.id
        db.session.commit()
    return user


@pytest.fixture
def make_user(app):
    """Factory: create a user with a role (and link a customer record for Customer users)."""

    def factory(role: str, username: str | None = None, customer_id: int | None = None):
        with app.app_context():
            user = _make_user(app, role, username or f"t_{role.lower()}_{uuid.uuid4().hex[:6]}", customer_id)
            return user.username

    return factory


@pytest.fixture
def api_token(app, client):
    """Factory: log in through ``POST /api/v1/security/login`` and return auth headers."""

    def login(username: str) -> dict:
        resp = client.post("/api/v1/security/login",
                           json={"username": username, "password": "pw-" + username, "provider": "db"})
        assert resp.status_code == 200, resp.get_data(as_text=True)
        return {"Authorization": f"Bearer {resp.json['access_token']}"}

    return login


@pytest.fixture
def admin_headers(make_user, api_token):
    """Auth headers of a fresh Admin user."""
    return api_token(make_user("Admin"))


@pytest.fixture
def operator_headers(make_user, api_token):
    """Auth headers of a fresh Operator user."""
    return api_token(make_user("Operator"))


@pytest.fixture(autouse=True)
def _push_request_context():
    """Override pytest-flask's: one shared request context per test would also share ``g``
    (and the signed-in user cached on it) across the test client's requests."""
    yield


@pytest.fixture
def simulators():
    """Start simulators (stopped after the test)."""
    pool = SimulatorPool()
    yield pool
    pool.stop()


def _listening_socket():
    """The HES side of dial-in and pushes: a listening socket on an ephemeral 127.0.0.1 port."""
    with listening_socket() as server:
        yield server


# One fixture, two lifetimes: ``listener`` for a module's simulator to push to, ``tcp_listener`` per test.
listener = pytest.fixture(scope="module", name="listener")(_listening_socket)
tcp_listener = pytest.fixture(name="tcp_listener")(_listening_socket)


@pytest.fixture
def huey_immediate():
    """Huey tasks run inline; delayed ones (retries, jittered schedules) are kept in memory so a test can
    look at them."""
    from app.tasks import huey

    previous = huey.immediate
    huey.immediate = True
    yield huey
    huey.flush()
    huey.immediate = previous
