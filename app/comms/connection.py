"""One dial-in meter's TCP connection: a reader greenlet owns the socket, sessions borrow it.

The meter opened the socket, so the HES is the DLMS client over it. Between sessions the reader
takes heartbeats and pushes; while a session runs, the reader hands every frame to the session.
Requests to the same meter are serialised by a lock; different meters never wait on each other.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import gevent
from gevent.lock import Semaphore
from gevent.queue import Empty, Queue

from app.comms.framing import WRAPPER, ConnectionClosed, FrameError, FrameTimeout, SocketStream, framing_of
from app.comms.heartbeat import parse_heartbeat
from app.comms.session import AuthenticationError, DlmsSession, ObjectCache, SessionParams

log = logging.getLogger(__name__)


class ConnectionGone(ConnectionError):
    """The meter's socket closed (or went silent) before or during a session."""


class SecretWithheld(AuthenticationError):
    """The HES will not send an LLS password on this dial-in socket (HES_DIAL_IN_REQUIRE_HLS)."""


def interface_of(frame: bytes) -> str | None:
    """Which DLMS framing a frame uses, if it is a DLMS frame at all."""
    return framing_of(frame)


class _BorrowedStream:
    """The stream a session sees: sends go to the socket, frames come from the reader."""

    def __init__(self, conn: DialInConnection, interface: str, timeout: float):
        self.conn = conn
        self.interface = interface
        self.timeout = timeout

    def send(self, data: bytes) -> None:
        try:
            self.conn.stream.send(data)
        except OSError as exc:
            raise ConnectionGone(f"send failed: {exc}") from exc

    def recv_frame(self, timeout: float | None = None) -> bytes:
        try:
            item = self.conn.session_frames.get(timeout=self.timeout if timeout is None else timeout)
        except Empty as exc:
            raise FrameTimeout("no answer from the meter") from exc
        if isinstance(item, BaseException):
            raise item
        return item


class DialInConnection:
    """A connected dial-in meter (or an unidentified/unregistered one)."""

    def __init__(self, stream: SocketStream, remote: str, idle_timeout: float,
                 on_frame: Callable[[DialInConnection, bytes], None],
                 on_closed: Callable[[DialInConnection, str], None]):
        self.stream = stream
        self.remote = remote
        self.idle_timeout = idle_timeout
        self.on_frame = on_frame
        self.on_closed = on_closed
        self.interface = WRAPPER
        self.identity: str | None = None
        self.meter_id: int | None = None
        self.last_seen = time.time()
        self.lock = Semaphore()
        self.session_frames: Queue = Queue()
        self.session_active = False
        self.closed = False
        self.close_reason = ""
        self.require_hls = False
        self._reader: gevent.Greenlet | None = None

    def start_reader(self) -> None:
        """Begin owning the socket's incoming side."""
        self._reader = gevent.spawn(self._read_loop)

    def wait_closed(self) -> None:
        """Block until the reader has finished (the socket's owner must outlive the connection)."""
        if self._reader is not None:
            self._reader.join()

    def _read_loop(self) -> None:
        reason = "closed"
        try:
            while True:
                # An active session waits on its own timeout; when idle, silence beyond the
                # allowed missed heartbeats means the meter is gone.
                frame = self.stream.recv_initial(timeout=self.idle_timeout)
                self.last_seen = time.time()
                if self.session_active:
                    self.session_frames.put(frame)
                else:
                    self.on_frame(self, frame)
        except FrameTimeout:
            reason = "silent (missed heartbeats)"
        except ConnectionClosed:
            reason = "closed by meter"
        except FrameError as exc:
            reason = f"bad frame: {exc}"
        except OSError as exc:
            reason = f"socket error: {exc}"
        except gevent.GreenletExit:
            reason = self.close_reason or "closed by HES"
        finally:
            self._finish(reason)

    def _finish(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self.session_frames.put(ConnectionGone(f"meter connection {reason}"))
        self.stream.close()
        self.on_closed(self, reason)

    def close(self, reason: str = "closed by HES") -> None:
        """Close the socket and stop the reader."""
        self.close_reason = reason
        if self._reader is not None and not self._reader.dead and gevent.getcurrent() is not self._reader:
            self._reader.kill(block=False)
        self._finish(reason)

    def unsolicited(self, frame: bytes) -> None:
        """A heartbeat or push that arrived in the middle of a session."""
        self.on_frame(self, frame)

    @contextmanager
    def session(self, params: SessionParams, on_invocation_counter: Callable[[int], None] | None = None,
                lock_timeout: float | None = None, object_cache: ObjectCache | None = None) -> Iterator[DlmsSession]:
        """An associated DLMS session over this connection; released (best effort) afterwards.

        With ``require_hls`` an LLS session is refused before anything is sent: over carrier NAT a
        dial-in socket is only a claim of identity, and an LLS password travels in clear.
        """
        if self.require_hls and params.auth == "low":
            raise SecretWithheld(0, "LLS password withheld: dial-in meters must authenticate with HLS "
                                    "(HES_DIAL_IN_REQUIRE_HLS is on)")
        if not self.lock.acquire(timeout=lock_timeout):
            raise TimeoutError("the meter is busy with another request")
        try:
            if self.closed:
                raise ConnectionGone(f"meter connection {self.close_reason}")
            self._drain()
            self.session_active = True
            stream = _BorrowedStream(self, params.interface, params.response_timeout)
            session = DlmsSession(stream, params, on_invocation_counter=on_invocation_counter,
                                  on_unsolicited=self.unsolicited, object_cache=object_cache)
            session.associate()
            try:
                yield session
            finally:
                if not self.closed:
                    try:
                        session.release()
                    except Exception as exc:  # many meters don't answer release; the socket stays
                        log.debug("release on %s: %s", self.identity, exc)
        finally:
            self.session_active = False
            self.lock.release()

    def _drain(self) -> None:
        while True:
            try:
                item = self.session_frames.get_nowait()
            except Empty:
                return
            if isinstance(item, BaseException):
                self.session_frames.put(item)
                return

    def is_heartbeat(self, frame: bytes) -> bool:
        """True when the frame is this meter's heartbeat (any brand format)."""
        return parse_heartbeat(frame, first=False) is not None
