"""My Meters through its JSON API, the service and the page (SQLite and PostgreSQL): a customer sees their own
meters only, consumption equals the rollup rows, token entry follows the site setting, alerts are scoped,
staff get a notice, and every role lands somewhere without a redirect loop."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Alert, AlertState, ConsumptionDaily, Customer, Meter, Severity
from app.models.commands import Command, CommandState
from app.services.reports.periods import local_midnight, local_today

LAGOS = "Africa/Lagos"  # UTC+1 all year: a local day starts at 23:00 UTC the day before
TOKEN = "12000123000000000428"


@pytest.fixture
def ada_headers(customer_fleet, make_user, api_token):
    """JWT headers of Ada's Customer login."""
    return api_token(make_user("Customer", customer_id=customer_fleet.ada))


def _login(client, username: str):
    client.get("/logout/")
    resp = client.post("/login/", data={"username": username, "password": "pw-" + username})
    assert resp.status_code == 302


def _menu(html: str) -> list[str]:
    """The labels of the sidebar menu of a rendered page."""
    nav = re.search(r'<nav class="hes-nav" id="hes-nav">(.*?)</nav>', html, re.S).group(1)
    return re.findall(r"<span>([^<]+)</span>", nav)


def _daily(meter_id: int, day: dt.date, import_kwh: float, tz: ZoneInfo, export_kwh: float = 0.0) -> None:
    db.session.add(ConsumptionDaily(meter_id=meter_id, bucket=local_midnight(day, tz), import_wh=import_kwh * 1000,
                                    export_wh=export_kwh * 1000, intervals=96, on_time=96))


