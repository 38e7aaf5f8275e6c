"""HES Core Simulator brand hooks: only what is specific to it, its Format-A heartbeat.

Its objects, roles and event code table are data (``obis.yaml``); tokens are ASCII digits, the HES default."""

from __future__ import annotations

import pluggy

from app.comms.heartbeat import Heartbeat, parse_heartbeat

hookimpl = pluggy.HookimplMarker("hes")

BRAND = "hes_sim"
_FORMAT_A = b"\x00\x01\x00\x01\x00\x01"


@hookimpl
def hes_parse_heartbeat(frame: bytes) -> Heartbeat | None:
    """Claim Format-A frames (wrapper header 00 01 00 01 00 01 + ASCII meter number)."""
    if not frame.startswith(_FORMAT_A):
        return None
    return parse_heartbeat(frame)
