"""Reading whole DLMS frames (IEC 62056-47 wrapper and HDLC) from sockets, with hard limits."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

WRAPPER = "wrapper"
HDLC = "hdlc"
INTERFACES = (WRAPPER, HDLC)
WRAPPER_VERSION = 0x0001
WRAPPER_HEADER = 8
DEFAULT_MAX_WRAPPER = 64 * 1024
HDLC_FLAG = 0x7E
HDLC_MAX_LENGTH = 0x7FF
INITIAL_MAX_BYTES = 512


class FrameError(ValueError):
    """Bytes on the link are not a valid frame (garbage, bad version, oversize, bad checksum)."""


class WrongFraming(FrameError):
    """The peer answered in the other framing: HDLC on a port set for wrapper, or the reverse."""

    def __init__(self, expected: str, seen: str) -> None:
        """Say which framing the HES used and which one the meter answered in."""
        super().__init__(f"the meter answered in {seen.upper()} framing but the HES is set to {expected} for it: "
                         f"set the meter's interface to {seen} (or the meter to {expected})")
        self.expected, self.seen = expected, seen


def framing_of(data: bytes) -> str | None:
    """Which framing bytes start with: 0x7E is HDLC, 0x00 0x01 the wrapper (version 1)."""
    if data[:1] == bytes([HDLC_FLAG]):
        return HDLC
    if data[:2] == WRAPPER_VERSION.to_bytes(2, "big"):
        return WRAPPER
    return None


class ConnectionClosed(ConnectionError):
    """The peer closed the connection (EOF) before a complete frame arrived."""


class FrameTimeout(TimeoutError):
    """No complete frame arrived within the per-read timeout or the total-frame deadline."""


@dataclass(frozen=True, slots=True)
class WrapperFrame:
    """A parsed wrapper frame."""

    source: int
    destination: int
    apdu: bytes


@dataclass(frozen=True, slots=True)
class HdlcFrame:
    """A parsed HDLC frame (addresses as their integer encodings)."""

    destination: int
    source: int
    control: int
    info: bytes
    segmented: bool
    destination_size: int = 1
    source_size: int = 1


def wrapper_frame(source: int, destination: int, apdu: bytes) -> bytes:
    """Build a wrapper frame around an APDU."""
    if len(apdu) > 0xFFFF:
        raise FrameError("APDU too long for a wrapper frame")
    header = WRAPPER_VERSION.to_bytes(2, "big") + source.to_bytes(2, "big")
    return header + destination.to_bytes(2, "big") + len(apdu).to_bytes(2, "big") + apdu


def wrapper_length(header: bytes, max_frame: int = DEFAULT_MAX_WRAPPER) -> int:
    """Validate an 8-byte wrapper header and return the full frame length."""
    if len(header) < WRAPPER_HEADER:
        raise FrameError("wrapper header truncated")
    version = int.from_bytes(header[0:2], "big")
    if version != WRAPPER_VERSION:
        raise FrameError(f"wrapper version 0x{version:04x}, expected 0x0001")
    total = WRAPPER_HEADER + int.from_bytes(header[6:8], "big")
    if total > max_frame:
        raise FrameError(f"wrapper frame of {total} bytes exceeds limit {max_frame}")
    return total


def parse_wrapper(frame: bytes, max_frame: int = DEFAULT_MAX_WRAPPER) -> WrapperFrame:
    """Parse one complete wrapper frame (exact length required)."""
    total = wrapper_length(frame, max_frame)
    if len(frame) != total:
        raise FrameError(f"wrapper frame is {len(frame)} bytes, header says {total}")
    return WrapperFrame(
        int.from_bytes(frame[2:4], "big"), int.from_bytes(frame[4:6], "big"), bytes(frame[8:])
    )


def _fcs_table() -> list[int]:
    table = []
    for byte in range(256):
        value = byte
        for _ in range(8):
            value = (value >> 1) ^ 0x8408 if value & 1 else value >> 1
        table.append(value)
    return table


_FCS_TABLE = _fcs_table()


def hdlc_fcs(data: bytes) -> int:
    """CRC-16/X.25 as used for the HDLC HCS and FCS (returned in wire byte order as int)."""
    fcs = 0xFFFF
    for byte in data:
        fcs = (fcs >> 8) ^ _FCS_TABLE[(fcs ^ byte) & 0xFF]
    fcs ^= 0xFFFF
    return ((fcs & 0xFF) << 8) | (fcs >> 8)


def hdlc_length(head: bytes) -> int:
    """Validate the flag and frame-format field of an HDLC frame; return the full frame length."""
    if len(head) < 3:
        raise FrameError("HDLC header truncated")
    if head[0] != HDLC_FLAG:
        raise FrameError(f"HDLC frame starts with 0x{head[0]:02x}, not 0x7e")
    if head[1] & 0xF0 != 0xA0:
        raise FrameError(f"HDLC frame format type 0x{head[1] >> 4:x}, expected 0xa")
    length = ((head[1] & 0x07) << 8) | head[2]
    if length < 7:
        raise FrameError(f"HDLC frame length {length} too short")
    return length + 2


def encode_hdlc_address(value: int, size: int) -> bytes:
    """Encode an HDLC address (size 1, 2 or 4 bytes) with the extension bits."""
    if size == 1:
        return bytes([(value << 1) | 1])
    if size == 2:
        return bytes([(value >> 6) & 0xFE, ((value << 1) & 0xFE) | 1])
    return bytes(
        [(value >> 20) & 0xFE, (value >> 13) & 0xFE, (value >> 6) & 0xFE, ((value << 1) & 0xFE) | 1]
    )


def hdlc_server_address(logical: int, physical: int | None) -> tuple[int, int]:
    """Combine HDLC logical/physical server addresses; return (address_value, address_size)."""
    if physical is None:
        return logical, 1 if logical < 0x80 else 2
    if logical < 0x80 and physical < 0x80:
        return (logical << 7) | physical, 2
    return (logical << 14) | physical, 4


def _decode_hdlc_address(frame: bytes, pos: int, end: int) -> tuple[int, int, int]:
    raw = []
    while True:
        if pos >= end or len(raw) == 4:
            raise FrameError("HDLC address not terminated")
        raw.append(frame[pos])
        pos += 1
        if raw[-1] & 1:
            break
    if len(raw) == 3:
        raise FrameError("HDLC address of 3 bytes")
    value = 0
    for byte in raw:
        value = (value << 7) | (byte >> 1)
    return value, len(raw), pos


def build_hdlc(destination: int, dest_size: int, source: int, source_size: int, control: int,
               info: bytes = b"", segmented: bool = False) -> bytes:
    """Build one HDLC frame with HCS and FCS."""
    addresses = encode_hdlc_address(destination, dest_size) + encode_hdlc_address(source, source_size)
    length = 2 + len(addresses) + 1 + 2 + ((len(info) + 2) if info else 0)
    if length > HDLC_MAX_LENGTH:
        raise FrameError("HDLC frame too long")
    head = bytes([0xA0 | (0x08 if segmented else 0) | (length >> 8), length & 0xFF]) + addresses
    head += bytes([control])
    body = head + hdlc_fcs(head).to_bytes(2, "big")
    if info:
        body += info
        body += hdlc_fcs(body).to_bytes(2, "big")
    return bytes([HDLC_FLAG]) + body + bytes([HDLC_FLAG])


def parse_hdlc(frame: bytes) -> HdlcFrame:
    """Parse and check one complete HDLC frame (flags, length, addresses, HCS, FCS)."""
    total = hdlc_length(frame)
    if len(frame) != total:
        raise FrameError(f"HDLC frame is {len(frame)} bytes, length field says {total}")
    if frame[-1] != HDLC_FLAG:
        raise FrameError("HDLC frame not closed by 0x7e")
    end = total - 1
    destination, dest_size, pos = _decode_hdlc_address(frame, 3, end)
    source, source_size, pos = _decode_hdlc_address(frame, pos, end)
    sizes = (dest_size, source_size)
    if pos >= end:
        raise FrameError("HDLC control field missing")
    control = frame[pos]
    pos += 1
    if pos == end - 2:
        if hdlc_fcs(frame[1:pos]) != int.from_bytes(frame[pos:pos + 2], "big"):
            raise FrameError("HDLC FCS mismatch")
        return HdlcFrame(destination, source, control, b"", bool(frame[1] & 0x08), *sizes)
    if pos + 2 > end - 2:
        raise FrameError("HDLC frame too short for HCS and FCS")
    if hdlc_fcs(frame[1:pos]) != int.from_bytes(frame[pos:pos + 2], "big"):
        raise FrameError("HDLC HCS mismatch")
    if hdlc_fcs(frame[1:end - 2]) != int.from_bytes(frame[end - 2:end], "big"):
        raise FrameError("HDLC FCS mismatch")
    info = bytes(frame[pos + 2:end - 2])
    return HdlcFrame(destination, source, control, info, bool(frame[1] & 0x08), *sizes)


def frame_length(buffer: bytes, interface: str, max_frame: int = DEFAULT_MAX_WRAPPER) -> int | None:
    """Length of the first frame in buffer, or None if the header is not complete yet."""
    if buffer[:1] == bytes([HDLC_FLAG]) and interface == WRAPPER:
        raise WrongFraming(WRAPPER, HDLC)
    if buffer[:2] == WRAPPER_VERSION.to_bytes(2, "big") and interface == HDLC:
        raise WrongFraming(HDLC, WRAPPER)
    if interface == WRAPPER:
        return wrapper_length(buffer, max_frame) if len(buffer) >= WRAPPER_HEADER else None
    if interface == HDLC:
        if buffer and buffer[0] != HDLC_FLAG:
            raise FrameError(f"HDLC frame starts with 0x{buffer[0]:02x}, not 0x7e")
        if len(buffer) < 3:
            return None
        total = hdlc_length(buffer)
        if total > max_frame:
            raise FrameError(f"HDLC frame of {total} bytes exceeds limit {max_frame}")
        return total
    raise ValueError(f"unknown interface {interface!r}")


def split_frame(buffer: bytes, interface: str, max_frame: int = DEFAULT_MAX_WRAPPER) -> tuple[bytes | None, bytes]:
    """Split one complete frame off the front of buffer; return (frame or None, rest)."""
    # Back-to-back HDLC frames may share or double their flags; extra flags are fill.
    while interface == HDLC and buffer[:2] == b"\x7e\x7e":
        buffer = buffer[1:]
    total = frame_length(buffer, interface, max_frame)
    if total is None or len(buffer) < total:
        return None, buffer
    frame = buffer[:total]
    if interface == HDLC and frame[-1] != HDLC_FLAG:
        raise FrameError("HDLC frame not closed by 0x7e")
    return bytes(frame), bytes(buffer[total:])


class SocketStream:
    """Moves whole frames over a connected socket, enforcing size, read timeout and frame deadline."""

    def __init__(self, sock: socket.socket, interface: str = WRAPPER, timeout: float = 30.0,
                 frame_deadline: float | None = None, max_frame: int | None = None,
                 buffer: bytes = b"") -> None:
        """Wrap sock; frame_deadline defaults to 2x timeout, max_frame to 64 KiB (HDLC: 2049)."""
        if interface not in INTERFACES:
            raise ValueError(f"unknown interface {interface!r}")
        self.sock = sock
        self.interface = interface
        self.timeout = timeout
        self.frame_deadline = frame_deadline if frame_deadline is not None else 2 * timeout
        self.max_frame = max_frame or (DEFAULT_MAX_WRAPPER if interface == WRAPPER else HDLC_MAX_LENGTH + 2)
        self._buffer = bytes(buffer)

    def send(self, data: bytes) -> None:
        """Send all bytes."""
        self.sock.sendall(data)

    def take_buffer(self) -> bytes:
        """Hand back (and forget) bytes received beyond the last frame."""
        rest, self._buffer = self._buffer, b""
        return rest

    def _recv_more(self, deadline: float, started_frame: bool) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FrameTimeout("frame deadline exceeded" if started_frame else "no frame received")
        self.sock.settimeout(min(self.timeout, remaining))
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError as exc:
            raise FrameTimeout(
                "read timeout inside a frame" if started_frame else "read timeout waiting for a frame"
            ) from exc
        if not chunk:
            raise ConnectionClosed("peer closed the connection" + (" mid-frame" if started_frame else ""))
        self._buffer += chunk

    def recv_frame(self, timeout: float | None = None) -> bytes:
        """Receive exactly one complete frame (FrameError, FrameTimeout, ConnectionClosed)."""
        wait = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        frame_deadline: float | None = None
        while True:
            frame, rest = split_frame(self._buffer, self.interface, self.max_frame)
            if frame is not None:
                self._buffer = rest
                return frame
            if self._buffer and frame_deadline is None:
                # The total-frame deadline starts with the first byte, so a slowloris peer
                # that trickles bytes cannot keep a reader busy forever.
                frame_deadline = time.monotonic() + self.frame_deadline
                deadline = frame_deadline
            self._recv_more(deadline, bool(self._buffer))

    def recv_initial(self, timeout: float | None = None, max_bytes: int = INITIAL_MAX_BYTES,
                     idle: float = 0.3) -> bytes:
        """Receive a dial-in meter's first message: a wrapper or HDLC frame, or a bare line.

        Bare identifiers end at CR/LF, at max_bytes, or after `idle` seconds of silence.
        """
        wait = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        while not self._buffer:
            self._recv_more(deadline, False)
        if self._buffer[:2] == WRAPPER_VERSION.to_bytes(2, "big"):
            return SocketStream.recv_frame_as(self, WRAPPER, wait)
        if self._buffer[0] == HDLC_FLAG:
            return SocketStream.recv_frame_as(self, HDLC, wait)
        line_deadline = min(deadline, time.monotonic() + self.frame_deadline)
        while True:
            for terminator in (b"\n", b"\r"):
                idx = self._buffer.find(terminator)
                if idx >= 0:
                    end = idx + 1
                    if terminator == b"\r" and self._buffer[end:end + 1] == b"\n":
                        end += 1
                    line, self._buffer = self._buffer[:end], self._buffer[end:]
                    return line
            if len(self._buffer) >= max_bytes:
                line, self._buffer = self._buffer[:max_bytes], self._buffer[max_bytes:]
                return line
            try:
                self._recv_more(min(line_deadline, time.monotonic() + idle), True)
            except FrameTimeout:
                line, self._buffer = self._buffer, b""
                return line

    def recv_frame_as(self, interface: str, timeout: float | None = None) -> bytes:
        """Receive one frame of the given interface without changing the stream's own."""
        saved = self.interface, self.max_frame
        self.interface = interface
        self.max_frame = DEFAULT_MAX_WRAPPER if interface == WRAPPER else HDLC_MAX_LENGTH + 2
        try:
            return self.recv_frame(timeout)
        finally:
            self.interface, self.max_frame = saved

    def close(self) -> None:
        """Close the socket, ignoring errors."""
        try:
            self.sock.close()
        except OSError:
            pass
