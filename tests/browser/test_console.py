"""What only a browser shows: signing in, the live dashboard, the import page, role-limited menus,
the theme switch, the area selector, monitoring and online-rate pages — with a screenshot of each."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from tests.support.browser import ROOT, login, screenshot

pytestmark = pytest.mark.browser

OPERATOR_PAGES = {
    "meters": "/meterview/list/", "sims": "/simview/list/", "customers": "/customerview/list/",
    "areas": "/areaview/list/", "brands": "/brandview/list/", "define-brand": "/brands/define/",
    "import-meters": "/import/meter/", "settings": "/settings/", "users": "/users/list/", "profile": "/users/userinfo/",
    "monitoring": "/monitoring/", "online-rate": "/online-rate/", "meter-add": "/meterview/add",
}


def kpi(page, name: str) -> str:
    return page.locator(f'#dashboard [data-field="{name}"]').inner_text().strip()


def test_login_page_signs_in_to_the_dashboard(browser, live_server, new_context):
    page = new_context().new_page()
    page.goto("/login/")
    assert page.locator(".hes-auth-hero").is_visible()
    screenshot(page, "login")
    page.fill("#username", "admin")
    page.fill("#password", "wrong-password")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector(".hes-toast")  # FAB's "Invalid login" flash, shown as a toast
    assert "/login" in page.url
    screenshot(page, "login-failed")
    page.fill("#username", "admin")
    page.fill("#password", "Browser-Test-Pw-1")
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/dashboard/")
    assert page.locator(".hes-brand-name").inner_text().replace("\n", " ").strip() == "HES Core"
    assert page.locator("#card-total").is_visible()


def test_dashboard_counts_match_the_fleet_and_update_without_reload(page, live_server, fleet):
    page.goto("/dashboard/")
    assert kpi(page, "total") == str(len(fleet.meters))
    assert kpi(page, "online") == str(len(fleet.online))
    assert kpi(page, "offline") == str(len(fleet.meters) - len(fleet.online))
    assert kpi(page, "alerts") == "0"
    assert not page.locator("#card-alerts").evaluate("el => el.classList.contains('alerting')")
    shown = float(page.locator("#energy-total").inner_text().replace(",", "").split()[0])
    # The API asked just after the page: equal unless a quarter-hour boundary passed in between.
    totals = [live_server.api("GET", "/api/v1/dashboard/summary").json()["energy"]["total_kwh"] for _ in range(2)]
    assert shown > 0 and any(shown == pytest.approx(total, abs=0.05) for total in totals)
    assert page.locator("#energy-empty").is_hidden()
    events = page.locator("#events-table tbody tr").all_inner_texts()
    assert "BN001" in events[0] and "Clock adjusted" in events[0] and "Cover opened" in events[1]
    screenshot(page, "dashboard")

    page.evaluate("window.__sameDocument = true")
    live_server.sql("UPDATE meter SET online = 1, last_seen = datetime('now') WHERE number = 'BS002'")
    live_server.sql("INSERT INTO alert (meter_id, kind, alert_type, severity, state, title, count, first_at, last_at) "
                    "VALUES (?, 'event', 'tamper', 'critical', 'active', 'Cover opened', 1, datetime('now'), "
                    "datetime('now'))", (fleet.meters["BS002"],))
    try:
        page.evaluate("window.hesDashboard.refresh()")
        expected = len(fleet.online) + 1
        page.wait_for_function(f"() => document.querySelector('[data-field=online]').textContent == '{expected}'")
        assert kpi(page, "alerts") == "1"
        assert page.locator("#card-alerts").evaluate("el => el.classList.contains('alerting')")
        assert page.locator("#hes-bell").evaluate("el => el.classList.contains('hes-pulse')")
        assert page.evaluate("window.__sameDocument") is True  # updated in place, not reloaded
        screenshot(page, "dashboard-alerting")
    finally:
        live_server.sql("UPDATE meter SET online = 0 WHERE number = 'BS002'")
        live_server.sql("DELETE FROM alert")


def test_every_operator_page_renders_in_the_layout(page, fleet):
    for name, path in OPERATOR_PAGES.items():
        response = page.goto(path)
        assert response.status == 200, path
        assert page.locator("#hes-sidebar").is_visible(), path
        assert page.locator("#hes-area-select").is_visible(), path
        screenshot(page, name)
    page.goto(f"/meterview/show/{fleet.meters['BN001']}")
    screenshot(page, "meter-show")
    page.goto(f"/meterview/edit/{fleet.meters['BN001']}")
    screenshot(page, "meter-edit")


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_menu_page_renders(browser, live_server, admin_state, fleet, theme):
    """Every page the sidebar offers (including those other parts of the HES add) renders in the layout, in
    the light and the dark theme; a screenshot of each under test-artifacts/screenshots/menu-<page>-<theme>."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, storage_state=admin_state,
                                  base_url=live_server.url)
    page = context.new_page()
    try:
        page.goto("/dashboard/")
        if page.locator("html").get_attribute("data-theme") != theme:
            page.click("#hes-theme-toggle")
            page.wait_for_load_state()
        links = page.eval_on_selector_all("#hes-nav a[href]",
                                          "els => els.map(a => [a.textContent.trim(), a.getAttribute('href')])")
        assert len(links) >= 10
        for label, href in links:
            response = page.goto(href)
            assert response.status < 400, (label, href, response.status)
            assert page.locator("#hes-sidebar").is_visible(), href
            assert page.locator("html").get_attribute("data-theme") == theme, href
            screenshot(page, f"menu-{re.sub(r'[^a-z0-9]+', '-', label.lower()).strip('-')}-{theme}")
    finally:
        page.goto("/dashboard/")
        if page.locator("html").get_attribute("data-theme") == "dark":
            page.click("#hes-theme-toggle")
            page.wait_for_load_state()
        context.close()


