"""Words the console shows that come from data, not from a template: enum values, event-type titles, event sources
and alert kinds. Listed here (marked with ``N_`` for ``pybabel extract``) so the catalogs carry them;
tests/console/test_i18n.py checks the list still covers every enum value and event type."""

from __future__ import annotations

from flask_babel import gettext


def N_(message: str) -> str:  # noqa: N802 - the conventional name of a no-op gettext marker
    """Mark a message for extraction without translating it here."""
    return message


ENUM_WORDS = (
    N_("Acknowledged"), N_("Active"), N_("Area"), N_("Authenticated"), N_("Auto"), N_("Cancelled"), N_("Closed"),
    N_("Connected"), N_("Critical"), N_("Decommissioned"), N_("Dial in"), N_("Dial out"), N_("Disconnected"),
    N_("District"), N_("Expired"), N_("Failed"), N_("False alarm"), N_("Feeder"), N_("Hdlc"), N_("High gmac"),
    N_("High gmac plain"), N_("High md5"), N_("High sha1"), N_("High sha256"), N_("Info"), N_("Installed"),
    N_("Low"), N_("Meter fault"), N_("None"), N_("Open"), N_("Plain"), N_("Queued"), N_("Ready for reconnection"),
    N_("Region"), N_("Resolved"), N_("Sent"), N_("Succeeded"), N_("Suspended"), N_("Terminated"),
    N_("Theft confirmed"), N_("Transformer"), N_("Unknown"), N_("Warehouse"), N_("Warning"), N_("Wrapper"),
    N_("Pending"), N_("Delivered"), N_("Inactive"), N_("Enabled"), N_("Disabled"),
)
EVENT_TITLES = (
    N_("Clock set"), N_("Communication lost"), N_("Communication restored"), N_("Current bypass suspected"),
    N_("Firmware activated"), N_("Low credit"), N_("Magnetic tamper"), N_("Meter cover opened"),
    N_("Neutral missing"), N_("Overload / load violation"), N_("Power failure"), N_("Power restored"),
    N_("Relay connected"), N_("Relay disconnected"), N_("Reverse energy flow"),
    N_("Meter clock fault (timestamps out of range)"),
)
OTHER_WORDS = (
    N_("Zero consumption (48 h)"), N_("Reverse energy flow (48 h)"), N_("Tamper events"),
    N_("Meters with tamper events"), N_("Relay open but consuming"),
    N_("Credit exhausted, relay closed"), N_("Long offline"), N_("Far below the area's pattern"),
    N_("Disconnect"), N_("Reconnect"), N_("Token"), N_("Firmware"), N_("Set"), N_("Read"), N_("Clock sync"),
    N_("Load limit"), N_("Running"),
    N_("format OK"), N_("authentication OK"), N_("validation OK"), N_("execution OK"), N_("format failure"),
    N_("authentication failure"), N_("validation failure"), N_("execution failure"), N_("not yet processed"),
    N_("Log"), N_("Push"), N_("Hes"), N_("Rule"), N_("Event"), N_("Investigation"), N_("Loss"), N_("Webhook"),
)
# Column labels the framework makes from column names ("auth_level" -> "Auth Level") where a view sets none;
# app.views.i18n.translate_labels() looks them up in the catalog.
COLUMN_LABELS = (
    N_("Access"), N_("Area"), N_("Attempts"), N_("Attribute"), N_("Auth Level"), N_("Brand"), N_("Class Id"),
    N_("Client Address"), N_("Connected"), N_("Connections"), N_("Created At"), N_("Datatype"), N_("Delivered At"),
    N_("Description"), N_("Enabled"), N_("Event Codes"), N_("Events"), N_("First Frame Hex"), N_("First Seen"),
    N_("Group"), N_("Groups"), N_("Id"), N_("Idempotency Key"), N_("Interface"), N_("Interval Minutes"), N_("Key"),
    N_("Kind"), N_("Label"), N_("Last Error"), N_("Last Meters"), N_("Last Run At"), N_("Last Seen"),
    N_("Manufacturer"), N_("Meter"), N_("Method"), N_("Name"), N_("Next Attempt At"), N_("Next Run At"),
    N_("Node Id"), N_("Obis"), N_("Objects"), N_("Offset Minutes"), N_("Params"), N_("Payload"), N_("Position"),
    N_("Profile Period Minutes"), N_("Pushes"), N_("Readings"), N_("Role"), N_("Roles"), N_("Scaler"),
    N_("Secret Enc"), N_("Server Address"), N_("Source"), N_("Spread Seconds"), N_("State"), N_("Subscription"),
    N_("System Title"), N_("Title"), N_("Topic"), N_("Unit"), N_("Url"), N_("User"), N_("Users"),
)
ALL_WORDS = ENUM_WORDS + EVENT_TITLES + OTHER_WORDS


def word(code) -> str:
    """A code word as people read it, translated: ``power_fail`` → "Power fail", ``dial_in`` → « Appel entrant »."""
    text = str(getattr(code, "value", code) if code is not None else "").replace("_", " ")
    return gettext(text[:1].upper() + text[1:].lower()) if text else ""
