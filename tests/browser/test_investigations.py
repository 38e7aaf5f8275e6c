"""In the browser: Revenue Protection › Investigations. "Run detection now" runs in the HES's task queue while the
page's status card says it is running, then what the run found (no native pop-up); a case is assigned by picking
a colleague from a list of the users who may work cases. On a HES of this module's own: detection raises alerts
the shared fleet's counts must not see."""

from __future__ import annotations

import datetime as dt

from playwright.sync_api import expect

from tests.support.browser import screenshot

FMT = "%Y-%m-%d %H:%M:%S.%f"


def _user(server, headers, username: str, first: str, last: str, role: str) -> None:
    roles = server.api("GET", "/api/v1/security/roles/?q=(page_size:100)", headers=headers).json()["result"]
    resp = server.api("POST", "/api/v1/security/users/", headers=headers, json={
        "username": username, "first_name": first, "last_name": last, "email": f"{username}@example.test",
        "password": "Some-Pw-12", "active": True, "roles": [next(r["id"] for r in roles if r["name"] == role)]})
    assert resp.status_code == 201, resp.text


def test_detection_answers_in_the_page_and_a_case_is_assigned_from_a_list(private_page, private_server):
    headers = private_server.token()
    brand = private_server.api("GET", "/api/v1/brand/?q=(filters:!((col:name,opr:eq,value:hes_sim)))",
                               headers=headers).json()["ids"][0]
    area = private_server.api("POST", "/api/v1/area/", headers=headers,
                              json={"name": "Theft", "code": "TH", "kind": "region"}).json()["id"]
    meters = {}
    for number in ("TH001", "TH002"):
        resp = private_server.api("POST", "/api/v1/meter/", headers=headers,
                                  json={"number": number, "brand": brand, "area": area, "status": "active"})
        assert resp.status_code == 201, resp.text
        meters[number] = resp.json()["id"]
    # Ten days of consumption; TH001 also exports (4 kWh a day against 5-6 imported): reverse energy flow.
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    for days_ago in range(1, 11):
        bucket = (today - dt.timedelta(days=days_ago)).strftime(FMT)
        for number, export in (("TH001", 4000), ("TH002", 0)):
            private_server.sql("INSERT INTO consumption_daily (meter_id, bucket, import_wh, export_wh, intervals, "
                               "on_time) VALUES (?, ?, ?, ?, 96, 96)",
                               (meters[number], bucket, 5000 + 130 * days_ago, export))
    _user(private_server, headers, "fdiallo", "Fatou", "Diallo", "Operator")
    _user(private_server, headers, "cust9", "Ada", "Customer", "Customer")

    page = private_page
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto("/revenue/investigations/")
    page.click("#rp-detect")
    result = page.locator("#rp-detect-result")
    expect(result).to_contain_text("Running detection…")  # the card says so at once; the run is a task
    expect(page.locator("#rp-detect")).to_be_disabled()  # no second run while this one goes on
    expect(result).to_contain_text("Detection finished", timeout=60_000)
    expect(page.locator("#rp-detect")).to_be_enabled()
    assert result.inner_text().split() == (  # 2 consumer meters; TH001 exported 28 kWh in 7 days, nothing else
        "Detection finished — meters checked: 2, new findings: 1. "
        "Cases opened: 1 · alerts raised: 1 · by rule: reverse_energy 1").split(), result.inner_text()
    assert not dialogs, dialogs  # answered in the page, not in a browser pop-up
    row = page.locator("#rp-cases tr", has_text="TH001")
    row.get_by_text("reverse_energy").wait_for()
    assert page.locator("#rp-cases tr", has_text="TH002").count() == 0

    row.locator("[data-case]").click()
    page.locator("#c-reason").get_by_text("28.00 kWh registered as export in 7 days").wait_for()
    picker = page.locator("#c-user")
    page.wait_for_function("() => document.querySelectorAll('#c-user option').length > 1")
    options = picker.locator("option").all_inner_texts()
    assert "Fatou Diallo (fdiallo)" in options
    assert not any("Customer" in o for o in options), options  # customers cannot work cases
    picker.select_option(label="Fatou Diallo (fdiallo)")
    page.click("#c-assign-btn")
    page.locator("#rp-cases tr", has_text="TH001").get_by_text("fdiallo").wait_for()
    page.locator("#c-notes").get_by_text("Assigned to fdiallo.").wait_for()
    assert picker.input_value() == "fdiallo"
    assert not dialogs, dialogs
    screenshot(page, "investigations-assigned")
