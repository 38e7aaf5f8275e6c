"""Remote operations beyond the command row: group-job tracking, firmware images and per-meter transfers."""

from __future__ import annotations

import datetime as dt

from flask_appbuilder import Model
from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.types import UTCDateTime, utcnow


class JobTracking(Model):
    """Progress and idempotency of one group job (1:1 with ``command_job``)."""

    __tablename__ = "command_job_tracking"

    job_id: Mapped[int] = mapped_column(ForeignKey("command_job.id", ondelete="CASCADE"), primary_key=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    area_id: Mapped[int | None] = mapped_column(ForeignKey("area.id", ondelete="SET NULL"))
    done: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    failed: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    job = relationship("CommandJob")


class FirmwareImage(Model):
    """An uploaded firmware image and the identifier the meters report once it is active."""

    __tablename__ = "firmware_image"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identifier: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    filename: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    notes: Mapped[str | None] = mapped_column(Text)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    uploaded_by = relationship("User")

    def __repr__(self) -> str:
        return self.identifier


class FirmwareTransfer(Model):
    """Image transfer progress of one firmware command on one meter (kept across resumed sessions)."""

    __tablename__ = "firmware_transfer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    command_id: Mapped[int] = mapped_column(ForeignKey("command.id", ondelete="CASCADE"), unique=True, nullable=False)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meter.id", ondelete="CASCADE"), index=True, nullable=False)
    image_id: Mapped[int] = mapped_column(ForeignKey("firmware_image.id", ondelete="CASCADE"), nullable=False)
    # waiting → transferring → verifying → activating → done | failed | cancelling | cancelled
    status: Mapped[str] = mapped_column(String(16), default="waiting", nullable=False)
    block_size: Mapped[int | None] = mapped_column(Integer)
    blocks_total: Mapped[int | None] = mapped_column(Integer)
    blocks_done: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    blocks_sent: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    sessions: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    resumed_from: Mapped[int | None] = mapped_column(Integer)
    version_before: Mapped[str | None] = mapped_column(String(64))
    version_after: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    image: Mapped[FirmwareImage] = relationship()
    command = relationship("Command")
