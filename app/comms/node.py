"""The comms node: listens for dial-in meters and pushes, identifies who connected, keeps the sockets.

The node is transport only. It knows meters as the ids and session parameters the services layer
hands it (``NodeHandlers``, wired in app/runtime.py) and never touches the database: registration
of unknown meters, online/offline state, pushes and node heartbeats all go through those handlers.

Identity is a claim (anyone behind carrier NAT can send a meter's heartbeat), so:

* a second connection claiming a meter that is online does not replace the live one: the live one
  is probed first and only a dead socket is replaced; a conflict is reported with both addresses;
* when the meter authenticates with HLS, it proves itself on every new connection before it is
  marked online (its answer to our challenge; the HES's secret is never sent), and in a conflict
  the connection that proves itself wins;
* with ``require_hls`` no LLS password is ever sent on a dial-in socket.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import gevent
from flask import Flask
from gevent.lock import BoundedSemaphore
from gevent.queue import Empty, Queue
from gevent.server import StreamServer

from app.comms.connection import ConnectionGone, DialInConnection, interface_of
from app.comms.cosem import to_python
from app.comms.framing import HDLC, WRAPPER, ConnectionClosed, FrameError, FrameTimeout, SocketStream, parse_hdlc
from app.comms.heartbeat import Heartbeat
from app.comms.looplag import process_monitor
from app.comms.push import LLC_HEADERS, ReceivedPush, extract_apdu
from app.comms.session import HLS_AUTH, AuthenticationError, DlmsError, SessionParams

log = logging.getLogger(__name__)
IDENTITY_OBJECTS = (("logical_name", "0.0.42.0.0.255"), ("serial", "0.0.96.1.0.255"))
PUSH_APDU_TAGS = (0x0F, 0xC2, 0xDB, 0xDC)  # data-notification, event-notification, general-glo/ded
STATUS_FLUSH_SECONDS = 2.0
NODE_HEARTBEAT_SECONDS = 5.0
PUSH_BATCH = 200
PUSH_LINGER = 0.05
PUSH_RETRIES = 5
PUSH_QUEUE_LIMIT = 200_000  # pushes kept in memory while the database refuses them
PUSH_IDLE_SECONDS = 30.0
PUSH_COUNTERS = ("received", "stored", "undecodable", "unknown_sender", "refused")

_node: CommsNode | None = None


def get_node() -> CommsNode | None:
    """The comms node running in this process, if any."""
    return _node


@dataclass(frozen=True)
class MeterLink:
    """What the services layer tells the node about a registered meter: its id and how to verify it."""

    meter_id: int
    params: SessionParams | None = None  # the meter's own session (keys included) when it can prove itself
    on_invocation_counter: Callable[[int], None] | None = None  # persists counters the proof consumed


@dataclass(frozen=True)
class Sighting:
    """A connection from a meter the registry does not know (listed for registration)."""

    identity: str
    remote: str
    node_id: str
    first_frame: bytes
    how: str


@dataclass(frozen=True)
class Conflict:
    """Two connections claiming one meter, or a connection that failed to prove it is the meter."""

    meter_id: int
    identity: str
    live_remote: str | None
    new_remote: str
    outcome: str


@dataclass(frozen=True)
class NodeStatus:
    """A node's heartbeat: where it listens, how many sockets it holds, and its counters."""

    node_id: str
    listen: str
    push_listen: str | None
    connections: int
    counters: dict[str, float]
    started: bool = False


def _ignore(*_args, **_kwargs) -> None:
    return None


@dataclass
class NodeHandlers:
    """The services the node calls back (each runs in its own app context; see app/services/comms_node.py)."""

    lookup_meter: Callable[[str], MeterLink | None] = lambda identity: None
    unregistered: Callable[[Sighting], None] = _ignore
    unregistered_gone: Callable[[str], None] = _ignore
    set_online: Callable[[int, bool, str | None], None] = _ignore
    seen: Callable[[dict[int, float]], list[int] | None] = _ignore  # returns those the database shows offline
    status: Callable[[NodeStatus], None] = _ignore
    pushes: Callable[[list[ReceivedPush]], dict] = lambda batch: {}
    conflict: Callable[[Conflict], None] = _ignore


