"""Meter Management › Unregistered Meters: dial-in connections and pushes from meters the registry does not know."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_appbuilder import AppBuilder, ModelView
from flask_appbuilder.actions import action
from flask_appbuilder.api import expose, protect
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name
from flask_babel import lazy_gettext as _

from app.extensions import db
from app.models import UnregisteredConnection
from app.services import ServiceError
from app.services.registration import register_connection
from app.views.errors import safe
from app.views.fleet_api import HesModelRestApi


class UnregisteredView(ModelView):
    """Meters that dialled in but are not registered; register them with one click."""

    datamodel = SQLAInterface(UnregisteredConnection)
    list_title = _("Unregistered Meters")
    list_columns = ["identity", "kind", "connected", "remote_addr", "how_identified", "first_seen", "last_seen",
                    "connections", "pushes", "node_id"]
    show_columns = list_columns + ["system_title", "last_push", "first_frame_hex"]
    label_columns = {"identity": _("Meter number"), "remote_addr": _("From"), "how_identified": _("Identified by"),
                     "kind": _("Seen as"), "last_push": _("Last push (decoded)")}
    base_permissions = ["can_list", "can_show", "can_delete"]
    base_order = ("last_seen", "desc")

    @action("register", _("Register as HES Simulator meter"), _("Register the selected meters?"), "fa-plus",
            single=False)
    def register(self, items):
        brand = request.args.get("brand", "hes_sim")
        done = 0
        for item in items if isinstance(items, list) else [items]:
            try:
                register_connection(item.id, brand)
                done += 1
            except ServiceError as exc:
                db.session.rollback()
                flash(exc.message, "danger")
        flash(_("%(n)d meter(s) registered.", n=done), "success")
        return redirect(url_for("UnregisteredView.list"))


class UnregisteredApi(HesModelRestApi):
    """``/api/v1/unregistered/`` and ``POST /api/v1/unregistered/<id>/register``."""

    resource_name = "unregistered"
    datamodel = SQLAInterface(UnregisteredConnection)
    list_columns = ["id", "identity", "kind", "connected", "remote_addr", "how_identified", "first_seen", "last_seen",
                    "connections", "pushes", "node_id", "system_title", "last_push", "first_frame_hex"]
    show_columns = list_columns
    base_permissions = ["can_get", "can_info", "can_delete", "can_register"]

    @expose("/<int:pk>/register", methods=["POST"])
    @protect()
    @safe
    @permission_name("register")
    def register(self, pk: int):
        """Register the meter behind an unregistered connection.
        ---
        post:
          summary: Register an unregistered dial-in meter (its live connection is kept)
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    brand: {type: string}
                    number: {type: string, description: meter number (defaults to the listed identity)}
                    area_id: {type: integer}
                    concentrator_id: {type: string}
          responses:
            201: {description: the meter id}
        """
        body = request.get_json(silent=True) or {}
        meter = register_connection(pk, body.get("brand", ""), body.get("area_id"), body.get("concentrator_id"),
                                    body.get("number"))
        return self.response(201, id=meter.id, number=meter.number)


def register(appbuilder: AppBuilder) -> None:
    """Meter Management › Unregistered Meters."""
    appbuilder.add_view(UnregisteredView, "Unregistered Meters", icon="fa-question-circle",
                        category="Meter Management", label=_("Unregistered Meters"))
    appbuilder.add_api(UnregisteredApi)
