"""The monitoring API: server-side paging, search, filters, area and customer scope, brand parameters."""

from __future__ import annotations

from flask_login import login_user

from app.services.online_rate import MeterFilter, brand_parameters, meter_page
from app.services.scope import Scope


def numbers(resp) -> list[str]:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return [row["number"] for row in resp.json["result"]]


def test_pages_are_served_in_number_order(client, console_fleet, operator_headers):
    first = client.get("/api/v1/monitoring/meters?page=0&page_size=4", headers=operator_headers)
    second = client.get("/api/v1/monitoring/meters?page=1&page_size=4", headers=operator_headers)
    assert first.json["count"] == 6 and first.json["page_size"] == 4
    assert numbers(first) + numbers(second) == ["D1", "N1", "N2", "N3", "S1", "S2"]
    row = first.json["result"][1]
    assert row["online"] is True and row["last_seen"] and row["area"] == "Kano" and row["customer"] == "Ada"
    assert row["brand"] == "HES Core Simulator"


def test_search_and_filters(client, console_fleet, operator_headers):
    def get(query: str) -> list[str]:
        return numbers(client.get(f"/api/v1/monitoring/meters?{query}", headers=operator_headers))

    assert get("q=n") == ["N1", "N2", "N3"]  # case-insensitive "contains"
    assert get("q=S1") == ["S1"]
    assert get("status=warehouse") == ["N3"]
    assert get("online=online") == ["N1", "S1"]
    assert get("online=never") == ["N3", "S2"]
    assert get(f"area={console_fleet.areas['North']}") == ["N1", "N2", "N3"]
    assert get(f"area={console_fleet.areas['South']}&online=offline") == ["D1", "S2"]
    bad = client.get("/api/v1/monitoring/meters?status=lost", headers=operator_headers)
    assert bad.status_code == 400 and "lost" in bad.json["message"]


def test_page_size_is_capped(app, console_fleet):
    with app.app_context():
        assert meter_page(MeterFilter(), page=0, page_size=10_000)["page_size"] == 500


def test_customer_user_is_scoped_to_their_meters(app, client, console_fleet, make_user, api_token):
    username = make_user("Customer", customer_id=console_fleet.ada)
    # The monitoring API is an operator tool: customers are refused outright ...
    assert client.get("/api/v1/monitoring/meters", headers=api_token(username)).status_code == 403
    # ... and the scope the views build for a customer still only reaches their own meters.
    from app.views.dashboard import request_scope

    with app.test_request_context("/api/v1/monitoring/meters"):
        login_user(app.appbuilder.sm.find_user(username=username))
        scope = request_scope(console_fleet.areas["South"])
        assert scope.customer_id == console_fleet.ada
        assert [r["number"] for r in meter_page(MeterFilter(scope=scope))["result"]] == []
        mine = meter_page(MeterFilter(scope=request_scope(None)))
        assert [r["number"] for r in mine["result"]] == ["N1", "N2"]


def test_parameters_of_the_meters_brands(app, client, console_fleet, operator_headers):
    resp = client.get(f"/api/v1/monitoring/parameters?meter_ids={console_fleet.meters['N1']}",
                      headers=operator_headers)
    points = {p["key"]: p for p in resp.json["result"]}
    assert points["energy_import"]["readable"] and not points["energy_import"]["writable"]
    assert points["relay_disconnect"]["writable"] and not points["relay_disconnect"]["readable"]
    assert points["load_limit_threshold"]["readable"] and points["load_limit_threshold"]["writable"]
    assert points["energy_import"]["brands"] == ["HES Core Simulator"]
    with app.app_context():
        assert brand_parameters(Scope(customer_id=-1)) == []
