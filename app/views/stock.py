"""The framework's stock screens (list, show, add, edit, search and the security pages) in the HES look: values
formatted for people, natural sort of numbers, labelled primary actions, and saving returns where the user was.

The templates under ``app/templates/appbuilder/general/`` override FAB's; this module gives them their helpers."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from urllib.parse import urlsplit

from flask import current_app, request, url_for
from flask_appbuilder import AppBuilder, ModelView
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import format_date, format_datetime, format_decimal, gettext
from flask_babel import lazy_gettext as _
from markupsafe import Markup, escape
from sqlalchemy import asc, desc, func

# A column shown with a unit after its value.
COLUMN_UNITS = {"port": "", "interval_minutes": "min", "offset_minutes": "min", "profile_period_minutes": "min",
                "spread_seconds": "s", "credit_balance": "kWh", "energy_recovered_kwh": "kWh"}
# Boolean columns that are a state rather than yes/no.
STATE_COLUMNS = {"online": (_("Online"), _("Offline")), "active": (_("Active"), _("Inactive")),
                 "enabled": (_("Enabled"), _("Disabled"))}
# Enum-like values shown as a coloured pill.
PILL_KINDS = {"active": "success", "installed": "info", "warehouse": "default", "decommissioned": "muted",
              "connected": "success", "disconnected": "danger", "delivered": "success", "failed": "danger",
              "pending": "warning", "queued": "warning", "succeeded": "success", "expired": "muted",
              "critical": "danger", "warning": "warning", "info": "info"}
PILL_COLUMNS = {"status", "state", "severity", "relay_state", "kind"}
# Columns holding a code word (dial_in, hls_gmac) shown as words.
WORD_COLUMNS = {"comm_mode", "interface", "auth_level", "relay_state", "kind", "source", "access", "group", "topic"}
NATURAL_DIGITS = "0123456789"


def natural_key(column):
    """ORDER BY terms that sort text the way people count: SIM2 before SIM10, "Customer 9" before "Customer 10".
    Text without its trailing digits first, then shorter before longer, then the text (SQLite and PostgreSQL)."""
    return func.rtrim(column, NATURAL_DIGITS), func.length(column), column


class HesInterface(SQLAInterface):
    """SQLAInterface whose text columns named in ``natural_columns`` sort naturally."""

    def __init__(self, obj, session=None, natural_columns: tuple[str, ...] = ()):
        super().__init__(obj, session)
        self.natural_columns = set(natural_columns)

    def apply_order_by(self, query, order_column, order_direction, **kwargs):
        if order_column not in self.natural_columns:
            return super().apply_order_by(query, order_column, order_direction, **kwargs)
        direction = asc if order_direction == "asc" else desc
        terms = [direction(term) for term in natural_key(getattr(self.obj, order_column))]
        return query.order_by(*terms, direction(getattr(self.obj, self.get_pk_name())))


def _pill(text, kind: str) -> Markup:
    return Markup('<span class="hes-pill pill-{}">{}</span>').format(kind, text)


def _name(item) -> str:
    """What a related row is called on screen."""
    for attribute in ("full_name", "title", "number", "name", "username"):
        value = getattr(item, attribute, None)
        if isinstance(value, str) and value:
            return value
    return str(item)


def format_cell(value, column: str = "") -> Markup:
    """One value as a person reads it: local time to the second, pills for states and booleans, related rows by
    name, numbers in the locale with their unit, a dash for nothing."""
    if value is None or value == "" or (isinstance(value, list | tuple | set) and not value):
        return Markup('<span class="hes-none">—</span>')
    if isinstance(value, bool):
        if column in STATE_COLUMNS:
            on, off = STATE_COLUMNS[column]
            return Markup('<span class="hes-status {0}"><span class="hes-dot {0}"></span>{1}</span>').format(
                "on" if value else "off", on if value else off)
        return _pill(gettext("Yes") if value else gettext("No"), "success" if value else "muted")
    if isinstance(value, dt.datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return Markup('<time datetime="{}">{}</time>').format(stamp.isoformat(), format_datetime(stamp, "medium"))
    if isinstance(value, dt.date):
        return Markup(escape(format_date(value, "medium")))
    if isinstance(value, enum.Enum):
        label = gettext(str(value.value).replace("_", " ").capitalize())
        return _pill(label, PILL_KINDS.get(str(value.value), "default"))
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        text = format_decimal(value) if column != "port" else str(value)
        unit = COLUMN_UNITS.get(column, "")
        return Markup('<span class="hes-num">{}</span>').format(f"{text} {unit}" if unit else text)
    if isinstance(value, list | tuple | set):
        names = sorted((_name(v) for v in value), key=_natural_text)
        return Markup(", ").join(Markup('<span class="hes-tag" translate="no">{}</span>').format(n) for n in names)
    if hasattr(value, "__table__"):
        full = getattr(value, "full_name", None)
        if full and getattr(value, "name", None) and full != value.name:  # an area: its own name, the path on hover
            return Markup('<span title="{}" translate="no">{}</span>').format(full, value.name)
        return Markup('<span translate="no">{}</span>').format(_name(value))
    if isinstance(value, str) and column in PILL_COLUMNS and value in PILL_KINDS:
        return _pill(gettext(value.replace("_", " ").capitalize()), PILL_KINDS[value])
    if isinstance(value, str) and column in WORD_COLUMNS:
        return Markup(escape(gettext(value.replace("_", " ").capitalize())))
    if isinstance(value, str) and value:  # data (a name, a serial, free text), not a UI string: never translated
        return Markup('<span translate="no">{}</span>').format(value)
    return Markup(escape(value))


def _natural_text(text: str) -> tuple:
    import re

    return tuple(int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text))


def current_view():
    """The FAB view that serves this request (for titles and labels in shared templates), or None."""
    blueprint = request.blueprint if request else None
    return next((v for v in current_app.appbuilder.baseviews if v.blueprint and v.blueprint.name == blueprint), None)


def add_label(view) -> str:
    """The labelled primary action of a list: "Add meter" rather than a bare "+"."""
    title = str(getattr(view, "add_title", "") or "")
    return title or gettext("Add")


def safe_return_url(value: str | None) -> str | None:
    """A same-site path to send the user back to, or None for anything else (an open redirect)."""
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        if parts.netloc != request.host:
            return None
        value = parts.path + (f"?{parts.query}" if parts.query else "")
    if not value.startswith("/") or value.startswith("//") or "/login" in value:
        return None
    return value


def return_url() -> str:
    """Where a form goes back to after saving or cancelling: the page that opened it (``?next=`` or the referrer),
    else the list of the view that owns it."""
    for candidate in (request.values.get("_next"), request.args.get("next"), request.referrer):
        url = safe_return_url(candidate)
        if url and url.split("?")[0] != request.path:
            return url
    view = current_view()
    if isinstance(view, ModelView):
        return url_for(f"{view.endpoint}.list")
    return url_for("HomeView.index")


def _return_after_save(response):
    """A stock form that saved (a redirect after POST) goes back to the page that opened it."""
    if request.method != "POST" or response.status_code not in (301, 302, 303):
        return response
    target = safe_return_url(request.form.get("_next"))
    if target and isinstance(current_view(), ModelView) and request.endpoint and \
            request.endpoint.rsplit(".", 1)[-1] in ("add", "edit"):
        response.location = target
    return response


class HesStockMessages:
    """Flash messages of the stock screens in plain words (FAB says "Added Row")."""

    add_row_message = _("Saved.")
    edit_row_message = _("Changes saved.")
    delete_row_message = _("Deleted.")
    update_row_message = _("Changes saved.")


def register(appbuilder: AppBuilder) -> None:
    """The stock templates' helpers and the return-after-save rule."""
    app = current_app
    app.add_template_filter(format_cell, "hes_cell")
    app.add_template_filter(format_decimal, "hes_number")
    app.add_template_global(current_view, "hes_view")
    app.add_template_global(add_label, "hes_add_label")
    app.add_template_global(return_url, "hes_return_url")
    app.after_request(_return_after_save)
