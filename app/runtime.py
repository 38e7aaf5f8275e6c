"""The long-running parts of an HES process besides the web server, started and stopped together."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask

log = logging.getLogger(__name__)
Stopper = Callable[[], None]


def start_background_services(app: Flask) -> Stopper:
    """Start the comms node, the task consumer and the demo fleet; return a function that stops them."""
    stoppers: list[Stopper] = []
    for starter in (start_comms_node, start_demo_fleet):
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


def start_comms_node(app: Flask) -> Stopper | None:
    """Listen for dial-in meters on HES_METER_LISTEN (unless HES_COMMS=off for a web-only process)."""
    if str(app.config.get("HES_COMMS", "on")).lower() == "off":
        return None
    from app.comms.node import CommsNode

    node = CommsNode(app).start()
    return node.stop


def start_demo_fleet(app: Flask) -> Stopper | None:
    """Register and start HES_DEMO_METERS simulated meters dialing in to this node."""
    count = int(app.config.get("HES_DEMO_METERS", 0))
    if count <= 0:
        return None
    from app.comms.node import get_node
    from app.services.demo import start_demo

    node = get_node()
    if node is None:
        log.warning("demo fleet needs the comms node; skipped")
        return None
    return start_demo(app, count, node.listen)