def test_menu_follows_the_customers_page_tree(page, fleet):
    page.goto("/dashboard/")
    labels = [t.strip() for t in page.locator("#hes-nav > a > span, #hes-nav .hes-nav-cat > span").all_inner_texts()]
    expected = ["Dashboard", "System", "Meter Management", "Customer Management", "Task Query"]
    assert [label for label in labels if label in expected] == expected
    assert page.locator("#hes-nav a.active").inner_text().strip() == "Dashboard"


def test_csv_import_through_the_ui_names_the_bad_line(page, fleet, tmp_path):
    bad = tmp_path / "meters.csv"
    bad.write_text("Meter Number,Concentrator ID,Meter Type\nIMP001,DC1,hes_sim\nIMP002,DC1,no_such_brand\n")
    page.goto("/import/meter/")
    page.set_input_files("#import-form input[type=file]", str(bad))
    page.click("#import-form button[type=submit]")
    page.wait_for_selector("#import-errors, #import-result")
    errors = page.locator("#import-errors tbody tr")
    assert errors.count() >= 1
    first = errors.first.locator("td").all_inner_texts()
    assert first[0] == "3" and first[1] == "Meter Type"
    screenshot(page, "import-errors")
    page.goto("/meterview/list/?_flt_0_number=IMP")
    assert "IMP001" not in page.content()  # all or nothing


def test_customer_user_gets_no_operator_pages(live_server, new_context, fleet):
    headers = live_server.token()
    roles = live_server.api("GET", "/api/v1/security/roles/?q=(page_size:100)", headers=headers).json()["result"]
    customer_role = next(r["id"] for r in roles if r["name"] == "Customer")
    resp = live_server.api("POST", "/api/v1/security/users/", headers=headers, json={
        "username": "cust1", "first_name": "Ada", "last_name": "Customer", "email": "cust1@example.test",
        "password": "Cust-Pw-1", "active": True, "roles": [customer_role]})
    assert resp.status_code == 201, resp.text
    page = new_context().new_page()
    login(page, live_server, "cust1", "Cust-Pw-1")
    for path in ("/dashboard/", "/meterview/list/", "/monitoring/", "/online-rate/", "/settings/", "/users/list/"):
        status = page.request.get(path, max_redirects=0).status
        assert status in (302, 403), (path, status)
    assert page.request.get("/api/v1/monitoring/meters").status in (401, 403)
    page.goto("/users/userinfo/")
    menu = page.locator("#hes-nav").inner_text()
    for item in ("Dashboard", "System", "Meter Management", "Customer Management", "Task Query"):
        assert item not in menu
    assert page.locator("#hes-area-select").count() == 0
    screenshot(page, "customer-profile")


