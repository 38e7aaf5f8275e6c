"""Fixtures for the customer's My Meters page: two customers with their meters, and a meter nobody owns.
The browser fixtures come from tests/support/browser.py, shared with every folder."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Customer, Meter, MeterBrand, MeterStatus, RelayState


@dataclass
class CustomerFleet:
    """Customer ids (ada, bob) and meter ids by number."""

    ada: int
    bob: int
    meters: dict[str, int]


@pytest.fixture
def customer_fleet(app) -> CustomerFleet:
    """Ada owns MY-A1 (online, credit 42.5, relay connected) and MY-A2; Bob owns MY-B1; MY-X1 is unassigned."""
    with app.app_context():
        brand = db.session.execute(select(MeterBrand.id).where(MeterBrand.name == "hes_sim")).scalar_one()
        ada = Customer(account_number="ACC-MY-ADA", name="Ada Lovelace", address="12 Analytical Way",
                       phone="+234 800 000 0001", email="ada@example.test")
        bob = Customer(account_number="ACC-MY-BOB", name="Bob Babbage")
        db.session.add_all([ada, bob])
        db.session.flush()
        specs = {"MY-A1": (ada.id, True, 42.5, RelayState.connected),
                 "MY-A2": (ada.id, False, None, RelayState.unknown),
                 "MY-B1": (bob.id, True, 7.0, RelayState.disconnected),
                 "MY-X1": (None, False, None, RelayState.unknown)}
        meters = {}
        for number, (customer_id, online, credit, relay) in specs.items():
            meter = Meter(number=number, brand_id=brand, status=MeterStatus.active, customer_id=customer_id,
                          online=online, credit_balance=credit, relay_state=relay)
            db.session.add(meter)
            db.session.flush()
            meters[number] = meter.id
        db.session.commit()
        return CustomerFleet(ada=ada.id, bob=bob.id, meters=meters)
