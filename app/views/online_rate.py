"""Task Query › Online Rate: per-meter visibility with a summary, downloadable as CSV or PDF at any time."""

from __future__ import annotations

from flask import current_app, request
from flask_appbuilder import AppBuilder, BaseView, expose, has_access
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
from app.views.dashboard import api_area_id, int_arg, request_scope
from app.views.reports import ReportApi

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


class OnlineRateApi(ReportApi):
    """``/api/v1/online-rate/``: the figures and the per-meter visibility (number, customer, area, online,
    first/last seen) as JSON (``?filter=all|never|online&area=&page=&page_size=``), CSV or PDF."""

    resource_name = "online-rate"

    def args(self):
        return (_filter(),)

    def json_body(self, flt) -> dict:
        return {"summary": online_rate_summary(flt.scope), **meter_page(flt, int_arg("page", 0),
                                                                        int_arg("page_size", 25))}

    def csv_body(self, flt):
        return online_rate_csv(flt, current_app.config["HES_TIMEZONE"])

    def pdf_body(self, flt) -> bytes:
        return online_rate_pdf(flt, visibility=request.args.get("filter", "all") or "all",
                               area_name=area_name(flt.scope.area_id), timezone=current_app.config["HES_TIMEZONE"])


def register(appbuilder: AppBuilder) -> None:
    """Task Query › Online Rate."""
    appbuilder.add_view(OnlineRateView, "Online Rate", icon="fa-signal", category="Task Query",
                        label=_("Online Rate"))
    appbuilder.add_api(OnlineRateApi)
