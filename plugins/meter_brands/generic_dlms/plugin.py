"""Generic DLMS brand hooks: only what is specific to it, the fallback heartbeat parser (Formats A and B).

Its objects, roles and IDIS-style event code table are data (``obis.yaml``); tokens are ASCII digits, the
HES default."""

from __future__ import annotations

import pluggy

from app.comms.heartbeat import Heartbeat, parse_heartbeat

hookimpl = pluggy.HookimplMarker("hes")

BRAND = "generic_dlms"


@hookimpl(trylast=True)
def hes_parse_heartbeat(frame: bytes) -> Heartbeat | None:
    """Fallback parser: wrapper header + ASCII id, or a bare ASCII id with optional status bytes."""
    return parse_heartbeat(frame)
