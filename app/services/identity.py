"""Who a meter is: its DLMS system title (how ciphered pushes name their sender)."""

from __future__ import annotations

import re

from app.models import Meter
from app.services import ServiceError

SYSTEM_TITLE = re.compile(r"^[0-9a-f]{16}$")


def validate_identity(meter: Meter) -> None:
    """Normalise the meter's system title (8 bytes as 16 hex digits; empty means unknown)."""
    title = (meter.system_title or "").strip().lower()
    if title and not SYSTEM_TITLE.match(title):
        raise ServiceError("system_title must be 8 bytes written as 16 hex digits.", status=422,
                           errors=[{"column": "system_title", "reason": "invalid", "value": meter.system_title}])
    meter.system_title = title or None
