"""Row-level scope behind the matrix's CUSTOMER_DATA entries: a Customer reaches those endpoints, but only ever
sees or touches rows of their own meters; and live Socket.IO pushes follow the same rule."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from app.extensions import db, socketio
from app.models import Alert, Event
from app.models.commands import Command, CommandState
from app.models.types import UTC
from app.realtime.emit import emit_event
from tests.security.conftest import login_session


@pytest.fixture
def rows(app, two_customers):
    """An alert, an event and a queued command on each customer's meter: ``tag -> {alert, event, command}``."""
    out = {}
    now = dt.datetime.now(UTC)
    with app.app_context():
        for tag, ids in two_customers.items():
            alert = Alert(meter_id=ids["meter_id"], alert_type="magnetic_tamper", title=f"tamper {tag}")
            event = Event(meter_id=ids["meter_id"], ts=now, event_type="magnetic_tamper", code=1)
            command = Command(kind="read", meter_id=ids["meter_id"], params={}, state=CommandState.queued,
                              attempts=0, expires_at=now + dt.timedelta(hours=1))
            db.session.add_all([alert, event, command])
            db.session.flush()
            out[tag] = {"alert": alert.id, "event": event.id, "command": command.id, **ids}
        db.session.commit()
    return out


def test_customer_lists_only_own_rows(role_clients, rows):
    client, headers = role_clients["Customer"]
    own, other = rows["A"], rows["B"]
    for path, key in (("meter", "meter_id"), ("alert", "alert"), ("event", "event"), ("command", "command"),
                      ("customer", "customer_id")):
        resp = client.get(f"/api/v1/{path}/", headers=headers)
        assert resp.status_code == 200, (path, resp.get_data(as_text=True))
        assert resp.json["ids"] == [own[key]], path
        assert client.get(f"/api/v1/{path}/{other[key]}", headers=headers).status_code == 404, path
        assert client.get(f"/api/v1/{path}/{own[key]}", headers=headers).status_code == 200, path


def test_customer_filters_cannot_widen_the_scope(role_clients, rows):
    """A rison filter naming another customer's meter or id finds nothing (filters AND with the base filter)."""
    client, headers = role_clients["Customer"]
    other = rows["B"]
    for path, column, value in (("meter", "id", other["meter_id"]), ("alert", "meter_id", other["meter_id"]),
                                ("event", "meter_id", other["meter_id"]), ("command", "meter_id", other["meter_id"]),
                                ("customer", "id", other["customer_id"])):
        q = f"(filters:!((col:{column},opr:eq,value:{value})))"
        resp = client.get(f"/api/v1/{path}/?q={q}", headers=headers)
        assert resp.status_code in (200, 400), resp.get_data(as_text=True)
        assert resp.status_code == 400 or resp.json["count"] == 0, path


def test_customer_cannot_act_on_another_customers_meter(app, role_clients, rows):
    client, headers = role_clients["Customer"]
    other = rows["B"]
    token = {"meter_id": other["meter_id"], "token": "12345678901234567890"}
    assert client.post("/api/v1/command/token", json=token, headers=headers).status_code == 404
    assert client.get(f"/api/v1/meter/{other['meter_id']}/gaps", headers=headers).status_code == 404
    resp = client.get(f"/api/v1/my/consumption?meter_id={other['meter_id']}", headers=headers)
    assert resp.status_code in (403, 404), resp.get_data(as_text=True)
    # Other command kinds are staff operations, even on the customer's own meter.
    own = {"kind": "disconnect", "meter_id": rows["A"]["meter_id"]}
    assert client.post("/api/v1/command/", json=own, headers=headers).status_code == 403
    with app.app_context():
        kinds = db.session.execute(select(Command.kind).where(Command.meter_id == other["meter_id"])).scalars().all()
    assert kinds == ["read"]


def _socket(app, role_clients, role):
    client, _headers = role_clients[role]
    sock = socketio.test_client(app, flask_test_client=client)
    assert sock.is_connected()
    sock.get_received()
    return sock


def test_socket_rooms_follow_the_customer_scope(app, role_clients, rows):
    customer, operator = _socket(app, role_clients, "Customer"), _socket(app, role_clients, "Operator")
    try:
        with app.app_context():
            emit_event("alert_raised", {"id": rows["B"]["alert"]}, customer_id=rows["B"]["customer_id"])
            emit_event("alert_raised", {"id": rows["A"]["alert"]}, customer_id=rows["A"]["customer_id"])
            emit_event("unregistered_connection", {"identity": "X"})
        heard = [(e["name"], e["args"][0]) for e in customer.get_received()]
        assert heard == [("alert_raised", {"id": rows["A"]["alert"]})]
        staff_heard = [(e["name"], e["args"][0]) for e in operator.get_received()]
        assert len(staff_heard) == 3
    finally:
        customer.disconnect()
        operator.disconnect()


def test_anonymous_and_forged_sockets_are_refused(app):
    assert not socketio.test_client(app).is_connected()
    assert not socketio.test_client(app, auth={"token": "not.a.jwt"}).is_connected()


def test_socket_accepts_a_jwt(app, role_clients, api_token, make_user):
    headers = api_token(make_user("Operator"))
    sock = socketio.test_client(app, auth={"token": headers["Authorization"].split()[1]})
    assert sock.is_connected()
    sock.disconnect()


def test_user_without_a_hes_role_is_not_staff_on_the_socket(app, make_user):
    """Only Admin and Operator users may join the staff room, which hears every meter of every customer."""
    with app.app_context():
        sm = app.appbuilder.sm
        role = sm.find_role("Public") or sm.add_role("Public")
        user = sm.add_user("t_sec_norole", "No", "Role", "t_sec_norole@example.test", role, password="pw-t_sec_norole")
        assert user is not None
    client = app.test_client()
    login_session(client, "t_sec_norole")
    sock = socketio.test_client(app, flask_test_client=client)
    try:
        with app.app_context():
            emit_event("alert_raised", {"id": 1})
        assert not sock.is_connected() or sock.get_received() == []
    finally:
        if sock.is_connected():
            sock.disconnect()


def test_socket_refuses_a_refresh_token(app, client, make_user):
    """A refresh token (long-lived, meant only for ``/security/refresh``) is not a way into the live feed."""
    username = make_user("Operator")
    tokens = client.post("/api/v1/security/login", json={"username": username, "password": "pw-" + username,
                                                          "provider": "db", "refresh": True}).json
    assert not socketio.test_client(app, auth={"token": tokens["refresh_token"]}).is_connected()
    sock = socketio.test_client(app, auth={"token": tokens["access_token"]})
    assert sock.is_connected()
    sock.disconnect()
