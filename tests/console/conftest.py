"""Fixtures for the console services: a small fleet in two areas with live state, one customer."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Area, AreaKind, Customer, Meter, MeterBrand, MeterStatus

# Yesterday noon: recent, as the dashboard's live figures are (the areas' quarter-hours are only written for
# intervals inside the kept window, ``rollups.QUARTERS_KEPT``), and in the past whatever the time of the run.
NOW = dt.datetime.combine(dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1), dt.time(12, 5), tzinfo=dt.UTC)


@dataclass
class ConsoleFleet:
    """Ids of the fleet: areas and meters by name, Ada's customer id."""

    areas: dict[str, int]
    meters: dict[str, int]
    ada: int


@pytest.fixture
def console_fleet(app) -> ConsoleFleet:
    """North › Kano and South; meters N1 (Kano, online), N2 (Kano, seen before), N3 (North, warehouse, never),
    S1 (South, online), S2 (South, installed, never), D1 (South, decommissioned); Ada owns N1 and N2."""
    with app.app_context():
        north, south = Area(name="North", code="N", kind=AreaKind.region), Area(name="South", code="S")
        db.session.add_all([north, south])
        db.session.flush()
        kano = Area(name="Kano", code="N-K", kind=AreaKind.district, parent_id=north.id)
        db.session.add(kano)
        db.session.flush()
        ada = Customer(account_number="ACC-ADA", name="Ada")
        db.session.add(ada)
        db.session.flush()
        brand = db.session.execute(select(MeterBrand.id).where(MeterBrand.name == "hes_sim")).scalar_one()
        seen = NOW - dt.timedelta(days=2)
        specs = {
            "N1": (kano, MeterStatus.active, True, seen, ada.id),
            "N2": (kano, MeterStatus.active, False, seen, ada.id),
            "N3": (north, MeterStatus.warehouse, False, None, None),
            "S1": (south, MeterStatus.active, True, seen, None),
            "S2": (south, MeterStatus.installed, False, None, None),
            "D1": (south, MeterStatus.decommissioned, False, seen, None),
        }
        meters = {}
        for number, (area, status, online, first_seen, customer) in specs.items():
            meter = Meter(number=number, brand_id=brand, area_id=area.id, status=status, online=online,
                          first_seen=first_seen, last_seen=first_seen and NOW - dt.timedelta(minutes=3),
                          customer_id=customer)
            db.session.add(meter)
            db.session.flush()
            meters[number] = meter.id
        db.session.commit()
        return ConsoleFleet(areas={"North": north.id, "Kano": kano.id, "South": south.id}, meters=meters, ada=ada.id)
