"""Meter events and the alerts raised from them (or from analytics rules)."""

from __future__ import annotations

import datetime as dt
import enum

from flask_appbuilder import Model
from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.fleet import _enum
from app.models.types import UTCDateTime, utcnow


class Severity(enum.StrEnum):
    """How urgent an event or alert is."""

    info = "info"
    warning = "warning"
    critical = "critical"


class AlertState(enum.StrEnum):
    """Alert life cycle: active → acknowledged → resolved."""

    active = "active"
    acknowledged = "acknowledged"
    resolved = "resolved"


class Event(Model):
    """Something a meter (or the HES about a meter) reported at a point in time."""

    __tablename__ = "event"
    __table_args__ = (
        # Re-reading an event log must not duplicate events.
        UniqueConstraint("meter_id", "ts", "event_type", "code", name="uq_event_key"),
        Index("ix_event_ts", "ts"),
        Index("ix_event_type_ts", "event_type", "ts"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meter.id", ondelete="CASCADE"), nullable=False, index=True)
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    event_type: Mapped[str] = mapped_column(String(40), nullable=False)
    code: Mapped[int] = mapped_column(Integer, default=0)
    severity: Mapped[Severity] = mapped_column(_enum(Severity, "severity"), default=Severity.info)
    source: Mapped[str] = mapped_column(String(16), default="log")  # log | push | hes | rule
    log: Mapped[str | None] = mapped_column(String(32))
    details: Mapped[dict | None] = mapped_column(JSON)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    meter = relationship("Meter")


class Alert(Model):
    """An item in the Active Alerts inbox; repeats of the same meter and type fold into one."""

    __tablename__ = "alert"
    __table_args__ = (Index("ix_alert_state_severity", "state", "severity"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meter_id: Mapped[int | None] = mapped_column(ForeignKey("meter.id", ondelete="CASCADE"), index=True)
    area_id: Mapped[int | None] = mapped_column(ForeignKey("area.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(24), default="event")  # event | investigation | loss
    alert_type: Mapped[str] = mapped_column(String(40), nullable=False)
    severity: Mapped[Severity] = mapped_column(_enum(Severity, "severity"), default=Severity.warning)
    state: Mapped[AlertState] = mapped_column(_enum(AlertState, "alert_state"), default=AlertState.active)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    details: Mapped[dict | None] = mapped_column(JSON)
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ack_comment: Mapped[str | None] = mapped_column(Text)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolve_comment: Mapped[str | None] = mapped_column(Text)

    meter = relationship("Meter")
    area = relationship("Area")
    acknowledged_by = relationship("User", foreign_keys=[acknowledged_by_id])
    resolved_by = relationship("User", foreign_keys=[resolved_by_id])
