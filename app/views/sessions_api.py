"""``POST /api/v1/user_session/<user id>/revoke``: an Admin signs a user out everywhere (every browser session and
JWT of that user stops working at its next request)."""

from __future__ import annotations

from flask_appbuilder import AppBuilder
from flask_appbuilder.api import BaseApi, expose, protect
from flask_appbuilder.security.decorators import permission_name

from app.services import sessions
from app.services.audit import acting_user
from app.views.errors import safe


class UserSessionApi(BaseApi):
    """Server-side sign-out of a user (Admin only, like user administration)."""

    resource_name = "user_session"
    allow_browser_login = True

    @expose("/<int:pk>/revoke", methods=["POST"])
    @protect()
    @safe
    @permission_name("revoke")
    def revoke(self, pk: int):
        """Sign a user out everywhere.
        ---
        post:
          summary: End every session and token of the user
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: signed out everywhere}
            404: {description: no such user}
        """
        user = self.appbuilder.sm.get_user_by_id(pk)
        if user is None:
            return self.response_404()
        sessions.revoke_all(user, by=acting_user())
        return self.response(200, message=f"{user.username} is signed out everywhere.")


def register(appbuilder: AppBuilder) -> None:
    """Add the API."""
    appbuilder.add_api(UserSessionApi)
