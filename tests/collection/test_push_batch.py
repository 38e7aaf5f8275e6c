"""Pushes stored in batches: one transaction for many meters; a bad frame is skipped, not fatal."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from app.comms.push import ReceivedPush
from app.extensions import db
from app.models import Alert, Event, Meter, MeterBrand, MeterStatus
from app.services.push_ingest import handle_pushes
from simulator.fleet import Fleet
from simulator.meter import FleetConfig


def test_a_batch_of_pushes_from_many_meters(app):
    fleet = Fleet(3, FleetConfig(history_days=1, start_time=time.time()), prefix="PBT")
    with app.app_context():
        brand = db.session.execute(select(MeterBrand.id).where(MeterBrand.name == "hes_sim")).scalar_one()
        ids = {}
        for m in fleet.meters:
            meter = Meter(number=m.serial, brand_id=brand, status=MeterStatus.active)
            db.session.add(meter)
            db.session.flush()
            ids[m.serial] = meter.id
        db.session.commit()
        a, b, c = fleet.meters
        batch = [ReceivedPush(frame, "127.0.0.1:1", ids[serial]) for serial, frame in (
            (a.serial, fleet.push_frame(a, 11)), (b.serial, fleet.push_frame(b, 10)),
            (c.serial, b"\x00\x01\x00\x01\x00\x01\x00\x03\x0f\x00\x00"),  # truncated notification
            (a.serial, fleet.push_frame(a, 15)))]
        result = handle_pushes(batch)
        assert result == {"pushes": 4, "events": 3, "values": 3, "stored": 3, "undecodable": 1,
                          "unknown_sender": 0, "refused": 0}
        types = dict(db.session.execute(select(Event.event_type, func.count()).group_by(Event.event_type)).all())
        assert types == {"magnetic_tamper": 1, "cover_open": 1, "overload": 1}
        alerts = db.session.execute(select(Alert.alert_type)).scalars().all()
        assert sorted(alerts) == ["cover_open", "magnetic_tamper", "overload"]
