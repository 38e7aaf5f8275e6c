"""COSEM helpers: OBIS codes, interface classes, units, date-times and value conversion."""

from __future__ import annotations

import datetime as dt
import enum
import functools
import re
from typing import Any

from gurux_dlms.enums import ObjectType

UTC = dt.UTC

_OBIS_DOTTED = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\.(\d{1,3}))?$")
_OBIS_IEC = re.compile(r"^(\d{1,3})-(\d{1,3}):(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:[.*&](\d{1,3}))?$")
_OBIS_HEX = re.compile(r"^[0-9a-fA-F]{12}$")


def parse_obis(text: str | bytes) -> tuple[int, int, int, int, int, int]:
    """Parse an OBIS code in dotted, IEC (A-B:C.D.E[.F]), hex or 6-octet form; F defaults to 255."""
    if isinstance(text, (bytes, bytearray)):
        if len(text) != 6:
            raise ValueError(f"OBIS octet string must be 6 bytes, got {len(text)}")
        return tuple(text)  # type: ignore[return-value]
    if not isinstance(text, str):
        # ValueError, not TypeError: callers treat every unusable OBIS input alike.
        raise ValueError(f"OBIS code must be text, got {type(text).__name__}")  # noqa: TRY004
    code = text.strip()
    if not code:
        raise ValueError("OBIS code is empty")
    if _OBIS_HEX.match(code):
        return tuple(bytes.fromhex(code))  # type: ignore[return-value]
    match = _OBIS_DOTTED.match(code) or _OBIS_IEC.match(code)
    if not match:
        raise ValueError(f"'{code}' is not an OBIS code (expected e.g. 1.0.1.8.0.255 or 1-0:1.8.0)")
    groups = [int(g) if g is not None else 255 for g in match.groups()]
    for name, value in zip("ABCDEF", groups, strict=True):
        if value > 255:
            raise ValueError(f"OBIS group {name} of '{code}' is {value}, above 255")
    return tuple(groups)  # type: ignore[return-value]


def normalise_obis(text: str | bytes) -> str:
    """Return the canonical dotted form 'A.B.C.D.E.F' of an OBIS code (text and bytes remembered: a read session
    asks for the same few codes some thirty times)."""
    if type(text) in (str, bytes):
        return _normalised(text)
    return ".".join(str(part) for part in parse_obis(text))


@functools.lru_cache(maxsize=8192)
def _normalised(text: str | bytes) -> str:
    return ".".join(str(part) for part in parse_obis(text))


def obis_bytes(text: str | bytes) -> bytes:
    """Return the 6-octet logical name of an OBIS code."""
    return bytes(parse_obis(text))


def is_valid_obis(text: str | bytes) -> bool:
    """Tell whether text parses as an OBIS code."""
    try:
        parse_obis(text)
    except ValueError:
        return False
    return True


CLASS_NAMES: dict[int, str] = {
    int(member): member.name.lower() for member in ObjectType if int(member) not in (0,)
}


def class_name(class_id: int) -> str:
    """Name of a COSEM interface class id (from gurux ObjectType), or 'class_<id>'."""
    return CLASS_NAMES.get(int(class_id), f"class_{class_id}")


UNIT_SYMBOLS: dict[int, str] = {
    1: "a", 2: "mo", 3: "wk", 4: "d", 5: "h", 6: "min", 7: "s", 8: "°", 9: "°C", 10: "currency",
    11: "m", 12: "m/s", 13: "m³", 14: "m³", 15: "m³/h", 16: "m³/h", 17: "m³/d", 18: "m³/d",
    19: "l", 20: "kg", 21: "N", 22: "Nm", 23: "Pa", 24: "bar", 25: "J", 26: "J/h", 27: "W",
    28: "VA", 29: "var", 30: "Wh", 31: "VAh", 32: "varh", 33: "A", 34: "C", 35: "V", 36: "V/m",
    37: "F", 38: "Ω", 39: "Ωm²/m", 40: "Wb", 41: "T", 42: "A/m", 43: "H", 44: "Hz", 45: "1/(Wh)",
    46: "1/(varh)", 47: "1/(VAh)", 48: "V²h", 49: "A²h", 50: "kg/s", 51: "S", 52: "K",
    53: "1/(V²h)", 54: "1/(A²h)", 55: "1/m³", 56: "%", 57: "Ah", 60: "Wh/m³", 61: "J/m³",
    62: "mol%", 63: "g/m³", 64: "Pa·s", 65: "J/kg", 70: "dBm", 71: "dBµV", 72: "dB",
    254: "other", 255: "",
}
UNIT_CODES: dict[str, int] = {symbol: code for code, symbol in UNIT_SYMBOLS.items() if symbol}


