"""Figures that take seconds to count at fleet scale (today's completeness, revenue leakage), served to pages and
APIs from their last count, kept in the database (table ``slow_figure``) and so shared by every HES process and
kept across restarts: no request pays the count, nor the first one after a restart.

A figure is named (``FIGURES``) and counted per scope and options. A request serves the stored count with its
``as_of``; once older than ``HES_SLOW_FIGURES_MAX_AGE`` seconds (default 60; 0 = always counted in the request, as
the tests do) one background refresh counts it again — one process at a time, by a claim on the row. At start-up
each process counts in the background the fleet-wide figures that are missing or stale (``start_slow_figures``),
and every minute the figures someone asked for in the last ``ASKED_WITHIN`` are counted again when stale, so a
page left open does not wait for its own refresh either. A scope never asked for before is counted once in the
request that first asks for it. Counting runs in a native thread under gevent, so the event loop keeps running.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

from flask import Flask, current_app, has_app_context
from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import SlowFigure
from app.models.types import utcnow
from app.services.scope import Scope

log = logging.getLogger(__name__)
CLAIM_FOR = dt.timedelta(minutes=10)  # a refresh claimed longer ago is taken over (its process died)
ASKED_WITHIN = dt.timedelta(minutes=10)  # figures asked for this recently are kept fresh by the minute's refresh
PERIOD_SECONDS = 60.0
MAX_KEYS = 1000  # per-process copies of the stored values; cleared beyond that (per-customer keys are many)
_values: dict[str, tuple[dt.datetime, object]] = {}
_refreshing: set[str] = set()  # keys this process is refreshing (one background refresh per key at a time)
_claims: dict[str, tuple[Flask, dt.datetime]] = {}  # rows this process has claimed, released if it stops first
_lock = threading.Lock()


def _completeness(scope: Scope, timezone: str) -> dict:
    from app.services.dashboard import completeness_today

    return completeness_today(scope, timezone)


def _leakage(scope: Scope, timezone: str, days: int) -> dict:
    from app.services.reports.leakage import leakage

    return leakage(scope, ZoneInfo(timezone), days=days)


# Every slow figure: its name and how it is counted from a scope and its options.
FIGURES: dict[str, Callable[..., object]] = {"completeness_today": _completeness, "leakage": _leakage}


def fleet_keys(timezone: str) -> list[tuple]:
    """The fleet-wide figures each process makes sure are stored at start-up (what the dashboard and the
    leakage page ask for first)."""
    return [("completeness_today", Scope(), (timezone,)), ("leakage", Scope(), (timezone, 30))]


def key_text(name: str, scope: Scope, args: tuple) -> str:
    """The stored key of a figure (JSON: name, scope, options)."""
    return json.dumps([name, [scope.customer_id, scope.area_id, scope.meter_id], list(args)])


def _parse_key(key: str) -> tuple[str, Scope, tuple]:
    name, (customer_id, area_id, meter_id), args = json.loads(key)
    return name, Scope(customer_id=customer_id, area_id=area_id, meter_id=meter_id), tuple(args)


def _count(key: str) -> tuple[object, int]:
    """The figure counted now, as JSON-ready data (what is stored is what is served), and the milliseconds."""
    name, scope, args = _parse_key(key)
    began = time.perf_counter()
    value = json.loads(json.dumps(FIGURES[name](scope, *args), default=str))
    return value, int((time.perf_counter() - began) * 1000)


def recent(name: str, scope: Scope, *args):
    """The figure ``name`` for ``scope`` and ``args`` as last counted (at most the configured age, or older while
    one background refresh counts again)."""
    key = key_text(name, scope, args)
    max_age = float(current_app.config.get("HES_SLOW_FIGURES_MAX_AGE", 60))
    if max_age <= 0:
        return _count(key)[0]
    now = utcnow()
    row = db.session.execute(select(SlowFigure.as_of, SlowFigure.asked_at).where(SlowFigure.key == key)).first()
    if row is None or row.as_of is None:
        value, took = _count(key)  # a scope never asked for: counted once here, then kept
        _store(key, value, took, now)
        return value
    held = _values.get(key)
    if held is not None and held[0] == row.as_of:
        value = held[1]
    else:
        value = json.loads(db.session.execute(select(SlowFigure.value).where(SlowFigure.key == key)).scalar())
        _hold(key, row.as_of, value)
    if row.asked_at is None or now - row.asked_at > dt.timedelta(seconds=PERIOD_SECONDS):
        _write(update(SlowFigure).where(SlowFigure.key == key).values(asked_at=now))
    if (now - row.as_of).total_seconds() > max_age:
        refresh_in_background(current_app._get_current_object(), key)
    return value


def drop_copies() -> None:
    """Drop this process's copies of the stored figures (what a new process starts with)."""
    _values.clear()


def forget() -> None:
    """Drop this process's copies of the figures, and the stored figures too within an app context (tests)."""
    drop_copies()
    if has_app_context():
        db.session.execute(delete(SlowFigure))
        db.session.commit()


