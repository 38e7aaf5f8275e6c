"""REST API (FAB ModelRestApi, JWT) for areas, meters, SIM cards and customers, with CSV import/export."""

from __future__ import annotations

from flask import g, request, url_for
from flask_appbuilder import AppBuilder, ModelRestApi
from flask_appbuilder.api import expose, protect
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name
from marshmallow import ValidationError
from marshmallow_sqlalchemy.fields import Related, RelatedList
from sqlalchemy.exc import NoResultFound

from app.extensions import db
from app.models import Area, Customer, Meter, Sim
from app.services import MAX_ID, import_jobs
from app.services.fleet_import import EXPORTERS
from app.services.scope import AreaTreeFilter, scoped_base_filters
from app.views.common import csv_response
from app.views.errors import domain_errors, safe
from app.views.meter_ops_api import MeterOperationsMixin


class ExistingRelated(Related):
    """A relationship written as the id of an existing row. marshmallow-sqlalchemy's Related would build a new
    row from an unknown id or a nested object, so a write could create rows of any related table (a login user
    through a customer's ``user``, a brand through a meter's ``brand``) past that table's own permissions and
    checks."""

    def _deserialize(self, value, *args, **kwargs):
        text = str(value)
        if isinstance(value, bool) or not isinstance(value, int | str) or not (text.isascii() and text.isdigit()):
            raise ValidationError("Give the id of an existing record.")
        if not 0 < int(text) <= MAX_ID:
            raise ValidationError(f"No record with id {text}.")
        try:
            return self._get_existing_instance(self.related_model, {self.related_keys[0].key: int(text)})
        except NoResultFound as exc:
            raise ValidationError(f"No record with id {text}.") from exc


def _existing_only(schema) -> None:
    for schema_field in schema.fields.values():
        if type(schema_field) is Related:
            schema_field.__class__ = ExistingRelated
        elif isinstance(schema_field, RelatedList) and type(schema_field.inner) is Related:
            schema_field.inner.__class__ = ExistingRelated


class HesModelRestApi(ModelRestApi):
    """ModelRestApi that turns service errors raised by model rules into JSON 4xx answers, and takes related
    rows by the id of an existing row only."""

    allow_browser_login = True
    page_size = 50
    max_page_size = 500

    def _init_model_schemas(self):
        super()._init_model_schemas()
        # FAB marks every NOT NULL column required; a column with a default is not required on create.
        columns = self.datamodel.obj.__table__.columns
        for name, schema_field in self.add_model_schema.fields.items():
            column = columns.get(name)
            if column is not None and (column.default is not None or column.server_default is not None):
                schema_field.required = False
        # A nullable column may be sent (or merged back by a partial PUT) as null: a meter's interface or
        # auth level left to its brand's default must not make every one-field update a 422.
        for schema in (self.add_model_schema, self.edit_model_schema):
            for name, schema_field in schema.fields.items():
                column = columns.get(name)
                if column is not None and column.nullable:
                    schema_field.allow_none = True
        _existing_only(self.add_model_schema)
        _existing_only(self.edit_model_schema)

    @staticmethod
    def row_id(pk) -> int:
        """The ``<pk>`` of PUT and DELETE as an id, or -1 (no row: 404) when it is not a whole number a BIGINT
        holds (INTEGER); the database would raise on it (a 500)."""
        text = str(pk)
        return int(text) if text.isascii() and text.isdigit() and 0 < int(text) <= MAX_ID else -1

    @domain_errors
    def post_headless(self):
        return super().post_headless()

    @domain_errors
    def put_headless(self, pk):
        return super().put_headless(self.row_id(pk))

    def delete_headless(self, pk):
        return super().delete_headless(self.row_id(pk))