def test_theme_switch_changes_the_look(page, fleet):
    page.goto("/dashboard/")
    assert page.locator("html").get_attribute("data-theme") == "light"
    light_bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.click("#hes-theme-toggle")
    page.wait_for_load_state()
    try:
        assert page.locator("html").get_attribute("data-theme") == "dark"
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") != light_bg
        screenshot(page, "dashboard-dark")
        for name in ("meters", "monitoring", "online-rate", "import-meters"):
            page.goto(OPERATOR_PAGES[name])
            screenshot(page, f"{name}-dark")
    finally:
        page.goto("/dashboard/")
        if page.locator("html").get_attribute("data-theme") == "dark":
            page.click("#hes-theme-toggle")
            page.wait_for_load_state()
    assert page.locator("html").get_attribute("data-theme") == "light"


def test_area_selector_narrows_the_meter_list(page, fleet):
    page.goto("/meterview/list/?psize_MeterView=100")
    for number in fleet.meters:
        assert number in page.content()
    page.select_option("#hes-area-select", str(fleet.areas["South"]))
    page.wait_for_url(re.compile(rf"area={fleet.areas['South']}"))
    body = page.locator(".hes-stock-table").inner_text()
    assert fleet.in_area("BS") <= set(re.findall(r"B[NS]\d{3}", body))
    assert not fleet.in_area("BN") & set(re.findall(r"B[NS]\d{3}", body))
    assert page.locator("#hes-area-select option:checked").inner_text().strip() == "South"
    screenshot(page, "meters-area-south")
    page.goto("/dashboard/")  # the choice follows to the other pages
    assert kpi(page, "total") == str(len(fleet.in_area("BS")))
    page.select_option("#hes-area-select", "")
    page.wait_for_url(re.compile(r"area=$"))
    assert kpi(page, "total") == str(len(fleet.meters))


def test_monitoring_searches_selects_and_lists_parameters(page, fleet):
    page.goto("/monitoring/")
    page.wait_for_selector("#mon-rows tr[data-id]")
    assert page.locator("#mon-rows tr[data-id]").count() == len(fleet.meters)
    online_row = page.locator('#mon-rows tr[data-id]', has_text="BN001")
    assert online_row.locator(".hes-dot.on").count() == 1
    offline_row = page.locator('#mon-rows tr[data-id]', has_text="BS003")
    assert offline_row.locator(".hes-dot.off").count() == 1
    page.fill("#mon-search", "bs")
    page.wait_for_function("() => document.querySelectorAll('#mon-rows tr[data-id]').length == 3")
    page.check("#mon-check-all")
    assert page.locator("#mon-selected").inner_text().startswith("3 meters")
    page.click("#mon-params-btn")
    page.wait_for_selector(".hes-param")
    assert page.locator(".hes-param", has_text="Active energy import").count() == 1
    screenshot(page, "monitoring-parameters", full_page=False)
    page.check('.mon-param[value="energy_import"]')  # read-only
    assert page.locator("#mon-read").is_enabled() and page.locator("#mon-execute").is_disabled()
    page.check('.mon-param[value="relay_disconnect"]')  # a method: Execute only
    assert page.locator("#mon-execute").is_enabled()
    page.click("#mon-params-readable")
    assert page.locator("#mon-params-count").inner_text() == str(page.locator(".mon-param:checked").count())
    page.click("#mon-params-modal .modal-footer .btn-primary")
    page.wait_for_selector("#mon-params-modal", state="hidden")
    page.click("#mon-read")
    page.wait_for_selector(".hes-toast-warning, #mon-job:not([hidden])")
    screenshot(page, "monitoring-read")


def test_online_rate_filters_and_downloads(page, fleet):
    page.goto("/online-rate/")
    page.wait_for_selector("#or-rows tr td b")
    summary = page.locator("#or-summary")
    assert summary.locator('[data-field="total"]').inner_text() == str(len(fleet.meters))
    assert summary.locator('[data-field="never_online"]').inner_text() == str(len(fleet.meters) - len(fleet.seen))
    screenshot(page, "online-rate")
    page.select_option("#or-filter", "never")
    never = len(fleet.meters) - len(fleet.seen)
    page.wait_for_function(f"() => document.querySelectorAll('#or-rows tr').length == {never}")
    assert "BN001" not in page.locator("#or-rows").inner_text()
    with page.expect_download() as download:
        page.click("#or-csv")
    text = open(download.value.path(), encoding="utf-8-sig").read()
    assert text.splitlines()[0].startswith("Meter Number,Customer,Area")
    assert len(text.strip().splitlines()) == 1 + len(fleet.meters) - len(fleet.seen)
    with page.expect_download() as download:
        page.click("#or-pdf")
    assert open(download.value.path(), "rb").read(5) == b"%PDF-"


