"""A fleet of simulated meters in one gevent process: dial-in links, listening ports, pushes, faults."""

from __future__ import annotations

import json
import logging
import os
import random
import time
from typing import Any

import gevent
from gevent import socket
from gevent.pywsgi import WSGIServer
from gevent.server import StreamServer

from app.comms.cosem import encode_datetime
from app.comms.framing import (
    WRAPPER,
    ConnectionClosed,
    FrameError,
    FrameTimeout,
    SocketStream,
    WrongFraming,
    build_hdlc,
    wrapper_frame,
)
from app.comms.heartbeat import heartbeat_frame
from simulator import axdr, behaviours, model, security
from simulator.dlms_server import (
    AUTH_HIGH_GMAC,
    AUTH_LEVELS,
    DlmsServerConnection,
    data_notification,
)
from simulator.meter import TAMPERS, FleetConfig, Meter

log = logging.getLogger(__name__)

LINK_FAULTS = ("link_drop", "slow", "garbage", "half_frame", "wrong_password", "offline")
FAULTS = TAMPERS + LINK_FAULTS
WRONG_PASSWORD = b"changed!"
MAX_BACKOFF = 60.0


def meter_seed(fleet_seed: int, number: int) -> int:
    """Load-model seed of meter `number` in a fleet seeded with fleet_seed (tests recompute values)."""
    return model._hash_int("meter", fleet_seed, number)


def parse_hostport(text: str) -> tuple[str, int]:
    """'host:port' -> (host, port)."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected host:port, got {text!r}")
    return host, int(port)


def parse_port_range(text: str) -> tuple[str, int, int]:
    """'host:first-last' (or host:port) -> (host, first, last)."""
    host, _, ports = text.rpartition(":")
    first, _, last = ports.partition("-")
    if not host or not first.isdigit() or (last and not last.isdigit()):
        raise ValueError(f"expected host:first-last, got {text!r}")
    return host, int(first), int(last or first)


class Link:
    """A meter's current TCP connection (dial-in socket or accepted dial-out connection)."""

    __slots__ = ("conn", "sock", "status")

    def __init__(self) -> None:
        """Start disconnected."""
        self.sock: Any = None
        self.status = "idle"
        self.conn: DlmsServerConnection | None = None


