"""Remote › Remote Loading (tokens), Remote Control (relay) and Firmware pages; store-and-forward hook."""

from __future__ import annotations

from flask import request
from flask_appbuilder import AppBuilder, BaseView, expose, has_access
from flask_babel import lazy_gettext as _

from app.services.scope import selected_area_id


class _RemotePage(BaseView):
    """A Remote page (the meter search on the left, the action on the right)."""

    default_view = "index"
    template = ""
    title = ""

    @expose("/")
    @has_access
    def index(self):
        return self.render_template(self.template, title=self.title, area_id=selected_area_id(),
                                    meter_id=request.args.get("meter", ""))


class RemoteLoadingView(_RemotePage):
    """Enter an STS token, see the status the meter reports and the credit read back; token history."""

    route_base = "/remote/loading"
    template = "remote/loading.html"
    title = _("Remote Loading")


class RemoteControlView(_RemotePage):
    """Disconnect and reconnect the relay with a confirmation; the relay state read back."""

    route_base = "/remote/control"
    template = "remote/control.html"
    title = _("Remote Control")


class FirmwareView(_RemotePage):
    """Upload images, upgrade meters or an area, follow each meter's transfer."""

    route_base = "/remote/firmware"
    template = "remote/firmware.html"
    title = _("Firmware")


def register(appbuilder: AppBuilder) -> None:
    """Remote › pages; dial-in meters that connect get their stored commands."""
    from app.services import status_hooks
    from app.services.commands import on_meter_status

    status_hooks.subscribe(on_meter_status)
    for view, name, icon in ((RemoteLoadingView, "Remote Loading", "fa-credit-card"),
                             (RemoteControlView, "Remote Control", "fa-power-off"),
                             (FirmwareView, "Firmware", "fa-microchip")):
        appbuilder.add_view(view, name, icon=icon, category="Remote", category_label=_("Remote"),
                            category_icon="fa-bolt", label=_(name))
