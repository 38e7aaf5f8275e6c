"""Roles defined in code, synced into FAB's tables, and the security manager."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import gevent
from flask_appbuilder.security import manager as fab_manager
from flask_appbuilder.security.sqla import manager as fab_sqla_manager
from flask_appbuilder.security.sqla.manager import SecurityManager
from werkzeug.security import check_password_hash, generate_password_hash

# Permission pairs per role set, the Public role's id, and the grants' stamp they are valid for (one process).
_ACCESS_CACHE: dict = {}

ADMIN = "Admin"
OPERATOR = "Operator"
CUSTOMER = "Customer"

# Views (FAB "view menus") that only an Admin may touch: users, roles, permissions, settings.
ADMIN_ONLY_VIEWS = re.compile(
    r"^(UserDBModelView|RoleModelView|PermissionModelView|ViewMenuModelView|PermissionViewModelView"
    r"|GroupModelView|UserGroupModelView|ResetPasswordView|ApiKeyModelView|UserStatsChartView"
    r"|RegisterUserModelView|List Users|List Roles"
    r"|List Groups|Security|Base Permissions|Views/Menus|Permission on Views/Menus|User's Statistics"
    r"|User Registrations|API Keys|User|Role|Group|Permission|ViewMenu|PermissionViewMenu|ApiKey"
    r"|SettingsView|Settings|AuditLogView|Audit Log|RoleMatrixView|Roles|UserSessionApi)$"
)
# What every signed-in user may do to their own profile.
SELF_SERVICE = [
    (r"^can_userinfo$", r"^UserDBModelView$"),
    (r"^(can_this_form_get|can_this_form_post)$", r"^(ResetMyPasswordView|UserInfoEditView)$"),
    (r"^can_theme$", r"^PreferencesView$"),
]


@dataclass(frozen=True)
class RoleSpec:
    """A role as regular expressions over (permission, view menu) names."""

    allow: list[tuple[str, str]]
    deny_views: re.Pattern | None = None
    allow_despite_deny: list[tuple[str, str]] = field(default_factory=list)

    def grants(self, permission: str, view: str) -> bool:
        """True when this role should hold ``permission`` on ``view``."""
        if any(re.match(p, permission) and re.match(v, view) for p, v in self.allow_despite_deny):
            return True
        if self.deny_views is not None and self.deny_views.match(view):
            return False
        return any(re.match(p, permission) and re.match(v, view) for p, v in self.allow)


ROLES: dict[str, RoleSpec] = {
    ADMIN: RoleSpec(allow=[(r".*", r".*")]),
    OPERATOR: RoleSpec(
        allow=[(r".*", r".*")], deny_views=ADMIN_ONLY_VIEWS, allow_despite_deny=SELF_SERVICE
    ),
    # Read-only on their own meters (the row-level filter does the "own"), plus token entry; one page, My Meters,
    # with its API, and the command API's token entry and read-back (its other actions stay with staff).
    CUSTOMER: RoleSpec(
        allow=SELF_SERVICE
        + [
            # no can_info: FAB's _info lists every row of each related table (all customers, meters, users)
            (r"^can_get$", r"^(Meter|Reading|Event|Alert|Customer)Api$"),
            (r"^can_index$", r"^MyMetersView$"),
            (r"^(can_summary|can_consumption)$", r"^MyMetersApi$"),
            (r"^menu_access$", r"^My Meters$"),
            (r"^(can_get|can_submit_token)$", r"^CommandApi$"),
        ]
    ),
}


def sync_roles(sm: SecurityManager) -> dict[str, int]:
    """Create the code-defined roles and set each one's permissions; returns counts per role."""
    session = sm.session
    for name in ROLES:
        if sm.find_role(name) is None:
            sm.add_role(name)
    sm.appbuilder.add_permissions(update_perms=True)
    pvms = session.query(sm.permissionview_model).all()
    counts = {}
    for name, spec in ROLES.items():
        role = sm.find_role(name)
        role.permissions = [
            pvm for pvm in pvms if spec.grants(pvm.permission.name, pvm.view_menu.name)
        ]
        counts[name] = len(role.permissions)
    session.commit()
    return counts


def role_names(user) -> set[str]:
    """Names of a user's roles (empty for anonymous)."""
    return {r.name for r in getattr(user, "roles", None) or []}


def is_staff(user) -> bool:
    """True when the user holds a staff role (Admin or Operator): fleet-wide data, not one customer's."""
    return bool(role_names(user) & {ADMIN, OPERATOR})


def is_customer_only(user) -> bool:
    """True when the user's data must be limited to their own customer record."""
    names = role_names(user)
    return CUSTOMER in names and not names & {ADMIN, OPERATOR}


def check_password_off_loop(pwhash: str, password: str) -> bool:
    """werkzeug's password check, computed in gevent's native thread pool: scrypt costs 0.1–0.5 s of CPU and
    releases the GIL, so meters, pages and pushes go on being served while a user signs in."""
    return gevent.get_hub().threadpool.apply(check_password_hash, (pwhash, password))