def test_summary_lists_only_the_customers_own_meters(client, customer_fleet, ada_headers, make_user, api_token):
    resp = client.get("/api/v1/my/summary", headers=ada_headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.json
    assert body["customer"]["account_number"] == "ACC-MY-ADA" and body["customer"]["address"] == "12 Analytical Way"
    assert [m["number"] for m in body["meters"]] == ["MY-A1", "MY-A2"]
    a1 = body["meters"][0]
    assert a1["online"] is True and a1["credit_balance"] == 42.5 and a1["relay_state"] == "connected"
    assert a1["tokens"] == [] and body["token_entry"] is True
    bob = client.get("/api/v1/my/summary", headers=api_token(make_user("Customer", customer_id=customer_fleet.bob)))
    assert [m["number"] for m in bob.json["meters"]] == ["MY-B1"]
    assert client.get("/api/v1/my/summary").status_code == 401


def test_another_customers_meter_is_not_found_even_when_guessed(app, client, customer_fleet, ada_headers):
    with app.app_context():
        missing = db.session.execute(select(func.max(Meter.id))).scalar() + 1000
    for meter_id in (customer_fleet.meters["MY-B1"], customer_fleet.meters["MY-X1"], missing):
        for period in ("daily", "monthly"):
            resp = client.get(f"/api/v1/my/consumption?meter_id={meter_id}&period={period}", headers=ada_headers)
            assert resp.status_code == 404, (meter_id, period)
            assert "MY-B1" not in resp.get_data(as_text=True)
    assert client.get("/api/v1/my/consumption", headers=ada_headers).status_code == 400
    assert client.get("/api/v1/my/consumption?meter_id=abc", headers=ada_headers).status_code == 400
    own = customer_fleet.meters["MY-A1"]
    bad_period = client.get(f"/api/v1/my/consumption?meter_id={own}&period=yearly", headers=ada_headers)
    assert bad_period.status_code == 400 and "daily, weekly or monthly" in bad_period.json["message"]
    # Another customer's token through the command API is refused the same way.
    other = client.post("/api/v1/command/token", json={"meter_id": customer_fleet.meters["MY-B1"], "token": TOKEN},
                        headers=ada_headers)
    assert other.status_code == 404


def test_daily_consumption_equals_the_rollup_rows(app, client, customer_fleet, ada_headers, monkeypatch):
    monkeypatch.setitem(app.config, "HES_TIMEZONE", LAGOS)
    tz = ZoneInfo(LAGOS)
    a1, a2, b1 = (customer_fleet.meters[n] for n in ("MY-A1", "MY-A2", "MY-B1"))
    with app.app_context():
        today = local_today(tz)
        _daily(a1, today, 3.25, tz)
        _daily(a1, today - dt.timedelta(days=1), 11.5, tz, export_kwh=0.5)
        _daily(a1, today - dt.timedelta(days=29), 2.0, tz)  # first day of the window
        _daily(a1, today - dt.timedelta(days=30), 99.0, tz)  # one day too old
        _daily(a2, today, 50.0, tz)  # Ada's other meter
        _daily(b1, today, 70.0, tz)  # Bob's
        db.session.commit()
    resp = client.get(f"/api/v1/my/consumption?meter_id={a1}&period=daily", headers=ada_headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.json
    points = {p["period"]: p for p in body["points"]}
    assert len(body["points"]) == 30 and body["points"][-1]["period"] == today.isoformat()
    assert body["points"][0]["period"] == (today - dt.timedelta(days=29)).isoformat()
    assert points[today.isoformat()]["import_kwh"] == 3.25
    yesterday = points[(today - dt.timedelta(days=1)).isoformat()]
    assert yesterday["import_kwh"] == 11.5 and yesterday["export_kwh"] == 0.5
    assert points[(today - dt.timedelta(days=29)).isoformat()]["import_kwh"] == 2.0
    assert points[(today - dt.timedelta(days=2)).isoformat()]["import_kwh"] is None  # no row: no data, not zero
    assert body["total_kwh"] == 16.75 and body["periods_with_data"] == 3 and body["unit"] == "kWh"
    assert body["number"] == "MY-A1" and body["timezone"] == LAGOS


def test_monthly_consumption_folds_the_local_days_of_each_month(app, customer_fleet, monkeypatch):
    from app.services.my_meters import customer_consumption

    monkeypatch.setitem(app.config, "HES_TIMEZONE", LAGOS)
    tz = ZoneInfo(LAGOS)
    a1 = customer_fleet.meters["MY-A1"]
    with app.app_context():
        for day, kwh in ((dt.date(2026, 3, 1), 2.5), (dt.date(2026, 3, 15), 1.5), (dt.date(2026, 1, 31), 4.0),
                         (dt.date(2025, 4, 1), 6.0), (dt.date(2025, 3, 31), 80.0), (dt.date(2026, 3, 16), 9.0)):
            _daily(a1, day, kwh, tz)
        db.session.commit()
        ada = db.session.get(Customer, customer_fleet.ada)
        body = customer_consumption(ada, a1, "monthly", tz, today=dt.date(2026, 3, 15))
    labels = [p["period"] for p in body["points"]]
    assert labels[0] == "2025-04" and labels[-1] == "2026-03" and len(labels) == 12
    values = {p["period"]: p["import_kwh"] for p in body["points"]}
    # 2026-03-16 is after "today" and 2025-03-31 before the window: neither is counted.
    assert values["2026-03"] == 4.0 and values["2026-01"] == 4.0 and values["2025-04"] == 6.0
    assert values["2026-02"] is None and body["total_kwh"] == 14.0 and body["periods_with_data"] == 3


def test_weekly_consumption_folds_the_local_days_of_each_iso_week(app, customer_fleet, monkeypatch):
    from app.services.my_meters import customer_consumption

    monkeypatch.setitem(app.config, "HES_TIMEZONE", LAGOS)
    tz = ZoneInfo(LAGOS)
    a1 = customer_fleet.meters["MY-A1"]
    # 2026-03-18 is a Wednesday of ISO week 12; the window is weeks 1..12 of 2026 (Monday 2025-12-29 on).
    with app.app_context():
        for day, kwh in ((dt.date(2026, 3, 16), 2.5), (dt.date(2026, 3, 18), 1.25), (dt.date(2026, 3, 19), 9.0),
                         (dt.date(2026, 3, 15), 4.0), (dt.date(2025, 12, 29), 6.0), (dt.date(2025, 12, 28), 80.0)):
            _daily(a1, day, kwh, tz)
        db.session.commit()
        ada = db.session.get(Customer, customer_fleet.ada)
        body = customer_consumption(ada, a1, "weekly", tz, today=dt.date(2026, 3, 18))
    labels = [p["period"] for p in body["points"]]
    assert labels[0] == "2026-W01" and labels[-1] == "2026-W12" and len(labels) == 12
    values = {p["period"]: p["import_kwh"] for p in body["points"]}
    # 2026-03-19 is after "today" and 2025-12-28 (a Sunday) before the window: neither is counted.
    assert values["2026-W12"] == 3.75 and values["2026-W11"] == 4.0 and values["2026-W01"] == 6.0
    assert values["2026-W10"] is None and body["total_kwh"] == 13.75 and body["periods_with_data"] == 3


def test_token_entry_follows_the_site_setting(app, client, customer_fleet, ada_headers, make_user):
    from app.services.settings import set_setting

    a1 = customer_fleet.meters["MY-A1"]
    sent = client.post("/api/v1/command/token", json={"meter_id": a1, "token": "1200 0123 0000 0000 0428"},
                       headers=ada_headers)
    assert sent.status_code == 201, sent.get_data(as_text=True)
    command_id = sent.json["id"]
    polled = client.get(f"/api/v1/command/{command_id}", headers=ada_headers)
    assert polled.status_code == 200 and polled.json["result"]["kind"] == "token"
    history = client.get("/api/v1/my/summary", headers=ada_headers).json["meters"][0]["tokens"]
    assert [(t["id"], t["token"], t["by_you"]) for t in history] == [(command_id, TOKEN, True)]
    assert "requested_by" not in history[0]
    short = client.post("/api/v1/command/token", json={"meter_id": a1, "token": "1234"}, headers=ada_headers)
    assert short.status_code == 422 and "20 decimal digits" in short.json["message"]
    with app.app_context():
        set_setting("customer_token_entry", False)
    refused = client.post("/api/v1/command/token", json={"meter_id": a1, "token": TOKEN}, headers=ada_headers)
    assert refused.status_code == 403 and "switched off" in refused.json["message"]
    assert client.get("/api/v1/my/summary", headers=ada_headers).json["token_entry"] is False
    with app.app_context():
        assert db.session.execute(select(func.count(Command.id))).scalar() == 1
    username = make_user("Customer", customer_id=customer_fleet.ada)
    _login(client, username)
    page = client.get("/my/").get_data(as_text=True)
    assert 'id="mm-token-off"' in page and 'id="mm-token-form"' not in page


def test_token_history_shows_the_meters_answer_and_hides_other_meters(app, client, customer_fleet, ada_headers):
    a1, b1 = customer_fleet.meters["MY-A1"], customer_fleet.meters["MY-B1"]
    with app.app_context():
        db.session.add_all([
            Command(kind="token", meter_id=a1, params={"token": TOKEN}, state=CommandState.succeeded, attempts=1,
                    result={"token_status": 3, "credit_before": 10.0, "credit": 52.5},
                    expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)),
            Command(kind="token", meter_id=b1, params={"token": "99999999999999999999"}, attempts=0,
                    state=CommandState.queued, expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)),
        ])
        db.session.commit()
    meters = client.get("/api/v1/my/summary", headers=ada_headers).json["meters"]
    tokens = meters[0]["tokens"]
    assert len(tokens) == 1 and tokens[0]["credit"] == 52.5 and tokens[0]["token_status_text"] == "execution OK"
    assert tokens[0]["by_you"] is False  # loaded by the utility
    assert meters[1]["tokens"] == [] and "99999999999999999999" not in str(meters)


