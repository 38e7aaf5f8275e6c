"""Login rate limiting that counts failed sign-ins, per account and address.

FAB's ``AUTH_RATE_LIMIT`` counted every POST to the login form per address: colleagues behind one office address
used up each other's attempts by signing in successfully. Here a sign-in that fails (wrong password, unknown or
inactive account) counts against the pair (account, address); when the pair has used ``AUTH_RATE_LIMIT`` the next
attempt is answered 429 before the password is checked. One address guessing many accounts is held by a wider
limit on its failures alone (``HES_LOGIN_ADDRESS_LIMIT``, default ten times the per-account one). The same limits
cover the login form and the JWT login (``POST /api/v1/security/login``); counters live in the rate limiter's
storage (Redis when configured, so every web process shares them)."""

from __future__ import annotations

import re

from flask import current_app, request
from flask_limiter.util import get_remote_address


def _username() -> str:
    """The account a sign-in names (form or JSON), normalised; empty when none."""
    value = request.form.get("username")
    if value is None and request.is_json:
        body = request.get_json(silent=True)
        value = body.get("username") if isinstance(body, dict) else None
    return str(value or "").strip().lower()[:128]


def account_address_key() -> str:
    """The counter of one account from one address."""
    return f"login-fail:{_username()}@{get_remote_address()}"


def address_key() -> str:
    """The counter of one address, whatever accounts it tries."""
    return f"login-fail-address:{get_remote_address()}"


def failed_sign_in(response) -> bool:
    """True when this answer to a sign-in says the credentials were refused: 401 from the API, a redirect back to
    the login form from the page (FAB flashes "Invalid login" and redirects there), or the form shown again."""
    if response.status_code == 401:
        return True
    if response.status_code in (301, 302, 303):
        return "/login" in (response.location or "")
    return response.status_code == 200 and request.method == "POST" and not request.is_json


def address_limit(per_account: str) -> str:
    """The per-address limit: ``HES_LOGIN_ADDRESS_LIMIT`` or ten times the per-account count in the same window."""
    configured = current_app.config.get("HES_LOGIN_ADDRESS_LIMIT")
    if configured:
        return configured
    match = re.match(r"\s*(\d+)\s*(/|per)\s*(.+)", per_account)
    return f"{int(match.group(1)) * 10} per {match.group(3)}" if match else per_account


def limit_sign_ins(security_manager, blueprints) -> None:
    """Put both limits on the sign-in blueprints (POST only; failures are what is counted)."""
    per_account = security_manager.auth_rate_limit
    limiter = security_manager.limiter
    for blueprint in blueprints:
        limiter.shared_limit(per_account, "login-account", key_func=account_address_key, methods=["POST"],
                             deduct_when=failed_sign_in)(blueprint)
        limiter.shared_limit(lambda: address_limit(per_account), "login-address", key_func=address_key,
                             methods=["POST"], deduct_when=failed_sign_in)(blueprint)
