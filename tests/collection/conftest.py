"""Fixtures for the collection pipeline: a registered meter to store data for."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Area, CommMode, Meter, MeterBrand, MeterStatus


@pytest.fixture
def meter_id(app) -> int:
    """An active hes_sim meter in an area."""
    with app.app_context():
        area = Area(name="Ingest Ward", code="ING")
        db.session.add(area)
        db.session.flush()
        brand = db.session.execute(select(MeterBrand).where(MeterBrand.name == "hes_sim")).scalar_one()
        meter = Meter(number="ING00000001", brand_id=brand.id, area_id=area.id, status=MeterStatus.active,
                      comm_mode=CommMode.dial_in)
        db.session.add(meter)
        db.session.commit()
        return meter.id
