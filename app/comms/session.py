"""A DLMS/COSEM client session over one socket stream, built on gurux's sans-IO GXDLMSSecureClient.

gurux builds and parses the frames; the session moves bytes through a SocketStream, follows
multi-block (get-response-with-datablock, or general block transfer where the meter grants it) and
segmented replies, and turns results into plain Python values and exceptions.

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

from gurux_dlms import GXByteBuffer, GXDLMSConfirmedServiceError, GXDLMSException, GXReplyData
from gurux_dlms.enums import (
    Authentication,
    Conformance,
    DataType,
    InterfaceType,
    ObjectType,
    RequestTypes,
    Security,
)
from gurux_dlms.objects import GXDLMSObject, GXDLMSProfileGeneric
from gurux_dlms.secure import GXDLMSSecureClient

from app.comms import errors, gx, trace
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
    WrongFraming,
    framing_of,
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

DATA_ACCESS_RESULTS = errors.DATA_ACCESS_RESULTS


class DlmsError(Exception):
    """The meter answered with a DLMS error (data-access-result, action-result or exception)."""

    def __init__(self, code: int, message: str, kind: str = "data-access") -> None:
        """Keep the numeric code, a readable message, and which kind of DLMS answer it was."""
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.message = message
        self.kind = kind


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
    """Per-meter knowledge that rarely changes: register scaler/units, profile capture objects, how each
    profile must be read (``profile_methods``: OBIS -> "range" or "entry"), and whether the meter answers
    GET-WITH-LIST (``with_list``: None until a meter that grants multiple references has been asked)."""

    scalers: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    captures: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    profile_methods: dict[str, str] = field(default_factory=dict)
    with_list: bool | None = None


class ProfileReadError(DlmsError):
    """A profile read came back empty (or unusable) while the meter holds entries in the window."""


@dataclass
class ProfileRead:
    """Rows of a profile read and how they were read ("range", "entry" or "all").

    Unpacks as ``columns, rows`` for callers that need only those."""

    columns: list[dict[str, Any]]
    rows: list[list[Any]]
    method: str
    entries_in_use: int | None = None
    notes: list[str] = field(default_factory=list)

    def __iter__(self):
        """``columns, rows = session.read_profile(...)``."""
        return iter((self.columns, self.rows))

    def __getitem__(self, index: int) -> Any:
        """``read[0]`` is the columns, ``read[1]`` the rows (as when this was a pair)."""
        return (self.columns, self.rows)[index]


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
        self._cache = cache
        self._scalers: dict[tuple[str, int], tuple[int, int]] = cache.scalers
        self._captures: dict[str, list[dict[str, Any]]] = cache.captures
        self._methods: dict[str, str] = cache.profile_methods
        self._periods: dict[str, int] = {}
        stream.timeout = params.response_timeout
        self.trace = trace.CURRENT.get()
        if self.trace is not None:
            self.trace.params = params

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
        # Long replies: block transfer with get always; general block transfer where the meter grants it.
        client.proposedConformance |= Conformance.GENERAL_BLOCK_TRANSFER
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
            if self.trace is not None:
                self.trace.add("rx", frame)
            seen = framing_of(frame)
            if seen is not None and seen != self.params.interface:
                raise WrongFraming(self.params.interface, seen)
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
            gbt = reply.moreData == RequestTypes.GBT
            if gbt:  # gurux numbers its GBT acknowledgement from a field it never sets: our block number
                client.settings.blockNumber = client.settings.blockIndex
            next_frame = client.receiverReady(reply)
            self._note_counter(client)
            self._roundtrip(client, bytes(next_frame), reply)
        return reply

    def _send(self, frame: bytes) -> None:
        if self.trace is not None:
            self.trace.add("tx", frame)
        self.stream.send(frame)

    def _roundtrip(self, client: GXDLMSSecureClient, frame: bytes, reply: GXReplyData) -> None:
        self._send(frame)
        while True:
            data = self._recv()
            notify = GXReplyData()
            try:
                complete = client.getData(GXByteBuffer(data), reply, notify)
            except gx.CipheringError as exc:
                raise DlmsError(250, f"reply refused: {exc}") from exc
            except (ValueError, TypeError, IndexError, KeyError) as exc:
                # gurux cannot hold most confirmed-service-errors (its ServiceError enum lacks their choices)
                raise self._confirmed_service_error(data) or DlmsError(
                    250, f"unexpected reply from meter: {exc}") from exc
            except Exception as exc:  # exception-responses, confirmed-service-errors, data-access results
                raise self._error(exc) from exc
            if complete:
                break
        if reply.error:
            raise DlmsError(int(reply.error), errors.data_access_sentence(int(reply.error)))

    def _confirmed_service_error(self, frame: bytes) -> DlmsError | None:
        """A confirmed-service-error reply (0E service choice value) read from the frame, in words."""
        try:
            apdu = frame[8:] if self.params.interface == WRAPPER else parse_hdlc(frame).info[3:]
        except FrameError:
            return None
        if len(apdu) < 4 or apdu[0] != 0x0E:
            return None
        service, choice, value = apdu[1:4]
        return DlmsError(value, errors.confirmed_service_error_sentence(service, choice, value),
                         "confirmed-service-error")

    @staticmethod
    def _error(exc: BaseException) -> DlmsError:
        """A gurux exception as a DlmsError in the standard's words (see app.comms.errors)."""
        code, kind, sentence = errors.explain(exc)
        return (AuthenticationError if kind == "association" else DlmsError)(code, sentence, kind)

    # ----- association ------------------------------------------------------------------------

    def _connect(self, client: GXDLMSSecureClient) -> None:
        if self.params.interface == HDLC:
            reply = self._exchange(client.snrmRequest(), client)
            client.parseUAResponse(reply.data)
        reply = None
        try:
            reply = self._exchange(client.aarqRequest(), client)
            client.parseAareResponse(reply.data)
        except (GXDLMSException, GXDLMSConfirmedServiceError) as exc:
            code, kind, sentence = errors.explain(exc)
            refused = errors.aare_service_error(bytes(reply.data.array())) if reply is not None else None
            if refused and refused not in sentence:
                sentence = f"{sentence}; {refused}"
            raise AuthenticationError(code, sentence, kind) from exc
        except AuthenticationError:
            raise
        except DlmsError as exc:
            raise AuthenticationError(exc.code, f"association refused: {exc.message}") from exc
        if client.getIsAuthenticationRequired():
            try:
                reply = self._exchange(client.getApplicationAssociationRequest(), client)
            except DlmsError as exc:
                raise AuthenticationError(13, "HLS authentication failed: the meter rejected the HES's answer to "
                                              f"its challenge (wrong HLS secret or keys): {exc.message}") from exc
            try:
                client.parseApplicationAssociationResponse(reply.data)
            except Exception as exc:  # gurux raises a bare Exception when the meter's answer does not match
                raise AuthenticationError(13, "HLS authentication failed: the meter's answer to the HES's challenge "
                                              "is wrong (not the meter it claims to be, or its keys differ)") from exc

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
        """Open the association (SNRM/UA for HDLC, AARQ/AARE, HLS pass 3/4).

        A meter that stays silent is asked once in the other framing: one that answers there is set
        to the other framing, and WrongFraming says so instead of a bare timeout."""
        try:
            if self.params.auth in GMAC_AUTH and self.params.sync_invocation_counter:
                self._sync_invocation_counter()
            self._connect(self.client)
        except ResponseTimeout as exc:
            self._diagnose_silence(exc)
            raise
        self.associated = True

    def _diagnose_silence(self, timeout: ResponseTimeout) -> None:
        """Send the other framing's opening frame; raise WrongFraming if the meter answers it."""
        other = HDLC if self.params.interface == WRAPPER else WRAPPER
        probe = GXDLMSSecureClient(True, PUBLIC_CLIENT, 1, Authentication.NONE, None,
                                   InterfaceType.HDLC if other == HDLC else InterfaceType.WRAPPER)
        frame = probe.snrmRequest() if other == HDLC else probe.aarqRequest()[0]
        wait = min(3.0, self.params.response_timeout)
        try:
            self.stream.send(bytes(frame))
            receive = getattr(self.stream, "recv_frame_as", None)
            answer = receive(other, wait) if receive is not None else self.stream.recv_frame(wait)
        except (FrameTimeout, FrameError, ConnectionClosed, OSError):
            answer = b""
        if framing_of(answer) == other:
            raise WrongFraming(self.params.interface, other) from timeout

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
                        self._send(bytes(frame))
                        self._recv()
                except (ResponseTimeout, DlmsError, FrameError, GXDLMSException):
                    log.debug("meter did not answer release; treating the association as closed")
        except (ConnectionClosed, OSError):
            log.debug("connection closed during release")
        finally:
            self.stream.timeout = saved

    @property
    def server_system_title(self) -> bytes | None:
        """The meter's system title as its AARE gave it (HLS GMAC / SHA-256 and ciphered associations)."""
        title = getattr(self.client.settings, "sourceSystemTitle", None)
        return bytes(title) if title and len(title) == 8 else None

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

    def get_typed(self, obis: str, class_id: int, attribute: int) -> tuple[Any, int | None]:
        """Read an attribute as plain Python with the DLMS data type tag the meter sent it with."""
        reply = self._exchange(self.client.read(self._object(class_id, obis), attribute))
        tag = getattr(reply, "valueType", None)
        return to_python(reply.value), (int(tag) if tag is not None else None)

    def get(self, obis: str, class_id: int, attribute: int) -> Any:
        """Read an attribute as plain Python (ints, bytes, str, lists)."""
        return to_python(self.get_raw(obis, class_id, attribute))

    @property
    def with_list(self) -> bool:
        """True when several attributes may be asked in one GET-WITH-LIST: the meter granted multiple
        references and has not refused such a request before."""
        granted = bool(self.client.negotiatedConformance & Conformance.MULTIPLE_REFERENCES)
        return granted and self._cache.with_list is not False

    def get_many(self, items: list[tuple[str, int, int]]) -> list[Any]:
        """Read several (obis, class_id, attribute) as plain Python, in order; an attribute the meter refuses is
        its DlmsError in the list. One GET-WITH-LIST per ``WITH_LIST_MAX`` attributes where the meter supports
        it; otherwise, or when the meter refuses the list (remembered for the meter), one GET each."""
        if len(items) > 1 and self.with_list:
            try:
                values: list[Any] = []
                for start in range(0, len(items), WITH_LIST_MAX):
                    values += self._get_with_list(items[start:start + WITH_LIST_MAX])
                return values
            except (ResponseTimeout, AuthenticationError, WrongFraming):
                raise
            except DlmsError as exc:
                if exc.kind != "data-access":  # the request itself was refused, not one attribute of it
                    log.info("meter refused GET-WITH-LIST (%s): one GET per attribute from now on", exc.message)
                    self._cache.with_list = False
        results: list[Any] = []
        for obis, class_id, attribute in items:
            try:
                results.append(self.get(obis, class_id, attribute))
            except (ResponseTimeout, AuthenticationError, WrongFraming):
                raise
            except DlmsError as exc:
                results.append(exc)
        return results

    def _get_with_list(self, items: list[tuple[str, int, int]]) -> list[Any]:
        request = self.client.readList([(self._object(class_id, obis), attribute)
                                        for obis, class_id, attribute in items])
        if len(request) != 1:
            raise DlmsError(250, "GET-WITH-LIST does not fit one request", "client")
        reply = self._exchange(request[0])
        values = reply.value
        if not isinstance(values, list) or len(values) != len(items):
            raise DlmsError(250, f"GET-WITH-LIST answered {values!r} for {len(items)} attributes", "with-list")
        self._cache.with_list = True
        return [to_python(value) for value in values]

    def remember_scaler(self, obis: str, class_id: int, value: Any) -> tuple[int, int]:
        """Keep a register's scaler_unit structure read by ``get_many`` (as ``scaler_unit`` would)."""
        if not (isinstance(value, list) and len(value) == 2):
            raise DlmsError(12, f"scaler_unit of {normalise_obis(obis)} is not a structure")
        key = (normalise_obis(obis), class_id)
        self._scalers[key] = (int(value[0]), int(value[1]))
        return self._scalers[key]

    def cached_scaler(self, obis: str, class_id: int) -> tuple[int, int] | None:
        """A register's (scaler, unit) when already known for this meter."""
        return self._scalers.get((normalise_obis(obis), class_id))

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
        """gurux rows as plain Python, each cell converted once by its column's converter (the clock column's
        octet strings become UTC datetimes)."""
        convert = [_clock_cell if _is_clock(column) else _plain_cell for column in columns]
        width = len(convert)
        rows = []
        for raw in raw_rows or []:
            if not isinstance(raw, list | tuple):
                raw = [raw]
            rows.append([convert[i](value) if i < width else to_python(value) for i, value in enumerate(raw)])
        return rows

    def read_profile(self, obis: str, start: dt.datetime | None = None,
                     end: dt.datetime | None = None) -> ProfileRead:
        """Read a profile buffer, whole or for the window start..end; timestamps tz-aware UTC.

        Reads by range (selective access 1) where the meter does that right; when a range read is
        refused, answers nothing while the meter holds entries, or answers rows outside the window,
        reads by entry (selective access 2) using entries in use and capture period, and remembers
        for this meter (``ObjectCache.profile_methods``) that this profile is read by entry.
        Raises ProfileReadError when the meter holds entries in the window but answers none.
        """
        columns = self.read_capture_objects(obis)
        if start is None and end is None:
            return ProfileRead(columns, self._rows(columns, self.get_raw(obis, 7, 2)), "all")
        start = (start or dt.datetime(2000, 1, 1, tzinfo=UTC)).astimezone(UTC)
        end = (end or dt.datetime.now(UTC) + dt.timedelta(days=1)).astimezone(UTC)
        key = normalise_obis(obis)
        notes: list[str] = []
        range_rows: list[list[Any]] | None = None
        if self._methods.get(key) != "entry":
            try:
                range_rows = self._read_range(obis, columns, start, end)
            except (ResponseTimeout, AuthenticationError, WrongFraming):
                raise
            except DlmsError as exc:
                notes.append(f"range read refused: {exc.message}")
            else:
                outside = [row for row in range_rows if not _in_window(row, columns, start, end)]
                if range_rows and not outside:
                    return ProfileRead(columns, range_rows, "range", notes=notes)
                if outside:
                    notes.append(f"range read answered {len(outside)} of {len(range_rows)} rows outside the window")
        entries = self.entries_in_use(obis)
        if entries == 0:
            return ProfileRead(columns, [], "range" if range_rows is not None else "entry", 0, notes)
        if range_rows == []:
            notes.append(f"range read answered no rows while the meter holds {entries} entries")
        try:
            rows = self._read_window_by_entry(obis, columns, start, end, entries)
        except (ResponseTimeout, AuthenticationError, WrongFraming):
            raise
        except DlmsError as exc:
            notes.append(f"entry read refused: {exc.message}")
            rows = None
        if rows:
            if self._methods.get(key) != "entry":
                log.info("profile %s: read by entry from now on (%s)", key, "; ".join(notes) or "range read empty")
            self._methods[key] = "entry"
            return ProfileRead(columns, rows, "entry", entries, notes)
        expected = self._expects_rows(obis, entries, start, end)
        if expected:
            raise ProfileReadError(250, f"profile {key}: the meter holds {entries} entries ({expected}) but answered "
                                        f"none for {start.isoformat()} .. {end.isoformat()}"
                                        + (f"; {'; '.join(notes)}" if notes else ""), "profile")
        return ProfileRead(columns, [], "entry" if rows is not None else "range", entries, notes)

    def _read_range(self, obis: str, columns: list[dict[str, Any]], start: dt.datetime,
                    end: dt.datetime) -> list[list[Any]]:
        profile = self._profile_object(obis)
        profile.sortObject = self._object(8, CLOCK_OBIS)
        reply = self._exchange(self.client.readRowsByRange(profile, start, end))
        return self._rows(columns, reply.value)

    def read_since_entry(self, obis: str, last_entry: int | None, start: dt.datetime) -> ProfileRead | None:
        """Every entry after ``last_entry`` (1-based; None: from about the entry of ``start`` on, or all
        entries of a log), whatever its timestamp, so rows a wrong clock stamped far off are read too;
        ``entries_in_use`` is the newest entry read. None when entry numbers cannot be trusted: the
        buffer is full (it wraps, numbers shift) or holds fewer entries than already read (cleared)."""
        entries = self.entries_in_use(obis)
        capacity = self.get(obis, 7, 8)
        if isinstance(capacity, int) and 0 < capacity <= entries or (last_entry or 0) > entries:
            return None
        columns = self.read_capture_objects(obis)
        if last_entry is not None:
            first = last_entry + 1
        else:  # a periodic profile: from about the entry of ``start``; otherwise every entry
            period = self.capture_period(obis)
            back = int((dt.datetime.now(UTC) - start).total_seconds() // period) + 2 if period > 0 else entries
            first = max(1, entries - back + 1)
        if first > entries:
            return ProfileRead(columns, [], "entry", entries)
        return ProfileRead(columns, self.read_entries(obis, first, entries - first + 1).rows, "entry", entries)

    def entries_in_use(self, obis: str) -> int:
        """How many entries the profile holds now (attribute 7)."""
        value = self.get(obis, 7, 7)
        return int(value) if isinstance(value, int) and not isinstance(value, bool) else 0

    def capture_period(self, obis: str) -> int:
        """Seconds between captures (attribute 4); 0 for asynchronous profiles such as event logs."""
        key = normalise_obis(obis)
        if key not in self._periods:
            value = self.get(obis, 7, 4)
            self._periods[key] = int(value) if isinstance(value, int) and not isinstance(value, bool) else 0
        return self._periods[key]

    def _read_window_by_entry(self, obis: str, columns: list[dict[str, Any]], start: dt.datetime,
                              end: dt.datetime, entries: int) -> list[list[Any]]:
        """Rows of the window, read by entry: from the newest entry back until the window's start."""
        clock = _clock_index(columns)
        newest = self.read_entries(obis, entries, 1).rows
        newest_ts = newest[-1][clock] if newest and clock is not None else None
        period = self.capture_period(obis)
        if isinstance(newest_ts, dt.datetime) and period > 0:
            # A periodic profile: jump straight to the entry of the window's start (with a margin).
            back = int((newest_ts - start).total_seconds() // period) + 2
            first = max(1, entries - back)
        else:
            first = max(1, entries - ENTRY_CHUNK + 1)
        last = entries
        rows: list[list[Any]] = []
        while True:
            chunk = self.read_entries(obis, first, last - first + 1).rows
            rows = chunk + rows
            oldest = next((row[clock] for row in chunk if clock is not None and isinstance(row[clock], dt.datetime)),
                          None)
            if first <= 1 or oldest is None or oldest <= start:
                break
            last, first = first - 1, max(1, first - ENTRY_CHUNK)
        return [row for row in rows if _in_window(row, columns, start, end)]

    def _expects_rows(self, obis: str, entries: int, start: dt.datetime, end: dt.datetime) -> str | None:
        """Why the window should hold rows (a periodic profile whose buffer spans it), else None."""
        period = self.capture_period(obis)
        if period <= 0:
            return None
        now = dt.datetime.now(UTC)
        oldest = now - dt.timedelta(seconds=period * entries)
        if end < oldest or start > now:
            return None
        return f"one every {period} s, about {oldest:%Y-%m-%d %H:%M} .. {now:%Y-%m-%d %H:%M} UTC"

    def read_entries(self, obis: str, first: int = 1, count: int = 0) -> ProfileRead:
        """Read profile entries first..first+count-1 (1-based; count 0 = to the end)."""
        profile = self._profile_object(obis)
        columns = self.read_capture_objects(obis)
        reply = self._exchange(self.client.readRowsByEntry(profile, first, count))
        return ProfileRead(columns, self._rows(columns, reply.value), "entry")


ENTRY_CHUNK = 96
# Attributes per GET-WITH-LIST request (gurux splits longer lists into requests of at most 10).
WITH_LIST_MAX = 10
_PLAIN_CELL = (int, float, str, type(None))


def _is_clock(column: dict[str, Any]) -> bool:
    return column["class_id"] == 8 or column["obis"].startswith("0.0.1.0.0.")


def _plain_cell(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN_CELL:
        return value
    if isinstance(value, int) and kind is not bool:  # gurux's GXUInt32 and friends, and enums
        return int(value)
    return to_python(value)


# Profile timestamps decoded, per process: a fleet's meters stamp the same quarter-hours, and a window is read again
# and again; datetimes are immutable, so one decoded value serves every row that carries the same 12 octets.
_STAMPS: dict[bytes, dt.datetime | None] = {}
STAMP_CACHE_LIMIT = 50_000


def _clock_cell(value: Any) -> Any:
    if isinstance(value, bytes | bytearray) and len(value) == 12:
        key = bytes(value)
        try:
            return _STAMPS[key]
        except KeyError:
            if len(_STAMPS) >= STAMP_CACHE_LIMIT:
                _STAMPS.clear()
            decoded = _STAMPS[key] = decode_datetime(key)
            return decoded
    return to_python(value)


def _clock_index(columns: list[dict[str, Any]]) -> int | None:
    return next((i for i, c in enumerate(columns) if _is_clock(c)), None)


def _in_window(row: list[Any], columns: list[dict[str, Any]], start: dt.datetime, end: dt.datetime) -> bool:
    """True when the row's capture time lies in start..end (rows without a clock column count as inside)."""
    index = _clock_index(columns)
    if index is None or index >= len(row) or not isinstance(row[index], dt.datetime):
        return True
    return start <= row[index] <= end


def scale(raw: Any, scaler: int) -> int | float:
    """Apply a DLMS scaler: ints stay ints for scaler >= 0, otherwise a rounded float."""
    if not isinstance(raw, (int, float)) or isinstance(raw, bool):
        raise DlmsError(12, f"register value {raw!r} is not numeric")
    if scaler >= 0:
        return raw * 10 ** scaler
    return round(raw * 10.0 ** scaler, -scaler)

