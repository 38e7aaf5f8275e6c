"""A scheduled profile read that comes back empty while the meter holds entries is a failure: retried with
backoff, visible as an alert with the meter's reason, and the alert resolves when a retry reads the profile."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Alert, AlertState, Reading
from tests.support.simulator import register_meters, start_simulator


@pytest.fixture
def sim():
    """A dial-out meter whose range read answers nothing and whose entry read is refused."""
    process = start_simulator(meters=1, history_days=1, first_serial=1,
                              extra=["--prefix", "RFL", "--behaviour", "range_empty",
                                     "--behaviour", "entry_unsupported"])
    yield process
    process.stop()


def test_empty_profile_read_is_retried_and_alerted_until_a_retry_reads_it(app, sim, huey_immediate):
    from app.tasks.jobs import collect

    with app.app_context():
        [meter_id] = register_meters(sim, [0], prefix="RFL")

        def alerts() -> list[Alert]:
            db.session.expire_all()
            return db.session.execute(select(Alert).where(Alert.meter_id == meter_id,
                                                          Alert.alert_type == "profile_read_failed")).scalars().all()

        assert collect.call_local(meter_id, "load_profile") is None
        [alert] = alerts()
        assert alert.state == AlertState.active and "retry 1 follows" in alert.title
        assert "holds" in alert.details["reason"] and "entry read refused" in alert.details["reason"]
        retries = [task for task in huey_immediate.scheduled() if task.args == (meter_id, "load_profile", 1)]
        assert len(retries) == 1  # retried with backoff
        assert db.session.execute(select(Reading.id).where(Reading.meter_id == meter_id)).first() is None

        assert collect.call_local(meter_id, "load_profile", 1) is None  # the retry fails again: folded
        assert alerts()[0].count == 2

        sim.post(f"/meters/{sim.serial(0)}/behaviour", {"name": "entry_unsupported", "active": False})
        result = collect.call_local(meter_id, "load_profile", 2)  # the next retry reads by entry
        assert result["inserted"] > 0
        assert alerts()[0].state == AlertState.resolved

        app.config["HES_COLLECT_RETRIES"] = 1
        sim.post(f"/meters/{sim.serial(0)}/behaviour", {"name": "entry_unsupported"})
        db.session.execute(Reading.__table__.delete().where(Reading.meter_id == meter_id))
        db.session.commit()
        try:
            from app.services.meter_access import object_cache_for

            object_cache_for(meter_id).profile_methods.clear()
            assert collect.call_local(meter_id, "load_profile", 1) is None  # the last attempt: no more retries
        finally:
            app.config.pop("HES_COLLECT_RETRIES", None)
        newest = max(alerts(), key=lambda a: a.id)
        assert newest.state == AlertState.active and "gave up after 2 attempts" in newest.title


def test_collection_is_retried_when_the_database_goes_away(app, huey_immediate, monkeypatch, caplog):
    """A database restart mid-collection (seen in the 5,000-meter soak: psycopg's AdminShutdown) fails the task's
    statements, not the meter: the collection is rescheduled with backoff, and the last attempt gives up quietly."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    import app.services.meter_access as meter_access
    from app.tasks.jobs import collect

    def database_went_away(meter_id, operation, **_kwargs):
        raise OperationalError("INSERT INTO reading ...", {}, Exception(
            "terminating connection due to administrator command"))

    monkeypatch.setattr(meter_access, "run_on_meter", database_went_away)
    with app.app_context():
        app.config["HES_COLLECT_RETRIES"] = 2
        assert collect.call_local(41, "load_profile") is None
        assert [task.args for task in huey_immediate.scheduled()] == [(41, "load_profile", 1)]
        assert "database unavailable (terminating connection" in caplog.text and "retrying" in caplog.text
        assert collect.call_local(41, "load_profile", 2) is None  # the last attempt: no further retry
        assert [task.args for task in huey_immediate.scheduled()] == [(41, "load_profile", 1)]
        assert "no retries left" in caplog.text

        def bad_sql(meter_id, operation, **_kwargs):
            raise ProgrammingError("SELECT nonsense", {}, Exception("syntax error"))

        monkeypatch.setattr(meter_access, "run_on_meter", bad_sql)
        with pytest.raises(ProgrammingError):  # a defect is not retried as if the database were away
            collect.call_local(41, "load_profile")
