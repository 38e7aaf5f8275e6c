"""Every page in the menu, as every role that can open it, with the browser fleet's data: the page's main content
shows rows, numbers or a meaningful empty state (never a spinner), no console error, no link to "#", no request to
another host; and each page's main action works (acknowledge an alert, download CSV/PDF, open a form, search)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.support.browser import VIEWPORT, login

pytestmark = pytest.mark.browser

OPERATOR, OPERATOR_PASSWORD = "oper1", "Oper-Pw-12345"
CUSTOMER, CUSTOMER_PASSWORD = "cust-pages", "Cust-Pw-12345"
EMPTY = r"No records|Nothing here yet|No .* (yet|selected|found)|Search a meter"

# What a person must see on each menu page: (selector, text it must contain). A page missing here fails the test,
# so a new menu entry needs its expectation.
MAIN_CONTENT: dict[str, tuple[str, str]] = {
    "/dashboard/": ('#dashboard [data-field="total"]', r"^\d+$"),
    "/areaview/list/": (".hes-stock-table tbody", r"North"),
    "/brandview/list/": (".hes-stock-table tbody", r"HES Core Simulator"),
    "/brands/define/": ("#hes-content form", r"OBIS"),
    "/settings/": ("#hes-content", r"\d+\.\d+\.\d+\.\d+:\d+"),
    "/nodes/": ("#nodes tbody", r"node-\d+.*\d+\.\d+\.\d+\.\d+:\d+"),
    "/scheduleview/list/": ("#stock-list", r"Load profile|" + EMPTY),
    "/subscriptionview/list/": ("#stock-list", EMPTY + r"|webhook|mqtt"),
    "/deliveryview/list/": ("#stock-list", EMPTY + r"|delivered|failed"),
    "/meterview/list/": (".hes-stock-table tbody", r"BN001"),
    "/meterview/add": ("#stock-add form", r"Number"),
    "/simview/list/": ("#stock-list", EMPTY),
    "/import/meter/": ("#import-form", r"Meter Number"),
    "/unregisteredview/list/": ("#stock-list", EMPTY),
    "/meter-reading/": ("#hes-content", r"No meter selected"),
    "/meter-setting/": ("#hes-content", r"No meter selected"),
    "/customerview/list/": ("#stock-list", EMPTY + r"|Ada"),
    "/customerview/add": ("#stock-add form", r"Name"),
    "/import/customer/": ("#import-form", r"Customer Name"),
    "/monitoring/": ("#mon-rows", r"BN001"),
    "/online-rate/": ("#or-rows", r"B[NS]\d{3}"),
    "/events/": ("#ev-rows", r"BN001"),
    "/reports/consumption/": ("#k-meters", r"^\d+$"),
    "/reports/consumption/hourly": ("#k-meters", r"^\d+$"),
    "/reports/completeness/": ("#k-pct", r"\d"),
    "/remote/loading/": ("#hes-content", r"No meter selected|Search"),
    "/remote/control/": ("#hes-content", r"No meter selected|Search"),
    "/remote/firmware/": ("#hes-content", r"Firmware"),
    "/alerts/": ("#al-rows", r"Cover opened|No alerts"),
    "/revenue/leakage/": ("#k-tamper", r"^\d+$"),
    "/revenue/investigations/": ("#k-open", r"^\d+$"),
    "/revenue/technical-loss/": ("#hes-content", r"supply meter|%"),
    "/users/list/": (".hes-stock-table tbody", r"admin"),
    "/roles/matrix/": ("#roles-table tbody", r"Operator"),
    "/groups/list/": ("#stock-list", EMPTY),
    "/my/": ("#hes-content", r"BN001"),
}

NO_SPINNER = """() => !Array.from(document.querySelectorAll('.hes-spinner, .hes-loading'))
                     .some(el => el.offsetParent !== null)"""


@pytest.fixture(scope="session")
def role_users(live_server, fleet) -> dict[str, tuple[str, str]]:
    """An operator and a customer (owning BN001) next to the admin: username and password per role."""
    headers = live_server.token()
    roles = live_server.api("GET", "/api/v1/security/roles/?q=(page_size:100)", headers=headers).json()["result"]
    role_id = {r["name"]: r["id"] for r in roles}
    for username, password, role in ((OPERATOR, OPERATOR_PASSWORD, "Operator"),
                                     (CUSTOMER, CUSTOMER_PASSWORD, "Customer")):
        resp = live_server.api("POST", "/api/v1/security/users/", headers=headers, json={
            "username": username, "first_name": username.title(), "last_name": role, "password": password,
            "email": f"{username}@example.test", "active": True, "roles": [role_id[role]]})
        assert resp.status_code == 201, resp.text
        if role == "Customer":
            resp = live_server.api("POST", "/api/v1/customer/", headers=headers, json={
                "account_number": "ACC-PAGES", "name": "Ada Pages", "address": "2 Feeder Road",
                "meters": [fleet.meters["BN001"]], "user": resp.json()["id"]})
            assert resp.status_code == 201, resp.text
    return {"admin": ("admin", "Browser-Test-Pw-1"), "operator": (OPERATOR, OPERATOR_PASSWORD),
            "customer": (CUSTOMER, CUSTOMER_PASSWORD)}


class PageWatch:
    """Console errors, page errors and requests to other hosts seen by one tab."""

    def __init__(self, page, origin: str):
        self.problems: list[str] = []
        host = urlsplit(origin).netloc
        page.on("console", lambda msg: self.problems.append(f"console error: {msg.text}")
                if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("request", lambda req: self.problems.append(f"request to another host: {req.url}")
                if req.url.startswith(("http:", "https:", "ws:", "wss:")) and urlsplit(req.url).netloc != host
                else None)

    def take(self) -> list[str]:
        problems, self.problems[:] = list(self.problems), []
        return problems


def check_page(page, href: str) -> list[str]:
    """Open one menu page and return what a person would call broken on it."""
    path = urlsplit(href).path
    response = page.goto(href)
    if response is None or response.status != 200:
        return [f"{href}: HTTP {response.status if response else 'no response'}"]
    problems = []
    if path not in MAIN_CONTENT:
        return [f"{href}: no main-content expectation for this menu page"]
    selector, pattern = MAIN_CONTENT[path]
    try:
        expect(page.locator(selector).first).to_contain_text(re.compile(pattern), timeout=8000)
    except AssertionError:
        shown = page.locator(selector).first.inner_text()[:200] if page.locator(selector).count() else "(missing)"
        problems.append(f"{href}: {selector} does not show /{pattern}/ but {shown!r}")
    try:
        page.wait_for_function(NO_SPINNER, timeout=8000)
    except Exception:  # noqa: BLE001 - reported as a problem of the page
        problems.append(f"{href}: a spinner is still turning after 8 s")
    dead = page.eval_on_selector_all("a[href='#'], a[href='']", "els => els.map(e => e.outerHTML.slice(0, 120))")
    problems += [f"{href}: link to '#': {html}" for html in dead]
    return problems


@pytest.mark.parametrize("role", ["admin", "operator", "customer"])
def test_every_menu_page_works_for_every_role(browser, live_server, fleet, role_users, role):
    username, password = role_users[role]
    context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url, accept_downloads=True)
    page = context.new_page()
    watch = PageWatch(page, live_server.url)
    live_server.sql("INSERT INTO alert (meter_id, kind, alert_type, severity, state, title, count, first_at, last_at) "
                    "VALUES (?, 'event', 'tamper', 'critical', 'active', 'Cover opened', 1, "
                    "datetime('now', '-5 minutes'), datetime('now', '-5 minutes'))", (fleet.meters["BS002"],))
    try:
        login(page, live_server, username, password)
        links = page.eval_on_selector_all("#hes-nav a[href]", "els => els.map(a => a.getAttribute('href'))")
        assert links, "the menu is empty"
        problems = watch.take()
        for href in dict.fromkeys(links):
            problems += check_page(page, href) + [f"{href}: {p}" for p in watch.take()]
        assert not problems, "\n".join(problems)
        if role == "customer":
            assert {urlsplit(h).path for h in links} == {"/my/"}
    finally:
        context.close()
        live_server.sql("DELETE FROM alert")


def test_alert_is_acknowledged_from_the_inbox(page, live_server, fleet):
    live_server.sql("INSERT INTO alert (meter_id, kind, alert_type, severity, state, title, count, first_at, last_at) "
                    "VALUES (?, 'event', 'tamper', 'critical', 'active', 'Cover opened', 1, datetime('now'), "
                    "datetime('now'))", (fleet.meters["BS002"],))
    try:
        page.goto("/alerts/")
        row = page.locator("#al-rows tr[data-id]")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("BS002")
        with page.expect_download() as download:
            page.click("#al-csv")
        lines = open(download.value.path(), encoding="utf-8-sig").read().strip().splitlines()
        assert len(lines) == 2 and "BS002" in lines[1] and "Cover opened" in lines[1]
        row.locator(".al-check").check()
        page.fill("#al-comment", "Seal checked on site")
        page.click("#al-ack")
        expect(page.locator("#al-rows tr[data-id]")).to_have_count(0)
        expect(page.locator("#al-rows")).to_contain_text("No alerts")
        page.select_option("#al-state", "acknowledged")
        expect(page.locator("#al-rows tr[data-id]")).to_contain_text("Seal checked on site")
    finally:
        live_server.sql("DELETE FROM alert")


def test_event_analysis_lists_and_downloads_the_fleets_events(page, fleet):
    page.goto("/events/")
    rows = page.locator("#ev-rows tr")
    expect(rows.first).to_contain_text("BN001")
    assert {"BN001", "BS002", "BN003"} <= set(re.findall(r"B[NS]\d{3}", page.locator("#ev-rows").inner_text()))
    with page.expect_download() as download:
        page.click("#ev-csv")
    text = open(download.value.path(), encoding="utf-8-sig").read()
    assert {"BN001", "BS002", "BN003"} <= set(re.findall(r"B[NS]\d{3}", text))
    with page.expect_download() as download:
        page.click("#ev-pdf")
    assert open(download.value.path(), "rb").read(5) == b"%PDF-"


@pytest.mark.parametrize("path", ["/reports/consumption/", "/revenue/leakage/", "/reports/completeness/"])
def test_report_pages_download_csv_and_pdf(page, fleet, path):
    page.goto(path)
    page.wait_for_function(NO_SPINNER)
    with page.expect_download() as download:
        page.click("#rp-csv")
    assert open(download.value.path(), encoding="utf-8-sig").readline().strip()
    with page.expect_download() as download:
        page.click("#rp-pdf")
    assert open(download.value.path(), "rb").read(5) == b"%PDF-"


def test_meter_list_primary_action_opens_the_form_and_saving_returns(page, live_server, fleet):
    page.goto("/meterview/list/")
    add = page.locator(".hes-page-head a.hes-add")
    expect(add).to_have_text(re.compile("Add meter"))
    add.click()
    page.wait_for_url(re.compile(r"/meterview/add"))
    page.fill("#number", "FORM0001")
    page.click(".hes-form button[type=submit]")
    page.wait_for_url(re.compile(r"/meterview/list/"))
    expect(page.locator(".hes-toast")).to_contain_text("Saved")
    expect(page.locator(".hes-stock-table tbody")).to_contain_text("FORM0001")
    found = live_server.api("GET", "/api/v1/meter/?q=(filters:!((col:number,opr:eq,value:FORM0001)))").json()
    meter_id = found["ids"][0]
    try:
        page.goto(f"/meterview/show/{meter_id}")  # a direct link: saving returns to the meter, not the dashboard
        page.click("#stock-show .hes-page-actions a.btn-primary")
        page.fill("#concentrator_id", "DC-FORM")
        page.click(".hes-form button[type=submit]")
        page.wait_for_url(re.compile(rf"/meterview/show/{meter_id}"))
        expect(page.locator(".hes-pairs")).to_contain_text("DC-FORM")
    finally:
        live_server.api("DELETE", f"/api/v1/meter/{meter_id}")


def test_meter_numbers_sort_naturally(page, live_server, fleet):
    created = []
    brand = live_server.api("GET", "/api/v1/brand/?q=(filters:!((col:name,opr:eq,value:hes_sim)))").json()["ids"][0]
    try:
        for number in ("NAT10", "NAT9", "NAT100"):
            resp = live_server.api("POST", "/api/v1/meter/",
                                   json={"number": number, "status": "warehouse", "brand": brand})
            assert resp.status_code == 201, resp.text
            created.append(resp.json()["id"])
        page.goto("/meterview/list/?_flt_2_number=NAT")
        numbers = page.locator('.hes-stock-table tbody td[data-column="number"]').all_inner_texts()
        assert [n.strip() for n in numbers] == ["NAT9", "NAT10", "NAT100"]
    finally:
        for meter_id in created:
            live_server.api("DELETE", f"/api/v1/meter/{meter_id}")


def test_remote_pages_find_a_meter_and_show_its_status(page, fleet):
    page.goto("/remote/control/")
    page.fill("#rm-search", "BN00")
    expect(page.locator("#rm-results")).to_contain_text("BN001")
    page.locator("#rm-results li", has_text="BN001").first.click()
    expect(page.locator("#rm-card")).to_be_visible()
    expect(page.locator("#rm-status")).to_contain_text("Online")


def test_console_runs_under_a_strict_content_security_policy(page, fleet):
    """Every page above ran under this policy (a blocked script is a console error there); here: the policy is
    sent, allows no inline script without this answer's nonce, and an injected inline script does not run."""
    response = page.goto("/dashboard/")
    policy = response.headers["content-security-policy"]
    script_src = next(part for part in policy.split(";") if part.strip().startswith("script-src")).split()
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert any(s.startswith("'nonce-") for s in script_src)
    assert page.goto("/dashboard/").headers["content-security-policy"] != policy  # a fresh nonce per answer
    assert "default-src 'self'" in policy and "object-src 'none'" in policy and "frame-ancestors 'self'" in policy
    blocked: list[str] = []
    page.on("console", lambda msg: blocked.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.evaluate("""() => { const s = document.createElement('script');
                             s.textContent = 'window.__injected = true'; document.body.appendChild(s); }""")
    assert page.evaluate("window.__injected") is None
    assert blocked, "the injected script was not reported as blocked"


def test_start_up_prints_a_short_banner_not_framework_chatter(live_server):
    log = live_server.log()
    assert "HES Core is running" in log
    banner = log[log.index("HES Core is running"):].splitlines()[:7]
    assert any(line.split()[:1] == ["Console"] and live_server.url in line for line in banner), banner
    assert any("Meters dial" in line and live_server.meter_listen in line for line in banner), banner
    assert any("Admin login" in line and "admin" in line for line in banner), banner
    assert "Added Permission" not in log and "Created Permission View" not in log
    assert len(log.splitlines()) < 40, log[:2000]


STOCK_SCREENS = {
    "meters-list": "/meterview/list/?psize_MeterView=5", "meters-search": "/meterview/list/?_flt_2_number=BN",
    "meter-show": "/meterview/show/{BN001}", "meter-edit": "/meterview/edit/{BN001}", "meter-add": "/meterview/add",
    "areas-list": "/areaview/list/", "area-add": "/areaview/add", "sims-list": "/simview/list/",
    "customers-list": "/customerview/list/", "customer-add": "/customerview/add", "brands-list": "/brandview/list/",
    "users-list": "/users/list/", "user-add": "/users/add", "roles-list": "/roles/list/",
    "role-matrix": "/roles/matrix/",
    "schedules-list": "/scheduleview/list/",
}
LUMINANCE = """sel => Array.from(document.querySelectorAll(sel)).filter(e => e.offsetParent !== null).map(e => {
    const [r, g, b] = getComputedStyle(e).backgroundColor.match(/[\\d.]+/g).map(Number);
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255; })"""
# Controls that stayed white in the dark theme.
DARK_CONTROLS = ".form-control, .select2-selection, .hes-pager .btn-default, .btn-default, .hes-card, .dropdown-menu"


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_stock_screens_use_the_hes_look_in_both_themes(browser, live_server, admin_state, fleet, theme):
    """The framework's list, search, pager, show, add and edit screens and the security pages render in the HES
    layout (page head, cards, no Bootstrap panels), controls follow the theme; a screenshot of each."""
    from tests.support.browser import screenshot

    context = browser.new_context(viewport=VIEWPORT, storage_state=admin_state, base_url=live_server.url)
    page = context.new_page()
    try:
        page.goto("/dashboard/")
        if page.locator("html").get_attribute("data-theme") != theme:
            page.click("#hes-theme-toggle")
            page.wait_for_load_state()
        assert page.locator("html").get_attribute("data-theme") == theme
        for name, path in STOCK_SCREENS.items():
            page.goto(path.format(**fleet.meters))
            assert page.locator(".hes-page-head h1").is_visible(), path
            assert page.locator(".panel-primary, .well, .pagination").count() == 0, path
            if theme == "dark":
                bright = [v for v in page.evaluate(LUMINANCE, DARK_CONTROLS) if v > 0.35]
                assert not bright, f"{path}: {len(bright)} controls stay light in the dark theme"
            screenshot(page, f"stock-{name}-{theme}")
    finally:
        page.goto("/dashboard/")
        if page.locator("html").get_attribute("data-theme") == "dark":
            page.click("#hes-theme-toggle")
        context.close()


def test_list_pages_through_its_rows(page, fleet):
    page.goto("/meterview/list/?_flt_0_number=B&psize_MeterView=3")  # the fleet: BN001 … BS003
    expect(page.locator(".hes-stock-table tbody tr")).to_have_count(3)
    expect(page.locator(".hes-table-foot")).to_contain_text(f"1–3 of {len(fleet.meters)}")
    page.click(".hes-pager a[rel=next]")
    expect(page.locator(".hes-table-foot")).to_contain_text(f"4–6 of {len(fleet.meters)}")
    numbers = page.locator('.hes-stock-table tbody td[data-column="number"]').all_inner_texts()
    assert [n.strip() for n in numbers] == ["BN004", "BN005", "BS001"]


def test_role_editor_builds_a_role_that_sees_only_what_it_can_open(page, browser, live_server, fleet):
    """An admin makes a "Report reader" role in the matrix (consumption reports and dashboard, view only); its user
    sees exactly those menu entries, each opens, and a page outside the role answers the branded 403."""
    page.goto("/roles/matrix/")
    page.fill("#role-new input[name=name]", "Report reader")
    page.click("#role-new button[type=submit]")
    page.wait_for_url(re.compile(r"/roles/matrix/\d+$"))
    page.check('#role-matrix input[value="reports:view"]')
    page.check('#role-matrix input[value="dashboard:view"]')
    assert not page.locator('#role-matrix input[value="dashboard:operate"]').is_checked()
    page.click("#role-save")
    page.wait_for_url(re.compile(r"/roles/matrix/$"))
    row = page.locator('#roles-table tr[data-role="Report reader"]')
    expect(row).to_contain_text("View")
    role_id = int(row.locator("a.hes-row-link").get_attribute("href").rstrip("/").rsplit("/", 1)[-1])
    resp = live_server.api("POST", "/api/v1/security/users/", json={
        "username": "reader1", "first_name": "Rita", "last_name": "Reader", "email": "reader1@example.test",
        "password": "Reader-Pw-123", "active": True, "roles": [role_id]})
    assert resp.status_code == 201, resp.text
    context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url)
    try:
        tab = context.new_page()
        watch = PageWatch(tab, live_server.url)
        login(tab, live_server, "reader1", "Reader-Pw-123")
        links = tab.eval_on_selector_all("#hes-nav a[href]", "els => els.map(a => a.getAttribute('href'))")
        paths = {urlsplit(h).path for h in links}
        assert paths == {"/dashboard/", "/alerts/", "/reports/consumption/", "/reports/consumption/hourly",
                         "/reports/completeness/"}, paths
        problems = []
        for href in links:
            problems += check_page(tab, href) + watch.take()
        assert not problems, "\n".join(problems)
        response = tab.goto("/meterview/list/")
        assert response.status == 403
        expect(tab.locator("#hes-error")).to_contain_text("You do not have access to this page")
    finally:
        context.close()
