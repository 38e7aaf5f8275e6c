"""``POST /api/v1/meter/<id>/read`` with the REST layer's per-process shortcuts (verified tokens kept, the user and
the grants' stamp read in one statement, the scope in the meter's statement, the audit row as one INSERT): every
read is still permission-checked, scope-checked and audited, and a revoked token or a deactivated user is refused
at the very next request (real sockets, the simulator)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditLog, Meter
from tests.sessions.test_read_cache import _dial_out_meter, sim  # noqa: F401  (sim: a fixture)


@pytest.fixture
def fast_app(app):
    fast = {"HES_DIAL_ATTEMPTS": 1, "HES_RESPONSE_TIMEOUT": 3}
    saved = {k: app.config[k] for k in fast if k in app.config}
    app.config.update(fast)
    yield app
    for key in fast:
        app.config.pop(key, None)
    app.config.update(saved)


def _reads_audited(app) -> list[tuple]:
    with app.app_context():
        return [tuple(r) for r in db.session.execute(
            select(AuditLog.username, AuditLog.object_id, AuditLog.details)
            .where(AuditLog.action == "read").order_by(AuditLog.id))]


def _read(client, meter_id: int, headers: dict):
    return client.post(f"/api/v1/meter/{meter_id}/read", json={"points": ["energy_import"]}, headers=headers)


def test_every_read_is_audited_and_a_revoked_token_is_refused_at_once(fast_app, client, sim, make_user,  # noqa: F811
                                                                       api_token):
    app = fast_app
    with app.app_context():
        meter_id = _dial_out_meter(sim, 0)
    username = make_user("Operator")
    headers = api_token(username)
    for _ in range(2):  # the second read: the token is known to this process
        resp = _read(client, meter_id, headers)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        assert resp.json["results"][0].get("error") is None
    assert _reads_audited(app) == [(username, str(meter_id), {"points": ["energy_import"]})] * 2

    assert _read(client, 99_999_999, headers).status_code == 404  # no meter: not found, nothing audited
    with app.app_context():  # the user signs out everywhere (or is signed out by an Admin)
        from app.services.sessions import revoke_all

        revoke_all(app.appbuilder.sm.find_user(username=username))
    assert _read(client, meter_id, headers).status_code == 401

    headers = api_token(username)  # a new token works; deactivating the user ends it at once
    assert _read(client, meter_id, headers).status_code == 200
    with app.app_context():
        app.appbuilder.sm.find_user(username=username).active = False
        db.session.commit()
    assert _read(client, meter_id, headers).status_code == 401
    assert len(_reads_audited(app)) == 3


def test_a_read_is_scoped_to_the_users_meters_and_follows_the_grants(fast_app, client, sim, make_user,  # noqa: F811
                                                                      api_token):
    """A customer never reads another customer's meter (404, as if it did not exist). Customers may not read at all
    by default; granted the read for the test, the scope still holds, and the grant taken back applies at once."""
    app = fast_app
    from app.models import Customer

    with app.app_context():
        own, other = _dial_out_meter(sim, 0), _dial_out_meter(sim, 1)
        customers = [Customer(account_number=f"RAPI-{tag}", name=f"Read API {tag}", address="1 Road",
                              phone="0800000000") for tag in "AB"]
        db.session.add_all(customers)
        db.session.flush()
        db.session.get(Meter, own).customer_id = customers[0].id
        db.session.get(Meter, other).customer_id = customers[1].id
        db.session.commit()
        customer_id = customers[0].id
    headers = api_token(make_user("Customer", customer_id=customer_id))
    assert _read(client, own, headers).status_code == 403  # the Customer role has no read

    sm = app.appbuilder.sm
    with app.app_context():
        sm.add_permission_role(sm.find_role("Customer"), sm.find_permission_view_menu("can_read", "MeterApi"))
        db.session.commit()
    try:
        assert _read(client, other, headers).status_code == 404
        resp = _read(client, own, headers)
        assert resp.status_code == 200, resp.get_data(as_text=True)
    finally:
        with app.app_context():
            sm.del_permission_role(sm.find_role("Customer"), sm.find_permission_view_menu("can_read", "MeterApi"))
            db.session.commit()
    assert _read(client, own, headers).status_code == 403
    audited = _reads_audited(app)
    assert [r[1] for r in audited] == [str(own)]
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(AuditLog)
                                  .where(AuditLog.action == "read", AuditLog.object_id == str(other))).scalar() == 0
