"""Socket.IO handlers: authenticated users join rooms that limit what they receive."""

from __future__ import annotations

from flask import g
from flask_login import current_user
from flask_socketio import join_room

from app.extensions import socketio
from app.security import is_customer_only, is_staff

STAFF_ROOM = "staff"


def customer_room(customer_id: int) -> str:
    """The room a customer's own browser sessions join."""
    return f"customer:{customer_id}"


def _user_from_token(auth) -> object | None:
    """The user of a JWT passed as ``auth={"token": ...}`` (mobile apps and API clients)."""
    token = auth.get("token") if isinstance(auth, dict) else None
    if not token:
        return None
    from flask import current_app
    from flask_jwt_extended import decode_token

    try:
        claims = decode_token(token)
    except Exception:  # any invalid, expired or forged token is simply refused
        return None
    if claims.get("type") != "access":  # a refresh token lives for weeks and is only for /security/refresh
        return None
    from app.services.sessions import token_is_revoked

    if token_is_revoked(None, claims):  # logged out, password changed, signed out everywhere, deactivated
        return None
    return current_app.appbuilder.sm.get_user_by_id(int(claims["sub"]))


@socketio.on("connect")
def on_connect(auth=None):
    """Refuse anonymous sockets; put staff in the staff room and customers in their own only. A user with
    neither role (e.g. only FAB's Public role) is refused: the staff room hears every customer's meters."""
    user = current_user if getattr(current_user, "is_authenticated", False) else _user_from_token(auth)
    if user is None:
        return False
    g.user = user
    if is_staff(user):
        join_room(STAFF_ROOM)
    elif is_customer_only(user):
        from app.services.scope import restricted_customer_id

        join_room(customer_room(restricted_customer_id()))
    else:
        return False
    return True
