"""Registering a meter that dialled in before anyone added it (keeps its live connection)."""

from __future__ import annotations

from sqlalchemy import select

from app.comms.node import get_node
from app.extensions import db
from app.models import CommMode, Meter, MeterBrand, MeterStatus, UnregisteredConnection
from app.services import NotFound, ServiceError, audit


def register_connection(connection_id: int, brand_name: str, area_id: int | None = None,
                        concentrator_id: str | None = None) -> Meter:
    """Create the meter for an unregistered dial-in connection and attach its live socket."""
    row = db.session.get(UnregisteredConnection, connection_id)
    if row is None:
        raise NotFound(f"Unregistered connection {connection_id} not found.")
    brand = db.session.execute(select(MeterBrand).where(MeterBrand.name == brand_name)).scalar()
    if brand is None:
        raise ServiceError(f"Unknown meter type '{brand_name}'.", status=422,
                           errors=[{"column": "brand", "reason": "unknown meter type", "value": brand_name}])
    if db.session.execute(select(Meter.id).where(Meter.number == row.identity)).scalar() is not None:
        raise ServiceError(f"Meter {row.identity} is already registered.", status=409)
    meter = Meter(number=row.identity, brand_id=brand.id, area_id=area_id, concentrator_id=concentrator_id,
                  status=MeterStatus.installed, comm_mode=CommMode.dial_in)
    db.session.add(meter)
    identity = row.identity
    db.session.delete(row)
    audit.record("register", "meter", None, f"registered dial-in meter {identity} ({brand.name})")
    db.session.commit()
    node = get_node()
    if node is not None:
        node.adopt(identity)  # other nodes adopt theirs on the meter's next heartbeat
    return meter
