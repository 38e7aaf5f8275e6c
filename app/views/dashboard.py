"""The Dashboard page and its JSON API, plus what the base layout needs on every page
(theme, area selector, the menu in the customer's page-tree order)."""

from __future__ import annotations

from flask import current_app, request, url_for
from flask_appbuilder import AppBuilder, BaseView, has_access
from flask_appbuilder.api import BaseApi, expose, protect
from flask_appbuilder.security.decorators import permission_name
from flask_babel import gettext
from flask_babel import lazy_gettext as _
from flask_login import current_user

from app.security import is_customer_only
from app.services.dashboard import active_alert_count, dashboard_summary
from app.services.scope import Scope, restricted_customer_id, selected_area_id
from app.views.errors import safe

# The customer's page tree; categories not built yet simply don't exist in the menu.
PAGE_TREE = ("Dashboard", "System", "Meter Management", "Customer Management", "Task Query", "Consumption Report",
             "Remote", "Active Alerts", "Revenue Protection", "My Meters")
CATEGORY_ICONS = {
    "Dashboard": "fa-th-large", "System": "fa-cogs", "Meter Management": "fa-tachometer",
    "Customer Management": "fa-users", "Task Query": "fa-search", "Consumption Report": "fa-bar-chart",
    "Remote": "fa-bolt", "Active Alerts": "fa-bell", "Revenue Protection": "fa-shield", "Security": "fa-lock",
}


def api_area_id() -> int | None:
    """The area an API call asks for with ``?area=<id>`` (APIs never use the browser session's area)."""
    raw = request.args.get("area", "")
    return int(raw) if raw.isdecimal() else None


def int_arg(name: str, default: int) -> int:
    """A non-negative whole-number query argument, or the default."""
    raw = request.args.get(name, "")
    return int(raw) if raw.isdecimal() else default


def request_scope(area_id: int | None) -> Scope:
    """The scope of the current user (customer limit) narrowed to an area."""
    return Scope(customer_id=restricted_customer_id(), area_id=area_id)


class DashboardView(BaseView):
    """Fleet at a glance: meters online/offline, active alerts, energy of the past hour, completeness, events."""

    route_base = "/dashboard"
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        summary = dashboard_summary(request_scope(selected_area_id()), current_app.config["HES_TIMEZONE"])
        return self.render_template("hes/dashboard.html", summary=summary)


class DashboardApi(BaseApi):
    """``GET /api/v1/dashboard/summary?area=<id>``: every dashboard figure (JWT or browser session)."""

    resource_name = "dashboard"
    allow_browser_login = True

    @expose("/summary", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def summary(self):
        """The dashboard figures for the caller's meters, optionally narrowed to an area.
        ---
        get:
          summary: Meters online/offline, active alerts, energy of the past hour, completeness, latest events
          parameters:
          - {in: query, name: area, schema: {type: integer}, description: "area id (with its sub-areas)"}
          responses:
            200: {description: dashboard figures}
        """
        return self.response(200, **dashboard_summary(request_scope(api_area_id()),
                                                      current_app.config["HES_TIMEZONE"]))


def _match(url: str, path: str) -> int:
    """How well a menu URL matches the current path: its length for a prefix, 1 for the same first segment."""
    if not url:
        return 0
    if path == url or path.startswith(url if url.endswith("/") else url + "/"):
        return len(url)
    return 1 if url.split("/")[1:2] == path.split("/")[1:2] != [""] else 0


def can_open(url: str) -> bool:
    """True when the signed-in user holds the permission of the page a menu entry opens (menu access alone would
    show entries that answer 403). Addresses outside the app's views count as open."""
    from werkzeug.exceptions import HTTPException

    appbuilder = current_app.appbuilder
    try:
        endpoint, _args = current_app.url_map.bind("localhost").match(url.split("?")[0], method="GET")
    except HTTPException:
        return False
    blueprint, _, method = endpoint.partition(".")
    view = next((v for v in appbuilder.baseviews if v.blueprint is not None and v.blueprint.name == blueprint), None)
    if view is None or not method:
        return True
    permission = (view.method_permission_name or {}).get(method) or getattr(getattr(view, method, None),
                                                                             "_permission_name", method)
    return appbuilder.sm.has_access(f"can_{permission}", view.class_permission_name)


def layout_menu() -> list[dict]:
    """The menu items the user may see, in page-tree order, with their visible children; the best match
    of the current path is marked active (and its category open)."""
    appbuilder = current_app.appbuilder
    path = request.path

    def visible(item) -> bool:
        if item.name == "-" or not item.should_render() or not appbuilder.sm.has_access("menu_access", item.name):
            return False
        return bool(item.childs) or can_open(item.get_url())

    def entry(item) -> dict:
        url = "" if item.childs else item.get_url()
        return {"name": item.name, "label": gettext(str(item.label)), "url": url, "score": _match(url, path),
                "icon": CATEGORY_ICONS.get(item.name) or item.icon or "fa-circle-o", "active": False}

    entries = []
    for item in filter(visible, appbuilder.menu.get_list()):
        top = entry(item)
        top["children"] = [entry(child) for child in item.childs if visible(child)]
        if item.childs and not top["children"]:
            continue
        entries.append(top)
    leaves = [(leaf, top) for top in entries for leaf in (top["children"] or [top])]
    best = max(leaves, key=lambda pair: pair[0]["score"], default=None)
    if best is not None and best[0]["score"]:
        best[0]["active"] = best[1]["active"] = True
    order = {name: i for i, name in enumerate(PAGE_TREE)}
    return sorted(entries, key=lambda e: order.get(e["name"], len(order)))


def layout_context() -> dict:
    """Everything the base layout shows around a page: theme, menu, area selector, alert count."""
    from app.services.areas import area_choices
    from app.services.settings import theme_for

    theme = theme_for(current_user)
    if not getattr(current_user, "is_authenticated", False):
        return {"theme": theme, "menu": [], "customer": False, "areas": [], "area_id": None, "area_name": None,
                "alerts": None, "timezone": current_app.config["HES_TIMEZONE"]}
    customer = is_customer_only(current_user)
    area_id = None if customer else selected_area_id()
    areas = [] if customer else area_choices()
    return {
        "theme": theme,
        "menu": layout_menu(),
        "customer": customer,
        "areas": areas,
        "area_id": area_id,
        "area_name": next((name.strip("\u2003") for aid, name in areas if aid == area_id), None),
        "alerts": None if customer else active_alert_count(Scope(area_id=area_id)),
        "alerts_url": _alerts_url(),
        "timezone": current_app.config["HES_TIMEZONE"],
    }


def _alerts_url() -> str:
    """The Active Alerts inbox when that page exists, else the dashboard's events."""
    if "ActiveAlertsView.index" in current_app.view_functions:
        return url_for("ActiveAlertsView.index")
    return url_for("DashboardView.index") + "#alerts"


def register(appbuilder: AppBuilder) -> None:
    """Dashboard first in the menu; the layout globals."""
    current_app.add_template_global(layout_context, "hes_layout")
    appbuilder.add_view(DashboardView, "Dashboard", icon="fa-th-large", label=_("Dashboard"))
    appbuilder.add_api(DashboardApi)
