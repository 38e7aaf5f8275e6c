"""Audit completeness: who changed what, for the changes an attacker or a careless admin would make.

Covered here: user role grants, password changes (recorded without the value), data-pusher targets and
collection schedules (CRUD), credentials and webhook secrets (never the values), imports, commands and
acknowledgements. The ORM listener in app/services/audit.py records CRUD; services record the rest.
"""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Alert, AuditLog

SECRET_VALUES = ("pw-secret-0001", "000102030405060708090a0b0c0d0e0f", "s3cr3t-webhook-signing-key")


def audit_rows(app, object_type: str | None = None, action: str | None = None) -> list[AuditLog]:
    with app.app_context():
        stmt = select(AuditLog).order_by(AuditLog.id)
        if object_type:
            stmt = stmt.where(AuditLog.object_type == object_type)
        if action:
            stmt = stmt.where(AuditLog.action == action)
        rows = db.session.execute(stmt).scalars().all()
        db.session.expunge_all()
        return rows


def no_secret_in_audit(app) -> None:
    text = json.dumps([[r.summary, r.details] for r in audit_rows(app)], default=str)
    for value in SECRET_VALUES:
        assert value not in text


@pytest.fixture
def admin(make_user, api_token):
    return api_token(make_user("Admin"))


def _role_id(client, headers, name: str) -> int:
    resp = client.get(f"/api/v1/security/roles/?q=(filters:!((col:name,opr:eq,value:{name})))", headers=headers)
    return resp.json["ids"][0]


def test_granting_a_role_is_audited_with_the_role(app, client, admin, make_user):
    username = make_user("Operator")
    with app.app_context():
        user_id = app.appbuilder.sm.find_user(username=username).id
    admin_role = _role_id(client, admin, "Admin")
    resp = client.put(f"/api/v1/security/users/{user_id}", json={"roles": [admin_role]}, headers=admin)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    updates = [r for r in audit_rows(app, "ab_user", "update") if r.object_id == str(user_id)]
    assert updates, "a role grant left no audit row"
    roles = updates[-1].details["roles"]
    assert roles["added"] == ["Admin"] and roles["removed"] == ["Operator"]
    assert updates[-1].username != "system"


def test_password_change_is_audited_without_the_value(app, client, admin, make_user):
    username = make_user("Operator")
    with app.app_context():
        user_id = app.appbuilder.sm.find_user(username=username).id
    resp = client.put(f"/api/v1/security/users/{user_id}", json={"password": SECRET_VALUES[0]}, headers=admin)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    updates = [r for r in audit_rows(app, "ab_user", "update") if r.object_id == str(user_id)]
    assert updates and updates[-1].details.get("password") == "changed"
    no_secret_in_audit(app)


def test_signing_in_is_not_an_audited_change(app, client, make_user, api_token):
    """Login bookkeeping (last_login, login_count) would drown the trail: it is left out."""
    api_token(make_user("Operator"))
    assert audit_rows(app, "ab_user", "update") == []


def test_subscription_and_schedule_changes_are_audited(app, client, admin):
    resp = client.post("/api/v1/subscription/", headers=admin,
                       json={"name": "t-hook", "kind": "webhook", "url": "https://example.test/hook"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    sub_id = resp.json["id"]
    assert client.put(f"/api/v1/subscription/{sub_id}", json={"url": "https://attacker.test/x"},
                      headers=admin).status_code == 200
    assert client.put(f"/api/v1/subscription/{sub_id}/secret", json={"secret": SECRET_VALUES[2]},
                      headers=admin).status_code == 200
    assert client.delete(f"/api/v1/subscription/{sub_id}", headers=admin).status_code == 200
    actions = [(r.action, r.details) for r in audit_rows(app, "subscription")]
    names = [a for a, _d in actions]
    assert names[:2] == ["create", "update"] and names[-1] == "delete" and "credentials" in names
    assert actions[1][1]["url"] == ["https://example.test/hook", "https://attacker.test/x"]
    # The secret's own ORM update says only that it changed.
    assert all(d.get("secret_enc") in (None, "changed") for a, d in actions if a == "update" and d)

    resp = client.post("/api/v1/schedule/", headers=admin, json={"name": "t-sched", "kind": "load_profile",
                                                                 "interval_minutes": 15})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert [r.action for r in audit_rows(app, "schedule")] == ["create"]
    no_secret_in_audit(app)


def test_credentials_changes_are_audited_without_values(app, client, admin, two_customers):
    meter_id = two_customers["A"]["meter_id"]
    body = {"password": SECRET_VALUES[0], "block_cipher_key": SECRET_VALUES[1], "authentication_key": SECRET_VALUES[1]}
    resp = client.put(f"/api/v1/meter/{meter_id}/credentials", json=body, headers=admin)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert SECRET_VALUES[0] not in resp.get_data(as_text=True)
    rows = audit_rows(app, "meter", "credentials")
    assert rows and rows[-1].details["fields"] == ["authentication_key", "block_cipher_key", "password"]
    no_secret_in_audit(app)


def test_imports_commands_and_acknowledgements_are_audited(app, client, admin, two_customers):
    data = {"file": (io.BytesIO(b"Sim Number,IP Address,Port\nT-SIM-1,10.1.2.3,4059\n"), "sims.csv")}
    assert client.post("/api/v1/sim/import", data=data, headers=admin,
                       content_type="multipart/form-data").status_code == 200
    assert [r.action for r in audit_rows(app, "sim")] == ["import"]

    resp = client.post("/api/v1/command/", json={"kind": "disconnect", "meter_id": two_customers["A"]["meter_id"]},
                       headers=admin)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert [r.action for r in audit_rows(app, "command")] == ["command"]

    with app.app_context():
        alert = Alert(meter_id=two_customers["A"]["meter_id"], alert_type="magnetic_tamper", title="tamper")
        db.session.add(alert)
        db.session.commit()
        alert_id = alert.id
    resp = client.post("/api/v1/alert/acknowledge", json={"ids": [alert_id], "comment": "seen"}, headers=admin)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    rows = audit_rows(app, "alert", "acknowledge")
    assert len(rows) == 1 and rows[0].object_id == str(alert_id) and rows[0].username != "system"
