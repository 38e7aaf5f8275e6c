"""Browser fixtures (a pytest plugin, loaded once for the whole run by tests/conftest.py): the real HES
(``python run.py``) in a subprocess on free 127.0.0.1 ports, driven by Debian's chromium through
Playwright's sync API; every page visited can be saved under ``test-artifacts/screenshots/``.
One server and one browser serve every folder: Playwright's sync API allows a single instance."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
ADMIN_USER, ADMIN_PASSWORD = "admin", "Browser-Test-Pw-1"
VIEWPORT = {"width": 1440, "height": 900}
START_TIMEOUT = 90


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    """A running HES process: its URL, data dir and an admin API session."""

    url: str
    data_dir: Path
    process: subprocess.Popen
    log_path: Path
    meter_listen: str

    def token(self, username: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> dict:
        """JWT auth headers from ``POST /api/v1/security/login``."""
        resp = requests.post(f"{self.url}/api/v1/security/login", timeout=10,
                             json={"username": username, "password": password, "provider": "db"})
        resp.raise_for_status()
        return {"Authorization": f"Bearer {resp.json()['access_token']}"}

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        """Call the REST API as the admin."""
        headers = kwargs.pop("headers", None) or self.token()
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)

    def add_dial_out_meter(self, headers: dict, brand_id: int, sim, sim_number: str, password: bytes = b"") -> int:
        """Register simulated meter 0 of ``sim`` as an active dial-out meter of ``brand_id`` behind a SIM at its
        address (with its own LLS ``password`` when given); returns the meter's id."""
        simcard = self.api("POST", "/api/v1/sim/", headers=headers, json={
            "number": sim_number, "ip_address": "127.0.0.1", "port": sim.port(0)})
        assert simcard.status_code == 201, simcard.text
        meter = self.api("POST", "/api/v1/meter/", headers=headers, json={
            "number": sim.serial(0), "brand": brand_id, "status": "active", "comm_mode": "dial_out",
            "sim": simcard.json()["id"]})
        assert meter.status_code == 201, meter.text
        if password:
            assert self.api("PUT", f"/api/v1/meter/{meter.json()['id']}/credentials", headers=headers,
                            json={"password": password.decode()}).status_code == 200
        return meter.json()["id"]

    def sql(self, statement: str, params: tuple = ()) -> None:
        """Write to the server's SQLite database directly, as the comms node would (e.g. mark meters online)."""
        with sqlite3.connect(self.data_dir / "hes.db", timeout=10) as conn:
            conn.execute(statement, params)

    def log(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _server_env(data_dir: Path, web_port: int, meter_listen: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HES_") and k not in ("DATABASE_URL", "SECRET_KEY", "FLASK_APP")}
    env.update(HES_DATA_DIR=str(data_dir), HES_ADMIN_USER=ADMIN_USER, HES_ADMIN_PASSWORD=ADMIN_PASSWORD,
               HES_DEMO_METERS="0", HES_METER_LISTEN=meter_listen, HES_WEB_HOST="127.0.0.1",
               HES_WEB_PORT=str(web_port), HES_LOGIN_RATE_LIMIT="1000 per minute", HES_LOG_LEVEL="WARNING",
               PYTHONUNBUFFERED="1",
               # The browser fleet marks dial-in meters online in the database with no connection behind them;
               # supervision rightly takes them offline once silent past the missed heartbeats (6 min by
               # default), which a slow run reaches before the last page is checked. 10 h of silence instead.
               HES_MISSED_HEARTBEATS="300")
    return env


@contextmanager
def running_server(data_dir: Path) -> Iterator[LiveServer]:
    """``python run.py`` on ``data_dir`` and free ports, up and answering; stopped on exit."""
    port, meter_listen = free_port(), f"127.0.0.1:{free_port()}"
    log_path = data_dir / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "run.py"], cwd=ROOT, env=_server_env(data_dir, port, meter_listen),
                                   stdout=log, stderr=subprocess.STDOUT)
    server = LiveServer(f"http://127.0.0.1:{port}", data_dir, process, log_path, meter_listen)
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"the HES server exited with {process.returncode}:\n{server.log()[-4000:]}")
            try:
                if requests.get(f"{server.url}/login/", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the HES server did not answer within {START_TIMEOUT}s:\n{server.log()[-4000:]}")
            time.sleep(0.3)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> Iterator[LiveServer]:
    """The HES shared by the browser tests (and their fleet) for the whole session."""
    with running_server(tmp_path_factory.mktemp("hes-live")) as server:
        yield server


@pytest.fixture(scope="module")
def private_server(tmp_path_factory) -> Iterator[LiveServer]:
    """A HES of the test module's own, for tests that add meters the shared server's fleet counts must not see."""
    with running_server(tmp_path_factory.mktemp("hes-private")) as server:
        yield server


@pytest.fixture(scope="session")
def browser():
    """Headless chromium (Debian's build) through Playwright."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def login(page, server: LiveServer, username: str, password: str) -> None:
    """Sign in through the login form and wait to land past it."""
    page.goto(f"{server.url}/login/")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


@pytest.fixture(scope="session")
def admin_state(browser, live_server) -> dict:
    """The admin's signed-in browser state (cookies), logged in once per session."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    login(page, live_server, ADMIN_USER, ADMIN_PASSWORD)
    state = context.storage_state()
    context.close()
    return state


def _signed_in_tab(browser, server: LiveServer, state: dict) -> Iterator:
    """A fresh tab with ``state``'s cookies; JavaScript errors on the page fail the test."""
    context = browser.new_context(viewport=VIEWPORT, storage_state=state, base_url=server.url, accept_downloads=True)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture
def page(browser, live_server, admin_state):
    """A fresh tab on the shared server, signed in as the admin."""
    yield from _signed_in_tab(browser, live_server, admin_state)


@pytest.fixture
def private_page(browser, private_server):
    """A fresh tab on the module's own server, signed in as the admin."""
    context = browser.new_context(viewport=VIEWPORT)
    login(context.new_page(), private_server, ADMIN_USER, ADMIN_PASSWORD)
    state = context.storage_state()
    context.close()
    yield from _signed_in_tab(browser, private_server, state)


@pytest.fixture
def new_context(browser, live_server):
    """Factory for extra signed-out browser contexts (other users); closed after the test."""
    contexts = []

    def factory(**kwargs):
        context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url, **kwargs)
        contexts.append(context)
        return context

    yield factory
    for context in contexts:
        context.close()


def screenshot(page, name: str, full_page: bool = True) -> Path:
    """Save what the page shows as ``test-artifacts/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(350)  # let entrance animations (toasts, charts) settle
    page.screenshot(path=str(path), full_page=full_page)
    return path
