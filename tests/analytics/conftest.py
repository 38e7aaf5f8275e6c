"""Fixtures for reports and analytics: a small fleet in two wards, and helpers that fill the rollups."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select

from app.extensions import db
from app.models import Area, CommMode, ConsumptionDaily, ConsumptionHourly, Customer, Meter, MeterBrand, MeterStatus
from app.services.ingest import Value

UTC = dt.UTC
IMPORT = "1.0.1.8.0.255"
EXPORT = "1.0.2.8.0.255"
# A household's relative load per local hour (night low, evening peak); sums to 24.
SHAPE = (0.4, 0.35, 0.33, 0.32, 0.33, 0.4, 0.7, 1.4, 1.5, 1.1, 0.85, 0.8,
         0.85, 0.8, 0.75, 0.8, 0.95, 1.3, 1.8, 2.0, 1.9, 1.6, 1.1, 0.77)


@dataclass
class Fleet:
    """Ids of the test fleet: a region with wards A and B, meters and their customers."""

    region: int
    ward_a: int
    ward_b: int
    meters: dict[str, int]
    customers: dict[str, int]


@pytest.fixture
def fleet(app) -> Fleet:
    """Region › Ward A (meters A1–A6) and Ward B (meters B1, B2); every meter has its own customer."""
    with app.app_context():
        brand = db.session.execute(select(MeterBrand).where(MeterBrand.name == "hes_sim")).scalar_one()
        region = Area(name="Test Region", code="T-REG")
        db.session.add(region)
        db.session.flush()
        ward_a = Area(name="Ward A", code="T-A", parent_id=region.id)
        ward_b = Area(name="Ward B", code="T-B", parent_id=region.id)
        db.session.add_all([ward_a, ward_b])
        db.session.flush()
        meters, customers = {}, {}
        for name, area in [(f"A{i}", ward_a) for i in range(1, 7)] + [("B1", ward_b), ("B2", ward_b)]:
            customer = Customer(account_number=f"ACC-{name}", name=f"Customer {name}")
            meter = Meter(number=f"MTR-{name}", brand_id=brand.id, area_id=area.id, status=MeterStatus.active,
                          comm_mode=CommMode.dial_in, customer=customer)
            db.session.add(meter)
            db.session.flush()
            meters[name], customers[name] = meter.id, customer.id
        db.session.commit()
        return Fleet(region.id, ward_a.id, ward_b.id, meters, customers)


def profile(meter_id: int, start: dt.datetime, count: int, wh: float = 250.0, base: float = 10_000.0,
            obis: str = IMPORT) -> list[Value]:
    """A 15-minute cumulative register profile: ``count`` readings from ``start``, ``wh`` per interval."""
    return [Value(meter_id, obis, start + dt.timedelta(minutes=15 * i), base + wh * i) for i in range(count)]


def fill_days(meter_id: int, first: dt.date, daily_kwh: list[float | None], tz: str = "UTC", *,
              shape: tuple[float, ...] = SHAPE, export_kwh: float = 0.0) -> None:
    """Daily and hourly rollups for consecutive local days (None leaves a day without data)."""
    zone = ZoneInfo(tz)
    hourly, daily = [], []
    for offset, kwh in enumerate(daily_kwh):
        if kwh is None:
            continue
        day = first + dt.timedelta(days=offset)
        start = dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(UTC)
        daily.append({"meter_id": meter_id, "bucket": start, "import_wh": kwh * 1000.0,
                      "export_wh": export_kwh * 1000.0, "intervals": 96, "on_time": 96})
        for hour in range(24):
            hourly.append({"meter_id": meter_id, "bucket": start + dt.timedelta(hours=hour),
                           "import_wh": kwh * 1000.0 * shape[hour] / sum(shape),
                           "export_wh": export_kwh * 1000.0 / 24, "intervals": 4})
    if daily:
        db.session.execute(insert(ConsumptionDaily), daily)
        db.session.execute(insert(ConsumptionHourly), hourly)
    db.session.commit()


@contextmanager
def timezone(app, name: str) -> Iterator[None]:
    """Run with HES_TIMEZONE set to ``name``."""
    before = app.config["HES_TIMEZONE"]
    app.config["HES_TIMEZONE"] = name
    try:
        yield
    finally:
        app.config["HES_TIMEZONE"] = before
