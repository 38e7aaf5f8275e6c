"""My Meters — the customer's only page — and its JSON API (``/api/v1/my/``), both limited to the customer
record linked to the signed-in user. Thin: find the caller's customer, call the My Meters service."""

from __future__ import annotations

from flask import current_app, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose, has_access
from flask_appbuilder.api import BaseApi, protect
from flask_appbuilder.api import expose as api_expose
from flask_appbuilder.security.decorators import permission_name
from flask_babel import lazy_gettext as _
from flask_login import current_user

from app.security import is_customer_only
from app.services import my_meters as service
from app.services.audit import acting_user
from app.services.reports.periods import utility_zone
from app.views.errors import safe


def shows_in_menu() -> bool:
    """The menu entry is for customer logins (and anyone linked to a customer record), not for staff."""
    return is_customer_only(current_user) or service.own_customer(current_user) is not None


class MyMetersView(BaseView):
    """The customer's account, meters (live), consumption chart, prepaid token entry and history, alerts."""

    route_base = "/my"
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        customer = service.own_customer(current_user)
        if customer is None:
            dashboard = "DashboardView.index" in current_app.view_functions
            return self.render_template("my_meters/notice.html", title=_("My Meters"),
                                        staff=not is_customer_only(current_user),
                                        dashboard_url=url_for("DashboardView.index") if dashboard else None)
        summary = service.customer_summary(customer, current_user)
        return self.render_template("my_meters/index.html", title=_("My Meters"), summary=summary)


class MyMetersApi(BaseApi):
    """``/api/v1/my/summary`` and ``/api/v1/my/consumption``: the signed-in customer's own data only."""

    resource_name = "my"
    allow_browser_login = True
    openapi_spec_tag = "My Meters"

    @api_expose("/summary", methods=["GET"])
    @protect()
    @safe
    @permission_name("summary")
    def summary(self):
        """The customer's account, meters (status, relay, credit, token history) and alerts.
        ---
        get:
          summary: Account details, meter cards with their latest tokens, active and recent alerts
          responses:
            200: {description: "{customer, meters, alerts: {active, recent}, token_entry, generated_at}"}
            404: {description: no customer record is linked to this user}
        """
        customer = service.require_customer(acting_user())
        return self.response(200, **service.customer_summary(customer, acting_user()))

    @api_expose("/consumption", methods=["GET"])
    @protect()
    @safe
    @permission_name("consumption")
    def consumption(self):
        """kWh per day (last 30 days) or month (last 12 months) of one of the customer's meters.
        ---
        get:
          summary: Consumption of one of your meters from the rollups, in the utility's time zone
          parameters:
          - {in: query, name: meter_id, required: true, schema: {type: integer}}
          - {in: query, name: period, schema: {type: string, enum: [daily, weekly, monthly], default: daily}}
          responses:
            200: {description: "{meter_id, number, period, unit, points: [{period, import_kwh}], total_kwh}"}
            400: {description: missing meter_id or unknown period}
            404: {description: not one of your meters (or no customer record)}
        """
        customer = service.require_customer(acting_user())
        meter_id = service.parse_meter_id(request.args.get("meter_id"))
        period = request.args.get("period") or "daily"
        return self.response(200, **service.customer_consumption(customer, meter_id, period, utility_zone()))


def register(appbuilder: AppBuilder) -> None:
    """My Meters in the menu (customers only) and its API."""
    appbuilder.add_view(MyMetersView, "My Meters", icon="fa-home", label=_("My Meters"), menu_cond=shows_in_menu)
    appbuilder.add_api(MyMetersApi)
