"""A database connection that drops in the middle of work (PostgreSQL restarting or failing over): the API answers
503 with Retry-After and saves nothing half-way, the next request works, and a rollback on the dropped connection
does not raise (it failed a collection task for good in the 5,000-meter soak when PostgreSQL restarted)."""

from __future__ import annotations

import os
import threading
import time

import psycopg
import pytest
from sqlalchemy import text

from app.extensions import db
from app.models import Meter, MeterBrand, MeterStatus
from app.models.commands import Command


@pytest.fixture
def postgresql_app(app):
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("a dropped server connection is a PostgreSQL case")
    return app


def _locker(app) -> psycopg.Connection:
    """A second connection to the app's schema (its own transaction, to hold row locks)."""
    with app.app_context():
        schema = db.session.execute(text("SELECT current_schema()")).scalar()
    conn = psycopg.connect(os.environ["HES_TEST_DATABASE_URL"].replace("postgresql+psycopg", "postgresql"))
    conn.execute(f'SET search_path TO "{schema}"')
    return conn


def _terminate_backend_blocked_by(locker: psycopg.Connection, timeout: float = 10.0) -> int:
    """Wait for a backend to queue behind ``locker``'s locks, then terminate it as a restart would. Returns its pid."""
    with psycopg.connect(os.environ["HES_TEST_DATABASE_URL"].replace("postgresql+psycopg", "postgresql"),
                         autocommit=True) as admin:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            blocked = admin.execute("SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                                    [locker.info.backend_pid]).fetchall()
            if blocked:
                admin.execute("SELECT pg_terminate_backend(%s)", [blocked[0][0]])
                return blocked[0][0]
            time.sleep(0.05)
    raise AssertionError("no request queued behind the held row lock")


def test_a_request_whose_connection_drops_is_answered_503_and_saves_nothing(postgresql_app, client,
                                                                             operator_headers):
    app = postgresql_app
    with app.app_context():
        brand = db.session.execute(db.select(MeterBrand.id).where(MeterBrand.name == "hes_sim")).scalar_one()
        meter = Meter(number="DBU00000001", brand_id=brand, status=MeterStatus.active)
        db.session.add(meter)
        db.session.commit()
        meter_id = meter.id
    body = {"kind": "read", "meter_id": meter_id, "points": ["energy_import"]}
    locker = _locker(app)
    answers = []
    try:
        locker.execute("SELECT 1 FROM meter WHERE id = %s FOR UPDATE", [meter_id])  # the command's insert waits

        def post() -> None:
            with app.app_context():
                answers.append(app.test_client().post("/api/v1/command/", json=body, headers=operator_headers))

        request = threading.Thread(target=post)
        request.start()
        _terminate_backend_blocked_by(locker)
        locker.rollback()
        request.join(30)
    finally:
        locker.close()
    resp = answers[0]
    assert resp.status_code == 503, resp.json
    assert resp.headers["Retry-After"] == "5"
    assert "database is unavailable" in resp.json["message"] and "Try again in 5 seconds" in resp.json["message"]
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(Command.id))).scalar() == 0
    again = client.post("/api/v1/command/", json=body, headers=operator_headers)  # the pool replaced the connection
    assert again.status_code == 201, again.json


def test_a_rollback_on_a_dropped_connection_does_not_raise(postgresql_app):
    """The ingest service's rollback hook touched the dropped connection and raised PendingRollbackError, which the
    collection task's database-retry path did not expect: the collection failed for good instead of retrying."""
    from sqlalchemy.exc import OperationalError

    app = postgresql_app
    locker = _locker(app)
    with app.app_context():
        brand = db.session.execute(db.select(MeterBrand.id).where(MeterBrand.name == "hes_sim")).scalar_one()
        meter = Meter(number="DBU00000002", brand_id=brand, status=MeterStatus.active)
        db.session.add(meter)
        db.session.commit()
        locker.execute("SELECT 1 FROM meter WHERE id = %s FOR UPDATE", [meter.id])
        killer = threading.Thread(target=_terminate_backend_blocked_by, args=(locker,))
        killer.start()
        with pytest.raises(OperationalError):
            db.session.execute(text("UPDATE meter SET last_seen = now() WHERE id = :m"), {"m": meter.id})
        killer.join()
        locker.rollback()
        locker.close()
        db.session.rollback()  # raised PendingRollbackError before
        assert db.session.execute(text("SELECT 1")).scalar() == 1


def test_only_a_passing_outage_is_answered_as_one(app):
    """SQLite raises OperationalError for a missing table as for a locked file: only the latter is 'try again'."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    from app.services import database_unavailable

    with app.app_context():
        with pytest.raises(DBAPIError) as missing:
            db.session.execute(text("SELECT * FROM no_such_table"))
        db.session.rollback()
    assert database_unavailable(missing.value) is None  # a fault (SQLite: OperationalError; PostgreSQL: Programming…)
    import sqlite3

    locked = OperationalError("INSERT …", {}, sqlite3.OperationalError("database is locked"))
    assert database_unavailable(locked).status == 503
