"""Server-side revocation of browser sessions and JWTs.

Every session cookie and token carries a *stamp* of its user: a hash of the password hash and the user's session
epoch. Changing the password, logging out or "sign out everywhere" (which raise the epoch) change the stamp, so
every cookie and token issued before stops working at its next request; deactivation is checked separately."""

from __future__ import annotations

import hashlib

from flask import session
from sqlalchemy import select

from app.extensions import db
from app.models.audit import UserPreference

STAMP_KEY = "_hes_stamp"


def _epoch(user_id: int) -> int:
    return db.session.execute(select(UserPreference.session_epoch)
                              .where(UserPreference.user_id == user_id)).scalar() or 0


def stamp(user) -> str:
    """The current stamp of ``user``; a cookie or token with another one is revoked."""
    material = f"{user.id}|{user.password or ''}|{_epoch(user.id)}"
    return hashlib.sha256(material.encode()).hexdigest()[:24]


def revoke_all(user, *, by=None) -> None:
    """End every session and token of ``user`` (logout, sign out everywhere)."""
    from app.services import audit

    pref = db.session.get(UserPreference, user.id)
    if pref is None:
        pref = UserPreference(user_id=user.id, session_epoch=0)
        db.session.add(pref)
    pref.session_epoch = (pref.session_epoch or 0) + 1
    audit.record("sessions", "user", user.id, f"all sessions of {user.username} ended", user=by)
    db.session.commit()


def remember_login(_sender, user, **_kwargs) -> None:
    """``user_logged_in``: the new session carries the user's stamp."""
    session[STAMP_KEY] = stamp(user)


def end_on_logout(_sender, user, **_kwargs) -> None:
    """``user_logged_out``: the session ends server-side too (a copied cookie or token is useless)."""
    if user is not None and getattr(user, "id", None):
        revoke_all(user, by=user)


def session_is_current(user) -> bool:
    """The request's session cookie was issued to ``user`` as they are now."""
    return session.get(STAMP_KEY) == stamp(user)


def token_claims(identity) -> dict:
    """Extra JWT claims: the stamp of the user the token is for."""
    from flask import current_app

    user = current_app.appbuilder.sm.get_user_by_id(int(identity))
    return {"stamp": stamp(user)} if user is not None else {}


def token_is_revoked(_header, claims: dict) -> bool:
    """``token_in_blocklist_loader``: an access or refresh token whose stamp is not the user's current one."""
    from flask import current_app

    try:
        user = current_app.appbuilder.sm.get_user_by_id(int(claims["sub"]))
    except (KeyError, TypeError, ValueError):
        return True
    return user is None or not user.is_active or claims.get("stamp") != stamp(user)
