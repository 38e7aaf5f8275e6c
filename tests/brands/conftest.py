"""A live HES (``run.py``) and simulators over real sockets, for brand onboarding tests."""

from __future__ import annotations

import pytest

from tests.support.live import add_dial_out_meter, start_with_simulator_password


@pytest.fixture(scope="module")
def hes(tmp_path_factory):
    """A running HES whose hes_sim brand holds the simulator's LLS password."""
    live = start_with_simulator_password(tmp_path_factory.mktemp("hes-brands"), {"HES_RESPONSE_TIMEOUT": "5"})
    yield live
    live.stop()


def dial_out_meter(hes, sim, prefix: str, index: int = 0, **fields) -> int:
    """Register a listening simulator meter (dial-out) with a SIM pointing at its port."""
    return add_dial_out_meter(hes, sim, index, f"{prefix}-SIM{index}", **fields)
