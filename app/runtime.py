"""The long-running parts of an HES process besides the web server, started and stopped together."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask

log = logging.getLogger(__name__)


def start_background_services(app: Flask) -> Callable[[], None]:
    """Start the comms node, the task consumer and the demo fleet; return a function that stops them."""
    stoppers: list[Callable[[], None]] = []
    for starter in _starters():
        stop = starter(app)
        if stop is not None:
            stoppers.append(stop)

    def stop_all() -> None:
        for stop in reversed(stoppers):
            try:
                stop()
            except Exception:  # one part failing to stop must not keep the others running
                log.exception("error while stopping a background service")

    return stop_all


def _starters() -> list[Callable[[Flask], Callable[[], None] | None]]:
    return []
