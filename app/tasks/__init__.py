"""Huey task queues: SqliteHuey in HES_DATA_DIR by default, RedisHuey when HES_REDIS_URL is set.

Tasks wrap a service call in an app context (see ``app.tasks.context``). Priorities: on-demand
reads before commands before scheduled collection.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

from huey import Huey, PriorityRedisHuey, SqliteHuey
from huey.storage import SqliteStorage

PRIORITY_ON_DEMAND = 100
PRIORITY_COMMAND = 50
PRIORITY_SCHEDULE = 10
LOCK_WAIT_SECONDS = 30.0


class CooperativeSqliteStorage(SqliteStorage):
    """Huey's SQLite storage, waiting for a locked ``huey.db`` in short sleeps instead of SQLite's busy
    handler: that handler waits inside C and holds the whole gevent process (web, comms node, tasks)
    for as long as the lock lasts; ``time.sleep`` lets every other greenlet run meanwhile."""

    def __init__(self, *args, wait: float = LOCK_WAIT_SECONDS, **kwargs):
        self._wait = wait
        kwargs["timeout"] = 0.005  # SQLite's own busy wait: at most 5 ms in C
        super().__init__(*args, **kwargs)

    def _locked(self, exc: Exception, deadline: float) -> bool:
        return "locked" in str(exc) and time.monotonic() < deadline

    def _create_connection(self):
        """WAL with ``synchronous=NORMAL``, as the HES's own SQLite database: a commit is not an fsync (which
        holds the whole process while the disk syncs). A crash of the process loses nothing; a power cut at most the
        last queue entries, as for the HES database — a command still ``queued`` there is sent when its meter next
        connects (store-and-forward, ``run_pending``)."""
        conn = super()._create_connection()
        conn.execute("pragma synchronous=1")
        return conn

    def _set_journal_mode(self, conn) -> None:
        if self._journal_mode is None:
            return
        deadline = time.monotonic() + self._wait
        while True:
            try:
                conn.execute(f'pragma journal_mode="{self._journal_mode}"')
                return
            except self.operational_error as exc:
                if not self._locked(exc, deadline):
                    raise
                time.sleep(0.01)

    @contextlib.contextmanager
    def db(self, commit: bool = False, close: bool = False):
        """The parent's transaction, its ``begin exclusive`` (where a lock is waited for) retried."""
        deadline, delay = time.monotonic() + self._wait, 0.002
        while True:
            manager = super().db(commit=commit, close=close)
            try:
                cursor = manager.__enter__()
            except self.operational_error as exc:
                if not self._locked(exc, deadline):
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
                continue
            break
        try:
            yield cursor
        except BaseException:
            if not manager.__exit__(*sys.exc_info()):
                raise
        else:
            manager.__exit__(None, None, None)

    def sql(self, query, params=None, commit=False, results=False):
        """One statement; a read that finds the database locked is tried again the same way."""
        deadline, delay = time.monotonic() + self._wait, 0.002
        while True:
            try:
                return super().sql(query, params, commit=commit, results=results)
            except self.operational_error as exc:
                if not self._locked(exc, deadline):
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.05)


class CooperativeSqliteHuey(SqliteHuey):
    """SqliteHuey on ``CooperativeSqliteStorage``."""

    storage_class = CooperativeSqliteStorage


def build_huey(name: str = "hes") -> Huey:
    """A Huey instance for a queue name, on Redis when configured, else SQLite in the data dir."""
    redis_url = os.environ.get("HES_REDIS_URL")
    if redis_url:
        return PriorityRedisHuey(name, url=redis_url, utc=True)
    from config import _data_dir

    return CooperativeSqliteHuey(name, filename=str(_data_dir() / "huey.db"), utc=True)


huey = build_huey()
