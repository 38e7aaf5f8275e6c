"""The command API's rules in-process (no meter needed): validation before queueing, confirmations, rate
limits, customer scope, and the pages each role may open."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import Customer, Meter, MeterBrand, MeterStatus
from app.models.commands import Command


@pytest.fixture
def fleet(app):
    """Two hes_sim dial-in meters (offline), one belonging to customer Ada."""
    with app.app_context():
        brand = db.session.execute(db.select(MeterBrand).where(MeterBrand.name == "hes_sim")).scalar_one()
        ada = Customer(account_number="ACC-ADA-R", name="Ada")
        db.session.add(ada)
        db.session.flush()
        mine = Meter(number="RUL00000001", brand_id=brand.id, status=MeterStatus.active, customer_id=ada.id)
        other = Meter(number="RUL00000002", brand_id=brand.id, status=MeterStatus.active)
        db.session.add_all([mine, other])
        db.session.commit()
        return {"ada": ada.id, "mine": mine.id, "other": other.id}


def _commands(app) -> int:
    with app.app_context():
        return db.session.execute(db.select(db.func.count(Command.id))).scalar()


def test_parameters_are_validated_before_anything_is_queued(app, client, fleet, operator_headers):
    cases = [
        ({"kind": "explode"}, "Unknown command kind"),
        ({"kind": "set", "values": {"energy_import": "5"}}, "read-only"),
        ({"kind": "set", "values": {"demand_integration_period": "soon"}}, "takes a number"),
        ({"kind": "set", "values": {"image_activate": ""}}, "Firmware page"),
        ({"kind": "read", "points": ["no_such_point"]}, "Unknown parameter"),
        ({"kind": "load_limit", "threshold": "-5"}, "between"),
        ({"kind": "token", "token": "12345"}, "20 decimal digits"),
    ]
    for body, message in cases:
        resp = client.post("/api/v1/command/", json={"meter_id": fleet["other"], **body}, headers=operator_headers)
        assert resp.status_code == 422, (body, resp.json)
        assert message in resp.json["message"], (body, resp.json["message"])
    missing = client.post("/api/v1/firmware/image", data={"identifier": "has space"}, headers=operator_headers)
    assert missing.status_code == 400
    assert _commands(app) == 0


def test_group_jobs_need_confirmation_and_are_rate_limited(app, client, fleet, operator_headers):
    body = {"kind": "disconnect", "meter_ids": [fleet["mine"], fleet["other"]]}
    assert client.post("/api/v1/job/", json=body, headers=operator_headers).status_code == 428
    app.config["HES_JOBS_PER_MINUTE"] = 2
    try:
        codes = [client.post("/api/v1/job/", json={**body, "confirm": True, "expires_in": 60},
                             headers=operator_headers).status_code for _ in range(3)]
    finally:
        app.config["HES_JOBS_PER_MINUTE"] = 10
    assert codes == [201, 201, 429]
    again = client.post("/api/v1/job/", json={**body, "confirm": True, "idempotency_key": "job-1"},
                        headers=operator_headers)
    repeat = client.post("/api/v1/job/", json={**body, "confirm": True, "idempotency_key": "job-1"},
                         headers=operator_headers)
    assert again.status_code == 201 and repeat.status_code == 200 and repeat.json["id"] == again.json["id"]
    assert _commands(app) == 6
    cancelled = client.post(f"/api/v1/job/{again.json['id']}/cancel", headers=operator_headers)
    assert cancelled.json["cancelled"] == 2 and cancelled.json["failed"] == 2 and cancelled.json["finished"]


def test_customer_may_only_load_tokens_on_their_own_meter(app, client, fleet, make_user, api_token):
    headers = api_token(make_user("Customer", customer_id=fleet["ada"]))
    token = "12000123000000000428"
    assert client.post("/api/v1/command/", json={"kind": "disconnect", "meter_id": fleet["mine"]},
                       headers=headers).status_code == 403
    assert client.post("/api/v1/command/token", json={"meter_id": fleet["other"], "token": token},
                       headers=headers).status_code == 404
    own = client.post("/api/v1/command/token", json={"meter_id": fleet["mine"], "token": token}, headers=headers)
    assert own.status_code == 201, own.json
    assert own.json["result"]["state"] == "queued"
    from app.services.settings import set_setting

    with app.app_context():
        set_setting("customer_token_entry", False)
    off = client.post("/api/v1/command/token", json={"meter_id": fleet["mine"], "token": token}, headers=headers)
    assert off.status_code == 403 and "switched off" in off.json["message"]
    assert client.get("/api/v1/command/export", headers=headers).status_code == 403
    assert client.get("/api/v1/job/", headers=headers).status_code == 403


def test_pages_open_for_staff_and_not_for_customers(app, client, fleet, make_user):
    staff = make_user("Operator")
    client.post("/login/", data={"username": staff, "password": "pw-" + staff})
    for url in ("/remote/loading/", "/remote/control/", "/remote/firmware/", "/meter-reading/", "/meter-setting/"):
        resp = client.get(url)
        assert resp.status_code == 200, url
        assert b"rm-" in resp.data or b"fw-page" in resp.data
    client.get("/logout/")
    customer = make_user("Customer", customer_id=fleet["ada"])
    client.post("/login/", data={"username": customer, "password": "pw-" + customer})
    for url in ("/remote/control/", "/meter-setting/"):
        assert client.get(url).status_code in (302, 403), url
