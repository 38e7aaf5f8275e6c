"""Token encodings shared by brand plugins."""

from __future__ import annotations


def ascii_token(token: str) -> bytes:
    """The 20 STS digits as an ASCII octet string (spaces and dashes dropped), as most DLMS meters take them."""
    digits = token.replace(" ", "").replace("-", "")
    if len(digits) != 20 or not digits.isdigit():
        raise ValueError("a token is 20 decimal digits")
    return digits.encode("ascii")
