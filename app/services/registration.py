"""Registering a meter that dialled in or pushed before anyone added it (a dial-in keeps its live connection)."""

from __future__ import annotations

from sqlalchemy import select

from app.comms.node import get_node
from app.extensions import db
from app.models import CommMode, Meter, MeterBrand, MeterStatus, UnregisteredConnection
from app.services import NotFound, ServiceError, audit


def register_connection(connection_id: int, brand_name: str, area_id: int | None = None,
                        concentrator_id: str | None = None, number: str | None = None) -> Meter:
    """Create the meter for an unregistered connection or push and attach its live socket if any.

    ``number`` overrides the listed identity (a push known only by its system title); the system
    title of a ciphered push is kept so the meter's next pushes are recognised."""
    row = db.session.get(UnregisteredConnection, connection_id)
    if row is None:
        raise NotFound(f"Unregistered connection {connection_id} not found.")
    brand = db.session.execute(select(MeterBrand).where(MeterBrand.name == brand_name)).scalar()
    if brand is None:
        raise ServiceError(f"Unknown meter type '{brand_name}'.", status=422,
                           errors=[{"column": "brand", "reason": "unknown meter type", "value": brand_name}])
    number = (number or "").strip() or row.identity
    if db.session.execute(select(Meter.id).where(Meter.number == number)).scalar() is not None:
        raise ServiceError(f"Meter {number} is already registered.", status=409)
    if row.system_title and db.session.execute(
            select(Meter.id).where(Meter.system_title == row.system_title)).scalar() is not None:
        raise ServiceError(f"System title {row.system_title} already belongs to a registered meter.", status=409)
    meter = Meter(number=number, brand_id=brand.id, area_id=area_id, concentrator_id=concentrator_id,
                  status=MeterStatus.installed, comm_mode=CommMode.dial_in, system_title=row.system_title)
    db.session.add(meter)
    identity = row.identity
    db.session.delete(row)
    audit.record("register", "meter", None, f"registered {row.kind or 'dial_in'} meter {number} ({brand.name})")
    db.session.commit()
    node = get_node()
    if node is not None:
        node.adopt(identity)  # other nodes adopt theirs on the meter's next heartbeat
    return meter
