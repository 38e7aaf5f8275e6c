"""Comms node registry and dial-in connections from meters the HES does not know yet."""

from __future__ import annotations

import datetime as dt

from flask_appbuilder import Model
from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.types import UTCDateTime, utcnow


class CommsNode(Model):
    """A running comms node: which process holds which dial-in sockets (see ``meter.node_id``)."""

    __tablename__ = "comms_node"

    node_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    listen: Mapped[str | None] = mapped_column(String(64))
    pid: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    connections: Mapped[int] = mapped_column(Integer, default=0)


class UnregisteredConnection(Model):
    """A meter that dialled in but is not in the registry: listed for the admin to register."""

    __tablename__ = "unregistered_connection"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identity: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    node_id: Mapped[str | None] = mapped_column(String(64))
    first_frame_hex: Mapped[str | None] = mapped_column(Text)
    how_identified: Mapped[str | None] = mapped_column(String(32))  # heartbeat | logical_name | serial
    connected: Mapped[bool] = mapped_column(Boolean, default=True)
    first_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    connections: Mapped[int] = mapped_column(Integer, default=1)

    def __repr__(self) -> str:
        return self.identity
