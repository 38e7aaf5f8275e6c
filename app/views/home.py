"""The landing page: each role starts where its work is."""

from __future__ import annotations

from flask import current_app, redirect, url_for
from flask_appbuilder import AppBuilder, IndexView, expose
from flask_login import current_user

from app.security import is_customer_only


class HomeView(IndexView):
    """Send staff to the dashboard, customers to their meters, everyone else to the login page."""

    @expose("/")
    def index(self):
        if not getattr(current_user, "is_authenticated", False):
            return redirect(url_for("AuthDBView.login"))
        start = "MyMetersView.index" if is_customer_only(current_user) else "DashboardView.index"
        if start in current_app.view_functions:
            return redirect(url_for(start))
        return redirect(url_for("MeterView.list"))


def register(appbuilder: AppBuilder) -> None:
    """Nothing to add: FAB registers the index view itself."""
