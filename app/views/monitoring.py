"""Task Query › Real-Time Monitoring: every meter with its live state, and read/execute on a selection."""

from __future__ import annotations

from flask import request
from flask_appbuilder import AppBuilder, BaseView, has_access
from flask_appbuilder.api import BaseApi, expose, protect
from flask_appbuilder.security.decorators import permission_name
from flask_babel import lazy_gettext as _

from app.models import MeterStatus
from app.services.online_rate import MeterFilter, brand_parameters, meter_page
from app.views.dashboard import api_area_id, int_arg, request_scope
from app.views.errors import safe


class MonitoringView(BaseView):
    """The page: a paged meter table fed by the monitoring API and Socket.IO."""

    route_base = "/monitoring"
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        return self.render_template("hes/monitoring.html", statuses=list(MeterStatus))


class MonitoringApi(BaseApi):
    """Meters with live state for the monitoring page, limited to the caller's customer and the asked area."""

    resource_name = "monitoring"
    allow_browser_login = True

    @expose("/meters", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def meters(self):
        """A page of meters visible to the caller.
        ---
        get:
          summary: Meters with details, online state and last-seen time (server-side paging)
          parameters:
          - {in: query, name: page, schema: {type: integer, default: 0}}
          - {in: query, name: page_size, schema: {type: integer, default: 25, maximum: 500}}
          - {in: query, name: q, schema: {type: string}, description: "meter number contains"}
          - {in: query, name: status, schema: {type: string, enum: [warehouse, installed, active, decommissioned]}}
          - {in: query, name: online, schema: {type: string, enum: [online, offline, never, ever]}}
          - {in: query, name: area, schema: {type: integer}, description: "area id (with its sub-areas)"}
          responses:
            200: {description: "count, page, page_size and result rows"}
            400: {description: unknown filter value}
        """
        flt = MeterFilter(scope=request_scope(api_area_id()), q=request.args.get("q", ""),
                          status=request.args.get("status", ""), online=request.args.get("online", ""))
        return self.response(200, **meter_page(flt, int_arg("page", 0), int_arg("page_size", 25)))

    @expose("/parameters", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def parameters(self):
        """The OBIS parameters of the chosen meters' brands (``?meter_ids=1,2``; all visible meters if none).
        ---
        get:
          summary: Parameters (OBIS points) of the meters' brands, flagged readable and writable
          responses:
            200: {description: "result: key, name, obis, group, unit, access, readable, writable, brands"}
        """
        ids = [int(part) for part in request.args.get("meter_ids", "").split(",") if part.strip().isdecimal()]
        return self.response(200, result=brand_parameters(request_scope(api_area_id()), ids or None))


def register(appbuilder: AppBuilder) -> None:
    """Task Query › Real-Time Monitoring."""
    appbuilder.add_view(MonitoringView, "Real-Time Monitoring", icon="fa-heartbeat", category="Task Query",
                        category_label=_("Task Query"), category_icon="fa-search", label=_("Real-Time Monitoring"))
    appbuilder.add_api(MonitoringApi)
