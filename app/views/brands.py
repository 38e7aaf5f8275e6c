"""System › Brands / OBIS: define a meter brand by its OBIS points, in the UI or the REST API."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, ModelView, expose, has_access
from flask_appbuilder.api import expose as api_expose
from flask_appbuilder.api import protect
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name
from flask_babel import lazy_gettext as _
from sqlalchemy import func, select

from app.extensions import db
from app.models import BrandVersion, MeterBrand, ObisPoint
from app.services import ServiceError, audit
from app.services.brand_definition import ROLE_CLASSES, DefinitionError, collection_plan, normalise
from app.services.brands import GROUPS, POINT_COLUMNS, definition_of, save_brand
from app.services.secrets import describe, store_credentials
from app.views.brand_schemas import (
    BrandConnectionSchema,
    BrandDefinitionSchema,
    BrandPointSchema,
    BrandRolesSchema,
    DefinitionErrorSchema,
)
from app.views.errors import safe
from app.views.fleet_api import HesModelRestApi
from app.views.meter_ops_api import CREDENTIAL_FIELDS


class ObisPointView(ModelView):
    """The OBIS points of a brand."""

    datamodel = SQLAInterface(ObisPoint)
    list_columns = ["key", "name", "obis", "class_id", "attribute", "method", "unit", "scaler", "group", "access"]
    add_columns = edit_columns = ["brand"] + list_columns + ["datatype"]
    search_columns = ["key", "name", "obis", "group", "access", "brand"]
    base_order = ("position", "asc")
    page_size = 50

    def pre_add(self, item):
        from app.services.brands import points_from_rows

        row = {c.name: getattr(item, c.name) for c in POINT_COLUMNS}
        specs, errors = points_from_rows([row])
        if errors:
            raise ServiceError("; ".join(f"{e['column']}: {e['reason']}" for e in errors))
        item.obis = specs[0].obis

    pre_update = pre_add


class BrandView(ModelView):
    """Meter brands: DLMS defaults and OBIS points."""

    datamodel = SQLAInterface(MeterBrand)
    related_views = [ObisPointView]
    list_title = _("Meter Brands (OBIS)")
    list_columns = ["title", "name", "manufacturer", "interface", "auth_level", "source"]
    show_columns = ["title", "name", "manufacturer", "source", "interface", "client_address", "server_address",
                    "auth_level", "profile_period_minutes", "objects", "event_codes"]
    edit_columns = add_columns = ["name", "title", "manufacturer", "interface", "client_address", "server_address",
                                  "auth_level", "profile_period_minutes"]
    search_columns = ["name", "title", "manufacturer", "source"]
    show_template = "appbuilder/general/model/show_cascade.html"


FORM_ROLES = ("load_profile", "daily_profile", "billing_profile", "relay", "clock", "token_gateway", "limiter",
              "credit", "image_transfer", "push_setup")


def _form_definition(values, text: str) -> dict:
    """The brand definition the form describes (roles only when the preview showed them)."""
    data = {"name": values.get("name", "").strip(), "title": values.get("title") or None,
            "manufacturer": values.get("manufacturer") or None, "points_csv": text,
            "connection": {"interface": values.get("interface", "wrapper"), "auth_level": values.get("auth", "low"),
                           "client_address": values.get("client_address") or 1,
                           "server_address": values.get("server_address") or 1,
                           "profile_period_minutes": values.get("profile_period_minutes") or 15}}
    if values.get("roles_shown"):
        roles = {role: values.get(f"role_{role}") or None for role in FORM_ROLES}
        roles["event_logs"] = {log: {"point": key} for log, key in
                               ((values.get(f"log_name_{key}") or key, key) for key in values.getlist("event_log"))}
        roles["push_objects"] = values.getlist("push_object")
        data["roles"] = roles
    return data


CSV_FIELDS = ("key", "name", "obis", "class_id", "attribute", "method", "unit", "scaler", "datatype", "group",
              "access")


def points_csv(points: list[dict]) -> str:
    """Points as the CSV (with a header) the form's text box takes."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for p in points:
        writer.writerow(["" if p.get(f) is None else p[f] for f in CSV_FIELDS])
    return out.getvalue()


