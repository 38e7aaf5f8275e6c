"""Local calendar periods (hour, day, ISO week, month) in the utility's zone and their UTC bounds.

Rollup buckets are stored as the UTC instant their local hour or day starts, so a local date range maps to
one UTC half-open range, and weeks and months are unions of whole local days (23, 24 or 25 hours long).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import current_app

from app.models.types import UTC
from app.services import ServiceError

GRANULARITIES = ("hourly", "daily", "weekly", "monthly")
MAX_RANGE_DAYS = 3660


def utility_zone() -> ZoneInfo:
    """HES_TIMEZONE as a ZoneInfo."""
    return ZoneInfo(current_app.config.get("HES_TIMEZONE") or "UTC")


def local_midnight(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """The UTC instant the local day starts."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(UTC)


def local_today(tz: ZoneInfo, now: dt.datetime | None = None) -> dt.date:
    """Today's date in the utility's zone."""
    return (now or dt.datetime.now(UTC)).astimezone(tz).date()


def utc_range(start: dt.date, end: dt.date, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """UTC half-open range covering the local days ``start`` … ``end`` (inclusive)."""
    return local_midnight(start, tz), local_midnight(end + dt.timedelta(days=1), tz)


def period_start(day: dt.date, granularity: str) -> dt.date:
    """The first local day of the week (ISO, Monday) or month that contains ``day``."""
    if granularity == "weekly":
        return day - dt.timedelta(days=day.weekday())
    if granularity == "monthly":
        return day.replace(day=1)
    return day


def period_label(start: dt.datetime | dt.date, granularity: str) -> str:
    """How a period is written in tables and CSV: ``2026-03-29 02:00+02:00``, ``2026-03-29``, ``2026-W13``,
    ``2026-03``."""
    if granularity == "hourly":
        return start.isoformat(sep=" ", timespec="minutes")
    day = start if isinstance(start, dt.date) and not isinstance(start, dt.datetime) else start.date()
    if granularity == "weekly":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if granularity == "monthly":
        return f"{day:%Y-%m}"
    return day.isoformat()


def parse_date(raw: str | None, name: str, default: dt.date) -> dt.date:
    """A ``YYYY-MM-DD`` query value, or the default when empty; ServiceError 400 when malformed."""
    if not raw:
        return default
    try:
        return dt.date.fromisoformat(raw)
    except ValueError as exc:
        raise ServiceError(f"'{name}' must be a date as YYYY-MM-DD, not '{raw}'.") from exc


def check_range(start: dt.date, end: dt.date, granularity: str | None = None) -> None:
    """Reject an inverted or absurd range and unknown granularities (ServiceError 400)."""
    if end < start:
        raise ServiceError("The end date is before the start date.")
    if (end - start).days > MAX_RANGE_DAYS:
        raise ServiceError(f"Choose a range of at most {MAX_RANGE_DAYS} days.")
    if granularity is not None and granularity not in GRANULARITIES:
        raise ServiceError(f"Unknown granularity '{granularity}' (use one of: {', '.join(GRANULARITIES)}).")


def local_days(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every local date from ``start`` to ``end`` inclusive."""
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
