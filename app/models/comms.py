"""Comms node registry and dial-in connections from meters the HES does not know yet."""

from __future__ import annotations

import datetime as dt

from flask_appbuilder import Model
from sqlalchemy import JSON, Boolean, ForeignKey, Integer, LargeBinary, String, Text
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
    push_listen: Mapped[str | None] = mapped_column(String(64))
    # Push and connection counters since the node started (received, stored, undecodable, ...).
    counters: Mapped[dict | None] = mapped_column(JSON)


class HesProcess(Model):
    """A running HES process (web, comms node, task consumer, or several in one) and its event-loop lag,
    written by the process itself every few seconds (System › Comms Nodes › Processes)."""

    __tablename__ = "hes_process"

    key: Mapped[str] = mapped_column(String(96), primary_key=True)  # host:pid
    roles: Mapped[str] = mapped_column(String(64), nullable=False)
    node_id: Mapped[str | None] = mapped_column(String(64))
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # {"p99_ms", "max_ms" (loop lag over the last minute), "max_since_start_ms", "samples", "rss_mib", "fds",
    #  "caches": {name: entries}}
    stats: Mapped[dict | None] = mapped_column(JSON)


class UnregisteredConnection(Model):
    """A meter that dialled in or pushed but is not in the registry: listed for the admin to register."""

    __tablename__ = "unregistered_connection"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identity: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    node_id: Mapped[str | None] = mapped_column(String(64))
    first_frame_hex: Mapped[str | None] = mapped_column(Text)
    how_identified: Mapped[str | None] = mapped_column(String(32))  # heartbeat | logical_name | serial | push:...
    kind: Mapped[str] = mapped_column(String(16), default="dial_in", server_default="dial_in")  # dial_in | push
    system_title: Mapped[str | None] = mapped_column(String(16))  # hex, from a ciphered push
    pushes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_push: Mapped[str | None] = mapped_column(Text)  # the last push's decoded content (JSON)
    connected: Mapped[bool] = mapped_column(Boolean, default=True)
    first_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    connections: Mapped[int] = mapped_column(Integer, default=1)

    def __repr__(self) -> str:
        return self.identity


class PushFailure(Model):
    """A push the HES could not store (undecodable, unknown keys, refused by policy): its bytes are kept."""

    __tablename__ = "push_failure"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    node_id: Mapped[str | None] = mapped_column(String(64))
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    port: Mapped[str | None] = mapped_column(String(16))  # meter | push
    meter_id: Mapped[int | None] = mapped_column(ForeignKey("meter.id", ondelete="SET NULL"), index=True)
    identity: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(24))  # undecodable | unknown_sender | refused
    reason: Mapped[str] = mapped_column(Text)
    frame: Mapped[bytes] = mapped_column(LargeBinary)

    @property
    def frame_hex(self) -> str:
        """The kept bytes as hex (for the API and the page)."""
        return self.frame.hex()
