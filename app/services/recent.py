"""Figures that take seconds to count at fleet scale, served to pages and APIs from a recent count.

A figure is counted once per process and key (the scope and options asked for); a request within
``HES_SLOW_FIGURES_MAX_AGE`` seconds (default 60; 0 = always counted) reuses it. An older figure is still served
while one background refresh counts again (in a native thread under gevent, so the event loop keeps running), so
only the very first request for a key waits. The figure is exactly what the counting function returns, counted at
its own instant (figures carry their ``as_of``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from flask import current_app

from app.extensions import db

log = logging.getLogger(__name__)
MAX_KEYS = 1000  # one entry per scope and options asked for; cleared beyond that (per-customer keys are many)
_figures: dict[tuple, tuple[float, object]] = {}
_refreshing: set[tuple] = set()
_lock = threading.Lock()


def recent(key: tuple, count: Callable[[], object]):
    """``count()``'s result for ``key`` (hashable: the function's name and arguments), at most the configured age,
    or older while a refresh runs."""
    max_age = float(current_app.config.get("HES_SLOW_FIGURES_MAX_AGE", 60))
    found = _figures.get(key)
    if found is None or max_age <= 0:
        return _remember(key, count())
    with _lock:
        stale = time.monotonic() - found[0] > max_age and key not in _refreshing
        if stale:
            _refreshing.add(key)
    if stale:
        app = current_app._get_current_object()
        threading.Thread(target=_refresh, args=(app, key, count), daemon=True, name="hes-recent-figure").start()
    return found[1]


def forget() -> None:
    """Drop every remembered figure (tests)."""
    _figures.clear()


def _remember(key: tuple, figure):
    if len(_figures) >= MAX_KEYS:
        _figures.clear()
    _figures[key] = (time.monotonic(), figure)
    return figure


def _refresh(app, key: tuple, count: Callable[[], object]) -> None:
    from app.services.reports.base import off_loop

    def work() -> None:
        with app.app_context():
            try:
                _remember(key, count())
            finally:
                db.session.remove()

    try:
        off_loop(work)
    except Exception:  # the next request counts again itself rather than serving this figure for ever
        log.exception("refreshing %s failed", key[0])
        _figures.pop(key, None)
    finally:
        with _lock:
            _refreshing.discard(key)
