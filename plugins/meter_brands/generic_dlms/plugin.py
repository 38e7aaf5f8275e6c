"""Generic DLMS brand hooks: heartbeat Formats A and B, ASCII tokens, IDIS-style event codes."""

from __future__ import annotations

from pathlib import Path

import pluggy
import yaml

from app.comms.heartbeat import Heartbeat, parse_heartbeat
from app.plugins.tokens import ascii_token

hookimpl = pluggy.HookimplMarker("hes")

BRAND = "generic_dlms"
_DEFINITION = yaml.safe_load((Path(__file__).with_name("obis.yaml")).read_text(encoding="utf-8"))
EVENT_TYPES: dict[int, str] = {int(code): name for code, name in _DEFINITION["event_codes"].items()}


@hookimpl(trylast=True)
def hes_parse_heartbeat(frame: bytes) -> Heartbeat | None:
    """Fallback parser: wrapper header + ASCII id, or a bare ASCII id with optional status bytes."""
    return parse_heartbeat(frame)


@hookimpl
def hes_encode_token(brand: str, token: str) -> bytes | None:
    """Most DLMS prepaid meters take the 20 digits as an ASCII octet string."""
    return ascii_token(token) if brand == BRAND else None


@hookimpl
def hes_map_event(brand: str, log: str, code: int) -> str | None:
    """Map IDIS-style event codes to HES event types."""
    if brand != BRAND:
        return None
    return EVENT_TYPES.get(int(code))
