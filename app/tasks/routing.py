"""Requests for a dial-in meter run on the comms node that holds its socket, via that node's queue."""

from __future__ import annotations

import os
import time
from functools import lru_cache
from typing import Any

from huey import PriorityRedisHuey
from huey.exceptions import HueyException, TaskException

from app.tasks import PRIORITY_ON_DEMAND
from app.tasks.context import task_context

POLL_SECONDS = 1.0


def node_execute(meter_id: int, name: str, kwargs: dict, priority: int | None = None) -> Any:
    """Run a meter operation on this node (the body of every node queue's task)."""
    from app.services.meter_access import execute_local

    with task_context():
        return execute_local(meter_id, name, priority=priority, **kwargs)


@lru_cache(maxsize=64)
def node_queue(node_id: str) -> tuple[PriorityRedisHuey, Any]:
    """The Redis-backed queue of one comms node and its task."""
    url = os.environ.get("HES_REDIS_URL")
    queue = PriorityRedisHuey(f"hes-node-{node_id}", url=url, utc=True)
    return queue, queue.task(priority=PRIORITY_ON_DEMAND, name="node_execute")(node_execute)


def execute_on_node(node_id: str, meter_id: int, name: str, kwargs: dict, *, timeout: float | None = None,
                    priority: int | None = None) -> Any:
    """Enqueue an operation on the owning node and wait for its answer.

    While waiting, give up early (and revoke the request) if the meter moved to another node or the
    owner stopped reporting: the caller retries against the meter's new owner.
    """
    from app.services import ServiceError
    from app.services.meter_access import MeterUnreachable, owner_is_alive

    if not os.environ.get("HES_REDIS_URL"):
        raise MeterUnreachable(f"The meter is held by comms node {node_id}, which this process cannot reach "
                               "(multi-node mode needs HES_REDIS_URL).")
    _queue, task = node_queue(node_id)
    wait = timeout or 120
    # A request nobody picked up in time must not run later (e.g. when a dead node comes back).
    result = task(meter_id, name, kwargs, priority, expires=wait)
    deadline = time.monotonic() + wait
    while True:
        try:
            return result.get(blocking=True, timeout=min(POLL_SECONDS, max(0.1, deadline - time.monotonic())))
        except TaskException as exc:
            message = exc.metadata.get("error", str(exc)) if hasattr(exc, "metadata") else str(exc)
            raise ServiceError(f"Node {node_id}: {message}", status=502) from exc
        except HueyException as exc:
            if time.monotonic() >= deadline:
                result.revoke()
                raise MeterUnreachable(f"Node {node_id} did not answer in time: {exc}") from exc
        if not owner_is_alive(meter_id, node_id):
            result.revoke()
            raise MeterUnreachable(f"The meter left comms node {node_id} while waiting; retry on its new node.")
