"""What each command kind takes: validation and normalisation of its parameters before anything is queued."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.comms.cosem import normalise_obis
from app.extensions import db
from app.models import Meter, MeterBrand, ObisPoint
from app.models.types import UTC
from app.services import MAX_ID, NotFound, ServiceError
from app.services.brands import point_by_ref

KINDS = ("disconnect", "reconnect", "token", "firmware", "set", "read", "clock_sync", "load_limit")
# Kinds that change something on the meter (a group job of these needs an explicit confirmation).
CHANGING = frozenset(KINDS) - {"read"}
TOKEN_STATUS = {
    0: "format OK", 1: "authentication OK", 2: "validation OK", 3: "execution OK",
    4: "format failure", 5: "authentication failure", 6: "validation failure", 7: "execution failure",
    8: "not yet processed",
}
TOKEN_EXECUTED = 3
TOKEN_FAILURES = (4, 5, 6, 7)
DEFAULT_OBJECTS = {"relay": "0.0.96.3.10.255", "token_gateway": "0.0.19.40.0.255", "credit": "0.0.19.10.0.255",
                   "image_transfer": "0.0.44.0.0.255", "limiter": "0.0.17.0.0.255"}
INTEGER_TYPES = {"uint8": (0, 255), "unsigned": (0, 255), "enum": (0, 255), "enumerate": (0, 255),
                 "int8": (-128, 127), "integer": (-128, 127), "uint16": (0, 65535), "long_unsigned": (0, 65535),
                 "int16": (-32768, 32767), "long": (-32768, 32767), "uint32": (0, 2**32 - 1),
                 "double_long_unsigned": (0, 2**32 - 1), "int32": (-(2**31), 2**31 - 1),
                 "double_long": (-(2**31), 2**31 - 1), "uint64": (0, 2**64 - 1), "int64": (-(2**63), 2**63 - 1)}
STRING_TYPES = {"octet_string", "visible_string", "string", "utf8_string"}


def invalid(message: str, column: str = "params", value: Any = None) -> ServiceError:
    """A 422 naming the bad field."""
    return ServiceError(message, errors=[{"column": column, "reason": message, "value": value}], status=422)


def normalise_token(raw: Any) -> str:
    """The 20 digits of an STS token (spaces and dashes allowed in between), or a 422."""
    digits = str(raw or "").replace(" ", "").replace("-", "")
    if len(digits) != 20 or not (digits.isascii() and digits.isdigit()):
        raise invalid(f"A token is 20 decimal digits; this one has {sum(c.isdigit() for c in digits)} digit(s)"
                      + ("" if digits.isdigit() else " and other characters") + ".", "token", raw)
    return digits


def encode_token(brand: MeterBrand, token: str) -> bytes:
    """The bytes the brand's token gateway takes (brand plugin), ASCII digits for brands without one."""
    from app.plugins.manager import hook

    try:
        encoded = hook().hes_encode_token(brand=brand.name, token=token)
    except ValueError as exc:
        raise invalid(f"The {brand.title} token encoder refused the token: {exc}", "token", token) from exc
    return encoded if encoded is not None else token.encode("ascii")


def brand_object(brand: MeterBrand, name: str) -> str:
    """OBIS code of one of the brand's special objects (relay, token gateway, ...)."""
    value = (brand.objects or {}).get(name) or DEFAULT_OBJECTS[name]
    return normalise_obis(str(value))


def point_at(brand: MeterBrand, obis: str, class_id: int, attribute: int) -> ObisPoint | None:
    """The brand's point for one attribute of an object, if it lists one."""
    return next((p for p in brand.points if p.obis == obis and p.class_id == class_id
                 and p.attribute == attribute), None)


def limiter_point(brand: MeterBrand) -> ObisPoint:
    """The writable load-limit threshold of the brand (limiter class 71, attribute 3)."""
    point = point_at(brand, brand_object(brand, "limiter"), 71, 3) or next(
        (p for p in brand.points if p.class_id == 71 and p.attribute == 3 and "w" in p.access), None)
    if point is None:
        raise invalid(f"Brand {brand.title} lists no load limiter threshold (class 71 attribute 3).", "kind")
    return point


