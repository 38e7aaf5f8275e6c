"""Issue 11, data side: per-profile cursors, source precedence, timestamp checks and event dedupe,
against a simulated meter over real sockets (each test would fail on the code before the cursors)."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import (
    Channel,
    CollectionCursor,
    ConsumptionHourly,
    Event,
    Meter,
    QuarantinedRow,
    Reading,
    ReadingRevision,
    Source,
)
from app.services.meter_access import execute_local
from app.services.push_ingest import handle_push
from simulator import objects
from tests.support.simulator import received_frame, register_meters, start_simulator

UTC = dt.UTC
IMPORT = "1.0.1.8.0.255"
MAX_DEMAND = "1.0.1.6.0.255"
QUARTER = dt.timedelta(minutes=15)


@pytest.fixture(scope="module")
def sim(listener):
    """Six dial-out meters with 70 days of history (two or three billing rows), pushing to the listener."""
    host, port = listener.getsockname()
    process = start_simulator(meters=6, history_days=70, seed=41, first_serial=7001, push_to=f"{host}:{port}",
                              extra=["--prefix", "CUR"])
    yield process
    process.stop()


def register(app, sim, index: int) -> int:
    """Register simulated meter ``index`` for dial-out with the brand's password; returns its id."""
    with app.app_context():
        return register_meters(sim, [index], prefix="CUR")[0]


def push(sim, listener, index: int, code: int = 0) -> bytes:
    """Make meter ``index`` push (event ``code``, 0 = periodic) and return the frame it sent."""
    assert sim.post(f"/meters/{sim.serial(index)}/push", {"code": code})["sent"]
    return received_frame(listener)


def series(meter_id: int, obis: str) -> list[tuple[dt.datetime, float, int]]:
    return list(db.session.execute(select(Reading.ts, Reading.value, Reading.source).join(Channel).where(
        Reading.meter_id == meter_id, Channel.obis == obis).order_by(Reading.ts)).tuples())