def hash_password_off_loop(password: str, *args, **kwargs) -> str:
    """werkzeug's password hash (new users, password changes), off the loop the same way."""
    return gevent.get_hub().threadpool.apply(generate_password_hash, (password, *args), kwargs)


# FAB calls these module-level names (sign-in, API keys, add_user, reset_password, registration).
for _module in (fab_manager, fab_sqla_manager):
    _module.check_password_hash = check_password_off_loop
    _module.generate_password_hash = hash_password_off_loop


class HesSecurityManager(SecurityManager):
    """FAB's security manager with HES defaults (rate-limited login, code-defined roles)."""

    userstatschartview = None  # FAB's chart loads its library from the internet (blank offline)

    def create_jwt_manager(self, app):
        """JWTs carry the user's session stamp; one with an old stamp (logout, password change, sign out
        everywhere) or of an inactive user is refused (app/services/sessions.py)."""
        from flask_login import user_logged_in, user_logged_out

        from app.services import sessions

        manager = super().create_jwt_manager(app)
        # A verified token's claims are kept per process (keyed by the token's text, expiry checked every time).
        self.verified_tokens = sessions.VerifiedTokens()
        manager._decode_jwt_from_config = self.verified_tokens.wrap(manager._decode_jwt_from_config)
        manager.additional_claims_loader(sessions.token_claims)
        manager.token_in_blocklist_loader(sessions.token_is_revoked)
        real_app = getattr(app, "_get_current_object", lambda: app)()  # FAB passes the current_app proxy
        user_logged_in.connect(sessions.remember_login, real_app)
        user_logged_out.connect(sessions.end_on_logout, real_app)
        return manager

    def load_user(self, pk):
        """The user of a session cookie, unless the session was revoked since it was issued."""
        from flask import g, has_request_context

        from app.services import sessions

        user = super().load_user(pk)
        if user is not None and has_request_context() and not g.get("hes_token_lookup"):
            if not sessions.session_is_current(user):
                return None
        return user

    def load_user_jwt(self, _jwt_header, jwt_data):
        """The user of a JWT (its stamp was checked by ``token_is_revoked``)."""
        from flask import g

        g.hes_token_lookup = True
        return super().load_user_jwt(_jwt_header, jwt_data)

    def exist_permission_on_roles(self, view_name: str, permission_name: str, role_ids: list[int]) -> bool:
        """FAB's per-check query answered from the roles' (permission, view) pairs, kept per process and checked
        against the grants' change stamp once per request (a page's menu checks every entry: one query each cost
        0.6 s of the dashboard at scale; loading the pairs per request was 3 ms of every API call). A role
        edited in the role matrix applies from the next request on, in every process."""
        from flask import has_app_context

        if not has_app_context():
            return super().exist_permission_on_roles(view_name, permission_name, role_ids)
        return (permission_name, view_name) in self._pairs(tuple(sorted(role_ids)))

    def is_item_public(self, permission_name: str, view_name: str) -> bool:
        """FAB loads the Public role and its permissions for every protected call (twice per API request); the
        Public role's pairs come from the same per-process cache."""
        from flask import has_app_context

        if not has_app_context():
            return super().is_item_public(permission_name, view_name)
        public = self._public_role_id()
        return public is not None and (permission_name, view_name) in self._pairs((public,))

    def get_user_by_id(self, pk):
        """The user with their roles and groups' roles in one statement (the permission check reads them on
        every request; lazily that was two statements more), once per request (the token check and the
        JWT's user look-up both ask)."""
        return self.get_user_and_epoch(pk)[0]

    def get_user_and_epoch(self, pk) -> tuple:
        """The user (as ``get_user_by_id``) and their session epoch (``app.services.sessions``), read together
        in one statement once per request; an API call with a known token had them read with the grants' stamp
        at its first permission check (``_grants_stamp``)."""
        from flask import g, has_app_context

        users = g.setdefault("hes_users", {}) if has_app_context() else {}
        entry = users.get(pk)
        if entry is None or (entry[0] is not None and entry[0] not in self.session):  # not yet, or session ended
            row = self.session.execute(self._statements()["user"], {"user_id": pk}).unique().one_or_none()
            entry = users[pk] = (row[0], row[1] or 0) if row is not None else (None, 0)
        return entry

    def _statements(self) -> dict:
        """The security checks' statements, built once (building and caching a statement's key each request
        cost more than running it)."""
        statements = getattr(self, "_hes_statements", None)
        if statements is None:
            from flask_appbuilder.security.sqla.models import assoc_permissionview_role as grants
            from sqlalchemy import bindparam, func, select
            from sqlalchemy.orm import joinedload

            from app.models.audit import UserPreference

            stamp = (func.count(), func.max(grants.c.id), func.sum(grants.c.role_id),
                     func.sum(grants.c.permission_view_id), func.sum(grants.c.role_id * grants.c.permission_view_id))
            user_model = self.user_model
            user = (select(user_model, UserPreference.session_epoch)
                    .outerjoin(UserPreference, UserPreference.user_id == user_model.id)
                    .where(user_model.id == bindparam("user_id"))
                    .options(joinedload(user_model.roles), joinedload(user_model.groups)))
            statements = self._hes_statements = {
                "stamp": select(*stamp), "user": user,
                "user_and_stamp": user.add_columns(*(select(c).scalar_subquery() for c in stamp)),
            }
        return statements

    def _grants_stamp(self) -> tuple:
        """What changes whenever a role gains or loses a permission, read once per request: FAB adds and deletes
        rows of the role/permission table (never updates one), and the row count, the newest id and three sums
        over (role, permission) move with any such change (SQLite may give a deleted row's id to the next one;
        the sums still differ unless a change set swaps pairs in a way that keeps all three).

        An API call whose bearer token this process verified before (and that has not expired) names its user:
        the same statement then reads that user with their roles, groups and session epoch, which the token's
        revocation check and FAB's user look-up ask for next (``get_user_and_epoch``) — one statement, not
        three. Only a read ahead: the token is still checked in full (signature, expiry, stamp, active)."""
        from flask import g

        stamp = g.get("hes_grants_stamp")
        if stamp is not None:
            return stamp
        user_id = self._known_token_user()
        if user_id is not None and user_id not in g.get("hes_users", {}):
            row = self.session.execute(self._statements()["user_and_stamp"], {"user_id": user_id}).unique() \
                .one_or_none()
            if row is not None:
                g.setdefault("hes_users", {})[user_id] = (row[0], row[1] or 0)
                stamp = g.hes_grants_stamp = tuple(row[2:])
                return stamp
        stamp = g.hes_grants_stamp = tuple(self.session.execute(self._statements()["stamp"]).one())
        return stamp

    def _known_token_user(self) -> int | None:
        """The user id of this request's bearer token when this process verified that token before."""
        from flask import has_request_context, request

        tokens = getattr(self, "verified_tokens", None)
        if tokens is None or not has_request_context():
            return None
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        claims = tokens.peek(header[7:].strip())
        if claims is None or claims.get("type") != "access":
            return None
        try:
            return int(claims["sub"])
        except (KeyError, TypeError, ValueError):
            return None

    def _pairs(self, role_ids: tuple[int, ...]) -> frozenset[tuple[str, str]]:
        stamp = self._grants_stamp()
        cache = _ACCESS_CACHE
        if cache.get("stamp") != stamp:
            cache.clear()
            cache["stamp"] = stamp
        pairs = cache.get(role_ids)
        if pairs is None:
            pairs = cache[role_ids] = self._role_permission_pairs(role_ids)
        return pairs

    def _public_role_id(self) -> int | None:
        from sqlalchemy import select

        self._pairs(())  # the stamp first: a changed grant table drops the cached public role id too
        if "public" not in _ACCESS_CACHE:
            _ACCESS_CACHE["public"] = self.session.execute(
                select(self.role_model.id).where(self.role_model.name == self.auth_role_public)).scalar()
        return _ACCESS_CACHE["public"]

    def _role_permission_pairs(self, role_ids: tuple[int, ...]) -> frozenset[tuple[str, str]]:
        """Every (permission, view menu) name pair the roles hold, in one query."""
        from flask_appbuilder.security.sqla.models import assoc_permissionview_role
        from sqlalchemy import select

        if not role_ids:
            return frozenset()
        pv, perm, view = self.permissionview_model, self.permission_model, self.viewmenu_model
        stmt = (select(perm.name, view.name).select_from(pv)
                .join(assoc_permissionview_role, assoc_permissionview_role.c.permission_view_id == pv.id)
                .join(perm, perm.id == pv.permission_id).join(view, view.id == pv.view_menu_id)
                .where(assoc_permissionview_role.c.role_id.in_(role_ids)))
        return frozenset(tuple(row) for row in self.session.execute(stmt))

    @property
    def is_auth_limited(self) -> bool:
        """FAB's own limit (every POST to the login form, per address) is replaced by ``limit_sign_ins``."""
        return False

    def register_views(self):
        """Failed sign-ins are limited per account and address on the login form and on the JWT login
        (``POST /api/v1/security/login``, whose blueprint holds only login and refresh): app/views/login_limit.py."""
        super().register_views()
        from flask import current_app

        from app.views.login_limit import limit_sign_ins

        if current_app.config.get("AUTH_RATE_LIMITED", True):
            api = next((v for v in self.appbuilder.baseviews if isinstance(v, self.security_api)), None)
            limit_sign_ins(self, [bp for bp in (self.auth_view.blueprint, getattr(api, "blueprint", None)) if bp])
