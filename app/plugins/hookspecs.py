"""Hook specifications of HES Core (pluggy project ``hes``); every hook is called with keywords."""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("hes")
hookimpl = pluggy.HookimplMarker("hes")


@hookspec
def hes_register_brands():
    """Return a list of brand definitions (dicts in the ``obis.yaml`` format)."""


@hookspec(firstresult=True)
def hes_parse_heartbeat(frame: bytes):
    """Identify a dial-in meter from its first frame: a ``Heartbeat`` or None if not yours."""


@hookspec(firstresult=True)
def hes_encode_token(brand: str, token: str):
    """Encode a 20-digit STS token for the brand's token gateway, or None if not your brand."""


@hookspec(firstresult=True)
def hes_map_event(brand: str, log: str, code: int):
    """Map a brand's event code from a given log to a standard HES event type, or None."""


@hookspec
def hes_register_rules():
    """Return a list of theft/leakage rules (objects with ``name``, ``defaults`` and ``evaluate``)."""