def is_push_frame(frame: bytes) -> bool:
    """True for a frame carrying a push (Data-/Event-Notification, plain or general-ciphered)."""
    kind = interface_of(frame)
    if kind is None:
        return False
    try:
        if kind == HDLC:
            parsed = parse_hdlc(frame)
            if parsed.control & 0xEF == 0x03:  # UI frames carry pushes
                return True
            info = parsed.info[3:] if parsed.info[:3] in LLC_HEADERS else parsed.info
            return bool(info) and info[0] in PUSH_APDU_TAGS and parsed.control & 0x01 == 0
        apdu = extract_apdu(frame)
        return bool(apdu) and apdu[0] in PUSH_APDU_TAGS
    except FrameError:
        return False


class CommsNode:
    """Meter and push listeners and the connection registry of one HES process."""

    def __init__(self, app: Flask, node_id: str | None = None, listen: tuple[str, int] | None = None,
                 handlers: NodeHandlers | None = None, push_listen: tuple[str, int] | None = None):
        cfg = app.config
        self.app = app
        self.node_id = node_id or cfg["HES_NODE_ID"]
        host, _, port = cfg["HES_METER_LISTEN"].rpartition(":")
        self.listen = listen or (host or "0.0.0.0", int(port))
        push = cfg.get("HES_PUSH_LISTEN") or ""
        if push_listen is None and push:
            push_host, _, push_port = push.rpartition(":")
            push_listen = (push_host or "0.0.0.0", int(push_port))
        self.push_listen = push_listen
        self.heartbeat_seconds = float(cfg.get("HES_HEARTBEAT_SECONDS", 60))
        self.idle_timeout = self.heartbeat_seconds * int(cfg.get("HES_MISSED_HEARTBEATS", 3))
        self.identify_timeout = float(cfg.get("HES_IDENTIFY_TIMEOUT", 20))
        self.require_hls = str(cfg.get("HES_DIAL_IN_REQUIRE_HLS", "false")).lower() in ("1", "true", "yes", "on")
        self.handlers = handlers or NodeHandlers()
        self.connections: dict[int, DialInConnection] = {}
        self.unregistered: dict[str, DialInConnection] = {}
        self.counters: Counter = Counter({f"push_{name}": 0 for name in PUSH_COUNTERS})
        self._seen: dict[int, float] = {}
        self._servers: list[StreamServer] = []
        self._workers: list[gevent.Greenlet] = []
        self._pushes: Queue = Queue()
        self.loop_lag = process_monitor()  # the process's: the node shares the hub with web and tasks
        # Admission: when thousands of meters dial in at once, their registry look-ups and online marks queue
        # here (no time-out) instead of in the database pool (30 s time-out, then the meter is dropped).
        self._admission = BoundedSemaphore(int(cfg.get("HES_ATTACH_CONCURRENCY", 8)))

    # ----- life cycle --------------------------------------------------------------------

    def start(self) -> CommsNode:
        """Bind the listeners and start the background workers."""
        global _node
        server = StreamServer(self.listen, self._handle_meter_port, backlog=1024)
        server.start()
        self.listen = server.address[:2]
        self._servers = [server]
        if self.push_listen is not None:
            push_server = StreamServer(self.push_listen, self._handle_push_port, backlog=1024)
            push_server.start()
            self.push_listen = push_server.address[:2]
            self._servers.append(push_server)
        _node = self
        self.handlers.status(self.status(started=True))
        self._workers = [gevent.spawn(self._flush_loop), gevent.spawn(self._node_heartbeat_loop),
                         gevent.spawn(self._push_loop)]
        log.info("comms node %s listening for meters on %s:%s%s", self.node_id, *self.listen,
                 f", for pushes on {self.push_listen[0]}:{self.push_listen[1]}" if self.push_listen else "")
        return self

    def stop(self) -> None:
        """Stop listening, close every meter socket and mark those meters offline."""
        global _node
        for server in self._servers:
            server.stop(timeout=1)
        for conn in list(self.connections.values()) + list(self.unregistered.values()):
            conn.close("node stopping")
        self._drain_pushes()
        gevent.killall(self._workers, block=False)
        self._flush_seen()
        if _node is self:
            _node = None

    def status(self, started: bool = False) -> NodeStatus:
        """This node's heartbeat record."""
        push = f"{self.push_listen[0]}:{self.push_listen[1]}" if self.push_listen else None
        lag = self.loop_lag.snapshot()
        counters = {**self.counters, "loop_lag_max_ms": lag["max_ms"], "loop_lag_p99_ms": lag["p99_ms"],
                    "loop_lag_max_since_start_ms": lag["max_since_start_ms"]}
        return NodeStatus(self.node_id, f"{self.listen[0]}:{self.listen[1]}", push, len(self.connections),
                          counters, started)

    # ----- accepting and identifying ---------------------------------------------------------

    def _handle_meter_port(self, sock: socket.socket, address) -> None:
        remote = f"{address[0]}:{address[1]}"
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        # Request/response: every frame leaves in one write, and no request may wait for the ACK of the last.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = SocketStream(sock, timeout=self.identify_timeout)
        self.counters["accepted"] += 1
        try:
            first = stream.recv_initial(timeout=self.identify_timeout)
        except FrameTimeout:
            if stream.take_buffer():
                self._reject(stream, remote, "first frame truncated or too slow")
                return
            first = b""  # silent: some meters wait for the client to speak first, so ask who it is
        except (FrameError, OSError, ConnectionError) as exc:
            self._reject(stream, remote, f"first frame unreadable: {exc}")
            return
        if first and is_push_frame(first):
            # The usual DLMS push: connect, Data-Notification(s), close.
            self._serve_pushes(stream, remote, first, "meter")
            return
        # Once identified, silence is allowed up to the missed-heartbeat window (not the identify timeout).
        stream.timeout = self.idle_timeout
        conn = DialInConnection(stream, remote, self.idle_timeout, self._on_frame, self._on_closed)
        conn.interface = interface_of(first) or conn.interface
        conn.require_hls = self.require_hls
        conn.start_reader()
        heartbeat = self._parse_heartbeat(first) if first else None
        identity, how = (heartbeat.meter_number, "heartbeat") if heartbeat else self._ask_identity(conn)
        if identity is None:
            self.counters["unidentified"] += 1
            conn.close("could not identify the meter")
            log.warning("closed %s: no heartbeat and no readable identity", remote)
            return
        conn.identity = identity
        self._attach(conn, first, how)
        # The server closes the socket when this handler returns, so stay until the meter goes.
        conn.wait_closed()

    def _handle_push_port(self, sock: socket.socket, address) -> None:
        remote = f"{address[0]}:{address[1]}"
        stream = SocketStream(sock, timeout=self.identify_timeout)
        try:
            first = stream.recv_initial(timeout=self.identify_timeout)
        except (FrameTimeout, FrameError, OSError, ConnectionError) as exc:
            self._reject(stream, remote, f"push port: {exc}")
            return
        self._serve_pushes(stream, remote, first, "push")

    def _serve_pushes(self, stream: SocketStream, remote: str, first: bytes, port: str) -> None:
        """Take push frames until the meter closes (HDLC segments are joined into one frame's worth)."""
        self.counters["push_connections"] += 1
        stream.interface = interface_of(first) or WRAPPER
        frame: bytes | None = first
        try:
            while frame is not None:
                self._queue_push(ReceivedPush(frame, remote, None, time.time(), port))
                try:
                    frame = stream.recv_frame(timeout=PUSH_IDLE_SECONDS)
                except (ConnectionClosed, FrameTimeout):
                    frame = None
        except (FrameError, OSError) as exc:
            log.info("push connection from %s ended: %s", remote, exc)
        finally:
            stream.close()

    def _queue_push(self, push: ReceivedPush) -> None:
        self.counters["push_received"] += 1
        self._pushes.put(push)

    def _reject(self, stream: SocketStream, remote: str, reason: str) -> None:
        self.counters["rejected"] += 1
        log.warning("closed connection from %s: %s", remote, reason)
        stream.close()

    @staticmethod
    def _parse_heartbeat(frame: bytes) -> Heartbeat | None:
        from app.plugins.manager import hook

        try:
            return hook().hes_parse_heartbeat(frame=frame)
        except Exception:
            log.exception("heartbeat parser plugin failed")
            return None

    def _public_params(self, conn: DialInConnection) -> SessionParams:
        return SessionParams(interface=conn.interface, client_address=16, auth="none",
                             response_timeout=self.identify_timeout)

    def _ask_identity(self, conn: DialInConnection) -> tuple[str | None, str]:
        for how, obis in IDENTITY_OBJECTS:
            try:
                with conn.session(self._public_params(conn), lock_timeout=self.identify_timeout) as session:
                    value = to_python(session.get(obis, 1, 2))
            except (DlmsError, FrameTimeout, ConnectionGone, TimeoutError, OSError) as exc:
                log.info("identity via %s from %s failed: %s", obis, conn.remote, exc)
                if conn.closed:
                    break
                continue
            text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value or "")
            text = text.strip().strip("\x00")
            if text:
                return text, how
        return None, ""

    def _proves(self, conn: DialInConnection, link: MeterLink) -> bool | None:
        """Does this connection answer as the meter? True/False for a meter that proves itself with HLS
        (a refused or wrong challenge answer is False); None when it cannot prove anything (no HLS)."""
        if link.params is None or link.params.auth not in HLS_AUTH:
            return None
        params = link.params.with_timeout(self.identify_timeout)
        try:
            with conn.session(params, link.on_invocation_counter, lock_timeout=self.identify_timeout):
                return True
        except AuthenticationError as exc:
            log.warning("connection from %s claiming %s failed HLS: %s", conn.remote, conn.identity, exc)
            return False
        except (DlmsError, FrameTimeout, ConnectionGone, TimeoutError, OSError) as exc:
            log.info("HLS check of %s from %s did not complete: %s", conn.identity, conn.remote, exc)
            return False

    def _alive(self, conn: DialInConnection, link: MeterLink) -> bool:
        """Is an attached connection still the meter? Busy sessions with recent traffic count as alive."""
        if conn.closed:
            return False
        if conn.session_active and time.time() - conn.last_seen < self.identify_timeout:
            return True
        proven = self._proves(conn, link)
        if proven is not None:
            return proven
        try:
            with conn.session(self._public_params(conn), lock_timeout=self.identify_timeout):
                return True
        except (DlmsError, FrameTimeout, ConnectionGone, TimeoutError, OSError):
            return False

    def _attach(self, conn: DialInConnection, first: bytes, how: str) -> None:
        with self._admission:
            link = self.handlers.lookup_meter(conn.identity)
        if link is None:
            self._record_unregistered(conn, first, how)
            return
        if self._proves(conn, link) is False:
            self.counters["identity_failures"] += 1
            self._conflict(link, conn, None, "refused: failed to prove its identity with HLS")
            conn.close("failed to prove the meter's identity")
            return
        previous = self.connections.get(link.meter_id)
        if previous is not None and previous is not conn and not previous.closed:
            if self._alive(previous, link):
                self.counters["identity_conflicts"] += 1
                self._conflict(link, conn, previous.remote, "newcomer refused: the live connection answered")
                conn.close(f"meter {conn.identity} is already connected from {previous.remote}")
                return
            self._conflict(link, conn, previous.remote, "live connection replaced: it did not answer")
            previous.close("replaced: the old connection did not answer a probe")
        conn.meter_id = link.meter_id
        self.connections[link.meter_id] = conn
        with self._admission:
            self._set_online(link.meter_id, True)

    def _conflict(self, link: MeterLink, conn: DialInConnection, live_remote: str | None, outcome: str) -> None:
        log.warning("identity conflict for meter %s: live %s, new %s: %s", conn.identity, live_remote,
                    conn.remote, outcome)
        try:
            self.handlers.conflict(Conflict(link.meter_id, conn.identity or "", live_remote, conn.remote, outcome))
        except Exception:
            log.exception("recording an identity conflict failed")

    def _record_unregistered(self, conn: DialInConnection, first: bytes, how: str) -> None:
        self.unregistered[conn.identity] = conn
        self.counters["unregistered"] += 1
        self.handlers.unregistered(Sighting(conn.identity, conn.remote, self.node_id, first, how))
        log.info("unregistered meter %s connected from %s", conn.identity, conn.remote)

    def adopt(self, identity: str) -> bool:
        """Attach a live unregistered connection once the admin has registered its meter."""
        conn = self.unregistered.pop(identity, None)
        if conn is None or conn.closed:
            return False
        self._attach(conn, b"", "registered")
        self.handlers.unregistered_gone(identity)
        return conn.meter_id is not None

    # ----- traffic ---------------------------------------------------------------------------

    def _on_frame(self, conn: DialInConnection, frame: bytes) -> None:
        if self._parse_heartbeat(frame) is not None or conn.is_heartbeat(frame):
            self.counters["heartbeats"] += 1
            if conn.meter_id is not None:
                self._seen[conn.meter_id] = time.time()
            elif conn.identity in self.unregistered:
                gevent.spawn(self._retry_adopt, conn.identity)
            return
        if interface_of(frame) is None:
            self.counters["garbage"] += 1
            conn.close("unrecognised data between sessions")
            return
        if conn.meter_id is not None:
            self._seen[conn.meter_id] = time.time()
        self._queue_push(ReceivedPush(frame, conn.remote, conn.meter_id, time.time(), "meter"))

    def _push_loop(self) -> None:
        # Group pushes that arrive together (a burst of alarms) into one transaction: one commit
        # for up to PUSH_BATCH pushes instead of one each, collected for at most PUSH_LINGER seconds.
        while True:
            batch = [self._pushes.get()]
            deadline = time.monotonic() + PUSH_LINGER
            while len(batch) < PUSH_BATCH:
                try:
                    batch.append(self._pushes.get(timeout=max(0.0, deadline - time.monotonic())))
                except Empty:
                    break
            self._store_pushes(batch)

    def _store_pushes(self, batch: list[ReceivedPush], *, final: bool = False) -> None:
        # A busy database ("database is locked", a restart) must not lose pushes: retry with backoff, then put
        # the batch back on the queue to be retried with the next ones (only a node stopping gives up on them).
        for attempt in range(PUSH_RETRIES):
            try:
                result = self.handlers.pushes(batch) or {}
            except Exception:
                log.exception("storing %d pushes failed (attempt %d of %d)", len(batch), attempt + 1, PUSH_RETRIES)
                gevent.sleep(min(5.0, 0.2 * 2 ** attempt))
                continue
            for name in PUSH_COUNTERS[1:]:
                self.counters[f"push_{name}"] += int(result.get(name, 0))
            return
        if final or self._pushes.qsize() + len(batch) > PUSH_QUEUE_LIMIT:
            self.counters["push_lost"] += len(batch)
            return
        self.counters["push_requeued"] += len(batch)
        for push in batch:
            self._pushes.put(push)

    def _drain_pushes(self) -> None:
        batch = []
        while True:
            try:
                batch.append(self._pushes.get_nowait())
            except Empty:
                break
        if batch:
            self._store_pushes(batch, final=True)

    def _retry_adopt(self, identity: str) -> None:
        if self.handlers.lookup_meter(identity) is not None:
            self.adopt(identity)

    def _on_closed(self, conn: DialInConnection, reason: str) -> None:
        self.counters["closed"] += 1
        if conn.meter_id is not None and self.connections.get(conn.meter_id) is conn:
            del self.connections[conn.meter_id]
            log.info("meter %s offline: %s", conn.identity, reason)
            gevent.spawn(self._offline_later, conn.meter_id)
        elif conn.identity and self.unregistered.get(conn.identity) is conn:
            del self.unregistered[conn.identity]
            gevent.spawn(self.handlers.unregistered_gone, conn.identity)

    def _offline_later(self, meter_id: int) -> None:
        if meter_id not in self.connections:
            self._set_online(meter_id, False)

    def connection(self, meter_id: int) -> DialInConnection | None:
        """The live connection of a dial-in meter held by this node."""
        conn = self.connections.get(meter_id)
        return None if conn is None or conn.closed else conn

    # ----- state handed to the services ------------------------------------------------------------

    def _set_online(self, meter_id: int, online: bool) -> None:
        self.handlers.set_online(meter_id, online, self.node_id if online else None)

    def _flush_seen(self) -> None:
        if not self._seen:
            return
        seen, self._seen = self._seen, {}
        try:
            back_online = self.handlers.seen(seen) or ()
        except Exception:
            self._seen = {**seen, **self._seen}  # kept for the next flush (the database restarting); newer times win
            raise
        for meter_id in back_online:
            # Supervision took it offline while this node holds its live connection (a late node heartbeat, a
            # lost update): its heartbeat proves it is here, so it is online again, with the usual event.
            conn = self.connections.get(meter_id)
            if conn is not None and not conn.closed:
                log.info("meter %s is connected here but was marked offline: online again", conn.identity)
                self._set_online(meter_id, True)

    def _flush_loop(self) -> None:
        # Heartbeats of thousands of meters become one batched UPDATE every couple of seconds.
        while True:
            gevent.sleep(STATUS_FLUSH_SECONDS)
            try:
                self._flush_seen()
            except Exception:
                log.exception("could not record last-seen times")

    def _node_heartbeat_loop(self) -> None:
        while True:
            gevent.sleep(NODE_HEARTBEAT_SECONDS)
            try:
                self.handlers.status(self.status())
            except Exception:
                log.exception("node heartbeat failed")
