"""Roles as a matrix an administrator can read: the HES's areas (meters, reports, remote operations …) against
three levels — view, operate, administer — built on FAB's permissions underneath. Every FAB permission on a view
or API belongs to exactly one cell (or to the self-service every signed-in user keeps), so a role edited here is
exactly the union of its ticked cells."""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask_babel import lazy_gettext as _

from app.security import ROLES

VIEW, OPERATE, ADMINISTER = "view", "operate", "administer"
LEVELS = (VIEW, OPERATE, ADMINISTER)
LEVEL_LABELS = {VIEW: _("View"), OPERATE: _("Operate"), ADMINISTER: _("Administer")}


@dataclass(frozen=True)
class Area:
    """One row of the matrix: the views/APIs and menu entries of a part of the product."""

    key: str
    label: object
    description: object
    views: str  # regular expression over FAB view-menu names (views, APIs and menu entries)
    levels: tuple[str, ...] = LEVELS


AREAS = (
    Area("dashboard", _("Dashboard and alerts"), _("Fleet overview, active alerts, acknowledge and resolve"),
         r"Dashboard(View|Api)?|ActiveAlertsView|AlertApi|Active Alerts|MenuApi"),
    Area("meters", _("Meters and SIM cards"), _("The meter and SIM archive, CSV import, unregistered meters"),
         r"Meter(View|Api|LookupApi|TraceView|TraceApi)|Sim(View|Api)|Unregistered(View|Api)|ImportView"
         r"|Meter Management|Meters|Add Meter|SIM Management|Import Meters|Unregistered Meters"),
    Area("customers", _("Customers"), _("Customer records and their meters"),
         r"Customer(View|Api)|Customer Management|Customers|Add Customer|Import Customers CSV|Import Customer"),
    Area("areas", _("Areas"), _("The area tree every page filters by"), r"Area(View|Api)|Area Management|System"),
    Area("monitoring", _("Monitoring and events"),
         _("Real-time monitoring, online rate, event analysis, comms nodes and pushes not stored"),
         r"Monitoring(View|Api)|OnlineRate(View|Api)|EventAnalysisView|EventApi|Task Query|Real-Time Monitoring"
         r"|Online Rate|Event Analysis|CommsNodes?(View|Api)|PushFailureApi|Comms Nodes"),
    Area("remote", _("Reading, setting and remote operations"),
         _("Read and write parameters, tokens, relay, firmware; commands and group jobs"),
         r"MeterReadingView|MeterSettingView|Remote(Loading|Control)View|Firmware(View|Api)|CommandApi|JobApi"
         r"|Remote|Remote Loading|Remote Control|Firmware|Meter Reading|Meter Setting"),
    Area("reports", _("Consumption reports"), _("Energy consumption, hourly, data completeness; CSV and PDF"),
         r"Consumption(View|Api)|Completeness(View|Api)|Consumption Report|Energy Consumption|Hourly"
         r"|Data Completeness"),
    Area("revenue", _("Revenue protection"), _("Revenue leakage, theft investigations, technical loss"),
         r"Leakage(View|Api)|Investigation(View|Api)|TechnicalLoss(View|Api)|Revenue Protection|Revenue Leakage"
         r"|Investigations|Technical Loss"),
    Area("brands", _("Brands and collection"), _("Meter brands by OBIS, collection schedules, data pusher"),
         r"Brand(View|Api|UploadView)|ObisPointView|Schedule(View|Api)|Subscription(View|Api)|DeliveryView"
         r"|Brands / OBIS|Define Brand|Schedules|Data Pusher|Deliveries"),
    Area("my_meters", _("My Meters (customer portal)"), _("A customer's own meters, consumption and tokens"),
         r"MyMeters(View|Api)|My Meters", (VIEW,)),
    Area("api_docs", _("API documentation"), _("The OpenAPI description and Swagger UI"), r"OpenApi|SwaggerView",
         (VIEW,)),
    Area("settings", _("Settings"), _("Where meters dial, the site theme, customer token entry"),
         r"SettingsView|Settings|AuditLogView|Audit Log", (ADMINISTER,)),
    Area("users", _("Users and roles"), _("Sign-in accounts, roles and their permissions"),
         r"UserDBModelView|UserSessionApi|RoleModelView|RoleMatrixView|ResetPasswordView|UserGroupModelView|PermissionModelView|ViewMenuModelView"
         r"|PermissionViewModelView|User|Role|Group|Permission|ViewMenu|PermissionViewMenu|Security|List Users"
         r"|List Roles|Roles|List Groups|Base Permissions|Views/Menus|Permission on Views/Menus", (ADMINISTER,)),
)
AREA_BY_KEY = {area.key: area for area in AREAS}
# Reading is viewing; these change nothing.
VIEW_PERMISSIONS = re.compile(r"^(menu_access|can_(list|show|get|info|index|hourly|summary|consumption|download"
                              r"|export|audit|chart|userinfo|list_role_permissions))$")
