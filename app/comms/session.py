"""A DLMS/COSEM client session over one socket stream, built on gurux's sans-IO GXDLMSSecureClient.

gurux builds and parses the frames; the session moves bytes through a SocketStream, follows
multi-block and segmented replies, and turns results into plain Python values and exceptions.

Invocation counter (HLS-GMAC): the session starts from params.invocation_counter and, when
params.sync_invocation_counter is set (the default for high_gmac), first reads the meter's
invocation counter object 0.0.43.1.0.255 through the public client (16, no security) and
continues from max(ours, meter's + 1), the practice gurux and IDIS head-ends follow. Before
any frame that consumed counters leaves, on_invocation_counter(next_unused) is called so the
caller can persist it: a crash can then skip counters but never reuse one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

from gurux_dlms import GXByteBuffer, GXDLMSException, GXReplyData
from gurux_dlms.enums import (
    Authentication,
    DataType,
    InterfaceType,
    ObjectType,
    Security,
)
from gurux_dlms.objects import GXDLMSObject, GXDLMSProfileGeneric
from gurux_dlms.secure import GXDLMSSecureClient

from app.comms import gx
from app.comms.cosem import (
    UTC,
    decode_datetime,
    encode_datetime,
    normalise_obis,
    to_python,
    unit_symbol,
)
from app.comms.framing import (
    HDLC,
    WRAPPER,
    ConnectionClosed,
    FrameError,
    FrameTimeout,
    SocketStream,
    hdlc_server_address,
    parse_hdlc,
)
from app.comms.heartbeat import parse_heartbeat

log = logging.getLogger(__name__)


CLOCK_OBIS = "0.0.1.0.0.255"
INVOCATION_COUNTER_OBIS = "0.0.43.1.0.255"
PUBLIC_CLIENT = 16
AUTH_NAMES = {
    "none": Authentication.NONE, "low": Authentication.LOW, "high_md5": Authentication.HIGH_MD5,
    "high_sha1": Authentication.HIGH_SHA1, "high_gmac": Authentication.HIGH_GMAC,
    "high_gmac_plain": Authentication.HIGH_GMAC, "high_sha256": Authentication.HIGH_SHA256,
}
# Mechanisms whose challenge answer uses the block cipher and authentication keys (and a counter).
GMAC_AUTH = ("high_gmac", "high_gmac_plain")
# Mechanisms whose secret is a shared HLS secret (the "password" field), never sent on the wire.
HLS_SECRET_AUTH = ("high_md5", "high_sha1", "high_sha256")
HLS_AUTH = GMAC_AUTH + HLS_SECRET_AUTH
RELEASE_WAIT = 3.0

DATA_ACCESS_RESULTS = {
    0: "success", 1: "hardware fault", 2: "temporary failure", 3: "access denied (read/write denied)",
    4: "object undefined", 9: "object class inconsistent", 11: "object unavailable",
    12: "type unmatched", 13: "scope of access violated", 14: "data block unavailable",
    15: "long get aborted", 16: "no long get in progress", 17: "long set aborted",
    18: "no long set in progress", 19: "data block number invalid", 250: "other reason",
}
ACSE_DIAGNOSTICS = {
    1: "no reason given", 2: "application context name not supported", 11: "authentication mechanism not recognised",
    12: "authentication mechanism required", 13: "authentication failure", 14: "authentication required",
}


class DlmsError(Exception):
    """The meter answered with a DLMS error (data-access-result, action-result or exception)."""

    def __init__(self, code: int, message: str) -> None:
        """Keep the numeric code and a readable message."""
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.message = message


class AuthenticationError(DlmsError):
    """The association was refused: wrong password/keys, unknown client or mechanism."""


class ResponseTimeout(FrameTimeout):
    """The meter did not answer within response_timeout."""


@dataclass(frozen=True)
class SessionParams:
    """How to talk to one meter."""

    interface: str = WRAPPER
    client_address: int = PUBLIC_CLIENT
    server_address: int = 1
    logical_address: int | None = None
    physical_address: int | None = None
    auth: str = "none"
    password: bytes = b""
    system_title: bytes = b"HESCORE0"
    block_cipher_key: bytes = b""
    authentication_key: bytes = b""
    invocation_counter: int = 0
    response_timeout: float = 30.0
    max_pdu: int = 0xFFFF
    sync_invocation_counter: bool = True

    def __post_init__(self) -> None:
        """Reject inconsistent settings early with a clear message."""
        if self.interface not in (WRAPPER, HDLC):
            raise ValueError(f"interface must be 'wrapper' or 'hdlc', not {self.interface!r}")
        if self.auth not in AUTH_NAMES:
            raise ValueError(f"auth must be one of {', '.join(AUTH_NAMES)}, not {self.auth!r}")
        if self.auth in GMAC_AUTH or self.auth == "high_sha256":
            if len(self.system_title) != 8:
                raise ValueError(f"system_title must be 8 bytes for {self.auth}")
        if self.auth in GMAC_AUTH:
            if len(self.block_cipher_key) != 16 or len(self.authentication_key) != 16:
                raise ValueError(f"block_cipher_key and authentication_key must be 16 bytes for {self.auth}")
        if self.auth in HLS_SECRET_AUTH and not self.password:
            raise ValueError(f"{self.auth} needs the meter's HLS secret (set as its password)")

    @property
    def ciphered(self) -> bool:
        """True when APDUs are ciphered (authenticated encryption with the global key)."""
        return self.auth == "high_gmac"

    def with_timeout(self, response_timeout: float) -> SessionParams:
        """The same parameters with another response timeout."""
        return dataclasses.replace(self, response_timeout=response_timeout)


class _RawValueObject(GXDLMSObject):
    """A COSEM object reference whose attribute value is pre-encoded A-XDR (for gurux write)."""

    def __init__(self, class_id: int, obis: str, raw: bytes) -> None:
        super().__init__(ObjectType.NONE, normalise_obis(obis))
        self.objectType = class_id
        self.raw = raw

    def getValue(self, settings: Any, e: Any) -> bytes:
        return self.raw

    def getDataType(self, index: int) -> int:
        # gurux copies ARRAY/STRUCTURE byte values verbatim, which carries our own encoding.
        return DataType.STRUCTURE


def encode_typed(value: Any, datatype_name: str | None = None) -> bytes:
    """A-XDR encode a value (through gurux), with an explicit DLMS type name (e.g. 'uint32') or guessed."""
    if isinstance(value, dt.datetime):
        value = encode_datetime(value)
        datatype_name = datatype_name or "octet_string"
    return gx.encode(value, datatype_name)


@dataclass
class ObjectCache:
    """Per-meter knowledge that rarely changes: register scaler/units and profile capture objects."""

    scalers: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    captures: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


class DlmsSession:
    """One DLMS association with a meter over an already connected SocketStream."""

    def __init__(self, stream: SocketStream, params: SessionParams,
                 on_invocation_counter: Callable[[int], None] | None = None,
                 on_unsolicited: Callable[[bytes], None] | None = None,
                 object_cache: ObjectCache | None = None) -> None:
        """Prepare a session; nothing is sent until associate().

        ``object_cache`` carries scaler/units and profile capture objects from earlier sessions with
        the same meter, so a read does not ask for them again every time.
        """
        self.stream = stream
        self.params = params
        self.on_invocation_counter = on_invocation_counter
        self.on_unsolicited = on_unsolicited
        self.invocation_counter = params.invocation_counter
        self.client = self._make_client(params.client_address, params.auth)
        self.associated = False
        cache = object_cache if object_cache is not None else ObjectCache()
        self._scalers: dict[tuple[str, int], tuple[int, int]] = cache.scalers
        self._captures: dict[str, list[dict[str, Any]]] = cache.captures
        stream.timeout = params.response_timeout

    # ----- plumbing -------------------------------------------------------------------------

    def _make_client(self, client_address: int, auth: str) -> GXDLMSSecureClient:
        p = self.params
        interface = InterfaceType.WRAPPER if p.interface == WRAPPER else InterfaceType.HDLC
        if p.interface == HDLC and p.logical_address is not None:
            server, size = hdlc_server_address(p.logical_address, p.physical_address)
        else:
            server, size = p.server_address, 1 if p.server_address < 0x80 else 2
        secret = bytes(p.password) if auth == "low" or auth in HLS_SECRET_AUTH else None
        client = GXDLMSSecureClient(True, client_address, server, AUTH_NAMES[auth], secret, interface)
        if p.interface == HDLC:
            client.setServerAddressSize(size)
        client.setMaxReceivePDUSize(p.max_pdu)
        if auth in GMAC_AUTH or auth == "high_sha256":
            client.ciphering.security = Security.AUTHENTICATION_ENCRYPTION if auth == "high_gmac" else Security.NONE
            client.ciphering.systemTitle = bytes(p.system_title)
        if auth in GMAC_AUTH:
            client.ciphering.blockCipherKey = bytes(p.block_cipher_key)
            client.ciphering.authenticationKey = bytes(p.authentication_key)
            client.ciphering.invocationCounter = self.invocation_counter
        return client

    def _note_counter(self, client: GXDLMSSecureClient) -> None:
        if client.authentication != Authentication.HIGH_GMAC:
            return  # only GMAC consumes invocation counters
        used = int(client.ciphering.invocationCounter)
        if used > self.invocation_counter:
            self.invocation_counter = used
            if self.on_invocation_counter is not None:
                self.on_invocation_counter(used)

    def _recv(self) -> bytes:
        while True:
            try:
                frame = self.stream.recv_frame()
            except FrameTimeout as exc:
                raise ResponseTimeout(f"no answer within {self.params.response_timeout:g} s") from exc
            if self._unsolicited(frame):
                if self.on_unsolicited is not None:
                    self.on_unsolicited(frame)
                continue
            return frame

    def _unsolicited(self, frame: bytes) -> bool:
        """Heartbeats and pushes that arrive while we wait for a reply are not the reply."""
        if self.stream.interface == WRAPPER:
            # Data-Notification and Event-Notification APDUs are never replies to our requests.
            return frame[8:9] in (b"\x0f", b"\xc2") or parse_heartbeat(frame, first=False) is not None
        try:
            parsed = parse_hdlc(frame)
        except FrameError:
            return False
        return parsed.control & 0xEF == 0x03  # UI frames carry pushes

    def _exchange(self, frames: Any, client: GXDLMSSecureClient | None = None) -> GXReplyData:
        """Send request frame(s) and collect the complete reply, following blocks and segments."""
        client = client or self.client
        if isinstance(frames, (bytes, bytearray)):
            frames = [frames]
        self._note_counter(client)
        reply = GXReplyData()
        for frame in frames:
            reply = GXReplyData()
            self._roundtrip(client, bytes(frame), reply)
        while reply.isMoreData():
            next_frame = client.receiverReady(reply)
            self._note_counter(client)
            self._roundtrip(client, bytes(next_frame), reply)
        return reply

    def _roundtrip(self, client: GXDLMSSecureClient, frame: bytes, reply: GXReplyData) -> None:
        self.stream.send(frame)
        while True:
            data = self._recv()
            notify = GXReplyData()
            try:
                complete = client.getData(GXByteBuffer(data), reply, notify)
            except GXDLMSException as exc:
                raise self._error(getattr(exc, "errorCode", 250), str(exc)) from exc
            except (ValueError, TypeError, IndexError, KeyError) as exc:
                raise DlmsError(250, f"unexpected reply from meter: {exc}") from exc
            except Exception as exc:  # gurux raises bare Exception for exception-responses
                raise DlmsError(250, str(exc) or exc.__class__.__name__) from exc
            if complete:
                break
        if reply.error:
            raise self._error(reply.error, DATA_ACCESS_RESULTS.get(reply.error, "error"))

    @staticmethod
    def _error(code: Any, text: str) -> DlmsError:
        try:
            number = int(code)
        except (TypeError, ValueError):
            number = 250
        return DlmsError(number, DATA_ACCESS_RESULTS.get(number, text))

    # ----- association ------------------------------------------------------------------------

    def _connect(self, client: GXDLMSSecureClient) -> None:
        if self.params.interface == HDLC:
            reply = self._exchange(client.snrmRequest(), client)
            client.parseUAResponse(reply.data)
        try:
            reply = self._exchange(client.aarqRequest(), client)
            client.parseAareResponse(reply.data)
        except GXDLMSException as exc:
            diagnostic = int(getattr(exc, "diagnostic", 1) or 1)
            raise AuthenticationError(diagnostic, "association refused: "
                                      + ACSE_DIAGNOSTICS.get(diagnostic, str(exc).strip())) from exc
        except DlmsError as exc:
            raise AuthenticationError(exc.code, f"association refused: {exc.message}") from exc
        if client.getIsAuthenticationRequired():
            try:
                reply = self._exchange(client.getApplicationAssociationRequest(), client)
                client.parseApplicationAssociationResponse(reply.data)
            except (DlmsError, GXDLMSException, ValueError) as exc:
                raise AuthenticationError(13, "HLS authentication failed: wrong keys or invocation counter") from exc

    def _sync_invocation_counter(self) -> None:
        public = self._make_client(PUBLIC_CLIENT, "none")
        self._connect(public)
        try:
            reply = self._exchange(public.read(self._object(1, INVOCATION_COUNTER_OBIS), 2), public)
            meter_counter = int(to_python(reply.value) or 0)
        finally:
            self._disconnect(public)
        if meter_counter + 1 > self.invocation_counter:
            log.info("invocation counter moved forward from %s to %s as the meter reported",
                     self.invocation_counter, meter_counter + 1)
            self.invocation_counter = meter_counter + 1
            if self.on_invocation_counter is not None:
                self.on_invocation_counter(self.invocation_counter)
        self.client.ciphering.invocationCounter = self.invocation_counter

    def associate(self) -> None:
        """Open the association (SNRM/UA for HDLC, AARQ/AARE, HLS-GMAC pass 3/4)."""
        if self.params.auth in GMAC_AUTH and self.params.sync_invocation_counter:
            self._sync_invocation_counter()
        self._connect(self.client)
        self.associated = True

    def _disconnect(self, client: GXDLMSSecureClient) -> None:
        wait = min(self.params.response_timeout, RELEASE_WAIT)
        saved = self.stream.timeout
        self.stream.timeout = wait
        try:
            for request in (client.releaseRequest(),) + ((client.disconnectRequest(),)
                                                         if self.params.interface == HDLC else ()):
                if not request:
                    continue
                try:
                    self._note_counter(client)
                    for frame in request if isinstance(request, list) else [request]:
                        self.stream.send(bytes(frame))
                        self._recv()
                except (ResponseTimeout, DlmsError, FrameError, GXDLMSException):
                    log.debug("meter did not answer release; treating the association as closed")
        except (ConnectionClosed, OSError):
            log.debug("connection closed during release")
        finally:
            self.stream.timeout = saved

    def release(self) -> None:
        """Release the association; meters that do not answer release are tolerated."""
        if self.associated:
            self.associated = False
            self._disconnect(self.client)

    def __enter__(self) -> Self:
        """Associate on entry."""
        self.associate()
        return self

    def __exit__(self, *exc: object) -> None:
        """Release on exit."""
        self.release()

    # ----- services --------------------------------------------------------------------------

    @staticmethod
    def _object(class_id: int, obis: str) -> GXDLMSObject:
        item = GXDLMSObject(ObjectType.NONE, normalise_obis(obis))
        item.objectType = int(class_id)
        return item

    def get_raw(self, obis: str, class_id: int, attribute: int) -> Any:
        """Read an attribute and return gurux's parsed value (no conversion)."""
        reply = self._exchange(self.client.read(self._object(class_id, obis), attribute))
        return reply.value

    def get(self, obis: str, class_id: int, attribute: int) -> Any:
        """Read an attribute as plain Python (ints, bytes, str, lists)."""
        return to_python(self.get_raw(obis, class_id, attribute))

    def scaler_unit(self, obis: str, class_id: int = 3) -> tuple[int, int]:
        """(scaler, unit enum) of a register, cached for the session."""
        key = (normalise_obis(obis), class_id)
        if key not in self._scalers:
            value = self.get(obis, class_id, 3)
            if not (isinstance(value, list) and len(value) == 2):
                raise DlmsError(12, f"scaler_unit of {key[0]} is not a structure")
            self._scalers[key] = (int(value[0]), int(value[1]))
        return self._scalers[key]

    def read_register(self, obis: str, class_id: int = 3) -> tuple[int | float, str]:
        """Read a register's value scaled by its scaler, with the unit symbol."""
        scaler, unit = self.scaler_unit(obis, class_id)
        raw = self.get(obis, class_id, 2)
        return scale(raw, scaler), unit_symbol(unit)

    def read_clock(self) -> dt.datetime:
        """Read the meter clock as a tz-aware UTC datetime."""
        raw = self.get(CLOCK_OBIS, 8, 2)
        when = decode_datetime(raw) if isinstance(raw, bytes) else None
        if when is None:
            raise DlmsError(12, f"meter clock is not a valid date-time: {raw!r}")
        return when

    def set_clock(self, when: dt.datetime, deviation_minutes: int | None = None) -> int:
        """Set the meter clock; by default the local time is sent with the meter's own deviation."""
        if deviation_minutes is None:
            zone = self.get(CLOCK_OBIS, 8, 3)
            deviation_minutes = zone if isinstance(zone, int) and -720 <= zone <= 720 else 0
        raw = encode_datetime(when.astimezone(UTC), deviation_minutes)
        return self.set(CLOCK_OBIS, 8, 2, raw, "octet_string")

    def set(self, obis: str, class_id: int, attribute: int, value: Any, datatype_name: str | None = None) -> int:
        """Write an attribute; returns 0 on success, raises DlmsError otherwise."""
        item = _RawValueObject(class_id, obis, encode_typed(value, datatype_name))
        self._exchange(self.client.write(item, attribute))
        return 0

    def action(self, obis: str, class_id: int, method: int, value: Any = None,
               datatype_name: str | None = None) -> int:
        """Invoke a method (no value sends integer 0); returns the action result code (0 = success)."""
        raw = encode_typed(gx.Typed("int8", 0) if value is None else value, datatype_name)
        try:
            self._exchange(self.client.method(self._object(class_id, obis), method, raw, DataType.STRUCTURE))
        except DlmsError as exc:
            return exc.code
        return 0

    def read_capture_objects(self, obis: str) -> list[dict[str, Any]]:
        """Capture objects of a profile: [{'class_id', 'obis', 'attribute', 'data_index'}]."""
        key = normalise_obis(obis)
        if key not in self._captures:
            columns = []
            for entry in self.get(obis, 7, 3) or []:
                class_id, ln, attribute, data_index = entry
                columns.append({"class_id": int(class_id), "obis": normalise_obis(bytes(ln)),
                                "attribute": int(attribute), "data_index": int(data_index)})
            self._captures[key] = columns
        return self._captures[key]

    def _profile_object(self, obis: str) -> GXDLMSProfileGeneric:
        profile = GXDLMSProfileGeneric(normalise_obis(obis))
        for column in self.read_capture_objects(obis):
            target = self._object(column["class_id"], column["obis"])
            profile.addCaptureObject(target, column["attribute"], column["data_index"])
        return profile

    def _rows(self, columns: list[dict[str, Any]], raw_rows: Any) -> list[list[Any]]:
        rows = []
        for raw in raw_rows or []:
            row = to_python(raw)
            for i, column in enumerate(columns[:len(row)]):
                if isinstance(row[i], bytes) and len(row[i]) == 12 and (
                        column["class_id"] == 8 or column["obis"].startswith("0.0.1.0.0.")):
                    row[i] = decode_datetime(row[i])
            rows.append(row)
        return rows

    def read_profile(self, obis: str, start: dt.datetime | None = None,
                     end: dt.datetime | None = None) -> tuple[list[dict[str, Any]], list[list[Any]]]:
        """Read a profile buffer, by clock range when start/end are given; timestamps tz-aware UTC."""
        profile = self._profile_object(obis)
        columns = self.read_capture_objects(obis)
        if start is None and end is None:
            raw = self.get_raw(obis, 7, 2)
        else:
            start = (start or dt.datetime(2000, 1, 1, tzinfo=UTC)).astimezone(UTC)
            end = (end or dt.datetime.now(UTC) + dt.timedelta(days=1)).astimezone(UTC)
            profile.sortObject = self._object(8, CLOCK_OBIS)
            reply = self._exchange(self.client.readRowsByRange(profile, start, end))
            raw = reply.value
        return columns, self._rows(columns, raw)

    def read_entries(self, obis: str, first: int = 1, count: int = 0) -> tuple[list[dict[str, Any]], list[list[Any]]]:
        """Read profile entries first..first+count-1 (1-based; count 0 = to the end)."""
        profile = self._profile_object(obis)
        columns = self.read_capture_objects(obis)
        reply = self._exchange(self.client.readRowsByEntry(profile, first, count))
        return columns, self._rows(columns, reply.value)


def scale(raw: Any, scaler: int) -> int | float:
    """Apply a DLMS scaler: ints stay ints for scaler >= 0, otherwise a rounded float."""
    if not isinstance(raw, (int, float)) or isinstance(raw, bool):
        raise DlmsError(12, f"register value {raw!r} is not numeric")
    if scaler >= 0:
        return raw * 10 ** scaler
    return round(raw * 10.0 ** scaler, -scaler)

