"""Huey task queues: SqliteHuey in HES_DATA_DIR by default, RedisHuey when HES_REDIS_URL is set.

Tasks wrap a service call in an app context (see ``app.tasks.context``). Priorities: on-demand
reads before commands before scheduled collection.
"""

from __future__ import annotations

import os

from huey import Huey, PriorityRedisHuey, SqliteHuey

PRIORITY_ON_DEMAND = 100
PRIORITY_COMMAND = 50
PRIORITY_SCHEDULE = 10


def build_huey(name: str = "hes") -> Huey:
    """A Huey instance for a queue name, on Redis when configured, else SQLite in the data dir."""
    redis_url = os.environ.get("HES_REDIS_URL")
    if redis_url:
        return PriorityRedisHuey(name, url=redis_url, utc=True)
    from config import _data_dir

    return SqliteHuey(name, filename=str(_data_dir() / "huey.db"), utc=True, timeout=30)


huey = build_huey()