def expected_quarters(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    first = dt.datetime.fromtimestamp((int(start.timestamp()) + 899) // 900 * 900, UTC)
    out = []
    while first <= end:
        out.append(first)
        first += QUARTER
    return out


def test_push_on_return_from_outage_still_gets_the_missed_intervals(app, sim, listener):
    meter_id = register(app, sim, 0)
    model = sim.model_meter(0)
    with app.app_context():
        app.config["HES_BACKFILL_DAYS"] = 1
        execute_local(meter_id, "collect_load_profile")
        # An outage of 25 minutes and more: the last reads never happened (the cursor stayed behind).
        cursor = db.session.get(CollectionCursor, (meter_id, "load_profile"))
        outage_from = cursor.last_ts - 3 * QUARTER
        db.session.execute(Reading.__table__.delete().where(Reading.meter_id == meter_id, Reading.ts > outage_from))
        cursor.last_ts = outage_from
        db.session.commit()
        # Back on line, the meter pushes first: the push stores the register at the push time.
        assert handle_push(meter_id, push(sim, listener, 0))["stored"] == 1
        assert series(meter_id, IMPORT)[-1][2] == Source.PUSH
        assert db.session.get(CollectionCursor, (meter_id, "load_profile")).last_ts == outage_from
        result = execute_local(meter_id, "collect_load_profile")
        assert dt.datetime.fromisoformat(result["from"]) == outage_from
        stored = {ts: value for ts, value, source in series(meter_id, IMPORT) if source != Source.PUSH}
        wanted = expected_quarters(outage_from, dt.datetime.fromisoformat(result["to"]))
        assert len(wanted) >= 3 and all(ts in stored for ts in wanted)
        assert all(stored[ts] == model.import_wh(ts.timestamp()) for ts in wanted)


def test_daily_first_does_not_cost_load_profile(app, sim):
    meter_id = register(app, sim, 1)
    with app.app_context():
        app.config["HES_BACKFILL_DAYS"] = 3
        daily = execute_local(meter_id, "collect_daily_snapshot")
        assert daily["rows"] >= 3
        lp = execute_local(meter_id, "collect_load_profile")
        start, end = dt.datetime.fromisoformat(lp["from"]), dt.datetime.fromisoformat(lp["to"])
        assert end - start >= dt.timedelta(days=3) - dt.timedelta(minutes=1)
        stamps = {ts for ts, _v, _s in series(meter_id, IMPORT)}
        assert all(ts in stamps for ts in expected_quarters(start, end))
        cursors = {c.profile: c.last_ts for c in db.session.execute(select(CollectionCursor).where(
            CollectionCursor.meter_id == meter_id)).scalars()}
        assert set(cursors) == {"daily", "load_profile"} and cursors["daily"] < cursors["load_profile"]


def test_billing_beside_load_profile_stores_every_row_and_max_demand(app, sim):
    meter_id = register(app, sim, 2)
    model = sim.model_meter(2)
    months = model.profile_times(objects.BILLING_PROFILE, time.time())
    assert len(months) >= 2
    with app.app_context():
        app.config["HES_BACKFILL_DAYS"] = 80  # the load profile reaches back beyond the first billing row
        execute_local(meter_id, "collect_load_profile")
        billing = execute_local(meter_id, "collect_billing")
        assert billing["rows"] == len(months) and billing["stored"] == 3 * len(months)
        demand = series(meter_id, MAX_DEMAND)
        assert [ts.timestamp() for ts, _v, _s in demand] == months
        assert [v for _t, v, _s in demand] == [model.max_demand(t - 1)[0] for t in months]
        again = execute_local(meter_id, "collect_billing")
        assert again["inserted"] == 0  # the billing cursor: nothing twice


def test_plain_push_never_replaces_a_profile_value_and_rollups_follow_changes(app, sim):
    meter_id = register(app, sim, 3)
    with app.app_context():
        app.config["HES_BACKFILL_DAYS"] = 1
        execute_local(meter_id, "collect_load_profile")
        ts, value, _source = series(meter_id, IMPORT)[-5]
        hour_total = db.session.execute(select(func.sum(ConsumptionHourly.import_wh)).where(
            ConsumptionHourly.meter_id == meter_id)).scalar()
        from app.services.ingest import Value, store_readings

        # A forged or wrong push at an existing interval: kept as a revision, not applied.
        result = store_readings([Value(meter_id, IMPORT, ts, 1.0, source=Source.PUSH, authenticated=False)],
                                rollups=False)
        assert result.kept == 1 and result.revised == 0
        assert dict((t, v) for t, v, _s in series(meter_id, IMPORT))[ts] == value
        revision = db.session.execute(select(ReadingRevision).where(ReadingRevision.meter_id == meter_id)).scalar_one()
        assert (revision.new_value, revision.new_source, revision.applied) == (1.0, Source.PUSH, False)
        # A pushed value at a grid instant that the profile then corrects: the profile wins, rollups follow.
        later = ts - dt.timedelta(days=2)  # an instant no profile read covered yet
        store_readings([Value(meter_id, IMPORT, later, value + 10_000, source=Source.PUSH)], rollups=False)
        store_readings([Value(meter_id, IMPORT, later, value + 500, source=Source.SCHEDULE)])
        assert dict((t, v) for t, v, _s in series(meter_id, IMPORT))[later] == value + 500
        # A push revising a push changes the stored value: the rollups are recomputed too.
        other = later + QUARTER
        store_readings([Value(meter_id, IMPORT, other, value + 600, source=Source.PUSH)])
        store_readings([Value(meter_id, IMPORT, other, value + 700, source=Source.PUSH)], rollups=False)
        rows = series(meter_id, IMPORT)
        total = sum(max(b[1] - a[1], 0) for a, b in zip(rows, rows[1:], strict=False))
        hourly = db.session.execute(select(func.sum(ConsumptionHourly.import_wh)).where(
            ConsumptionHourly.meter_id == meter_id)).scalar()
        assert hourly == pytest.approx(total) and hourly != hour_total


def test_future_push_is_quarantined_and_never_stops_collection(app, sim, listener):
    meter_id = register(app, sim, 4)
    with app.app_context():
        app.config["HES_BACKFILL_DAYS"] = 1
        execute_local(meter_id, "collect_load_profile")
        cursor_before = db.session.get(CollectionCursor, (meter_id, "load_profile")).last_ts
        sim.post(f"/meters/{sim.serial(4)}/clock", {"offset_seconds": 400 * 86400})  # a clock a year ahead
        try:
            counts = handle_push(meter_id, push(sim, listener, 4))
        finally:
            sim.post(f"/meters/{sim.serial(4)}/clock", {"offset_seconds": 0})
        assert counts["stored"] == 1
        newest = max(ts for ts, _v, _s in series(meter_id, IMPORT))
        assert newest <= dt.datetime.now(UTC)
        held = db.session.execute(select(QuarantinedRow).where(QuarantinedRow.meter_id == meter_id)).scalars().all()
        assert len(held) == 1 and held[0].ts > dt.datetime.now(UTC) + dt.timedelta(days=300)
        assert "ahead of the HES clock" in held[0].reason and held[0].obis == IMPORT
        assert db.session.execute(select(func.count()).select_from(Event).where(
            Event.meter_id == meter_id, Event.event_type == "clock_fault")).scalar() == 1
        assert db.session.get(CollectionCursor, (meter_id, "load_profile")).last_ts == cursor_before
        # Collection carries on from its own cursor.
        again = execute_local(meter_id, "collect_load_profile")
        assert dt.datetime.fromisoformat(again["from"]) == cursor_before
        if db.engine.dialect.name == "postgresql":
            from sqlalchemy import text

            assert db.session.execute(text("SELECT count(*) FROM reading_default")).scalar() == 0


def test_tamper_pushed_then_read_from_the_log_is_one_event(app, sim, listener):
    meter_id = register(app, sim, 5)
    with app.app_context():
        # The push carries the meter's clock (30 s off); the log keeps its own record of the instant.
        sim.post(f"/meters/{sim.serial(5)}/clock", {"offset_seconds": 30})
        sim.post(f"/meters/{sim.serial(5)}/event", {"code": 10})  # cover open: logged and pushed
        frame = received_frame(listener)
        assert handle_push(meter_id, frame)["events"] == 1
        execute_local(meter_id, "collect_events")
        cover = db.session.execute(select(Event).where(Event.meter_id == meter_id,
                                                       Event.event_type == "cover_open")).scalars().all()
        assert len(cover) == 1 and cover[0].source == "log+push"
        logged = [e for e in sim.get(f"/meters/{sim.serial(5)}")["events"] if e["code"] == 10]
        assert abs(cover[0].ts.timestamp() - dt.datetime.fromisoformat(logged[0]["time"]).timestamp()) < 1
        assert execute_local(meter_id, "collect_events")["new_events"] == 0


def test_gaps_come_from_the_profile_capture_objects_and_match_the_completeness_report(app, sim):
    """A row missing any register it captures is a gap (not only 1.0.1.8.0.255), intervals at the end of the
    window count, and the completeness report's "received" is the same count."""
    from sqlalchemy import delete

    from app.services.gaps import missing_ranges, received_per_day
    from app.services.reports.completeness import completeness
    from app.services.rollups import utility_zone
    from app.services.scope import Scope

    meter_id = register(app, sim, 3)
    with app.app_context():
        app.config["HES_BACKFILL_DAYS"] = 2
        execute_local(meter_id, "collect_load_profile")
        cursor = db.session.get(CollectionCursor, (meter_id, "load_profile"))
        assert cursor.captures == [IMPORT, "1.0.2.8.0.255", "1.0.32.27.0.255", "1.0.31.27.0.255"]
        assert cursor.capture_period == 900
        stamps = [ts for ts, _v, _s in series(meter_id, IMPORT)]
        end = stamps[-1]
        voltage = db.session.execute(select(Channel.id).where(Channel.obis == "1.0.32.27.0.255")).scalar_one()
        # Average voltage lost at 2 intervals mid-day; everything lost at the last 3 intervals of the window.
        db.session.execute(delete(Reading).where(Reading.meter_id == meter_id, Reading.channel_id == voltage,
                                                 Reading.ts.in_(stamps[-20:-18])))
        db.session.execute(delete(Reading).where(Reading.meter_id == meter_id, Reading.ts.in_(stamps[-3:])))
        db.session.commit()
        start = stamps[-40]
        assert missing_ranges(meter_id, start, end) == [(stamps[-20], stamps[-19]), (stamps[-3], stamps[-1])]
        day = stamps[-60].date()
        lo = dt.datetime.combine(day, dt.time(0), UTC)
        hi = lo + dt.timedelta(days=1)
        from app.services.gaps import missing_times

        meter = db.session.get(Meter, meter_id)
        _found, missing = missing_times(meter, lo + dt.timedelta(minutes=15), hi)
        received = received_per_day([meter], lo, hi, utility_zone())[(meter_id, day)]
        assert received + len(missing) == 96
        report = completeness(Scope(meter_id=meter_id), day, day, utility_zone())
        assert report["summary"]["received"] == received


def test_rows_older_than_the_meters_installation_are_quarantined(app, sim, listener):
    """A meter cannot have recorded anything before it was installed: its profile rows and pushes stamped
    earlier (a clock ten days behind on a meter installed three days ago) are quarantined with the reason,
    while the horizon (800 days) alone would have let them in."""
    from tests.support.simulator import profiles_read_by_entry

    installed = dt.datetime.now(UTC) - dt.timedelta(days=3)
    with app.app_context():
        meter_id = register_meters(sim, [1], prefix="FRS", installed_at=installed)[0]
    with app.app_context(), profiles_read_by_entry():
        app.config["HES_BACKFILL_DAYS"] = 1
        sim.post(f"/meters/{sim.serial(1)}/clock", {"offset_seconds": -10 * 86400, "since_seconds_ago": 2 * 3600})
        result = execute_local(meter_id, "collect_load_profile")
        assert result["quarantined"] == 8 * 4  # two hours of rows, four registers each
        handle_push(meter_id, push(sim, listener, 1))  # accepted as a push; its reading is quarantined
        held = db.session.execute(select(QuarantinedRow).where(QuarantinedRow.meter_id == meter_id)).scalars().all()
        assert len(held) == 8 * 4 + 1 and all("first reading" in q.reason and q.ts < installed for q in held)
        stored = series(meter_id, IMPORT)
        assert stored and min(ts for ts, _v, _s in stored) >= installed - dt.timedelta(days=1)
        cursor = db.session.get(CollectionCursor, (meter_id, "load_profile"))
        assert installed < cursor.last_ts < dt.datetime.now(UTC) - dt.timedelta(hours=1, minutes=45)
        # Read again: the same rows are not read (nor quarantined) twice.
        assert execute_local(meter_id, "collect_load_profile")["quarantined"] == 0
        assert db.session.execute(select(func.count()).select_from(QuarantinedRow)).scalar() == len(held)
    sim.post(f"/meters/{sim.serial(1)}/clock", {"offset_seconds": 0})