def test_tablet_layout_hides_the_sidebar_behind_a_toggle(browser, live_server, admin_state, fleet):
    context = browser.new_context(viewport={"width": 800, "height": 1100}, storage_state=admin_state,
                                  base_url=live_server.url)
    page = context.new_page()
    try:
        page.goto("/dashboard/")
        assert not page.locator("#hes-sidebar").is_visible() or page.locator("#hes-sidebar").bounding_box()["x"] < 0
        screenshot(page, "dashboard-tablet")
        page.click("#hes-menu-toggle")
        page.wait_for_timeout(400)
        assert page.locator("#hes-sidebar").bounding_box()["x"] >= 0
        screenshot(page, "dashboard-tablet-menu", full_page=False)
    finally:
        context.close()


def test_a_meter_dialing_in_turns_green_without_reload(page, live_server, fleet):
    """A simulated meter dials in to the comms node; the open pages follow over Socket.IO."""
    headers = live_server.token()
    brand = live_server.api("GET", "/api/v1/brand/?q=(filters:!((col:name,opr:eq,value:hes_sim)))",
                            headers=headers).json()["ids"][0]
    resp = live_server.api("POST", "/api/v1/meter/", headers=headers, json={
        "number": "LIV00000001", "brand": brand, "status": "active", "comm_mode": "dial_in"})
    assert resp.status_code == 201, resp.text
    meter_id = resp.json()["id"]
    creds = live_server.api("PUT", f"/api/v1/meter/{meter_id}/credentials", headers=headers,
                            json={"password": "00000000"})  # the simulator's LLS password
    assert creds.status_code == 200, creds.text
    page.goto("/monitoring/")
    page.fill("#mon-search", "LIV")
    page.wait_for_function("() => document.querySelectorAll('#mon-rows tr[data-id]').length == 1")
    assert page.locator("#mon-rows tr[data-id] .hes-dot.off").count() == 1
    page.wait_for_function("() => document.querySelector('#hes-live').classList.contains('on')")
    page.evaluate("window.__sameDocument = true")
    simulator = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--meters", "1", "--prefix", "LIV", "--dial-in", live_server.meter_listen,
         "--heartbeat-seconds", "5", "--history-days", "1", "--control", "127.0.0.1:0"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        page.wait_for_selector("#mon-rows tr[data-id] .hes-dot.on", timeout=45_000)
        assert "just now" in page.locator("#mon-rows tr[data-id]").inner_text()
        assert page.evaluate("window.__sameDocument") is True
        screenshot(page, "monitoring-live")
        # Read a register from it: per-meter progress streams in over job_progress.
        page.check("#mon-check-all")
        page.click("#mon-params-btn")
        page.wait_for_selector('.mon-param[value="energy_import"]')
        page.check('.mon-param[value="energy_import"]')
        page.click("#mon-params-modal .modal-footer .btn-primary")
        page.wait_for_selector("#mon-params-modal", state="hidden")
        page.click("#mon-read")
        try:
            page.wait_for_selector("#mon-job-results .pill-success", timeout=60_000)
        finally:
            screenshot(page, "monitoring-job-done")
        assert page.locator("#mon-job-count").inner_text() == "1 / 1"
        result = page.locator("#mon-job-results tbody").inner_text()
        assert re.search(r"Active energy import: [\d,]+ Wh", result), result  # the point's name, not its key
        assert "energy_import" not in result
    finally:
        simulator.terminate()
        simulator.wait(timeout=15)
        live_server.api("DELETE", f"/api/v1/meter/{meter_id}", headers=headers)


def test_toasts_do_not_stack_over_the_page(page):
    """The same message five times is one toast counting ×5; at most three different toasts show at once."""
    page.goto("/dashboard/")
    page.evaluate("() => { for (let i = 0; i < 5; i++) window.HES.toast('Could not refresh', 'warning'); }")
    toasts = page.locator(".hes-toast:not(.hide)")
    expect(toasts).to_have_count(1)
    expect(toasts.first).to_contain_text("Could not refresh")
    expect(toasts.first.locator(".hes-toast-count")).to_have_text("×5")
    page.evaluate("() => ['one', 'two', 'three', 'four'].forEach(t => window.HES.toast('Message ' + t, 'info'))")
    expect(toasts).to_have_count(3)
    expect(page.locator(".hes-toasts")).to_contain_text("Message four")
