"""CRUD screens for the fleet registry: areas, meters, SIM cards and customers."""

from __future__ import annotations

from flask_appbuilder import AppBuilder, ModelView
from flask_appbuilder.actions import action
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_babel import lazy_gettext as _

from app.extensions import db
from app.models import Area, Customer, Meter, MeterStatus, Sim
from app.services.scope import AreaTreeFilter, SelectedAreaFilter, scoped_base_filters
from app.views.stock import HesInterface, HesStockMessages

LABELS = {
    "number": _("Number"), "brand": _("Meter Type"), "concentrator_id": _("Concentrator ID"), "area": _("Area"),
    "sim": _("SIM"), "customer": _("Customer"), "status": _("Status"), "comm_mode": _("Comm mode"),
    "online": _("Online"), "last_seen": _("Last seen"), "relay_state": _("Relay"),
    "firmware_version": _("Firmware"), "ip_address": _("IP Address"), "port": _("Port"), "apn": _("APN"),
    "account_number": _("Account Number"), "name": _("Name"), "address": _("Address"), "phone": _("Phone No"),
    "email": _("Email"), "meters": _("Meters"), "kind": _("Kind"), "parent": _("Parent"), "code": _("Code"),
    "full_name": _("Area"), "supply_meter": _("Supply meter (feeder/transformer)"), "credit_balance": _("Credit"),
    "client_address": _("Client address"), "server_address": _("Server address"), "auth_level": _("Auth level"),
    "interface": _("Interface"), "user": _("Login user"), "description": _("Description"),
}


class HesModelView(HesStockMessages, ModelView):
    """A ModelView with HES defaults: server-side paging, shared labels and plain-words messages."""

    page_size = 25
    label_columns = LABELS


class AreaView(HesModelView):
    """System › Area Management."""

    datamodel = HesInterface(Area, natural_columns=("code",))
    list_title = _("Area Management")
    add_title = _("Add area")
    edit_title = _("Edit area")
    show_title = _("Area")
    list_columns = ["full_name", "code", "kind", "supply_meter"]
    search_columns = ["name", "code", "kind", "parent"]
    add_columns = edit_columns = ["name", "code", "kind", "parent", "description", "supply_meter"]
    show_columns = ["full_name", "code", "kind", "parent", "description", "supply_meter", "created_at"]
    order_columns = ["code", "kind"]
    base_order = ("path", "asc")

    def pre_delete(self, item):
        from app.services.areas import delete_area

        delete_area(item)


class MeterView(HesModelView):
    """Meter Management › Add Meter: the meter archive."""

    datamodel = HesInterface(Meter, natural_columns=("number", "concentrator_id"))
    list_title = _("Meters")
    add_title = _("Add meter")
    edit_title = _("Edit meter")
    show_title = _("Meter")
    base_filters = scoped_base_filters("customer_id", "area_id")
    list_columns = ["number", "brand", "concentrator_id", "area", "customer", "status", "online", "last_seen"]
    search_columns = ["number", "brand", "concentrator_id", "area", "status", "online", "comm_mode", "customer"]
    search_filters = {"area": [AreaTreeFilter]}
    order_columns = ["number", "concentrator_id", "status", "online", "last_seen"]
    add_columns = ["number", "concentrator_id", "brand", "area", "sim", "status", "comm_mode",
                   "interface", "client_address", "server_address", "auth_level"]
    edit_columns = add_columns + ["customer"]
    show_columns = ["number", "brand", "concentrator_id", "area", "sim", "customer", "status", "comm_mode",
                    "online", "last_seen", "relay_state", "firmware_version", "credit_balance",
                    "interface", "client_address", "server_address", "auth_level", "created_at"]
    add_form_query_rel_fields = {"sim": [["meter", FilterEqual, None]]}
    base_order = ("number", "asc")
    show_template = "hes/meter_show.html"
    list_template = "hes/fleet_list.html"
    extra_args = {"import_kind": "meter"}

    def pre_add(self, item):
        from app.services.fleet import validate_meter

        validate_meter(item)

    pre_update = pre_add


class SimView(HesModelView):
    """Meter Management › SIM Management."""

    datamodel = HesInterface(Sim, natural_columns=("number",))
    list_title = _("SIM Management")
    add_title = _("Add SIM card")
    edit_title = _("Edit SIM card")
    show_title = _("SIM card")
    base_filters = [["id", SelectedAreaFilter, None]]
    list_columns = ["number", "ip_address", "port", "apn", "status", "meter"]
    search_columns = ["number", "ip_address", "port", "apn", "status"]
    add_columns = edit_columns = ["number", "ip_address", "port", "apn", "status"]
    order_columns = ["number", "ip_address", "port", "status"]
    base_order = ("number", "asc")
    list_template = "hes/fleet_list.html"
    extra_args = {"import_kind": "sim"}

    def pre_add(self, item):
        from app.services.fleet import validate_sim

        validate_sim(item)

    pre_update = pre_add


class CustomerView(HesModelView):
    """Customer Management › Import Customer: the customer list and form."""

    datamodel = HesInterface(Customer, natural_columns=("account_number", "name"))
    list_title = _("Customers")
    add_title = _("Add customer")
    edit_title = _("Edit customer")
    show_title = _("Customer")
    base_filters = scoped_base_filters("id")
    list_columns = ["account_number", "name", "phone", "address", "meters", "sims"]
    label_columns = {**LABELS, "sims": _("SIM cards")}
    search_columns = ["account_number", "name", "phone", "email", "address"]
    add_columns = ["account_number", "name", "address", "phone", "email", "meters", "user"]
    edit_columns = add_columns
    show_columns = ["account_number", "name", "address", "phone", "email", "meters", "sims", "user", "created_at"]
    order_columns = ["account_number", "name"]
    # Meters are picked from the archive: warehouse meters not yet assigned to anyone.
    add_form_query_rel_fields = {"meters": [["status", FilterEqual, MeterStatus.warehouse]]}
    base_order = ("name", "asc")
    list_template = "hes/fleet_list.html"
    extra_args = {"import_kind": "customer"}

    def pre_add(self, item):
        from app.services.fleet import prepare_customer

        prepare_customer(item)

    pre_update = pre_add

    @action("export", _("Export CSV"), "", "fa-download", single=False)
    def export(self, items):
        from app.services.fleet_import import export_customers
        from app.views.common import csv_response

        ids = [i.id for i in items]
        return csv_response(export_customers(db.select(Customer).where(Customer.id.in_(ids))), "customers.csv")


def register(appbuilder: AppBuilder) -> None:
    """Menus as in the customer's page tree."""
    appbuilder.add_view(AreaView, "Area Management", icon="fa-sitemap", category="System",
                        category_label=_("System"), label=_("Area Management"))
    appbuilder.add_view(MeterView, "Meters", icon="fa-tachometer", category="Meter Management",
                        category_label=_("Meter Management"), label=_("Meters"))
    appbuilder.add_link("Add Meter", href="MeterView.add", icon="fa-plus", category="Meter Management",
                        label=_("Add Meter"))
    appbuilder.add_view(SimView, "SIM Management", icon="fa-signal", category="Meter Management",
                        label=_("SIM Management"))
    appbuilder.add_view(CustomerView, "Customers", icon="fa-users", category="Customer Management",
                        category_label=_("Customer Management"), label=_("Customers"))
    appbuilder.add_link("Add Customer", href="CustomerView.add", icon="fa-user-plus", category="Customer Management",
                        label=_("Add Customer"))
