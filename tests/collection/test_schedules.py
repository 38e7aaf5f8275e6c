"""Schedules enqueue the right collection tasks, for the right meters, spread over their window."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Area, CommMode, Meter, MeterBrand, MeterStatus, Schedule
from app.services.schedules import next_run

UTC = dt.UTC


@pytest.fixture
def fleet(app):
    """Meters in two areas: online/offline dial-in, dial-out, and one still in the warehouse."""
    with app.app_context():
        north, south = Area(name="North", code="SN"), Area(name="South", code="SS")
        db.session.add_all([north, south])
        db.session.flush()
        brand = db.session.execute(select(MeterBrand).where(MeterBrand.name == "hes_sim")).scalar_one()
        spec = [("A1", north, CommMode.dial_in, True, MeterStatus.active),
                ("A2", north, CommMode.dial_in, False, MeterStatus.active),      # offline: skipped
                ("A3", north, CommMode.dial_out, False, MeterStatus.installed),  # dial-out: always tried
                ("B1", south, CommMode.dial_in, True, MeterStatus.active),
                ("B2", south, CommMode.dial_in, True, MeterStatus.warehouse)]    # not in service: skipped
        ids = {}
        for number, area, mode, online, status in spec:
            meter = Meter(number=number, brand_id=brand.id, area_id=area.id, comm_mode=mode, online=online,
                          status=status)
            db.session.add(meter)
            db.session.flush()
            ids[number] = meter.id
        db.session.execute(Schedule.__table__.update().values(enabled=False))
        db.session.add_all([
            Schedule(name="profiles", kind="load_profile", interval_minutes=15, spread_seconds=600),
            Schedule(name="north clock", kind="clock_sync", area_id=north.id, interval_minutes=1440,
                     spread_seconds=600),
        ])
        db.session.commit()
        yield ids
        db.session.execute(Schedule.__table__.delete().where(Schedule.name.in_(["profiles", "north clock"])))
        db.session.execute(Schedule.__table__.update().values(enabled=True))
        db.session.commit()


def test_due_schedules_enqueue_reads_for_reachable_meters(app, fleet, huey_immediate):
    from app.tasks.jobs import dispatch_due_schedules

    with app.app_context():
        planned = dispatch_due_schedules()
        assert planned == {"load_profile": 3, "clock_sync": 2}
        scheduled = sorted((task.args[1], task.args[0]) for task in huey_immediate.scheduled())
        assert scheduled == sorted([("load_profile", fleet["A1"]), ("load_profile", fleet["A3"]),
                                    ("load_profile", fleet["B1"]), ("clock_sync", fleet["A1"]),
                                    ("clock_sync", fleet["A3"])])
        # Jitter: the tasks are spread over the window, not all at the same second.
        etas = {task.eta for task in huey_immediate.scheduled()}
        assert len(etas) == 5
        # Nothing is due again until the next slot.
        assert dispatch_due_schedules() == {}
        profile = db.session.execute(select(Schedule).where(Schedule.name == "profiles")).scalar_one()
        assert profile.last_meters == 3 and profile.next_run_at > profile.last_run_at


def test_next_run_follows_local_time(app):
    with app.app_context():
        app.config["HES_TIMEZONE"] = "Asia/Kolkata"
        try:
            daily = Schedule(name="x", kind="daily_snapshot", interval_minutes=1440, offset_minutes=15)
            after = dt.datetime(2026, 5, 1, 12, 0, tzinfo=UTC)  # 17:30 in Kolkata
            assert next_run(daily, after) == dt.datetime(2026, 5, 1, 18, 45, tzinfo=UTC)  # 00:15 local
            quarter = Schedule(name="y", kind="load_profile", interval_minutes=15, offset_minutes=2)
            assert next_run(quarter, dt.datetime(2026, 5, 1, 12, 3, tzinfo=UTC)) == dt.datetime(
                2026, 5, 1, 12, 17, tzinfo=UTC)
        finally:
            app.config["HES_TIMEZONE"] = "UTC"
