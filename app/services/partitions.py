"""PostgreSQL: readings partitioned by month (native declarative partitioning), kept ahead of time."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from app.extensions import db


def month_start(day: dt.date) -> dt.date:
    """The first day of the month containing ``day``."""
    return day.replace(day=1)


def add_months(day: dt.date, months: int) -> dt.date:
    """The first day of the month ``months`` after ``day``'s month."""
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def partition_ddl(month: dt.date) -> str:
    """CREATE statement of one month's partition (UTC month boundaries)."""
    start, end = month_start(month), add_months(month, 1)
    return (f"CREATE TABLE IF NOT EXISTS reading_y{start:%Y}m{start:%m} PARTITION OF reading "
            f"FOR VALUES FROM ('{start:%Y-%m-%d} 00:00:00+00') TO ('{end:%Y-%m-%d} 00:00:00+00')")


def is_partitioned() -> bool:
    """True when ``reading`` is a partitioned table (PostgreSQL only)."""
    if db.engine.dialect.name != "postgresql":
        return False
    return bool(db.session.execute(text(
        "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
        "WHERE c.relname = 'reading' AND c.relnamespace = to_regnamespace(current_schema())::oid")).scalar())


def ensure_partitions(months_ahead: int = 3, today: dt.date | None = None) -> list[str]:
    """Create this month's and the next months' partitions if missing; returns their names."""
    if not is_partitioned():
        return []
    today = today or dt.datetime.now(dt.UTC).date()
    names = []
    for offset in range(0, months_ahead + 1):
        month = add_months(today, offset)
        db.session.execute(text(partition_ddl(month)))
        names.append(f"reading_y{month:%Y}m{month:%m}")
    db.session.commit()
    return names
