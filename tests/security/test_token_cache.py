"""A JWT verified once is kept per process (``app.services.sessions.VerifiedTokens``): what that must never change —
an expired, tampered, revoked token or one of a deactivated user is refused at its very next request."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time

from app.extensions import db


def _headers(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_a_known_token_is_refused_once_its_user_is_deactivated(app, client, make_user, api_token):
    username = make_user("Operator")
    headers = api_token(username)
    for _ in range(2):  # the second time the token's claims come from the process
        assert client.get("/api/v1/meter/", headers=headers).status_code == 200
    with app.app_context():
        user = app.appbuilder.sm.find_user(username=username)
        user.active = False
        db.session.commit()
    assert client.get("/api/v1/meter/", headers=headers).status_code == 401
    with app.app_context():
        user = app.appbuilder.sm.find_user(username=username)
        user.active = True
        db.session.commit()
    assert client.get("/api/v1/meter/", headers=headers).status_code == 200


def test_a_known_token_is_refused_when_it_expires(app, client, make_user):
    from flask_jwt_extended import create_access_token

    username = make_user("Operator")
    with app.test_request_context():
        user_id = app.appbuilder.sm.find_user(username=username).id
        token = create_access_token(identity=str(user_id), expires_delta=dt.timedelta(seconds=1))
    exp = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["exp"]
    assert client.get("/api/v1/meter/", headers=_headers(token)).status_code == 200
    assert len(app.appbuilder.sm.verified_tokens) > 0
    time.sleep(max(0.0, exp - time.time()) + 0.2)
    resp = client.get("/api/v1/meter/", headers=_headers(token))
    assert resp.status_code == 401, resp.get_data(as_text=True)


def test_a_tampered_copy_of_a_known_token_is_refused(app, client, make_user, api_token):
    headers = api_token(make_user("Operator"))
    admin = make_user("Admin")
    with app.app_context():
        admin_id = app.appbuilder.sm.find_user(username=admin).id
    assert client.get("/api/v1/meter/", headers=headers).status_code == 200
    token = headers["Authorization"].split()[1]
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = str(admin_id)  # someone else, signature unchanged
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    resp = client.get("/api/v1/security/users/", headers=_headers(f"{head}.{forged}.{signature}"))
    assert resp.status_code in (401, 422), resp.status_code
    assert client.get("/api/v1/security/users/", headers=headers).status_code == 403  # still only an Operator


def test_the_kept_tokens_are_bounded_and_expiry_goes_back_to_the_full_check(app):
    from app.services.sessions import VerifiedTokens

    calls = []

    def decode(token, csrf_value=None, allow_expired=False):
        calls.append(token)
        if token == "expired":
            raise ValueError("expired")
        return {"sub": token, "type": "access", "exp": time.time() + (0.5 if token == "short" else 3600)}

    tokens = VerifiedTokens()
    cached = tokens.wrap(decode)
    with app.app_context():
        for i in range(VerifiedTokens.LIMIT + 10):
            cached(f"t{i}")
        assert len(tokens) == VerifiedTokens.LIMIT and tokens.peek("t0") is None  # the oldest went first
        cached("t20")
        assert calls.count("t20") == 1  # kept: not decoded again
        assert cached("t20", csrf_value="x") and calls.count("t20") == 2  # a CSRF check always decodes
        cached("short")
        time.sleep(0.6)
        assert tokens.peek("short") is None
        cached("short")
        assert calls.count("short") == 2  # expired: decoded (and refused or renewed) in full again
        claims = cached("t20")
        claims["sub"] = "someone else"  # a caller changing its copy does not change the kept claims
        assert cached("t20")["sub"] == "t20"
