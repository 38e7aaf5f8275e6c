"""Revenue Protection › Revenue Leakage, Investigations and Technical Loss: pages over JSON, CSV and PDF APIs."""

from __future__ import annotations

from flask import g, request, url_for
from flask_appbuilder import AppBuilder
from flask_appbuilder.api import expose, protect
from flask_appbuilder.security.decorators import permission_name
from flask_babel import lazy_gettext as _

from app.services import ServiceError
from app.services.analytics import detection_jobs, investigations, loss
from app.services.reports import leakage as leakage_service
from app.services.reports import revenue as revenue_reports
from app.services.reports.periods import parse_date, utility_zone
from app.views.errors import safe
from app.views.reports import ReportApi, ReportDownloads, ReportPage, api_scope, date_range, page_context


def _days() -> int:
    raw = request.args.get("days", "30")
    return int(raw) if raw.isdecimal() else 30


def _int_arg(name: str, default: int, most: int | None) -> int:
    raw = request.args.get(name, "")
    value = int(raw) if raw.isdecimal() else default
    return min(value, most) if most is not None else value


def _leakage(scope, tz) -> dict:
    """The leakage figures for the scope from the last count (app.services.recent): at 100,000 meters counting
    takes seconds, so the page, CSV and PDF share the stored count, refreshed in the background (``as_of``)."""
    from app.services.recent import recent

    return recent("leakage", scope, tz.key, _days())


def _number(data: dict, name: str) -> float | None:
    value = data.get(name)
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ServiceError(f"'{name}' must be a number.", status=422) from exc


class LeakageView(ReportPage):
    """Revenue Leakage: indicators per area, exceptions per meter and the trend."""

    route_base = "/revenue/leakage"
    template = "reports/leakage.html"


class InvestigationView(ReportPage):
    """Investigations: the cases opened by theft detection, their outcomes and each rule's precision."""

    route_base = "/revenue/investigations"
    template = "reports/investigations.html"


class TechnicalLossView(ReportPage):
    """Technical Loss: the energy balance of areas with a supply meter."""

    route_base = "/revenue/technical-loss"
    template = "reports/technical_loss.html"

    def context(self) -> dict:
        return page_context(threshold=loss.loss_threshold_pct())


class LeakageApi(ReportApi):
    """``/api/v1/leakage/``: revenue-leakage indicators (zero consumption, reverse flow, tamper, relay, credit,
    offline, low) per area, the exceptions per meter and the daily trend (``?area=&days=``); one recent count per
    scope (``app.services.recent``) serves the JSON, the exceptions CSV and the PDF."""

    resource_name = "leakage"

    def args(self):
        scope, tz = api_scope(), utility_zone()
        return scope, tz, _leakage(scope, tz)

    def filename(self, *args) -> str:
        return "revenue-leakage"

    def json_body(self, scope, tz, data) -> dict:
        """The figures with a page of the exceptions (``?limit=`` default 500, at most 5000, ``&offset=``) and
        ``exceptions_total``: at 100k meters the whole list is megabytes; the CSV has them all."""
        limit, offset = _int_arg("limit", 500, 5000), _int_arg("offset", 0, None)
        return {**data, "exceptions": data["exceptions"][offset:offset + limit],
                "exceptions_total": len(data["exceptions"])}

    def csv_body(self, scope, tz, data):
        return leakage_service.leakage_csv(data)

    def pdf_body(self, scope, tz, data) -> bytes:
        return leakage_service.leakage_pdf(scope, data, tz)


