"""Online Rate: the figures, the filters, and the CSV and PDF reports."""

from __future__ import annotations

import csv
import datetime as dt
import io

from pypdf import PdfReader

from app.services.online_rate import meter_page, online_rate_summary, visibility_filter
from app.services.scope import Scope
from tests.console.conftest import NOW


def test_summary_figures(app, console_fleet):
    with app.app_context():
        summary = online_rate_summary(Scope())
        # In service: N1, N2, N3, S1, S2 (D1 is decommissioned); online N1, S1; seen N1, N2, S1.
        assert summary == {"total": 5, "online_now": 2, "ever_online": 3, "never_online": 2, "online_rate": 40.0}
        kano = online_rate_summary(Scope(area_id=console_fleet.areas["Kano"]))
        assert (kano["total"], kano["online_now"], kano["never_online"], kano["online_rate"]) == (2, 1, 0, 50.0)


def test_filters_never_and_online(app, console_fleet):
    with app.app_context():
        def listed(choice: str) -> list[str]:
            return [r["number"] for r in meter_page(visibility_filter(Scope(), choice))["result"]]

        assert listed("never") == ["N3", "S2"]
        assert listed("online") == ["N1", "N2", "S1"]  # ever online or online now
        assert listed("all") == ["N1", "N2", "N3", "S1", "S2"]


def test_json_api(client, console_fleet, operator_headers):
    resp = client.get(f"/api/v1/online-rate/?filter=never&area={console_fleet.areas['South']}",
                      headers=operator_headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert [r["number"] for r in resp.json["result"]] == ["S2"]
    assert resp.json["summary"]["total"] == 2 and resp.json["summary"]["online_rate"] == 50.0
    assert client.get("/api/v1/online-rate/?filter=maybe", headers=operator_headers).status_code == 400


def test_csv_download(client, console_fleet, operator_headers):
    resp = client.get("/api/v1/online-rate/csv?filter=online", headers=operator_headers)
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == ["Meter Number", "Customer", "Area", "Online Now", "First Seen", "Last Seen", "Status"]
    assert [(r[0], r[1], r[2], r[3]) for r in rows[1:]] == [("N1", "Ada", "Kano", "yes"), ("N2", "Ada", "Kano", "no"),
                                                            ("S1", "", "South", "yes")]
    assert rows[1][4].startswith((NOW - dt.timedelta(days=2)).date().isoformat())  # N1's first sighting


def test_pdf_download(client, console_fleet, operator_headers):
    resp = client.get("/api/v1/online-rate/pdf?filter=all", headers=operator_headers)
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    assert resp.data.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(resp.data))
    assert len(reader.pages) >= 1
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Online Rate" in text and "40.0%" in text
    assert "TOTAL METERS" in text.upper() and "NEVER ONLINE" in text.upper()
    for number in ("N1", "N2", "N3", "S1", "S2"):
        assert number in text
    assert "D1" not in text


def test_page_renders_for_staff_only(client, console_fleet, make_user):
    for role, allowed in (("Operator", True), ("Customer", False)):
        username = make_user(role)
        client.get("/logout/")
        client.post("/login/", data={"username": username, "password": "pw-" + username})
        resp = client.get("/online-rate/")
        assert (resp.status_code == 200) is allowed
        if allowed:
            assert b"Online rate" in resp.data and b'data-field="online_rate">40.0<' in resp.data
