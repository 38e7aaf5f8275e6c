"""A-XDR encoding and decoding of DLMS data (IEC 62056-6-2 types), strict and bounded: the simulator's own.

The HES itself encodes and decodes through gurux-dlms (app.comms.gx); the simulator keeps an independent
implementation, so the two check each other in the tests.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any


class AxdrError(ValueError):
    """Raised when bytes are not valid A-XDR data."""


NULL = 0
ARRAY = 1
STRUCTURE = 2
BOOLEAN = 3
BIT_STRING = 4
INT32 = 5
UINT32 = 6
OCTET_STRING = 9
VISIBLE_STRING = 10
UTF8_STRING = 12
BCD = 13
INT8 = 15
INT16 = 16
UINT8 = 17
UINT16 = 18
COMPACT_ARRAY = 19
INT64 = 20
UINT64 = 21
ENUM = 22
FLOAT32 = 23
FLOAT64 = 24
DATE_TIME = 25
DATE = 26
TIME = 27

TYPE_NAMES = {
    NULL: "null", ARRAY: "array", STRUCTURE: "structure", BOOLEAN: "boolean",
    BIT_STRING: "bit_string", INT32: "int32", UINT32: "uint32", OCTET_STRING: "octet_string",
    VISIBLE_STRING: "visible_string", UTF8_STRING: "utf8_string", BCD: "bcd", INT8: "int8",
    INT16: "int16", UINT8: "uint8", UINT16: "uint16", COMPACT_ARRAY: "compact_array",
    INT64: "int64", UINT64: "uint64", ENUM: "enum", FLOAT32: "float32", FLOAT64: "float64",
    DATE_TIME: "date_time", DATE: "date", TIME: "time",
}
TYPE_BY_NAME = {name: tag for tag, name in TYPE_NAMES.items()}

_FIXED = {
    INT32: ">i", UINT32: ">I", INT8: ">b", INT16: ">h", UINT8: ">B", UINT16: ">H",
    INT64: ">q", UINT64: ">Q", ENUM: ">B", FLOAT32: ">f", FLOAT64: ">d", BCD: ">B",
}
_FIXED_OCTETS = {DATE_TIME: 12, DATE: 5, TIME: 4}
MAX_DEPTH = 16


@dataclass(frozen=True, slots=True)
class Typed:
    """A value paired with its A-XDR type tag, for encoding."""

    tag: int
    value: Any


def structure(*items: Any) -> Typed:
    """Build a structure of typed items."""
    return Typed(STRUCTURE, list(items))


def array(items: list[Any]) -> Typed:
    """Build an array of typed items."""
    return Typed(ARRAY, list(items))


def encode_length(n: int) -> bytes:
    """Encode a BER-style length (1, 2, 3 or 5 octets)."""
    if n < 0x80:
        return bytes([n])
    if n <= 0xFF:
        return bytes([0x81, n])
    if n <= 0xFFFF:
        return bytes([0x82]) + n.to_bytes(2, "big")
    return bytes([0x84]) + n.to_bytes(4, "big")


def decode_length(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a BER-style length at pos; return (length, new_pos)."""
    if pos >= len(buf):
        raise AxdrError("length missing")
    first = buf[pos]
    if first < 0x80:
        return first, pos + 1
    size = first & 0x7F
    if size == 0 or size > 4 or pos + 1 + size > len(buf):
        raise AxdrError("bad length encoding")
    return int.from_bytes(buf[pos + 1:pos + 1 + size], "big"), pos + 1 + size


def _guess(value: Any) -> Typed:
    # Plain Python values get the narrowest usual DLMS type so callers can skip tagging.
    if value is None:
        return Typed(NULL, None)
    if isinstance(value, Typed):
        return value
    if isinstance(value, bool):
        return Typed(BOOLEAN, value)
    if isinstance(value, int):
        if 0 <= value <= 0xFFFFFFFF:
            return Typed(UINT32, value)
        if -0x80000000 <= value < 0:
            return Typed(INT32, value)
        return Typed(INT64 if value < 0 else UINT64, value)
    if isinstance(value, float):
        return Typed(FLOAT64, value)
    if isinstance(value, (bytes, bytearray)):
        return Typed(OCTET_STRING, bytes(value))
    if isinstance(value, str):
        return Typed(VISIBLE_STRING, value)
    if isinstance(value, (list, tuple)):
        return Typed(STRUCTURE, list(value))
    raise AxdrError(f"cannot encode {type(value).__name__}")