def _learn(number: str) -> tuple[dict, list]:
    """Learn a brand from the meter with this number (the form's 'Learn from meter')."""
    from sqlalchemy import select as _select

    from app.models import Meter
    from app.services.meter_access import run_on_meter

    meter_id = db.session.execute(_select(Meter.id).where(Meter.number == number)).scalar()
    if meter_id is None:
        raise ServiceError(f"No meter numbered '{number}'.", status=404)
    result = run_on_meter(meter_id, "learn_brand")
    if not result.get("definition"):
        raise ServiceError("The meter's objects do not make a valid brand.", errors=result.get("errors"))
    return result["definition"], result.get("refused") or []


class BrandUploadView(BaseView):
    """Create a brand from a pasted or uploaded OBIS list: preview what will be collected, choose roles, save."""

    route_base = "/brands/define"
    default_view = "form"

    @expose("/", methods=["GET", "POST"])
    @has_access
    def form(self):
        errors, values, preview = [], request.form, None
        if request.method == "POST":
            upload = request.files.get("file")
            text = upload.read().decode("utf-8-sig", "replace") if upload and upload.filename else \
                values.get("points_csv", "")
            data = _form_definition(values, text)
            try:
                if values.get("action") == "learn":
                    definition, refused = _learn(values.get("learn_meter", "").strip())
                    values = values.copy()
                    values["points_csv"] = points_csv(definition["points"])
                    values["profile_period_minutes"] = definition["connection"]["profile_period_minutes"]
                    preview = {"definition": definition, "plan": collection_plan(definition), "refused": refused}
                elif values.get("action") == "preview":
                    definition = normalise(data)
                    preview = {"definition": definition, "plan": collection_plan(definition)}
                else:
                    brand = save_brand(data)
                    db.session.commit()
                    flash(_("Brand %(name)s saved with %(n)d points.", name=brand.title, n=len(brand.points)),
                          "success")
                    return redirect(url_for("BrandView.show", pk=brand.id))
            except ServiceError as exc:
                db.session.rollback()
                errors = exc.errors or [{"reason": exc.message}]
        return self.render_template("hes/brand_define.html", errors=errors, values=values, preview=preview,
                                    columns=POINT_COLUMNS, groups=GROUPS, role_names=FORM_ROLES,
                                    role_classes=ROLE_CLASSES)


