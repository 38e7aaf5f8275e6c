"""Parsing a dial-in meter's registration/heartbeat frame into its meter number."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

WRAPPER_PREFIX = b"\x00\x01"
MIN_ID = 4
MAX_ID = 32
MAX_STATUS_BYTES = 16
_ID_CHARS = re.compile(rb"[A-Za-z0-9_\-]+")


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A recognised heartbeat: who the meter says it is, the raw frame, and its kind."""

    meter_number: str
    raw: bytes
    kind: Literal["register", "heartbeat"]


def heartbeat_frame(meter_number: str) -> bytes:
    """Build a Format-A heartbeat: wrapper header 00 01 00 01 00 01 LL LL + ASCII meter number."""
    payload = meter_number.encode("ascii")
    return b"\x00\x01\x00\x01\x00\x01" + len(payload).to_bytes(2, "big") + payload


def _valid_id(raw: bytes) -> str | None:
    if MIN_ID <= len(raw) <= MAX_ID and _ID_CHARS.fullmatch(raw):
        return raw.decode("ascii")
    return None


def parse_heartbeat(frame: bytes, first: bool = True) -> Heartbeat | None:
    """Recognise Format A (wrapper header + ASCII id) or Format B (bare ASCII id + status bytes).

    `first` tells whether this is the connection's first frame: kind is then 'register',
    otherwise 'heartbeat'. Returns None for anything else (e.g. a DLMS APDU).
    """
    if not isinstance(frame, (bytes, bytearray)) or not frame:
        return None
    raw = bytes(frame)
    kind: Literal["register", "heartbeat"] = "register" if first else "heartbeat"
    if raw[:2] == WRAPPER_PREFIX:
        if len(raw) < 8 or int.from_bytes(raw[6:8], "big") != len(raw) - 8:
            return None
        number = _valid_id(raw[8:].rstrip(b"\r\n\x00"))
        return Heartbeat(number, raw, kind) if number else None
    match = _ID_CHARS.match(raw)
    if not match:
        return None
    number = _valid_id(match.group(0))
    rest = raw[match.end():].rstrip(b"\r\n")
    if number is None or len(rest) > MAX_STATUS_BYTES or b"\r" in rest or b"\n" in rest:
        return None
    return Heartbeat(number, raw, kind)
