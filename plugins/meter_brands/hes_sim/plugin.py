"""HES Core Simulator brand hooks: Format-A heartbeats, ASCII tokens, the simulator's event codes."""

from __future__ import annotations

from pathlib import Path

import pluggy
import yaml

from app.comms.heartbeat import Heartbeat, parse_heartbeat
from app.plugins.tokens import ascii_token

hookimpl = pluggy.HookimplMarker("hes")

BRAND = "hes_sim"
_DEFINITION = yaml.safe_load((Path(__file__).with_name("obis.yaml")).read_text(encoding="utf-8"))
EVENT_TYPES: dict[int, str] = {int(code): name for code, name in _DEFINITION["event_codes"].items()}
_FORMAT_A = b"\x00\x01\x00\x01\x00\x01"


@hookimpl
def hes_parse_heartbeat(frame: bytes) -> Heartbeat | None:
    """Claim Format-A frames (wrapper header 00 01 00 01 00 01 + ASCII meter number)."""
    if not frame.startswith(_FORMAT_A):
        return None
    return parse_heartbeat(frame)


@hookimpl
def hes_encode_token(brand: str, token: str) -> bytes | None:
    """The simulator takes the 20 digits as an ASCII octet string."""
    return ascii_token(token) if brand == BRAND else None


@hookimpl
def hes_map_event(brand: str, log: str, code: int) -> str | None:
    """Map simulator event codes (same in every log) to HES event types."""
    if brand != BRAND:
        return None
    return EVENT_TYPES.get(int(code))
