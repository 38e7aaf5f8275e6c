"""Start-up steps shared by ``run.py``, the CLI and the tests: migrate, roles, brands."""

from __future__ import annotations

from contextlib import contextmanager

from flask import Flask


def prepare_database(app: Flask) -> None:
    """Bring the schema to head, then sync the code-defined roles and the plugin brands."""
    from flask_migrate import upgrade

    from app.security import sync_roles
    from app.services.brands import sync_plugin_brands
    from app.services.partitions import ensure_partitions
    from app.services.schedules import ensure_default_schedules

    with app.app_context(), _startup_lock():
        upgrade(directory=app.extensions["migrate"].directory)
        sync_roles(app.appbuilder.sm)
        sync_plugin_brands()
        ensure_default_schedules()
        ensure_partitions()


@contextmanager
def _startup_lock():
    """On PostgreSQL, several processes starting together migrate and sync one at a time."""
    from app.extensions import db

    if db.engine.dialect.name != "postgresql":
        yield
        return
    with db.engine.connect() as conn:
        conn.exec_driver_sql("SELECT pg_advisory_lock(4059)")
        try:
            yield
        finally:
            conn.exec_driver_sql("SELECT pg_advisory_unlock(4059)")
            conn.commit()
