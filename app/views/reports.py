"""Consumption Report › Energy Consumption, Hourly and Data Completeness: pages over JSON, CSV and PDF APIs."""

from __future__ import annotations

import datetime as dt

from flask import Response, request
from flask_appbuilder import AppBuilder, BaseView, has_access
from flask_appbuilder.api import BaseApi, expose, protect
from flask_appbuilder.security.decorators import permission_name
from flask_babel import lazy_gettext as _

from app.services.reports import completeness as completeness_service
from app.services.reports import consumption as consumption_service
from app.services.reports.common import request_scope
from app.services.reports.periods import local_today, parse_date, utility_zone
from app.services.scope import Scope, selected_area_id
from app.views.common import csv_response
from app.views.errors import safe


def api_scope() -> Scope:
    """The caller's scope narrowed by ``?area=<id>`` and ``?meter=<id or number>``."""
    raw = request.args.get("area", "")
    return request_scope(int(raw) if raw.isdecimal() else None, request.args.get("meter") or None)


def date_range(default_days: int = 30) -> tuple[dt.date, dt.date]:
    """``?start=&end=`` (local dates, inclusive); by default the ``default_days`` days up to today (so far)."""
    today = local_today(utility_zone())
    end = parse_date(request.args.get("end"), "end", today)
    start = parse_date(request.args.get("start"), "start", end - dt.timedelta(days=default_days - 1))
    return start, end


