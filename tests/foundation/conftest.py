"""Fixtures for the fleet registry tests: a brand, an area tree, SIMs and meters."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import Area, AreaKind, MeterBrand
from app.services.brands import save_brand

BRAND = {
    "name": "acme_sp", "title": "ACME Single Phase", "defaults": {"auth": "low"},
    "points": [{"key": "energy_import", "name": "Active energy import", "obis": "1.0.1.8.0.255",
                "class_id": 3, "attribute": 2, "unit": "kWh", "group": "Energy", "access": "r"}],
}


@pytest.fixture
def brand(app) -> str:
    """A UI-defined brand named ``acme_sp``."""
    with app.app_context():
        if db.session.query(MeterBrand).filter_by(name="acme_sp").first() is None:
            save_brand(dict(BRAND))
            db.session.commit()
    return "acme_sp"


@pytest.fixture
def areas(app) -> dict[str, int]:
    """North › Kano › {Sabon Gari, Fagge} and South › Lagos: name → id."""
    with app.app_context():
        north = Area(name="North", code="N", kind=AreaKind.region)
        south = Area(name="South", code="S", kind=AreaKind.region)
        db.session.add_all([north, south])
        db.session.flush()
        kano = Area(name="Kano", code="N-KAN", kind=AreaKind.district, parent_id=north.id)
        lagos = Area(name="Lagos", code="S-LAG", kind=AreaKind.district, parent_id=south.id)
        db.session.add_all([kano, lagos])
        db.session.flush()
        sabon = Area(name="Sabon Gari", code="N-KAN-SG", parent_id=kano.id)
        fagge = Area(name="Fagge", code="N-KAN-FG", parent_id=kano.id)
        db.session.add_all([sabon, fagge])
        db.session.commit()
        return {a.name: a.id for a in (north, south, kano, lagos, sabon, fagge)}


def upload(client, kind: str, text: str | bytes, headers: dict):
    """POST a CSV to ``/api/v1/<kind>/import``."""
    import io

    data = text.encode() if isinstance(text, str) else text
    return client.post(f"/api/v1/{kind}/import", headers=headers,
                       data={"file": (io.BytesIO(data), f"{kind}s.csv")}, content_type="multipart/form-data")
