"""A live HES with a push listener, and simulators showing real meters' behaviours (everything over real sockets)."""

from __future__ import annotations

import re
import sqlite3

import pytest
import requests

from tests.support.live import ADMIN_USER, LiveHes, free_port, start_with_simulator_password

FAST = {"HES_HEARTBEAT_SECONDS": "1", "HES_MISSED_HEARTBEATS": "3", "HES_IDENTIFY_TIMEOUT": "3",
        "HES_RESPONSE_TIMEOUT": "5"}


@pytest.fixture(scope="module")
def hes(tmp_path_factory):
    """A running HES listening for meters and, on HES_PUSH_LISTEN, for pushes."""
    live = start_with_simulator_password(tmp_path_factory.mktemp("hes-interop"),
                                         {**FAST, "HES_PUSH_LISTEN": f"127.0.0.1:{free_port()}"})
    yield live
    live.stop()


def push_address(hes: LiveHes) -> str:
    """host:port of the HES push listener."""
    return hes.env["HES_PUSH_LISTEN"]


def stored_readings(hes: LiveHes, meter_id: int, obis: str) -> list[tuple]:
    """(value, source) rows the HES stored for a meter's channel, read from its database file."""
    with sqlite3.connect(hes.data_dir / "hes.db") as conn:
        return conn.execute("SELECT r.value, r.source FROM reading r JOIN channel c ON c.id = r.channel_id "
                            "WHERE r.meter_id = ? AND c.obis = ? ORDER BY r.ts", (meter_id, obis)).fetchall()


def node_counters(hes: LiveHes) -> dict:
    """The push counters of the node as its API shows them."""
    rows = hes.api("GET", "/comms_node/").json()["result"]
    return rows[0]["counters"] or {}


def node_page_counters(hes: LiveHes) -> dict[str, int]:
    """The counters System > Comms Nodes shows a signed-in admin (first node's row), read from the page."""
    web = requests.Session()
    page = web.get(f"{hes.url}/login/", timeout=10).text
    token = page.split('name="csrf_token"')[1].split('value="')[1].split('"')[0]
    web.post(f"{hes.url}/login/", data={"username": ADMIN_USER, "password": hes.password, "csrf_token": token},
             timeout=10)
    html = web.get(f"{hes.url}/nodes/", timeout=10).text
    row = html.split('<tr data-node="', 1)[1].split("</tr>", 1)[0]
    return {key: int(value) for key, value in re.findall(r'data-counter="(\w+)">(\d+)<', row)}
