"""Start-up steps shared by ``run.py``, the CLI and the tests: migrate, roles, brands."""

from __future__ import annotations

from flask import Flask


def prepare_database(app: Flask) -> None:
    """Bring the schema to head, then sync the code-defined roles and the plugin brands."""
    from flask_migrate import upgrade

    from app.security import sync_roles
    from app.services.brands import sync_plugin_brands
    from app.services.schedules import ensure_default_schedules

    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        sync_roles(app.appbuilder.sm)
        sync_plugin_brands()
        ensure_default_schedules()
