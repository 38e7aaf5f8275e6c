"""A live HES (``run.py``) per test module and simulated meters over real sockets, for the remote commands."""

from __future__ import annotations

import pytest

from tests.support.live import LiveHes, add_dial_out_meter, add_meter, meter, start_with_simulator_password  # noqa: F401

FAST = {"HES_HEARTBEAT_SECONDS": "1", "HES_MISSED_HEARTBEATS": "3", "HES_IDENTIFY_TIMEOUT": "3",
        "HES_RESPONSE_TIMEOUT": "5", "HES_COMMAND_RETRY_SECONDS": "1", "HES_DIAL_ATTEMPTS": "1"}


@pytest.fixture(scope="module")
def hes(tmp_path_factory):
    """A running HES whose hes_sim brand has the simulator's password."""
    live = start_with_simulator_password(tmp_path_factory.mktemp("hes-remote"), FAST)
    yield live
    live.stop()


def add_dialout_meter(hes: LiveHes, sim, index: int, **fields) -> int:
    """Register a listening simulator meter with a SIM pointing at its port."""
    return add_dial_out_meter(hes, sim, index, f"SIM-{sim.serial(index)}", **fields)


def command(hes: LiveHes, command_id: int) -> dict:
    """A command as the API shows it."""
    return hes.api("GET", f"/command/{command_id}").json()["result"]


def send(hes: LiveHes, kind: str, meter_id: int, wait: float = 30, **fields):
    """POST a command and wait for its outcome; returns the response."""
    return hes.api("POST", "/command/", json={"kind": kind, "meter_id": meter_id, "wait": wait, **fields})
