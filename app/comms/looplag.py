"""Event-loop lag: how late a greenlet that asks to sleep a fixed tick wakes up. Anything that blocks the gevent
hub (a C call that does not yield, a long CPU-bound loop) shows up here as lag. Used by the comms node's status
(System › Comms Nodes, /api/v1/comms_node/) and by the benchmarks."""

from __future__ import annotations

import gc
import logging
import os
import sys
import time
import traceback
from collections import deque

import gevent
from gevent import monkey

log = logging.getLogger(__name__)

TICK_SECONDS = 0.05
WINDOW_SECONDS = 60.0


class LoopLagMonitor:
    """Samples the loop's lag every tick; reports max and p99 over the last window, and the max since start."""

    def __init__(self, tick: float = TICK_SECONDS, window: float = WINDOW_SECONDS) -> None:
        self.tick = tick
        self.samples: deque[tuple[float, float]] = deque(maxlen=int(window / tick) + 1)
        self.window = window
        self.max_since_start = 0.0
        self.last_wake = time.monotonic()
        self._greenlet: gevent.Greenlet | None = None
        self.stalls: deque[str] = deque(maxlen=20)  # stacks caught by the stall tracer, logged from the loop

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
            self.last_wake = now
            lag = max(0.0, now - before - self.tick)
            self.samples.append((now, lag))
            self.max_since_start = max(self.max_since_start, lag)
            while self.stalls:
                log.warning("event loop stalled %.0f ms; the loop's thread was in:\n%s", lag * 1000,
                            self.stalls.popleft())

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


class StallTracer:
    """A native thread that, when the loop has not woken for ``threshold`` seconds past its tick, captures the
    loop thread's stack once per stall (HES_LOOP_STALL_TRACE_MS; off by default). Much cheaper than gevent's
    own monitor, which dumps every greenlet: with thousands of meter connections that dump is itself a stall.
    The stack is handed to the monitor, which logs it from the loop (logging's locks are gevent's here)."""

    def __init__(self, monitor: LoopLagMonitor, threshold: float) -> None:
        self.monitor, self.threshold = monitor, threshold
        self.loop_thread = monkey.get_original("threading", "get_ident")()
        self.running = True
        start_new_thread = monkey.get_original("_thread", "start_new_thread")
        start_new_thread(self._run, ())

    def _run(self) -> None:
        sleep = monkey.get_original("time", "sleep")
        caught_at = None
        while self.running:
            sleep(self.threshold / 4)
            last = self.monitor.last_wake
            if time.monotonic() - last < self.monitor.tick + self.threshold or caught_at == last:
                continue
            frame = sys._current_frames().get(self.loop_thread)
            if frame is not None:
                caught_at = last
                self.monitor.stalls.append("".join(traceback.format_stack(frame, limit=30)))


class GcPauses:
    """How long the garbage collector held the process, per collection (a ``gc.callbacks`` entry): a full
    collection walks every tracked object, which in a node holding thousands of meter connections is a stall
    of its own that no greenlet can yield out of."""

    def __init__(self, window: float = WINDOW_SECONDS) -> None:
        self.window = window
        self.samples: deque[tuple[float, int, float]] = deque(maxlen=10_000)
        self.max_since_start = 0.0
        self._began: float | None = None

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        elif self._began is not None:
            took = time.perf_counter() - self._began
            self._began = None
            self.samples.append((time.monotonic(), info.get("generation", 0), took))
            self.max_since_start = max(self.max_since_start, took)

    def install(self) -> GcPauses:
        """Start measuring (once per process)."""
        if self not in gc.callbacks:
            gc.callbacks.append(self)
        return self

    def snapshot(self) -> dict[str, float]:
        """The longest collection over the window and since start (ms), and the full collections in the window."""
        cutoff = time.monotonic() - self.window
        recent = [(gen, took) for at, gen, took in list(self.samples) if at >= cutoff]
        return {"gc_max_ms": round(max((took for _gen, took in recent), default=0.0) * 1000, 1),
                "gc_full_collections": sum(1 for gen, _took in recent if gen == 2),
                "gc_max_since_start_ms": round(self.max_since_start * 1000, 1)}


_process_monitor: LoopLagMonitor | None = None
_gc_pauses: GcPauses | None = None


def gc_pauses() -> GcPauses:
    """This process's garbage-collector pause record, installed on first use."""
    global _gc_pauses
    if _gc_pauses is None:
        _gc_pauses = GcPauses().install()
    return _gc_pauses


class GcFreezer:
    """Keeps full collections short: after each one, its survivors (all live by definition) are frozen with
    ``gc.freeze``, so the next full collection walks only what was made since, not every meter connection again
    (the 5,000-meter soak saw six full collections a minute of up to 1.4 s each). Cycles among frozen objects that
    die later are not reclaimed until a thaw: every ``thaw_hours`` the permanent generation is handed back to the
    collector once (one full-length collection), then frozen again."""

    def __init__(self, thaw_hours: float = 6.0) -> None:
        self.thaw_seconds = thaw_hours * 3600
        self.last_thaw = time.monotonic()

    def __call__(self, phase: str, info: dict) -> None:
        if phase != "stop" or info.get("generation") != 2:
            return
        if self.thaw_seconds and time.monotonic() - self.last_thaw >= self.thaw_seconds:
            gc.unfreeze()  # the next full collection walks everything and reclaims what died frozen
            self.last_thaw = time.monotonic()
        else:
            gc.freeze()

    def install(self) -> GcFreezer:
        """Freeze the start-up heap now (after one collection) and every full collection's survivors from now on."""
        gc.collect()
        gc.freeze()
        if self not in gc.callbacks:
            gc.callbacks.append(self)
        return self


def freeze_heap(thaw_hours: float = 6.0) -> int:
    """Install this process's ``GcFreezer`` (call when start-up is done, before meters connect). Returns the count
    of objects frozen."""
    GcFreezer(thaw_hours).install()
    return gc.get_freeze_count()


def process_monitor() -> LoopLagMonitor:
    """This process's one monitor (web, comms node and task consumers share the gevent hub), started on first use."""
    global _process_monitor
    if _process_monitor is None:
        _process_monitor = LoopLagMonitor().start()
        trace_ms = float(os.environ.get("HES_LOOP_STALL_TRACE_MS") or 0)
        if trace_ms > 0:
            StallTracer(_process_monitor, trace_ms / 1000)
    return _process_monitor
