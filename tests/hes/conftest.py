"""A live HES process and simulators dialing into it (everything over real sockets)."""

from __future__ import annotations

import pytest

from tests.support.live import start_with_simulator_password

FAST = {"HES_HEARTBEAT_SECONDS": "1", "HES_MISSED_HEARTBEATS": "3", "HES_IDENTIFY_TIMEOUT": "3",
        "HES_RESPONSE_TIMEOUT": "5"}


@pytest.fixture(scope="module")
def hes(tmp_path_factory):
    """A running HES with fast heartbeat supervision (1 s heartbeats, 3 missed = offline)."""
    live = start_with_simulator_password(tmp_path_factory.mktemp("hes-live"), FAST)
    yield live
    live.stop()
