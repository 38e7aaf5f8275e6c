"""A customer cannot reach any report of others: the report APIs and pages are staff-only, and the report
services still limit a customer-bound user to their own meters if an admin ever grants one access."""

from __future__ import annotations

import datetime as dt

import pytest

from app.extensions import db
from tests.analytics.conftest import fill_days

REPORT_URLS = [
    "/api/v1/consumption/", "/api/v1/consumption/csv", "/api/v1/consumption/pdf", "/api/v1/consumption/readings.csv",
    "/api/v1/completeness/", "/api/v1/completeness/csv", "/api/v1/completeness/pdf",
    "/api/v1/leakage/", "/api/v1/leakage/csv", "/api/v1/leakage/pdf",
    "/api/v1/investigation/", "/api/v1/investigation/csv", "/api/v1/investigation/pdf",
    "/api/v1/technical-loss/", "/api/v1/technical-loss/csv", "/api/v1/technical-loss/pdf",
]
PAGES = ["/reports/consumption/", "/reports/consumption/hourly", "/reports/completeness/", "/revenue/leakage/",
         "/revenue/investigations/", "/revenue/technical-loss/"]


@pytest.fixture
def customer_a1(app, fleet, make_user, api_token):
    """Auth headers of the customer who owns meter A1."""
    return api_token(make_user("Customer", customer_id=fleet.customers["A1"]))


@pytest.mark.parametrize("url", REPORT_URLS)
def test_customer_gets_no_report_api(client, fleet, customer_a1, url):
    assert client.get(url, headers=customer_a1).status_code in (401, 403)


def test_customer_cannot_run_detection_or_touch_cases(client, fleet, customer_a1):
    assert client.post("/api/v1/investigation/detect", headers=customer_a1).status_code in (401, 403)
    assert client.post("/api/v1/investigation/1/close", json={"outcome": "false_alarm"},
                       headers=customer_a1).status_code in (401, 403)


def test_customer_is_denied_the_pages(app, client, fleet, make_user):
    username = make_user("Customer", customer_id=fleet.customers["A1"])
    client.post("/login/", data={"username": username, "password": "pw-" + username})
    for page in PAGES:
        resp = client.get(page)
        assert resp.status_code == 403 and b"rp-root" not in resp.data, page
    client.get("/logout/")


def test_customer_granted_the_api_still_sees_only_their_own_meter(app, client, fleet, make_user, api_token):
    with app.app_context():
        for name in ("A1", "A2", "B1"):
            fill_days(fleet.meters[name], dt.date(2026, 3, 1), [4.0])
        sm = app.appbuilder.sm
        role = sm.add_role("t_customer_reports")
        sm.add_permission_role(role, sm.find_permission_view_menu("can_get", "ConsumptionApi"))
        username = make_user("Customer", customer_id=fleet.customers["A1"])
        user = sm.find_user(username=username)
        user.roles.append(role)
        db.session.commit()
    headers = api_token(username)
    try:
        own = client.get("/api/v1/consumption/?start=2026-03-01&end=2026-03-01", headers=headers)
        assert own.status_code == 200
        assert own.json["summary"]["import_kwh"] == 4.0 and [m["meter"] for m in own.json["meters"]] == ["MTR-A1"]
        other = client.get("/api/v1/consumption/?meter=MTR-A2&start=2026-03-01&end=2026-03-01", headers=headers)
        assert other.status_code == 404
        foreign_area = client.get(f"/api/v1/consumption/?area={fleet.ward_b}", headers=headers)
        assert foreign_area.status_code == 404
        csv = client.get("/api/v1/consumption/csv?start=2026-03-01&end=2026-03-01", headers=headers)
        assert [line.split(",")[0] for line in csv.data.decode("utf-8-sig").splitlines()[1:]] == ["MTR-A1"]
    finally:
        with app.app_context():
            sm = app.appbuilder.sm
            user = sm.find_user(username=username)
            user.roles = [sm.find_role("Customer")]
            db.session.delete(sm.find_role("t_customer_reports"))
            db.session.commit()


def test_operator_reaches_every_report(client, fleet, operator_headers):
    for url in REPORT_URLS:
        assert client.get(url, headers=operator_headers).status_code == 200, url
