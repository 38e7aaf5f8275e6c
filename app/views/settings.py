"""System › Settings (Admin) and the per-user theme switch."""

from __future__ import annotations

from flask import current_app, flash, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose, has_access
from flask_babel import lazy_gettext as _
from flask_login import current_user

from app.services.settings import (
    THEMES,
    get_setting,
    meter_endpoint,
    set_setting,
    set_user_theme,
)


class SettingsView(BaseView):
    """Where meters must dial, the site theme, and customer token entry."""

    route_base = "/settings"
    default_view = "index"

    @expose("/", methods=["GET", "POST"])
    @has_access
    def index(self):
        if request.method == "POST":
            theme = request.form.get("theme")
            if theme in THEMES:
                set_setting("theme", theme)
            set_setting("customer_token_entry", request.form.get("customer_token_entry") == "on")
            flash(_("Settings saved."), "success")
            return redirect(url_for("SettingsView.index"))
        cfg = current_app.config
        return self.render_template(
            "hes/settings.html",
            meter_endpoint=meter_endpoint(),
            listen=cfg["HES_METER_LISTEN"],
            push_listen=cfg.get("HES_PUSH_LISTEN") or "",
            timezone=cfg["HES_TIMEZONE"],
            node_id=cfg["HES_NODE_ID"],
            theme=get_setting("theme"),
            themes=THEMES,
            customer_token_entry=get_setting("customer_token_entry"),
        )


class PreferencesView(BaseView):
    """A signed-in user's own choices."""

    route_base = "/preferences"

    @expose("/theme", methods=["POST"])
    @has_access
    def theme(self):
        theme = request.form.get("theme", "")
        if theme in THEMES:
            set_user_theme(current_user, theme)
        return redirect(request.referrer or url_for("HomeView.index"))


def register(appbuilder: AppBuilder) -> None:
    """System › Settings."""
    appbuilder.add_view(SettingsView, "Settings", icon="fa-cog", category="System", label=_("Settings"))
    appbuilder.add_view_no_menu(PreferencesView)
