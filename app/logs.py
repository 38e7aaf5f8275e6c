"""Logging that stays readable when a dependency is lost: the same error from the same line (Huey's sixteen
workers each failing to read a lost Redis, every poll) is written once per interval, then again with the number
of repeats left out (a lost Redis wrote 11 MB of tracebacks a minute)."""

from __future__ import annotations

import logging
import os
import threading
import time

REPEAT_SECONDS = 60.0


class OncePerInterval(logging.Filter):
    """Lets a warning or error through once per ``interval`` per (code line, exception type); counts the rest."""

    def __init__(self, interval: float = REPEAT_SECONDS) -> None:
        super().__init__()
        self.interval = interval
        self._seen: dict[tuple, list] = {}  # key -> [last written (monotonic), repeats left out since]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        exc_type = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
        key = (record.pathname, record.lineno, exc_type)
        now = time.monotonic()
        with self._lock:
            entry = self._seen.get(key)
            if entry is not None and now - entry[0] < self.interval:
                entry[1] += 1
                return False
            repeats = entry[1] if entry is not None else 0
            self._seen[key] = [now, 0]
            if len(self._seen) > 10_000:  # a bound, should messages vary without end
                self._seen.clear()
        if repeats:
            record.msg = f"{record.msg} [{repeats} more like this in the last {self.interval:.0f} s not logged]"
        return True


def limit_repeats(logger: logging.Logger | None = None) -> None:
    """Put the filter on every handler of ``logger`` (the root logger by default), once."""
    interval = float(os.environ.get("HES_LOG_REPEAT_SECONDS", REPEAT_SECONDS))
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, OncePerInterval) for f in handler.filters):
            handler.addFilter(OncePerInterval(interval))
