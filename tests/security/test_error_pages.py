"""Branded 403, 404, 429 and 500 pages: they say what happened and where to go, in the HES layout; APIs get JSON."""

from __future__ import annotations

import pytest

from app.extensions import db
from tests.conftest import make_config


@pytest.fixture(scope="module")
def error_app(tmp_path_factory):
    """An app with a page that fails, and rate limits on (2 failed sign-ins a minute)."""
    from app import create_app
    from app.services.bootstrap import prepare_database

    application = create_app(make_config(tmp_path_factory.mktemp("errors"), RATELIMIT_ENABLED=True,
                                         AUTH_RATE_LIMIT="2 per minute", PROPAGATE_EXCEPTIONS=False))

    @application.route("/broken-page")
    def broken_page():
        raise RuntimeError("boom")

    prepare_database(application)
    with application.app_context():
        sm = application.appbuilder.sm
        sm.add_user("op_err", "Olga", "Op", "op_err@example.test", sm.find_role("Operator"), password="pw-op-err-1")
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def signed_in(app):
    client = app.test_client()
    resp = client.post("/login/", data={"username": "op_err", "password": "pw-op-err-1"})
    assert resp.status_code == 302 and "/login" not in resp.headers["Location"]
    return client


def test_404_says_not_found_and_offers_the_start_page(error_app):
    resp = signed_in(error_app).get("/no-such-page/")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 404 and 'id="hes-error"' in page and "Page not found" in page
    assert 'id="hes-sidebar"' in page and 'href="/"' in page


def test_403_names_the_role_problem(error_app):
    resp = signed_in(error_app).get("/users/list/")  # user administration is Admin-only
    page = resp.get_data(as_text=True)
    assert resp.status_code == 403 and "You do not have access to this page" in page and "administrator" in page


def test_500_is_branded_and_apis_answer_json(error_app):
    client = signed_in(error_app)
    resp = client.get("/broken-page")
    assert resp.status_code == 500 and "Something went wrong on our side" in resp.get_data(as_text=True)
    assert "boom" not in resp.get_data(as_text=True)
    api = client.get("/api/v1/no-such-api/")
    assert api.status_code == 404 and api.is_json


def test_429_after_failed_sign_ins_explains_the_wait(error_app):
    client = error_app.test_client()
    for _ in range(2):
        client.post("/login/", data={"username": "op_err", "password": "wrong"})
    resp = client.post("/login/", data={"username": "op_err", "password": "wrong"})
    assert resp.status_code == 429 and "Too many attempts" in resp.get_data(as_text=True)
