"""Hourly and daily consumption per meter in the utility's zone, recomputed for the days a batch
of readings touched (so late and backfilled data land in the right buckets, exactly once)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import and_, delete, func, insert, select

from app.extensions import db
from app.models import ConsumptionDaily, ConsumptionHourly, Reading
from app.models.types import UTC

IMPORT_OBIS = "1.0.1.8.0.255"
EXPORT_OBIS = "1.0.2.8.0.255"
EPSILON = dt.timedelta(microseconds=1)
INTERVAL_GRID = 900  # profile intervals end on quarter hours; other readings are register snapshots
QUARTERS_KEPT = dt.timedelta(days=7)  # the areas' quarter-hours (the live dashboard) are pruned after this


@lru_cache(maxsize=8)
def zone(name: str) -> ZoneInfo:
    """The ZoneInfo of a zone name."""
    return ZoneInfo(name)


def utility_zone() -> ZoneInfo:
    """HES_TIMEZONE as a ZoneInfo."""
    return zone(current_app.config.get("HES_TIMEZONE", "UTC"))


def local_day_start(ts: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The UTC instant the utility's local day containing ``ts`` starts."""
    return _local_midnight(ts.astimezone(tz).date(), tz)


def local_hour_start(ts: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The UTC instant the utility's local hour containing ``ts`` starts."""
    local = ts.astimezone(tz)
    # Subtract minutes/seconds in UTC, so DST folds and half-hour offsets stay right.
    return (ts - dt.timedelta(minutes=local.minute, seconds=local.second, microseconds=local.microsecond))


def next_local_day(day_start: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """Start of the following local day (23, 24 or 25 hours later)."""
    local_date = day_start.astimezone(tz).date() + dt.timedelta(days=1)
    return dt.datetime.combine(local_date, dt.time(0), tzinfo=tz).astimezone(UTC)


def refresh_rollups(keyed: dict, *, all_new: bool = False, received_at: dt.datetime | None = None,
                    context: dict | None = None, merged: bool = False, touched: dict | None = None) -> None:
    """Bring the rollups up to date for these (meter, channel, ts) -> (value, ...) keys.

    Appending new intervals after a meter's last reading (the normal collection round) adds their
    energy to the buckets; anything else (backfill between readings, a revised value) recomputes
    the local days it touched from the stored readings. Set-wise: one query reads what every meter of
    the batch needs (area, next and previous readings; ``context`` when the caller already has it),
    one statement per rollup table adds the sums. ``merged``: the appended meters' sums were added already
    (PostgreSQL's merge statement), only the others are left. ``touched``: the batch's energy series as
    ``_touched`` gives them, when the caller has them already.
    """
    from app.services.ingest import channel_id

    import_id, export_id = channel_id(IMPORT_OBIS), channel_id(EXPORT_OBIS)
    if touched is None:
        touched = _touched(keyed, import_id, export_id)
    if not touched:
        return
    tz = utility_zone()
    on_time = dt.timedelta(hours=float(current_app.config.get("HES_ON_TIME_HOURS", 4)))
    if context is None:
        context = _context(touched, import_id, export_id)
    sums = Sums()
    for meter_id, channels in touched.items():
        area_id, nxt, previous = context[meter_id]
        if all_new and nxt is None:
            if merged:  # added by the merge statement (``merge_rollups``)
                continue
            _append(meter_id, channels, import_id, previous, tz, on_time, received_at or dt.datetime.now(UTC),
                    sums, area_id or 0)
            continue
        # The reading after the batch changes too (its interval now starts later or earlier).
        stamps = [ts for series in channels.values() for ts, _v in series]
        first_day = local_day_start(min(stamps) - EPSILON, tz)
        last_day = local_day_start(max(stamps if nxt is None else [*stamps, nxt]) - EPSILON, tz)
        _recompute(meter_id, import_id, export_id, first_day, next_local_day(last_day, tz), tz, on_time)
    sums.add_to_tables()


def recompute_days(meter_id: int, start: dt.datetime, end: dt.datetime) -> None:
    """Rewrite one meter's hourly and daily rollups for the local days from ``start`` to ``end`` from its stored
    readings (added to the session, not committed): after readings were removed or repaired outside the ingest
    service, which otherwise keeps the rollups in step as values land."""
    tz = utility_zone()
    first_day, last_day = local_day_start(start - EPSILON, tz), local_day_start(end - EPSILON, tz)
    _recompute_local_days(meter_id, first_day, next_local_day(last_day, tz), tz)


def _recompute_local_days(meter_id: int, first_day: dt.datetime, end_day: dt.datetime, tz: ZoneInfo) -> None:
    from app.services.ingest import channel_id

    on_time = dt.timedelta(hours=float(current_app.config.get("HES_ON_TIME_HOURS", 4)))
    _recompute(meter_id, channel_id(IMPORT_OBIS), channel_id(EXPORT_OBIS), first_day, end_day, tz, on_time)


@dataclass
class Rebuilt:
    """What ``rebuild_meter`` changed: the local days rewritten and the energy they held before and after (Wh)."""

    days: int = 0
    import_before: float = 0.0
    import_after: float = 0.0
    export_before: float = 0.0
    export_after: float = 0.0


def rebuild_meter(meter_id: int, since: dt.date | None = None, until: dt.date | None = None) -> Rebuilt:
    """Rebuild one meter's hourly and daily rollups from its stored readings, for the local days ``since`` ..
    ``until`` (inclusive; by default every day it has readings or rollups of), and commit: the operator's repair
    after readings were deleted or corrected by hand. The meter is held as the ingest holds it, so a batch
    arriving meanwhile waits and is counted once, on top of the rebuilt days."""
    from app.services.ingest import channel_id, hold_meters

    tz = utility_zone()
    hold_meters([meter_id])
    energy = (channel_id(IMPORT_OBIS), channel_id(EXPORT_OBIS))
    first_ts, last_ts = db.session.execute(select(func.min(Reading.ts), func.max(Reading.ts)).where(
        Reading.meter_id == meter_id, Reading.channel_id.in_(energy))).one()
    first_bucket, last_bucket = db.session.execute(select(
        func.min(ConsumptionDaily.bucket), func.max(ConsumptionDaily.bucket)).where(
        ConsumptionDaily.meter_id == meter_id)).one()
    days = [local_day_start(ts - EPSILON, tz) for ts in (first_ts, last_ts) if ts is not None]
    days += [_as_utc(b) for b in (first_bucket, last_bucket) if b is not None]
    first_day = _local_midnight(since, tz) if since else min(days, default=None)
    last_day = _local_midnight(until, tz) if until else max(days, default=None)
    if first_day is None or last_day is None or last_day < first_day:
        db.session.commit()
        return Rebuilt()
    end_day = next_local_day(last_day, tz)
    totals = select(func.coalesce(func.sum(ConsumptionDaily.import_wh), 0.0),
                    func.coalesce(func.sum(ConsumptionDaily.export_wh), 0.0)).where(
        ConsumptionDaily.meter_id == meter_id, ConsumptionDaily.bucket >= first_day, ConsumptionDaily.bucket < end_day)
    import_before, export_before = db.session.execute(totals).one()
    _recompute_local_days(meter_id, first_day, end_day, tz)
    db.session.flush()
    import_after, export_after = db.session.execute(totals).one()
    db.session.commit()
    count, day = 0, first_day
    while day < end_day:
        count, day = count + 1, next_local_day(day, tz)
    return Rebuilt(count, float(import_before), float(import_after), float(export_before), float(export_after))


def _local_midnight(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """The start of a local calendar day, in UTC."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(UTC)


def _context(touched: dict, import_id: int, export_id: int) -> dict[int, tuple]:
    """meter -> (area, first reading after the batch, {channel: value before the channel's first stamp}),
    for every meter of the batch in one query per thousand meters."""
    sqlite = db.engine.dialect.name == "sqlite"
    mark = "?" if sqlite else "%s"
    stamp = _ts_param if sqlite else (lambda ts: ts)
    out: dict[int, tuple] = {}
    meters = list(touched.items())
    for at in range(0, len(meters), 1000):
        chunk = meters[at:at + 1000]
        params: list = []
        for meter_id, channels in chunk:
            first = min(min(series)[0] for series in channels.values())
            last = max(max(series)[0] for series in channels.values())
            firsts = [min(channels[cid])[0] if cid in channels else first for cid in (import_id, export_id)]
            params += [meter_id, stamp(last), stamp(firsts[0]), stamp(firsts[1])]
        values = ", ".join([f"({mark}, {mark}, {mark}, {mark})"] * len(chunk))
        out.update(read_context(db.session.connection().exec_driver_sql(
            f"WITH b(m, hi, fi, fe) AS (VALUES {values}) {context_select(import_id, export_id)} FROM b",
            tuple(params)), import_id, export_id))
    return out


def context_select(import_id: int, export_id: int, before: str = "SELECT") -> str:
    """For each row of ``b`` (m = meter, hi = its last stamp in the batch, fi / fe = its first import /
    export stamp): the meter, its area, the first reading after the batch, the values before it.

    Read before the batch is stored, a reading *inside* its span counts as the reading after it when none lies
    after it (a pushed register between the intervals of a profile read whose keys are all new: appending would
    count its share twice; with a "next" reading the days are recomputed). Read after, that is one of the batch's
    own and changes nothing: the days recomputed reach no further than the batch.

    ``before`` goes ahead of the columns (the PostgreSQL merge adds its inserted-row count there)."""
    i, e = int(import_id), int(export_id)
    first = "CASE WHEN b.fe IS NULL OR b.fi < b.fe THEN b.fi ELSE b.fe END"  # least(fi, fe), NULLs aside
    return (f"{before} b.m, (SELECT area_id FROM meter WHERE id = b.m), "
            f"coalesce((SELECT ts FROM reading WHERE meter_id = b.m AND channel_id IN ({i}, {e}) AND ts > b.hi "
            f"ORDER BY ts LIMIT 1), (SELECT ts FROM reading WHERE meter_id = b.m AND channel_id IN ({i}, {e}) "
            f"AND ts > {first} AND ts <= b.hi ORDER BY ts LIMIT 1)), "
            f"(SELECT value FROM reading WHERE meter_id = b.m AND channel_id = {i} AND ts < b.fi "
            "ORDER BY ts DESC LIMIT 1), "
            f"(SELECT value FROM reading WHERE meter_id = b.m AND channel_id = {e} AND ts < b.fe "
            "ORDER BY ts DESC LIMIT 1)")


def read_context(rows, import_id: int, export_id: int) -> dict[int, tuple]:
    """The rows of ``context_select`` as meter -> (area, next reading, {channel: previous value})."""
    out = {}
    for meter_id, area_id, nxt, prev_import, prev_export in rows:
        if meter_id is not None:
            previous = {cid: v for cid, v in ((import_id, prev_import), (export_id, prev_export)) if v is not None}
            out[meter_id] = (area_id, _as_utc(nxt), previous)
    return out


def _ts_param(ts: dt.datetime):
    """A timestamp bound to plain SQL: SQLite compares the stored text, PostgreSQL a timestamptz."""
    if db.engine.dialect.name == "sqlite":
        from app.services.ingest import sqlite_ts

        return sqlite_ts(ts)
    return ts


def _as_utc(value) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
    return dt.datetime.fromisoformat(value).replace(tzinfo=UTC)


class Sums:
    """Energy to add to the hourly and daily buckets and the areas' quarter-hours, written set-wise."""

    # (table, key columns, added columns)
    TABLES = (("consumption_hourly", ("meter_id", "bucket"), ("import_wh", "export_wh", "intervals")),
              ("consumption_daily", ("meter_id", "bucket"), ("import_wh", "export_wh", "intervals", "on_time")),
              ("energy_quarter", ("area_id", "bucket"), ("import_wh",)))
    PG_TYPES = {"meter_id": "int", "area_id": "int", "bucket": "timestamptz", "import_wh": "float8",
                "export_wh": "float8", "intervals": "int", "on_time": "int"}

    def __init__(self) -> None:
        self.hourly: dict[tuple[int, dt.datetime], list] = defaultdict(lambda: [0.0, 0.0, 0])
        self.daily: dict[tuple[int, dt.datetime], list] = defaultdict(lambda: [0.0, 0.0, 0, 0])
        self.quarters: dict[tuple[int, dt.datetime], list] = defaultdict(lambda: [0.0])

    def add_to_tables(self) -> None:
        """One upsert per table (SQLite: one executemany); PostgreSQL: all three in one statement."""
        conn = db.session.connection()
        parts = [(t, keys, added, buckets) for (t, keys, added), buckets
                 in zip(self.TABLES, (self.hourly, self.daily, self.quarters), strict=True) if buckets]
        if not parts:
            return
        if db.engine.dialect.name == "sqlite":
            from app.services.ingest import sqlite_writer, utc_text

            writer = sqlite_writer()  # the batch is the writer already (``ingest.store_readings``)
            for table, keys, added, buckets in parts:
                writer.executemany(
                    f"INSERT INTO {table} ({', '.join(keys + added)}) VALUES "
                    f"({', '.join('?' * (len(keys) + len(added)))}) {self._on_conflict(table, keys, added)}",
                    [(k, utc_text(b), *v) for (k, b), v in buckets.items()])
            return
        statements, params = [], []
        for table, keys, added, buckets in parts:
            columns = keys + added
            arrays = ", ".join(f"%b::{self.PG_TYPES[c]}[]" for c in columns)  # binary: dumped in C, not as text
            statements.append(f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) "
                              f"{self._on_conflict(table, keys, added)}")
            # In key order: concurrent batches share the areas' quarter-hour rows and so take them in one order
            # (batches naming two areas in opposite orders deadlocked).
            params += map(list, zip(*((k, b, *v) for (k, b), v in sorted(buckets.items())), strict=True))
        sql = statements[-1] if len(statements) == 1 else (
            "WITH " + ", ".join(f"s{n} AS ({stmt})" for n, stmt in enumerate(statements[:-1])) + " " + statements[-1])
        with conn.connection.driver_connection.cursor() as cur:  # the session's connection, without its wrapping
            cur.execute(sql, params)

    @staticmethod
    def _on_conflict(table: str, keys: tuple, added: tuple) -> str:
        return (f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
                + ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in added))


def _append(meter_id: int, channels: dict, import_id: int, previous: dict[int, float], tz: ZoneInfo,
            on_time: dt.timedelta, received_at: dt.datetime, sums: Sums, area_id: int,
            firsts: list | None = None) -> None:
    """Add the energy of intervals appended after the last stored reading to their buckets (and the
    area's quarter-hours, for the live dashboard, when they end inside the kept window).

    With ``firsts`` (PostgreSQL's merge, which reads the value before the batch in the same statement), each
    channel's first interval goes there as (meter, column, value, hour, day, quarter or None, on the grid,
    on time) instead of being added, and ``previous`` is not used."""
    for series in channels.values():
        series.sort()
    first = min(series[0][0] for series in channels.values())
    last = max(series[-1][0] for series in channels.values())
    buckets_of = _bucketer(first - dt.timedelta(days=1), last, tz)
    hourly, daily, quarters = sums.hourly, sums.daily, sums.quarters
    # Quarter-hours older than the kept window would be pruned unread: a backfill does not write them.
    quarters_since = received_at - QUARTERS_KEPT
    recent_from = int(quarters_since.timestamp())  # a cheap first test of ``ts > quarters_since``
    on_time_from = received_at - on_time
    for cid, series in channels.items():
        column = 0 if cid == import_id else 1
        if firsts is None:
            prev = previous.get(cid)
        else:
            ts, prev = series[0]
            hour, day, _lo, _hi = buckets_of(ts, int(ts.timestamp()))
            quarter = _quarter_of(ts) if column == 0 and ts > quarters_since else None
            firsts.append((meter_id, column, prev, hour, day,
                           quarter if quarter is not None and quarter >= quarters_since else None,
                           column == 0 and int(ts.timestamp()) % INTERVAL_GRID == 0, ts >= on_time_from))
            series = series[1:]
        lo, hi, day, h, d = 0, -1, None, None, None  # consecutive intervals share their hour: looked up once
        for ts, value in series:
            if prev is not None:
                sec = int(ts.timestamp())
                if not lo < sec <= hi:
                    bucket_hour, bucket_day, lo, hi = buckets_of(ts, sec)
                    h = hourly[meter_id, bucket_hour]
                    if bucket_day is not day:
                        day, d = bucket_day, daily[meter_id, bucket_day]
                delta = value - prev
                if delta < 0.0:  # a register reset is not negative use
                    delta = 0.0
                h[column] += delta
                d[column] += delta
                if column == 0:
                    if sec >= recent_from and ts > quarters_since and (quarter := _quarter_of(ts)) >= quarters_since:
                        quarters[area_id, quarter][0] += delta
                    if sec % INTERVAL_GRID == 0:
                        h[2] += 1
                        d[2] += 1
                        if ts >= on_time_from:
                            d[3] += 1
            prev = value


def merge_rollups(keyed: dict, import_id: int, export_id: int, received_at: dt.datetime) -> tuple[str, dict] | None:
    """PostgreSQL: the rollups of a batch as part of its merge statement, so appending costs no statement of its
    own. Returns (CTEs, parameters), or None when the batch holds no energy register.

    The CTEs follow ``ins`` (the inserted readings), ``n`` (their count), ``early`` (rows older than their
    meter's installation) and ``ctx`` (per meter: area, next reading, import and export values before the
    batch). They add the batch's energy only when every value was inserted (``%(total)s``), none was early and
    the meter has no later reading — what ``refresh_rollups`` appends; otherwise they add nothing and the caller
    goes the way of ``refresh_rollups``. Everything but each channel's first interval is summed here (``_append``);
    the first interval's energy is its value less the one before the batch, read in the statement."""
    touched = _touched(keyed, import_id, export_id)
    if not touched:
        return None
    tz = utility_zone()
    on_time = dt.timedelta(hours=float(current_app.config.get("HES_ON_TIME_HOURS", 4)))
    sums, firsts = Sums(), []
    for meter_id, channels in touched.items():
        _append(meter_id, channels, import_id, {}, tz, on_time, received_at, sums, meter_id, firsts)
    params: dict = {}
    for prefix, buckets, width in (("h", sums.hourly, 3), ("d", sums.daily, 4), ("q", sums.quarters, 1)):
        columns = list(zip(*((k, b, *v) for (k, b), v in buckets.items()), strict=True)) or [()] * (2 + width)
        for name, column in zip(("m", "b", "i", "e", "n", "o")[:2 + width], columns, strict=True):
            params[f"{prefix}_{name}"] = [float(v) for v in column] if name in ("i", "e") else list(column)
    columns = list(zip(*firsts, strict=True)) or [()] * 8
    for name, column in zip(("m", "c", "v", "h", "d", "q", "g", "o"), columns, strict=True):
        params[f"f_{name}"] = [float(v) for v in column] if name == "v" else list(column)
    return MERGE_ROLLUPS, params


MERGE_ROLLUPS = """
go AS (SELECT n.c = %(total)s AND early.c = 0 AS ok FROM n, early),
firsts AS (SELECT f.m, f.col, f.hour, f.day, f.quarter, f.grid, f.ontime,
        greatest(f.v - CASE f.col WHEN 0 THEN ctx.pi ELSE ctx.pe END, 0) AS wh
    FROM unnest(%(f_m)b::int4[], %(f_c)b::int4[], %(f_v)b::float8[], %(f_h)b::timestamptz[],
                %(f_d)b::timestamptz[], %(f_q)b::timestamptz[], %(f_g)b::bool[], %(f_o)b::bool[])
        AS f(m, col, v, hour, day, quarter, grid, ontime)
    JOIN ctx ON ctx.m = f.m AND ctx.nxt IS NULL
    WHERE CASE f.col WHEN 0 THEN ctx.pi ELSE ctx.pe END IS NOT NULL),
hourly AS (INSERT INTO consumption_hourly (meter_id, bucket, import_wh, export_wh, intervals)
    SELECT u.m, u.bucket, sum(u.i), sum(u.e), sum(u.n) FROM (
        SELECT h.m, h.bucket, h.i, h.e, h.n FROM unnest(%(h_m)b::int4[], %(h_b)b::timestamptz[], %(h_i)b::float8[],
            %(h_e)b::float8[], %(h_n)b::int4[]) AS h(m, bucket, i, e, n) JOIN ctx ON ctx.m = h.m AND ctx.nxt IS NULL
        UNION ALL
        SELECT m, hour, CASE col WHEN 0 THEN wh ELSE 0 END, CASE col WHEN 1 THEN wh ELSE 0 END,
            CASE WHEN col = 0 AND grid THEN 1 ELSE 0 END FROM firsts) u
    WHERE (SELECT ok FROM go) GROUP BY u.m, u.bucket
    ON CONFLICT (meter_id, bucket) DO UPDATE SET import_wh = consumption_hourly.import_wh + excluded.import_wh,
        export_wh = consumption_hourly.export_wh + excluded.export_wh,
        intervals = consumption_hourly.intervals + excluded.intervals),
daily AS (INSERT INTO consumption_daily (meter_id, bucket, import_wh, export_wh, intervals, on_time)
    SELECT u.m, u.bucket, sum(u.i), sum(u.e), sum(u.n), sum(u.o) FROM (
        SELECT d.m, d.bucket, d.i, d.e, d.n, d.o FROM unnest(%(d_m)b::int4[], %(d_b)b::timestamptz[],
            %(d_i)b::float8[], %(d_e)b::float8[], %(d_n)b::int4[], %(d_o)b::int4[]) AS d(m, bucket, i, e, n, o)
            JOIN ctx ON ctx.m = d.m AND ctx.nxt IS NULL
        UNION ALL
        SELECT m, day, CASE col WHEN 0 THEN wh ELSE 0 END, CASE col WHEN 1 THEN wh ELSE 0 END,
            CASE WHEN col = 0 AND grid THEN 1 ELSE 0 END, CASE WHEN col = 0 AND grid AND ontime THEN 1 ELSE 0 END
        FROM firsts) u
    WHERE (SELECT ok FROM go) GROUP BY u.m, u.bucket
    ON CONFLICT (meter_id, bucket) DO UPDATE SET import_wh = consumption_daily.import_wh + excluded.import_wh,
        export_wh = consumption_daily.export_wh + excluded.export_wh,
        intervals = consumption_daily.intervals + excluded.intervals,
        on_time = consumption_daily.on_time + excluded.on_time),
quarters AS (INSERT INTO energy_quarter (area_id, bucket, import_wh)
    SELECT coalesce(ctx.area, 0), u.bucket, sum(u.i) FROM (
        SELECT q.m, q.bucket, q.i
        FROM unnest(%(q_m)b::int4[], %(q_b)b::timestamptz[], %(q_i)b::float8[]) AS q(m, bucket, i)
        UNION ALL
        SELECT m, quarter, wh FROM firsts WHERE col = 0 AND quarter IS NOT NULL) u
    JOIN ctx ON ctx.m = u.m AND ctx.nxt IS NULL
    WHERE (SELECT ok FROM go) GROUP BY coalesce(ctx.area, 0), u.bucket ORDER BY 1, 2
    ON CONFLICT (area_id, bucket) DO UPDATE SET import_wh = energy_quarter.import_wh + excluded.import_wh)"""


def _touched(keyed: dict, import_id: int, export_id: int) -> dict[int, dict[int, list[tuple[dt.datetime, float]]]]:
    """meter -> energy channel -> [(ts, value)] of a batch."""
    touched: dict[int, dict[int, list[tuple[dt.datetime, float]]]] = defaultdict(lambda: defaultdict(list))
    for (meter_id, cid, ts), value in keyed.items():
        if cid == import_id or cid == export_id:
            touched[meter_id][cid].append((ts, value[0]))
    return touched


def _quarter_of(ts: dt.datetime) -> dt.datetime:
    """The quarter-hour (UTC) an interval ending at ``ts`` belongs to."""
    seconds = int(ts.timestamp()) - 1
    return dt.datetime.fromtimestamp(seconds - seconds % INTERVAL_GRID, UTC)


def _series(meter_id: int, cid: int, start: dt.datetime, end: dt.datetime) -> list[tuple]:
    prev = db.session.execute(select(Reading.ts, Reading.value, Reading.received_at).where(
        Reading.meter_id == meter_id, Reading.channel_id == cid, Reading.ts <= start
    ).order_by(Reading.ts.desc()).limit(1)).all()
    rows = db.session.execute(select(Reading.ts, Reading.value, Reading.received_at).where(
        Reading.meter_id == meter_id, Reading.channel_id == cid, Reading.ts > start, Reading.ts <= end
    ).order_by(Reading.ts)).all()
    return list(prev) + list(rows)


def _bucketer(start: dt.datetime, end: dt.datetime, tz: ZoneInfo):
    """A function (interval end, its epoch seconds) -> (local hour start, local day start, lo, hi) for instants
    in [start, end]: the buckets of an interval ending then, and the ends (lo, hi] in seconds that share them.

    When the zone's offset is the same over the whole range (no DST change), buckets are integer
    arithmetic on epoch seconds; across a change, the exact local-time conversion is used for every end (its
    span is empty)."""
    offset = start.astimezone(tz).utcoffset()
    if offset == end.astimezone(tz).utcoffset() == (end - EPSILON).astimezone(tz).utcoffset():
        shift = int(offset.total_seconds())
        cache: dict[int, tuple[dt.datetime, dt.datetime, int, int]] = {}

        def fixed(_t1: dt.datetime, seconds: int) -> tuple[dt.datetime, dt.datetime, int, int]:
            local = seconds - 1 + shift  # the second before the interval ends
            hour = local - local % 3600
            found = cache.get(hour)
            if found is None:
                found = cache[hour] = (dt.datetime.fromtimestamp(hour - shift, UTC),
                                       dt.datetime.fromtimestamp(hour - hour % 86400 - shift, UTC),
                                       hour - shift, hour - shift + 3600)
            return found

        return fixed
    return lambda t1, _seconds: (local_hour_start(t1 - EPSILON, tz), local_day_start(t1 - EPSILON, tz), 0, -1)


def _recompute(meter_id: int, import_id: int, export_id: int, start: dt.datetime, end: dt.datetime,
               tz: ZoneInfo, on_time: dt.timedelta) -> None:
    hourly: dict[dt.datetime, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    daily: dict[dt.datetime, list[float]] = defaultdict(lambda: [0.0, 0.0, 0, 0])
    buckets_of = _bucketer(start, end, tz)
    for column, cid in ((0, import_id), (1, export_id)):
        series = _series(meter_id, cid, start, end)
        for (_t0, v0, _r0), (t1, v1, r1) in zip(series, series[1:], strict=False):
            if t1 <= start:
                continue
            # An interval's energy belongs to the bucket it ends in (clamped: a reset is not negative use).
            delta = max(v1 - v0, 0.0)
            hour, day, _lo, _hi = buckets_of(t1, int(t1.timestamp()))
            hourly[hour][column] += delta
            daily[day][column] += delta
            if column == 0 and int(t1.timestamp()) % INTERVAL_GRID == 0:
                hourly[hour][2] += 1
                daily[day][2] += 1
                if r1 is not None and r1 - t1 <= on_time:
                    daily[day][3] += 1
    sqlite = db.engine.dialect.name == "sqlite"
    if sqlite:
        before = _hold_running(meter_id, start, end)
    for model, buckets, fields in ((ConsumptionHourly, hourly, ("import_wh", "export_wh", "intervals")),
                                   (ConsumptionDaily, daily, ("import_wh", "export_wh", "intervals", "on_time"))):
        db.session.execute(delete(model).where(and_(model.meter_id == meter_id, model.bucket >= start,
                                                    model.bucket < end)))
        rows = [{"meter_id": meter_id, "bucket": bucket, **dict(zip(fields, values, strict=True))}
                for bucket, values in buckets.items() if start <= bucket < end]
        if rows:
            db.session.execute(insert(model), rows)
    if sqlite:
        _release_running(meter_id, start, end, before)


RUNNING_COLUMNS = ("import_wh", "export_wh", "intervals")


def _hold_running(meter_id: int, start: dt.datetime, end: dt.datetime) -> tuple:
    """SQLite: before a range of a meter's days is rewritten, hold the meter (its running totals' triggers stand
    aside, migration 0162) and return the range's totals as stored (energy, intervals, days)."""
    from app.services.ingest import sqlite_ts

    conn = db.session.connection()
    conn.exec_driver_sql("INSERT OR IGNORE INTO consumption_running_hold (meter_id) VALUES (?)", (meter_id,))
    return tuple(conn.exec_driver_sql(
        "SELECT coalesce(sum(import_wh), 0), coalesce(sum(export_wh), 0), coalesce(sum(intervals), 0), count(*) "
        "FROM consumption_daily WHERE meter_id = ? AND bucket >= ? AND bucket < ?",
        (meter_id, sqlite_ts(start), sqlite_ts(end))).one())


def _release_running(meter_id: int, start: dt.datetime, end: dt.datetime, before: tuple) -> None:
    """SQLite: after the range was rewritten, its running totals written again from the day before it, the later
    days shifted once by the range's net change, and the meter released: a backfill costs its own days plus one
    pass over the later ones (the triggers made that pass once for every day deleted or inserted)."""
    from app.services.ingest import sqlite_ts

    conn = db.session.connection()
    span = (meter_id, sqlite_ts(start), sqlite_ts(end))
    conn.exec_driver_sql("DELETE FROM consumption_daily_running WHERE meter_id = ? AND bucket >= ? AND bucket < ?",
                         span)
    conn.exec_driver_sql(
        "INSERT INTO consumption_daily_running (meter_id, bucket, import_wh, export_wh, intervals, days) "
        "SELECT d.meter_id, d.bucket, b.i + sum(d.import_wh) OVER w, b.e + sum(d.export_wh) OVER w, "
        "b.n + sum(d.intervals) OVER w, b.days + count(*) OVER w "
        "FROM consumption_daily d, (SELECT coalesce(p.import_wh, 0) AS i, coalesce(p.export_wh, 0) AS e, "
        "coalesce(p.intervals, 0) AS n, coalesce(p.days, 0) AS days FROM (SELECT 1) AS one LEFT JOIN "
        "(SELECT * FROM consumption_daily_running WHERE meter_id = ? AND bucket < ? ORDER BY bucket DESC LIMIT 1) "
        "AS p ON 1) AS b WHERE d.meter_id = ? AND d.bucket >= ? AND d.bucket < ? "
        "WINDOW w AS (ORDER BY d.bucket ROWS UNBOUNDED PRECEDING)", (meter_id, span[1], *span))
    after = conn.exec_driver_sql(
        "SELECT coalesce(sum(import_wh), 0), coalesce(sum(export_wh), 0), coalesce(sum(intervals), 0), count(*) "
        "FROM consumption_daily WHERE meter_id = ? AND bucket >= ? AND bucket < ?", span).one()
    change = [a - b for a, b in zip(after, before, strict=True)]
    if any(change):
        conn.exec_driver_sql(
            "UPDATE consumption_daily_running SET import_wh = import_wh + ?, export_wh = export_wh + ?, "
            "intervals = intervals + ?, days = days + ? WHERE meter_id = ? AND bucket >= ?",
            (*change, meter_id, span[2]))
    conn.exec_driver_sql("DELETE FROM consumption_running_hold WHERE meter_id = ?", (meter_id,))
