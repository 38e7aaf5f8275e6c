"""Guards on request bodies that every endpoint shares: JSON that is too deep or holds text that cannot be stored
is refused with 400 before any view (or Flask-AppBuilder's API) sees it."""

from __future__ import annotations

import json

from flask import Flask, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest

MAX_JSON_DEPTH = 64


class UnusableJSON(ValueError):
    """A JSON document that parses but cannot be used (too deep, lone surrogates)."""


def check_json_value(value) -> None:
    """Raise ``UnusableJSON`` for nesting deeper than ``MAX_JSON_DEPTH`` or a string (or key) that is not valid
    Unicode (a lone surrogate such as ``"\\ud800"`` cannot be encoded as UTF-8, so no database can hold it)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, (list, dict)):
            if depth > MAX_JSON_DEPTH:
                raise UnusableJSON(f"JSON is nested deeper than {MAX_JSON_DEPTH} levels")
            if isinstance(item, dict):
                for key in item:
                    _check_text(key)
                stack.extend((v, depth + 1) for v in item.values())
            else:
                stack.extend((v, depth + 1) for v in item)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UnusableJSON("JSON text holds a lone surrogate (\\ud800-\\udfff), which is not a character") from None


def loads_guarded(data: str | bytes, **kwargs):
    """``json.loads`` that raises ``ValueError`` (never ``RecursionError``) for hostile documents."""
    try:
        value = json.loads(data, **kwargs)
    except RecursionError:
        raise UnusableJSON(f"JSON is nested deeper than {MAX_JSON_DEPTH} levels") from None
    check_json_value(value)
    return value


class GuardedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider with ``loads_guarded``: ``request.get_json()`` turns a hostile body into a 400."""

    def loads(self, s, **kwargs):
        return loads_guarded(s, **kwargs)


def install(app: Flask) -> None:
    """Use the guarded provider and refuse an unusable JSON body before any view runs."""
    app.json = GuardedJSONProvider(app)

    @app.before_request
    def refuse_unusable_json():
        if not request.is_json or not request.content_length:
            return None
        try:
            request.get_json()
        except BadRequest as exc:
            detail = next((str(e) for e in _chain(exc) if isinstance(e, UnusableJSON)), "the body is not valid JSON")
            return jsonify(message=f"Unusable JSON body: {detail}."), 400
        return None


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def install_api_csrf(app: Flask) -> None:
    """The REST APIs are CSRF-exempt for bearer tokens, which a browser never sends on its own. A write to them
    with the *session cookie* (the console's fetch calls, ``allow_browser_login``) must carry the CSRF token
    (``X-CSRFToken``) or a JSON content type, which another origin cannot send without a CORS preflight this app
    never grants. Without this, a page on a sibling origin of the same site could post body-less or multipart
    requests (collect now, run detection, cancel a command, import a CSV) with the user's cookie."""
    from flask_login import current_user
    from flask_wtf.csrf import CSRFError

    from app.extensions import csrf

    @app.before_request
    def csrf_for_cookie_api_writes():
        if request.method in SAFE_METHODS or not app.config.get("WTF_CSRF_ENABLED", True):
            return None
        if not request.endpoint or not csrf._is_exempt() or "Authorization" in request.headers:
            return None
        if request.is_json or not getattr(current_user, "is_authenticated", False):
            return None  # JSON needs a preflight; without a session the API answers 401 itself
        try:
            csrf.protect()
        except CSRFError as exc:
            return jsonify(message=f"A write with the session cookie needs the X-CSRFToken header or a JSON body "
                                   f"({exc.description})"), 400
        return None
