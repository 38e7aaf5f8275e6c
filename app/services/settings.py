"""Site-wide settings and per-user preferences."""

from __future__ import annotations

from flask import current_app

from app.extensions import db
from app.models import Setting, UserPreference

THEMES = ("light", "dark")
DEFAULTS = {"theme": "light", "customer_token_entry": True}


def get_setting(key: str):
    """A site setting, or its default."""
    row = db.session.get(Setting, key)
    return row.value if row is not None else DEFAULTS.get(key)


def set_setting(key: str, value) -> None:
    """Change a site setting (audited by the ORM listener)."""
    row = db.session.get(Setting, key) or Setting(key=key)
    row.value = value
    db.session.add(row)
    db.session.commit()


def theme_for(user) -> str:
    """The user's own theme, else the site default."""
    if getattr(user, "is_authenticated", False):
        pref = db.session.get(UserPreference, user.id)
        if pref is not None and pref.theme in THEMES:
            return pref.theme
    theme = get_setting("theme")
    return theme if theme in THEMES else "light"


def set_user_theme(user, theme: str) -> None:
    """Remember a user's theme choice."""
    if theme not in THEMES:
        raise ValueError(f"unknown theme {theme!r}")
    pref = db.session.get(UserPreference, user.id) or UserPreference(user_id=user.id)
    pref.theme = theme
    db.session.add(pref)
    db.session.commit()


def meter_endpoint() -> str:
    """The IP:PORT meters must be configured to dial."""
    cfg = current_app.config
    if cfg.get("HES_METER_ADDRESS"):
        return cfg["HES_METER_ADDRESS"]
    host, _, port = cfg["HES_METER_LISTEN"].rpartition(":")
    if host in ("", "0.0.0.0", "::"):
        import socket

        try:
            host = socket.gethostbyname(socket.gethostname())
        except OSError:
            host = "127.0.0.1"
    return f"{host}:{port}"