def test_alerts_are_the_customers_own_active_and_recent(app, client, customer_fleet, ada_headers):
    now = dt.datetime.now(dt.UTC)
    a1, a2, b1 = (customer_fleet.meters[n] for n in ("MY-A1", "MY-A2", "MY-B1"))

    def alert(meter_id, title, state, days_ago=0):
        return Alert(meter_id=meter_id, alert_type="tamper", title=title, state=state, severity=Severity.critical,
                     first_at=now - dt.timedelta(days=days_ago), last_at=now - dt.timedelta(days=days_ago))

    with app.app_context():
        db.session.add_all([alert(a1, "Cover opened", AlertState.active),
                            alert(a2, "Magnetic field", AlertState.acknowledged, 3),
                            alert(a1, "Old tamper", AlertState.resolved, 45),
                            alert(b1, "Bob's tamper", AlertState.active),
                            Alert(area_id=None, kind="loss", alert_type="loss", title="Feeder loss")])
        db.session.commit()
    alerts = client.get("/api/v1/my/summary", headers=ada_headers).json["alerts"]
    assert [(a["title"], a["number"]) for a in alerts["active"]] == [("Cover opened", "MY-A1")]
    assert [(a["title"], a["state"]) for a in alerts["recent"]] == [("Magnetic field", "acknowledged")]
    assert "ack_comment" not in alerts["active"][0]
    # The generic alert API stays scoped for the customer as well.
    listed = client.get("/api/v1/alert/", headers=ada_headers).json["result"]
    assert sorted(a["title"] for a in listed) == ["Cover opened", "Magnetic field", "Old tamper"]