def parse_value(point: ObisPoint, value: Any) -> tuple[Any, str | None]:
    """Turn what an operator typed into the raw value and DLMS type to write (scaler applied)."""
    datatype = (point.datatype or "").lower() or None
    if datatype in INTEGER_TYPES or (datatype is None and isinstance(value, int | float)):
        try:
            number = float(str(value).strip())
        except ValueError as exc:
            raise invalid(f"{point.name} takes a number, not {value!r}.", point.key, value) from exc
        raw = round(number / 10 ** (point.scaler or 0))
        low, high = INTEGER_TYPES.get(datatype or "int64")
        if not low <= raw <= high:
            raise invalid(f"{point.name} must be between {low * 10 ** (point.scaler or 0):g} and "
                          f"{high * 10 ** (point.scaler or 0):g}.", point.key, value)
        return raw, datatype or ("int32" if raw < 0 else "uint32")
    if datatype in ("boolean", "bool"):
        text = str(value).strip().lower()
        if text not in ("true", "false", "1", "0", "on", "off", "yes", "no"):
            raise invalid(f"{point.name} takes true or false.", point.key, value)
        return text in ("true", "1", "on", "yes"), "boolean"
    if datatype in ("date_time", "datetime"):
        try:
            when = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise invalid(f"{point.name} takes an ISO 8601 date-time.", point.key, value) from exc
        return (when if when.tzinfo else when.replace(tzinfo=UTC)), None
    if datatype in STRING_TYPES or datatype is None:
        text = str(value)
        if not text or len(text) > 255:
            raise invalid(f"{point.name} takes 1 to 255 characters.", point.key, value)
        return text.encode("utf-8"), "octet_string" if datatype != "visible_string" else "visible_string"
    raise invalid(f"{point.name} ({datatype}) cannot be written from the HES; only numbers, booleans, "
                  "date-times and strings can.", point.key, value)


def _set_values(meter: Meter, params: dict) -> dict[str, str | None]:
    values = params.get("values")
    if values is None and params.get("point") is not None:
        values = {params["point"]: params.get("value")}
    if not isinstance(values, dict) or not values:
        raise invalid("Give the parameters to write in 'values' ({key: value}) or 'point' and 'value'.", "values")
    out: dict[str, str | None] = {}
    for ref, value in values.items():
        point = point_by_ref(meter.brand, str(ref))
        if point is None:
            raise invalid(f"Unknown parameter {ref!r} for brand {meter.brand.title}.", "values", ref)
        if point.access == "r":
            raise invalid(f"{point.name} is read-only.", point.key, value)
        if point.class_id == 18:
            raise invalid(f"{point.name}: upgrade firmware from the Firmware page (kind 'firmware').", point.key)
        if point.access == "x":
            if point.class_id == 115:
                value = normalise_token(value)
                encode_token(meter.brand, value)
            elif value not in (None, "") and point.datatype not in (None, "int8"):
                parse_value(point, value)
            out[point.key] = None if value in (None, "") else str(value)
            continue
        if value is None or value == "":
            raise invalid(f"Give a value for {point.name}.", point.key, value)
        parse_value(point, value)
        out[point.key] = str(value)
    return out


def validate_params(kind: str, meter: Meter, params: dict | None) -> dict:
    """Check a command's parameters for this meter's brand; returns the normalised parameters."""
    params = dict(params or {})
    if kind not in KINDS:
        raise invalid(f"Unknown command kind {kind!r}; use one of {', '.join(KINDS)}.", "kind", kind)
    if kind in ("disconnect", "reconnect", "clock_sync"):
        return {}
    if kind == "token":
        token = normalise_token(params.get("token"))
        encode_token(meter.brand, token)
        return {"token": token}
    if kind == "set":
        return {"values": _set_values(meter, params)}
    if kind == "read":
        from app.services.meter_ops import resolve_points

        refs = params.get("points")
        if not isinstance(refs, list) or not refs or len(refs) > 64:
            raise invalid("Give 1 to 64 parameter keys or OBIS codes in 'points'.", "points")
        for point in resolve_points(meter, [str(r) for r in refs]):
            if point.access == "x":
                raise invalid(f"{point.name} is a method; it cannot be read.", "points", point.key)
        out = {"points": [str(r) for r in refs]}
        for name in ("from", "to"):
            if params.get(name):
                try:
                    when = dt.datetime.fromisoformat(str(params[name]).replace("Z", "+00:00"))
                except ValueError as exc:
                    raise invalid(f"'{name}' must be an ISO 8601 date-time.", name, params[name]) from exc
                out[name] = (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()
        return out
    if kind == "load_limit":
        point = limiter_point(meter.brand)
        value = params.get("threshold", params.get("value"))
        if value in (None, ""):
            raise invalid("Give the load limit in 'threshold' (in the brand's unit, usually W).", "threshold")
        raw, _ = parse_value(point, value)
        if raw < 0:
            raise invalid("The load limit cannot be negative.", "threshold", value)
        return {"threshold": str(value)}
    from app.models import FirmwareImage

    image_id = params.get("image_id")
    known = str(image_id or "").isdecimal() and int(image_id) <= MAX_ID
    image = db.session.get(FirmwareImage, int(image_id)) if known else None
    if image is None:
        raise NotFound(f"Firmware image {image_id!r} not found; upload it first.")
    return {"image_id": image.id, "identifier": image.identifier}