class BrandApi(HesModelRestApi):
    """Meter brands. POST takes a whole brand definition; PUT and PATCH change only the sections they name."""

    resource_name = "brand"
    datamodel = SQLAInterface(MeterBrand)
    list_columns = ["id", "name", "title", "manufacturer", "source", "interface", "auth_level", "client_address",
                    "server_address", "profile_period_minutes"]
    show_columns = list_columns + ["objects", "event_codes", "points.key", "points.name", "points.obis",
                                   "points.class_id", "points.attribute", "points.unit", "points.scaler",
                                   "points.group", "points.access", "points.method", "points.datatype"]
    search_columns = ["name", "title", "manufacturer", "source"]
    openapi_spec_component_schemas = (BrandDefinitionSchema, BrandPointSchema, BrandConnectionSchema,
                                      BrandRolesSchema, DefinitionErrorSchema)
    include_route_methods = {"get", "get_list", "post", "put", "delete", "info", "credentials", "definition",
                             "versions", "patch", "preview", "learn"}

    @protect()
    @safe
    @permission_name("post")
    def post_headless(self):
        return self._save(None, partial=False)

    @protect()
    @safe
    @permission_name("put")
    def put_headless(self, pk):
        brand = db.session.get(MeterBrand, self.row_id(pk))
        if brand is None:
            return self.response_404()
        return self._save(brand, partial=True)

    @api_expose("/", methods=["POST"])
    @protect()
    @safe
    @permission_name("post")
    def post(self):
        """Create a brand from its definition.
        ---
        post:
          summary: Create a brand from a definition (points and roles; standard OBIS codes need only the code)
          requestBody:
            required: true
            content:
              application/json:
                schema: {$ref: '#/components/schemas/BrandDefinitionSchema'}
                examples:
                  bare_obis_list:
                    summary: A bare OBIS list; classes, attributes and roles come from the standard
                    value: {name: acme_x1, title: ACME X1, points_csv: "1.0.1.8.0.255\n1.0.99.1.0.255\n0.0.1.0.0.255"}
                  typed:
                    summary: Points with their roles
                    value:
                      name: acme_x2
                      title: ACME X2
                      connection: {interface: hdlc, client_address: 1, server_address: 1, auth_level: low,
                                   profile_period_minutes: 30}
                      points:
                      - {key: energy_import, obis: 1.0.1.8.0.255, scaler: 0, unit: Wh}
                      - {key: lp, name: Load profile 30 min, obis: 1.0.99.1.0.255, class_id: 7}
                      - {key: vendor_log, name: Vendor event log, obis: 0.0.99.98.4.255, class_id: 7}
                      - {obis: 0.0.96.3.10.255}
                      roles:
                        load_profile: lp
                        event_logs: {vendor: {point: vendor_log, codes: {"1": power_fail}}}
                        push_objects: [energy_import]
          responses:
            201: {description: "created: {id, result: {name, version, points}}"}
            422:
              description: the definition does not validate; every error names the point and the field
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/DefinitionErrorSchema'}
        """
        return self._save(None, partial=False)

    @api_expose("/<pk>", methods=["PUT"])
    @protect()
    @safe
    @permission_name("put")
    def put(self, pk):
        """Change a brand: only the sections the body names change.
        ---
        put:
          summary: Change only what the body names (connection and roles field by field; points or event_codes
            as a whole). A title-only PUT keeps every point.
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          requestBody:
            required: true
            content:
              application/json:
                schema: {$ref: '#/components/schemas/BrandDefinitionSchema'}
                example: {title: ACME X1 (firmware 2)}
          responses:
            200: {description: "saved: {id, result: {name, version, points}}"}
            404: {description: no such brand}
            422:
              description: the result does not validate
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/DefinitionErrorSchema'}
        """
        return self.put_headless(pk)

    @api_expose("/<pk>", methods=["PATCH"])
    @protect()
    @safe
    @permission_name("put")
    def patch(self, pk):
        """Same as PUT: change only the sections the body names.
        ---
        patch:
          summary: Change only what the body names (same as PUT)
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema: {$ref: '#/components/schemas/BrandDefinitionSchema'}
          responses:
            200: {description: saved}
        """
        return self.put_headless(pk)

    @api_expose("/<int:pk>/definition", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def definition(self, pk: int):
        """The brand's definition, in the shape POST and PUT take.
        ---
        get:
          summary: The brand's current definition (points, roles, connection, event codes)
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200:
              description: the definition and what the HES will collect with it
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      result: {$ref: '#/components/schemas/BrandDefinitionSchema'}
                      plan: {type: array, items: {type: string}}
        """
        brand = db.session.get(MeterBrand, pk)
        if brand is None:
            return self.response_404()
        definition = definition_of(brand)
        return self.response(200, result=definition, plan=collection_plan(definition))

    @api_expose("/<int:pk>/versions", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def versions(self, pk: int):
        """Every saved version of the brand, newest first.
        ---
        get:
          summary: The brand's saved versions (each with its whole definition)
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: "{result: [{version, saved_at, saved_by, source, definition}]}"}
        """
        if db.session.get(MeterBrand, pk) is None:
            return self.response_404()
        rows = db.session.execute(select(BrandVersion).where(BrandVersion.brand_id == pk)
                                  .order_by(BrandVersion.version.desc())).scalars()
        return self.response(200, result=[{"version": v.version, "saved_at": v.saved_at.isoformat(),
                                           "saved_by": v.saved_by, "source": v.source, "definition": v.definition}
                                          for v in rows])

    @api_expose("/preview", methods=["POST"])
    @protect()
    @safe
    @permission_name("post")
    def preview(self):
        """Validate a definition and say what would be collected, without saving.
        ---
        post:
          summary: Check a definition (or a pasted OBIS list) and preview what the HES would collect
          requestBody:
            required: true
            content:
              application/json:
                schema: {$ref: '#/components/schemas/BrandDefinitionSchema'}
          responses:
            200: {description: "{result: the complete definition, plan: [what will be collected]}"}
            422:
              description: the definition does not validate
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/DefinitionErrorSchema'}
        """
        data = request.get_json(silent=True)
        definition = normalise(data)
        return self.response(200, result=definition, plan=collection_plan(definition))

    @api_expose("/learn", methods=["POST"])
    @protect()
    @safe
    @permission_name("post")
    def learn(self):
        """Read a connected meter and propose a brand definition (nothing is saved).
        ---
        post:
          summary: Learn a brand from a live meter (association object list, capture objects, scalers and units)
          description: The meter's connection settings are used; client_address and auth_level given here are
            saved on the meter first. Review the proposal, then POST it to /brand/ under a name of your own.
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  required: [meter_id]
                  properties:
                    meter_id: {type: integer}
                    client_address: {type: integer, example: 1}
                    auth_level: {type: string, example: low}
          responses:
            200:
              description: "{definition, plan, refused: [{obis, class_id, attribute, reason}], skipped, profiles}"
            503: {description: the meter is offline or refused the association}
        """
        from app.models import AuthLevel, Meter
        from app.services.meter_access import run_on_meter

        body = request.get_json(silent=True) or {}
        meter_id = body.get("meter_id")
        meter = db.session.get(Meter, meter_id) if isinstance(meter_id, int) else None
        if meter is None:
            return self.response_404()
        if "client_address" in body or "auth_level" in body:
            try:
                if "client_address" in body:
                    meter.client_address = int(body["client_address"])
                if "auth_level" in body:
                    meter.auth_level = AuthLevel(body["auth_level"])
            except (TypeError, ValueError) as exc:
                raise DefinitionError(f"Bad connection setting: {exc}") from exc
            db.session.commit()
        result = run_on_meter(meter.id, "learn_brand")
        return self.response(200, **result)

    @api_expose("/<int:pk>/credentials", methods=["PUT"])
    @protect()
    @safe
    @permission_name("credentials")
    def credentials(self, pk: int):
        """Set the brand's default DLMS secrets, used by meters without their own (write-only).
        ---
        put:
          summary: Set the default LLS password and/or HLS keys (hex) of a brand
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: which secrets are set}
        """
        brand = db.session.get(MeterBrand, pk)
        if brand is None:
            return self.response_404()
        body = request.get_json(silent=True) or {}
        fields = {k: body[k] for k in CREDENTIAL_FIELDS if k in body}
        brand.default_secret = store_credentials(brand.default_secret, **fields)
        audit.record("credentials", "brand", brand.id, f"default credentials set for {brand.name}",
                     details={"fields": sorted(fields)})
        db.session.commit()
        return self.response(200, **describe(brand.default_secret))

    def _save(self, brand, *, partial: bool):
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            return self.response_400(message="Send the brand as a JSON object.")
        if brand is not None:
            if data.get("name", brand.name) != brand.name:
                raise DefinitionError("A brand's name cannot change; create a new brand instead.", errors=[
                    {"point": None, "field": "name", "column": "name", "reason": "cannot change",
                     "value": str(data.get("name"))}])
            data["name"] = brand.name
        elif db.session.execute(select(MeterBrand.id).where(MeterBrand.name == data.get("name"))).first():
            raise DefinitionError(f"A brand named {data.get('name')} exists; change it with PUT.", status=409)
        saved = save_brand(data, partial=partial)
        db.session.commit()
        version = db.session.execute(select(func.max(BrandVersion.version))
                                     .where(BrandVersion.brand_id == saved.id)).scalar()
        return self.response(201 if brand is None else 200, id=saved.id, result={
            "name": saved.name, "version": version, "points": len(saved.points)})


def register(appbuilder: AppBuilder) -> None:
    """System › Brands / OBIS."""
    appbuilder.add_view_no_menu(ObisPointView)
    appbuilder.add_view(BrandView, "Brands / OBIS", icon="fa-cubes", category="System", label=_("Brands / OBIS"))
    appbuilder.add_view(BrandUploadView, "Define Brand", icon="fa-plus-square", category="System",
                        label=_("Define Brand from OBIS list"))
    appbuilder.add_api(BrandApi)
