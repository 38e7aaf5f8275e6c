"""gurux-dlms glue: the one DLMS stack of the HES (A-XDR encoding and decoding, ciphering, APDUs).

Three things gurux-dlms 1.0.203 needs from us, kept here in one place:

* its diagnostic ``print`` calls ("Encryption is applied.") flood stdout at fleet scale: silenced;
* it never checks the GCM tag of an authenticated-and-encrypted APDU (``decryptAesGcm`` builds its
  cipher stream in encrypt mode, so a flipped bit or a wrong authentication key goes unnoticed) and
  it opens encryption-only APDUs (security control 0x20), whose plaintext a man in the middle can
  alter. ``decryptAesGcm`` is wrapped: the tag is checked with ``cryptography``'s AES-GCM and
  unauthenticated ciphering is refused. Every ciphered APDU the HES reads passes through it.
* typed values for SET and ACTION parameters (``Typed``/``structure``/``array``), encoded by gurux.
"""

from __future__ import annotations

import datetime as dt
import importlib
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from gurux_dlms import GXByteBuffer
from gurux_dlms.enums import DataType, Security
from gurux_dlms.GXDLMSSettings import GXDLMSSettings
from gurux_dlms.internal._GXCommon import _GXCommon

TAG_LEN = 12
GENERAL_GLO = 0xDB
GENERAL_DED = 0xDC


def _discard(*_args: Any, **_kwargs: Any) -> None:
    """Swallow gurux's diagnostic prints."""


# The package re-exports classes under the module names, so fetch the modules themselves.
for _name in ("gurux_dlms.GXDLMSChippering", "gurux_dlms.GXDLMSClient", "gurux_dlms.GXDLMSChipperingStream",
              "gurux_dlms.GXDLMS"):
    importlib.import_module(_name).print = _discard


class CipheringError(ValueError):
    """A ciphered APDU failed authentication or used ciphering the HES does not accept."""


def _verify_gcm_tag(p: Any) -> None:
    """Check the tag of an authenticated-and-encrypted APDU (SC || IC || ciphertext || tag)."""
    content = bytes(p.cipheredContent or b"")
    if len(content) < 5 + TAG_LEN:
        raise CipheringError("ciphered APDU shorter than its tag")
    sc, counter = content[0], content[1:5]
    body, tag = content[5:-TAG_LEN], content[-TAG_LEN:]
    iv = bytes(p.systemTitle or b"") + counter
    try:
        decryptor = Cipher(algorithms.AES(bytes(p.blockCipherKey)),
                           modes.GCM(iv, tag, min_tag_length=TAG_LEN)).decryptor()
        decryptor.authenticate_additional_data(bytes([sc]) + bytes(p.authenticationKey or b""))
        decryptor.update(body)
        decryptor.finalize()
    except (InvalidTag, ValueError) as exc:
        raise CipheringError("authentication tag mismatch (wrong keys or altered APDU)") from exc


def _install_tag_check() -> None:
    module = importlib.import_module("gurux_dlms.GXDLMSChippering")
    chippering = module.GXDLMSChippering
    if getattr(chippering, "_hes_checked", False):
        return
    original = chippering.decryptAesGcm.__func__

    def decrypt_checked(cls: Any, settings: Any, p: Any, data: Any) -> Any:
        plain = original(cls, settings, p, data)
        if p.security == Security.ENCRYPTION:
            raise CipheringError("unauthenticated ciphering (encryption without authentication) refused")
        if p.security == Security.AUTHENTICATION_ENCRYPTION:
            _verify_gcm_tag(p)
        return plain

    chippering.decryptAesGcm = classmethod(decrypt_checked)
    chippering._hes_checked = True


_install_tag_check()


# ----- typed values ------------------------------------------------------------------------------

