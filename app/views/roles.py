"""Security › Roles: the role editor as a matrix (view / operate / administer per area of the product) over FAB's
permissions; FAB's raw permission lists leave the menu."""

from __future__ import annotations

import re

from flask import abort, current_app, flash, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose, has_access
from flask_babel import lazy_gettext as _

from app.extensions import db
from app.services import ServiceError
from app.services.roles import AREA_BY_KEY, AREAS, LEVEL_LABELS, LEVELS, is_builtin, permissions_for, role_matrix

# FAB's raw lists of permissions and view menus: the matrix replaces them in the menu (the pages stay for Admins).
HIDDEN_SECURITY_MENUS = ("List Roles", "Base Permissions", "Views/Menus", "Permission on Views/Menus")
ROLE_NAME = re.compile(r"^[\w .-]{2,64}$")


def _pvms():
    sm = current_app.appbuilder.sm
    return sm.session.query(sm.permissionview_model).all()


class RoleMatrixView(BaseView):
    """Roles and what each may open: view, operate or administer per area; built-in roles are shown read-only."""

    route_base = "/roles/matrix"
    default_view = "index"
    base_permissions = ["can_index", "can_edit", "can_add", "can_delete"]

    @expose("/")
    @has_access
    def index(self):
        sm = current_app.appbuilder.sm
        pvms = _pvms()
        roles = sorted(sm.get_all_roles(), key=lambda r: (not is_builtin(r), r.name.lower()))
        users = {r.id: 0 for r in roles}
        for user in sm.get_all_users():
            for r in user.roles:
                users[r.id] = users.get(r.id, 0) + 1
        rows = [{"role": r, "builtin": is_builtin(r), "users": users.get(r.id, 0),
                 "matrix": role_matrix(r, pvms)} for r in roles]
        return self.render_template("roles/index.html", rows=rows, areas=AREAS, levels=LEVELS,
                                    level_labels=LEVEL_LABELS, title=_("Roles"))

    @expose("/<int:pk>", methods=["GET", "POST"])
    @has_access
    def edit(self, pk: int):
        sm = current_app.appbuilder.sm
        role = db.session.get(sm.role_model, pk)
        if role is None:
            abort(404)
        pvms = _pvms()
        if request.method == "POST":
            if is_builtin(role):
                raise ServiceError(str(_("%(name)s is defined in code; copy it to make a role you can change.",
                                         name=role.name)), status=409)
            cells = {tuple(value.split(":", 1)) for value in request.form.getlist("cell")}
            cells = {(a, lvl) for a, lvl in cells if a in AREA_BY_KEY and lvl in AREA_BY_KEY[a].levels}
            role.permissions = permissions_for(cells, pvms)
            db.session.commit()
            flash(_("Role %(name)s saved.", name=role.name), "success")
            return redirect(url_for("RoleMatrixView.index"))
        return self.render_template("roles/edit.html", role=role, builtin=is_builtin(role),
                                    matrix=role_matrix(role, pvms), areas=AREAS, levels=LEVELS,
                                    level_labels=LEVEL_LABELS, title=_("Role %(name)s", name=role.name))

    @expose("/new", methods=["POST"])
    @has_access
    def add(self):
        sm = current_app.appbuilder.sm
        name = (request.form.get("name") or "").strip()
        if not ROLE_NAME.match(name):
            raise ServiceError(str(_("A role name has 2 to 64 letters, digits, spaces, dots or dashes.")), status=422)
        if sm.find_role(name) is not None:
            raise ServiceError(str(_("A role named %(name)s exists already.", name=name)), status=409)
        source = sm.find_role(request.form.get("copy_of") or "")
        role = sm.add_role(name)
        if source is not None:
            role.permissions = list(source.permissions)
            db.session.commit()
        return redirect(url_for("RoleMatrixView.edit", pk=role.id))

    @expose("/<int:pk>/delete", methods=["POST"])
    @has_access
    def delete(self, pk: int):
        sm = current_app.appbuilder.sm
        role = db.session.get(sm.role_model, pk)
        if role is None:
            abort(404)
        if is_builtin(role):
            raise ServiceError(str(_("%(name)s is defined in code and cannot be deleted.", name=role.name)),
                               status=409)
        if any(role in user.roles for user in sm.get_all_users()):
            raise ServiceError(str(_("Take %(name)s away from its users before deleting it.", name=role.name)),
                               status=409)
        db.session.delete(role)
        db.session.commit()
        flash(_("Role %(name)s deleted.", name=role.name), "success")
        return redirect(url_for("RoleMatrixView.index"))


def _hide_raw_security_menus(appbuilder: AppBuilder) -> None:
    security = next((item for item in appbuilder.menu.get_list() if item.name == "Security"), None)
    if security is not None:
        security.childs = [child for child in security.childs if child.name not in HIDDEN_SECURITY_MENUS]


def register(appbuilder: AppBuilder) -> None:
    """Security › Roles (the matrix) in place of FAB's permission lists."""
    appbuilder.add_view(RoleMatrixView, "Roles", icon="fa-th", category="Security", label=_("Roles"))
    _hide_raw_security_menus(appbuilder)
