"""CSV imports run as jobs: their progress while they run and their result (counts or errors by line) after."""

from __future__ import annotations

import datetime as dt

from flask_appbuilder import Model
from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.types import UTCDateTime, utcnow

RUNNING_STATES = ("queued", "checking", "writing")


class ImportJob(Model):
    """One uploaded file of meters, SIM cards or customers: queued → checking → writing → done | rejected |
    failed. ``progress`` is the share of the file read by the current pass (checking 0–50 %, writing 50–100 %)."""

    __tablename__ = "import_job"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    filename: Mapped[str | None] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    state: Mapped[str] = mapped_column(String(16), default="queued", nullable=False)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    line: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str | None] = mapped_column(Text)
    errors: Mapped[list | None] = mapped_column(JSON)
    node_id: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    @property
    def finished(self) -> bool:
        """Done, rejected or failed."""
        return self.state not in RUNNING_STATES

    def as_dict(self) -> dict:
        """The JSON the job page polls and the API answers."""
        return {"id": self.id, "kind": self.kind, "filename": self.filename, "size_bytes": self.size_bytes,
                "state": self.state, "progress": self.progress, "line": self.line, "created": self.created,
                "updated": self.updated, "message": self.message, "errors": self.errors or [],
                "created_at": self.created_at.isoformat() if self.created_at else None,
                "finished_at": self.finished_at.isoformat() if self.finished_at else None}
