"""The landing page: each role starts where its work is, and nobody is bounced between pages they cannot open."""

from __future__ import annotations

from flask import current_app, redirect, url_for
from flask_appbuilder import AppBuilder, IndexView, expose
from flask_babel import lazy_gettext as _
from flask_login import current_user

from app.security import is_customer_only

# (permission, view, endpoint) in order of preference; the first one the user may open is their start page.
CUSTOMER_START = (("can_index", "MyMetersView", "MyMetersView.index"),)
STAFF_START = (("can_index", "DashboardView", "DashboardView.index"), ("can_list", "MeterView", "MeterView.list"),
               ("can_index", "MyMetersView", "MyMetersView.index"))


def start_endpoint(user) -> str | None:
    """The endpoint a signed-in user lands on: My Meters for customers, the dashboard for staff, else None."""
    sm = current_app.appbuilder.sm
    for permission, view, endpoint in CUSTOMER_START if is_customer_only(user) else STAFF_START:
        if endpoint in current_app.view_functions and sm.has_access(permission, view):
            return endpoint
    return None


class HomeView(IndexView):
    """Send staff to the dashboard, customers to their meters, anonymous visitors to the login page; a user
    whose roles open no start page gets a page that says so (a redirect there would only bounce back)."""

    @expose("/")
    def index(self):
        if not getattr(current_user, "is_authenticated", False):
            return redirect(url_for("AuthDBView.login"))
        endpoint = start_endpoint(current_user)
        if endpoint is not None:
            return redirect(url_for(endpoint))
        return self.render_template("my_meters/notice.html", title=_("Welcome"), staff=False, no_pages=True)


def register(appbuilder: AppBuilder) -> None:
    """Nothing to add: FAB registers the index view itself."""