# Destructive or key-handling actions, and the bulk import, are administration.
ADMINISTER_PERMISSIONS = re.compile(r"^(can_(delete|credentials|secret|import|revoke|update_role_users"
                                    r"|update_role_groups|add_role_permissions)|copyrole|resetpasswords)$")


def is_self_service(permission: str, view: str) -> bool:
    """What every signed-in user keeps whatever their role: their own profile, password and theme."""
    return any(re.match(p, permission) and re.match(v, view) for p, v in
               [(r"^can_userinfo$|^userinfoedit$|^resetmypassword$", r"^UserDBModelView$"),
                (r"^(can_this_form_get|can_this_form_post)$", r"^(ResetMyPasswordView|UserInfoEditView)$"),
                (r"^can_theme$", r"^PreferencesView$"), (r"^can_index$", r"^(LocaleView|HomeView)$")])


def cell_of(permission: str, view: str) -> tuple[str, str] | None:
    """The (area, level) a FAB permission belongs to; None for self-service or a view no area covers."""
    if is_self_service(permission, view):
        return None
    area = next((a for a in AREAS if re.fullmatch(a.views, view)), None)
    if area is None:
        return None
    if VIEW_PERMISSIONS.match(permission):
        level = VIEW
    elif ADMINISTER_PERMISSIONS.match(permission):
        level = ADMINISTER
    else:
        level = OPERATE
    if level not in area.levels:  # an admin-only area has one level; a read-only one only "view"
        level = area.levels[-1] if level != VIEW else area.levels[0]
    return area.key, level


def role_matrix(role, all_pvms) -> dict[str, dict[str, str]]:
    """Per area and level: "all" when the role holds every permission of the cell, "some", "none", or "-" for a
    level the area does not have."""
    held = {pvm.id for pvm in role.permissions}
    cells: dict[tuple[str, str], list[bool]] = {}
    for pvm in all_pvms:
        cell = cell_of(pvm.permission.name, pvm.view_menu.name)
        if cell is not None:
            cells.setdefault(cell, []).append(pvm.id in held)
    matrix = {}
    for area in AREAS:
        row = {}
        for level in LEVELS:
            flags = cells.get((area.key, level))
            if level not in area.levels or not flags:
                row[level] = "-"
            else:
                row[level] = "all" if all(flags) else "some" if any(flags) else "none"
        matrix[area.key] = row
    return matrix


def permissions_for(cells: set[tuple[str, str]], all_pvms) -> list:
    """The FAB permission-views a role with these ticked cells holds (plus self-service)."""
    chosen = []
    for pvm in all_pvms:
        permission, view = pvm.permission.name, pvm.view_menu.name
        if is_self_service(permission, view) or cell_of(permission, view) in cells:
            chosen.append(pvm)
    return chosen


def is_builtin(role) -> bool:
    """Admin, Operator and Customer are defined in code (app/security.py) and re-synced at every start."""
    return role.name in ROLES


def unclassified(all_pvms) -> list[tuple[str, str]]:
    """Permissions no area covers (a new view needs its area here); the tests keep this empty."""
    return sorted({(p.permission.name, p.view_menu.name) for p in all_pvms
                   if not is_self_service(p.permission.name, p.view_menu.name)
                   and not any(re.fullmatch(a.views, p.view_menu.name) for a in AREAS)})
