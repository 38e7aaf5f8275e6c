"""Import pages: upload a CSV of meters, SIM cards or customers; export them back."""

from __future__ import annotations

from flask import abort, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose, has_access
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name
from flask_babel import lazy_gettext as _

from app.extensions import db
from app.models import Customer, Meter, Sim
from app.services import ServiceError, import_jobs
from app.services.fleet_import import CUSTOMER_COLUMNS, EXPORTERS, METER_COLUMNS, SIM_COLUMNS
from app.services.scope import CustomerScopeFilter, SelectedAreaFilter
from app.views.common import csv_response

# kind: (title, columns, list endpoint, model, column the customer scope filters by, column the area filters by);
# a SIM is in its meter's area (``area_clause``) and no customer exports SIM cards.
KINDS = {
    "meter": (_("Import Meters"), METER_COLUMNS, "MeterView.list", Meter, "customer_id", "area_id"),
    "sim": (_("Import SIM Cards"), SIM_COLUMNS, "SimView.list", Sim, None, "id"),
    "customer": (_("Import Customers"), CUSTOMER_COLUMNS, "CustomerView.list", Customer, "id", "id"),
}


API_VIEWS = {"meter": "MeterApi", "sim": "SimApi", "customer": "CustomerApi"}


def _outcome(job) -> dict:
    """What the page shows of a finished job: the counts, or the message and the errors by line."""
    if job.state == "done":
        return {"result": job}
    return {"message": job.message, "errors": job.errors or [{"line": "", "reason": job.message}]}


class ImportView(BaseView):
    """Upload and download the fleet CSV files."""

    route_base = "/import"
    default_view = "form"

    @expose("/<kind>/", methods=["GET", "POST"])
    @has_access
    @permission_name("import")
    def form(self, kind: str):
        if kind not in KINDS:
            abort(404)
        title, columns, list_endpoint, *_rest = KINDS[kind]
        context = {"title": title, "columns": columns, "list_url": url_for(list_endpoint),
                   "export_url": url_for("ImportView.export", kind=kind)}
        if request.method == "POST":
            try:
                import_jobs.check_size(request.content_length)
                upload = request.files.get("file")
                if upload is None or not upload.filename:
                    raise ServiceError(str(_("Choose a CSV file to import.")))
                job = import_jobs.submit(kind, upload, g.user.id)
                if not job.finished:
                    return redirect(url_for("ImportView.job", kind=kind, job_id=job.id))
                context.update(_outcome(job))
            except ServiceError as exc:
                db.session.rollback()
                context.update(message=exc.message, errors=exc.errors or [{"line": "", "reason": exc.message}])
        return self.render_template("hes/import.html", **context)

    @expose("/<kind>/job/<int:job_id>")
    @has_access
    @permission_name("import")
    def job(self, kind: str, job_id: int):
        """A background import: a progress bar while it runs (the page polls the API), then its result."""
        if kind not in KINDS:
            abort(404)
        title, columns, list_endpoint, *_rest = KINDS[kind]
        try:
            job = import_jobs.get(kind, job_id, g.user)
        except ServiceError:
            abort(404)
        context = {"title": title, "columns": columns, "list_url": url_for(list_endpoint),
                   "export_url": url_for("ImportView.export", kind=kind), "job": job,
                   "status_url": url_for(f"{API_VIEWS[kind]}.import_status", job_id=job.id)}
        if job.finished:
            context.update(_outcome(job))
        return self.render_template("hes/import.html", **context)

    @expose("/<kind>/export")
    @has_access
    @permission_name("export")
    def export(self, kind: str):
        if kind not in KINDS:
            abort(404)
        _title, _cols, _endpoint, model, customer_column, area_column = KINDS[kind]
        datamodel = SQLAInterface(model)
        filters = [SelectedAreaFilter(area_column, datamodel)]
        if customer_column:
            filters.append(CustomerScopeFilter(customer_column, datamodel))
        query = db.select(model)
        for flt in filters:  # the rows the list page shows: the area picked in the top bar, the customer's own
            query = flt.apply(query, None)
        return csv_response(EXPORTERS[kind](query), f"{kind}s.csv")


def register(appbuilder: AppBuilder) -> None:
    """Add the import pages (reached from the list pages' buttons and the menu)."""
    appbuilder.add_view_no_menu(ImportView)
    appbuilder.add_link("Import Meters", href="/import/meter/", icon="fa-upload", category="Meter Management",
                        label=_("Import Meters"))
    appbuilder.add_link("Import Customers CSV", href="/import/customer/", icon="fa-upload",
                        category="Customer Management", label=_("Import Customers"))
