"""A real HES process (``python run.py``) on free 127.0.0.1 ports, driven over HTTP like a client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
ADMIN_USER = "admin"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveHes:
    """``run.py`` in a subprocess with its own data dir, plus an authenticated API client."""

    def __init__(self, data_dir: Path, *, env: dict[str, str] | None = None, password: str = "Live-Test-Pw-1",
                 command: list[str] | None = None, web: bool = True, web_port: int | None = None,
                 meter_port: int | None = None):
        self.command = command or [sys.executable, "run.py"]
        self.web = web
        self.data_dir = data_dir
        self.password = password
        self.web_port = web_port or free_port()
        self.meter_port = meter_port or free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.env = dict(os.environ, HES_DATA_DIR=str(data_dir), HES_WEB_HOST="127.0.0.1",
                        HES_WEB_PORT=str(self.web_port), HES_METER_LISTEN=f"127.0.0.1:{self.meter_port}",
                        HES_ADMIN_USER=ADMIN_USER, HES_ADMIN_PASSWORD=password, HES_DEMO_METERS="0",
                        HES_RATELIMIT_ENABLED="false", PYTHONPATH=str(ROOT), **(env or {}))
        self.proc: subprocess.Popen | None = None
        self.http = requests.Session()
        self.log_path = data_dir / "hes.log"

    @property
    def meter_address(self) -> str:
        """host:port the simulated meters dial."""
        return f"127.0.0.1:{self.meter_port}"

    def start(self, timeout: float = 120.0) -> LiveHes:
        """Start the process and wait until the API answers; log in as admin."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115  (closed with the process)
        self.proc = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"HES exited early:\n{self.tail()}")
            try:
                if self.web and self.login():
                    return self
                if not self.web:
                    with socket.create_connection(("127.0.0.1", self.meter_port), timeout=1):
                        return self
            except (requests.ConnectionError, OSError):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"HES did not start in {timeout:.0f} s:\n{self.tail()}")

    def login(self, username: str = ADMIN_USER, password: str | None = None) -> bool:
        """Get a JWT for the API client."""
        resp = self.http.post(f"{self.url}/api/v1/security/login", timeout=10, json={
            "username": username, "password": password or self.password, "provider": "db"})
        if resp.status_code != 200:
            return False
        self.http.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"
        return True

    def web_session(self) -> requests.Session:
        """A browser-like session signed in to the console as the admin (form login with its CSRF token)."""
        web = requests.Session()
        page = web.get(f"{self.url}/login/", timeout=10).text
        token = page.split('name="csrf_token"')[1].split('value="')[1].split('"')[0]
        web.post(f"{self.url}/login/", data={"username": ADMIN_USER, "password": self.password,
                                             "csrf_token": token}, timeout=10)
        return web

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Call the REST API (path below /api/v1)."""
        kwargs.setdefault("timeout", 60)
        return self.http.request(method, f"{self.url}/api/v1{path}", **kwargs)

    def wait_for(self, predicate, timeout: float = 20.0, interval: float = 0.25, what: str = "condition"):
        """Poll until predicate() is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        """The end of the process log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """kill -9: the process dies without any chance to clean up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Terminate the process (SIGTERM, then SIGKILL)."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


def start_with_simulator_password(data_dir: Path, env: dict[str, str]) -> LiveHes:
    """A running HES whose hes_sim brand holds the test simulator's LLS password."""
    from tests.support.simulator import PASSWORD

    live = LiveHes(data_dir, env=env).start()
    brand = brand_id(live)
    assert live.api("PUT", f"/brand/{brand}/credentials", json={"password": PASSWORD.decode()}).status_code == 200
    return live


def brand_id(hes: LiveHes, name: str = "hes_sim") -> int:
    """The id of a brand by name."""
    return hes.api("GET", f"/brand/?q=(filters:!((col:name,opr:eq,value:{name})))").json()["ids"][0]


def add_meter(hes: LiveHes, number: str, **fields) -> int:
    """Register an active dial-in meter (hes_sim unless ``brand`` names another) via the REST API."""
    brand = brand_id(hes, fields.pop("brand", "hes_sim"))
    resp = hes.api("POST", "/meter/", json={"number": number, "brand": brand, "status": "active",
                                            "comm_mode": "dial_in", **fields})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def add_sim(hes: LiveHes, number: str, port: int, ip_address: str = "127.0.0.1") -> int:
    """Register a SIM at ip:port. A stopped simulator's ephemeral port can be handed out again within one
    module's HES, so an older test's SIM still holding that address is removed first (its meter keeps no SIM)."""
    stale = hes.api("GET", f"/sim/?q=(filters:!((col:ip_address,opr:eq,value:'{ip_address}'),"
                           f"(col:port,opr:eq,value:{port})))").json()["ids"]
    for sim_id in stale:
        assert hes.api("DELETE", f"/sim/{sim_id}").status_code == 200
    resp = hes.api("POST", "/sim/", json={"number": number, "ip_address": ip_address, "port": port})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def add_dial_out_meter(hes: LiveHes, sim, index: int, sim_number: str, **fields) -> int:
    """Register a simulator meter that listens (dial-out) with a SIM pointing at its port."""
    sim_id = add_sim(hes, sim_number, sim.port(index))
    return add_meter(hes, sim.serial(index), comm_mode="dial_out", sim=sim_id, **fields)


def meter(hes: LiveHes, meter_id: int) -> dict:
    """The meter as the API shows it."""
    return hes.api("GET", f"/meter/{meter_id}").json()["result"]