DATA_TYPES: dict[str, int] = {
    "null": DataType.NONE, "boolean": DataType.BOOLEAN, "bit_string": DataType.BITSTRING,
    "int32": DataType.INT32, "uint32": DataType.UINT32, "octet_string": DataType.OCTET_STRING,
    "visible_string": DataType.STRING, "utf8_string": DataType.STRING_UTF8, "bcd": DataType.BCD,
    "int8": DataType.INT8, "int16": DataType.INT16, "uint8": DataType.UINT8, "uint16": DataType.UINT16,
    "int64": DataType.INT64, "uint64": DataType.UINT64, "enum": DataType.ENUM, "float32": DataType.FLOAT32,
    "float64": DataType.FLOAT64, "date_time": DataType.DATETIME, "date": DataType.DATE, "time": DataType.TIME,
    "array": DataType.ARRAY, "structure": DataType.STRUCTURE,
}
ALIASES = {
    "double_long_unsigned": "uint32", "double_long": "int32", "long_unsigned": "uint16", "long": "int16",
    "unsigned": "uint8", "integer": "int8", "long64": "int64", "long64_unsigned": "uint64",
    "enumerate": "enum", "bool": "boolean", "string": "visible_string", "octet-string": "octet_string",
    "datetime": "date_time", "bitstring": "bit_string",
}
_FIXED_OCTETS = {DataType.DATETIME: 12, DataType.DATE: 5, DataType.TIME: 4}
_SIGNED_WIDTH = {DataType.INT16: 16, DataType.INT32: 32, DataType.INT64: 64}
_SETTINGS = GXDLMSSettings(False, None)


@dataclass(frozen=True, slots=True)
class Typed:
    """A value with its DLMS data type name (e.g. 'uint32', 'octet_string', 'structure')."""

    datatype: str
    value: Any


def structure(*items: Any) -> Typed:
    """A structure of (typed or plain) items."""
    return Typed("structure", list(items))


def array(items: list[Any]) -> Typed:
    """An array of (typed or plain) items."""
    return Typed("array", list(items))


def type_code(name: str) -> int:
    """The gurux DataType of a DLMS type name (aliases such as 'double_long_unsigned' accepted)."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in DATA_TYPES:
        raise ValueError(f"unknown DLMS data type {name!r}")
    return DATA_TYPES[key]


def _guess(value: Any) -> Typed:
    # Plain Python values get the narrowest usual DLMS type, so callers can skip tagging.
    if isinstance(value, Typed):
        return value
    if value is None:
        return Typed("null", None)
    if isinstance(value, bool):
        return Typed("boolean", value)
    if isinstance(value, int):
        if 0 <= value <= 0xFFFFFFFF:
            return Typed("uint32", value)
        if -0x80000000 <= value < 0:
            return Typed("int32", value)
        return Typed("int64" if value < 0 else "uint64", value)
    if isinstance(value, float):
        return Typed("float64", value)
    if isinstance(value, (bytes, bytearray)):
        return Typed("octet_string", bytes(value))
    if isinstance(value, str):
        return Typed("visible_string", value)
    if isinstance(value, (list, tuple)):
        return Typed("structure", list(value))
    if isinstance(value, dt.datetime):
        from app.comms.cosem import encode_datetime

        return Typed("octet_string", encode_datetime(value))
    raise ValueError(f"cannot encode {type(value).__name__} as DLMS data")


def _encode_into(buff: GXByteBuffer, item: Typed) -> None:
    code = type_code(item.datatype)
    value = item.value
    if code in (DataType.ARRAY, DataType.STRUCTURE):
        buff.setUInt8(code)
        _GXCommon.setObjectCount(len(value), buff)
        for element in value:
            _encode_into(buff, _guess(element))
        return
    if code in _FIXED_OCTETS and isinstance(value, (bytes, bytearray)):
        if len(value) != _FIXED_OCTETS[code]:
            raise ValueError(f"{item.datatype} needs {_FIXED_OCTETS[code]} octets")
        buff.setUInt8(code)
        buff.set(bytes(value))
        return
    if code == DataType.OCTET_STRING and isinstance(value, str):
        value = value.encode("ascii")
    if code in _SIGNED_WIDTH and isinstance(value, int) and value < 0:
        value &= (1 << _SIGNED_WIDTH[code]) - 1  # gurux writes the unsigned pattern of the same width
    if code == DataType.BITSTRING and isinstance(value, str) and set(value) - {"0", "1"}:
        raise ValueError("bit string must be 0/1 characters")
    try:
        _GXCommon.setData(_SETTINGS, buff, code, value)
    except Exception as exc:  # gurux raises bare errors for values that do not fit their type
        raise ValueError(f"{value!r} is not a valid {item.datatype}: {exc}") from exc


def encode(value: Any, datatype: str | None = None) -> bytes:
    """A-XDR encode a value with its type tag (through gurux), typed explicitly or guessed."""
    buff = GXByteBuffer()
    _encode_into(buff, Typed(datatype, value) if datatype else _guess(value))
    return bytes(buff.array())
