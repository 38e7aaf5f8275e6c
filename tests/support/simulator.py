"""The meter simulator as a subprocess on 127.0.0.1, with its control API (shared by all test suites)."""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from app.comms.framing import SocketStream
from app.comms.session import DlmsSession, SessionParams
from simulator.fleet import meter_seed
from simulator.meter import FleetConfig, Meter

ROOT = Path(__file__).resolve().parents[2]
# Non-default secrets, so a test passing cannot depend on the simulator's documented defaults.
PASSWORD = b"Pa55-w0rd"
BLOCK_KEY = bytes.fromhex("5d1a0b7e3c9f8a6b4d2e1f0c9b8a7d6e")
AUTH_KEY = bytes.fromhex("a1b2c3d4e5f60718293a4b5c6d7e8f90")
CLIENT_TITLE = b"HESTEST1"


class SimProcess:
    """A running `python -m simulator` with its control API."""

    def __init__(self, proc: subprocess.Popen, ready: dict[str, Any], args: dict[str, Any]) -> None:
        """Wrap the process and its ready line."""
        self.proc = proc
        self.ready = ready
        self.args = args
        self.control = f"http://127.0.0.1:{ready['control_port']}"
        self.meters = self.get("/meters")

    def get(self, path: str) -> Any:
        """GET a control API path as JSON."""
        with urllib.request.urlopen(self.control + path, timeout=10) as response:
            return json.loads(response.read())

    def post(self, path: str, body: dict[str, Any] | None = None, method: str = "POST") -> Any:
        """POST JSON to a control API path."""
        data = json.dumps(body or {}).encode()
        request = urllib.request.Request(self.control + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def serial(self, index: int) -> str:
        """Meter number at fleet position index."""
        return self.meters[index]["serial"]

    def port(self, index: int) -> int:
        """Dial-out port of meter index."""
        return self.meters[index]["port"]

    def model_meter(self, index: int) -> Meter:
        """A fresh Meter with the same seed and config, to compute expected values."""
        cfg = FleetConfig(history_days=self.args["history_days"], utc_offset_minutes=self.args["utc_offset_minutes"],
                          start_time=self.ready["start_time"])
        number = self.args["first_serial"] + index
        return Meter(self.serial(index), index, meter_seed(self.args["seed"], number), cfg)

    @property
    def install_time(self) -> float:
        """When the simulated meters' history starts (epoch seconds): their installation."""
        return FleetConfig(history_days=self.args["history_days"], start_time=self.ready["start_time"]).install_time

    def params(self, **overrides: Any) -> SessionParams:
        """SessionParams for the management client with this simulator's secrets."""
        values: dict[str, Any] = {
            "interface": self.args["interface"], "client_address": 1, "auth": self.args["auth"],
            "password": PASSWORD, "system_title": CLIENT_TITLE, "block_cipher_key": BLOCK_KEY,
            "authentication_key": AUTH_KEY, "response_timeout": 5.0,
        }
        values.update(overrides)
        return SessionParams(**values)

    @contextlib.contextmanager
    def session(self, index: int, on_invocation_counter: Callable[[int], None] | None = None,
                **overrides: Any) -> Iterator[DlmsSession]:
        """An associated session to meter index over a fresh TCP connection."""
        params = self.params(**overrides)
        sock = socket.create_connection(("127.0.0.1", self.port(index)), timeout=5)
        try:
            session = DlmsSession(SocketStream(sock, params.interface, params.response_timeout), params,
                                  on_invocation_counter=on_invocation_counter)
            session.associate()
            try:
                yield session
            finally:
                session.release()
        finally:
            sock.close()

    def stop(self) -> None:
        """Terminate the process."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_simulator(meters: int = 4, interface: str = "wrapper", auth: str = "low", listen: bool = True,
                    dial_in: str | None = None, push_to: str | None = None, seed: int = 7,
                    first_serial: int = 1, history_days: int = 35, utc_offset_minutes: int = 0,
                    heartbeat_seconds: float = 60.0, extra: list[str] | None = None) -> SimProcess:
    """Start the simulator subprocess and wait (max 20 s) for its ready line."""
    args = {"interface": interface, "auth": auth, "seed": seed, "first_serial": first_serial,
            "history_days": history_days, "utc_offset_minutes": utc_offset_minutes}
    cmd = [sys.executable, "-m", "simulator", "--meters", str(meters), "--interface", interface, "--auth", auth,
           "--password", PASSWORD.decode(), "--block-cipher-key", BLOCK_KEY.hex(),
           "--authentication-key", AUTH_KEY.hex(), "--seed", str(seed), "--first-serial", str(first_serial),
           "--history-days", str(history_days), "--utc-offset-minutes", str(utc_offset_minutes),
           "--heartbeat-seconds", str(heartbeat_seconds), "--control", "127.0.0.1:0", *(extra or [])]
    if listen:
        cmd += ["--listen", "127.0.0.1:0"]
    if dial_in:
        cmd += ["--dial-in", dial_in]
    if push_to:
        cmd += ["--push-to", push_to]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            if line.startswith("{"):
                return SimProcess(proc, json.loads(line), args)
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"simulator did not start: {' '.join(cmd)}")




@contextlib.contextmanager
def listening_socket(backlog: int = 16, timeout: float = 15) -> Iterator[socket.socket]:
    """A listening TCP socket on an ephemeral 127.0.0.1 port: the HES side of dial-in and pushes."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(backlog)
    server.settimeout(timeout)
    try:
        yield server
    finally:
        server.close()


def received_frame(listener: socket.socket, interface: str = "wrapper") -> bytes:
    """Accept one connection on ``listener`` and return the one frame it sends (a push)."""
    conn, _ = listener.accept()
    try:
        return SocketStream(conn, interface, 5).recv_frame()
    finally:
        conn.close()


def _sim_brand():
    from sqlalchemy import select

    from app.extensions import db
    from app.models import MeterBrand

    return db.session.execute(select(MeterBrand).where(MeterBrand.name == "hes_sim")).scalar_one()


@contextlib.contextmanager
def profiles_read_by_entry() -> Iterator[None]:
    """The hes_sim brand says its meters keep entry numbers (``profile_read: entry``) for the duration.
    Needs an app context."""
    from app.extensions import db

    brand = _sim_brand()
    before = dict(brand.objects or {})
    brand.objects = {**before, "profile_read": "entry"}
    db.session.commit()
    try:
        yield
    finally:
        db.session.rollback()
        _sim_brand().objects = before
        db.session.commit()


def register_meters(sim: SimProcess, indices: Iterable[int] | None = None, *, prefix: str = "SIM",
                    dial_in: bool = False, **fields: Any) -> list[int]:
    """Register simulated meters (all, or ``indices``) as active hes_sim meters, the brand holding the
    simulator's password: dial-out ones with a SIM card at each meter's port, or dial-in ones (the
    simulator dials the HES). Returns the meter ids. Needs an app context."""
    from app.extensions import db
    from app.models import CommMode, Meter, MeterStatus, Sim
    from app.services.secrets import store_credentials

    brand = _sim_brand()
    brand.default_secret = store_credentials(brand.default_secret, password=PASSWORD.decode())
    meters = []
    for i in range(len(sim.meters)) if indices is None else indices:
        meter = Meter(number=sim.serial(i), brand_id=brand.id, status=MeterStatus.active, **fields,
                      comm_mode=CommMode.dial_in if dial_in else CommMode.dial_out)
        if not dial_in:
            meter.sim = Sim(number=f"{prefix}-SIM-{i}", ip_address="127.0.0.1", port=sim.port(i))
        db.session.add(meter)
        meters.append(meter)
    db.session.commit()
    return [meter.id for meter in meters]


class SimulatorPool:
    """Start simulators for a test and stop them all afterwards (fast heartbeats by default)."""

    def __init__(self) -> None:
        self.started: list[SimProcess] = []

    def __call__(self, **kwargs: Any) -> SimProcess:
        kwargs.setdefault("heartbeat_seconds", 1)
        sim = start_simulator(**kwargs)
        self.started.append(sim)
        return sim

    def stop(self) -> None:
        for sim in self.started:
            sim.stop()
