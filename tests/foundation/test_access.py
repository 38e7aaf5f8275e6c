"""Role rules and the row-level customer scope, enforced by the API and the pages."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditLog, Customer
from tests.foundation.conftest import upload

FLEET_SIMS = "Sim Number,IP Address,Port\nS1,10.9.0.1,4059\nS2,10.9.0.2,4059\nS3,10.9.0.3,4059\n"
FLEET_METERS = ("Meter Number,Concentrator ID,Meter Type,Area\n"
                "K1,D1,acme_sp,N-KAN-SG\nK2,D1,acme_sp,N-KAN-FG\nL1,D2,acme_sp,S-LAG\n")
FLEET_CUSTOMERS = ("Customer Name,Address,Phone No,Meter Number,Sim Number,Account Number\n"
                   "Ada,1 Road,0801000001,K1,S1,ACC-1\nAda,1 Road,0801000001,K2,S2,ACC-1\n"
                   "Lola,2 Road,0801000002,L1,S3,ACC-2\n")


@pytest.fixture
def fleet(app, client, admin_headers, brand, areas):
    for kind, csv in (("sim", FLEET_SIMS), ("meter", FLEET_METERS), ("customer", FLEET_CUSTOMERS)):
        assert upload(client, kind, csv, admin_headers).status_code == 200
    with app.app_context():
        return {c.account_number: c.id for c in db.session.execute(select(Customer)).scalars()}


def numbers(resp) -> list[str]:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return sorted(row["number"] for row in resp.json["result"])


def test_customer_sees_only_own_meters_everywhere(app, client, fleet, make_user, api_token):
    headers = api_token(make_user("Customer", customer_id=fleet["ACC-1"]))
    assert numbers(client.get("/api/v1/meter/", headers=headers)) == ["K1", "K2"]
    customers = client.get("/api/v1/customer/", headers=headers).json["result"]
    assert [c["account_number"] for c in customers] == ["ACC-1"]
    with app.app_context():
        lola = db.session.execute(select(Customer).where(Customer.account_number == "ACC-2")).scalar_one()
        lola_meter = lola.meters[0].id
    assert client.get(f"/api/v1/meter/{lola_meter}", headers=headers).status_code == 404
    # Even an explicit filter on another area returns nothing of others'.
    q = "(filters:!((col:number,opr:eq,value:L1)))"
    assert numbers(client.get(f"/api/v1/meter/?q={q}", headers=headers)) == []


def test_customer_cannot_write_or_import_or_see_other_resources(client, fleet, make_user, api_token):
    headers = api_token(make_user("Customer", customer_id=fleet["ACC-1"]))
    assert client.post("/api/v1/meter/", json={"number": "X"}, headers=headers).status_code == 403
    meter_id = client.get("/api/v1/meter/", headers=headers).json["ids"][0]
    assert client.put(f"/api/v1/meter/{meter_id}", json={"concentrator_id": "Z"}, headers=headers).status_code == 403
    assert client.delete(f"/api/v1/meter/{meter_id}", headers=headers).status_code == 403
    assert upload(client, "meter", FLEET_METERS, headers).status_code == 403
    assert client.get("/api/v1/sim/", headers=headers).status_code == 403
    assert client.get("/api/v1/area/", headers=headers).status_code == 403


def test_customer_user_without_customer_record_sees_nothing(client, fleet, make_user, api_token):
    headers = api_token(make_user("Customer"))
    assert numbers(client.get("/api/v1/meter/", headers=headers)) == []


def test_operator_works_but_cannot_administer_users(client, fleet, make_user, api_token):
    headers = api_token(make_user("Operator"))
    assert numbers(client.get("/api/v1/meter/", headers=headers)) == ["K1", "K2", "L1"]
    assert upload(client, "sim", "Sim Number,IP Address,Port\nS9,10.9.0.9,4059\n", headers).status_code == 200
    assert client.get("/api/v1/security/users/", headers=headers).status_code in (401, 403, 404)
    assert client.get("/api/v1/user/", headers=headers).status_code in (403, 404)


def test_area_filter_includes_descendants(client, fleet, areas, operator_headers):
    def in_area(area_id):
        q = f"(filters:!((col:area_id,opr:in_area,value:{area_id})))"
        return numbers(client.get(f"/api/v1/meter/?q={q}", headers=operator_headers))

    assert in_area(areas["North"]) == ["K1", "K2"]
    assert in_area(areas["Kano"]) == ["K1", "K2"]
    assert in_area(areas["Fagge"]) == ["K2"]
    assert in_area(areas["South"]) == ["L1"]


def test_pages_follow_roles(app, client, fleet, make_user):
    def login(username):
        client.get("/logout/")
        resp = client.post("/login/", data={"username": username, "password": "pw-" + username})
        assert resp.status_code == 302

    login(make_user("Customer", customer_id=fleet["ACC-2"]))
    assert client.get("/meterview/list/").status_code in (302, 403)  # no access
    assert client.get("/users/list/").status_code in (302, 403)
    login(make_user("Operator"))
    page = client.get("/meterview/list/")
    assert page.status_code == 200 and b"K1" in page.data and b"L1" in page.data
    assert client.get("/users/list/").status_code in (302, 403)
    assert client.get("/settings/").status_code in (302, 403)
    login(make_user("Admin"))
    assert client.get("/users/list/").status_code == 200
    settings = client.get("/settings/")
    assert settings.status_code == 200 and b"meter-endpoint" in settings.data


def test_validation_errors_are_json_with_field_names(client, operator_headers, brand):
    resp = client.post("/api/v1/sim/", json={"number": "S77", "ip_address": "1.2.3.999", "port": 4059},
                       headers=operator_headers)
    assert resp.status_code == 422 and "not a valid IP address" in resp.json["message"]
    resp = client.post("/api/v1/sim/", json={"ip_address": "1.2.3.4", "port": "x"}, headers=operator_headers)
    assert resp.status_code in (400, 422) and "port" in str(resp.json["message"])


def test_crud_is_audited_with_the_user(app, client, make_user, api_token):
    username = make_user("Operator")
    headers = api_token(username)
    resp = client.post("/api/v1/sim/", json={"number": "S88", "ip_address": "10.8.8.8", "port": 4059}, headers=headers)
    assert resp.status_code == 201
    sim_id = resp.json["id"]
    assert client.put(f"/api/v1/sim/{sim_id}", json={"port": 4060}, headers=headers).status_code == 200
    assert client.delete(f"/api/v1/sim/{sim_id}", headers=headers).status_code == 200
    with app.app_context():
        stmt = select(AuditLog).where(AuditLog.object_type == "sim").order_by(AuditLog.id)
        rows = db.session.execute(stmt).scalars().all()
        assert [r.action for r in rows] == ["create", "update", "delete"]
        assert {r.username for r in rows} == {username}
        assert rows[1].details == {"port": [4059, 4060]}
