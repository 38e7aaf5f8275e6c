"""Server-side revocation of browser sessions and JWTs.

Every session cookie and token carries a *stamp* of its user: a hash of the password hash and the user's session
epoch. Changing the password, logging out or "sign out everywhere" (which raise the epoch) change the stamp, so
every cookie and token issued before stops working at its next request; deactivation is checked separately."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict

from flask import g, has_app_context, session
from sqlalchemy import select

from app.extensions import db
from app.models.audit import UserPreference

STAMP_KEY = "_hes_stamp"


def _epoch(user_id: int) -> int:
    return db.session.execute(select(UserPreference.session_epoch)
                              .where(UserPreference.user_id == user_id)).scalar() or 0


def stamp(user) -> str:
    """The current stamp of ``user``; a cookie or token with another one is revoked."""
    return stamp_of(user, _epoch(user.id))


def stamp_of(user, epoch: int) -> str:
    """The stamp of ``user`` at session epoch ``epoch``."""
    material = f"{user.id}|{user.password or ''}|{epoch}"
    return hashlib.sha256(material.encode()).hexdigest()[:24]


def revoke_all(user, *, by=None) -> None:
    """End every session and token of ``user`` (logout, sign out everywhere)."""
    from app.services import audit

    pref = db.session.get(UserPreference, user.id)
    if pref is None:
        pref = UserPreference(user_id=user.id, session_epoch=0)
        db.session.add(pref)
    pref.session_epoch = (pref.session_epoch or 0) + 1
    if has_app_context():  # this request read the old epoch with the user: read both again if asked
        g.get("hes_users", {}).pop(user.id, None)
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
    """The request's session cookie was issued to ``user`` as they are now (the epoch read with the user)."""
    from flask import current_app

    return session.get(STAMP_KEY) == stamp_of(user, current_app.appbuilder.sm.get_user_and_epoch(user.id)[1])


def token_claims(identity) -> dict:
    """Extra JWT claims: the stamp of the user the token is for."""
    from flask import current_app

    user = current_app.appbuilder.sm.get_user_by_id(int(identity))
    return {"stamp": stamp(user)} if user is not None else {}


def token_is_revoked(_header, claims: dict) -> bool:
    """``token_in_blocklist_loader``: an access or refresh token whose stamp is not the user's current one."""
    from flask import current_app

    try:
        user, epoch = current_app.appbuilder.sm.get_user_and_epoch(int(claims["sub"]))
    except (KeyError, TypeError, ValueError):
        return True
    return user is None or not user.is_active or claims.get("stamp") != stamp_of(user, epoch)


class VerifiedTokens:
    """Claims of JWTs this process verified (signature, type of claims, not before), kept per process by the
    token's text: a token seen again is not decoded and verified again. Its expiry is checked on every use (an
    expired token goes back through the full decode, which refuses it); revocation is not cached — it is the
    stamp check of every request (``token_is_revoked``). Kept per JWT manager, so per application and key."""

    LIMIT = 1024

    def __init__(self) -> None:
        self._claims: OrderedDict[str, dict] = OrderedDict()

    def peek(self, token: str) -> dict | None:
        """The claims of ``token`` when it was verified here and has not expired, else None."""
        from flask_jwt_extended.config import config

        claims = self._claims.get(token)
        if claims is None:
            return None
        exp = claims.get("exp")
        if exp is not None and exp <= time.time() - config.leeway:  # PyJWT's own test
            self._claims.pop(token, None)
            return None
        return claims

    def wrap(self, decode):
        """``JWTManager._decode_jwt_from_config`` answered from here when it can (no CSRF value to compare,
        expired tokens not allowed), else decoded in full and remembered."""

        def decode_cached(encoded_token: str, csrf_value=None, allow_expired: bool = False) -> dict:
            if csrf_value is not None or allow_expired or not isinstance(encoded_token, str):
                return decode(encoded_token, csrf_value, allow_expired)
            claims = self.peek(encoded_token)
            if claims is None:
                claims = decode(encoded_token, csrf_value, allow_expired)  # raises for a bad or expired token
                self._claims[encoded_token] = claims
                while len(self._claims) > self.LIMIT:
                    try:
                        self._claims.popitem(last=False)
                    except KeyError:  # emptied by another thread meanwhile
                        break
            else:
                try:
                    self._claims.move_to_end(encoded_token)
                except KeyError:  # dropped by another thread meanwhile (threaded servers, tests)
                    pass
            return dict(claims)

        return decode_cached

    def __len__(self) -> int:
        return len(self._claims)