def _hold(key: str, as_of: dt.datetime, value) -> None:
    if len(_values) >= MAX_KEYS:
        _values.clear()
    _values[key] = (as_of, value)


def _write(statement) -> int:
    """One statement in a transaction of its own (a request's session is left as it was)."""
    with db.engine.begin() as conn:
        return conn.execute(statement).rowcount


def _store(key: str, value, took: int, as_of: dt.datetime) -> None:
    values = {"value": json.dumps(value), "as_of": as_of, "counted_ms": took, "refreshing_since": None}
    if not _write(update(SlowFigure).where(SlowFigure.key == key).values(**values)):
        try:
            _write(insert(SlowFigure).values(key=key, asked_at=as_of, **values))
        except IntegrityError:  # another process stored it meanwhile
            _write(update(SlowFigure).where(SlowFigure.key == key).values(**values))
    _hold(key, as_of, value)


def _claim(app: Flask, key: str) -> bool:
    """Take the refresh of ``key`` (False when another process or thread is counting it)."""
    now = utcnow()
    try:
        if not _write(update(SlowFigure).where(SlowFigure.key == key, or_(
                SlowFigure.refreshing_since.is_(None), SlowFigure.refreshing_since < now - CLAIM_FOR))
                .values(refreshing_since=now)):
            _write(insert(SlowFigure).values(key=key, refreshing_since=now))
    except IntegrityError:  # the row exists and is claimed
        return False
    _claims[key] = (app, now)
    return True


@atexit.register
def _release_claims() -> None:
    """A process stopping during a count lets another take it now rather than after ``CLAIM_FOR``."""
    for key, (app, at) in list(_claims.items()):
        try:
            with app.app_context():
                _write(update(SlowFigure).where(SlowFigure.key == key, SlowFigure.refreshing_since == at)
                       .values(refreshing_since=None))
        except Exception:  # the database may be gone already at exit
            log.debug("could not release the claim on %s", key)


def refresh(app: Flask, key: str) -> bool:
    """Count ``key`` again and store it, unless another refresh has it (True when this one counted)."""
    from app.services.reports.base import off_loop

    with app.app_context():
        if not _claim(app, key):
            return False
    began = utcnow()

    def work():
        with app.app_context():
            try:
                return _count(key)
            finally:
                db.session.remove()

    try:
        value, took = off_loop(work)
    except Exception:
        log.exception("counting %s failed", key)
        with app.app_context():
            _write(update(SlowFigure).where(SlowFigure.key == key).values(refreshing_since=None))
        return False
    finally:
        _claims.pop(key, None)
    with app.app_context():
        _store(key, value, took, began)
    return True


def refresh_in_background(app: Flask, key: str) -> None:
    """Start :func:`refresh` without waiting (a greenlet under gevent; the count itself runs in a native thread)."""
    with _lock:
        if key in _refreshing:
            return
        _refreshing.add(key)

    def run() -> None:
        try:
            refresh(app, key)
        finally:
            with _lock:
                _refreshing.discard(key)

    threading.Thread(target=run, daemon=True, name="hes-slow-figure").start()


def refresh_stale(app: Flask, keys: list[str] | None = None) -> int:
    """Count again the stored figures asked for within ``ASKED_WITHIN`` (or ``keys``) that are missing or older
    than the configured age; returns how many this process counted."""
    max_age = dt.timedelta(seconds=float(app.config.get("HES_SLOW_FIGURES_MAX_AGE", 60)))
    with app.app_context():
        now = utcnow()
        if keys is None:
            keys = list(db.session.execute(select(SlowFigure.key).where(SlowFigure.asked_at > now - ASKED_WITHIN))
                        .scalars())
        stored = dict(db.session.execute(select(SlowFigure.key, SlowFigure.as_of)
                                         .where(SlowFigure.key.in_(keys))).all())
        db.session.remove()
    due = [key for key in keys if stored.get(key) is None or now - stored[key] > max_age]
    return sum(refresh(app, key) for key in due)


def start_slow_figures(app: Flask) -> Callable[[], None] | None:
    """In the background of this process: count the fleet-wide figures that are missing or stale now, then every
    minute the stale ones someone is looking at (off when ``HES_SLOW_FIGURES_MAX_AGE`` is 0)."""
    if float(app.config.get("HES_SLOW_FIGURES_MAX_AGE", 60)) <= 0:
        return None
    stopped = threading.Event()
    timezone = app.config.get("HES_TIMEZONE", "UTC")

    def loop() -> None:
        keys = [key_text(name, scope, args) for name, scope, args in fleet_keys(timezone)]
        while not stopped.is_set():
            try:
                refresh_stale(app, keys)
                keys = None
            except Exception:  # the next round tries again
                log.exception("refreshing the slow figures failed")
            stopped.wait(PERIOD_SECONDS)

    threading.Thread(target=loop, daemon=True, name="hes-slow-figures").start()
    return stopped.set