def pdf_response(body: bytes, filename: str) -> Response:
    """PDF bytes as a download."""
    return Response(body, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


class ReportDownloads(BaseApi):
    """A report's downloads: ``/csv`` and ``/pdf`` built from the same ``args()`` (the query string read once);
    subclasses say how each is made and name the file. Service errors answer through ``@safe``."""

    allow_browser_login = True

    def args(self) -> tuple:
        """The report's arguments from the query string."""
        return ()

    def filename(self, *args) -> str:
        """The download's file name without extension."""
        return self.resource_name

    def csv_body(self, *args):
        """The CSV text (an iterator of lines)."""
        raise NotImplementedError

    def pdf_body(self, *args) -> bytes:
        """The PDF bytes."""
        raise NotImplementedError

    @expose("/csv", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def csv(self):
        """The report's rows as CSV.
        ---
        get:
          summary: Download the report as CSV (same query parameters as the report; English headings)
          responses:
            200: {description: CSV file}
        """
        args = self.args()
        return csv_response(self.csv_body(*args), f"{self.filename(*args)}.csv")

    @expose("/pdf", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def pdf(self):
        """The report as PDF.
        ---
        get:
          summary: Download the report as PDF (title, filters, figures, chart, table; in the reader's language)
          responses:
            200: {description: PDF file}
        """
        args = self.args()
        return pdf_response(self.pdf_body(*args), f"{self.filename(*args)}.pdf")


class ReportApi(ReportDownloads):
    """A report's API: ``/`` (JSON), ``/csv`` and ``/pdf`` from the same arguments."""

    def json_body(self, *args) -> dict:
        """The report's figures as a JSON object."""
        raise NotImplementedError

    @expose("/", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def report(self):
        """The report's figures.
        ---
        get:
          summary: The report as JSON
          parameters:
          - {in: query, name: area, schema: {type: integer}, description: "area id (with sub-areas)"}
          - {in: query, name: meter, schema: {type: string}, description: "meter id or number"}
          - {in: query, name: start, schema: {type: string, format: date}}
          - {in: query, name: end, schema: {type: string, format: date}}
          - {in: query, name: granularity, schema: {type: string, enum: [hourly, daily, weekly, monthly]}}
          - {in: query, name: page, schema: {type: integer, default: 0}}
          - {in: query, name: days, schema: {type: integer, default: 30}, description: "leakage trend length"}
          - {in: query, name: limit, schema: {type: integer, default: 500}, description: "leakage exceptions"}
          - {in: query, name: offset, schema: {type: integer, default: 0}}
          responses:
            200: {description: the report}
        """
        return self.response(200, **self.json_body(*self.args()))


def page_context(**extra) -> dict:
    """What every report page needs: the area chosen in the top bar and the zone."""
    zone = utility_zone()
    return {"area_id": selected_area_id(), "timezone": zone.key, "today": local_today(zone).isoformat(), **extra}


class ReportPage(BaseView):
    """A report page: its template rendered with the page context (the data comes from its API)."""

    default_view = "index"
    template = ""

    def context(self) -> dict:
        """The template's variables."""
        return page_context()

    @expose("/")
    @has_access
    def index(self):
        return self.render_template(self.template, **self.context())


class ConsumptionView(ReportPage):
    """Energy Consumption (daily, weekly, monthly, hourly) and the Hourly page."""

    route_base = "/reports/consumption"
    template = "reports/consumption.html"

    def context(self) -> dict:
        return page_context(granularity="daily", days=30)

    @expose("/hourly")
    @has_access
    def hourly(self):
        return self.render_template("reports/consumption.html", **page_context(granularity="hourly", days=2))


class CompletenessView(ReportPage):
    """Data completeness: expected against received intervals."""

    route_base = "/reports/completeness"
    template = "reports/completeness.html"

    def context(self) -> dict:
        from flask import current_app

        return page_context(on_time_hours=float(current_app.config.get("HES_ON_TIME_HOURS", 4)))


class ConsumptionApi(ReportApi):
    """``/api/v1/consumption/``: statistics as JSON, CSV (per meter and period, or raw readings) and PDF: series
    per hour, day, ISO week or month in HES_TIMEZONE, the summary and the largest meters."""

    resource_name = "consumption"

    def args(self):
        start, end = date_range(2 if request.args.get("granularity") == "hourly" else 30)
        return api_scope(), start, end, request.args.get("granularity", "daily"), utility_zone()

    def filename(self, scope, start, end, granularity, tz) -> str:
        return f"consumption-{granularity}-{start}-{end}"

    def json_body(self, scope, start, end, granularity, tz) -> dict:
        page = int(request.args.get("page", "0")) if request.args.get("page", "0").isdecimal() else 0
        meters, with_data, per_day = consumption_service.page_and_days(scope, start, end, tz, limit=100,
                                                                       offset=100 * page)
        return {"granularity": granularity, "timezone": tz.key,
                "summary": consumption_service.consumption_summary(scope, start, end, tz, meters=with_data,
                                                                   per_day=per_day),
                "series": consumption_service.consumption_series(scope, start, end, granularity, tz,
                                                                 per_day=per_day),
                "meters": meters}

    def csv_body(self, scope, start, end, granularity, tz):
        return consumption_service.consumption_csv(scope, start, end, granularity, tz)

    def pdf_body(self, scope, start, end, granularity, tz) -> bytes:
        return consumption_service.consumption_pdf(scope, start, end, granularity, tz)

    @expose("/readings.csv", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def readings(self):
        """The raw energy-register readings, streamed.
        ---
        get:
          summary: Download the import/export register readings (kWh) in range as CSV
          responses:
            200: {description: CSV file}
        """
        scope, start, end, _granularity, tz = self.args()
        return csv_response(consumption_service.readings_csv(scope, start, end, tz), f"readings-{start}-{end}.csv")


class CompletenessApi(ReportApi):
    """``/api/v1/completeness/``: expected against received profile intervals (per day, per area, the worst
    meters) as JSON, CSV per meter and day, and PDF."""

    resource_name = "completeness"

    def args(self):
        start, end = date_range(7)
        return api_scope(), start, end, utility_zone()

    def filename(self, scope, start, end, tz) -> str:
        return f"completeness-{start}-{end}"

    def json_body(self, *args) -> dict:
        return completeness_service.completeness(*args)

    def csv_body(self, *args):
        return completeness_service.completeness_csv(*args)

    def pdf_body(self, *args) -> bytes:
        return completeness_service.completeness_pdf(*args)


def register(appbuilder: AppBuilder) -> None:
    """Consumption Report › Energy Consumption, Hourly, Data Completeness."""
    appbuilder.add_view(ConsumptionView, "Energy Consumption", icon="fa-bar-chart", category="Consumption Report",
                        label=_("Energy Consumption"))
    appbuilder.add_link("Hourly", href="ConsumptionView.hourly", icon="fa-clock-o",
                        category="Consumption Report", label=_("Hourly"))
    appbuilder.add_view(CompletenessView, "Data Completeness", icon="fa-check-square-o",
                        category="Consumption Report", label=_("Data Completeness"))
    for api in (ConsumptionApi, CompletenessApi):
        appbuilder.add_api(api)
