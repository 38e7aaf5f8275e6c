"""Meter credentials: encrypted at rest with HES_SECRETS_KEY, turned into DLMS session parameters.

Secrets are write-only: the UI and the API can set them but never read them back.
"""

from __future__ import annotations

import base64
import hashlib
import re

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app
from sqlalchemy import update

from app.comms.session import GMAC_AUTH, SessionParams
from app.extensions import db
from app.models import Meter, MeterSecret
from app.services import ServiceError

HEX16 = re.compile(r"^[0-9a-fA-F]{32}$")
HEX8 = re.compile(r"^[0-9a-fA-F]{16}$")


def _fernet() -> Fernet:
    key = current_app.config["HES_SECRETS_KEY"].encode()
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key).digest()))


def encrypt(value: bytes | None) -> bytes | None:
    """Encrypt a secret for storage."""
    return None if value is None else _fernet().encrypt(value)


def decrypt(token: bytes | None) -> bytes:
    """Decrypt a stored secret (empty when none is set)."""
    if not token:
        return b""
    try:
        return _fernet().decrypt(token)
    except InvalidToken as exc:
        raise ServiceError("A meter secret cannot be decrypted: HES_SECRETS_KEY changed?", status=500) from exc


def _hex(value: str | None, pattern: re.Pattern, name: str) -> bytes | None:
    if value in (None, ""):
        return None
    if not pattern.match(value):
        size = 16 if pattern is HEX16 else 8
        raise ServiceError(f"{name} must be {size} bytes written as {size * 2} hex digits.",
                           errors=[{"column": name, "reason": "invalid"}], status=422)
    return bytes.fromhex(value)


def store_credentials(secret: MeterSecret | None, *, password: str | None = None,
                      block_cipher_key: str | None = None, authentication_key: str | None = None,
                      system_title: str | None = None, invocation_counter: int | None = None) -> MeterSecret:
    """Set any of the credentials (hex for keys and system title); unset arguments stay as they are."""
    block = _hex(block_cipher_key, HEX16, "block_cipher_key")
    auth = _hex(authentication_key, HEX16, "authentication_key")
    _hex(system_title, HEX8, "system_title")
    secret = secret or MeterSecret()
    if password is not None:
        secret.password_enc = encrypt(password.encode()) if password else None
    if block is not None:
        secret.block_cipher_key_enc = encrypt(block)
    if auth is not None:
        secret.authentication_key_enc = encrypt(auth)
    if system_title:
        secret.system_title = system_title.lower()
    if invocation_counter is not None:
        secret.invocation_counter = max(int(invocation_counter), secret.invocation_counter or 0)
    db.session.add(secret)
    return secret


def describe(secret: MeterSecret | None) -> dict:
    """What is set, never the values themselves."""
    return {
        "password_set": bool(secret and secret.password_enc),
        "keys_set": bool(secret and secret.block_cipher_key_enc and secret.authentication_key_enc),
        "system_title": secret.system_title if secret else None,
        "invocation_counter": secret.invocation_counter if secret else None,
    }


def session_params(meter: Meter, *, response_timeout: float = 30.0) -> tuple[SessionParams, int | None]:
    """DLMS parameters for a meter (its own secret, else its brand's default) and the secret's id."""
    settings = meter.effective
    secret = meter.secret or meter.brand.default_secret
    kwargs = dict(interface=settings["interface"], client_address=settings["client_address"],
                  server_address=settings["server_address"], auth=settings["auth"],
                  response_timeout=response_timeout)
    if settings["interface"] == "hdlc":
        kwargs["logical_address"] = settings["server_address"]
    if secret is not None:
        # LLS password, or the HLS secret of mechanisms 3, 4 and 6 (never sent: only hashes of challenges are).
        kwargs["password"] = decrypt(secret.password_enc)
        if settings["auth"] in GMAC_AUTH:
            kwargs.update(block_cipher_key=decrypt(secret.block_cipher_key_enc),
                          authentication_key=decrypt(secret.authentication_key_enc),
                          invocation_counter=secret.invocation_counter or 0)
        if secret.system_title:
            kwargs["system_title"] = bytes.fromhex(secret.system_title)
    try:
        return SessionParams(**kwargs), secret.id if secret is not None else None
    except ValueError as exc:
        raise ServiceError(f"Meter {meter.number}: {exc} (set its credentials first)", status=409) from exc


def advance_invocation_counter(secret_id: int, value: int) -> None:
    """Persist a used invocation counter; it only ever moves forward, even with concurrent sessions."""
    db.session.execute(
        update(MeterSecret).where(MeterSecret.id == secret_id, MeterSecret.invocation_counter < value)
        .values(invocation_counter=value)
    )
    db.session.commit()
