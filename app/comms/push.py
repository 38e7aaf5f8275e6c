"""Decoding DLMS Data-Notification pushes (wrapper or HDLC framed, optionally general-glo/ded ciphered)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from app.comms import axdr, security
from app.comms.cosem import decode_datetime, normalise_obis
from app.comms.framing import (
    HDLC_FLAG,
    WRAPPER_VERSION,
    FrameError,
    parse_hdlc,
    parse_wrapper,
)

DATA_NOTIFICATION = 0x0F
LLC_HEADERS = (b"\xe6\xe7\x00", b"\xe6\xe6\x00")


class PushError(ValueError):
    """The bytes are not a Data-Notification we can decode (or cannot be deciphered)."""


@dataclass(frozen=True)
class PushNotification:
    """A decoded push: values paired with objects when an object list was given."""

    long_invoke_id: int
    timestamp: dt.datetime | None
    values: list[Any]
    body: Any = None
    system_title: bytes | None = None
    invocation_counter: int | None = None
    objects: list[dict[str, Any]] = field(default_factory=list)


def extract_apdu(frame: bytes) -> bytes:
    """The APDU inside a wrapper or HDLC frame (interface detected from the first bytes)."""
    if len(frame) >= 2 and int.from_bytes(frame[:2], "big") == WRAPPER_VERSION:
        return parse_wrapper(frame).apdu
    if frame[:1] == bytes([HDLC_FLAG]):
        info = parse_hdlc(frame).info
        return info[3:] if info[:3] in LLC_HEADERS else info
    raise FrameError("neither a wrapper nor an HDLC frame")


def decode_push(frame: bytes, push_objects: list[tuple[int, str, int]] | None = None,
                block_cipher_key: bytes | None = None, authentication_key: bytes | None = None) -> PushNotification:
    """Decode a framed push; raises FrameError (framing) or PushError (content)."""
    return decode_data_notification(extract_apdu(frame), push_objects, block_cipher_key, authentication_key)


def decode_data_notification(apdu: bytes, push_objects: list[tuple[int, str, int]] | None = None,
                             block_cipher_key: bytes | None = None,
                             authentication_key: bytes | None = None) -> PushNotification:
    """Decode a Data-Notification APDU (plain, or general-glo/general-ded ciphered when keys are given)."""
    title: bytes | None = None
    counter: int | None = None
    if apdu[:1] in (bytes([security.GENERAL_GLO]), bytes([security.GENERAL_DED])):
        if not block_cipher_key or not authentication_key:
            raise PushError("ciphered push but no block cipher/authentication key configured")
        try:
            title, counter, apdu = security.unwrap_general_glo(apdu, block_cipher_key, authentication_key)
        except ValueError as exc:
            raise PushError(f"cannot decipher push: {exc}") from exc
    if len(apdu) < 6 or apdu[0] != DATA_NOTIFICATION:
        raise PushError("not a Data-Notification APDU")
    invoke_id = int.from_bytes(apdu[1:5], "big")
    pos, timestamp = 5, None
    marker = apdu[pos]
    if marker == 0x09 and len(apdu) > pos + 1 and apdu[pos + 1] == 0x0C:
        pos += 1  # some meters tag the optional date-time as an octet string
        marker = 0x0C
    if marker == 0x0C:
        if len(apdu) < pos + 13:
            raise PushError("Data-Notification date-time truncated")
        timestamp = decode_datetime(apdu[pos + 1:pos + 13])
        pos += 13
    elif marker == 0x00:
        pos += 1
    else:
        raise PushError(f"bad Data-Notification date-time marker 0x{marker:02x}")
    try:
        body = axdr.decode_all(apdu[pos:])
    except axdr.AxdrError as exc:
        raise PushError(f"bad notification body: {exc}") from exc
    values = list(body) if isinstance(body, list) else [body]
    objects: list[dict[str, Any]] = []
    if push_objects:
        if len(push_objects) != len(values):
            raise PushError(f"push carries {len(values)} values but the object list has {len(push_objects)}")
        for (class_id, obis, attribute), value in zip(push_objects, values, strict=True):
            if class_id == 8 and attribute == 2 and isinstance(value, bytes):
                value = decode_datetime(value)
            objects.append({"class_id": int(class_id), "obis": normalise_obis(obis),
                            "attribute": int(attribute), "value": value})
    return PushNotification(invoke_id, timestamp, values, body, title, counter, objects)
