"""Event-loop lag: how late a greenlet that asks to sleep a fixed tick wakes up. Anything that blocks the gevent
hub (a C call that does not yield, a long CPU-bound loop) shows up here as lag. Used by the comms node's status
(System › Comms Nodes, /api/v1/comms_node/) and by the benchmarks."""

from __future__ import annotations

import time
from collections import deque

import gevent

TICK_SECONDS = 0.05
WINDOW_SECONDS = 60.0


class LoopLagMonitor:
    """Samples the loop's lag every tick; reports max and p99 over the last window, and the max since start."""

    def __init__(self, tick: float = TICK_SECONDS, window: float = WINDOW_SECONDS) -> None:
        self.tick = tick
        self.samples: deque[tuple[float, float]] = deque(maxlen=int(window / tick) + 1)
        self.window = window
        self.max_since_start = 0.0
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> LoopLagMonitor:
        """Begin sampling in a greenlet."""
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)
        return self

    def stop(self) -> None:
        """Stop sampling."""
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None

    def _run(self) -> None:
        while True:
            before = time.monotonic()
            gevent.sleep(self.tick)
            now = time.monotonic()
            lag = max(0.0, now - before - self.tick)
            self.samples.append((now, lag))
            self.max_since_start = max(self.max_since_start, lag)

    def snapshot(self) -> dict[str, float]:
        """Lag in milliseconds: max and p99 over the window, max since start, and the number of samples."""
        cutoff = time.monotonic() - self.window
        lags = sorted(lag for at, lag in self.samples if at >= cutoff)
        if not lags:
            return {"max_ms": 0.0, "p99_ms": 0.0, "max_since_start_ms": round(self.max_since_start * 1000, 1),
                    "samples": 0}
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        return {"max_ms": round(lags[-1] * 1000, 1), "p99_ms": round(p99 * 1000, 1),
                "max_since_start_ms": round(self.max_since_start * 1000, 1), "samples": len(lags)}


_process_monitor: LoopLagMonitor | None = None


def process_monitor() -> LoopLagMonitor:
    """This process's one monitor (web, comms node and task consumers share the gevent hub), started on first use."""
    global _process_monitor
    if _process_monitor is None:
        _process_monitor = LoopLagMonitor().start()
    return _process_monitor