def unit_symbol(code: int) -> str:
    """Symbol of a DLMS unit enum value ('' for count/unitless)."""
    return UNIT_SYMBOLS.get(int(code), f"unit_{code}")


NOT_SPECIFIED_DEVIATION = -0x8000


def encode_datetime(
    value: dt.datetime, deviation_minutes: int | None = 0, status: int = 0
) -> bytes:
    """Encode a datetime as a 12-octet COSEM date-time.

    The deviation follows the DLMS (and gurux default) convention: UTC = local + deviation,
    so a zone at UTC+01:00 is sent as -60. None marks the deviation not specified.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if deviation_minutes is None:
        local = value.astimezone(UTC)
        dev_field = 0x8000
    else:
        local = value.astimezone(UTC) - dt.timedelta(minutes=deviation_minutes)
        dev_field = deviation_minutes & 0xFFFF
    return bytes(
        [
            local.year >> 8, local.year & 0xFF, local.month, local.day, local.isoweekday(),
            local.hour, local.minute, local.second, local.microsecond // 10000,
            dev_field >> 8, dev_field & 0xFF, status & 0xFF,
        ]
    )


def decode_datetime(raw: bytes, default_deviation: int = 0) -> dt.datetime | None:
    """Decode a 12-octet COSEM date-time to a tz-aware UTC datetime (None if unspecified).

    Wildcards in hour/minute/second/hundredths read as 0; an unspecified deviation uses
    default_deviation (same sign convention as encode_datetime).
    """
    if not isinstance(raw, (bytes, bytearray)) or len(raw) != 12:
        return None
    year = (raw[0] << 8) | raw[1]
    month, day = raw[2], raw[3]
    if year == 0xFFFF or month in (0xFF, 0xFD, 0xFE) or day in (0xFF, 0xFD, 0xFE) or day == 0:
        return None
    hour, minute, second, hundredths = (b if b != 0xFF else 0 for b in raw[5:9])
    deviation = int.from_bytes(raw[9:11], "big", signed=True)
    if deviation == NOT_SPECIFIED_DEVIATION:
        deviation = default_deviation
    try:
        local = dt.datetime(year, month, day, hour, minute, second, min(hundredths, 99) * 10000)
    except ValueError:
        return None
    return (local + dt.timedelta(minutes=deviation)).replace(tzinfo=UTC)


_PLAIN = (int, float, str, bool)


def to_python(value: Any) -> Any:
    """Convert gurux values (GXDateTime, GXStructure, GXArray, enums, bit strings) to plain Python.

    GXDateTime becomes a tz-aware UTC datetime, structures and arrays lists, enums ints,
    bit strings '0101' text; bytes stay bytes.
    """
    if value is None or type(value) in _PLAIN:
        return value
    from gurux_dlms import GXBitString, GXDateTime

    if isinstance(value, (bool, str, bytes)):
        return value
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, GXDateTime):
        return gx_datetime_to_utc(value)
    if isinstance(value, GXBitString):
        return str(value)
    if isinstance(value, enum.Enum):
        return int(value.value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [to_python(item) for item in value]
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return value


def to_jsonable(value: Any) -> Any:
    """Convert gurux or plain values to JSON-friendly ones (datetimes ISO 8601, bytes hex)."""
    if value is None or type(value) in _PLAIN:
        return value
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    value = to_python(value)  # a leaf: no recursion left to repeat
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, bytes):
        text = value.decode("ascii", "replace")
        return text if value and all(32 <= b < 127 for b in value) else value.hex()
    if isinstance(value, list):
        return [to_jsonable(item) for item in value]
    return value


def gx_datetime_to_utc(value: Any) -> dt.datetime | None:
    """Turn a gurux GXDateTime into a tz-aware UTC datetime (None when unspecified, or when its deviation
    is no valid UTC offset: a day or more)."""
    inner = getattr(value, "value", None)
    if inner is None:
        return None
    if inner.tzinfo is None:
        return inner.replace(tzinfo=UTC)
    try:
        return inner.astimezone(UTC)
    except ValueError:
        return None