def encode(value: Any) -> bytes:
    """Encode a (possibly Typed) value as A-XDR data with its type tag."""
    out = bytearray()
    _encode_into(out, _guess(value))
    return bytes(out)


def _encode_into(out: bytearray, item: Typed) -> None:
    tag, value = item.tag, item.value
    out.append(tag)
    if tag == NULL:
        return
    if tag in (ARRAY, STRUCTURE):
        out += encode_length(len(value))
        for element in value:
            _encode_into(out, _guess(element))
    elif tag == BOOLEAN:
        out.append(1 if value else 0)
    elif tag in _FIXED:
        out += struct.pack(_FIXED[tag], value)
    elif tag in _FIXED_OCTETS:
        raw = bytes(value)
        if len(raw) != _FIXED_OCTETS[tag]:
            raise AxdrError(f"{TYPE_NAMES[tag]} needs {_FIXED_OCTETS[tag]} octets")
        out += raw
    elif tag in (OCTET_STRING, VISIBLE_STRING, UTF8_STRING):
        raw = value.encode("utf-8" if tag == UTF8_STRING else "ascii") if isinstance(value, str) else bytes(value)
        out += encode_length(len(raw)) + raw
    elif tag == BIT_STRING:
        bits = str(value)
        if set(bits) - {"0", "1"}:
            raise AxdrError("bit string must be 0/1 characters")
        padded = bits + "0" * (-len(bits) % 8)
        out += encode_length(len(bits))
        out += bytes(int(padded[i:i + 8], 2) for i in range(0, len(padded), 8))
    else:
        raise AxdrError(f"unsupported type tag {tag}")


def decode(buf: bytes, pos: int = 0, depth: int = 0) -> tuple[Any, int]:
    """Decode one A-XDR value at pos; return (python_value, new_pos).

    Structures and arrays become lists, strings become str, octet strings bytes,
    bit strings '0101' text, date-time/date/time their raw octets.
    """
    if depth > MAX_DEPTH:
        raise AxdrError("nesting too deep")
    if pos >= len(buf):
        raise AxdrError("data truncated")
    tag = buf[pos]
    pos += 1
    if tag == NULL:
        return None, pos
    if tag in (ARRAY, STRUCTURE):
        count, pos = decode_length(buf, pos)
        if count > len(buf) - pos:
            raise AxdrError("element count exceeds data")
        items = []
        for _ in range(count):
            item, pos = decode(buf, pos, depth + 1)
            items.append(item)
        return items, pos
    if tag == BOOLEAN:
        if pos >= len(buf):
            raise AxdrError("data truncated")
        return buf[pos] != 0, pos + 1
    if tag in _FIXED:
        size = struct.calcsize(_FIXED[tag])
        if pos + size > len(buf):
            raise AxdrError("data truncated")
        return struct.unpack_from(_FIXED[tag], buf, pos)[0], pos + size
    if tag in _FIXED_OCTETS:
        size = _FIXED_OCTETS[tag]
        if pos + size > len(buf):
            raise AxdrError("data truncated")
        return bytes(buf[pos:pos + size]), pos + size
    if tag in (OCTET_STRING, VISIBLE_STRING, UTF8_STRING):
        size, pos = decode_length(buf, pos)
        if pos + size > len(buf):
            raise AxdrError("data truncated")
        raw = bytes(buf[pos:pos + size])
        if tag == OCTET_STRING:
            return raw, pos + size
        try:
            return raw.decode("utf-8" if tag == UTF8_STRING else "latin-1"), pos + size
        except UnicodeDecodeError as exc:
            raise AxdrError(f"utf8-string is not UTF-8 at octet {exc.start}") from exc
    if tag == BIT_STRING:
        nbits, pos = decode_length(buf, pos)
        size = (nbits + 7) // 8
        if pos + size > len(buf):
            raise AxdrError("data truncated")
        bits = "".join(f"{b:08b}" for b in buf[pos:pos + size])[:nbits]
        return bits, pos + size
    raise AxdrError(f"unknown type tag 0x{tag:02x}")


def decode_all(buf: bytes) -> Any:
    """Decode exactly one A-XDR value filling buf."""
    value, pos = decode(buf, 0)
    if pos != len(buf):
        raise AxdrError(f"{len(buf) - pos} trailing bytes")
    return value
