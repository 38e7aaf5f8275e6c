"""DLMS pushes (Data-Notification), wrapper or HDLC framed, plain or general-glo/general-ded ciphered.

Framing is ours (app.comms.framing); the APDU is decoded and deciphered by gurux-dlms (with the
tag check of app.comms.gx). Before any key is chosen, ``sender_of`` reads who a ciphered push
claims to come from (its system title) so the caller can pick that meter's keys.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from gurux_dlms import GXByteBuffer, GXReplyData
from gurux_dlms.enums import Authentication, InterfaceType, Security
from gurux_dlms.secure import GXDLMSSecureClient

from app.comms import gx
from app.comms.cosem import decode_datetime, gx_datetime_to_utc, normalise_obis, to_python
from app.comms.framing import (
    HDLC_FLAG,
    WRAPPER_VERSION,
    FrameError,
    parse_hdlc,
    parse_wrapper,
    wrapper_frame,
)

DATA_NOTIFICATION = 0x0F
CIPHERED_TAGS = (gx.GENERAL_GLO, gx.GENERAL_DED)
LLC_HEADERS = (b"\xe6\xe7\x00", b"\xe6\xe6\x00")
SC_AUTHENTICATION = 0x10


class PushError(ValueError):
    """The bytes are not a Data-Notification we can decode (or cannot be deciphered)."""


@dataclass(frozen=True)
class ReceivedPush:
    """A push as the comms node received it: the bytes, where from, and the dial-in meter if known."""

    frame: bytes
    remote: str
    meter_id: int | None = None
    received_at: float = field(default_factory=time.time)
    port: str = "meter"  # "meter" (the dial-in port) or "push" (HES_PUSH_LISTEN)

    @property
    def remote_host(self) -> str:
        """The source IP address (no port)."""
        return self.remote.rpartition(":")[0] or self.remote


@dataclass(frozen=True)
class Sender:
    """What a push says about its sender before it is deciphered."""

    ciphered: bool
    system_title: bytes | None = None
    security_control: int | None = None
    invocation_counter: int | None = None

    @property
    def authenticated(self) -> bool:
        """True when the ciphering carries an authentication tag (security control bit 0x10)."""
        return bool(self.ciphered and self.security_control is not None and self.security_control & SC_AUTHENTICATION)


@dataclass(frozen=True)
class PushKeys:
    """The keys to open a ciphered push with."""

    block_cipher_key: bytes
    authentication_key: bytes


@dataclass(frozen=True)
class PushNotification:
    """A decoded push: values paired with objects when an object list was given."""

    timestamp: dt.datetime | None
    values: list[Any]
    system_title: bytes | None = None
    invocation_counter: int | None = None
    objects: list[dict[str, Any]] = field(default_factory=list)
    authenticated: bool = False


def extract_apdu(frame: bytes) -> bytes:
    """The APDU inside a wrapper or HDLC frame (interface detected from the first bytes)."""
    if len(frame) >= 2 and int.from_bytes(frame[:2], "big") == WRAPPER_VERSION:
        return parse_wrapper(frame).apdu
    if frame[:1] == bytes([HDLC_FLAG]):
        info = parse_hdlc(frame).info
        return info[3:] if info[:3] in LLC_HEADERS else info
    raise FrameError("neither a wrapper nor an HDLC frame")


def _ber_length(apdu: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(apdu):
        raise PushError("ciphered push truncated")
    first = apdu[pos]
    if first < 0x80:
        return first, pos + 1
    size = first & 0x7F
    if size == 0 or size > 4 or pos + 1 + size > len(apdu):
        raise PushError("ciphered push has a bad length field")
    return int.from_bytes(apdu[pos + 1:pos + 1 + size], "big"), pos + 1 + size


def sender_of(apdu: bytes) -> Sender:
    """Who a push APDU claims to come from: general-glo/ded ciphering carries the system title."""
    if not apdu or apdu[0] not in CIPHERED_TAGS:
        return Sender(ciphered=False)
    title_len, pos = _ber_length(apdu, 1)
    title = bytes(apdu[pos:pos + title_len])
    if title_len != 8 or len(title) != 8:
        raise PushError("general ciphering needs an 8-byte system title")
    size, pos = _ber_length(apdu, pos + title_len)
    if size < 5 or pos + size > len(apdu):
        raise PushError("ciphered push truncated")
    return Sender(True, title, apdu[pos], int.from_bytes(apdu[pos + 1:pos + 5], "big"))


def _gurux_notification(apdu: bytes, keys: PushKeys | None) -> GXReplyData:
    """Let gurux decode (and decipher) a Data-Notification APDU."""
    client = GXDLMSSecureClient(True, 1, 1, Authentication.NONE, None, InterfaceType.WRAPPER)
    if keys is not None:
        client.ciphering.security = Security.AUTHENTICATION_ENCRYPTION
        client.ciphering.blockCipherKey = bytes(keys.block_cipher_key)
        client.ciphering.authenticationKey = bytes(keys.authentication_key)
    reply, notify = GXReplyData(), GXReplyData()
    try:
        client.getData(GXByteBuffer(wrapper_frame(1, 1, apdu)), reply, notify)
    except gx.CipheringError as exc:
        raise PushError(f"cannot decipher push: {exc}") from exc
    except Exception as exc:  # gurux raises bare exceptions of many kinds for bad input
        raise PushError(f"bad Data-Notification: {exc or exc.__class__.__name__}") from exc
    if notify.command != DATA_NOTIFICATION or not notify.isComplete():
        raise PushError("not a complete Data-Notification APDU")
    return notify


def decode_push(frame: bytes, push_objects: list[tuple[int, str, int]] | None = None,
                keys: PushKeys | None = None) -> PushNotification:
    """Decode a framed push; raises FrameError (framing) or PushError (content)."""
    return decode_data_notification(extract_apdu(frame), push_objects, keys)


def decode_data_notification(apdu: bytes, push_objects: list[tuple[int, str, int]] | None = None,
                             keys: PushKeys | None = None) -> PushNotification:
    """Decode a Data-Notification APDU; a ciphered one needs keys and authenticated ciphering."""
    sender = sender_of(apdu)
    if sender.ciphered:
        if keys is None:
            raise PushError("ciphered push but no block cipher/authentication key for its sender")
        if not sender.authenticated:
            # Encryption alone has no tag: a man in the middle could alter the plaintext bit by bit.
            raise PushError(f"unauthenticated ciphering (security control 0x{sender.security_control:02x}) refused")
    elif not apdu or apdu[0] != DATA_NOTIFICATION:
        raise PushError("not a Data-Notification APDU")
    notify = _gurux_notification(apdu, keys if sender.ciphered else None)
    body = to_python(notify.value)
    values = list(body) if isinstance(body, list) else [body]
    timestamp = gx_datetime_to_utc(notify.time) if notify.time is not None else None
    objects: list[dict[str, Any]] = []
    if push_objects:
        if len(push_objects) != len(values):
            raise PushError(f"push carries {len(values)} values but the object list has {len(push_objects)}")
        for (class_id, obis, attribute), value in zip(push_objects, values, strict=True):
            if class_id == 8 and attribute == 2 and isinstance(value, bytes):
                value = decode_datetime(value)
            objects.append({"class_id": int(class_id), "obis": normalise_obis(obis),
                            "attribute": int(attribute), "value": value})
    return PushNotification(timestamp, values, sender.system_title, sender.invocation_counter,
                            objects, authenticated=sender.authenticated)


def printable(value: Any) -> str | None:
    """An octet string that reads as a meter number (ASCII letters, digits, - and _), else None."""
    if isinstance(value, str):
        value = value.encode("latin-1", "replace")
    if not isinstance(value, bytes):
        return None
    text = value.strip(b"\x00 ").decode("ascii", "replace")
    if 4 <= len(text) <= 40 and all(c.isalnum() or c in "-_." for c in text):
        return text
    return None