def test_customer_lands_on_my_meters_and_sees_only_their_menu_and_meters(client, customer_fleet, make_user):
    _login(client, make_user("Customer", customer_id=customer_fleet.ada))
    home = client.get("/")
    assert home.status_code == 302 and home.headers["Location"].endswith("/my/")
    page = client.get("/my/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "MY-A1" in html and "MY-A2" in html and "MY-B1" not in html and "MY-X1" not in html
    assert "Ada Lovelace" in html and "ACC-MY-ADA" in html
    assert _menu(html) == ["My Meters"]
    for url in ("/dashboard/", "/meterview/list/", "/monitoring/", "/alerts/", "/remote/loading/", "/settings/"):
        assert client.get(url).status_code in (302, 403), url
    for url in ("/api/v1/dashboard/summary", "/api/v1/monitoring/meters", "/api/v1/job/", "/api/v1/command/export"):
        assert client.get(url).status_code in (401, 403), url


def test_staff_see_a_notice_and_land_on_the_dashboard(client, customer_fleet, make_user, api_token):
    for role in ("Operator", "Admin"):
        username = make_user(role)
        _login(client, username)
        home = client.get("/")
        assert home.status_code == 302 and home.headers["Location"].endswith("/dashboard/"), role
        page = client.get("/my/")
        assert page.status_code == 200 and b"no customer record" in page.data, role
        assert "My Meters" not in _menu(page.get_data(as_text=True)), role  # not in the staff menu
        api = client.get("/api/v1/my/summary", headers=api_token(username))
        assert api.status_code == 404 and "No customer record" in api.json["message"]


def test_unlinked_customer_and_roleless_user_are_not_bounced(app, client, customer_fleet, make_user):
    _login(client, make_user("Customer"))
    assert client.get("/").headers["Location"].endswith("/my/")
    page = client.get("/my/")
    assert page.status_code == 200 and b"not linked to a customer account" in page.data
    username = make_user("Customer")
    with app.app_context():
        sm = app.appbuilder.sm
        user = sm.find_user(username=username)
        user.roles = []
        db.session.commit()
    _login(client, username)
    home = client.get("/")
    assert home.status_code == 200 and b"no pages yet" in home.data


def test_customer_role_holds_exactly_the_customer_permissions(app):
    with app.app_context():
        role = app.appbuilder.sm.find_role("Customer")
        granted = {(p.permission.name, p.view_menu.name) for p in role.permissions}
    assert {("can_index", "MyMetersView"), ("can_summary", "MyMetersApi"), ("can_consumption", "MyMetersApi"),
            ("menu_access", "My Meters"), ("can_submit_token", "CommandApi"), ("can_get", "CommandApi")} <= granted
    assert {view for perm, view in granted if perm == "menu_access"} == {"My Meters"}
    views = {view for _perm, view in granted}
    assert views <= {"MyMetersView", "MyMetersApi", "My Meters", "CommandApi", "MeterApi", "ReadingApi", "EventApi",
                     "AlertApi", "CustomerApi", "UserDBModelView", "ResetMyPasswordView", "UserInfoEditView",
                     "PreferencesView"}
    assert not {perm for perm, view in granted if view == "CommandApi"} - {"can_get", "can_submit_token"}
    assert not {perm for perm, view in granted if view == "AlertApi"} - {"can_get", "can_info"}
