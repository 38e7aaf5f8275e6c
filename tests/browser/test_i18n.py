"""A French user uses the console in French: the browser's language is taken, live tables fill with French words
and numbers, the switcher changes language on the same page, and no menu page shows an English UI string."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.test_pages import NO_SPINNER, PageWatch
from tests.support.browser import ADMIN_PASSWORD, ADMIN_USER, login

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"\{\w+\}|%\(\w+\)[sd]")
# Text nodes of the visible page (menu, top bar and content), one string each; names (translate="no") and code
# (CSV column names, OBIS codes) are not UI strings.
VISIBLE_TEXTS = """() => {
  const out = [], skip = 'script, style, code, [translate=no], [hidden], .hes-nav-items, .dropdown-menu, option';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, text = node.textContent.trim(), el = node.parentElement;
    if (!text || !el || el.closest(skip)) continue;
    if (el.offsetParent === null && getComputedStyle(el).position !== 'fixed') continue;
    out.push(text);
  }
  document.querySelectorAll('input[placeholder]:not([type=hidden])').forEach(i => {
    if (i.offsetParent !== null) out.push(i.placeholder.trim());
  });
  return out;
}"""


def english_ui_strings() -> set[str]:
    """UI strings whose French is different (and that carry no placeholder), as they read in English."""
    spec = importlib.util.spec_from_file_location("hes_i18n_tool", ROOT / "scripts" / "i18n.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    catalog = tool.read_catalog(tool.po_path("fr"), "fr")
    return {m.id for m in catalog if isinstance(m.id, str) and m.id and m.string and m.string != m.id
            and not PLACEHOLDER.search(m.id) and len(m.id) > 2}


@pytest.fixture
def french(browser, live_server):
    """A signed-in admin tab whose browser asks for French."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=live_server.url,
                                  locale="fr-FR", accept_downloads=True)
    tab = context.new_page()
    watch = PageWatch(tab, live_server.url)
    login(tab, live_server, ADMIN_USER, ADMIN_PASSWORD)
    yield tab
    context.close()
    assert not watch.take()


def test_login_page_follows_the_browser_and_the_switcher(browser, live_server):
    context = browser.new_context(base_url=live_server.url, locale="fr-FR")
    tab = context.new_page()
    try:
        tab.goto("/login/")
        expect(tab.locator("html")).to_have_attribute("lang", "fr")
        expect(tab.locator(".hes-auth-card h2")).to_have_text("Se connecter")
        tab.click(".hes-auth-langs a[hreflang=en]")
        expect(tab.locator(".hes-auth-card h2")).to_have_text("Sign in")
        assert tab.url.endswith("/login/")
    finally:
        context.close()


def test_live_tables_fill_in_french(french, fleet):
    french.goto("/events/")
    expect(french.locator("h1")).to_have_text("Analyse des événements")
    expect(french.locator("#ev-rows")).to_contain_text("BS002")
    expect(french.locator("#ev-rows")).to_contain_text("Critique")  # the critical cover event's severity
    expect(french.locator("#ev-range")).to_have_text(re.compile(r"^1–\d+ sur \d+$"))
    french.goto("/monitoring/")
    expect(french.locator("#mon-rows")).to_contain_text("BN001")
    expect(french.locator("#mon-rows")).to_contain_text(re.compile("En ligne|Hors ligne"))
    assert not re.search(r"\b(Online|Offline|never)\b", french.locator("#mon-rows").inner_text())
    expect(french.locator("#mon-range")).to_have_text(re.compile(r"^Compteurs 1 à \d+ sur \d+$"))
    expect(french.locator("#mon-selected")).to_have_text("Aucun compteur sélectionné")
    french.locator("#mon-rows .mon-check").first.check()
    expect(french.locator("#mon-selected")).to_have_text("1 compteur sélectionné")


def test_alert_acknowledged_in_french(french, live_server, fleet):
    live_server.sql("DELETE FROM alert")  # only this alert in the inbox
    live_server.sql("INSERT INTO alert (meter_id, kind, alert_type, severity, state, title, count, first_at, last_at) "
                    "VALUES (?, 'event', 'comm_lost', 'warning', 'active', 'Communication lost', 1, "
                    "datetime('now'), datetime('now'))", (fleet.meters["BN003"],))
    try:
        french.goto("/alerts/")
        row = french.locator("#al-rows tr[data-id]")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("Communication perdue")
        expect(row).to_contain_text("Avertissement")
        row.locator(".al-check").check()
        french.click("#al-ack")
        expect(french.locator(".hes-toast")).to_contain_text("1 alerte(s) acquittée(s)")
        expect(french.locator("#al-rows")).to_contain_text("Aucune alerte ici. Tout est calme.")
    finally:
        live_server.sql("DELETE FROM alert")


def test_dashboard_numbers_in_french(french, fleet):
    french.goto("/dashboard/")
    expect(french.locator("h1").first).to_contain_text(re.compile("Bonjour|Vue d'ensemble|Tableau de bord"))
    total = french.locator('#dashboard [data-field="total"]')
    expect(total).to_have_text(re.compile(r"^\d+$"))
    energy = french.locator("#energy-total")
    expect(energy).to_have_text(re.compile(r"^[\d\u202f\u00a0 ]+(,\d)? kWh$"))


def test_switcher_changes_language_on_the_same_page(french, fleet):
    french.goto("/online-rate/")
    expect(french.locator("h1")).to_have_text("Taux de connexion")
    french.click("#hes-lang-menu")
    french.click(".hes-lang a[hreflang=en]")
    expect(french.locator("h1")).to_have_text("Online Rate")
    assert "/online-rate/" in french.url
    french.click("#hes-lang-menu")
    french.click(".hes-lang a[hreflang=fr]")
    expect(french.locator("h1")).to_have_text("Taux de connexion")


def test_no_menu_page_shows_an_english_ui_string(french, fleet):
    """Every page of the menu, as the admin in French: no visible text is a UI string left in English."""
    english = english_ui_strings()
    links = french.eval_on_selector_all("#hes-nav a[href]", "els => els.map(a => a.getAttribute('href'))")
    assert len(links) > 20
    problems = []
    for href in dict.fromkeys(links):
        french.goto(href)
        french.wait_for_function(NO_SPINNER, timeout=8000)
        french.wait_for_load_state("networkidle")
        left = sorted({text for text in french.evaluate(VISIBLE_TEXTS) if text in english})
        problems += [f"{href}: {text!r}" for text in left]
    assert not problems, "English left on French pages:\n" + "\n".join(problems)
