"""A live HES per module and simulated meters over real sockets, for the per-meter session rules."""

from __future__ import annotations

import pytest

from tests.remote.conftest import FAST
from tests.support.live import LiveHes, brand_id
from tests.support.simulator import PASSWORD


def start_hes(data_dir, env: dict[str, str]) -> LiveHes:
    """A running HES whose hes_sim brand has the simulator's password (patient start: the machine is shared)."""
    live = LiveHes(data_dir, env=env).start(timeout=180)
    brand = brand_id(live)
    assert live.api("PUT", f"/brand/{brand}/credentials", json={"password": PASSWORD.decode()}).status_code == 200
    return live


@pytest.fixture(scope="module")
def hes(tmp_path_factory):
    """A running HES for the module."""
    live = start_hes(tmp_path_factory.mktemp("hes-sessions"), {**FAST, "HES_PROCESS_HEARTBEAT_SECONDS": "2"})
    yield live
    live.stop()
