"""Login rate limiting counts failed sign-ins per account and address, not page loads or successful sign-ins:
colleagues behind one office address do not lock each other out, a password guesser is stopped."""

from __future__ import annotations

import pytest

from app.extensions import db
from tests.conftest import make_config


@pytest.fixture(scope="module")
def limited_app(tmp_path_factory):
    """Rate limits on: 3 failed sign-ins a minute per account and address, 6 per address."""
    from app import create_app
    from app.services.bootstrap import prepare_database

    application = create_app(make_config(tmp_path_factory.mktemp("login-limit"), RATELIMIT_ENABLED=True,
                                         AUTH_RATE_LIMIT="3 per minute", HES_LOGIN_ADDRESS_LIMIT="6 per minute"))
    prepare_database(application)
    with application.app_context():
        sm = application.appbuilder.sm
        for name in ("ana", "ben", "cid", "dee"):
            sm.add_user(name, name, "Op", f"{name}@example.test", sm.find_role("Operator"), password=f"pw-{name}-1")
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def api_login(client, username: str, password: str) -> int:
    return client.post("/api/v1/security/login", json={"username": username, "password": password,
                                                       "provider": "db"}).status_code


def form_login(client, username: str, password: str) -> int:
    resp = client.post("/login/", data={"username": username, "password": password})
    return 200 if resp.status_code == 302 and "/login" not in resp.headers["Location"] else resp.status_code


def test_page_loads_and_successful_sign_ins_do_not_count(limited_app):
    for _ in range(8):
        client = limited_app.test_client()
        assert client.get("/login/").status_code == 200
        assert api_login(client, "ana", "pw-ana-1") == 200
        assert form_login(client, "ana", "pw-ana-1") == 200


def test_failures_lock_one_account_from_one_address_not_its_colleagues(limited_app):
    client = limited_app.test_client()
    assert [api_login(client, "ben", "wrong") for _ in range(3)] == [401, 401, 401]
    assert api_login(client, "ben", "wrong") == 429
    assert api_login(client, "ben", "pw-ben-1") == 429  # locked: even the right password waits
    assert form_login(client, "ben", "pw-ben-1") == 429  # the form shares the counter
    assert api_login(client, "cid", "pw-cid-1") == 200  # a colleague at the same address signs in
    assert form_login(client, "cid", "pw-cid-1") == 200


def test_one_address_guessing_many_accounts_is_stopped(limited_app):
    client = limited_app.test_client()
    codes = [api_login(client, name, "wrong") for name in ("x1", "x2", "x3", "x4", "x5", "x6", "x7")]
    assert codes[:3] == [401, 401, 401] and 429 in codes[3:], codes  # 3 already used by the test above
    assert api_login(client, "dee", "pw-dee-1") == 429  # the address is held, whatever account it names
