"""A tamper pushed by a dial-in meter opens one alert that reaches Socket.IO clients within seconds;
acknowledging moves it; a customer's client never hears about another customer's meter."""

from __future__ import annotations

import threading
import time

import pytest
import socketio

from tests.support.live import add_meter, meter


class Listener:
    """A Socket.IO client (JWT auth) that records every event it receives."""

    def __init__(self, url: str, token: str):
        self.events: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        self.client = socketio.Client(reconnection=False)
        self.client.on("*", self._record)
        self.client.connect(url, auth={"token": token}, wait_timeout=10)

    def _record(self, name, data=None):
        with self.lock:
            self.events.append((name, data))

    def names(self, name: str) -> list[dict]:
        with self.lock:
            return [data for n, data in self.events if n == name]

    def close(self):
        self.client.disconnect()


def token_for(hes, username: str, password: str) -> str:
    import requests

    resp = requests.post(f"{hes.url}/api/v1/security/login", timeout=10,
                         json={"username": username, "password": password, "provider": "db"})
    assert resp.status_code == 200, resp.text
    return resp.json()["access_token"]


@pytest.fixture
def customers(hes):
    """Two customers with one meter each, and a Customer-role login for the first."""
    ids = {}
    for i, number in enumerate(("TMP00000001", "TMP00000002"), 1):
        meter_id = add_meter(hes, number)
        resp = hes.api("POST", "/customer/", json={"account_number": f"TMP-ACC-{i}", "name": f"Customer {i}",
                                                   "meters": [meter_id]})
        assert resp.status_code == 201, resp.text
        ids[number] = (meter_id, resp.json()["id"])
    role = hes.api("GET", "/security/roles/?q=(filters:!((col:name,opr:eq,value:Customer)))").json()["ids"][0]
    user = hes.api("POST", "/security/users/", json={
        "first_name": "Cust", "last_name": "One", "username": "tmp_customer", "email": "tmp@example.test",
        "password": "Customer-Pw-1", "active": True, "roles": [role]})
    assert user.status_code == 201, user.text
    return ids, user.json()["id"]


def test_tamper_push_reaches_alerts_and_socket_clients(hes, simulators, customers):
    ids, customer_user_id = customers
    link = hes.api("PUT", f"/customer/{ids['TMP00000001'][1]}", json={"user": customer_user_id})
    assert link.status_code == 200, link.text
    staff = Listener(hes.url, token_for(hes, "admin", hes.password))
    customer = Listener(hes.url, token_for(hes, "tmp_customer", "Customer-Pw-1"))
    sim = simulators(meters=2, listen=False, dial_in=hes.meter_address, first_serial=1, extra=["--prefix", "TMP"])
    try:
        for number in ids:
            hes.wait_for(lambda number=number: meter(hes, ids[number][0])["online"], what=f"{number} online")
        # Tamper on the second customer's meter: staff hear it, the first customer must not.
        started = time.monotonic()
        sim.post(f"/meters/{sim.serial(1)}/fault", {"kind": "magnet"})
        raised = hes.wait_for(lambda: staff.names("alert_raised"), timeout=15, what="alert_raised on staff socket")
        latency = time.monotonic() - started
        assert raised[0]["number"] == "TMP00000002" and raised[0]["alert_type"] == "magnetic_tamper"
        assert latency < 5
        alerts = hes.api("GET", "/alert/?q=(filters:!((col:state,opr:eq,value:active),"
                                "(col:alert_type,opr:eq,value:magnetic_tamper)))").json()
        assert alerts["count"] == 1 and alerts["result"][0]["meter"]["number"] == "TMP00000002"
        # A second tamper of the same kind folds into the same alert.
        sim.post(f"/meters/{sim.serial(1)}/push", {"code": 11})
        hes.wait_for(lambda: len(staff.names("alert_raised")) >= 2, timeout=15, what="second alert_raised")
        again = hes.api("GET", f"/alert/{alerts['ids'][0]}").json()["result"]
        assert again["count"] == 2
        ack = hes.api("POST", "/alert/acknowledge", json={"ids": alerts["ids"], "comment": "field crew sent"})
        assert ack.status_code == 200 and ack.json()["state"] == "acknowledged"
        hes.wait_for(lambda: staff.names("alert_acknowledged"), timeout=10, what="alert_acknowledged")
        active = hes.api("GET", "/alert/?q=(filters:!((col:state,opr:eq,value:active),"
                                "(col:alert_type,opr:eq,value:magnetic_tamper)))").json()
        assert active["count"] == 0
        # The event stays in the event log.
        events = hes.api("GET", "/event/?q=(filters:!((col:event_type,opr:eq,value:magnetic_tamper)))").json()
        assert events["count"] >= 1
        # The customer's socket saw nothing of the other customer's meter.
        seen = [data for _name, data in customer.events if isinstance(data, dict)]
        assert all(d.get("number") != "TMP00000002" and d.get("meter_id") != ids["TMP00000002"][0] for d in seen)
        # ...but does hear about their own meter.
        sim.post(f"/meters/{sim.serial(0)}/fault", {"kind": "cover_open"})
        own = hes.wait_for(lambda: customer.names("alert_raised"), timeout=15, what="customer's own alert")
        assert own[0]["number"] == "TMP00000001"
    finally:
        staff.close()
        customer.close()
