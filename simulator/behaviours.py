"""Behaviour profiles of real meters (each selectable per meter): the quirks a home-made simulator lacks.

Select them for a whole fleet with ``--behaviour NAME`` (repeatable) or per meter through the control
API: ``POST /meters/<serial>/behaviour {"name": NAME, "active": true}``.
"""

from __future__ import annotations

from typing import Any

BEHAVIOURS: dict[str, str] = {
    "range_empty": "selective access by range answers an empty array (read by entry works)",
    "range_all": "selective access by range ignores the range and answers every row",
    "range_unsupported": "selective access by range is refused with 'object unavailable'",
    "entry_unsupported": "selective access by entry is refused with 'object unavailable'",
    "selective_access_unsupported": "any selective access answers an exception-response 'service not supported'",
    "small_pdu": "the meter's maximum PDU is 256 bytes, so long profiles come in many blocks",
    "general_block_transfer": "the meter offers general block transfer (GBT) and sends long replies in GBT blocks "
                              "of at most 256 bytes",
    "push_plain": "pushes are sent plain, even by a meter that ciphers its associations",
    "push_ciphered": "pushes are ciphered (general-glo), even by a meter that authenticates with LLS",
    "push_ded": "ciphered pushes use general-ded-ciphering instead of general-glo-ciphering",
    "push_anonymous": "pushes carry no meter number (only the source address tells who sent them)",
    "initiate_refused": "refuses every association with a confirmed-service-error in its AARE (initiate-error: "
                        "incompatible conformance), as a meter whose needs the client's proposal does not meet",
    "hdlc_on_wrapper": "answers a wrapper frame with an HDLC frame (a meter set to HDLC on a wrapper port)",
    "get_with_list_unsupported": "does not offer multiple references (no GET-WITH-LIST) in its conformance, and "
                                 "answers a with-list request with an exception-response 'service not supported'",
    "get_with_list_refused": "offers multiple references but answers every GET-WITH-LIST with an exception-response "
                             "'service not supported' (firmware that claims more than it does)",
    "impostor": "does not know the meter's secrets: accepts any HLS answer and answers the HES's challenge "
                "with a secret of its own (what a device claiming someone else's identity can do)",
}

SMALL_PDU = 256
SERVICE_NOT_SUPPORTED = b"\xd8\x02\x02"  # exception-response: state error service-unknown, service not supported
# confirmed-service-error: initiateError [1], ServiceError initiate [6], incompatible-conformance (2)
INITIATE_INCOMPATIBLE_CONFORMANCE = b"\x0e\x01\x06\x02"


class BehaviourError(ValueError):
    """An unknown behaviour name."""


def check(name: str) -> str:
    """The behaviour name, if it is one."""
    if name not in BEHAVIOURS:
        raise BehaviourError(f"unknown behaviour {name!r}; known: {', '.join(sorted(BEHAVIOURS))}")
    return name


def has(meter: Any, name: str) -> bool:
    """True when the meter shows this behaviour."""
    behaviours = getattr(meter, "behaviours", None)
    return bool(behaviours) and name in behaviours


def set_behaviour(meter: Any, name: str, active: bool = True) -> set[str]:
    """Switch a behaviour on or off for one meter; returns the meter's behaviours."""
    check(name)
    current = set(meter.behaviours or ())
    if active:
        current.add(name)
    else:
        current.discard(name)
    meter.behaviours = frozenset(current) or None
    return current


def selective_access_refusal(meter: Any, selector: int) -> int | bytes | None:
    """How the meter refuses a selective access it does not support: a data-access-result code, the raw
    exception-response APDU for 'service not supported', or None when it answers normally."""
    from simulator.dlms_server import OBJECT_UNAVAILABLE

    if selector and has(meter, "selective_access_unsupported"):
        return SERVICE_NOT_SUPPORTED
    if selector == 1 and has(meter, "range_unsupported"):
        return OBJECT_UNAVAILABLE
    if selector == 2 and has(meter, "entry_unsupported"):
        return OBJECT_UNAVAILABLE
    return None


def range_rows(meter: Any, first: int, last: int, count: int) -> tuple[int, int]:
    """The rows a range read answers: the right ones, none, or every row, as the meter behaves."""
    if has(meter, "range_empty"):
        return 0, 0
    if has(meter, "range_all"):
        return 0, count
    return first, last


def max_pdu(meter: Any, negotiated: int) -> int:
    """The PDU size the meter sends with."""
    small = has(meter, "small_pdu") or has(meter, "general_block_transfer")
    return min(negotiated, SMALL_PDU) if small else negotiated


def offers_multiple_references(meter: Any) -> bool:
    """True when the meter grants multiple references (GET-WITH-LIST) to a client that proposes it."""
    return not has(meter, "get_with_list_unsupported")


def refuses_get_with_list(meter: Any) -> bool:
    """True when the meter answers a GET-WITH-LIST with 'service not supported' (granted or not)."""
    return has(meter, "get_with_list_unsupported") or has(meter, "get_with_list_refused")


def offers_gbt(meter: Any) -> bool:
    """True when the meter grants general block transfer to a client that proposes it."""
    return has(meter, "general_block_transfer")


def push_cipher(meter: Any, ciphers_associations: bool) -> int | None:
    """The ciphering tag of the meter's pushes (0xDB general-glo, 0xDC general-ded), or None for plain."""
    if has(meter, "push_plain"):
        return None
    if ciphers_associations or has(meter, "push_ciphered"):
        return 0xDC if has(meter, "push_ded") else 0xDB
    return None
