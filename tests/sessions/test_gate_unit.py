"""The meter gate's rules without a meter: priority order of waiters, lending to urgent ones only, the busy
timeout; and the loop-lag monitor seeing a blocked loop."""

from __future__ import annotations

import threading
import time

import gevent
import pytest

from app.comms.looplag import LoopLagMonitor
from app.services.meter_gate import LocalGate, MeterBusy


def _start(target, *args) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    time.sleep(0.02)  # arrive in the order given
    return thread


def test_waiters_get_the_meter_by_priority_then_age():
    gate = LocalGate()
    holder = gate.acquire(1, 10, wait=1)
    order: list[str] = []

    def wait(name: str, priority: int) -> None:
        turn = gate.acquire(1, priority, wait=5)
        order.append(name)
        time.sleep(0.01)
        gate.release(turn)

    waiters = [_start(wait, name, priority) for name, priority in
               (("schedule", 10), ("command", 50), ("read", 100), ("command-2", 50))]
    time.sleep(0.1)
    gate.release(holder)
    for waiter in waiters:
        waiter.join(timeout=5)
    assert order == ["read", "command", "command-2", "schedule"]
    assert not gate.busy(1)


def test_a_holder_lends_its_session_to_urgent_waiters_only():
    gate = LocalGate()
    holder = gate.acquire(7, 20, wait=1)
    seen: dict[str, object] = {}

    def wait(name: str, priority: int) -> None:
        turn = gate.acquire(7, priority, wait=5)
        seen[name] = turn.lent
        gate.release(turn)

    urgent = _start(wait, "command", 50)
    later = _start(wait, "schedule", 10)
    time.sleep(0.1)
    assert gate.urgent_waiters(7) == 1
    assert gate.lend(7, "the-session") == 1
    assert seen == {"command": "the-session"}  # ran inside the holder's session; the schedule still waits
    gate.release(holder)
    urgent.join(timeout=5)
    later.join(timeout=5)
    assert seen["schedule"] is None  # it got the meter to itself, opening its own session


def test_a_waiter_gives_up_after_its_wait_with_a_busy_error():
    gate = LocalGate()
    gate.acquire(3, 20, wait=1)
    with pytest.raises(MeterBusy):
        gate.acquire(3, 10, wait=0.1)
    assert gate.urgent_waiters(3) == 0


def test_loop_lag_monitor_sees_a_blocked_loop():
    monitor = LoopLagMonitor(tick=0.01).start()
    try:
        gevent.sleep(0.1)
        quiet = monitor.snapshot()
        time.sleep(0.3)  # blocks the loop: nothing else runs
        gevent.sleep(0.05)
        blocked = monitor.snapshot()
    finally:
        monitor.stop()
    assert blocked["samples"] > quiet["samples"]
    assert blocked["max_ms"] >= 250 and blocked["max_since_start_ms"] >= 250
    assert blocked["p99_ms"] <= blocked["max_ms"]


def _hold_the_loop() -> None:
    time.sleep(0.4)  # a call that does not yield to the hub


def test_stall_tracer_logs_where_the_loop_thread_was(caplog):
    from app.comms.looplag import StallTracer

    monitor = LoopLagMonitor(tick=0.01).start()
    tracer = StallTracer(monitor, threshold=0.1)
    try:
        gevent.sleep(0.1)
        with caplog.at_level("WARNING", logger="app.comms.looplag"):
            gevent.sleep(0.3)
            assert not caplog.records  # a quiet loop is not traced
            _hold_the_loop()
            gevent.sleep(0.05)
    finally:
        tracer.running = False
        monitor.stop()
    stalls = [r.getMessage() for r in caplog.records if "event loop stalled" in r.getMessage()]
    assert len(stalls) == 1  # one stall, one stack
    assert "_hold_the_loop" in stalls[0] and "time.sleep(0.4)" in stalls[0]


def test_gc_pauses_are_measured_per_collection():
    import gc

    from app.comms.looplag import GcPauses

    pauses = GcPauses().install()
    try:
        garbage = []
        for _ in range(20_000):
            cycle: list = []
            cycle.append(cycle)
            garbage.append(cycle)
        del garbage
        gc.collect()
        snap = pauses.snapshot()
    finally:
        gc.callbacks.remove(pauses)
    assert snap["gc_full_collections"] >= 1  # gc.collect() is a full (generation 2) collection
    assert 0 < snap["gc_max_ms"] <= snap["gc_max_since_start_ms"]


def test_full_collections_walk_only_what_was_made_since_the_last_one():
    import gc

    from app.comms.looplag import GcFreezer

    freezer = GcFreezer(thaw_hours=6).install()
    try:
        assert gc.get_freeze_count() > 10_000  # the start-up heap: interpreter, pytest, the app's modules
        live = [[i] for i in range(100_000)]  # a fleet's worth of long-lived objects
        gc.collect()
        frozen = gc.get_freeze_count()
        assert frozen > 100_000  # the survivors of that full collection were frozen
        assert len(gc.get_objects(2)) < 1_000  # the next full collection has almost nothing to walk
        freezer.last_thaw -= 7 * 3600  # six hours on: a thaw is due
        dead_cycle: list = []
        dead_cycle.append(dead_cycle)
        gc.collect()  # this full collection thaws ...
        assert gc.get_freeze_count() == 0
        survivors = gc.get_objects(2)
        assert len(survivors) > 100_000  # ... so the one after walks everything again and reclaims what died
        del survivors
        gc.collect()
        assert gc.get_freeze_count() > 100_000 and len(live) == 100_000
    finally:
        gc.callbacks.remove(freezer)
        gc.unfreeze()
