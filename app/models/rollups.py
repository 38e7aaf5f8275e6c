"""Pre-aggregated consumption, kept up to date as readings land (reports never scan raw readings).

Buckets are in the utility's zone (HES_TIMEZONE) and stored as the UTC instant the local hour or
day starts, so daily totals are right in zones with half-hour offsets and across DST changes.
"""

from __future__ import annotations

import datetime as dt

from flask_appbuilder import Model
from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.types import UTCDateTime


class ConsumptionHourly(Model):
    """Energy of one meter in one local hour (Wh), from its cumulative registers."""

    __tablename__ = "consumption_hourly"
    # PostgreSQL only: on SQLite the fleet's hourly totals go meter by meter through the key (migration 0170).
    __table_args__ = (Index("ix_consumption_hourly_bucket", "bucket").ddl_if(dialect="postgresql"),)

    meter_id: Mapped[int] = mapped_column(ForeignKey("meter.id", ondelete="CASCADE"), primary_key=True)
    bucket: Mapped[dt.datetime] = mapped_column(UTCDateTime, primary_key=True)
    import_wh: Mapped[float] = mapped_column(Float, default=0.0)
    export_wh: Mapped[float] = mapped_column(Float, default=0.0)
    intervals: Mapped[int] = mapped_column(Integer, default=0)


class ConsumptionDaily(Model):
    """Energy of one meter on one local day (Wh) and how many profile intervals were received."""

    __tablename__ = "consumption_daily"
    __table_args__ = (Index("ix_consumption_daily_bucket", "bucket"),)

    meter_id: Mapped[int] = mapped_column(ForeignKey("meter.id", ondelete="CASCADE"), primary_key=True)
    bucket: Mapped[dt.datetime] = mapped_column(UTCDateTime, primary_key=True)
    import_wh: Mapped[float] = mapped_column(Float, default=0.0)
    export_wh: Mapped[float] = mapped_column(Float, default=0.0)
    intervals: Mapped[int] = mapped_column(Integer, default=0)
    on_time: Mapped[int] = mapped_column(Integer, default=0)


class EnergyQuarter(Model):
    """Energy imported per area and quarter-hour (Wh), for the dashboard's live past-hour chart.

    Maintained as intervals are appended; rows older than a week are pruned.
    ``area_id`` 0 stands for meters without an area."""

    __tablename__ = "energy_quarter"

    area_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[dt.datetime] = mapped_column(UTCDateTime, primary_key=True)
    import_wh: Mapped[float] = mapped_column(Float, default=0.0)


class ConsumptionAreaDaily(Model):
    """Energy of the meters of one area (without sub-areas; 0 = no area) on one local day, and how many meters
    have a daily row: the sum of ``consumption_daily`` kept by database triggers as its rows change."""

    __tablename__ = "consumption_area_daily"
    __table_args__ = (Index("ix_consumption_area_daily_bucket", "bucket"),)

    area_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[dt.datetime] = mapped_column(UTCDateTime, primary_key=True)
    import_wh: Mapped[float] = mapped_column(Float, default=0.0)
    export_wh: Mapped[float] = mapped_column(Float, default=0.0)
    meters: Mapped[int] = mapped_column(Integer, default=0)
    intervals: Mapped[int] = mapped_column(Integer, default=0)


class ConsumptionDailyRunning(Model):
    """A meter's totals from its first daily row up to and including ``bucket`` (one row per daily row, kept by
    database triggers): its energy over any range of days is the difference of two rows. SQLite only: PostgreSQL's
    reports sum ``consumption_daily`` and do not keep it (migration 0160_ing_pg_running_off)."""

    __tablename__ = "consumption_daily_running"

    meter_id: Mapped[int] = mapped_column(ForeignKey("meter.id", ondelete="CASCADE"), primary_key=True)
    bucket: Mapped[dt.datetime] = mapped_column(UTCDateTime, primary_key=True)
    import_wh: Mapped[float] = mapped_column(Float, default=0.0)
    export_wh: Mapped[float] = mapped_column(Float, default=0.0)
    intervals: Mapped[int] = mapped_column(Integer, default=0)
    days: Mapped[int] = mapped_column(Integer, default=0)


class SlowFigure(Model):
    """A figure that takes seconds to count at fleet scale (today's completeness, revenue leakage), as last counted
    for one scope and options, shared by every HES process: pages serve it with its ``as_of`` while a background
    refresh counts again (``app.services.recent``)."""

    __tablename__ = "slow_figure"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text)
    as_of: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    counted_ms: Mapped[int | None] = mapped_column(Integer)
    asked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    refreshing_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
