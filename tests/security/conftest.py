"""Fixtures for the security tests: one signed-in client per role, and two customers with a meter each."""

from __future__ import annotations

import uuid

import pytest

from app.extensions import db
from app.models import Customer, Meter, MeterBrand
from app.services.brands import save_brand

ROLES = ("anonymous", "Customer", "Operator", "Admin")
BRAND = {
    "name": "sec_brand", "title": "Security Test Brand", "defaults": {"auth": "low"},
    "points": [{"key": "energy_import", "name": "Active energy import", "obis": "1.0.1.8.0.255",
                "class_id": 3, "attribute": 2, "unit": "kWh", "group": "Energy", "access": "r"}],
}


@pytest.fixture
def two_customers(app) -> dict:
    """Customers A and B with one meter each (the Customer-role user is linked to A)."""
    with app.app_context():
        brand = db.session.query(MeterBrand).filter_by(name=BRAND["name"]).first()
        if brand is None:
            brand = save_brand(dict(BRAND))
            db.session.commit()
        out = {}
        for tag in ("A", "B"):
            customer = Customer(account_number=f"SEC-{tag}", name=f"Customer {tag}", address="1 Road",
                                phone="0800000000")
            db.session.add(customer)
            db.session.flush()
            meter = Meter(number=f"SEC-M-{tag}", concentrator_id="D1", brand_id=brand.id, customer_id=customer.id)
            db.session.add(meter)
            db.session.flush()
            out[tag] = {"customer_id": customer.id, "meter_id": meter.id}
        db.session.commit()
        return out


def login_session(client, username: str) -> None:
    """Sign a test client in through the login form (cookie session, as a browser)."""
    resp = client.post("/login/", data={"username": username, "password": "pw-" + username})
    assert resp.status_code == 302 and "/login" not in resp.headers.get("Location", ""), resp.get_data(as_text=True)


@pytest.fixture
def role_clients(app, make_user, two_customers):
    """``role -> (test client signed in by cookie, JWT headers)``; anonymous has neither."""
    clients = {"anonymous": (app.test_client(), {})}
    for role in ROLES[1:]:
        customer_id = two_customers["A"]["customer_id"] if role == "Customer" else None
        username = make_user(role, f"t_sec_{role.lower()}_{uuid.uuid4().hex[:6]}", customer_id=customer_id)
        client = app.test_client()
        resp = client.post("/api/v1/security/login",
                           json={"username": username, "password": "pw-" + username, "provider": "db"})
        assert resp.status_code == 200, resp.get_data(as_text=True)
        headers = {"Authorization": f"Bearer {resp.json['access_token']}"}
        login_session(client, username)
        clients[role] = (client, headers)
    return clients
