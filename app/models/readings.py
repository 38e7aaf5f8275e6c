"""Meter readings: the large table, keyed (meter, channel, timestamp), and its revisions."""

from __future__ import annotations

import datetime as dt
import enum

from flask_appbuilder import Model
from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.types import UTCDateTime, utcnow


class Quality(enum.IntEnum):
    """Quality flag of a stored value."""

    MEASURED = 0
    ESTIMATED = 1
    MISSING = 2
    SUSPECT = 3


class Source(enum.IntEnum):
    """How a value reached the HES."""

    SCHEDULE = 0
    ON_DEMAND = 1
    PUSH = 2
    BACKFILL = 3
    IMPORT = 4


class Channel(Model):
    """A measured quantity (an OBIS code plus attribute), shared by all brands that use it."""

    __tablename__ = "channel"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    obis: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    key: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(120))
    unit: Mapped[str | None] = mapped_column(String(24))
    # True for cumulative registers (kWh), whose consumption is the difference of two values.
    cumulative: Mapped[bool] = mapped_column(default=False)

    def __repr__(self) -> str:
        return self.name or self.obis


class Reading(Model):
    """One value of one channel of one meter at one instant (UTC)."""

    __tablename__ = "reading"
    __table_args__ = (
        UniqueConstraint("meter_id", "channel_id", "ts", name="uq_reading_key"),
        Index("ix_reading_channel_ts", "channel_id", "ts"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meter.id", ondelete="CASCADE"), nullable=False)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"), nullable=False)
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    value: Mapped[float] = mapped_column(Float, nullable=False)
    quality: Mapped[int] = mapped_column(SmallInteger, default=Quality.MEASURED)
    source: Mapped[int] = mapped_column(SmallInteger, default=Source.SCHEDULE)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    meter = relationship("Meter")
    channel: Mapped[Channel] = relationship()


class ReadingRevision(Model):
    """A previous value of a reading that a later read changed (kept, never overwritten silently)."""

    __tablename__ = "reading_revision"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meter.id", ondelete="CASCADE"), nullable=False, index=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"), nullable=False)
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    old_value: Mapped[float] = mapped_column(Float, nullable=False)
    new_value: Mapped[float] = mapped_column(Float, nullable=False)
    old_source: Mapped[int] = mapped_column(SmallInteger)
    new_source: Mapped[int] = mapped_column(SmallInteger)
    # False: the later arrival was kept here but not applied (a profile value outranks it).
    applied: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    revised_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
