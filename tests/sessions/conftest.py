"""A live HES per module and simulated meters over real sockets, for the per-meter session rules."""

from __future__ import annotations

import pytest

from tests.remote.conftest import FAST, simulators  # noqa: F401  (fixture re-exported)
from tests.support.live import start_with_simulator_password


@pytest.fixture(scope="module")
def hes(tmp_path_factory):
    """A running HES whose hes_sim brand has the simulator's password."""
    live = start_with_simulator_password(tmp_path_factory.mktemp("hes-sessions"), FAST)
    yield live
    live.stop()
