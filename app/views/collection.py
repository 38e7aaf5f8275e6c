"""System › Schedules and System › Data Pusher (subscriptions and their delivery status)."""

from __future__ import annotations

from flask import request
from flask_appbuilder import AppBuilder, ModelView
from flask_appbuilder.actions import action
from flask_appbuilder.api import expose, protect
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name
from flask_babel import lazy_gettext as _
from wtforms import PasswordField, SelectField
from wtforms.validators import Optional as OptionalValue

from app.extensions import db
from app.models import SCHEDULE_KINDS, Delivery, Schedule, Subscription
from app.services import ServiceError, audit
from app.services.outbox import retry_now
from app.services.secrets import encrypt
from app.views.errors import error_json, safe
from app.views.fleet_api import HesModelRestApi

SCHEDULE_COLUMNS = ["name", "kind", "brand", "area", "interval_minutes", "offset_minutes", "spread_seconds", "enabled"]
SUBSCRIPTION_COLUMNS = ["name", "kind", "url", "readings", "events", "enabled"]


def _check_schedule(item: Schedule) -> None:
    if item.kind not in SCHEDULE_KINDS:
        raise ServiceError(f"Unknown schedule kind '{item.kind}' (use one of {', '.join(SCHEDULE_KINDS)}).")
    if not item.interval_minutes or item.interval_minutes < 1:
        raise ServiceError("The interval must be at least one minute.")
    item.next_run_at = None  # recomputed on the next dispatch


def _check_subscription(item: Subscription) -> None:
    if item.kind not in ("webhook", "mqtt"):
        raise ServiceError("A subscription is a webhook or an MQTT topic.")
    scheme = item.url.split("://", 1)[0].lower() if "://" in item.url else ""
    if (item.kind == "webhook" and scheme not in ("http", "https")) or (item.kind == "mqtt" and scheme != "mqtt"):
        raise ServiceError("Use an http(s):// URL for webhooks and mqtt://host:port/topic for MQTT.")


class ScheduleView(ModelView):
    """Collection schedules per brand and/or area (empty = every meter)."""

    datamodel = SQLAInterface(Schedule)
    list_title = _("Collection Schedules")
    list_columns = SCHEDULE_COLUMNS + ["last_run_at", "next_run_at", "last_meters"]
    add_columns = edit_columns = SCHEDULE_COLUMNS
    add_form_extra_fields = {"kind": SelectField(_("Kind"), choices=[(k, k) for k in SCHEDULE_KINDS])}
    edit_form_extra_fields = add_form_extra_fields
    description_columns = {"spread_seconds": _("Jitter window: meters are asked at random times within it"),
                           "offset_minutes": _("Minutes after each interval boundary (local time)")}

    def pre_add(self, item):
        _check_schedule(item)

    pre_update = pre_add


class SubscriptionView(ModelView):
    """Webhook and MQTT targets of the data pusher; the signing secret is write-only."""

    datamodel = SQLAInterface(Subscription)
    list_title = _("Data Pusher Subscriptions")
    list_columns = SUBSCRIPTION_COLUMNS + ["created_at"]
    add_columns = edit_columns = SUBSCRIPTION_COLUMNS + ["secret"]
    show_columns = SUBSCRIPTION_COLUMNS + ["created_at"]
    add_form_extra_fields = {
        "kind": SelectField(_("Kind"), choices=[("webhook", "Webhook (HTTP POST, HMAC-SHA256 signed)"),
                                                ("mqtt", "MQTT topic")]),
        "secret": PasswordField(_("Signing secret"), validators=[OptionalValue()],
                                description=_("Leave empty to keep the current one")),
    }
    edit_form_extra_fields = add_form_extra_fields

    def pre_add(self, item):
        _check_subscription(item)
        secret = request.form.get("secret")
        if secret:
            item.secret_enc = encrypt(secret.encode())

    pre_update = pre_add

    @action("retry", _("Retry failed deliveries now"), "", "fa-refresh", single=False)
    def retry(self, items):
        from flask import flash, redirect, url_for

        count = sum(retry_now(item.id) for item in (items if isinstance(items, list) else [items]))
        flash(_("%(n)d deliveries queued again.", n=count), "success")
        return redirect(url_for("SubscriptionView.list"))


class DeliveryView(ModelView):
    """Delivery status of the data pusher (a failing target never blocks collection)."""

    datamodel = SQLAInterface(Delivery)
    list_title = _("Data Pusher Deliveries")
    base_permissions = ["can_list", "can_show"]
    list_columns = ["id", "subscription", "topic", "state", "attempts", "last_error", "created_at", "next_attempt_at",
                    "delivered_at"]
    search_columns = ["subscription", "topic", "state"]
    base_order = ("id", "desc")


class ScheduleApi(HesModelRestApi):
    """``/api/v1/schedule/``: collection schedules."""

    resource_name = "schedule"
    datamodel = SQLAInterface(Schedule)
    list_columns = ["id"] + SCHEDULE_COLUMNS + ["last_run_at", "next_run_at", "last_meters", "params"]
    show_columns = list_columns
    add_columns = edit_columns = SCHEDULE_COLUMNS + ["params"]

    def pre_add(self, item):
        _check_schedule(item)

    pre_update = pre_add


class SubscriptionApi(HesModelRestApi):
    """``/api/v1/subscription/``: data pusher targets; ``PUT <id>/secret`` sets the signing secret."""

    resource_name = "subscription"
    datamodel = SQLAInterface(Subscription)
    list_columns = ["id"] + SUBSCRIPTION_COLUMNS + ["created_at"]
    show_columns = list_columns
    add_columns = edit_columns = SUBSCRIPTION_COLUMNS
    search_columns = SUBSCRIPTION_COLUMNS  # not the encrypted secret (every column is searchable by default)
    base_permissions = ["can_get", "can_info", "can_post", "can_put", "can_delete", "can_secret"]

    def pre_add(self, item):
        _check_subscription(item)

    pre_update = pre_add

    @expose("/<int:pk>/secret", methods=["PUT"])
    @protect()
    @safe
    @permission_name("secret")
    def secret(self, pk: int):
        """Set the HMAC signing secret (write-only).
        ---
        put:
          summary: Set the webhook signing secret
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: secret set}
        """
        sub = db.session.get(Subscription, pk)
        if sub is None:
            return self.response_404()
        value = (request.get_json(silent=True) or {}).get("secret")
        if not isinstance(value, str) or len(value) < 16:
            return error_json(ServiceError("The secret must be a string of at least 16 characters.", status=422))
        sub.secret_enc = encrypt(value.encode())
        audit.record("credentials", "subscription", sub.id, f"signing secret set for {sub.name}")
        db.session.commit()
        return self.response(200, secret_set=True)


def register(appbuilder: AppBuilder) -> None:
    """System › Schedules, Data Pusher, Deliveries."""
    appbuilder.add_view(ScheduleView, "Schedules", icon="fa-clock-o", category="System", label=_("Schedules"))
    appbuilder.add_view(SubscriptionView, "Data Pusher", icon="fa-share-square-o", category="System",
                        label=_("Data Pusher"))
    appbuilder.add_view(DeliveryView, "Deliveries", icon="fa-paper-plane", category="System", label=_("Deliveries"))
    for api in (ScheduleApi, SubscriptionApi):
        appbuilder.add_api(api)