class InvestigationApi(ReportDownloads):
    """``/api/v1/investigation/``: list, show, assign, note and close cases; precision per rule; run detection."""

    resource_name = "investigation"

    def args(self):
        return api_scope(), request.args.get("state", ""), utility_zone()

    def filename(self, *args) -> str:
        return "investigations"

    def csv_body(self, *args):
        return revenue_reports.investigations_csv(*args)

    def pdf_body(self, *args) -> bytes:
        return revenue_reports.investigations_pdf(*args)

    @expose("/", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def list_cases(self):
        """Cases with the summary and the precision of each rule.
        ---
        get:
          summary: Investigations in scope (``?state=open|closed&area=&page=``), summary and per-rule precision
          responses:
            200: {description: "summary, precision, count, result"}
        """
        scope, state = api_scope(), request.args.get("state", "")
        page = int(request.args.get("page", "0")) if request.args.get("page", "0").isdecimal() else 0
        return self.response(200, summary=investigations.summary(scope),
                             precision=investigations.rule_precision(scope),
                             result=investigations.investigation_page(scope, state, page))

    @expose("/<int:pk>", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def show(self, pk: int):
        """One case with its notes and findings.
        ---
        get:
          summary: An investigation with notes and the findings behind it
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: investigation}
            404: {description: not found}
        """
        case = investigations.get_investigation(pk, api_scope())
        return self.response(200, **investigations.as_dict(case, with_findings=True))

    @expose("/assignees", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def assignees(self):
        """The users a case can be assigned to.
        ---
        get:
          summary: Active users whose roles may work investigations (``username``, ``name``)
          responses:
            200: {description: users by name}
        """
        return self.response(200, result=investigations.assignees())

    @expose("/<int:pk>/assign", methods=["POST"])
    @protect()
    @safe
    @permission_name("edit")
    def assign(self, pk: int):
        """Assign to a user (``{"username": "..."}``; empty to unassign).
        ---
        post:
          summary: Assign an investigation
          responses:
            200: {description: investigation}
        """
        case = investigations.get_investigation(pk, api_scope())
        data = request.get_json(silent=True) or {}
        return self.response(200, **investigations.as_dict(
            investigations.assign(case, data.get("username") or None, g.user)))

    @expose("/<int:pk>/note", methods=["POST"])
    @protect()
    @safe
    @permission_name("edit")
    def note(self, pk: int):
        """Add a note (``{"text": "..."}``).
        ---
        post:
          summary: Add a note to an investigation
          responses:
            200: {description: investigation}
        """
        case = investigations.get_investigation(pk, api_scope())
        data = request.get_json(silent=True) or {}
        return self.response(200, **investigations.as_dict(investigations.add_note(case, data.get("text"), g.user)))

    @expose("/<int:pk>/close", methods=["POST"])
    @protect()
    @safe
    @permission_name("edit")
    def close(self, pk: int):
        """Close with the field visit's outcome (resolves the alert).
        ---
        post:
          summary: Close an investigation
          description: '``{"outcome": "theft_confirmed|meter_fault|false_alarm", "energy_recovered_kwh": 120,
            "amount_recovered": 95.5, "note": "..."}``'
          responses:
            200: {description: investigation}
            409: {description: already closed}
            422: {description: invalid outcome or amounts}
        """
        case = investigations.get_investigation(pk, api_scope())
        data = request.get_json(silent=True) or {}
        closed = investigations.close(case, str(data.get("outcome", "")),
                                      energy_kwh=_number(data, "energy_recovered_kwh"),
                                      amount=_number(data, "amount_recovered"), note=data.get("note"), user=g.user)
        return self.response(200, **investigations.as_dict(closed))

    @expose("/detect", methods=["POST"])
    @protect()
    @safe
    @permission_name("detect")
    def detect(self):
        """Run theft detection now (``?as_of=YYYY-MM-DD``; default today) in a task; poll the run.
        ---
        post:
          summary: Queue a run of every rule and the anomaly model; new findings open investigations and alerts
          description: One run at a time; asking while one is queued or running answers that run.
          responses:
            202: {description: "the run (state queued or running) and status_url to poll (also in Location)"}
        """
        as_of = parse_date(request.args.get("as_of"), "as_of", None) if request.args.get("as_of") else None
        run, _started = detection_jobs.submit(as_of, g.user.id)
        return self._run_response(run, 202)

    @expose("/detect/<int:run_id>", methods=["GET"])
    @protect()
    @safe
    @permission_name("detect")
    def detect_status(self, run_id: int):
        """A detection run: meters checked while it runs, its summary when done.
        ---
        get:
          summary: Progress and result of a detection run
          parameters:
            - {in: path, name: run_id, required: true, schema: {type: integer}}
          responses:
            200: {description: "state (queued, running, done, failed), meters, checked, progress %, result"}
            404: {description: no such run}
        """
        return self._run_response(detection_jobs.get(run_id), 200)

    @expose("/detect/latest", methods=["GET"])
    @protect()
    @safe
    @permission_name("detect")
    def detect_latest(self):
        """The most recent detection run (the page shows it on opening and follows one under way).
        ---
        get:
          summary: The latest detection run, or an empty object when there was none
          responses:
            200: {description: "the run, as GET /detect/{run_id}"}
        """
        run = detection_jobs.latest()
        return self._run_response(run, 200) if run is not None else self.response(200)

    def _run_response(self, run, status: int):
        """The run as JSON with the URL to poll (``Location`` too when it was just asked for)."""
        status_url = url_for(f"{type(self).__name__}.detect_status", run_id=run.id)
        resp = self.response(status, **run.as_dict(), status_url=status_url)
        if status == 202:
            resp.headers["Location"] = status_url
        return resp


class TechnicalLossApi(ReportApi):
    """``/api/v1/technical-loss/``: energy in, consumers and loss per supplied area per day or month
    (``?area=&start=&end=&granularity=``) as JSON, CSV and PDF."""

    resource_name = "technical-loss"

    def args(self):
        start, end = date_range(30)
        return api_scope(), start, end, request.args.get("granularity", "daily"), utility_zone()

    def filename(self, scope, start, end, granularity, tz) -> str:
        return f"technical-loss-{start}-{end}"

    def json_body(self, scope, start, end, granularity, tz) -> dict:
        supplied = [{"area_id": area_id, "area": name, "supply_meter": number}
                    for area_id, name, _supply_id, number in loss.supplied_areas(scope)]
        return {"threshold_pct": loss.loss_threshold_pct(), "supplied": supplied,
                "result": loss.energy_balance(scope, start, end, granularity, tz)}

    def csv_body(self, *args):
        return revenue_reports.loss_csv(*args)

    def pdf_body(self, *args) -> bytes:
        return revenue_reports.loss_pdf(*args)


def register(appbuilder: AppBuilder) -> None:
    """Revenue Protection › Revenue Leakage, Investigations, Technical Loss."""
    appbuilder.add_view(LeakageView, "Revenue Leakage", icon="fa-tint", category="Revenue Protection",
                        label=_("Revenue Leakage"))
    appbuilder.add_view(InvestigationView, "Investigations", icon="fa-user-secret", category="Revenue Protection",
                        label=_("Investigations"))
    appbuilder.add_view(TechnicalLossView, "Technical Loss", icon="fa-plug", category="Revenue Protection",
                        label=_("Technical Loss"))
    for api in (LeakageApi, InvestigationApi, TechnicalLossApi):
        appbuilder.add_api(api)
