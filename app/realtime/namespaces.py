"""Socket.IO handlers: authenticated users join rooms that limit what they receive."""

from __future__ import annotations

from flask_login import current_user
from flask_socketio import join_room

from app.extensions import socketio
from app.security import is_customer_only

STAFF_ROOM = "staff"


def customer_room(customer_id: int) -> str:
    """The room a customer's own browser sessions join."""
    return f"customer:{customer_id}"


@socketio.on("connect")
def on_connect(auth=None):
    """Refuse anonymous sockets; put staff in the staff room and customers in their own."""
    if not getattr(current_user, "is_authenticated", False):
        return False
    if is_customer_only(current_user):
        from app.services.scope import restricted_customer_id

        join_room(customer_room(restricted_customer_id()))
    else:
        join_room(STAFF_ROOM)
    return True
