"""A live HES (``run.py``) per test module and simulated meters over real sockets, for the remote commands."""

from __future__ import annotations

import pytest

from tests.support.live import LiveHes
from tests.support.simulator import PASSWORD, start_simulator

FAST = {"HES_HEARTBEAT_SECONDS": "1", "HES_MISSED_HEARTBEATS": "3", "HES_IDENTIFY_TIMEOUT": "3",
        "HES_RESPONSE_TIMEOUT": "5", "HES_COMMAND_RETRY_SECONDS": "1", "HES_DIAL_ATTEMPTS": "1"}


@pytest.fixture(scope="module")
def hes(tmp_path_factory):
    """A running HES whose hes_sim brand has the simulator's password."""
    live = LiveHes(tmp_path_factory.mktemp("hes-remote"), env=FAST).start()
    brand = live.api("GET", "/brand/?q=(filters:!((col:name,opr:eq,value:hes_sim)))").json()["ids"][0]
    assert live.api("PUT", f"/brand/{brand}/credentials", json={"password": PASSWORD.decode()}).status_code == 200
    yield live
    live.stop()


@pytest.fixture
def simulators():
    """Start simulators (stopped after the test)."""
    started = []

    def start(**kwargs):
        kwargs.setdefault("heartbeat_seconds", 1)
        sim = start_simulator(**kwargs)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


def add_meter(hes: LiveHes, number: str, **fields) -> int:
    """Register a hes_sim meter through the REST API; returns its id."""
    brand_id = hes.api("GET", "/brand/?q=(filters:!((col:name,opr:eq,value:hes_sim)))").json()["ids"][0]
    resp = hes.api("POST", "/meter/", json={"number": number, "brand": brand_id, "status": "active",
                                            "comm_mode": "dial_in", **fields})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def add_dialout_meter(hes: LiveHes, sim, index: int, **fields) -> int:
    """Register a listening simulator meter with a SIM pointing at its port."""
    resp = hes.api("POST", "/sim/", json={"number": f"SIM-{sim.serial(index)}", "ip_address": "127.0.0.1",
                                          "port": sim.port(index)})
    assert resp.status_code == 201, resp.text
    return add_meter(hes, sim.serial(index), comm_mode="dial_out", sim=resp.json()["id"], **fields)


def meter(hes: LiveHes, meter_id: int) -> dict:
    """The meter as the API shows it."""
    return hes.api("GET", f"/meter/{meter_id}").json()["result"]


def command(hes: LiveHes, command_id: int) -> dict:
    """A command as the API shows it."""
    return hes.api("GET", f"/command/{command_id}").json()["result"]


def send(hes: LiveHes, kind: str, meter_id: int, wait: float = 30, **fields):
    """POST a command and wait for its outcome; returns the response."""
    return hes.api("POST", "/command/", json={"kind": kind, "meter_id": meter_id, "wait": wait, **fields})
