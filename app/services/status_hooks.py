"""Listeners for meter online/offline transitions (e.g. the events pipeline records comm lost/restored)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)
_listeners: list[Callable] = []


def subscribe(listener: Callable) -> None:
    """Call ``listener(meter, online, at)`` on every status change."""
    if listener not in _listeners:
        _listeners.append(listener)


def notify(meter, online: bool, at: dt.datetime) -> None:
    """Tell every listener; one failing listener does not stop the others."""
    for listener in list(_listeners):
        try:
            listener(meter, online, at)
        except Exception:
            log.exception("status listener %s failed", listener)
