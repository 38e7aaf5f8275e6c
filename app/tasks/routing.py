"""Requests for a dial-in meter run on the comms node that holds its socket, via that node's queue."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from huey import RedisHuey
from huey.exceptions import HueyException, TaskException

from app.tasks import PRIORITY_ON_DEMAND
from app.tasks.context import task_context


def node_execute(meter_id: int, name: str, kwargs: dict) -> Any:
    """Run a meter operation on this node (the body of every node queue's task)."""
    from app.services.meter_access import execute_local

    with task_context():
        return execute_local(meter_id, name, **kwargs)


@lru_cache(maxsize=64)
def node_queue(node_id: str) -> tuple[RedisHuey, Any]:
    """The Redis-backed queue of one comms node and its task."""
    url = os.environ.get("HES_REDIS_URL")
    queue = RedisHuey(f"hes-node-{node_id}", url=url, utc=True)
    return queue, queue.task(priority=PRIORITY_ON_DEMAND, name="node_execute")(node_execute)


def execute_on_node(node_id: str, meter_id: int, name: str, kwargs: dict, *, timeout: float | None = None) -> Any:
    """Enqueue an operation on the owning node and wait for its answer."""
    from app.services import ServiceError
    from app.services.meter_access import MeterUnreachable

    if not os.environ.get("HES_REDIS_URL"):
        raise MeterUnreachable(f"The meter is held by comms node {node_id}, which this process cannot reach "
                               "(multi-node mode needs HES_REDIS_URL).")
    _queue, task = node_queue(node_id)
    result = task(meter_id, name, kwargs)
    try:
        return result.get(blocking=True, timeout=timeout or 120)
    except TaskException as exc:
        message = exc.metadata.get("error", str(exc)) if hasattr(exc, "metadata") else str(exc)
        raise ServiceError(f"Node {node_id}: {message}", status=502) from exc
    except HueyException as exc:
        raise MeterUnreachable(f"Node {node_id} did not answer in time: {exc}") from exc
