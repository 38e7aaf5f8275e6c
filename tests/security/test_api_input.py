"""Hostile API input found by the schemathesis run, kept as plain regressions."""

from __future__ import annotations

import io

from werkzeug.security import generate_password_hash

from app.extensions import db
from app.models import MeterBrand


def test_operator_cannot_create_a_login_through_a_customers_user(app, client, operator_headers):
    """A nested ``user`` object used to be deserialized into a new ab_user row: an Operator minting logins."""
    body = {"account_number": "T-EVIL", "name": "Evil", "user": {
        "username": "t_evil", "first_name": "e", "last_name": "v", "email": "t_evil@example.test", "active": True,
        "password": generate_password_hash("evil-password")}}
    resp = client.post("/api/v1/customer/", json=body, headers=operator_headers)
    assert resp.status_code == 422, resp.get_data(as_text=True)
    with app.app_context():
        assert app.appbuilder.sm.find_user(username="t_evil") is None
    login = {"username": "t_evil", "password": "evil-password", "provider": "db"}
    assert client.post("/api/v1/security/login", json=login).status_code == 401


def test_related_rows_are_given_by_existing_id_only(app, client, operator_headers):
    with app.app_context():
        brands = db.session.query(MeterBrand).count()
    for brand in (987654, {"name": "t_nested", "title": "Nested"}, 2**80, "1e3", True, [1]):
        resp = client.post("/api/v1/meter/", json={"number": "T-REL-1", "brand": brand}, headers=operator_headers)
        assert resp.status_code == 422, (brand, resp.get_data(as_text=True))
    with app.app_context():
        assert db.session.query(MeterBrand).count() == brands


def test_ids_too_large_for_the_database_are_not_found(client, admin_headers):
    """Ids past the INTEGER id columns used to reach the database and raise (OverflowError on SQLite, DataError on
    PostgreSQL)."""
    huge = 2**70
    assert client.get("/api/v1/command/2725918488", headers=admin_headers).status_code == 404  # > 2**31: PG INTEGER
    resp = client.post("/api/v1/alert/acknowledge", json={"ids": [4471109863]}, headers=admin_headers)
    assert resp.status_code == 400
    assert client.get(f"/api/v1/subscription/{huge}", headers=admin_headers).status_code == 404
    assert client.delete(f"/api/v1/subscription/{huge}", headers=admin_headers).status_code == 404
    assert client.put(f"/api/v1/brand/{huge}", json={}, headers=admin_headers).status_code == 404
    assert client.put(f"/api/v1/meter/{huge}/credentials", json={}, headers=admin_headers).status_code == 404
    assert client.post(f"/api/v1/unregistered/{huge}/register", json={}, headers=admin_headers).status_code == 404
    assert client.post("/api/v1/alert/acknowledge", json={"ids": [huge]}, headers=admin_headers).status_code == 400


def test_odd_numbers_in_query_strings_are_refused_or_ignored_not_500(client, admin_headers):
    """"²" passes str.isdigit() but not int(); numbers past a BIGINT (or a date's range) used to reach the database."""
    huge = str(2**90)
    for url in (f"/api/v1/monitoring/meters?page={huge}", f"/api/v1/dashboard/summary?area={huge}",
                f"/api/v1/consumption/?meter={huge}", f"/api/v1/leakage/?days={huge}",
                f"/api/v1/firmware/transfer?job_id={huge}", f"/api/v1/monitoring/parameters?meter_ids=1,{huge}",
                "/api/v1/monitoring/meters?page=²", "/api/v1/dashboard/summary?area=²", "/api/v1/leakage/?days=²",
                "/api/v1/job/1/commands?page=abc&page_size=x", "/api/v1/meterlookup/search?area=²"):
        resp = client.get(url, headers=admin_headers)
        assert resp.status_code < 500, (url, resp.status_code)


def test_unique_conflict_found_by_a_rule_is_422(client, admin_headers):
    sim = {"number": "T-DUP", "ip_address": "10.7.7.7", "port": 4059}
    assert client.post("/api/v1/sim/", json=sim, headers=admin_headers).status_code == 201
    assert client.post("/api/v1/sim/", json=sim | {"ip_address": "10.7.7.8"}, headers=admin_headers).status_code == 422


def test_nul_characters_are_refused_not_500(client, admin_headers):
    """PostgreSQL text cannot hold NUL; it used to surface as a DataError (500) from any text parameter."""
    assert client.get("/api/v1/completeness/?meter=a%00b", headers=admin_headers).status_code == 400
    resp = client.post("/api/v1/area/", json={"name": "A\u0000", "code": "T-NUL"}, headers=admin_headers)
    assert resp.status_code == 400
    data = {"file": (io.BytesIO(b"Sim Number,IP Address,Port,APN\nT-NUL,10.9.9.9,4059,in\x00ternet\n"), "s.csv")}
    resp = client.post("/api/v1/sim/import", data=data, headers=admin_headers, content_type="multipart/form-data")
    assert resp.status_code == 422 and resp.json["errors"][0]["reason"] == "contains a NUL character"
