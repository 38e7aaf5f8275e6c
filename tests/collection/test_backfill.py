"""Profile collection against a simulated meter over a real socket: gaps come back, nothing twice."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import delete, func, select

from app.extensions import db
from app.models import (
    Channel,
    CollectionCursor,
    ConsumptionDaily,
    Meter,
    Reading,
)
from app.services.meter_access import execute_local
from app.services.rollups import recompute_days
from tests.support.simulator import register_meters, start_simulator

UTC = dt.UTC
IMPORT = "1.0.1.8.0.255"


@pytest.fixture(scope="module")
def sim():
    """One listening (dial-out) simulated meter with 4 days of history."""
    process = start_simulator(meters=1, history_days=4, seed=23, first_serial=9001, extra=["--prefix", "BKF"])
    yield process
    process.stop()


@pytest.fixture
def meter_id(app, sim):
    """The simulated meter registered for dial-out with the brand's password."""
    with app.app_context():
        return register_meters(sim, [0], prefix="BKF")[0]


def stored_import(meter_id: int) -> list[tuple[dt.datetime, float]]:
    return list(db.session.execute(select(Reading.ts, Reading.value).join(Channel).where(
        Reading.meter_id == meter_id, Channel.obis == IMPORT).order_by(Reading.ts)).tuples())


def test_two_day_outage_is_backfilled_without_gap_or_duplicate(app, sim, meter_id):
    expected = sim.model_meter(0)
    with app.app_context():
        app.config["HES_BACKFILL_DAYS"] = 3
        first = execute_local(meter_id, "collect_load_profile")
        assert first["inserted"] > 0
        # The meter was unreachable for two days: nothing after that point was ever collected (nor counted in the
        # rollups, which the ingest keeps in step only with what it stores).
        outage_start = dt.datetime.now(UTC) - dt.timedelta(days=2)
        db.session.execute(delete(Reading).where(Reading.meter_id == meter_id, Reading.ts > outage_start))
        recompute_days(meter_id, outage_start, dt.datetime.now(UTC))
        cursor = db.session.get(CollectionCursor, (meter_id, "load_profile"))
        cursor.last_ts = max(ts for ts, _v in stored_import(meter_id))
        db.session.commit()
        before = len(stored_import(meter_id))
        again = execute_local(meter_id, "collect_load_profile")
        rows = stored_import(meter_id)
        assert again["inserted"] > 0 and len(rows) > before
        # Every 15-minute interval from the first to the last is there, exactly once, with the meter's value.
        stamps = [ts for ts, _v in rows]
        assert len(stamps) == len(set(stamps))
        assert all(b - a == dt.timedelta(minutes=15) for a, b in zip(stamps, stamps[1:], strict=False))
        assert all(value == expected.import_wh(ts.timestamp()) for ts, value in rows)
        from app.services.collection import missing_ranges

        assert missing_ranges(meter_id, stamps[0], stamps[-1], dt.timedelta(minutes=15)) == []
        # Replaying the same read stores nothing new.
        replay = execute_local(meter_id, "collect_load_profile")
        assert replay["inserted"] == 0 and len(stored_import(meter_id)) == len(rows)
        # The daily rollups agree with the register: energy of a full day = difference of midnights.
        day = db.session.execute(select(ConsumptionDaily).where(ConsumptionDaily.meter_id == meter_id)
                                 .order_by(ConsumptionDaily.bucket).offset(1).limit(1)).scalar_one()
        start, end = day.bucket.timestamp(), (day.bucket + dt.timedelta(days=1)).timestamp()
        assert day.import_wh == expected.import_wh(end) - expected.import_wh(start)
        assert day.intervals == 96


def test_events_and_clock_sync(app, sim, meter_id):
    sim.post(f"/meters/{sim.serial(0)}/event", {"code": 11})  # magnetic tamper in the meter's log
    sim.post(f"/meters/{sim.serial(0)}/clock", {"offset_seconds": 95})
    with app.app_context():
        result = execute_local(meter_id, "collect_events")
        assert result["new_events"] >= 1
        again = execute_local(meter_id, "collect_events")
        assert again["new_events"] == 0  # re-reading the log adds nothing
        from app.models import Alert, Event

        tamper = db.session.execute(select(Event).where(Event.meter_id == meter_id,
                                                        Event.event_type == "magnetic_tamper")).scalars().all()
        assert len(tamper) == 1
        alert = db.session.execute(select(Alert).where(Alert.meter_id == meter_id,
                                                       Alert.alert_type == "magnetic_tamper")).scalar_one()
        assert alert.severity.value == "critical" and alert.count == 1
        clock = execute_local(meter_id, "sync_clock")
        assert clock["corrected"] is True and 90 <= clock["drift_seconds"] <= 100
        assert db.session.get(Meter, meter_id).clock_drift_seconds == clock["drift_seconds"]
        after = execute_local(meter_id, "sync_clock")
        assert after["corrected"] is False and abs(after["drift_seconds"]) < 5
        assert db.session.execute(select(func.count()).select_from(Event).where(
            Event.meter_id == meter_id, Event.event_type == "clock_set")).scalar() == 1
