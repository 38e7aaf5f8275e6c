"""Remote commands to meters and the group jobs that bundle them."""

from __future__ import annotations

import datetime as dt
import enum

from flask_appbuilder import Model
from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.fleet import _enum
from app.models.types import UTCDateTime, utcnow


class CommandState(enum.StrEnum):
    """queued → sent → succeeded | failed | expired | cancelled."""

    queued = "queued"
    sent = "sent"
    succeeded = "succeeded"
    failed = "failed"
    expired = "expired"
    cancelled = "cancelled"


FINAL_STATES = {CommandState.succeeded, CommandState.failed, CommandState.expired, CommandState.cancelled}


class CommandJob(Model):
    """A group of commands issued together (a selection or an area), tracked as one."""

    __tablename__ = "command_job"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(24), nullable=False)
    params: Mapped[dict | None] = mapped_column(JSON)
    total: Mapped[int] = mapped_column(Integer, default=0)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    requested_by = relationship("User")
    commands: Mapped[list[Command]] = relationship(back_populates="job")


class Command(Model):
    """One operation on one meter, with its state, result and who asked for it."""

    __tablename__ = "command"
    __table_args__ = (Index("ix_command_meter_state", "meter_id", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(24), nullable=False)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meter.id", ondelete="CASCADE"), nullable=False)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("command_job.id", ondelete="SET NULL"), index=True)
    params: Mapped[dict | None] = mapped_column(JSON)
    state: Mapped[CommandState] = mapped_column(_enum(CommandState, "command_state"), default=CommandState.queued)
    reason: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Who goes first among a meter's queued commands (and in the task queue): operators' before customers'.
    priority: Mapped[int] = mapped_column(Integer, default=50, server_default="50", nullable=False)
    idempotency_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    node_id: Mapped[str | None] = mapped_column(String(64))  # the node running it while sent

    meter = relationship("Meter")
    job: Mapped[CommandJob | None] = relationship(back_populates="commands")
    requested_by = relationship("User")
