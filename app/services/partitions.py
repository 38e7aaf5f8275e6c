"""PostgreSQL: readings partitioned by month (native declarative partitioning), kept ahead of time.

Each month's partition is created in its own transaction; a failure is logged and retried and never
stops start-up. Rows found in the default partition (written before timestamps were checked) move
into their month's partition when it is created, or to quarantine when they are out of range, so
the default partition stays empty. ``HES_READING_RETENTION_MONTHS`` (0 = keep all) drops old months.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time

from flask import current_app
from sqlalchemy import text

from app.extensions import db

log = logging.getLogger(__name__)
PARTITION_NAME = re.compile(r"^reading_y(\d{4})m(\d{2})$")
_known: dict[int, set[dt.date]] = {}


def month_start(day: dt.date) -> dt.date:
    """The first day of the month containing ``day``."""
    return day.replace(day=1)


def add_months(day: dt.date, months: int) -> dt.date:
    """The first day of the month ``months`` after ``day``'s month."""
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def partition_name(month: dt.date) -> str:
    """Table name of a month's partition."""
    return f"reading_y{month:%Y}m{month:%m}"


def partition_ddl(month: dt.date) -> str:
    """CREATE statement of one month's partition (UTC month boundaries)."""
    start, end = month_start(month), add_months(month, 1)
    return (f"CREATE TABLE IF NOT EXISTS {partition_name(start)} PARTITION OF reading "
            f"FOR VALUES FROM ('{start:%Y-%m-%d} 00:00:00+00') TO ('{end:%Y-%m-%d} 00:00:00+00')")


def is_partitioned() -> bool:
    """True when ``reading`` is a partitioned table (PostgreSQL only)."""
    if db.engine.dialect.name != "postgresql":
        return False
    return bool(db.session.execute(text(
        "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
        "WHERE c.relname = 'reading' AND c.relnamespace = to_regnamespace(current_schema())::oid")).scalar())


def existing_months(conn) -> set[dt.date]:
    """Months that have a partition."""
    names = conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p "
        "ON p.oid = i.inhparent WHERE p.relname = 'reading' "
        "AND p.relnamespace = to_regnamespace(current_schema())::oid")).scalars()
    months = set()
    for name in names:
        match = PARTITION_NAME.match(name)
        if match:
            months.add(dt.date(int(match[1]), int(match[2]), 1))
    return months


def create_month(conn, month: dt.date) -> None:
    """Create one month's partition, first taking that month's rows out of the default partition."""
    start, end = month_start(month), add_months(month, 1)
    has_default = conn.execute(text("SELECT to_regclass('reading_default')")).scalar() is not None
    conn.execute(text("SET LOCAL lock_timeout = '5s'"))
    moved = 0
    if has_default:
        conn.execute(text("CREATE TEMP TABLE IF NOT EXISTS moving_reading (LIKE reading) ON COMMIT DROP"))
        moved = conn.execute(text(
            "WITH gone AS (DELETE FROM reading_default WHERE ts >= :s AND ts < :e RETURNING *) "
            "INSERT INTO moving_reading SELECT * FROM gone"), {"s": start, "e": end}).rowcount
    conn.execute(text(partition_ddl(start)))
    if moved:
        conn.execute(text("INSERT INTO reading SELECT * FROM moving_reading"))
        log.warning("moved %d readings of %s out of the default partition", moved, f"{start:%Y-%m}")


def ensure_months(stamps) -> None:
    """Before a batch is written: make sure every month it touches has its partition (PostgreSQL).

    Created inside the caller's transaction under a savepoint; when that fails, the rows would go to
    the default partition, so the failure is raised (the caller retries the batch)."""
    key = id(db.engine)
    months = {dt.date(ts.year, ts.month, 1) for ts in stamps}
    known = _known.get(key)
    if known is not None and months <= known:
        return
    if not is_partitioned():
        _known[key] = months | (known or set())
        return
    conn = db.session.connection()
    known = _known[key] = existing_months(conn)
    for month in sorted(months - known):
        with db.session.begin_nested():
            create_month(db.session.connection(), month)
        known.add(month)


def forget_known_months() -> None:
    """Drop the cache of existing partitions (after partitions were dropped)."""
    _known.clear()


def _with_retries(what: str, action, attempts: int = 3) -> bool:
    for attempt in range(1, attempts + 1):
        try:
            with db.engine.begin() as conn:
                action(conn)
            return True
        except Exception:  # noqa: BLE001 - logged and retried; never fatal
            log.exception("partition maintenance: %s failed (attempt %d of %d)", what, attempt, attempts)
            time.sleep(0.2 * attempt)
    return False


def quarantine_default_rows(conn, newest: dt.datetime) -> int:
    """Rows in the default partition that are out of range go to quarantine (the HES clock decides)."""
    if conn.execute(text("SELECT to_regclass('reading_default')")).scalar() is None:
        return 0
    return conn.execute(text(
        "WITH gone AS (DELETE FROM reading_default WHERE ts > :newest RETURNING meter_id, channel_id, ts, value, "
        "source) INSERT INTO quarantined_row (meter_id, kind, source, obis, ts, value, reason, received_at) "
        "SELECT g.meter_id, 'reading', 'default_partition', c.obis, g.ts, g.value, "
        "'timestamp ahead of the HES clock (found in the default partition)', now() "
        "FROM gone g JOIN channel c ON c.id = g.channel_id"), {"newest": newest}).rowcount


def drop_old_partitions(conn, today: dt.date, months: int) -> list[str]:
    """Drop month partitions that ended more than ``months`` months before this one."""
    limit = add_months(today, -months)
    dropped = []
    for month in sorted(existing_months(conn)):
        if add_months(month, 1) <= limit:
            conn.execute(text(f"DROP TABLE IF EXISTS {partition_name(month)}"))
            dropped.append(partition_name(month))
    return dropped


def ensure_partitions(months_ahead: int = 3, today: dt.date | None = None) -> list[str]:
    """Create this month's and the next months' partitions if missing (each in its own transaction,
    retried, never fatal), clear the default partition and apply the retention; returns the names."""
    if not is_partitioned():
        return []
    db.session.commit()
    today = today or dt.datetime.now(dt.UTC).date()
    names = []
    from app.services.ingest import timestamp_window

    _with_retries("quarantining future rows of the default partition",
                  lambda conn: quarantine_default_rows(conn, timestamp_window()[1]))
    months = [add_months(today, offset) for offset in range(0, months_ahead + 1)]
    with db.engine.connect() as conn:
        if conn.execute(text("SELECT to_regclass('reading_default')")).scalar() is not None:
            # Months whose rows the old code left in the default partition get their own partition now.
            months += sorted({dt.date(int(y), int(m), 1) for y, m in conn.execute(text(
                "SELECT DISTINCT extract(year FROM ts AT TIME ZONE 'UTC'), extract(month FROM ts AT TIME ZONE 'UTC') "
                "FROM reading_default")).all()} - set(months))
    for month in months:
        if _with_retries(f"creating {partition_name(month)}", lambda conn, m=month: create_month(conn, m)):
            names.append(partition_name(month))
    retention = int(current_app.config.get("HES_READING_RETENTION_MONTHS", 0) or 0)
    if retention:
        _with_retries("dropping old partitions", lambda conn: log.info(
            "dropped partitions %s", drop_old_partitions(conn, today, retention)))
    forget_known_months()
    return names