class Fleet:
    """Many meters in one process. Call start(), then use meter(serial), inject faults, stop()."""

    def __init__(self, count: int, cfg: FleetConfig | None = None, prefix: str = "SIM", first_serial: int = 1,
                 seed: int = 1, dial_in: tuple[str, int] | list[tuple[str, int]] | None = None,
                 listen: tuple[str, int, int] | None = None, heartbeat_seconds: float = 60.0,
                 push_to: tuple[str, int] | None = None, control: tuple[str, int] | None = None,
                 push_from: str | None = None) -> None:
        """Create `count` meters numbered prefix + 8 digits from first_serial."""
        self.cfg = cfg or FleetConfig()
        self.cfg.event_sink = self._on_event
        self.cfg.push_sink = lambda meter: self.push(meter, 0)
        self.meters = [
            Meter(f"{prefix}{first_serial + i:08d}", i, meter_seed(seed, first_serial + i), self.cfg)
            for i in range(count)
        ]
        self.by_serial = {m.serial: m for m in self.meters}
        # Meters know a primary HES address and backups (e.g. several comms nodes).
        self.dial_in = [dial_in] if isinstance(dial_in, tuple) else list(dial_in or [])
        self.listen = listen
        if listen and listen[1] and listen[2] - listen[1] + 1 < count:
            raise ValueError(f"port range {listen[1]}-{listen[2]} too small for {count} meters")
        self.heartbeat_seconds = heartbeat_seconds
        self.push_to = push_to
        self.push_from = push_from
        self.control = control
        self.running = False
        self._greenlets: list[gevent.Greenlet] = []
        self._servers: list[Any] = []
        self.control_port: int | None = None
        self.push_id = 0
        self.pushes_sent = 0
        self.ports: dict[str, int] = {}

    # ----- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Fleet:
        """Open listening ports, start dial-in greenlets and the control API (non-blocking)."""
        self.running = True
        for meter in self.meters:
            meter.link = Link()
        if self.listen:
            host, first, _last = self.listen
            for meter in self.meters:
                server = StreamServer((host, first + meter.index if first else 0),
                                      self._accept_handler(meter), backlog=8)
                server.start()
                self.ports[meter.serial] = server.server_port
                self._servers.append(server)
        if self.dial_in:
            for meter in self.meters:
                self._greenlets.append(gevent.spawn(self._dial_loop, meter))
        if self.control:
            server = WSGIServer(self.control, self._control_app, log=None, error_log=None)
            server.start()
            self.control_port = server.server_port
            self._servers.append(server)
        return self

    def stop(self) -> None:
        """Stop everything and close every socket."""
        self.running = False
        # Closing the meters' sockets first lets every handler return before the servers wait on them.
        for meter in self.meters:
            self._close(meter)
        for server in self._servers:
            server.stop(timeout=1)
        gevent.killall(self._greenlets, timeout=2)
        self._servers, self._greenlets = [], []

    def serve_forever(self) -> None:
        """Block until stopped (used by the CLI)."""
        while self.running:
            gevent.sleep(1.0)

    def meter(self, serial: str) -> Meter:
        """The meter with this serial (KeyError if unknown)."""
        return self.by_serial[serial]

    # ----- faults --------------------------------------------------------------------------------

    def inject_fault(self, serial: str, kind: str, active: bool = True, seconds: float | None = None,
                     duration: float | None = None) -> dict[str, Any]:
        """Start or clear a fault; `seconds` parametrises slow/offline/link_drop, `duration` auto-clears."""
        meter = self.meter(serial)
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULTS)}")
        now = time.time()
        if kind in TAMPERS:
            meter.set_tamper(kind, active, now)
        else:
            faults = dict(meter.faults or {})
            if active:
                faults[kind] = {"since": now, "seconds": seconds}
            else:
                faults.pop(kind, None)
            meter.faults = faults or None
            if active and kind in ("link_drop", "offline"):
                self._close(meter)
                if kind == "link_drop":
                    faults.pop(kind, None)
                    meter.faults = faults or None
                    if seconds:
                        faults["offline"] = {"since": now, "seconds": seconds}
                        meter.faults = faults
            if kind == "wrong_password":
                meter.password = WRONG_PASSWORD if active else None
        if active and duration:
            gevent.spawn_later(duration, self.inject_fault, serial, kind, False)
        return meter.state()

    def _fault(self, meter: Meter, kind: str) -> dict[str, Any] | None:
        faults = meter.faults
        if not faults or kind not in faults:
            return None
        value = faults[kind]
        if kind == "offline" and value.get("seconds") and time.time() - value["since"] >= value["seconds"]:
            self.inject_fault(meter.serial, "offline", False)
            return None
        return value

    # ----- serving ---------------------------------------------------------------------------------

    def _close(self, meter: Meter) -> None:
        link = meter.link
        if link is not None and link.sock is not None:
            try:
                link.sock.close()
            except OSError:
                pass
            link.sock, link.conn, link.status = None, None, "idle"

    def _accept_handler(self, meter: Meter) -> Any:
        def handle(sock: Any, _address: Any) -> None:
            if self._fault(meter, "offline"):
                sock.close()
                return
            self._close(meter)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            meter.link.sock, meter.link.status = sock, "online"
            try:
                self._serve(meter, sock, heartbeats=False)
            except (OSError, ConnectionClosed, FrameTimeout) as exc:
                log.debug("%s dial-out connection ended: %s", meter.serial, exc)
            finally:
                if meter.link.sock is sock:
                    self._close(meter)
                sock.close()
        return handle

    def _dial_loop(self, meter: Meter) -> None:
        backoff = 1.0
        target = 0
        # Spread the first connections so 10k meters do not arrive in one burst.
        gevent.sleep(random.random() * min(5.0, len(self.meters) / 2000.0))
        while self.running:
            offline = self._fault(meter, "offline")
            if offline:
                gevent.sleep(min(1.0, offline.get("seconds") or 1.0))
                continue
            sock = None
            try:
                sock = socket.create_connection(self.dial_in[target % len(self.dial_in)], timeout=10)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                meter.link.sock, meter.link.status = sock, "online"
                sock.sendall(heartbeat_frame(meter.serial))
                backoff = 1.0
                self._serve(meter, sock, heartbeats=True)
            except (OSError, ConnectionClosed, FrameError, FrameTimeout) as exc:
                log.debug("%s link ended: %s", meter.serial, exc)
                target += 1  # try the next HES address next time
            finally:
                if meter.link.sock is sock:
                    self._close(meter)
                elif sock is not None:
                    sock.close()
            if not self.running:
                return
            gevent.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _serve(self, meter: Meter, sock: Any, heartbeats: bool) -> None:
        stream = SocketStream(sock, self.cfg.interface, timeout=self.heartbeat_seconds,
                              frame_deadline=30.0)
        link = meter.link
        while self.running and link.sock is sock:
            try:
                frame = stream.recv_frame(timeout=self.heartbeat_seconds)
            except FrameTimeout:
                if heartbeats and (link.conn is None or not link.conn.associated):
                    sock.sendall(heartbeat_frame(meter.serial))
                    meter.check_credit()
                continue
            except WrongFraming:
                # A real meter hunts for frames of its own framing and ignores anything else.
                stream.take_buffer()
                continue
            except FrameError:
                # An unparsable frame means the byte stream is out of sync: drop the link.
                return
            if self._fault(meter, "offline"):
                continue
            if link.conn is None:
                link.conn = DlmsServerConnection(meter, self.cfg.interface)
            try:
                replies = link.conn.handle_frame(frame)
            except (FrameError, ValueError, IndexError):
                continue
            slow = self._fault(meter, "slow")
            if slow:
                gevent.sleep(float(slow.get("seconds") or 5.0))
            for reply in replies:
                if behaviours.has(meter, "hdlc_on_wrapper") and self.cfg.interface == WRAPPER:
                    # A meter set to HDLC: it frames its answer in HDLC whatever the port expects.
                    sock.sendall(build_hdlc(1, 1, 1, 1, 0x73))
                elif self._fault(meter, "garbage"):
                    sock.sendall(os.urandom(max(8, len(reply))))
                elif self._fault(meter, "half_frame"):
                    sock.sendall(reply[: len(reply) // 2])
                    while self._fault(meter, "half_frame") and link.sock is sock:
                        gevent.sleep(0.2)
                    return
                else:
                    sock.sendall(reply)
            if not link.conn.associated and not link.conn.hdlc_connected:
                link.conn = None  # nothing to remember between associations: free it

    # ----- pushes --------------------------------------------------------------------------------

    def _on_event(self, meter: Meter, code: int) -> None:
        if self.running and (self.push_to or self.dial_in):
            gevent.spawn(self.push, meter, code)

    def push_frame(self, meter: Meter, code: int) -> bytes:
        """The framed Data-Notification a meter sends for event `code` (0 = periodic push)."""
        self.push_id += 1
        now = time.time()
        when = encode_datetime(model.to_datetime(meter.clock(now)), -self.cfg.utc_offset_minutes)
        values = meter.push_values(code, now)
        if behaviours.has(meter, "push_anonymous"):
            values[0] = axdr.Typed(axdr.OCTET_STRING, b"")
        apdu = data_notification(self.push_id, when, axdr.structure(*values))
        tag = behaviours.push_cipher(meter, AUTH_LEVELS[self.cfg.auth] == AUTH_HIGH_GMAC)
        if tag is not None:
            meter.server_invocation_counter += 1
            apdu = security.wrap_general_glo(security.SC_AUTH_ENC, meter.server_invocation_counter,
                                             meter.system_title, self.cfg.block_cipher_key,
                                             self.cfg.authentication_key, apdu, tag=tag)
        if self.cfg.interface == WRAPPER:
            return wrapper_frame(1, 1, apdu)
        return build_hdlc(1, 1, 1, 1, 0x13, b"\xe6\xe7\x00" + apdu)

    def push(self, meter: Meter, code: int = 0) -> bool:
        """Send a Data-Notification to --push-to, else over the meter's dial-in socket."""
        frame = self.push_frame(meter, code)
        try:
            if self.push_to:
                # The usual DLMS push: connect, send the Data-Notification, close.
                source = (self.push_from, 0) if self.push_from else None
                with socket.create_connection(self.push_to, timeout=5, source_address=source) as sock:
                    sock.sendall(frame)
            elif meter.link is not None and meter.link.sock is not None and (
                    meter.link.conn is None or not meter.link.conn.associated):
                meter.link.sock.sendall(frame)
            else:
                return False
        except OSError as exc:
            log.debug("%s push failed: %s", meter.serial, exc)
            return False
        self.pushes_sent += 1
        return True

    # ----- control API ---------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counts and memory for the control API and benches."""
        online = sum(1 for m in self.meters if m.link is not None and m.link.sock is not None)
        return {"meters": len(self.meters), "online": online, "rss_kb": rss_kb(),
                "pushes_sent": self.pushes_sent, "interface": self.cfg.interface, "auth": self.cfg.auth}

    def _control_app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        method = environ["REQUEST_METHOD"]
        parts = [p for p in environ.get("PATH_INFO", "").split("/") if p]
        try:
            size = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(size) or b"{}") if size else {}
            status, payload = self._route(method, parts, body, environ.get("QUERY_STRING", ""))
        except KeyError as exc:
            status, payload = "404 Not Found", {"error": f"unknown meter or field {exc}"}
        except (ValueError, TypeError) as exc:
            status, payload = "400 Bad Request", {"error": str(exc)}
        data = json.dumps(payload).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    def _route(self, method: str, parts: list[str], body: dict[str, Any], query: str) -> tuple[str, Any]:
        ok = "200 OK"
        if parts == ["health"]:
            return ok, {"ok": True}
        if parts == ["stats"]:
            return ok, self.stats()
        if parts == ["token"]:
            params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
            return ok, {"token": model.make_token(int(params.get("credit_cents", 1000)), int(params.get("id", 0)))}
        if parts == ["meters"]:
            params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
            offset, limit = int(params.get("offset", 0)), int(params.get("limit", 1000))
            return ok, [{"serial": m.serial, "index": m.index, "port": self.ports.get(m.serial),
                         "link": m.link.status if m.link else None} for m in self.meters[offset:offset + limit]]
        if len(parts) >= 2 and parts[0] == "meters":
            meter = self.meter(parts[1])
            action = parts[2] if len(parts) > 2 else ""
            if method == "GET" and action == "record":
                params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
                parts = tuple(params["parts"].split(",")) if params.get("parts") else \
                    ("load_profile", "daily", "billing", "events")
                return ok, meter.recorded(float(params.get("from", 0)), float(params.get("to", time.time())),
                                          parts=parts)
            if method == "GET" and not action:
                return ok, meter.state() | {"port": self.ports.get(meter.serial)}
            if method == "POST" and action == "fault":
                return ok, self.inject_fault(meter.serial, body["kind"], bool(body.get("active", True)),
                                             body.get("seconds"), body.get("duration"))
            if method == "DELETE" and action == "fault" and len(parts) == 4:
                return ok, self.inject_fault(meter.serial, parts[3], False)
            if method == "POST" and action == "behaviour":
                return ok, {"behaviours": sorted(behaviours.set_behaviour(meter, str(body["name"]),
                                                                          bool(body.get("active", True))))}
            if method == "POST" and action == "push":
                return ok, {"sent": self.push(meter, int(body.get("code", 0)))}
            if method == "POST" and action == "relay":
                meter.set_relay(bool(body["connected"]))
                return ok, meter.state()
            if method == "POST" and action == "event":
                meter.record_event(int(body["code"]))
                return ok, meter.state()
            if method == "POST" and action == "clock":
                if "drift_seconds_per_day" in body:
                    meter.drift_per_day = float(body["drift_seconds_per_day"])
                if "offset_seconds" in body:
                    # since_seconds_ago: the clock has been off that long, so rows captured since carry it.
                    now = time.time()
                    meter.set_offset(float(body["offset_seconds"]), now,
                                     now - float(body.get("since_seconds_ago", 0)))
                return ok, meter.state()
            if method == "POST" and action == "token":
                return ok, {"status": meter.enter_token(str(body["token"]).encode("ascii"))} | meter.state()
        return "404 Not Found", {"error": f"no route {method} /{'/'.join(parts)}"}


def rss_kb() -> int:
    """Resident set size of this process in KiB (Linux)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


__all__ = ["FAULTS", "Fleet", "FleetConfig", "meter_seed", "parse_hostport", "parse_port_range", "rss_kb"]
