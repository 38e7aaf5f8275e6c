"""``flask hes ...`` commands: admin bootstrap, role sync, brand sync, rollup rebuild."""

from __future__ import annotations

import os
import secrets
import string

import click
from flask import Flask, current_app
from flask.cli import AppGroup

hes = AppGroup("hes", help="HES Core administration.")


def strong_password(length: int = 20) -> str:
    """A random password with letters, digits and symbols."""
    alphabet = string.ascii_letters + string.digits + "-_.!@#%"
    while True:
        pw = "".join(secrets.choice(alphabet) for _ in range(length))
        if any(c.isdigit() for c in pw) and any(c.isupper() for c in pw) and any(c.islower() for c in pw):
            return pw


def ensure_admin(username: str, password: str | None, email: str | None = None) -> tuple[bool, str | None]:
    """Create the admin user if missing. Returns (created, generated password or None)."""
    sm = current_app.appbuilder.sm
    if sm.find_user(username=username) is not None:
        return False, None
    generated = None
    if not password:
        password = generated = strong_password()
    role = sm.find_role("Admin")
    user = sm.add_user(username, "HES", "Administrator", email or f"{username}@localhost", role, password=password)
    if not user:
        raise click.ClickException("could not create the admin user")
    return True, generated


@hes.command("create-admin")
@click.option("--username", default=lambda: os.environ.get("HES_ADMIN_USER", "admin"),
              show_default="HES_ADMIN_USER or admin")
@click.option("--email", default=None)
@click.option("--generate", is_flag=True, help="Generate a strong password and print it once.")
def create_admin(username: str, email: str | None, generate: bool) -> None:
    """Create the admin account (password from HES_ADMIN_PASSWORD, a prompt, or generated)."""
    from app.security import sync_roles

    sync_roles(current_app.appbuilder.sm)
    password = os.environ.get("HES_ADMIN_PASSWORD")
    if not password and not generate:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    created, generated = ensure_admin(username, password, email)
    if not created:
        click.echo(f"User '{username}' already exists; nothing changed.")
    elif generated:
        click.echo(f"Admin user '{username}' created with password: {generated}")
        click.echo("This password is shown once. Change it after the first login.")
    else:
        click.echo(f"Admin user '{username}' created.")


@hes.command("sync-roles")
def sync_roles_command() -> None:
    """Create/refresh the Admin, Operator and Customer roles from their definitions in code."""
    from app.security import sync_roles

    for role, count in sync_roles(current_app.appbuilder.sm).items():
        click.echo(f"{role}: {count} permissions")


@hes.command("sync-brands")
def sync_brands_command() -> None:
    """Load or refresh the meter brands shipped as plugins."""
    from app.services.brands import sync_plugin_brands

    click.echo("brands: " + ", ".join(sync_plugin_brands()))


@hes.command("rebuild-rollups")
@click.argument("meters", nargs=-1)
@click.option("--all", "every_meter", is_flag=True, help="Every meter of the fleet.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="First local day to rebuild (default: the meter's first day of readings or rollups).")
@click.option("--until", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Last local day to rebuild, inclusive (default: its last).")
def rebuild_rollups_command(meters: tuple[str, ...], every_meter: bool, since, until) -> None:
    """Rebuild meters' hourly and daily consumption from their stored readings (by meter number), after readings
    were deleted or corrected by hand; prints each meter's energy before and after."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Meter
    from app.services.rollups import rebuild_meter

    if every_meter == bool(meters):
        raise click.UsageError("name meter numbers or give --all, not both")
    query = select(Meter.id, Meter.number).order_by(Meter.number)
    found = db.session.execute(query if every_meter else query.where(Meter.number.in_(meters))).all()
    missing = sorted(set(meters) - {number for _id, number in found})
    if missing:
        raise click.ClickException(f"no such meter: {', '.join(missing)}")
    if not found:
        click.echo("No meters: nothing to rebuild.")
    for meter_id, number in found:
        done = rebuild_meter(meter_id, since.date() if since else None, until.date() if until else None)
        click.echo(f"{number}: {done.days} day{'' if done.days == 1 else 's'} rebuilt; "
                   f"import {done.import_before / 1000:,.3f} -> {done.import_after / 1000:,.3f} kWh, "
                   f"export {done.export_before / 1000:,.3f} -> {done.export_after / 1000:,.3f} kWh")


def register(app: Flask) -> None:
    """Attach the command group to the app."""
    app.cli.add_command(hes)
