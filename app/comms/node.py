"""The comms node: listens for dial-in meters, identifies them, keeps their sockets, and records
their online/offline state. One node owns each dial-in meter's socket (``meter.node_id``)."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Callable

import gevent
from flask import Flask
from gevent.queue import Empty, Queue
from gevent.server import StreamServer
from sqlalchemy import select, update

from app.comms.connection import ConnectionGone, DialInConnection, interface_of
from app.comms.cosem import to_python
from app.comms.framing import FrameError, FrameTimeout, SocketStream
from app.comms.heartbeat import Heartbeat
from app.comms.session import DlmsError, SessionParams
from app.models.types import UTC

log = logging.getLogger(__name__)
IDENTITY_OBJECTS = (("logical_name", "0.0.42.0.0.255"), ("serial", "0.0.96.1.0.255"))
STATUS_FLUSH_SECONDS = 2.0
NODE_HEARTBEAT_SECONDS = 5.0
PUSH_BATCH = 200
PUSH_LINGER = 0.05

_node: CommsNode | None = None


def get_node() -> CommsNode | None:
    """The comms node running in this process, if any."""
    return _node


class CommsNode:
    """Meter listener and connection registry of one HES process."""

    def __init__(self, app: Flask, node_id: str | None = None, listen: tuple[str, int] | None = None):
        cfg = app.config
        self.app = app
        self.node_id = node_id or cfg["HES_NODE_ID"]
        host, _, port = cfg["HES_METER_LISTEN"].rpartition(":")
        self.listen = listen or (host or "0.0.0.0", int(port))
        self.heartbeat_seconds = float(cfg.get("HES_HEARTBEAT_SECONDS", 60))
        self.idle_timeout = self.heartbeat_seconds * int(cfg.get("HES_MISSED_HEARTBEATS", 3))
        self.identify_timeout = float(cfg.get("HES_IDENTIFY_TIMEOUT", 20))
        self.connections: dict[int, DialInConnection] = {}
        self.unregistered: dict[str, DialInConnection] = {}
        self.counters: Counter = Counter()
        self._seen: dict[int, float] = {}
        self._server: StreamServer | None = None
        self._workers: list[gevent.Greenlet] = []
        # Called with a batch of (meter_id, frame): pushes are stored in groups, one transaction each.
        self.push_handler: Callable[[list[tuple[int, bytes]]], dict | None] | None = None
        self._pushes: Queue = Queue()
        self.status_listeners: list[Callable[[int, bool], None]] = []

    # ----- life cycle --------------------------------------------------------------------

    def start(self) -> CommsNode:
        """Bind the listener and start the background writers."""
        global _node
        self._server = StreamServer(self.listen, self._handle, backlog=1024)
        self._server.start()
        self.listen = self._server.address[:2]
        _node = self
        with self.app.app_context():
            self._register_node()
        self._workers = [gevent.spawn(self._flush_loop), gevent.spawn(self._node_heartbeat_loop),
                         gevent.spawn(self._push_loop)]
        log.info("comms node %s listening for meters on %s:%s", self.node_id, *self.listen)
        return self

    def stop(self) -> None:
        """Stop listening, close every meter socket and mark those meters offline."""
        global _node
        if self._server is not None:
            self._server.stop(timeout=1)
        for conn in list(self.connections.values()) + list(self.unregistered.values()):
            conn.close("node stopping")
        gevent.killall(self._workers, block=False)
        self._flush_seen()
        if _node is self:
            _node = None

    # ----- accepting and identifying ---------------------------------------------------------

    def _handle(self, sock: socket.socket, address) -> None:
        remote = f"{address[0]}:{address[1]}"
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
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
        # Once identified, silence is allowed up to the missed-heartbeat window (not the identify timeout).
        stream.timeout = self.idle_timeout
        conn = DialInConnection(stream, remote, self.idle_timeout, self._on_frame, self._on_closed)
        conn.interface = interface_of(first) or conn.interface
        conn.start_reader()
        heartbeat = self._parse_heartbeat(first) if first else None
        identity, how = (heartbeat.meter_number, "heartbeat") if heartbeat else self._ask_identity(conn)
        if identity is None:
            self.counters["unidentified"] += 1
            conn.close("could not identify the meter")
            log.warning("closed %s: no heartbeat and no readable identity", remote)
            return
        conn.identity = identity
        with self.app.app_context():
            self._attach(conn, first, how)
        # The server closes the socket when this handler returns, so stay until the meter goes.
        conn.wait_closed()

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

    def _ask_identity(self, conn: DialInConnection) -> tuple[str | None, str]:
        params = SessionParams(interface=conn.interface, client_address=16, auth="none",
                               response_timeout=self.identify_timeout)
        for how, obis in IDENTITY_OBJECTS:
            try:
                with conn.session(params, lock_timeout=self.identify_timeout) as session:
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

    def _attach(self, conn: DialInConnection, first: bytes, how: str) -> None:
        from app.extensions import db
        from app.models import Meter

        meter = db.session.execute(select(Meter).where(Meter.number == conn.identity)).scalar()
        if meter is None:
            self._record_unregistered(conn, first, how)
            return
        previous = self.connections.get(meter.id)
        if previous is not None and previous is not conn:
            previous.close("replaced by a new connection from the same meter")
        conn.meter_id = meter.id
        self.connections[meter.id] = conn
        self._set_online(meter.id, True)

    def _record_unregistered(self, conn: DialInConnection, first: bytes, how: str) -> None:
        from app.extensions import db
        from app.models import UnregisteredConnection
        from app.realtime.emit import emit_event

        row = db.session.execute(
            select(UnregisteredConnection).where(UnregisteredConnection.identity == conn.identity)
        ).scalar()
        now = dt.datetime.now(UTC)
        if row is None:
            row = UnregisteredConnection(identity=conn.identity, first_seen=now, connections=0)
            db.session.add(row)
        row.remote_addr, row.node_id, row.connected, row.last_seen = conn.remote, self.node_id, True, now
        row.first_frame_hex, row.how_identified = first[:128].hex() or None, how
        row.connections = (row.connections or 0) + 1
        db.session.commit()
        self.unregistered[conn.identity] = conn
        self.counters["unregistered"] += 1
        emit_event("unregistered_connection", {"identity": conn.identity, "remote": conn.remote,
                                               "seen_at": now.isoformat()})
        log.info("unregistered meter %s connected from %s", conn.identity, conn.remote)

    def adopt(self, identity: str) -> bool:
        """Attach a live unregistered connection once the admin has registered its meter."""
        conn = self.unregistered.pop(identity, None)
        if conn is None or conn.closed:
            return False
        with self.app.app_context():
            self._attach(conn, b"", "registered")
            from app.extensions import db
            from app.models import UnregisteredConnection

            db.session.execute(update(UnregisteredConnection)
                               .where(UnregisteredConnection.identity == identity).values(connected=False))
            db.session.commit()
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
        if conn.meter_id is not None and self.push_handler is not None:
            self.counters["pushes"] += 1
            self._seen[conn.meter_id] = time.time()
            self._pushes.put((conn.meter_id, frame))

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
            try:
                result = self.push_handler(batch) or {}
                self.counters["bad_pushes"] += result.get("undecodable", 0)
            except Exception:
                log.exception("storing %d pushes failed", len(batch))

    def _retry_adopt(self, identity: str) -> None:
        from app.extensions import db
        from app.models import Meter

        with self.app.app_context():
            known = db.session.execute(select(Meter.id).where(Meter.number == identity)).scalar()
        if known is not None:
            self.adopt(identity)

    def _on_closed(self, conn: DialInConnection, reason: str) -> None:
        self.counters["closed"] += 1
        if conn.meter_id is not None and self.connections.get(conn.meter_id) is conn:
            del self.connections[conn.meter_id]
            log.info("meter %s offline: %s", conn.identity, reason)
            gevent.spawn(self._offline_later, conn.meter_id)
        elif conn.identity and self.unregistered.get(conn.identity) is conn:
            del self.unregistered[conn.identity]
            gevent.spawn(self._unregistered_gone, conn.identity)

    def _offline_later(self, meter_id: int) -> None:
        with self.app.app_context():
            if meter_id not in self.connections:
                self._set_online(meter_id, False)

    def _unregistered_gone(self, identity: str) -> None:
        from app.extensions import db
        from app.models import UnregisteredConnection

        with self.app.app_context():
            db.session.execute(update(UnregisteredConnection)
                               .where(UnregisteredConnection.identity == identity).values(connected=False))
            db.session.commit()

    def connection(self, meter_id: int) -> DialInConnection | None:
        """The live connection of a dial-in meter held by this node."""
        conn = self.connections.get(meter_id)
        return None if conn is None or conn.closed else conn

    # ----- state in the database ---------------------------------------------------------------

    def _set_online(self, meter_id: int, online: bool) -> None:
        from app.services.meter_status import set_online

        set_online(meter_id, online, node_id=self.node_id if online else None)
        for listener in self.status_listeners:
            listener(meter_id, online)

    def _flush_seen(self) -> None:
        if not self._seen:
            return
        seen, self._seen = self._seen, {}
        from app.services.meter_status import touch_last_seen

        with self.app.app_context():
            touch_last_seen({mid: dt.datetime.fromtimestamp(ts, UTC) for mid, ts in seen.items()})

    def _flush_loop(self) -> None:
        # Heartbeats of thousands of meters become one batched UPDATE every couple of seconds.
        while True:
            gevent.sleep(STATUS_FLUSH_SECONDS)
            try:
                self._flush_seen()
            except Exception:
                log.exception("could not record last-seen times")

    def _register_node(self) -> None:
        from app.extensions import db
        from app.models import CommsNode as NodeRow

        row = db.session.get(NodeRow, self.node_id) or NodeRow(node_id=self.node_id)
        row.listen, row.pid = f"{self.listen[0]}:{self.listen[1]}", os.getpid()
        row.started_at = row.heartbeat_at = dt.datetime.now(UTC)
        row.connections = 0
        db.session.add(row)
        db.session.commit()

    def _node_heartbeat_loop(self) -> None:
        from app.extensions import db
        from app.models import CommsNode as NodeRow

        while True:
            gevent.sleep(NODE_HEARTBEAT_SECONDS)
            try:
                with self.app.app_context():
                    db.session.execute(update(NodeRow).where(NodeRow.node_id == self.node_id).values(
                        heartbeat_at=dt.datetime.now(UTC), connections=len(self.connections)))
                    db.session.commit()
            except Exception:
                log.exception("node heartbeat failed")
