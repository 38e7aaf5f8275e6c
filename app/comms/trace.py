"""Communication trace: the frames a DLMS session sends and receives, while tracing is on for a meter.

The session collects raw frames only (cheap); decoding and storing happen after the session
(``app.services.trace``). Which session traces is set by a context variable, so no transport changes."""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Trace:
    """Frames of one meter's session(s): (unix time, "tx" | "rx", bytes), plus what decodes and masks them."""

    meter_id: int
    frames: list[tuple[float, str, bytes]] = field(default_factory=list)
    params: Any = None  # the SessionParams of the last session: framing, secrets to mask, keys to decrypt
    limit: int = 5000

    def add(self, direction: str, frame: bytes) -> None:
        """Keep one frame (the oldest go when a session sends more than ``limit``)."""
        self.frames.append((time.time(), direction, bytes(frame)))
        if len(self.frames) > self.limit:
            del self.frames[: len(self.frames) - self.limit]


CURRENT: contextvars.ContextVar[Trace | None] = contextvars.ContextVar("hes_comm_trace", default=None)
