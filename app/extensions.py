"""Flask extensions, created once here and initialised in ``create_app``."""

from __future__ import annotations

from flask_appbuilder import AppBuilder
from flask_appbuilder.utils.legacy import get_sqla_class
from flask_migrate import Migrate
from flask_socketio import SocketIO
from flask_wtf.csrf import CSRFProtect

db = get_sqla_class()()
csrf = CSRFProtect()
migrate = Migrate()
socketio = SocketIO()


def new_appbuilder() -> AppBuilder:
    """An AppBuilder for one app: FAB keeps its view registry on the instance, so each app
    (tests build several) gets its own; code reaches it as ``current_app.appbuilder``.
    Permissions are synced by ``flask hes sync-roles``, not on every start."""
    return AppBuilder(update_perms=False)
