"""Fixtures for DLMS tests: the meter simulator as a subprocess on 127.0.0.1, and sessions to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.simulator import (  # noqa: F401  (re-exported for the tests in this folder)
    AUTH_KEY,
    BLOCK_KEY,
    CLIENT_TITLE,
    PASSWORD,
    SimProcess,
    start_simulator,
)


@pytest.fixture
def sim_factory() -> Iterator[Callable[..., SimProcess]]:
    """Start simulators with custom options; all are stopped after the test."""
    started: list[SimProcess] = []

    def factory(**kwargs: Any) -> SimProcess:
        sim = start_simulator(**kwargs)
        started.append(sim)
        return sim

    yield factory
    for sim in started:
        sim.stop()


@pytest.fixture(scope="session")
def sim_wrapper_lls() -> Iterator[SimProcess]:
    """Wrapper + LLS fleet (management client password PASSWORD), 8 meters for dial-out."""
    sim = start_simulator(meters=8, interface="wrapper", auth="low")
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def sim_hdlc_gmac() -> Iterator[SimProcess]:
    """HDLC + HLS-GMAC fleet with non-default keys, meters at UTC+01:00, 6 meters."""
    sim = start_simulator(meters=6, interface="hdlc", auth="high_gmac", utc_offset_minutes=60, seed=11)
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def sim_wrapper_gmac() -> Iterator[SimProcess]:
    """Wrapper + HLS-GMAC fleet, 4 meters."""
    sim = start_simulator(meters=4, interface="wrapper", auth="high_gmac", seed=13)
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def sim_hdlc_none() -> Iterator[SimProcess]:
    """HDLC fleet whose management client needs no authentication, 2 meters."""
    sim = start_simulator(meters=2, interface="hdlc", auth="none", seed=17)
    yield sim
    sim.stop()
