"""A live HES process and simulators dialing into it (everything over real sockets)."""

from __future__ import annotations

import pytest

from tests.support.live import LiveHes
from tests.support.simulator import PASSWORD, start_simulator


@pytest.fixture(scope="module")
def hes(tmp_path_factory):
    """A running HES with fast heartbeat supervision (1 s heartbeats, 2 missed = offline)."""
    live = LiveHes(tmp_path_factory.mktemp("hes-live"),
                   env={"HES_HEARTBEAT_SECONDS": "1", "HES_MISSED_HEARTBEATS": "3", "HES_IDENTIFY_TIMEOUT": "3",
                        "HES_RESPONSE_TIMEOUT": "5"}).start()
    brand = live.api("GET", "/brand/?q=(filters:!((col:name,opr:eq,value:hes_sim)))").json()["ids"][0]
    resp = live.api("PUT", f"/brand/{brand}/credentials", json={"password": PASSWORD.decode()})
    assert resp.status_code == 200, resp.text
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
    """Register a meter through the REST API; returns its id."""
    brand = fields.pop("brand", "hes_sim")
    brand_id = hes.api("GET", f"/brand/?q=(filters:!((col:name,opr:eq,value:{brand})))").json()["ids"][0]
    body = {"number": number, "brand": brand_id, "status": "active", "comm_mode": "dial_in", **fields}
    resp = hes.api("POST", "/meter/", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def meter(hes: LiveHes, meter_id: int) -> dict:
    """The meter as the API shows it."""
    return hes.api("GET", f"/meter/{meter_id}").json()["result"]
