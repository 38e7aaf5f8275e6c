"""My Meters in a real browser: a customer signs in, lands on My Meters, sees only their own meter and its
consumption chart, watches the meter come online without a reload when a simulated meter dials in, loads a
prepaid token and sees the meter's answer and the credit read back; operator pages stay closed. Screenshots
``my-meters`` and ``my-meters-dark``."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from simulator import model
from tests.support.browser import ROOT, LiveServer, login, screenshot

pytestmark = pytest.mark.browser

NUMBER = "MYB00000001"  # the simulator's first meter with prefix MYB
OTHER = "MYX001"
PASSWORD = "Grace-Pw-1"
# kWh on the local days before today (the server runs in UTC); day 45 lies outside the 30-day chart.
DAILY_KWH = {1: 12.5, 2: 9.25, 3: 14.0, 7: 8.0, 15: 11.75, 29: 6.5, 45: 30.0}


def _customer_with_meters(server: LiveServer) -> dict:
    """Grace (a Customer login) owns the dial-in meter NUMBER; another customer owns OTHER."""
    headers = server.token()
    brand = server.api("GET", "/api/v1/brand/?q=(filters:!((col:name,opr:eq,value:hes_sim)))",
                       headers=headers).json()["ids"][0]
    ids = {}
    for number, mode in ((NUMBER, "dial_in"), (OTHER, "dial_in")):
        resp = server.api("POST", "/api/v1/meter/", headers=headers,
                          json={"number": number, "brand": brand, "status": "active", "comm_mode": mode})
        assert resp.status_code == 201, resp.text
        ids[number] = resp.json()["id"]
    creds = server.api("PUT", f"/api/v1/meter/{ids[NUMBER]}/credentials", headers=headers,
                       json={"password": "00000000"})  # the simulator's LLS password
    assert creds.status_code == 200, creds.text
    roles = server.api("GET", "/api/v1/security/roles/?q=(page_size:100)", headers=headers).json()["result"]
    customer_role = next(r["id"] for r in roles if r["name"] == "Customer")
    user = server.api("POST", "/api/v1/security/users/", headers=headers, json={
        "username": "grace", "first_name": "Grace", "last_name": "Hopper", "email": "grace@example.test",
        "password": PASSWORD, "active": True, "roles": [customer_role]})
    assert user.status_code == 201, user.text
    for body in ({"account_number": "ACC-GRACE", "name": "Grace Hopper", "address": "1 Compiler Street, Arlington",
                  "phone": "+1 555 0100", "email": "grace@example.test", "meters": [ids[NUMBER]],
                  "user": user.json()["id"]},
                 {"account_number": "ACC-OTHER", "name": "Somebody Else", "meters": [ids[OTHER]]}):
        resp = server.api("POST", "/api/v1/customer/", headers=headers, json=body)
        assert resp.status_code == 201, resp.text
    midnight = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    for days_ago, kwh in DAILY_KWH.items():
        bucket = (midnight - dt.timedelta(days=days_ago)).strftime("%Y-%m-%d %H:%M:%S.%f")
        for meter_id, factor in ((ids[NUMBER], 1), (ids[OTHER], 3)):
            server.sql("INSERT INTO consumption_daily (meter_id, bucket, import_wh, export_wh, intervals, on_time) "
                       "VALUES (?, ?, ?, 0, 96, 96)", (meter_id, bucket, kwh * 1000 * factor))
    return ids


def _chart_total(page) -> float:
    return float(page.locator("#mm-total").inner_text().replace(",", "").split()[0])


def test_customer_sees_their_meter_live_and_loads_a_token(live_server, new_context):
    ids = _customer_with_meters(live_server)
    page = new_context().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, live_server, "grace", PASSWORD)
    page.wait_for_url("**/my/")
    assert page.locator(".mm-meter").count() == 1
    assert page.locator(".mm-meter .mm-number").inner_text().strip() == NUMBER
    assert OTHER not in page.content()
    assert [t.strip() for t in page.locator("#hes-nav a span").all_inner_texts()] == ["My Meters"]
    assert page.locator("#hes-area-select").count() == 0
    card = page.locator(f'.mm-meter[data-meter-id="{ids[NUMBER]}"]')
    assert card.locator(".hes-dot.off").count() == 1

    # The chart: the last 30 days from the rollups (day 45 is outside), then the last 12 months.
    page.wait_for_function(f"() => document.getElementById('my-meters').dataset.chart == 'daily:{ids[NUMBER]}'")
    assert page.evaluate("!!window.Chart.getChart(document.getElementById('mm-chart'))")
    in_window = sum(kwh for days_ago, kwh in DAILY_KWH.items() if days_ago <= 29)
    assert _chart_total(page) == pytest.approx(in_window, abs=0.05)
    bars = page.evaluate("window.Chart.getChart(document.getElementById('mm-chart')).data.datasets[0].data")
    assert len(bars) == 30 and bars[-2] == 12.5 and bars[-1] is None
    assert page.evaluate("window.Chart.getChart(document.getElementById('mm-chart')).config.type") == "line"
    page.click('#mm-period [data-period="weekly"]')
    page.wait_for_function(f"() => document.getElementById('my-meters').dataset.chart == 'weekly:{ids[NUMBER]}'")
    weeks = page.evaluate("window.Chart.getChart(document.getElementById('mm-chart')).data.labels")
    assert len(weeks) == 12 and all(re.fullmatch(r"\d{4}-W\d{2}", w) for w in weeks)
    expect(page.locator("#mm-average-label")).to_have_text("Average per week")
    page.click('#mm-period [data-period="monthly"]')
    page.wait_for_function(f"() => document.getElementById('my-meters').dataset.chart == 'monthly:{ids[NUMBER]}'")
    assert _chart_total(page) == pytest.approx(sum(DAILY_KWH.values()), abs=0.05)
    page.click('#mm-period [data-period="daily"]')
    page.wait_for_function(f"() => document.getElementById('my-meters').dataset.chart == 'daily:{ids[NUMBER]}'")

    # Operator pages and APIs stay closed.
    for path in ("/dashboard/", "/meterview/list/", "/monitoring/", "/remote/loading/", "/alerts/", "/settings/"):
        status = page.request.get(path, max_redirects=0).status
        assert status in (302, 403), (path, status)
    assert page.request.get(f"/api/v1/my/consumption?meter_id={ids[OTHER]}").status == 404

    # The meter dials in: its card turns green without a reload (Socket.IO, the customer's own room).
    page.wait_for_function("() => document.querySelector('#hes-live').classList.contains('on')")
    page.evaluate("window.__sameDocument = true")
    simulator = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--meters", "1", "--prefix", "MYB", "--dial-in", live_server.meter_listen,
         "--heartbeat-seconds", "5", "--history-days", "1", "--control", "127.0.0.1:0"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        card.locator(".hes-dot.on").wait_for(timeout=45_000)
        assert page.evaluate("window.__sameDocument") is True
        assert card.locator('[data-field="last_seen"]').inner_text() != "never"

        # Prepaid: a short token is refused in the browser, a valid one is loaded and the credit read back.
        page.fill("#mm-token", "1234 5678")
        assert page.locator("#mm-token-send").is_disabled()
        assert "8 of 20" in page.locator("#mm-token-hint").inner_text()
        token = model.make_token(2500, 4242)
        page.fill("#mm-token", " ".join(token[i:i + 4] for i in range(0, 20, 4)))
        assert page.locator("#mm-token-send").is_enabled()
        page.click("#mm-token-send")
        page.wait_for_selector("#mm-token-outcome.on, #mm-token-outcome.off", timeout=60_000)
        assert page.locator("#mm-outcome-title").inner_text() == "Token accepted"
        facts = page.locator("#mm-outcome-facts").inner_text()
        assert "execution OK" in facts
        page.wait_for_function("() => document.querySelector('#mm-tokens tbody td.mm-mono') !== null")
        assert token[:4] + " " + token[4:8] in page.locator("#mm-tokens tbody").inner_text()
        commands = live_server.api("GET", "/api/v1/command/?q=(filters:!((col:kind,opr:eq,value:token)),"
                                          "order_column:id,order_direction:desc)").json()["result"]
        result = commands[0]["result"]
        assert commands[0]["kind"] == "token" and 24.8 <= result["credit"] - result["credit_before"] <= 25.0
        credit = f"{result['credit']:,.2f}"
        page.wait_for_function(
            f"() => document.querySelector('.mm-meter [data-field=credit]').textContent == '{credit}'", timeout=15_000)
        # Alerts: the customer's own, active and recent, never another customer's.
        alert = ("INSERT INTO alert (meter_id, kind, alert_type, severity, state, title, count, first_at, last_at) "
                 "VALUES (?, 'event', ?, ?, ?, ?, 1, datetime('now', ?), datetime('now', ?))")
        live_server.sql(alert, (ids[NUMBER], "tamper", "critical", "active", "Meter cover opened", "-5 minutes",
                                "-5 minutes"))
        live_server.sql(alert, (ids[NUMBER], "low_credit", "warning", "acknowledged", "Low credit", "-2 days",
                                "-2 days"))
        live_server.sql(alert, (ids[OTHER], "tamper", "critical", "active", "Somebody else's tamper", "-1 minutes",
                                "-1 minutes"))
        page.evaluate("window.hesMyMeters.refresh()")
        page.wait_for_selector("#mm-alerts-active li.is-active")
        assert page.locator("#mm-alerts-active li").all_inner_texts()[0].startswith("Meter cover opened")
        assert "Low credit" in page.locator("#mm-alerts-recent").inner_text()
        assert "Somebody else" not in page.content()
        assert page.locator("#mm-alert-count").inner_text() == "1 active"
        page.evaluate("window.scrollTo(0, 0)")
        screenshot(page, "my-meters")

        page.click("#hes-theme-toggle")
        page.wait_for_load_state()
        try:
            assert page.locator("html").get_attribute("data-theme") == "dark"
            page.wait_for_function(f"() => document.getElementById('my-meters').dataset.chart == 'daily:{ids[NUMBER]}'")
            screenshot(page, "my-meters-dark")
        finally:
            if page.locator("html").get_attribute("data-theme") == "dark":
                page.click("#hes-theme-toggle")
                page.wait_for_load_state()
    finally:
        simulator.terminate()
        simulator.wait(timeout=15)
    assert not errors, f"JavaScript errors: {errors}"


def test_staff_opening_my_meters_get_a_notice(page):
    response = page.goto("/my/")
    assert response.status == 200
    assert page.locator("#my-meters-notice").is_visible()
    assert "no customer record" in page.locator("#my-meters-notice").inner_text()
    assert "My Meters" not in page.locator("#hes-nav").inner_text()
    screenshot(page, "my-meters-staff")
    page.goto("/")
    assert page.url.endswith("/dashboard/")
