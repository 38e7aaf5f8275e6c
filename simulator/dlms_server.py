"""Server side of DLMS/COSEM for the simulator: association (none/LLS/HLS-GMAC), GET/SET/ACTION
with block transfer, glo-ciphering, and the wrapper and HDLC link layers.

Our own engine rather than gurux's GXDLMSServer: in gurux-dlms 1.0.203 the Python server
calls methods that do not exist (notifyRead, getTransaction, GXServerReply.setReply), never
hands normal GETs to onPreRead, and builds a broken AARE for ciphered associations. A small
engine also keeps per-connection state to a few hundred bytes, which the 10k-meter fleet needs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol

from app.comms.framing import (
    HDLC,
    WRAPPER,
    FrameError,
    HdlcFrame,
    build_hdlc,
    parse_hdlc,
    parse_wrapper,
    wrapper_frame,
)
from simulator import axdr, behaviours, security

# Data-access-result / action-result codes (IEC 62056-5-3).
SUCCESS = 0
HARDWARE_FAULT = 1
TEMPORARY_FAILURE = 2
READ_WRITE_DENIED = 3
OBJECT_UNDEFINED = 4
OBJECT_CLASS_INCONSISTENT = 9
OBJECT_UNAVAILABLE = 11
TYPE_UNMATCHED = 12
SCOPE_OF_ACCESS_VIOLATED = 13
DATA_BLOCK_UNAVAILABLE = 14
NO_LONG_GET_IN_PROGRESS = 16
OTHER_REASON = 250

PUBLIC_CLIENT = 16
MANAGEMENT_CLIENT = 1
AUTH_NONE, AUTH_LOW, AUTH_HIGH_MD5, AUTH_HIGH_SHA1, AUTH_HIGH_GMAC, AUTH_HIGH_SHA256 = 0, 1, 3, 4, 5, 6
# Authentication of the management client by name -> mechanism id (Green Book: 3 MD5, 4 SHA-1, 5 GMAC,
# 6 SHA-256). "high_gmac" associations use the ciphered context; "high_gmac_plain" must not.
AUTH_LEVELS = {"none": AUTH_NONE, "low": AUTH_LOW, "high_md5": AUTH_HIGH_MD5, "high_sha1": AUTH_HIGH_SHA1,
               "high_gmac": AUTH_HIGH_GMAC, "high_gmac_plain": AUTH_HIGH_GMAC, "high_sha256": AUTH_HIGH_SHA256}
CIPHERED_CONTEXT = {"high_gmac": True, "high_gmac_plain": False}
HLS_MECHANISMS = (AUTH_HIGH_MD5, AUTH_HIGH_SHA1, AUTH_HIGH_GMAC, AUTH_HIGH_SHA256)
CONTEXT_LN = 1
CONTEXT_LN_CIPHERED = 3
SERVER_MAX_PDU = 0x0800
# Conformance we grant: get, set, action, selective access, block transfer with get/action, attribute0.
SERVER_CONFORMANCE = 0x00101D | 0x080000 | 0x040000 | 0x020000 | 0x001000 | 0x000800
# General block transfer (conformance bit 2; granted only by meters with the general_block_transfer behaviour).
CONFORMANCE_GBT = 0x200000
# Multiple references (conformance bit 14): GET-WITH-LIST, granted unless the meter has get_with_list_unsupported.
CONFORMANCE_MULTIPLE_REFERENCES = 0x000200
GBT_TAG = 0xE0
ASSOCIATION_LN = bytes([0, 0, 40, 0, 0, 255])
LLC_REQUEST = b"\xe6\xe6\x00"
LLC_RESPONSE = b"\xe6\xe7\x00"
HDLC_MAX_INFO = 128


class CosemError(Exception):
    """A COSEM access failed with a data-access-result / action-result code."""

    def __init__(self, code: int) -> None:
        """Remember the result code."""
        super().__init__(code)
        self.code = code


@dataclass(slots=True)
class ClientContext:
    """Who is talking: client address and whether the association may write/act."""

    client_address: int
    can_write: bool


class CosemDevice(Protocol):
    """What the engine needs from a meter."""

    system_title: bytes
    server_invocation_counter: int
    last_client_invocation_counter: int
    gbt_blocks_sent: int

    def auth_for_client(self, client_address: int) -> tuple[str, bytes, bytes, bytes] | None:
        """(authentication name, password or HLS secret, block cipher key, authentication key), None if unknown."""

    def cosem_get(self, ctx: ClientContext, class_id: int, ln: bytes, attr: int,
                  selector: int, params: Any) -> Any:
        """Read an attribute; return a Typed/plain value or raw encoded bytes (RawData)."""

    def cosem_set(self, ctx: ClientContext, class_id: int, ln: bytes, attr: int, value: Any) -> None:
        """Write an attribute."""

    def cosem_action(self, ctx: ClientContext, class_id: int, ln: bytes, method: int, value: Any) -> Any:
        """Invoke a method; return None or a return value."""


@dataclass(frozen=True, slots=True)
class RawData:
    """Already A-XDR-encoded data (e.g. a profile buffer built row by row)."""

    data: bytes


def encode_value(value: Any) -> bytes:
    """Encode a get result, passing RawData through."""
    return value.data if isinstance(value, RawData) else axdr.encode(value)


class _Association:
    __slots__ = (
        "auth_key",
        "authenticated",
        "block_key",
        "block_number",
        "ciphered",
        "client",
        "client_title",
        "conformance",
        "gbt_blocks",
        "ctos",
        "level",
        "max_pdu",
        "password",
        "pending_blocks",
        "stoc",
    )

    def __init__(self, client: int) -> None:
        self.client = client
        self.level = AUTH_NONE
        self.authenticated = False
        self.ciphered = False
        self.client_title = b""
        self.stoc = b""
        self.max_pdu = SERVER_MAX_PDU
        self.password = b""
        self.block_key = b""
        self.auth_key = b""
        self.pending_blocks: list[bytes] = []
        self.block_number = 0
        self.ctos = b""
        self.conformance = 0
        self.gbt_blocks: list[bytes] = []


def _parse_ber(data: bytes) -> dict[int, bytes]:
    """Split a flat BER sequence of tag-length-value fields (single-byte tags)."""
    fields: dict[int, bytes] = {}
    pos = 0
    while pos < len(data):
        tag = data[pos]
        size, pos = axdr.decode_length(data, pos + 1)
        if pos + size > len(data):
            raise FrameError("BER field truncated")
        fields[tag] = data[pos:pos + size]
        pos += size
    return fields


def _ber(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + axdr.encode_length(len(value)) + value


class DlmsServerConnection:
    """One client connection to one meter: feed it frames, get reply frames back."""

    __slots__ = (
        "assoc",
        "client_addr",
        "device",
        "hdlc_connected",
        "interface",
        "max_info_tx",
        "recv_seq",
        "rx_segments",
        "send_seq",
        "server_addr_size",
        "server_address",
        "tx_segments",
    )

    def __init__(self, device: CosemDevice, interface: str) -> None:
        """Start an idle connection for device over interface ('wrapper' or 'hdlc')."""
        self.device = device
        self.interface = interface
        self.assoc: _Association | None = None
        self.hdlc_connected = False
        self.recv_seq = 0
        self.send_seq = 0
        self.max_info_tx = HDLC_MAX_INFO
        self.rx_segments: list[bytes] = []
        self.tx_segments: list[bytes] = []
        self.server_address = 1
        self.server_addr_size = 1
        self.client_addr = 0

    @property
    def associated(self) -> bool:
        """True while an application association is open."""
        return self.assoc is not None

    # ----- link layers -------------------------------------------------------------------

    def handle_frame(self, frame: bytes) -> list[bytes]:
        """Handle one received frame; return frames to send back (possibly none)."""
        if self.interface == WRAPPER:
            parsed = parse_wrapper(frame)
            reply = self.handle_apdu(parsed.source, parsed.apdu)
            return [wrapper_frame(parsed.destination, parsed.source, reply)] if reply else []
        return self._handle_hdlc(parse_hdlc(frame))

    def _hdlc_reply(self, control: int, info: bytes = b"", segmented: bool = False) -> bytes:
        return build_hdlc(self.client_addr, 1, self.server_address, self.server_addr_size,
                          control, info, segmented)

    def _handle_hdlc(self, frame: HdlcFrame) -> list[bytes]:
        control = frame.control
        if control & 0xEF == 0x83:  # SNRM
            self.server_address, self.server_addr_size = frame.destination, frame.destination_size
            self.client_addr = frame.source
            self.max_info_tx = self._negotiate_snrm(frame.info)
            self.hdlc_connected, self.recv_seq, self.send_seq = True, 0, 0
            self.rx_segments, self.tx_segments, self.assoc = [], [], None
            params = (b"\x05\x01" + bytes([self.max_info_tx]) + b"\x06\x01" + bytes([HDLC_MAX_INFO])
                      + b"\x07\x04\x00\x00\x00\x01\x08\x04\x00\x00\x00\x01")
            return [self._hdlc_reply(0x73, b"\x81\x80" + bytes([len(params)]) + params)]
        if not self.hdlc_connected or frame.source != self.client_addr:
            return [self._hdlc_reply(0x1F)] if control & 0xEF == 0x43 else []
        if control & 0xEF == 0x43:  # DISC
            self.hdlc_connected, self.assoc = False, None
            return [self._hdlc_reply(0x73)]
        if control & 0x01 == 0:  # I-frame
            self.recv_seq = ((control >> 1) + 1) & 0x07
            self.rx_segments.append(frame.info)
            if frame.segmented:
                return [self._hdlc_reply((self.recv_seq << 5) | 0x11)]
            info = b"".join(self.rx_segments)
            self.rx_segments = []
            if info[:3] == LLC_REQUEST:
                info = info[3:]
            reply = self.handle_apdu(self.client_addr, info)
            if not reply:
                return []
            payload = LLC_RESPONSE + reply
            self.tx_segments = [payload[i:i + self.max_info_tx]
                                for i in range(0, len(payload), self.max_info_tx)]
            return [self._next_hdlc_segment()]
        if control & 0x0F == 0x01 and self.tx_segments:  # RR asking for the next segment
            return [self._next_hdlc_segment()]
        return [self._hdlc_reply((self.recv_seq << 5) | 0x11)]

    def _next_hdlc_segment(self) -> bytes:
        chunk = self.tx_segments.pop(0)
        control = (self.recv_seq << 5) | 0x10 | (self.send_seq << 1)
        self.send_seq = (self.send_seq + 1) & 0x07
        return self._hdlc_reply(control, chunk, segmented=bool(self.tx_segments))

    @staticmethod
    def _negotiate_snrm(info: bytes) -> int:
        max_rx_of_client = HDLC_MAX_INFO
        if len(info) >= 3 and info[0] == 0x81:
            pos = 3
            while pos + 2 <= len(info):
                param, size = info[pos], info[pos + 1]
                value = int.from_bytes(info[pos + 2:pos + 2 + size], "big")
                if param == 0x06 and value:
                    max_rx_of_client = value
                pos += 2 + size
        return max(32, min(max_rx_of_client, HDLC_MAX_INFO))

    # ----- application layer -----------------------------------------------------------

    def handle_apdu(self, client: int, apdu: bytes) -> bytes:
        """Handle one APDU from client; return the response APDU (b'' for none).

        With general block transfer granted, a reply longer than the meter's PDU (ciphered first, where the
        association is) leaves in GBT blocks, one per acknowledgement of the client (window 1)."""
        assoc = self.assoc
        if apdu[:1] == bytes([GBT_TAG]) and assoc is not None and assoc.client == client:
            return self._gbt_next(assoc, apdu)
        reply = self._handle_apdu(client, apdu)
        assoc = self.assoc
        if assoc is not None and self._gbt(assoc) and len(reply) > self._room(assoc):
            room = self._room(assoc)
            assoc.gbt_blocks = [reply[i:i + room] for i in range(0, len(reply), room)]
            return self._gbt_block(assoc, 1, 0)
        return reply

    @staticmethod
    def _gbt(assoc: _Association) -> bool:
        return bool(assoc.conformance & CONFORMANCE_GBT)

    def _room(self, assoc: _Association) -> int:
        """Payload bytes of one block: the meter's PDU size less the block header."""
        return behaviours.max_pdu(self.device, min(assoc.max_pdu, SERVER_MAX_PDU)) - 12

    def _gbt_block(self, assoc: _Association, number: int, ack: int) -> bytes:
        """General-Block-Transfer APDU carrying block `number` (1-based) of the pending reply."""
        chunk = assoc.gbt_blocks[number - 1]
        last = number == len(assoc.gbt_blocks)
        self.device.gbt_blocks_sent = (self.device.gbt_blocks_sent or 0) + 1
        return (bytes([GBT_TAG, (0x80 if last else 0) | 1]) + number.to_bytes(2, "big") + ack.to_bytes(2, "big")
                + axdr.encode_length(len(chunk)) + chunk)

    def _gbt_next(self, assoc: _Association, apdu: bytes) -> bytes:
        """The client acknowledged a block: send the next one (an ack past the end is an error)."""
        if len(apdu) < 6:
            return b"\xd8\x01\x03"
        number, acked = int.from_bytes(apdu[2:4], "big"), int.from_bytes(apdu[4:6], "big")
        if not 0 < acked < len(assoc.gbt_blocks):
            assoc.gbt_blocks = []
            return b"\xd8\x01\x01"  # exception: service not allowed, operation not possible
        return self._gbt_block(assoc, acked + 1, number)

    def _handle_apdu(self, client: int, apdu: bytes) -> bytes:
        if not apdu:
            return b""
        tag = apdu[0]
        if tag == 0x60:
            return self._aarq(client, apdu)
        if tag == 0x62:
            self.assoc = None
            return b"\x63\x03\x80\x01\x00"
        assoc = self.assoc
        if assoc is None or assoc.client != client:
            return b"\xd8\x01\x01"  # exception: service not allowed, operation not possible
        if tag in security.PLAIN_TAGS:
            if not assoc.ciphered:
                return b"\xd8\x01\x02"
            try:
                sc, counter, plain = security.unwrap_glo(apdu, assoc.client_title, assoc.block_key,
                                                         assoc.auth_key)
            except (ValueError, security.CipherError):
                return b"\xd8\x01\x05"  # deciphering error
            if counter <= self.device.last_client_invocation_counter:
                expected = self.device.last_client_invocation_counter + 1
                return b"\xd8\x01\x06" + expected.to_bytes(4, "big")
            self.device.last_client_invocation_counter = counter
            reply = self._service(assoc, plain)
            if not reply:
                return b""
            response_tag = security.GLO_TAGS.get(reply[0])
            if response_tag is None:
                return reply
            self.device.server_invocation_counter += 1
            return security.wrap_glo(response_tag, sc, self.device.server_invocation_counter, self.device.system_title,
                                     assoc.block_key, assoc.auth_key, reply)
        if assoc.ciphered and assoc.authenticated:
            return b"\xd8\x01\x02"  # a ciphered association refuses plain services
        return self._service(assoc, apdu)

    def _service(self, assoc: _Association, apdu: bytes) -> bytes:
        tag = apdu[0]
        try:
            if tag == 0xC0:
                return self._get(assoc, apdu)
            if tag == 0xC1:
                return self._set(assoc, apdu)
            if tag == 0xC3:
                return self._action(assoc, apdu)
        except (IndexError, ValueError):
            return b"\xd8\x01\x03"
        return b"\xd8\x02\x02"  # service unknown / not supported

    def _ctx(self, assoc: _Association) -> ClientContext:
        return ClientContext(assoc.client, assoc.client != PUBLIC_CLIENT and assoc.authenticated)

    def _get(self, assoc: _Association, apdu: bytes) -> bytes:
        kind, invoke = apdu[1], apdu[2]
        if kind == 0x02:  # get-request-next
            block = int.from_bytes(apdu[3:7], "big")
            if not assoc.pending_blocks or block != assoc.block_number:
                assoc.pending_blocks = []
                return bytes([0xC4, 0x02, invoke, 0x01]) + (block + 1).to_bytes(4, "big") + bytes(
                    [0x01, NO_LONG_GET_IN_PROGRESS])
            return self._next_block(assoc, invoke)
        if kind == 0x03:
            return self._get_with_list(assoc, apdu, invoke)
        if kind != 0x01:
            return bytes([0xC4, 0x01, invoke, 0x01, OTHER_REASON])
        kind, result, _ = self._get_one(assoc, apdu, 3)
        if kind == "exception":
            return result
        if kind == "error":
            return bytes([0xC4, 0x01, invoke, 0x01, result])
        return self._get_reply(assoc, invoke, 0x01, result)

    def _get_one(self, assoc: _Association, apdu: bytes, pos: int) -> tuple[str, Any, int]:
        """One attribute descriptor with its optional selective access at ``pos``: ("data", encoded value),
        ("error", data-access-result) or ("exception", exception-response APDU), and the position after it."""
        class_id = int.from_bytes(apdu[pos:pos + 2], "big")
        ln, attr = bytes(apdu[pos + 2:pos + 8]), apdu[pos + 8]
        pos += 9
        selector, params = 0, None
        if len(apdu) > pos and apdu[pos]:
            selector = apdu[pos + 1]
            params, pos = axdr.decode(apdu, pos + 2)
        else:
            pos += 1
        if not assoc.authenticated and not (class_id == 15 and ln == ASSOCIATION_LN):
            return "error", READ_WRITE_DENIED, pos
        refusal = behaviours.selective_access_refusal(self.device, selector)
        if refusal is not None:
            return ("exception" if isinstance(refusal, bytes) else "error"), refusal, pos
        try:
            value = self.device.cosem_get(self._ctx(assoc), class_id, ln, attr, selector, params)
        except CosemError as exc:
            return "error", exc.code, pos
        return "data", encode_value(value), pos

    def _get_with_list(self, assoc: _Association, apdu: bytes, invoke: int) -> bytes:
        """GET-WITH-LIST: each descriptor answered in order (data, or its own data-access-result), in one
        get-response-with-list, in blocks when it is longer than the PDU (as any long GET)."""
        if not assoc.conformance & CONFORMANCE_MULTIPLE_REFERENCES or behaviours.refuses_get_with_list(self.device):
            return behaviours.SERVICE_NOT_SUPPORTED
        count, pos = axdr.decode_length(apdu, 3)
        results = []
        for _ in range(count):
            kind, result, pos = self._get_one(assoc, apdu, pos)
            if kind == "exception":
                return result
            results.append(bytes([0x01, result]) if kind == "error" else b"\x00" + result)
        return self._get_reply(assoc, invoke, 0x03, axdr.encode_length(count) + b"".join(results))

    def _get_reply(self, assoc: _Association, invoke: int, kind: int, data: bytes) -> bytes:
        """get-response-normal (kind 1: ``data`` is the value) or -with-list (3: the count and results), or the
        first block of a get-response-with-datablock when it does not fit the PDU."""
        room = behaviours.max_pdu(self.device, min(assoc.max_pdu, SERVER_MAX_PDU)) - (40 if assoc.ciphered else 12)
        if len(data) + 4 <= room or self._gbt(assoc):  # with GBT the whole reply leaves in GBT blocks
            return bytes([0xC4, kind, invoke]) + (b"\x00" if kind == 0x01 else b"") + data
        assoc.pending_blocks = [data[i:i + room] for i in range(0, len(data), room)]
        assoc.block_number = 0
        return self._next_block(assoc, invoke)

    def _next_block(self, assoc: _Association, invoke: int) -> bytes:
        chunk = assoc.pending_blocks.pop(0)
        assoc.block_number += 1
        last = 0 if assoc.pending_blocks else 1
        return (bytes([0xC4, 0x02, invoke, last]) + assoc.block_number.to_bytes(4, "big") + b"\x00"
                + axdr.encode_length(len(chunk)) + chunk)

    def _set(self, assoc: _Association, apdu: bytes) -> bytes:
        kind, invoke = apdu[1], apdu[2]
        if kind != 0x01:
            return bytes([0xC5, kind, invoke, OTHER_REASON])
        class_id = int.from_bytes(apdu[3:5], "big")
        ln, attr = bytes(apdu[5:11]), apdu[11]
        if apdu[12] != 0:
            return bytes([0xC5, 0x01, invoke, OTHER_REASON])
        value, _ = axdr.decode(apdu, 13)
        ctx = self._ctx(assoc)
        if not ctx.can_write:
            return bytes([0xC5, 0x01, invoke, READ_WRITE_DENIED])
        try:
            self.device.cosem_set(ctx, class_id, ln, attr, value)
        except CosemError as exc:
            return bytes([0xC5, 0x01, invoke, exc.code])
        return bytes([0xC5, 0x01, invoke, SUCCESS])

    def _action(self, assoc: _Association, apdu: bytes) -> bytes:
        kind, invoke = apdu[1], apdu[2]
        if kind != 0x01:
            return bytes([0xC7, kind, invoke, OTHER_REASON, 0x00])
        class_id = int.from_bytes(apdu[3:5], "big")
        ln, method = bytes(apdu[5:11]), apdu[11]
        value = None
        if len(apdu) > 12 and apdu[12]:
            value, _ = axdr.decode(apdu, 13)
        if class_id == 15 and ln == ASSOCIATION_LN and method == 1:
            return self._hls_reply(assoc, invoke, value)
        ctx = self._ctx(assoc)
        if not ctx.can_write:
            return bytes([0xC7, 0x01, invoke, READ_WRITE_DENIED, 0x00])
        try:
            result = self.device.cosem_action(ctx, class_id, ln, method, value)
        except CosemError as exc:
            return bytes([0xC7, 0x01, invoke, exc.code, 0x00])
        if result is None:
            return bytes([0xC7, 0x01, invoke, SUCCESS, 0x00])
        return bytes([0xC7, 0x01, invoke, SUCCESS, 0x01, 0x00]) + encode_value(result)

    def _hls_reply(self, assoc: _Association, invoke: int, value: Any) -> bytes:
        """HLS pass 3 and 4: check the client's f(StoC), answer with the meter's f(CtoS)."""
        if assoc.level not in HLS_MECHANISMS or assoc.authenticated or not isinstance(value, bytes):
            return bytes([0xC7, 0x01, invoke, READ_WRITE_DENIED, 0x00])
        title = self.device.system_title
        if behaviours.has(self.device, "impostor"):
            assoc.authenticated = True
            return bytes([0xC7, 0x01, invoke, SUCCESS, 0x01, 0x00]) + axdr.encode(os.urandom(16))
        if assoc.level == AUTH_HIGH_GMAC:
            try:
                counter = security.verify_gmac(value, assoc.client_title, assoc.block_key, assoc.auth_key,
                                               assoc.stoc)
            except security.CipherError:
                self.assoc = None
                return bytes([0xC7, 0x01, invoke, OTHER_REASON, 0x00])
            self.device.last_client_invocation_counter = max(self.device.last_client_invocation_counter,
                                                             counter)
            self.device.server_invocation_counter += 1
            reply = security.gmac(self.device.server_invocation_counter, title, assoc.block_key, assoc.auth_key,
                                  assoc.ctos)
        else:
            expected = security.hls_digest(assoc.level, assoc.password, assoc.stoc, assoc.ctos, assoc.client_title,
                                           title)
            if value != expected:
                self.assoc = None
                return bytes([0xC7, 0x01, invoke, OTHER_REASON, 0x00])
            reply = security.hls_digest(assoc.level, assoc.password, assoc.ctos, assoc.stoc, title,
                                        assoc.client_title)
        assoc.authenticated = True
        return bytes([0xC7, 0x01, invoke, SUCCESS, 0x01, 0x00]) + axdr.encode(reply)

    # ----- association -------------------------------------------------------------------

    def _aare(self, assoc: _Association | None, context: int, result: int, diagnostic: int,
              user_info: bytes) -> bytes:
        body = _ber(0xA1, b"\x06\x07\x60\x85\x74\x05\x08\x01" + bytes([context]))
        body += _ber(0xA2, bytes([0x02, 0x01, result]))
        body += _ber(0xA3, _ber(0xA1, bytes([0x02, 0x01, diagnostic])))
        if assoc is not None and (assoc.ciphered or assoc.level in (AUTH_HIGH_GMAC, AUTH_HIGH_SHA256)):
            body += _ber(0xA4, _ber(0x04, self.device.system_title))
        if assoc is not None and assoc.level in HLS_MECHANISMS and result == 0:
            body += b"\x88\x02\x07\x80"
            body += _ber(0x89, b"\x60\x85\x74\x05\x08\x02" + bytes([assoc.level]))
            body += _ber(0xAA, _ber(0x80, assoc.stoc))
        if user_info:
            body += _ber(0xBE, _ber(0x04, user_info))
        return _ber(0x61, body)

    def _aarq(self, client: int, apdu: bytes) -> bytes:
        self.assoc = None
        try:
            size, pos = axdr.decode_length(apdu, 1)
            fields = _parse_ber(apdu[pos:pos + size])
        except (ValueError, FrameError):
            return self._aare(None, CONTEXT_LN, 1, 1, b"")
        context_field = fields.get(0xA1, b"")
        context = context_field[-1] if context_field else CONTEXT_LN
        auth = self.device.auth_for_client(client)
        if auth is None or context not in (CONTEXT_LN, CONTEXT_LN_CIPHERED):
            return self._aare(None, context if context in (1, 3) else 1, 1, 2 if auth else 1, b"")
        auth_name, password, block_key, auth_key = auth
        required_level = AUTH_LEVELS[auth_name]
        assoc = _Association(client)
        assoc.level = required_level
        assoc.ciphered = context == CONTEXT_LN_CIPHERED
        if CIPHERED_CONTEXT.get(auth_name, assoc.ciphered) != assoc.ciphered:
            return self._aare(None, context, 1, 2, b"")  # application context name not supported
        assoc.block_key, assoc.auth_key = block_key, auth_key
        mechanism = fields.get(0x8B, b"\x00")[-1] if 0x8B in fields else AUTH_NONE
        if 0xA6 in fields:
            assoc.client_title = fields[0xA6][2:]
        calling_auth = fields.get(0xAC, b"")[2:]
        user_info = fields.get(0xBE, b"")[2:]
        ciphered_initiate = bool(user_info) and user_info[0] == 0x21
        if assoc.ciphered != ciphered_initiate or (assoc.ciphered and len(assoc.client_title) != 8):
            return self._aare(None, context, 1, 1, b"")
        sc = 0
        if ciphered_initiate:
            try:
                sc, counter, user_info = security.unwrap_glo(user_info, assoc.client_title,
                                                             block_key, auth_key)
            except (ValueError, security.CipherError):
                return self._aare(None, context, 1, 13, b"")
            if counter <= self.device.last_client_invocation_counter:
                return self._aare(None, context, 1, 13, b"")
            self.device.last_client_invocation_counter = counter
        conformance, max_pdu = self._parse_initiate(user_info)
        if behaviours.has(self.device, "initiate_refused"):
            # AARE rejected, its user-information a confirmed-service-error: initiate-error, incompatible conformance.
            return self._aare(None, context, 1, 1, behaviours.INITIATE_INCOMPATIBLE_CONFORMANCE)
        if mechanism != required_level:
            return self._aare(None, context, 1, 11 if mechanism else 14, b"")
        if required_level == AUTH_LOW and calling_auth != password:
            return self._aare(None, context, 1, 13, b"")
        if required_level in HLS_MECHANISMS:
            needs_title = required_level in (AUTH_HIGH_GMAC, AUTH_HIGH_SHA256)
            if len(calling_auth) < 8 or (needs_title and len(assoc.client_title) != 8):
                return self._aare(None, context, 1, 13, b"")
            assoc.password = password
            assoc.ctos = bytes(calling_auth)
            assoc.stoc = os.urandom(16)
            diagnostic = 14  # authentication required: pass 3/4 follows
        else:
            assoc.authenticated = True
            diagnostic = 0
        granted = SERVER_CONFORMANCE | (CONFORMANCE_GBT if behaviours.offers_gbt(self.device) else 0) | (
            CONFORMANCE_MULTIPLE_REFERENCES if behaviours.offers_multiple_references(self.device) else 0)
        assoc.conformance = conformance & granted
        assoc.max_pdu = max(64, min(max_pdu or SERVER_MAX_PDU, SERVER_MAX_PDU))
        response = (b"\x08\x00\x06\x5f\x1f\x04\x00" + assoc.conformance.to_bytes(3, "big")
                    + SERVER_MAX_PDU.to_bytes(2, "big") + b"\x00\x07")
        if assoc.ciphered:
            self.device.server_invocation_counter += 1
            response = security.wrap_glo(0x28, sc or security.SC_AUTH_ENC,
                                         self.device.server_invocation_counter,
                                         self.device.system_title, block_key, auth_key, response)
        self.assoc = assoc
        return self._aare(assoc, context, 0, diagnostic, response)

    @staticmethod
    def _parse_initiate(info: bytes) -> tuple[int, int]:
        """Return (proposed conformance, client max receive PDU) from an initiate-request."""
        idx = info.find(b"\x5f\x1f\x04")
        if not info or info[0] != 0x01 or idx < 0 or len(info) < idx + 9:
            return SERVER_CONFORMANCE, SERVER_MAX_PDU
        return int.from_bytes(info[idx + 4:idx + 7], "big"), int.from_bytes(info[idx + 7:idx + 9], "big")


def data_notification(invoke_id: int, when: bytes | None, body: Any) -> bytes:
    """Build a Data-Notification APDU (0x0F) with optional 12-octet date-time."""
    header = bytes([0x0F]) + (invoke_id & 0xFFFFFFFF).to_bytes(4, "big")
    header += (b"\x0c" + when) if when else b"\x00"
    return header + axdr.encode(body)


__all__ = [
    "AUTH_HIGH_GMAC",
    "AUTH_LEVELS",
    "AUTH_LOW",
    "AUTH_NONE",
    "HDLC",
    "MANAGEMENT_CLIENT",
    "PUBLIC_CLIENT",
    "WRAPPER",
    "ClientContext",
    "CosemDevice",
    "CosemError",
    "DlmsServerConnection",
    "RawData",
    "data_notification",
    "encode_value",
]
