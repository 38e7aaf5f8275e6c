"""Active Alerts inbox and the event log: REST APIs (filters, acknowledge, resolve, CSV) and pages."""

from __future__ import annotations

import datetime as dt

from flask import Response, request
from flask_appbuilder import AppBuilder, BaseView, expose, has_access
from flask_appbuilder.api import expose as api_expose
from flask_appbuilder.api import protect, rison
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name
from flask_babel import gettext
from flask_babel import lazy_gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from app.extensions import db
from app.models import Alert, Event, Meter
from app.services.alerts import acknowledge, resolve
from app.services.csvio import write_rows
from app.services.events import EVENT_TYPES
from app.services.reports.base import N_
from app.services.scope import AreaTreeFilter, MeterNumberFilter, scoped_base_filters
from app.views.common import csv_response
from app.views.errors import safe
from app.views.fleet_api import MAX_ID, HesModelRestApi

MAX_IDS = 1000


class FilteredExportMixin:
    """``GET /export?q=(filters:...)``: the rows the same filters select, as a streamed CSV."""

    export_columns: list[tuple[str, str]] = []  # (header, attribute path)
    export_order: str = "id"
    type_column: str = "id"
    report_title: str = ""

    @api_expose("/export", methods=["GET"])
    @protect()
    @safe
    @rison()
    @permission_name("export")
    def export(self, **kwargs):
        """Download the filtered rows as CSV.
        ---
        get:
          summary: CSV of the rows matching the same rison filters as the list
          responses:
            200: {description: CSV file}
        """
        filters = self._handle_filters_args(kwargs.get("rison", {}))
        model = self.datamodel.obj
        stmt = filters.apply_all(select(model)).order_by(getattr(model, self.export_order).desc())
        header = [h for h, _p in self.export_columns]
        return csv_response(write_rows(header, _stream_rows(stmt, self.export_columns)), f"{self.resource_name}s.csv")


    @api_expose("/pdf", methods=["GET"])
    @protect()
    @safe
    @rison()
    @permission_name("export")
    def pdf(self, **kwargs):
        """Download the filtered rows as a PDF report (first 2,000 rows, counts of all).
        ---
        get:
          summary: PDF report of the rows matching the rison filters
          responses:
            200: {description: PDF file}
        """
        from app.services.reports.base import Report

        filters = self._handle_filters_args(kwargs.get("rison", {}))
        model = self.datamodel.obj
        stmt = filters.apply_all(select(model))
        total = db.session.execute(select(func.count()).select_from(stmt.subquery())).scalar()
        items = db.session.execute(stmt.order_by(getattr(model, self.export_order).desc()).limit(2000)).scalars()
        rows = [tuple(_attr(item, path) for _h, path in self.export_columns) for item in items]
        counted = stmt.subquery()
        by_type = db.session.execute(select(counted.c[self.type_column], func.count())
                                     .group_by(counted.c[self.type_column]).order_by(func.count().desc())).all()
        shown = {f["col"]: str(f["value"]) for f in kwargs.get("rison", {}).get("filters", [])}
        note = (gettext("Times are UTC.") if total <= 2000
                else gettext("First 2,000 of %(total)d rows; times UTC.", total=total))
        pdf = Report.of(self.report_title, [h for h, _p in self.export_columns], rows,
                        filters=shown or {N_("Filters"): gettext("none")},
                        summary=[(N_("Rows"), total)] + [(str(k), v) for k, v in by_type], note=note).pdf()
        return Response(pdf, mimetype="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{self.resource_name}s.pdf"'})


def _stream_rows(stmt, columns):
    """Rows of ``stmt`` from a session of its own: the request's session ends (closing PostgreSQL's server-side
    cursor) before a streamed body is sent."""
    from sqlalchemy.orm import Session

    with Session(db.engine) as session:
        for item in session.execute(stmt.execution_options(yield_per=1000)).scalars():
            yield tuple(_attr(item, path) for _h, path in columns)


def _attr(item, path: str):
    for part in path.split("."):
        item = getattr(item, part, None) if item is not None else None
    if isinstance(item, dt.datetime):
        return item.isoformat()
    return getattr(item, "value", item)


class AlertApi(FilteredExportMixin, HesModelRestApi):
    """Alerts: ``/api/v1/alert/`` with filters; acknowledge / resolve one or many."""

    resource_name = "alert"
    datamodel = SQLAInterface(Alert)
    base_permissions = ["can_get", "can_info", "can_export", "can_acknowledge", "can_resolve"]
    base_filters = scoped_base_filters("meter_id")
    list_columns = ["id", "meter_id", "meter.number", "area_id", "kind", "alert_type", "severity", "state", "title",
                    "count", "first_at", "last_at", "acknowledged_at", "ack_comment", "resolved_at", "details"]
    show_columns = list_columns + ["acknowledged_by.username", "resolved_by.username", "resolve_comment"]
    search_columns = ["meter_id", "meter", "area_id", "kind", "alert_type", "severity", "state", "first_at", "last_at"]
    search_filters = {"area_id": [AreaTreeFilter], "meter_id": [MeterNumberFilter]}
    order_columns = ["last_at", "first_at", "severity", "count", "id"]
    base_order = ("last_at", "desc")
    export_columns = [(N_("Alert"), "id"), (N_("Meter"), "meter.number"), (N_("Type"), "alert_type"),
                      (N_("Kind"), "kind"), (N_("Severity"), "severity"), (N_("State"), "state"),
                      (N_("Title"), "title"), (N_("Count"), "count"), (N_("First"), "first_at"),
                      (N_("Last"), "last_at"), (N_("Acknowledged"), "acknowledged_at"),
                      (N_("Comment"), "ack_comment"), (N_("Resolved"), "resolved_at")]
    export_order = "last_at"
    type_column = "alert_type"
    report_title = N_("Alerts report")

    def _act(self, action):
        body = request.get_json(silent=True) or {}
        ids = body.get("ids")
        if not isinstance(ids, list) or not ids or len(ids) > MAX_IDS or not all(
                isinstance(i, int) and not isinstance(i, bool) and 0 < i <= MAX_ID for i in ids):
            return self.response_400(message=f"Give 'ids': a list of 1 to {MAX_IDS} alert ids.")
        visible = select(Alert.id).where(Alert.id.in_(ids))
        for flt, value in self._base_filters.get_filters_values():
            visible = flt.apply(visible, value)
        if set(db.session.execute(visible).scalars()) != set(ids):
            return self.response_404()
        done = action(ids, current_user, body.get("comment"))
        return self.response(200, ids=[a.id for a in done], state=done[0].state.value)

    @api_expose("/acknowledge", methods=["POST"])
    @protect()
    @safe
    @permission_name("acknowledge")
    def acknowledge(self):
        """Acknowledge alerts: they leave the active list and stay in the log.
        ---
        post:
          summary: Acknowledge one or many active alerts with a comment
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  properties: {ids: {type: array, items: {type: integer}}, comment: {type: string}}
          responses:
            200: {description: acknowledged ids}
        """
        return self._act(acknowledge)

    @api_expose("/resolve", methods=["POST"])
    @protect()
    @safe
    @permission_name("resolve")
    def resolve(self):
        """Resolve (close) alerts.
        ---
        post:
          summary: Resolve one or many alerts with a comment
          responses:
            200: {description: resolved ids}
        """
        return self._act(resolve)


class EventApi(FilteredExportMixin, HesModelRestApi):
    """Events: ``/api/v1/event/`` with filters, CSV export and counts per type over time."""

    resource_name = "event"
    datamodel = SQLAInterface(Event)
    base_permissions = ["can_get", "can_info", "can_export", "can_summary"]
    base_filters = scoped_base_filters("meter_id")
    list_columns = ["id", "meter_id", "meter.number", "ts", "event_type", "code", "severity", "source", "log",
                    "received_at", "details"]
    show_columns = list_columns
    search_columns = ["meter_id", "meter", "event_type", "severity", "source", "ts", "code"]
    search_filters = {"meter_id": [AreaTreeFilter, MeterNumberFilter]}
    order_columns = ["ts", "event_type", "severity", "id"]
    base_order = ("ts", "desc")
    export_columns = [(N_("Time (UTC)"), "ts"), (N_("Meter"), "meter.number"), (N_("Type"), "event_type"),
                      (N_("Code"), "code"), (N_("Severity"), "severity"), (N_("Source"), "source"), (N_("Log"), "log"),
                      (N_("Received"), "received_at")]
    export_order = "ts"
    type_column = "event_type"
    report_title = N_("Event report")

    @api_expose("/summary", methods=["GET"])
    @protect()
    @safe
    @rison()
    @permission_name("summary")
    def summary(self, **kwargs):
        """Counts of events per type and per day (UTC) for the same filters as the list.
        ---
        get:
          summary: Event counts per type and day
          responses:
            200: {description: "{types: {type: n}, days: [{day, type, count}]}"}
        """
        filters = self._handle_filters_args(kwargs.get("rison", {}))
        base = filters.apply_all(select(Event.id, Event.event_type, Event.ts)).subquery()
        day = func.date(base.c.ts)
        rows = db.session.execute(select(day, base.c.event_type, func.count()).group_by(day, base.c.event_type)
                                  .order_by(day)).all()
        types: dict[str, int] = {}
        for _day, kind, count in rows:
            types[kind] = types.get(kind, 0) + count
        return self.response(200, types=types, days=[{"day": str(d), "type": k, "count": c} for d, k, c in rows],
                             titles={k: v.title for k, v in EVENT_TYPES.items()})


class ActiveAlertsView(BaseView):
    """The Unacknowledged Alerts inbox (live)."""

    route_base = "/alerts"
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        active = db.session.execute(select(func.count()).select_from(Alert).where(Alert.state == "active")).scalar()
        titles = {key: gettext(kind.title) for key, kind in EVENT_TYPES.items()}
        return self.render_template("hes/alerts.html", active=active, titles=titles)


class EventAnalysisView(BaseView):
    """Task Query › Event Analysis: events by type, meter, area and time, with drill-down and exports."""

    route_base = "/events"
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        meters = request.args.get("meter", "")
        number = db.session.execute(select(Meter.number).where(Meter.number == meters)).scalar() if meters else None
        return self.render_template("hes/event_analysis.html", types=EVENT_TYPES, meter=number or "")


def register(appbuilder: AppBuilder) -> None:
    """Active Alerts and Task Query › Event Analysis."""
    appbuilder.add_view(ActiveAlertsView, "Active Alerts", icon="fa-bell", label=_("Active Alerts"))
    appbuilder.add_view(EventAnalysisView, "Event Analysis", icon="fa-bolt", category="Task Query",
                        category_label=_("Task Query"), label=_("Event Analysis"))
    appbuilder.add_api(AlertApi)
    appbuilder.add_api(EventApi)
