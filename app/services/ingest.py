"""Exactly-once storage of readings: bulk idempotent upserts keyed (meter, channel, timestamp).

Before anything is stored, each meter timestamp is checked (``timestamp_problem``): a row too far
ahead of the HES clock, older than the horizon, or older than the meter's first reading (its
installation date, less HES_INSTALL_GRACE_HOURS) goes to quarantine with its reason and raises a
"clock fault" event. A value that arrives twice is stored once; a changed value for the same key is
kept as a revision (old value, new value, both sources). Source precedence: a value read from the
meter's profile is authoritative, so a later pushed or on-demand value that disagrees with it is
kept as a revision that is *not applied*; anything else is applied. Consumption rollups follow
every change of a stored value in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import Engine, bindparam, event, insert, select, text
from sqlalchemy.orm import Session

from app.comms.cosem import normalise_obis, parse_obis
from app.extensions import db
from app.models import Channel, Quality, Source
from app.models.types import UTC

log = logging.getLogger(__name__)
_channel_ids: dict[tuple[int, str], int] = {}


@dataclass(frozen=True, slots=True)
class Value:
    """One reading to store."""

    meter_id: int
    obis: str
    ts: dt.datetime
    value: float
    quality: int = Quality.MEASURED
    source: int = Source.SCHEDULE
    # False for a plain (unauthenticated) push: anyone on the network could have sent it.
    authenticated: bool = True


@dataclass
class StoreResult:
    """What a store call did."""

    inserted: int = 0
    unchanged: int = 0
    revised: int = 0
    kept: int = 0  # conflicting arrivals kept as revisions but not applied (a profile value outranks them)
    quarantined: int = 0
    latest: dt.datetime | None = None  # newest accepted timestamp

    @property
    def total(self) -> int:
        """Values handled."""
        return self.inserted + self.unchanged + self.revised + self.kept


PROFILE_SOURCES = (int(Source.SCHEDULE), int(Source.BACKFILL))


def timestamp_window(now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    """(oldest, newest) meter timestamp accepted now: HES_FUTURE_TOLERANCE_HOURS ahead of the HES clock
    (default 24) and HES_TIMESTAMP_HORIZON_DAYS back (default 800; capped by the reading retention)."""
    from flask import current_app

    now = now or dt.datetime.now(UTC)
    config = current_app.config
    ahead = dt.timedelta(hours=float(config.get("HES_FUTURE_TOLERANCE_HOURS", 24)))
    horizon = dt.timedelta(days=float(config.get("HES_TIMESTAMP_HORIZON_DAYS", 800)))
    retention = int(config.get("HES_READING_RETENTION_MONTHS", 0) or 0)
    if retention:
        horizon = min(horizon, dt.timedelta(days=31 * retention - 31))
    return now - horizon, now + ahead


def first_reading(meter_ids: Iterable[int]) -> dict[int, dt.datetime]:
    """The oldest timestamp each meter can have recorded: its installation date less
    HES_INSTALL_GRACE_HOURS (default 24, as dates are often entered by day); meters without one are
    absent (the horizon alone applies)."""
    from flask import current_app

    ids = list(set(meter_ids))
    if not ids:
        return {}
    grace = dt.timedelta(hours=float(current_app.config.get("HES_INSTALL_GRACE_HOURS", 24)))
    db.session.flush()  # a meter added in this session counts (as the ORM query this replaced autoflushed)
    return {meter_id: installed.astimezone(UTC) - grace for meter_id, installed
            in db.session.connection().execute(_installed_query(), {"ids": ids})}


@lru_cache(maxsize=1)
def _installed_query():
    """Built once and run as Core on the session's connection: per batch, building and running the ORM query
    cost ten times the look-up itself."""
    from app.models import Meter

    meter = Meter.__table__
    return select(meter.c.id, meter.c.installed_at).where(
        meter.c.id.in_(bindparam("ids", expanding=True)), meter.c.installed_at.is_not(None))


def timestamp_problem(ts: dt.datetime, window: tuple[dt.datetime, dt.datetime],
                      first: dt.datetime | None = None) -> str | None:
    """Why a meter timestamp cannot be stored, or None when it is inside the accepted window (and not
    older than the meter's ``first`` reading, see ``first_reading``)."""
    if ts > window[1]:
        return f"timestamp {ts.isoformat()} is ahead of the HES clock by more than the tolerance"
    if ts < window[0]:
        return f"timestamp {ts.isoformat()} is older than the horizon"
    if first is not None and ts < first:
        return f"timestamp {ts.isoformat()} is older than the meter's first reading (installed)"
    return None


def quarantine(meter_id: int, kind: str, source: str, ts: dt.datetime, reason: str, *, obis: str | None = None,
               code: int | None = None, value: float | None = None) -> bool:
    """Keep one rejected row with its reason (added to the session, not committed); False when the same
    row (meter, kind, OBIS or code, time) is already held, as when a profile is read again."""
    from app.models import QuarantinedRow

    held = db.session.execute(select(QuarantinedRow.id).where(
        QuarantinedRow.meter_id == meter_id, QuarantinedRow.kind == kind, QuarantinedRow.ts == ts,
        QuarantinedRow.obis.is_(None) if obis is None else QuarantinedRow.obis == obis,
        QuarantinedRow.code.is_(None) if code is None else QuarantinedRow.code == code).limit(1)).first()
    if held is not None:
        return False
    db.session.add(QuarantinedRow(meter_id=meter_id, kind=kind, source=source, obis=obis, code=code, ts=ts,
                                  value=value, reason=reason[:200]))
    return True


def raise_clock_fault(meter_ids: Iterable[int], reasons: dict[int, str], raised: list | None) -> None:
    """One "clock fault" event per meter whose timestamps were quarantined (time-stamped by the HES)."""
    from app.models import Meter
    from app.services.events import RawEvent, store_events

    now = dt.datetime.now(UTC)
    for meter_id in meter_ids:
        meter = db.session.get(Meter, meter_id)
        if meter is not None:
            store_events(meter, [RawEvent(now, 0, "hes", "hes", {"reason": reasons[meter_id]})],
                         mapped_types=["clock_fault"], raised=raised if raised is not None else [])


def _screen(rows: list[Value], raised: list | None, firsts: dict[int, dt.datetime] | None = None
            ) -> tuple[list[Value], int]:
    """The values whose timestamps pass; the others are quarantined (and raise a clock fault). ``firsts``:
    the meters' oldest possible stamps (``first_reading``) when the caller has them already."""
    window = timestamp_window()
    firsts = first_reading({v.meter_id for v in rows}) if firsts is None else firsts
    stamps = [v.ts for v in rows]
    try:
        if min(stamps) >= window[0] and max(stamps) <= window[1] and (
                not firsts or all(v.ts >= firsts[v.meter_id] for v in rows if v.meter_id in firsts)):
            return rows, 0  # the usual batch: every stamp passes, no per-row checks
    except TypeError:  # a naive stamp (taken as local time below)
        pass
    accepted, reasons = [], {}
    for v in rows:
        ts = v.ts if v.ts.tzinfo is UTC else v.ts.astimezone(UTC)
        problem = timestamp_problem(ts, window, firsts.get(v.meter_id))
        if problem is None:
            accepted.append(v)
            continue
        if quarantine(v.meter_id, "reading", Source(v.source).name.lower(), ts, problem, obis=v.obis,
                      value=v.value):
            reasons.setdefault(v.meter_id, problem)
    if reasons:
        log.warning("quarantined %d readings of %d meters: %s", len(rows) - len(accepted), len(reasons),
                    next(iter(reasons.values())))
        raise_clock_fault(reasons, reasons, raised)
    return accepted, len(rows) - len(accepted)


class _Batch:
    """A batch taken apart in one pass over its values, for both backends: the keys to store (the last value of a
    key given twice wins) and their rows as the backend writes them (SQLite: stamps as text, for ``executemany``;
    PostgreSQL: the rows of the append's binary COPY), each meter's span and energy series (the rollups), the
    bounds of the rollup context, the channels and the oldest and newest stamp. ``passes`` then tells whether the
    usual batch needs no per-row screen."""

    __slots__ = ("bounds", "channels", "export_id", "import_id", "keyed", "latest", "now", "oldest", "params",
                 "spans", "touched")

    def __init__(self, rows: list[Value], sqlite: bool) -> None:
        from app.services.rollups import EXPORT_OBIS, IMPORT_OBIS

        self.now = now = dt.datetime.now(UTC)
        received = utc_text(now) if sqlite else now
        self.import_id, self.export_id = import_id, export_id = channel_id(IMPORT_OBIS), channel_id(EXPORT_OBIS)
        keyed: dict[tuple[int, int, dt.datetime], tuple] = {}
        params: list[tuple] = []
        touched: dict[int, dict[int, list]] = {}
        spans: dict[int, list] = {}  # meter -> [its oldest stamp, its newest stamp]
        bounds: dict[int, list] = {}  # meter -> [last energy stamp, first import stamp, first export stamp]
        channels: dict[str, tuple[int, int | None]] = {}  # obis -> (channel, 1 import / 2 export / None)
        oldest = latest = None
        last_meter = last_raw = ts = stamp = span = b = series_of = None
        given_quality = given_source = quality = source = None  # as given, and as plain ints
        for v in rows:
            meter_id, raw = v.meter_id, v.ts
            # A profile read brings its channels stamp by stamp: the stamp's work is done once per run of it.
            if raw is not last_raw or meter_id != last_meter:
                if meter_id != last_meter:
                    last_meter = meter_id
                    span = spans.get(meter_id)
                    if span is None:
                        b = bounds[meter_id] = [None, None, None]
                        series_of = touched[meter_id] = {}
                    else:
                        b, series_of = bounds[meter_id], touched[meter_id]
                last_raw = raw
                ts = raw if raw.tzinfo is UTC else raw.astimezone(UTC)
                stamp = utc_text(ts) if sqlite else ts
                if oldest is None or ts < oldest:
                    oldest = ts
                if latest is None or ts > latest:
                    latest = ts
                if span is None:
                    span = spans[meter_id] = [ts, ts]
                elif ts < span[0]:
                    span[0] = ts
                elif ts > span[1]:
                    span[1] = ts
            found = channels.get(v.obis)
            if found is None:
                cid = channel_id(v.obis)
                found = channels[v.obis] = (cid, 1 if cid == import_id else 2 if cid == export_id else None)
            cid, column = found
            if v.quality is not given_quality:  # the same member or small int value after value: converted once
                given_quality = v.quality
                quality = int(given_quality)
            if v.source is not given_source:
                given_source = v.source
                source = int(given_source)
            value = float(v.value)
            keyed[(meter_id, cid, ts)] = (value, quality, source)
            params.append((meter_id, cid, stamp, value, quality, source, received))
            if column is None:
                continue
            series = series_of.get(cid)
            if series is None:
                series = series_of[cid] = []
            series.append((ts, value))
            if b[0] is None or ts > b[0]:
                b[0] = ts
            if b[column] is None or ts < b[column]:
                b[column] = ts
        if len(keyed) != len(rows):  # a key given twice: its last value is the one stored
            params = [(m, c, utc_text(ts) if sqlite else ts, val, q, s, received)
                      for (m, c, ts), (val, q, s) in keyed.items()]
            touched = {m: {} for m in touched}
            for (m, c, ts), (val, _q, _s) in keyed.items():
                if c == import_id or c == export_id:
                    touched[m].setdefault(c, []).append((ts, val))
        self.keyed, self.params, self.touched = keyed, params, {m: t for m, t in touched.items() if t}
        self.spans, self.bounds, self.oldest, self.latest = spans, bounds, oldest, latest
        self.channels = {cid for cid, _column in channels.values()} | {import_id, export_id}

    def channel_list(self) -> str:
        """The batch's channels and the energy ones, for an ``IN (...)`` (ids are ints: no quoting needed)."""
        return ", ".join(str(int(c)) for c in sorted(self.channels))

    def passes(self, firsts: dict[int, dt.datetime]) -> bool:
        """Every stamp inside the accepted window and none older than its meter's installation (``_screen``;
        ``firsts`` as ``first_reading`` gives them, empty where the statements check them)."""
        window = timestamp_window(self.now)
        if self.oldest < window[0] or self.latest > window[1]:
            return False
        return all(span[0] >= firsts[m] for m, span in self.spans.items() if m in firsts)

    def months(self) -> list[dt.datetime]:
        """The start of each month (UTC) from the oldest stamp's to the newest's (``partitions.ensure_months``)."""
        month, months = self.oldest.replace(day=1, hour=0, minute=0, second=0, microsecond=0), []
        while month <= self.latest:
            months.append(month)
            month = (month + dt.timedelta(days=32)).replace(day=1)
        return months

    def without(self, unchanged: list[tuple]) -> dict:
        """Take keys stored already with the same values out of the batch (a round that brings its meter's last
        stored interval again): out of the keys, the rows and the energy series. Returns them with their values."""
        if not unchanged:
            return {}
        keyed, gone = self.keyed, set(unchanged)
        self.params = [p for key, p in zip(keyed, self.params, strict=True) if key not in gone]  # in the keys' order
        held = {key: keyed.pop(key) for key in unchanged}
        for m in {m for m, _c, _ts in held}:
            channels = self.touched.get(m, {})
            for c in list(channels):
                channels[c] = [point for point in channels[c] if (m, c, point[0]) not in held]
                if not channels[c]:
                    del channels[c]
            if not channels:
                self.touched.pop(m, None)
        return held

    def appended(self, context: dict) -> tuple[dict, int] | None:
        """SQLite, before the insert, for a batch with readings of its channels stored inside a meter's span: whether
        it only appends (``appends_only``, fed with those readings, and whether one lies after it), as a collection
        round that brings its last stored interval again does. If so the keys stored already are taken out of the
        batch (``without``) and this returns the rollup context of the rest (the value before the new intervals is
        the newest stored one) and how many keys were taken out; else None, and nothing changed."""
        from app.services.rollups import _as_utc

        import_id, export_id = self.import_id, self.export_id
        channels = self.channel_list()
        conn = sqlite_writer()
        stored: list[tuple] = []
        meters = list(self.spans.items())
        for at in range(0, len(meters), 1000):
            chunk = meters[at:at + 1000]
            found = conn.execute(
                f"WITH b(m, lo, hi) AS (VALUES {', '.join(['(?, ?, ?)'] * len(chunk))}) "
                "SELECT r.meter_id, r.channel_id, r.ts, r.value FROM b JOIN reading r ON r.meter_id = b.m "
                f"AND r.channel_id IN ({channels}) AND r.ts BETWEEN b.lo AND b.hi "
                "UNION ALL SELECT b.m, NULL, NULL, NULL FROM b WHERE EXISTS (SELECT 1 FROM reading "
                f"WHERE meter_id = b.m AND channel_id IN ({channels}) AND ts > b.hi)",
                [p for m, (lo, hi) in chunk for p in (m, utc_text(lo), utc_text(hi))]).fetchall()
            for m, c, ts, value in found:
                if c is None:
                    return None  # a reading after the batch
                stored.append((m, c, _as_utc(ts), value))
        appends = appends_only(self.keyed, stored, import_id, export_id)
        if appends is None:
            return None
        unchanged, last = appends
        return _continued(context, last), len(self.without(unchanged))


def appends_only(keyed: dict, stored: Iterable[tuple], import_id: int, export_id: int
                 ) -> tuple[list[tuple], dict[tuple[int, int], float]] | None:
    """The rule both backends follow to store a batch the cheap way: whether it only appends to its meters.

    ``stored``: (meter, channel, stamp, value) of every reading of the batch's channels stored before it inside
    each meter's span (its first to its last stamp); the caller has made sure nothing is stored after the span.
    The batch only appends when each stored key it brings again has the same value and every key of it up to
    its meter's newest stored stamp is such a key: the rest are then new and later than anything stored, so their
    energy adds to the rollups from the newest stored values. Returns (the keys stored already, (meter, energy
    channel) -> its newest stored value), or None (a revision or a backfill between readings)."""
    unchanged: list[tuple] = []
    newest: dict[int, dt.datetime] = {}  # meter -> its newest stored stamp inside the span
    last: dict[tuple[int, int], tuple] = {}  # (meter, energy channel) -> its newest stored (stamp, value)
    for m, c, ts, value in stored:
        arrived = keyed.get((m, c, ts))
        if arrived is not None:
            if arrived[0] != value:
                return None  # a revision
            unchanged.append((m, c, ts))
        if m not in newest or ts > newest[m]:
            newest[m] = ts
        if (c == import_id or c == export_id) and ((m, c) not in last or ts > last[m, c][0]):
            last[m, c] = (ts, value)
    if newest and sum(1 for m, _c, ts in keyed if m in newest and ts <= newest[m]) != len(unchanged):
        return None  # a key up to the newest stored one is not stored: a backfill between readings
    return unchanged, {key: value for key, (_ts, value) in last.items()}


def _continued(context: dict[int, tuple], last: dict[tuple[int, int], float]) -> dict[int, tuple]:
    """The rollup context of an appending batch (``appends_only``): each meter's energy goes on from the newest value
    stored inside its span where there is one (the interval read again), else from the value before the span."""
    newest: dict[int, dict[int, float]] = {}
    for (m, c), value in last.items():
        newest.setdefault(m, {})[c] = value
    return {m: (area, None, {**previous, **newest.get(m, {})}) for m, (area, _nxt, previous) in context.items()}


def _firsts_and_context(batch: _Batch) -> tuple[dict[int, dt.datetime], dict[int, tuple], set[int]]:
    """SQLite: in one statement, before the batch is written, each meter's oldest possible stamp (as
    ``first_reading``), what its rollups need (``rollups.context_select``: area, the reading after the batch, the
    values before it; from ``_Batch.bounds``) and whether a reading of the batch's channels is stored inside its
    span already (a round that brings its last stored interval again: ``_Batch.appended`` then looks closer). Read
    as the writer but before the insert, the context is the same as after it (it looks only outside the batch's
    span) and one statement fewer. Returns (firsts, context, the meters with readings inside their span)."""
    from flask import current_app

    from app.services.rollups import _as_utc, context_select, read_context

    import_id, export_id = batch.import_id, batch.export_id
    grace = dt.timedelta(hours=float(current_app.config.get("HES_INSTALL_GRACE_HOURS", 24)))
    db.session.flush()  # a meter added in this session counts
    conn = db.session.connection()
    # Become the writer first (a write that matches nothing opens the write transaction): read while another
    # writer's batch of the same meter is uncommitted, the context would miss it and count its energy again.
    conn.exec_driver_sql(BECOME_WRITER)
    channels = batch.channel_list()
    before = ("SELECT (SELECT installed_at FROM meter WHERE id = b.m), EXISTS (SELECT 1 FROM reading "
              f"WHERE meter_id = b.m AND channel_id IN ({channels}) AND ts BETWEEN b.lo AND b.top),")
    firsts, context, overlapping = {}, {}, set()
    meters = [(m, *bounds, *batch.spans[m]) for m, bounds in batch.bounds.items()]
    for at in range(0, len(meters), 1000):
        chunk = meters[at:at + 1000]
        params = [p if i == 0 or p is None else utc_text(p) for row in chunk for i, p in enumerate(row)]
        found = sqlite_writer().execute(
            f"WITH b(m, hi, fi, fe, lo, top) AS (VALUES {', '.join(['(?, ?, ?, ?, ?, ?)'] * len(chunk))}) "
            f"{context_select(import_id, export_id, before)} FROM b", params).fetchall()
        firsts.update((r[2], _as_utc(r[0]) - grace) for r in found if r[0] is not None)
        overlapping.update(r[2] for r in found if r[1])
        context.update(read_context((r[2:] for r in found), import_id, export_id))
    return firsts, context, overlapping


def is_cumulative(obis: str) -> bool:
    """Energy registers (OBIS D = 8, time integral) grow monotonically; consumption is their delta."""
    _a, _b, c, d, _e, _f = parse_obis(obis)
    return d == 8 and c in {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 16}


def channel_id(obis: str, *, key: str | None = None, name: str | None = None, unit: str | None = None) -> int:
    """The id of a channel, created on first use (cached per process and database)."""
    raw_key = (id(db.engine), obis)
    cached = _channel_ids.get(raw_key)
    if cached is not None:
        return cached
    obis = normalise_obis(obis)
    cache_key = (id(db.engine), obis)
    cached = _channel_ids.get(cache_key)
    if cached is not None:
        _channel_ids[raw_key] = cached
        return cached
    # A channel created in this (uncommitted) transaction is only cached once it commits: if the
    # transaction is lost (a database restart, an error), a cached id would point at nothing.
    pending = db.session.info.setdefault(PENDING_CHANNELS, {})
    if cache_key in pending:
        return pending[cache_key]
    found = db.session.execute(select(Channel.id).where(Channel.obis == obis)).scalar()
    if found is None:
        dialect = db.engine.dialect.name
        values = {"obis": obis, "key": key, "name": name, "unit": unit, "cumulative": is_cumulative(obis)}
        if dialect in ("sqlite", "postgresql"):
            stmt = _dialect_insert(Channel).values(**values).on_conflict_do_nothing(index_elements=["obis"])
        else:
            stmt = insert(Channel).values(**values)
        db.session.execute(stmt)
        found = db.session.execute(select(Channel.id).where(Channel.obis == obis)).scalar_one()
        pending[cache_key] = pending[raw_key] = found
        return found
    _channel_ids[cache_key] = _channel_ids[raw_key] = found
    return found


PENDING_CHANNELS = "hes_pending_channels"


@event.listens_for(Session, "after_commit")
def _keep_committed_channels(session: Session) -> None:
    _channel_ids.update(session.info.pop(PENDING_CHANNELS, {}))


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back_channels(session: Session, previous_transaction) -> None:
    session.info.pop(PENDING_CHANNELS, None)


def forget_channel_cache() -> None:
    """Drop cached channel ids (tests that empty the channel table)."""
    _channel_ids.clear()


def _dialect_insert(model):
    if db.engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(model)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(model)


def store_readings(values: Iterable[Value], *, commit: bool = True, rollups: bool = True,  # noqa: ARG001
                   raised: list | None = None) -> StoreResult:
    """Store values exactly once; returns counts. Safe to call again with the same values.

    Rollups follow every inserted or changed value (a pushed register newer than the last interval
    carries energy the next interval's delta no longer does, so it must be counted when it lands);
    a batch that stores nothing new costs no rollup work. ``rollups`` is accepted for older callers and
    no longer skips anything. Alerts of clock faults go to ``raised`` when given (the caller commits
    and emits them), else they are emitted after the commit here.
    """
    rows = list(values)
    if not rows:
        return StoreResult()
    own_alerts = [] if raised is None else raised
    sqlite = db.engine.dialect.name == "sqlite"
    batch = _Batch(rows, sqlite)
    # SQLite reads the meters' installation dates and rollup context before writing (``_firsts_and_context``);
    # PostgreSQL checks the installation dates in its own statements (``_store_postgresql``).
    firsts, context, overlapping = _firsts_and_context(batch) if sqlite else ({}, None, set())
    quarantined = 0
    if not batch.passes(firsts):  # the usual batch passes the screen whole
        rows, quarantined = _screen(rows, own_alerts, firsts)
        if not rows:
            if commit:
                db.session.commit()
                _emit(own_alerts, raised)
            return StoreResult(quarantined=quarantined)
        if quarantined:
            batch, context = _Batch(rows, sqlite), None  # the context was read for the rows before the screen
    merged, touched = False, batch.touched
    if sqlite:
        unchanged = 0
        if overlapping and context is not None and (appended := batch.appended(context)) is not None:
            context, unchanged = appended  # the keys read again are out of the batch; the rest only appends
        result, changed = _store_sqlite(batch.params, batch.now)
        result.unchanged += unchanged
    else:
        from app.services.partitions import ensure_months

        ensure_months(batch.months())
        result, changed, context, merged, touched = _store_postgresql(batch, own_alerts)
        quarantined += result.quarantined
    from app.services.rollups import refresh_rollups

    keyed, now = batch.keyed, batch.now
    if not keyed:
        pass
    elif result.inserted == len(keyed):
        refresh_rollups(keyed, all_new=True, received_at=now, context=context, merged=merged, touched=touched)
    elif result.inserted:
        refresh_rollups(keyed, received_at=now)
    elif changed:
        refresh_rollups(changed, received_at=now)
    result.quarantined = quarantined
    if result.latest is None:  # the merge took rows older than their meter's installation out of ``keyed``
        result.latest = max((ts for _m, _c, ts in keyed), default=None) if quarantined else batch.latest
    if commit:
        db.session.commit()
        _emit(own_alerts, raised)
    return result


def _emit(alerts: list, raised: list | None) -> None:
    if raised is None and alerts:
        from app.services.alerts import emit_raised

        emit_raised(alerts)


def _store_sqlite(params: list, now: dt.datetime) -> tuple[StoreResult, dict]:
    """SQLite: the batch's rows (``_Batch.params``) inserted where their key is new; keys that existed already
    are compared with what arrived (``_revise``). Returns the counts and the keys whose value changed."""
    cursor = sqlite_writer().executemany(
        "INSERT INTO reading (meter_id, channel_id, ts, value, quality, source, received_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (meter_id, channel_id, ts) DO NOTHING", params)
    inserted = cursor.rowcount if cursor.rowcount >= 0 else len(params)
    if inserted == len(params):
        return StoreResult(inserted=inserted), {}
    # Some keys existed already: compare their stored values with what arrived now.
    conn = db.session.connection()
    conn.exec_driver_sql("CREATE TEMP TABLE IF NOT EXISTS incoming_reading "
                         "(meter_id INTEGER, channel_id INTEGER, ts TEXT, value REAL, quality INTEGER, source INTEGER)")
    conn.exec_driver_sql("INSERT INTO incoming_reading VALUES (?, ?, ?, ?, ?, ?)", [p[:6] for p in params])
    revised, kept, changed = _revise(conn, "incoming_reading", sqlite_ts(now))
    conn.exec_driver_sql("DELETE FROM incoming_reading")  # staged for this batch only (undone with it on error)
    return StoreResult(inserted=inserted, revised=revised, kept=kept,
                       unchanged=len(params) - inserted - revised - kept), changed


def sqlite_writer():
    """SQLite: the session's DBAPI connection, for a batch's statements once it is the writer (``BECOME_WRITER``
    runs through SQLAlchemy, whose hook takes this process's writer turn, ``app.sqlite_writer``; the commit gives
    it back). SQLAlchemy's own work cost ~15 µs a statement, a tenth of what the service adds to a batch."""
    return db.session.connection().connection.driver_connection


def sqlite_ts(ts: dt.datetime) -> str:
    """A UTC timestamp as SQLAlchemy stores it in SQLite (so keys compare equal as text)."""
    return ts.replace(tzinfo=None).isoformat(" ", "microseconds")


# For stamps already in UTC (keys and buckets): a collection round repeats the same few quarter-hours.
utc_text = lru_cache(maxsize=4096)(sqlite_ts)


INCOMING_DDL = ("CREATE TEMP TABLE IF NOT EXISTS incoming_reading (meter_id integer, channel_id integer, "
                "ts timestamptz, value double precision, quality smallint, source smallint) ON COMMIT DELETE ROWS")
INCOMING_TYPES = ("int4", "int4", "timestamptz", "float8", "int2", "int2")
STAGE = "hes_incoming_reading"  # connection info: "ready" (table exists, empty) or "used" (may hold rows)


def _store_postgresql(batch: _Batch, raised: list) -> tuple[StoreResult, dict, dict | None, bool, dict | None]:
    """Hold the batch's meters (``HOLD_METERS``), then store it the cheap way when it only appends
    (``_append_postgresql``: a COPY straight into the table), else merge it (``_merge_postgresql``).

    Returns (result, changed keys, rollup context or None, whether the rollups of the meters with no later
    reading were added already, the appended energy series (``_Batch.touched``) or None)."""
    conn = db.session.connection()
    with conn.connection.driver_connection.cursor() as cur:
        appended = _append_postgresql(cur, batch)
        if appended is not None:
            unchanged, context = appended
            result = StoreResult(inserted=len(batch.keyed), unchanged=unchanged, latest=batch.latest)
            return result, {}, context, False, batch.touched
        return (*_merge_postgresql(conn, cur, batch.keyed, batch.now, raised, batch.import_id, batch.export_id),
                None)


def _append_postgresql(cur, batch: _Batch) -> tuple[int, dict] | None:
    """The usual batch — each meter's intervals since its last stored one (that one again, as a profile is read
    from its cursor's time on, unchanged) and none older than its installation — goes straight into ``reading``
    with one binary COPY of its rows, as fast as the table takes rows. Returns how many keys were unchanged
    (taken out of the batch, ``_Batch.without``) and the rollup context of the new rows (meter -> area, None,
    previous values); or None when the batch is not such an append and nothing was written (the batch whole).

    In one round trip (a pipeline) the meters are held (``HOLD_METERS``), then one statement, which so sees every
    earlier batch of them, reads per meter (``APPEND_CHECK``): its area, whether a stamp is older than its
    installation (less HES_INSTALL_GRACE_HOURS), whether a reading of the batch's channels (or the energy ones)
    lies after the batch, the readings of those channels inside the batch's span, and the import and export values
    before it. The batch appends when nothing lies after it and every key up to the newest stored one is stored
    with the same value (``appends_only``); the keys after it are then new, and no other key can exist. Should one
    still arise at the COPY (a reading written outside the service), the COPY is undone to the savepoint set after
    the hold and the batch goes the merge's way. The caller adds the rollups from the context
    (``rollups.refresh_rollups``)."""
    from flask import current_app
    from psycopg.errors import UniqueViolation

    from app.services.rollups import read_context

    import_id, export_id, spans = batch.import_id, batch.export_id, batch.spans
    meters = sorted(spans)
    params = {"m": meters, "lo": [spans[m][0] for m in meters], "hi": [spans[m][1] for m in meters],
              "ch": sorted(batch.channels), "i": import_id, "e": export_id,
              "grace": float(current_app.config.get("HES_INSTALL_GRACE_HOURS", 24)) * 3600}
    with cur.connection.cursor() as check:
        with cur.connection.pipeline():
            cur.execute(HOLD_METERS, {"m": meters})
            cur.execute(f"SAVEPOINT {APPEND_SAVEPOINT}")
            cur.execute(GENERIC_PLANS)
            if len(meters) == 1:
                params.update(m1=meters[0], lo1=params["lo"][0], hi1=params["hi"][0])
            check.execute(APPEND_CHECK_ONE if len(meters) == 1 else APPEND_CHECK, params)
        found = check.fetchall()
    stored: list[tuple] = []  # (meter, channel, stamp, value) stored inside the batch's span
    rows = []
    for m, area, early, later, stored_channels, stored_stamps, stored_values, prev_import, prev_export, _ in found:
        if early or later:
            return None
        if stored_stamps:
            stored += ((m, c, ts, value) for c, ts, value in zip(stored_channels, stored_stamps, stored_values,
                                                                  strict=True))
        rows.append((m, area, None, prev_import, prev_export))
    appends = appends_only(batch.keyed, stored, import_id, export_id)
    if appends is None:
        return None
    unchanged, last = appends
    held = batch.without(unchanged)
    if batch.params:
        try:
            with cur.copy(APPEND_COPY) as copy:
                copy.set_types(APPEND_TYPES)
                write = copy.write_row
                for row in batch.params:
                    write(row)
        except UniqueViolation:
            log.warning("a reading of an appended batch existed already: merged instead")
            cur.execute(f"ROLLBACK TO SAVEPOINT {APPEND_SAVEPOINT}")
            batch.keyed.update(held)  # the merge takes the keys whole (and its energy series from them)
            return None
    return len(unchanged), _continued(read_context(rows, import_id, export_id), last)


APPEND_SAVEPOINT = "hes_ingest_append"
APPEND_COPY = ("COPY reading (meter_id, channel_id, ts, value, quality, source, received_at) "
               "FROM STDIN (FORMAT BINARY)")
APPEND_TYPES = ("int4", "int4", "timestamptz", "float8", "int2", "int2", "timestamptz")
# Per meter of the batch (m; lo, hi = its first and last stamp), for ``_append_postgresql``: its area, whether a
# stamp is older than its installation, whether a reading of the channels lies after the batch, the readings of the
# channels inside the batch's span (channels, stamps, values) and its import and export values before the batch;
# then, for the statements after it, plans as usual again (``GENERIC_PLANS``).
_APPEND_CHECK = """SELECT {m}, meter.area_id,
    coalesce({lo} < meter.installed_at - %(grace)s * interval '1 second', false),
    EXISTS (SELECT 1 FROM reading WHERE meter_id = {m} AND channel_id = ANY(%(ch)b::int4[]) AND ts > {hi}),
    span.c, span.ts, span.v,
    (SELECT value FROM reading WHERE meter_id = {m} AND channel_id = %(i)b::int4 AND ts < {lo}
        ORDER BY ts DESC LIMIT 1),
    (SELECT value FROM reading WHERE meter_id = {m} AND channel_id = %(e)b::int4 AND ts < {lo}
        ORDER BY ts DESC LIMIT 1),
    set_config('plan_cache_mode', 'auto', true)
FROM {source}
LEFT JOIN meter ON meter.id = {m}
LEFT JOIN LATERAL (SELECT array_agg(channel_id) AS c, array_agg(ts) AS ts, array_agg(value) AS v FROM reading
    WHERE meter_id = {m} AND channel_id = ANY(%(ch)b::int4[]) AND ts BETWEEN {lo} AND {hi}) AS span ON true"""
APPEND_CHECK = _APPEND_CHECK.format(
    m="b.m", lo="b.lo", hi="b.hi",
    source="unnest(%(m)b::int4[], %(lo)b::timestamptz[], %(hi)b::timestamptz[]) AS b(m, lo, hi)")
# The same for a batch of one meter (a collection round), its m, lo and hi bound as plain parameters: the executor
# then prunes the month partitions each look-up cannot touch before it opens them, where values taken from a row of
# ``b`` leave every partition opened (a generic plan opened 4 x 17 index scans for every batch).
APPEND_CHECK_ONE = _APPEND_CHECK.format(
    m="%(m1)b::int4", lo="%(lo1)b::timestamptz", hi="%(hi1)b::timestamptz", source="(SELECT) AS one")


def _merge_postgresql(conn, cur, keyed: dict, now: dt.datetime, raised: list, import_id: int, export_id: int
                      ) -> tuple[StoreResult, dict, dict | None, bool]:
    """A batch that does not only append (a backfill, a value read again, a row older than its meter's
    installation): staged with a binary COPY into a temporary table, then merged with one statement —
    ``INSERT … ON CONFLICT DO NOTHING`` of the rows not older than their meter's installation date, and the
    rollups when every value turned out new (``rollups.merge_rollups``); keys that existed already are compared
    set-wise (``_revise``).

    The statement also returns what the rollups need of each meter (``rollups.context_select``, read in the
    same snapshot: the readings before and after the batch). Returns (result, changed keys, context, whether
    the statement added the rollups of the meters with no later reading). Rows older than their meter's
    installation are taken out of ``keyed`` and quarantined."""
    from flask import current_app

    from app.services.rollups import context_select, merge_rollups, read_context

    info = conn.connection.info
    rollups = merge_rollups(keyed, import_id, export_id, now)
    grace = float(current_app.config.get("HES_INSTALL_GRACE_HOURS", 24)) * 3600
    params = {"now": now, "total": len(keyed), "grace": grace, "meters": list({m for m, _c, _ts in keyed}),
              **(rollups[1] if rollups else {})}
    if info.get(STAGE) != "ready":  # first use on this connection, or rows of an earlier call in this transaction
        cur.execute(INCOMING_DDL + "; DELETE FROM incoming_reading")
    info[STAGE] = "used"
    with cur.copy("COPY incoming_reading FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(INCOMING_TYPES)
        write = copy.write_row
        for (m, c, ts), (val, q, s) in keyed.items():
            write((m, c, ts, val, q, s))
    rows = cur.execute(
        f"WITH {INSTALLED} AS (SELECT id, installed_at - %(grace)s * interval '1 second' AS first FROM meter "
        "WHERE id = ANY(%(meters)b::int4[]) AND installed_at IS NOT NULL), "
        "ins AS (INSERT INTO reading (meter_id, channel_id, ts, value, quality, source, received_at) "
        "SELECT i.meter_id, i.channel_id, i.ts, i.value, i.quality, i.source, %(now)s FROM incoming_reading i "
        f"LEFT JOIN {INSTALLED} f ON f.id = i.meter_id WHERE f.first IS NULL OR i.ts >= f.first "
        "ON CONFLICT (meter_id, channel_id, ts) DO NOTHING RETURNING 1), "
        "n AS (SELECT count(*) AS c FROM ins), "
        "early AS (SELECT count(*) AS c, array_agg(i.meter_id) AS m, array_agg(i.channel_id) AS ch, "
        f"array_agg(i.ts) AS ts, array_agg(f.first) AS first FROM incoming_reading i JOIN {INSTALLED} f "
        "ON f.id = i.meter_id AND i.ts < f.first), "
        f"b AS (SELECT meter_id AS m, max(ts) AS hi, min(ts) FILTER (WHERE channel_id = {import_id}) AS fi, "
        f"min(ts) FILTER (WHERE channel_id = {export_id}) AS fe FROM incoming_reading "
        f"WHERE channel_id IN ({import_id}, {export_id}) GROUP BY meter_id), "
        f"ctx (m, area, nxt, pi, pe) AS ({context_select(import_id, export_id)} FROM b)"
        f"{', ' + rollups[0] if rollups else ''} "
        "SELECT n.c, early.c, early.m, early.ch, early.ts, early.first, ctx.* FROM n CROSS JOIN early "
        "LEFT JOIN ctx ON true", params).fetchall()
    inserted, early = rows[0][0], rows[0][1]
    quarantined = _quarantine_early(cur, keyed, raised, list(zip(*rows[0][2:6], strict=True))) if early else 0
    if inserted == len(keyed) and not early:
        context = read_context((r[6:] for r in rows), import_id, export_id)
        return StoreResult(inserted=inserted), {}, context, rollups is not None
    revised, kept, changed = _revise(conn, "incoming_reading", now)
    return StoreResult(inserted=inserted, revised=revised, kept=kept, quarantined=quarantined,
                       unchanged=len(keyed) - inserted - revised - kept), changed, None, False


INGEST_LOCK = 4801  # the class of the advisory locks that take a batch's meters in turn (``HOLD_METERS``)


# PostgreSQL: the statement that starts an ingest transaction (``_append_postgresql`` sends it in one round trip
# with its savepoint and check): JIT off (compiling the merge cost up to 600 ms once its tables grew, more than it
# ever saved), then each meter of the batch (%(m)b) held until commit, in id order. After the savepoint (so that
# undoing to it plans as usual again), ``GENERIC_PLANS`` for the check alone: re-planning its look-ups over every
# month's partition cost more than running them; the check itself sets plans back to usual.
#
# Two batches of one meter at once (a push beside a collection round) would each read the readings around them
# without the other's: the later one's first interval would count the earlier one's energy again. Held, the second
# waits for the first to commit, and its next statement, which starts after the wait, sees it.
HOLD_METERS = (f"SELECT set_config('jit', 'off', true), (SELECT count(pg_advisory_xact_lock({INGEST_LOCK}, m)) "
               "FROM (SELECT m FROM unnest(%(m)b::int4[]) AS m ORDER BY m) AS held)")
GENERIC_PLANS = "SELECT set_config('plan_cache_mode', 'force_generic_plan', true)"
# SQLite: a write that matches nothing opens the write transaction, so what is read next is read as the writer.
BECOME_WRITER = "DELETE FROM consumption_running_hold WHERE 0"


def hold_meters(meter_ids: Iterable[int]) -> None:
    """Hold meters in this transaction as an ingest batch holds them (PostgreSQL: ``HOLD_METERS``; SQLite: become
    the writer), for work outside the ingest that reads and rewrites what a batch would (``rollups.rebuild_meter``):
    a batch of the same meters waits for the commit."""
    conn = db.session.connection()
    if db.engine.dialect.name == "postgresql":
        with conn.connection.driver_connection.cursor() as cur:
            cur.execute(HOLD_METERS, {"m": sorted(set(meter_ids))})
    else:
        conn.exec_driver_sql(BECOME_WRITER)


INSTALLED = "installed"  # the merge's CTE: the oldest stamp each meter of the batch can have (``first_reading``)


def _quarantine_early(cur, keyed: dict, raised: list, early: list[tuple]) -> int:
    """The staged rows the merge left out as older than their meter's installation date (less the grace):
    quarantined with a clock fault, and taken out of the staging table and ``keyed``. Returns how many."""
    obis = dict(cur.execute("SELECT id, obis FROM channel").fetchall())
    always = (dt.datetime.min.replace(tzinfo=UTC), dt.datetime.max.replace(tzinfo=UTC))
    reasons = {}
    for m, c, ts, first in early:
        value, _q, source = keyed.pop((m, c, ts))
        problem = timestamp_problem(ts, always, first)
        if quarantine(m, "reading", Source(source).name.lower(), ts, problem, obis=obis.get(c), value=value):
            reasons.setdefault(m, problem)
    cur.execute("DELETE FROM incoming_reading WHERE (meter_id, channel_id, ts) IN "
                "(SELECT * FROM unnest(%b::int4[], %b::int4[], %b::timestamptz[]))",
                [list(column) for column in zip(*early, strict=True)][:3])
    if reasons:
        log.warning("quarantined %d readings older than their meters' installation", len(early))
        raise_clock_fault(reasons, reasons, raised)
    return len(early)


@event.listens_for(Engine, "commit")
def _stage_committed(conn) -> None:
    """At commit the staging table is emptied (ON COMMIT DELETE ROWS) and, if created, kept."""
    if not conn.invalidated and STAGE in conn.connection.info:
        conn.connection.info[STAGE] = "ready"


@event.listens_for(Engine, "rollback")
def _stage_rolled_back(conn) -> None:
    """After a rollback the staging table may not exist any more (created in that transaction). A connection the
    database dropped is left alone: touching it would raise, and its replacement starts with empty info."""
    if not conn.invalidated:
        conn.connection.info.pop(STAGE, None)


def _revise(conn, incoming: str, received) -> tuple[int, int, dict]:
    """Keep the old value of every key whose value changed as a revision; apply the new value unless a
    profile value would be replaced by a pushed or on-demand one. Returns (applied, kept, changed keys)."""
    profile = ", ".join(str(s) for s in PROFILE_SOURCES)
    applies = f"NOT (r.source IN ({profile}) AND i.source NOT IN ({profile}))"
    changed = (f"FROM {incoming} i JOIN reading r ON r.meter_id = i.meter_id AND r.channel_id = i.channel_id "
               "AND r.ts = i.ts WHERE r.value <> i.value")
    total = conn.execute(text(
        "INSERT INTO reading_revision (meter_id, channel_id, ts, old_value, new_value, old_source, new_source, "
        f"applied, revised_at) SELECT r.meter_id, r.channel_id, r.ts, r.value, i.value, r.source, i.source, "
        f"{applies}, :at {changed}"), {"at": received}).rowcount
    if not total:
        return 0, 0, {}
    from app.services.rollups import _as_utc

    to_apply = {(m, c, _as_utc(ts)): (v,) for m, c, ts, v in conn.execute(text(
        f"SELECT i.meter_id, i.channel_id, i.ts, i.value {changed} AND {applies}")).all()}
    if to_apply:
        match = ("i.meter_id = reading.meter_id AND i.channel_id = reading.channel_id AND i.ts = reading.ts "
                 f"AND i.value <> reading.value AND NOT (reading.source IN ({profile}) AND i.source NOT IN "
                 f"({profile}))")
        conn.execute(text(
            f"UPDATE reading SET value = (SELECT i.value FROM {incoming} i WHERE {match}), "
            f"source = (SELECT i.source FROM {incoming} i WHERE {match}), received_at = :at "
            f"WHERE EXISTS (SELECT 1 FROM {incoming} i WHERE {match})"), {"at": received})
    return len(to_apply), total - len(to_apply), to_apply


def group_by_meter(values: Iterable[Value]) -> dict[int, list[Value]]:
    """Values grouped per meter."""
    out: dict[int, list[Value]] = defaultdict(list)
    for v in values:
        out[v.meter_id].append(v)
    return out
