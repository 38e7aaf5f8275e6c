"""Meter Management › Meter Reading and Meter Setting pages, and the meter lookup API they (and the Remote
pages) share: search by number, the customer's details and live status, the brand's grouped parameters."""

from __future__ import annotations

from flask import request
from flask_appbuilder import AppBuilder, BaseView, expose, has_access
from flask_appbuilder.api import BaseApi, protect
from flask_appbuilder.api import expose as api_expose
from flask_appbuilder.security.decorators import permission_name
from flask_babel import lazy_gettext as _

from app.services import commands
from app.services.commands.lookup import meter_card, search_meters
from app.services.scope import area_ids_subquery, restricted_customer_id, selected_area_id
from app.views.commands_api import _visible_meter
from app.views.errors import safe


class MeterLookupApi(BaseApi):
    """``/api/v1/meterlookup/``: search meters by number; one meter's card; its token history."""

    resource_name = "meterlookup"
    allow_browser_login = True

    @api_expose("/search", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def search(self):
        """Meters whose number matches ``?q=`` (``&area=`` narrows to an area).
        ---
        get:
          responses:
            200: {description: up to 20 meters}
        """
        area = request.args.get("area", "")
        areas = area_ids_subquery(int(area)) if area.isdecimal() else None
        return self.response(200, result=search_meters(request.args.get("q", ""), restricted_customer_id(), areas))

    @api_expose("/<int:pk>", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def card(self, pk: int):
        """The meter, its customer, status and brand parameters.
        ---
        get:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: the meter card}
        """
        meter = _visible_meter(pk)
        return self.response(200, result=meter_card(meter)) if meter else self.response_404()

    @api_expose("/<int:pk>/tokens", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def tokens(self, pk: int):
        """Token history of the meter (status reported and credit read back).
        ---
        get:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: tokens, newest first}
        """
        meter = _visible_meter(pk)
        return self.response(200, result=commands.token_history(pk)) if meter else self.response_404()


class _MeterPage(BaseView):
    """A page with the meter search in its left quarter."""

    default_view = "index"
    template = ""
    title = ""
    mode = ""

    @expose("/")
    @has_access
    def index(self):
        return self.render_template(self.template, title=self.title, mode=self.mode, area_id=selected_area_id(),
                                    meter_id=request.args.get("meter", ""))


class MeterReadingView(_MeterPage):
    """Every readable parameter of the meter's brand, grouped; read, profiles as table and chart."""

    route_base = "/meter-reading"
    template = "remote/meter_params.html"
    title = _("Meter Reading")
    mode = "read"


class MeterSettingView(_MeterPage):
    """Readable and writable parameters; write with a confirmation and the value read back."""

    route_base = "/meter-setting"
    template = "remote/meter_params.html"
    title = _("Meter Setting")
    mode = "set"


def register(appbuilder: AppBuilder) -> None:
    """Meter Management › Meter Reading, Meter Setting; the lookup API."""
    appbuilder.add_view(MeterReadingView, "Meter Reading", icon="fa-book", category="Meter Management",
                        label=_("Meter Reading"))
    appbuilder.add_view(MeterSettingView, "Meter Setting", icon="fa-sliders", category="Meter Management",
                        label=_("Meter Setting"))
    appbuilder.add_api(MeterLookupApi)
