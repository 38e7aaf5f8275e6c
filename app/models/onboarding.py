"""Onboarding a brand: kept versions of brand definitions and per-meter communication traces."""

from __future__ import annotations

import datetime as dt

from flask_appbuilder import Model
from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.types import UTCDateTime, utcnow


class BrandVersion(Model):
    """A brand definition as it was saved (every save keeps one; the newest is the brand's current one)."""

    __tablename__ = "brand_version"
    __table_args__ = (Index("ix_brand_version_brand", "brand_id", "version", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("meter_brand.id", ondelete="CASCADE"), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    saved_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    saved_by: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16), default="ui")
    definition: Mapped[dict] = mapped_column(JSON, nullable=False)


class TraceFrame(Model):
    """One frame the HES sent to or received from a traced meter, decoded (a bounded ring per meter)."""

    __tablename__ = "trace_frame"
    __table_args__ = (Index("ix_trace_frame_meter", "meter_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meter.id", ondelete="CASCADE"), nullable=False)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    direction: Mapped[str] = mapped_column(String(4), nullable=False)  # tx (HES -> meter) | rx
    hex: Mapped[str] = mapped_column(Text, nullable=False)
    xml: Mapped[str | None] = mapped_column(Text)
