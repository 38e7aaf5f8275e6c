"""One association per meter at a time: every read, schedule, command and firmware transfer on a meter
takes its turn at that meter's gate.

Waiters are served by priority (on-demand reads, then commands, then firmware, then schedules), oldest
first within a priority. A long holder (a firmware transfer) calls ``lend_to_urgent`` between blocks: each
waiting urgent operation then runs *inside the holder's association* and the holder resumes, so the
transfer's connection is never dropped and never raced by a second one.

In-process the gate is a set of events from ``threading`` (gevent's own once the process is monkey-patched, real
thread events in a plain process such as a benchmark). With Redis (``HES_REDIS_URL``, several nodes) the
process that holds a meter's turn also holds ``hes:gate:<meter>`` in Redis (a lease renewed while held,
naming its node), and waiters from other processes queue in a sorted set by priority. An urgent operation
on a meter another node holds is routed to that node's queue, where it borrows the holder's association.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from threading import Event
from typing import Any

import gevent

from app.services.meter_access import MeterUnreachable

log = logging.getLogger(__name__)
URGENT = 50  # this priority and above (on-demand reads, commands) borrow a long holder's association
LEASE_SECONDS = 30.0
POLL_SECONDS = 0.05


class MeterBusy(MeterUnreachable):
    """Another operation held the meter's only association for longer than this one could wait (retried like
    an unreachable meter, but not counted as a failed session)."""


@dataclass(eq=False)
class Turn:
    """One operation's place at a meter's gate. ``lent`` is the holder's session when the operation runs
    inside another operation's association (then it must not open its own)."""

    meter_id: int
    priority: int
    seq: int
    woken: Event = field(default_factory=Event)
    done: Event = field(default_factory=Event)
    lent: Any = None
    error: BaseException | None = None

    def sort_key(self) -> tuple[int, int]:
        return (-self.priority, self.seq)


@dataclass
class _Meter:
    holder: Turn | None = None
    waiters: list[Turn] = field(default_factory=list)


class LocalGate:
    """The gate inside one process (greenlets)."""

    def __init__(self) -> None:
        self._meters: dict[int, _Meter] = {}
        self._seq = itertools.count()
        self._lock = threading.Lock()

    def busy(self, meter_id: int) -> bool:
        """True while some operation holds the meter."""
        state = self._meters.get(meter_id)
        return state is not None and state.holder is not None

    def acquire(self, meter_id: int, priority: int, wait: float) -> Turn:
        """Wait for the meter's turn (or for a holder to lend its session); MeterBusy after ``wait`` s."""
        with self._lock:
            state = self._meters.setdefault(meter_id, _Meter())
            turn = Turn(meter_id, priority, next(self._seq))
            if state.holder is None and not state.waiters:
                state.holder = turn
                return turn
            state.waiters.append(turn)
            state.waiters.sort(key=Turn.sort_key)
        if not turn.woken.wait(timeout=wait):
            with self._lock:
                gave_up = turn in state.waiters
                if gave_up:
                    state.waiters.remove(turn)
                    self._forget(meter_id)
            if gave_up:
                raise MeterBusy(f"Meter {meter_id} is busy with another operation (waited {wait:.0f} s); "
                                "try again later.")
        return turn

    def release(self, turn: Turn) -> None:
        """End a turn: a lent one wakes its lender, a held one passes to the best waiter."""
        if turn.lent is not None:
            turn.done.set()
            return
        with self._lock:
            state = self._meters.get(turn.meter_id)
            if state is None or state.holder is not turn:
                return
            state.holder = None
            if state.waiters:
                best = state.waiters.pop(0)
                state.holder = best
                best.woken.set()
            self._forget(turn.meter_id)

    def urgent_waiters(self, meter_id: int) -> int:
        """How many urgent operations wait for this meter here."""
        state = self._meters.get(meter_id)
        return sum(1 for t in state.waiters if t.priority >= URGENT) if state else 0

    def lend(self, meter_id: int, session: Any) -> int:
        """Run every waiting urgent operation inside ``session`` (the caller holds the meter); returns how many."""
        served = 0
        while True:
            with self._lock:
                state = self._meters.get(meter_id)
                if state is None or not state.waiters or state.waiters[0].priority < URGENT:
                    return served
                turn = state.waiters.pop(0)
                turn.lent = session
                turn.woken.set()
            turn.done.wait()
            served += 1

    def _forget(self, meter_id: int) -> None:
        state = self._meters.get(meter_id)
        if state is not None and state.holder is None and not state.waiters:
            self._meters.pop(meter_id, None)


