"""Collection schedules and the outbox of the data pusher (webhook / MQTT subscriptions)."""

from __future__ import annotations

import datetime as dt

from flask_appbuilder import Model
from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.types import UTCDateTime, utcnow

SCHEDULE_KINDS = ("load_profile", "daily_snapshot", "billing", "events", "clock_sync", "health_check")


class Schedule(Model):
    """When to collect what from which meters (a brand and/or an area subtree; empty = all)."""

    __tablename__ = "schedule"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), nullable=False)
    kind: Mapped[str] = mapped_column(String(24), nullable=False)
    brand_id: Mapped[int | None] = mapped_column(ForeignKey("meter_brand.id", ondelete="CASCADE"))
    area_id: Mapped[int | None] = mapped_column(ForeignKey("area.id", ondelete="CASCADE"))
    interval_minutes: Mapped[int] = mapped_column(Integer, default=15)
    offset_minutes: Mapped[int] = mapped_column(Integer, default=0)
    spread_seconds: Mapped[int] = mapped_column(Integer, default=120)
    params: Mapped[dict | None] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    next_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_meters: Mapped[int | None] = mapped_column(Integer)

    brand = relationship("MeterBrand")
    area = relationship("Area")

    def __repr__(self) -> str:
        return self.name


class Subscription(Model):
    """A customer system that receives readings and/or events as JSON (webhook or MQTT)."""

    __tablename__ = "subscription"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), default="webhook")  # webhook | mqtt
    url: Mapped[str] = mapped_column(String(500), nullable=False)  # https://... or mqtt://host:port/topic
    secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    readings: Mapped[bool] = mapped_column(Boolean, default=True)
    events: Mapped[bool] = mapped_column(Boolean, default=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return self.name


class Delivery(Model):
    """One message for one subscription: written with the data it carries, sent at least once."""

    __tablename__ = "delivery"
    __table_args__ = (Index("ix_delivery_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id", ondelete="CASCADE"), index=True)
    topic: Mapped[str] = mapped_column(String(24))  # readings | events
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    payload: Mapped[dict] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    subscription = relationship("Subscription")


class CollectionCursor(Model):
    """How far one profile of one meter has been read: the capture time (and entry index, where the
    meter offers one) of the last row read FROM THAT PROFILE. Pushes, on-demand reads and other
    profiles never move it, so the next read of this profile starts here."""

    __tablename__ = "collection_cursor"

    meter_id: Mapped[int] = mapped_column(ForeignKey("meter.id", ondelete="CASCADE"), primary_key=True)
    profile: Mapped[str] = mapped_column(String(24), primary_key=True)  # load_profile | daily | billing | log:<name>
    last_ts: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    last_entry: Mapped[int | None] = mapped_column(BigInteger)
    rows_read: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What a complete row of this profile holds (register OBIS codes) and its capture period in seconds
    # (0: captured on events, e.g. billing), as the meter answered: the one definition of a gap.
    captures: Mapped[list | None] = mapped_column(JSON)
    capture_period: Mapped[int | None] = mapped_column(Integer)


class QuarantinedRow(Model):
    """A reading or event whose meter timestamp failed the checks (too far ahead of the HES clock, or
    older than the horizon): kept with the reason, never stored as data, never moving a cursor."""

    __tablename__ = "quarantined_row"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meter.id", ondelete="CASCADE"), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(16), default="reading")  # reading | event
    source: Mapped[str] = mapped_column(String(24))
    obis: Mapped[str | None] = mapped_column(String(32))
    code: Mapped[int | None] = mapped_column(Integer)
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    value: Mapped[float | None] = mapped_column()
    reason: Mapped[str] = mapped_column(String(200), nullable=False)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
