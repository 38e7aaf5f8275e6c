"""SQLite under gevent without stalls: SQLite allows one writer, and a writer that finds the file locked waits
inside a C call (``busy_timeout``) that never yields to the event loop — the whole process froze for 30 s at a
time. Here the greenlets of one process take the write lock in turn through a cooperative semaphore (waiting
yields the loop), so SQLite itself only ever waits for another process, and then for at most ``BUSY_MS``."""

from __future__ import annotations

import logging

from sqlalchemy import event
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)
BUSY_MS = 250  # the longest SQLite may block the loop waiting for another process's write
WAIT_SECONDS = 15.0  # a writer waits this long for its turn, then goes ahead (SQLite decides)
WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")


def install_writer_turns(engine: Engine) -> bool:
    """Make the greenlets of this process take turns as SQLite's writer; False when gevent is not patched in."""
    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        return False
    from gevent.lock import Semaphore

    turn = Semaphore()
    holders: set[int] = set()

    def take(conn, _cursor, statement, _params, _context, _executemany) -> None:
        key = id(conn.connection.dbapi_connection)
        if key in holders or not statement.lstrip()[:8].upper().startswith(WRITE_VERBS):
            return
        if turn.acquire(timeout=WAIT_SECONDS):
            holders.add(key)
        else:
            log.warning("a SQLite write waited %.0f s for its turn; going ahead", WAIT_SECONDS)

    def give(dbapi_connection) -> None:
        key = id(dbapi_connection)
        if key in holders:
            holders.discard(key)
            turn.release()

    event.listen(engine, "before_cursor_execute", take)
    event.listen(engine, "commit", lambda conn: give(conn.connection.dbapi_connection))
    event.listen(engine, "rollback", lambda conn: give(conn.connection.dbapi_connection))
    event.listen(engine.pool, "checkin", lambda dbapi_connection, _record: give(dbapi_connection))
    return True
