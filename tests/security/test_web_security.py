"""What a browser and an attacker see: security headers, cookie flags, CSRF on forms (not on JWT APIs), the login
rate limit, secrets at rest and never in answers, password hashing, key files."""

from __future__ import annotations

import os
import stat

import pytest
from flask import has_app_context
from sqlalchemy import text

from app.extensions import db
from app.services.secrets import decrypt
from config import Config
from tests.conftest import make_config
from tests.security.conftest import login_session

SECRET = "lls-secret-123456"
KEY = "000102030405060708090a0b0c0d0e0f"


def test_security_headers_on_pages_apis_and_errors(role_clients):
    client, headers = role_clients["Operator"]
    for resp in (client.get("/login/"), client.get("/dashboard/"), client.get("/api/v1/meter/", headers=headers),
                 client.get("/api/v1/meter/987654", headers=headers), client.get("/nowhere")):
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["X-Frame-Options"] == "SAMEORIGIN"
        assert resp.headers["Referrer-Policy"] == "same-origin"


def test_session_cookie_flags(app, make_user):
    client = app.test_client()
    username = make_user("Operator")
    resp = client.post("/login/", data={"username": username, "password": "pw-" + username})
    cookie = next(v for k, v in resp.headers.items() if k == "Set-Cookie" and v.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_secure_cookies_follow_hes_secure_cookies(monkeypatch, tmp_path):
    monkeypatch.setenv("HES_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HES_SECURE_COOKIES", "1")
    cfg = Config()
    assert cfg.SESSION_COOKIE_SECURE and cfg.REMEMBER_COOKIE_SECURE and cfg.SESSION_COOKIE_HTTPONLY


def test_generated_keys_are_random_private_files(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("HES_SECRETS_KEY", raising=False)
    monkeypatch.setenv("HES_DATA_DIR", str(tmp_path))
    cfg = Config()
    assert cfg.SECRET_KEY != cfg.HES_SECRETS_KEY and len(cfg.SECRET_KEY) >= 40
    for name in ("secret_key", "secrets_key"):
        mode = stat.S_IMODE(os.stat(tmp_path / name).st_mode)
        assert mode == 0o600, oct(mode)
    assert Config().SECRET_KEY == cfg.SECRET_KEY  # kept across restarts


def test_passwords_are_hashed(app, make_user):
    username = make_user("Customer")
    with app.app_context():
        stored = app.appbuilder.sm.find_user(username=username).password
    assert "pw-" + username not in stored and stored.split(":")[0] in ("scrypt", "pbkdf2")


def test_meter_and_brand_secrets_are_encrypted_at_rest_and_never_answered(app, role_clients, two_customers):
    client, headers = role_clients["Admin"]
    meter_id = two_customers["A"]["meter_id"]
    body = {"password": SECRET, "block_cipher_key": KEY, "authentication_key": KEY, "system_title": "4142434445464748"}
    resp = client.put(f"/api/v1/meter/{meter_id}/credentials", json=body, headers=headers)
    assert resp.status_code == 200 and resp.json["password_set"] and resp.json["keys_set"]
    with app.app_context():
        row = db.session.execute(text("SELECT s.password_enc, s.block_cipher_key_enc FROM meter_secret s "
                                      "JOIN meter m ON m.secret_id = s.id WHERE m.id = :id"), {"id": meter_id}).one()
        assert SECRET.encode() not in bytes(row[0]) and bytes.fromhex(KEY) not in bytes(row[1])
        assert decrypt(bytes(row[0])) == SECRET.encode()
    answers = [client.get(f"/api/v1/meter/{meter_id}", headers=headers),
               client.get("/api/v1/meter/", headers=headers), client.get("/api/v1/meter/_info", headers=headers),
               client.get("/api/v1/meter/export", headers=headers), client.get("/api/v1/brand/", headers=headers),
               resp]
    for answer in answers:
        data = answer.get_data(as_text=True)
        assert SECRET not in data and KEY not in data and "_enc" not in data


def test_webhook_secret_is_write_only(app, role_clients):
    client, headers = role_clients["Admin"]
    sub = client.post("/api/v1/subscription/", headers=headers,
                      json={"name": "t-sec", "kind": "webhook", "url": "https://example.test/h"}).json["id"]
    assert client.put(f"/api/v1/subscription/{sub}/secret", json={"secret": "webhook-signing-secret-1"},
                      headers=headers).status_code == 200
    for url in (f"/api/v1/subscription/{sub}", "/api/v1/subscription/", "/api/v1/subscription/_info"):
        data = client.get(url, headers=headers).get_data(as_text=True)
        assert "webhook-signing-secret-1" not in data and "secret_enc" not in data
    with app.app_context():
        stored = db.session.execute(text("SELECT secret_enc FROM subscription WHERE id = :id"), {"id": sub}).scalar()
    assert b"webhook-signing-secret-1" not in bytes(stored)


@pytest.fixture(scope="module")
def strict_app(tmp_path_factory):
    """An app as deployed: CSRF on, rate limits on (login: 3 a minute)."""
    from app import create_app
    from app.services.bootstrap import prepare_database

    application = create_app(make_config(tmp_path_factory.mktemp("strict"), WTF_CSRF_ENABLED=True,
                                         RATELIMIT_ENABLED=True, AUTH_RATE_LIMIT="3 per minute"))
    prepare_database(application)
    with application.app_context():
        sm = application.appbuilder.sm
        sm.add_user("st_admin", "S", "A", "st_admin@example.test", sm.find_role("Admin"), password="pw-st_admin")
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def _csrf_token(page: str) -> str:
    return page.split('name="csrf_token"')[1].split('value="')[1].split('"')[0]


def test_forms_need_a_csrf_token_jwt_apis_do_not(strict_app):
    client = strict_app.test_client()
    resp = client.post("/login/", data={"username": "st_admin", "password": "pw-st_admin"})
    assert resp.status_code == 400  # no csrf_token: refused before the password is even checked
    token = _csrf_token(client.get("/login/").get_data(as_text=True))
    resp = client.post("/login/", data={"username": "st_admin", "password": "pw-st_admin", "csrf_token": token})
    assert resp.status_code == 302 and "/login" not in resp.headers["Location"]
    # Signed in by cookie, a state-changing form still needs the token.
    assert client.post("/settings/", data={"theme": "dark"}).status_code == 400
    # A JWT API call carries no cookie to ride on, so it needs no CSRF token.
    api = strict_app.test_client()
    jwt = api.post("/api/v1/security/login", json={"username": "st_admin", "password": "pw-st_admin",
                                                    "provider": "db"}).json["access_token"]
    resp = api.post("/api/v1/area/", json={"name": "T", "code": "T-CSRF"}, headers={"Authorization": f"Bearer {jwt}"})
    assert resp.status_code == 201, resp.get_data(as_text=True)


def test_login_is_rate_limited(strict_app):
    client = strict_app.test_client()
    codes = [client.post("/api/v1/security/login", json={"username": "st_admin", "password": "wrong",
                                                          "provider": "db"}).status_code for _ in range(5)]
    first = codes.index(429)  # the limit (3 a minute per address) may be partly used by the test above
    assert first <= 3 and set(codes[:first]) <= {401} and set(codes[first:]) == {429}, codes
    token = _csrf_token(client.get("/login/").get_data(as_text=True))
    form = [client.post("/login/", data={"username": "st_admin", "password": "wrong", "csrf_token": token}).status_code
            for _ in range(5)]
    assert 429 in form, form


def test_logout_ends_the_session(role_clients):
    client, _ = role_clients["Operator"]
    assert client.get("/dashboard/").status_code == 200
    client.get("/logout/")
    assert "/login" in client.get("/dashboard/").headers.get("Location", "")


def test_deactivated_user_loses_the_session_and_the_token(app, make_user, api_token):
    username = make_user("Operator")
    headers = api_token(username)
    client = app.test_client()
    login_session(client, username)
    with app.app_context():
        user = app.appbuilder.sm.find_user(username=username)
        user.active = False
        db.session.commit()
    if has_app_context():  # pytest-flask keeps an app context (and its session cache) open around the test client
        db.session.expire_all()
    assert client.get("/dashboard/").status_code == 302
    assert app.test_client().get("/api/v1/meter/", headers=headers).status_code in (401, 403)