class ImportExportMixin:
    """``POST /import`` (multipart field ``file``) and ``GET /export`` for an importable resource."""

    import_kind = ""

    @expose("/import", methods=["POST"])
    @protect()
    @safe
    @permission_name("import")
    def import_csv(self):
        """Import a CSV file: small files within the request, larger ones as a background job.
        ---
        post:
          summary: Import rows from a CSV file (checked whole first; nothing written if any row is wrong)
          description: >
            A file up to HES_IMPORT_INLINE_KB is imported within the request (200 or 422). A larger one (up to
            HES_IMPORT_MAX_MB, else 413) answers 202 with the job; poll its status_url for progress and the result.
          requestBody:
            content:
              multipart/form-data:
                schema:
                  type: object
                  properties:
                    file: {type: string, format: binary}
          responses:
            200: {description: "created/updated counts and the job id"}
            202: {description: "the job, importing in the background; Location is its status URL"}
            413: {description: "the file is over the import limit"}
            422: {description: "errors by line, column and reason; nothing written"}
        """
        import_jobs.check_size(request.content_length)
        job = import_jobs.submit(self.import_kind, request.files.get("file"), g.user.id)
        status_url = url_for(f"{type(self).__name__}.import_status", job_id=job.id)
        if not job.finished:
            resp = self.response(202, **job.as_dict(), status_url=status_url)
            resp.headers["Location"] = status_url
            return resp
        status = {"done": 200, "rejected": 422}.get(job.state, 500)
        return self.response(status, message=job.message, created=job.created, updated=job.updated,
                             errors=job.errors or [], job=job.id)

    @expose("/import/<int:job_id>", methods=["GET"])
    @protect()
    @safe
    @permission_name("import")
    def import_status(self, job_id: int):
        """An import job: its state and progress while it runs, its counts or errors by line after.
        ---
        get:
          summary: Progress and result of an import job (yours; an Admin sees every job)
          parameters:
            - {in: path, name: job_id, required: true, schema: {type: integer}}
          responses:
            200: {description: "state (queued, checking, writing, done, rejected, failed), progress %, counts, errors"}
            404: {description: "no such job of yours"}
        """
        return self.response(200, **import_jobs.get(self.import_kind, job_id, g.user).as_dict())

    @expose("/export", methods=["GET"])
    @protect()
    @safe
    @permission_name("export")
    def export_csv(self):
        """Download the rows visible to you as CSV in the import format.
        ---
        get:
          summary: Export as CSV (round-trips through import)
          responses:
            200: {description: CSV file}
        """
        return csv_response(EXPORTERS[self.import_kind](self._visible_select()), f"{self.import_kind}s.csv")

    def _visible_select(self):
        query = db.select(self.datamodel.obj)
        for flt, value in self._base_filters.get_filters_values():
            query = flt.apply(query, value)
        return query


class AreaApi(HesModelRestApi):
    """Areas (a tree: region › district › area, feeders, transformers)."""

    resource_name = "area"
    datamodel = SQLAInterface(Area)
    list_columns = ["id", "name", "code", "kind", "parent_id", "path", "supply_meter_id"]
    show_columns = list_columns + ["description", "created_at"]
    add_columns = edit_columns = ["name", "code", "kind", "parent", "description", "supply_meter"]
    search_columns = ["name", "code", "kind", "parent", "path"]
    order_columns = ["name", "code", "path"]


class MeterApi(MeterOperationsMixin, ImportExportMixin, HesModelRestApi):
    """Meters: identity, place, comms settings and live state."""

    resource_name = "meter"
    import_kind = "meter"
    datamodel = SQLAInterface(Meter)
    base_filters = scoped_base_filters("customer_id", "area_id")
    list_columns = ["id", "number", "brand.name", "concentrator_id", "area_id", "area.name", "sim.number",
                    "customer_id", "customer.name", "status", "comm_mode", "online", "last_seen", "relay_state",
                    "firmware_version", "credit_balance", "node_id"]
    show_columns = list_columns + ["interface", "client_address", "server_address", "auth_level", "system_title",
                                   "first_seen", "installed_at", "created_at"]
    add_columns = ["number", "brand", "concentrator_id", "area", "sim", "customer", "status", "comm_mode",
                   "interface", "client_address", "server_address", "auth_level", "system_title"]
    edit_columns = add_columns
    search_columns = ["number", "brand", "concentrator_id", "area", "area_id", "status", "online", "comm_mode",
                      "customer"]
    search_filters = {"area_id": [AreaTreeFilter], "area": [AreaTreeFilter]}
    order_columns = ["number", "status", "online", "last_seen", "concentrator_id"]

    def pre_add(self, item):
        from app.services.fleet import validate_meter

        validate_meter(item)

    pre_update = pre_add


class SimApi(ImportExportMixin, HesModelRestApi):
    """SIM cards (IP address and port of dial-out meters)."""

    resource_name = "sim"
    import_kind = "sim"
    datamodel = SQLAInterface(Sim)
    list_columns = ["id", "number", "ip_address", "port", "apn", "status", "meter.number"]
    show_columns = list_columns + ["created_at"]
    add_columns = edit_columns = ["number", "ip_address", "port", "apn", "status"]
    search_columns = ["number", "ip_address", "port", "apn", "status"]
    order_columns = ["number", "ip_address", "port"]

    def pre_add(self, item):
        from app.services.fleet import validate_sim

        validate_sim(item)

    pre_update = pre_add


class CustomerApi(ImportExportMixin, HesModelRestApi):
    """Customers and their meters."""

    resource_name = "customer"
    import_kind = "customer"
    datamodel = SQLAInterface(Customer)
    base_filters = scoped_base_filters("id")
    list_columns = ["id", "account_number", "name", "address", "phone", "email", "meters.id", "meters.number",
                    "user_id"]
    show_columns = list_columns + ["created_at"]
    add_columns = edit_columns = ["account_number", "name", "address", "phone", "email", "meters", "user"]
    search_columns = ["account_number", "name", "phone", "email"]
    order_columns = ["account_number", "name"]

    def pre_add(self, item):
        from app.services.fleet import prepare_customer

        prepare_customer(item)

    pre_update = pre_add


def register(appbuilder: AppBuilder) -> None:
    """Add the fleet APIs."""
    for api in (AreaApi, MeterApi, SimApi, CustomerApi):
        appbuilder.add_api(api)
