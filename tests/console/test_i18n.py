"""The console in two languages: every UI string has a French translation (and the compiled catalog matches it),
the browser's language is honoured, the switcher's choice wins and comes back to the same page, the scripts get
their strings in the page's language, and dates and numbers are written the French way."""

from __future__ import annotations

import datetime as dt
import enum
import importlib.util
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FRENCH = {"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"}


def _i18n_tool():
    spec = importlib.util.spec_from_file_location("hes_i18n_tool", ROOT / "scripts" / "i18n.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_ui_string_has_a_french_translation():
    """Strings are read from the sources (Python, templates, scripts), not from the catalog, so a new string
    without a translation fails here."""
    tool = _i18n_tool()
    messages = [m for m in tool.extract() if m.id]
    assert len(messages) > 700  # the extraction found the console (templates, views and scripts)
    script_ids = {m.id for m in messages if any(path.endswith(".js") for path, _ in m.locations)}
    assert {"No alerts here. All quiet.", "Showing {first}–{last} of {total} meters"} <= script_ids
    assert tool.untranslated("fr") == []


def test_compiled_catalog_matches_the_po_file():
    assert _i18n_tool().stale_compiled("fr") == []


def test_translations_keep_their_placeholders():
    tool = _i18n_tool()
    placeholders = re.compile(r"\{\w+\}|%\(\w+\)[sd]")
    for message in tool.read_catalog(tool.po_path("fr"), "fr"):
        if message.id and isinstance(message.id, str):
            assert sorted(placeholders.findall(message.id)) == sorted(placeholders.findall(message.string)), message.id


def test_vocabulary_covers_every_enum_value_and_event_type():
    """Words that come from data (enum values, event titles) are in the catalog through app/views/vocabulary.py."""
    from app.models import analytics, commands, events, fleet
    from app.services.events import EVENT_TYPES
    from app.views.vocabulary import ALL_WORDS

    words = set(ALL_WORDS)
    for module in (analytics, commands, events, fleet):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, enum.Enum) and value.__module__ == module.__name__:
                for member in value:
                    text = str(member.value).replace("_", " ")
                    assert text[:1].upper() + text[1:].lower() in words, member
    assert {event.title for event in EVENT_TYPES.values()} <= words


def test_browser_language_is_honoured_without_a_choice(client):
    page = client.get("/login/", headers=FRENCH).get_data(as_text=True)
    assert '<html lang="fr"' in page
    assert "Se connecter" in page and "Nom d'utilisateur" in page or "Nom d&#39;utilisateur" in page
    english = client.get("/login/", headers={"Accept-Language": "de-DE,en;q=0.8"}).get_data(as_text=True)
    assert '<html lang="en"' in english and "Sign in" in english


def test_switcher_choice_wins_and_returns_to_the_page(client):
    resp = client.get("/language/fr?next=/login/", headers={"Accept-Language": "en"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login/")
    page = client.get("/login/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Se connecter" in page
    assert 'href="/language/en?next=/login/"' in page  # the switcher offers the way back
    client.get("/language/en?next=/login/", headers=FRENCH)
    assert "Sign in" in client.get("/login/", headers=FRENCH).get_data(as_text=True)
    unknown = client.get("/language/xx?next=https://evil.example/")
    assert unknown.status_code == 302 and "evil.example" not in unknown.headers["Location"]


def _sign_in(client, make_user, role="Operator") -> None:
    username = make_user(role)
    client.post("/login/", data={"username": username, "password": "pw-" + username})


def test_a_french_page_carries_its_scripts_strings_in_french(client, make_user):
    _sign_in(client, make_user)
    page = client.get("/alerts/", headers=FRENCH).get_data(as_text=True)
    catalog = json.loads(re.search(r'<script type="application/json" id="hes-i18n"[^>]*>(.*?)</script>', page,
                                   re.S).group(1))
    assert catalog["No alerts here. All quiet."] == "Aucune alerte ici. Tout est calme."
    assert catalog["Power failure"] == "Coupure de courant"  # data words the scripts translate with HES.word
    assert "Alertes actives" in page and "Acquitter" in page
    english = client.get("/alerts/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert re.search(r'id="hes-i18n"[^>]*>\{\}</script>', english)  # nothing to translate in English


def test_dates_numbers_and_words_in_french(app):
    from app.views.stock import format_cell
    from app.views.vocabulary import word

    app.config["HES_TIMEZONE"] = "Africa/Lagos"  # UTC+1, no daylight saving
    try:
        with app.test_request_context("/", headers=FRENCH):
            stamp = format_cell(dt.datetime(2026, 3, 10, 12, 5, 7, tzinfo=dt.UTC), "created_on")
            assert "10 mars 2026" in stamp and "13:05:07" in stamp
            number = format_cell(Decimal("12345.5"), "credit_balance")
            assert re.search(r"12\s345,5 kWh", number), number
            assert str(format_cell(True, "online")).count("En ligne") == 1
            assert word("dial_in") == "Appel entrant" and word("power_fail") == "Power fail"
        with app.test_request_context("/", headers={"Accept-Language": "en"}):
            assert "Mar 10, 2026, 1:05:07" in format_cell(dt.datetime(2026, 3, 10, 12, 5, 7, tzinfo=dt.UTC), "ts")
            assert "12,345.5 kWh" in format_cell(Decimal("12345.5"), "credit_balance")
    finally:
        app.config["HES_TIMEZONE"] = "UTC"


@pytest.mark.parametrize("path", ["/dashboard/", "/meterview/list/", "/monitoring/", "/reports/consumption/"])
def test_french_pages_show_french_chrome(client, make_user, path):
    _sign_in(client, make_user, "Admin")
    page = client.get(path, headers=FRENCH).get_data(as_text=True)
    assert "Tableau de bord" in page and "Gestion des compteurs" in page  # the menu
    assert "Switch to dark theme" not in page and "Main menu" not in page


def test_customer_list_shows_the_sims_of_the_customers_meters(app, client, make_user, console_fleet):
    """Customers › list: a SIM column with the SIM of each of the customer's meters (by number), in both languages."""
    from app.extensions import db
    from app.models import Meter, Sim

    with app.app_context():
        sim = Sim(number="SIM-ADA-7", ip_address="10.9.0.7", port=4059)
        db.session.add(sim)
        db.session.flush()
        db.session.get(Meter, console_fleet.meters["N1"]).sim_id = sim.id
        db.session.commit()
    _sign_in(client, make_user, "Admin")
    english = client.get("/customerview/list/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "SIM cards" in english
    row = next(r for r in english.split("<tr") if "ACC-ADA" in r)
    assert "SIM-ADA-7" in row and "N1" in row
    assert "Cartes SIM" in client.get("/customerview/list/", headers=FRENCH).get_data(as_text=True)
