"""Exactly-once storage of readings: bulk idempotent upserts keyed (meter, channel, timestamp).

A value that arrives twice is stored once; a changed value for the same key is kept as a
revision (old value, new value, both sources) and then updated, never silently overwritten.
Consumption rollups are maintained in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import event, insert, select, text
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

    @property
    def total(self) -> int:
        """Values handled."""
        return self.inserted + self.unchanged + self.revised


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


def store_readings(values: Iterable[Value], *, commit: bool = True, rollups: bool = True) -> StoreResult:
    """Store values exactly once; returns counts. Safe to call again with the same values.

    ``rollups=False`` suits register snapshots between profile intervals (pushes, on-demand reads):
    energy deltas telescope, so a point inside an interval leaves every bucket's total unchanged.
    """
    rows = list(values)
    if not rows:
        return StoreResult()
    now = dt.datetime.now(UTC)
    keyed: dict[tuple[int, int, dt.datetime], tuple] = {}
    channels: dict[str, int] = {}
    for v in rows:
        ts = v.ts if v.ts.tzinfo is UTC else v.ts.astimezone(UTC)
        cid = channels.get(v.obis)
        if cid is None:
            cid = channels[v.obis] = channel_id(v.obis)
        keyed[(v.meter_id, cid, ts)] = (float(v.value), int(v.quality), int(v.source))
    if db.engine.dialect.name == "postgresql":
        result = _store_postgresql(keyed, now)
    else:
        result = _store_sqlite(keyed, now)
    from app.services.rollups import refresh_rollups

    if rollups:
        refresh_rollups(keyed, all_new=result.inserted == len(keyed), received_at=now)
    if commit:
        db.session.commit()
    return result


def _store_sqlite(keyed: dict, now: dt.datetime) -> StoreResult:
    conn = db.session.connection()
    received = sqlite_ts(now)
    texts: dict[dt.datetime, str] = {}  # the channels of one profile row share its timestamp
    params = []
    for (m, c, ts), (val, q, s) in keyed.items():
        text_ts = texts.get(ts)
        if text_ts is None:
            text_ts = texts[ts] = sqlite_ts(ts)
        params.append((m, c, text_ts, val, q, s, received))
    cursor = conn.exec_driver_sql(
        "INSERT INTO reading (meter_id, channel_id, ts, value, quality, source, received_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (meter_id, channel_id, ts) DO NOTHING", params)
    inserted = cursor.rowcount if cursor.rowcount is not None and cursor.rowcount >= 0 else len(params)
    if inserted == len(params):
        return StoreResult(inserted=inserted)
    # Some keys existed already: compare their stored values with what arrived now.
    conn.exec_driver_sql("CREATE TEMP TABLE IF NOT EXISTS incoming_reading "
                         "(meter_id INTEGER, channel_id INTEGER, ts TEXT, value REAL, quality INTEGER, source INTEGER)")
    conn.exec_driver_sql("DELETE FROM incoming_reading")
    conn.exec_driver_sql("INSERT INTO incoming_reading VALUES (?, ?, ?, ?, ?, ?)", [p[:6] for p in params])
    revised = _revise(conn, "incoming_reading", received)
    return StoreResult(inserted=inserted, revised=revised, unchanged=len(params) - inserted - revised)


def sqlite_ts(ts: dt.datetime) -> str:
    """A UTC timestamp as SQLAlchemy stores it in SQLite (so keys compare equal as text)."""
    return ts.replace(tzinfo=None).isoformat(" ", "microseconds")


def _store_postgresql(keyed: dict, now: dt.datetime) -> StoreResult:
    conn = db.session.connection()
    columns = list(zip(*((m, c, ts, val, q, s) for (m, c, ts), (val, q, s) in keyed.items()), strict=True))
    # One round trip: the batch travels as arrays and conflicts are skipped by the unique key.
    inserted = conn.exec_driver_sql(
        "INSERT INTO reading (meter_id, channel_id, ts, value, quality, source, received_at) "
        "SELECT m, c, t, v, q, s, %s FROM unnest(%s::int[], %s::int[], %s::timestamptz[], %s::float8[], "
        "%s::int2[], %s::int2[]) AS b(m, c, t, v, q, s) ON CONFLICT (meter_id, channel_id, ts) DO NOTHING",
        (now, *map(list, columns))).rowcount
    if inserted == len(keyed):
        return StoreResult(inserted=inserted)
    # Some keys existed: compare them with what arrived, through a temporary table.
    conn.exec_driver_sql(
        "CREATE TEMP TABLE IF NOT EXISTS incoming_reading (meter_id integer, channel_id integer, "
        "ts timestamptz, value double precision, quality smallint, source smallint) ON COMMIT DELETE ROWS")
    conn.exec_driver_sql("TRUNCATE incoming_reading")
    with conn.connection.driver_connection.cursor() as cur, cur.copy(
        "COPY incoming_reading (meter_id, channel_id, ts, value, quality, source) FROM STDIN"
    ) as copy:
        for row in zip(*columns, strict=True):
            copy.write_row(row)
    revised = _revise(conn, "incoming_reading", now)
    return StoreResult(inserted=inserted, revised=revised, unchanged=len(keyed) - inserted - revised)


def _revise(conn, incoming: str, received) -> int:
    """Keep the old value of every key whose value changed as a revision, then update it."""
    changed = (f"FROM {incoming} i JOIN reading r ON r.meter_id = i.meter_id AND r.channel_id = i.channel_id "
               "AND r.ts = i.ts WHERE r.value <> i.value")
    revised = conn.execute(text(
        "INSERT INTO reading_revision (meter_id, channel_id, ts, old_value, new_value, old_source, new_source, "
        f"revised_at) SELECT r.meter_id, r.channel_id, r.ts, r.value, i.value, r.source, i.source, :at {changed}"
    ), {"at": received}).rowcount
    if revised:
        conn.execute(text(
            "UPDATE reading SET value = (SELECT i.value FROM " + incoming + " i WHERE i.meter_id = reading.meter_id "
            "AND i.channel_id = reading.channel_id AND i.ts = reading.ts), source = (SELECT i.source FROM "
            + incoming + " i WHERE i.meter_id = reading.meter_id AND i.channel_id = reading.channel_id "
            "AND i.ts = reading.ts), received_at = :at WHERE EXISTS (SELECT 1 FROM " + incoming + " i "
            "WHERE i.meter_id = reading.meter_id AND i.channel_id = reading.channel_id AND i.ts = reading.ts "
            "AND i.value <> reading.value)"), {"at": received})
    return revised


def group_by_meter(values: Iterable[Value]) -> dict[int, list[Value]]:
    """Values grouped per meter."""
    out: dict[int, list[Value]] = defaultdict(list)
    for v in values:
        out[v.meter_id].append(v)
    return out
