"""System › Brands / OBIS: define a meter brand by its OBIS points, in the UI or the REST API."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, ModelView, expose, has_access
from flask_appbuilder.api import expose as api_expose
from flask_appbuilder.api import protect
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name
from flask_babel import lazy_gettext as _

from app.extensions import db
from app.models import MeterBrand, ObisPoint
from app.services import ServiceError, audit
from app.services.brands import GROUPS, POINT_COLUMNS, points_from_csv, save_brand
from app.services.secrets import describe, store_credentials
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


class BrandUploadView(BaseView):
    """Create or replace a brand from a pasted or uploaded OBIS list (CSV)."""

    route_base = "/brands/define"
    default_view = "form"

    @expose("/", methods=["GET", "POST"])
    @has_access
    def form(self):
        errors, values = [], request.form
        if request.method == "POST":
            upload = request.files.get("file")
            text = upload.read() if upload and upload.filename else values.get("points_csv", "")
            try:
                points = points_from_csv(text)
                brand = save_brand({"name": values.get("name", ""), "title": values.get("title"),
                                    "manufacturer": values.get("manufacturer"),
                                    "defaults": {"interface": values.get("interface", "wrapper"),
                                                 "auth": values.get("auth", "low"),
                                                 "client_address": values.get("client_address") or 1,
                                                 "server_address": values.get("server_address") or 1}},
                                   points=points)
                db.session.commit()
                flash(_("Brand %(name)s saved with %(n)d points.", name=brand.title, n=len(points)), "success")
                return redirect(url_for("BrandView.show", pk=brand.id))
            except ServiceError as exc:
                db.session.rollback()
                errors = exc.errors or [{"reason": exc.message}]
        return self.render_template("hes/brand_define.html", errors=errors, values=values,
                                    columns=POINT_COLUMNS, groups=GROUPS)


class BrandApi(HesModelRestApi):
    """Meter brands with their OBIS points; POST/PUT take the ``obis.yaml`` shape as JSON."""

    resource_name = "brand"
    datamodel = SQLAInterface(MeterBrand)
    list_columns = ["id", "name", "title", "manufacturer", "source", "interface", "auth_level", "client_address",
                    "server_address", "profile_period_minutes"]
    show_columns = list_columns + ["objects", "event_codes", "points.key", "points.name", "points.obis",
                                   "points.class_id", "points.attribute", "points.unit", "points.scaler",
                                   "points.group", "points.access", "points.method"]
    search_columns = ["name", "title", "manufacturer", "source"]

    @protect()
    @safe
    @permission_name("post")
    def post_headless(self):
        return self._save(None)

    @protect()
    @safe
    @permission_name("put")
    def put_headless(self, pk):
        brand = db.session.get(MeterBrand, self.row_id(pk))
        if brand is None:
            return self.response_404()
        return self._save(brand)

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

    def _save(self, brand):
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            return self.response_400(message="Send the brand as a JSON object.")
        if brand is not None:
            data.setdefault("name", brand.name)
        points = points_from_csv(data.pop("points_csv")) if "points_csv" in data else None
        saved = save_brand(data, points=points)
        db.session.commit()
        return self.response(201 if brand is None else 200, id=saved.id, result={"name": saved.name,
                             "points": len(saved.points)})


def register(appbuilder: AppBuilder) -> None:
    """System › Brands / OBIS."""
    appbuilder.add_view_no_menu(ObisPointView)
    appbuilder.add_view(BrandView, "Brands / OBIS", icon="fa-cubes", category="System", label=_("Brands / OBIS"))
    appbuilder.add_view(BrandUploadView, "Define Brand", icon="fa-plus-square", category="System",
                        label=_("Define Brand from OBIS list"))
    appbuilder.add_api(BrandApi)
