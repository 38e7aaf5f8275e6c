"""Revenue protection: findings of the theft rules and the learned model, and the investigations they open."""

from __future__ import annotations

import datetime as dt
import enum

from flask_appbuilder import Model
from sqlalchemy import JSON, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.fleet import _enum
from app.models.types import UTCDateTime, utcnow


class InvestigationState(enum.StrEnum):
    """An investigation is open until a field visit's outcome closes it."""

    open = "open"
    closed = "closed"


class InvestigationOutcome(enum.StrEnum):
    """What the field visit found."""

    theft_confirmed = "theft_confirmed"
    meter_fault = "meter_fault"
    false_alarm = "false_alarm"


class Investigation(Model):
    """A theft/leakage case on one meter: who works it, notes, the visit's outcome and what was recovered."""

    __tablename__ = "investigation"
    __table_args__ = (Index("ix_investigation_state_meter", "state", "meter_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meter.id", ondelete="CASCADE"), nullable=False, index=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alert.id", ondelete="SET NULL"))
    state: Mapped[InvestigationState] = mapped_column(
        _enum(InvestigationState, "investigation_state"), default=InvestigationState.open)
    # Rules (and "anomaly_model") whose findings opened or joined this case, and the highest score seen.
    rules: Mapped[list] = mapped_column(JSON, default=list)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    reason: Mapped[str | None] = mapped_column(Text)
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    outcome: Mapped[InvestigationOutcome | None] = mapped_column(_enum(InvestigationOutcome, "investigation_outcome"))
    energy_recovered_kwh: Mapped[float | None] = mapped_column(Float)
    amount_recovered: Mapped[float | None] = mapped_column(Float)
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))

    meter = relationship("Meter")
    alert = relationship("Alert")
    assigned_to = relationship("User", foreign_keys=[assigned_to_id])
    closed_by = relationship("User", foreign_keys=[closed_by_id])
    notes: Mapped[list[InvestigationNote]] = relationship(
        back_populates="investigation", cascade="all, delete-orphan", order_by="InvestigationNote.id")


class InvestigationNote(Model):
    """A dated note on an investigation (field notes, calls, decisions)."""

    __tablename__ = "investigation_note"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    investigation_id: Mapped[int] = mapped_column(
        ForeignKey("investigation.id", ondelete="CASCADE"), nullable=False, index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    author: Mapped[str] = mapped_column(String(64), default="system")
    text: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    investigation: Mapped[Investigation] = relationship(back_populates="notes")


class RuleFinding(Model):
    """What one rule (or the anomaly model) found on one meter in the detection run for one day."""

    __tablename__ = "rule_finding"
    __table_args__ = (
        # A detection run repeated for the same day stores each finding once.
        UniqueConstraint("meter_id", "rule", "as_of", name="uq_rule_finding_key"),
        Index("ix_rule_finding_as_of", "as_of"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meter.id", ondelete="CASCADE"), nullable=False, index=True)
    rule: Mapped[str] = mapped_column(String(64), nullable=False)
    as_of: Mapped[dt.date] = mapped_column(Date, nullable=False)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    details: Mapped[dict | None] = mapped_column(JSON)
    investigation_id: Mapped[int | None] = mapped_column(
        ForeignKey("investigation.id", ondelete="SET NULL"), index=True)
    detected_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    meter = relationship("Meter")
    investigation = relationship("Investigation")


DETECTION_RUNNING = ("queued", "running")


class DetectionRun(Model):
    """One "Run detection now": queued → running → done | failed, with how many meters were checked so far (the
    page polls it) and the run's summary when done. Runs in a task, never in the request that asked for it."""

    __tablename__ = "detection_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="queued", nullable=False)
    as_of: Mapped[dt.date | None] = mapped_column(Date)
    meters: Mapped[int] = mapped_column(Integer, default=0)
    checked: Mapped[int] = mapped_column(Integer, default=0)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict | None] = mapped_column(JSON)
    message: Mapped[str | None] = mapped_column(Text)
    node_id: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    @property
    def finished(self) -> bool:
        """Done or failed."""
        return self.state not in DETECTION_RUNNING

    def as_dict(self) -> dict:
        """The JSON the page polls and the API answers."""
        return {"id": self.id, "state": self.state, "as_of": self.as_of.isoformat() if self.as_of else None,
                "meters": self.meters, "checked": self.checked, "progress": self.progress,
                "result": self.result, "message": self.message,
                "created_at": self.created_at.isoformat() if self.created_at else None,
                "started_at": self.started_at.isoformat() if self.started_at else None,
                "finished_at": self.finished_at.isoformat() if self.finished_at else None}