class RedisGate:
    """The cross-node part: a renewed lease per meter, a priority queue of waiters, and a request list through
    which an urgent operation elsewhere borrows the holder's association."""

    def __init__(self, url: str, node_id: str = "") -> None:
        import redis

        self.redis = redis.Redis.from_url(url)
        self.node_id = node_id
        self.process = uuid.uuid4().hex[:12]
        self._renewers: dict[int, tuple[str, gevent.Greenlet]] = {}

    @staticmethod
    def _keys(meter_id: int) -> tuple[str, str, str]:
        base = f"hes:gate:{meter_id}"
        return base, f"{base}:waiting", f"{base}:lend"

    def acquire(self, meter_id: int, priority: int, wait: float) -> str:
        """Take the meter's lease (highest-priority waiter first); returns the lease token."""
        lock, waiting, _ = self._keys(meter_id)
        token = f"{self.node_id}|{self.process}:{uuid.uuid4().hex[:8]}"
        score = -priority * 1e13 + time.time() * 1e3
        deadline = time.monotonic() + wait
        self.redis.zadd(waiting, {token: score})
        self.redis.set(f"{waiting}:{token}", 1, ex=int(LEASE_SECONDS))
        try:
            while True:
                first = self.redis.zrange(waiting, 0, 0)
                if first and first[0].decode() != token and not self.redis.exists(f"{waiting}:{first[0].decode()}"):
                    self.redis.zrem(waiting, first[0])  # a waiter whose process died
                    continue
                if first and first[0].decode() == token and self.redis.set(lock, token, nx=True,
                                                                           px=int(LEASE_SECONDS * 1000)):
                    self._renewers[meter_id] = (token, gevent.spawn(self._renew, lock, token))
                    return token
                if time.monotonic() >= deadline:
                    raise MeterBusy(f"Meter {meter_id} is busy on another node (waited {wait:.0f} s); "
                                    "try again later.")
                self.redis.expire(f"{waiting}:{token}", int(LEASE_SECONDS))
                gevent.sleep(POLL_SECONDS)
        finally:
            self.redis.zrem(waiting, token)
            self.redis.delete(f"{waiting}:{token}")

    def _renew(self, lock: str, token: str) -> None:
        while True:
            gevent.sleep(LEASE_SECONDS / 3)
            if self.redis.get(lock) != token.encode():
                return
            self.redis.pexpire(lock, int(LEASE_SECONDS * 1000))

    def release(self, meter_id: int, token: str) -> None:
        """Give the lease back (only our own)."""
        lock, _, _ = self._keys(meter_id)
        entry = self._renewers.pop(meter_id, None)
        if entry is not None:
            entry[1].kill(block=False)
        pipe = self.redis.pipeline()
        pipe.get(lock)
        if pipe.execute()[0] == token.encode():
            self.redis.delete(lock)

    def holder_node(self, meter_id: int) -> str | None:
        """The comms node whose process holds the meter's lease (None: free, or held by a process without one)."""
        lock, _, _ = self._keys(meter_id)
        holder = self.redis.get(lock)
        node = holder.decode().partition("|")[0] if holder else ""
        return node or None


_local = LocalGate()
_redis: RedisGate | None = None


def _redis_gate() -> RedisGate | None:
    global _redis
    url = os.environ.get("HES_REDIS_URL")
    if not url:
        return None
    if _redis is None:
        from app.comms.node import get_node

        node = get_node()
        _redis = RedisGate(url, node.node_id if node is not None else "")
    return _redis


@contextmanager
def meter_turn(meter_id: int, priority: int, wait: float) -> Iterator[Turn]:
    """Hold the meter's only association for the body (``turn.lent`` set: run inside the holder's)."""
    turn = _local.acquire(meter_id, priority, wait)
    token = None
    try:
        if turn.lent is None and (remote := _redis_gate()) is not None:
            token = remote.acquire(meter_id, priority, wait)
        yield turn
    finally:
        if token is not None:
            _redis_gate().release(meter_id, token)
        _local.release(turn)


def lend_to_urgent(meter_id: int, session: Any) -> int:
    """Called by a long holder between steps: waiting urgent operations run inside ``session`` (operations
    from other nodes reach this process through its node queue first); returns how many ran."""
    return _local.lend(meter_id, session)


def holder_node(meter_id: int) -> str | None:
    """In multi-node mode, the node currently holding the meter (an urgent operation is routed there)."""
    remote = _redis_gate()
    return remote.holder_node(meter_id) if remote is not None else None
