"""Task Query › Online Rate: per-meter visibility with a summary, downloadable as CSV or PDF at any time."""

from __future__ import annotations

from flask import Response, current_app, request
from flask_appbuilder import AppBuilder, BaseView, has_access
from flask_appbuilder.api import BaseApi, expose, protect
from flask_appbuilder.security.decorators import permission_name
from flask_babel import lazy_gettext as _

from app.services.online_rate import (
    area_name,
    meter_page,
    online_rate_csv,
    online_rate_pdf,
    online_rate_summary,
    visibility_filter,
)
from app.services.scope import selected_area_id
from app.views.common import csv_response
from app.views.dashboard import api_area_id, int_arg, request_scope
from app.views.errors import safe

FILTER_CHOICES = (("all", _("All meters")), ("never", _("Never online")), ("online", _("Online (ever or now)")))


def _filter():
    return visibility_filter(request_scope(api_area_id()), request.args.get("filter", "all") or "all")


class OnlineRateView(BaseView):
    """The page: summary cards, the filter dropdown, the table and the download buttons."""

    route_base = "/online-rate"
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        area_id = selected_area_id()
        return self.render_template("hes/online_rate.html", summary=online_rate_summary(request_scope(area_id)),
                                    choices=FILTER_CHOICES)


class OnlineRateApi(BaseApi):
    """``/api/v1/online-rate/``: the figures and the per-meter list as JSON, CSV or PDF (``?filter=&area=``)."""

    resource_name = "online-rate"
    allow_browser_login = True

    @expose("/", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def report(self):
        """Summary and a page of meters.
        ---
        get:
          summary: Online rate figures and per-meter visibility (number, customer, area, online, first/last seen)
          parameters:
          - {in: query, name: filter, schema: {type: string, enum: [all, never, online]}}
          - {in: query, name: area, schema: {type: integer}}
          - {in: query, name: page, schema: {type: integer, default: 0}}
          - {in: query, name: page_size, schema: {type: integer, default: 25, maximum: 500}}
          responses:
            200: {description: "summary, count and result rows"}
        """
        flt = _filter()
        page = meter_page(flt, int_arg("page", 0), int_arg("page_size", 25))
        return self.response(200, summary=online_rate_summary(flt.scope), **page)

    @expose("/csv", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def csv(self):
        """The per-meter report as CSV (streamed).
        ---
        get:
          summary: Download the online-rate report as CSV
          responses:
            200: {description: CSV file}
        """
        flt = _filter()
        return csv_response(online_rate_csv(flt, current_app.config["HES_TIMEZONE"]), "online-rate.csv")

    @expose("/pdf", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def pdf(self):
        """The report as PDF (summary, chart and the first meters).
        ---
        get:
          summary: Download the online-rate report as PDF
          responses:
            200: {description: PDF file}
        """
        flt = _filter()
        body = online_rate_pdf(flt, visibility=request.args.get("filter", "all") or "all",
                               area_name=area_name(flt.scope.area_id),
                               timezone=current_app.config["HES_TIMEZONE"])
        return Response(body, mimetype="application/pdf",
                        headers={"Content-Disposition": 'attachment; filename="online-rate.pdf"'})


def register(appbuilder: AppBuilder) -> None:
    """Task Query › Online Rate."""
    appbuilder.add_view(OnlineRateView, "Online Rate", icon="fa-signal", category="Task Query",
                        label=_("Online Rate"))
    appbuilder.add_api(OnlineRateApi)
