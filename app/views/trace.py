"""A meter's communication trace: switch it on for N minutes, see every frame decoded, download it."""

from __future__ import annotations

from flask import Response, flash, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose, has_access
from flask_appbuilder.api import BaseApi, protect
from flask_appbuilder.api import expose as api_expose
from flask_appbuilder.security.decorators import permission_name
from flask_babel import lazy_gettext as _

from app.extensions import db
from app.models import Meter
from app.services import NotFound, ServiceError
from app.services import trace as traces
from app.views.errors import safe


def _meter(pk: int) -> Meter:
    meter = db.session.get(Meter, pk)
    if meter is None:
        raise NotFound(f"Meter {pk} not found.")
    return meter


def _minutes(raw) -> float:
    try:
        return float(raw)
    except (TypeError, ValueError) as exc:
        raise ServiceError("minutes must be a number.", status=422,
                           errors=[{"field": "minutes", "reason": "not a number", "value": str(raw)}]) from exc


class MeterTraceView(BaseView):
    """Meters › a meter › Communication trace."""

    route_base = "/meter-trace"
    class_permission_name = "MeterTraceView"

    @expose("/<int:pk>", methods=["GET", "POST"])
    @has_access
    def show(self, pk: int):
        meter = _meter(pk)
        if request.method == "POST":
            try:
                if request.form.get("action") == "clear":
                    traces.clear(meter.id)
                    flash(_("Trace cleared."), "info")
                else:
                    until = traces.switch(meter, _minutes(request.form.get("minutes", 0)))
                    flash(_("Tracing until %(t)s UTC.", t=until.strftime("%H:%M")) if until
                          else _("Tracing is off."), "success")
                db.session.commit()
            except ServiceError as exc:
                db.session.rollback()
                flash(exc.message, "danger")
            return redirect(url_for("MeterTraceView.show", pk=pk))
        return self.render_template("hes/meter_trace.html", meter=meter, on=traces.is_on(meter),
                                    frames=traces.frames(meter.id, limit=500), ring=traces.ring_size())

    @expose("/<int:pk>/download")
    @has_access
    def download(self, pk: int):
        meter = _meter(pk)
        return Response(traces.as_text(meter), mimetype="text/plain", headers={
            "Content-Disposition": f'attachment; filename="trace-{meter.number}.txt"'})


class MeterTraceApi(BaseApi):
    """``/api/v1/meter_trace/<meter id>``: switch tracing, read the kept frames, download them."""

    resource_name = "meter_trace"
    allow_browser_login = True

    @api_expose("/<int:pk>", methods=["PUT"])
    @protect()
    @safe
    @permission_name("trace")
    def switch(self, pk: int):
        """Trace a meter for N minutes (0 switches it off).
        ---
        put:
          summary: Switch a meter's communication trace on for N minutes (0 = off)
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema: {type: object, properties: {minutes: {type: number, example: 30}}}
          responses:
            200: {description: "{trace_until}"}
        """
        meter = _meter(pk)
        until = traces.switch(meter, _minutes((request.get_json(silent=True) or {}).get("minutes", 30)))
        db.session.commit()
        return self.response(200, trace_until=until.isoformat() if until else None)

    @api_expose("/<int:pk>", methods=["GET"])
    @protect()
    @safe
    @permission_name("trace")
    def frames(self, pk: int):
        """The kept frames (oldest first), decoded, secrets masked.
        ---
        get:
          summary: A meter's kept frames with time, direction (tx = HES to meter), hex and decoded XML
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          - {in: query, name: after, schema: {type: integer}, description: only frames with a larger id}
          responses:
            200: {description: "{on, trace_until, result: [{id, at, direction, hex, xml}]}"}
        """
        meter = _meter(pk)
        after = request.args.get("after", "0")
        rows = traces.frames(meter.id, limit=traces.ring_size(), after_id=int(after) if after.isdigit() else 0)
        return self.response(200, on=traces.is_on(meter), result=rows,
                             trace_until=meter.trace_until.isoformat() if meter.trace_until else None)


def register(appbuilder: AppBuilder) -> None:
    """The trace page (reached from the meter's page) and its API."""
    appbuilder.add_view_no_menu(MeterTraceView)
    appbuilder.add_api(MeterTraceApi)
