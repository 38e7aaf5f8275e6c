"""``flask hes ...`` commands: admin bootstrap, role sync, brand sync."""

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


def register(app: Flask) -> None:
    """Attach the command group to the app."""
    app.cli.add_command(hes)
