"""Exactly-once storage and rollups, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import func, select, text

from app.extensions import db
from app.models import ConsumptionDaily, ConsumptionHourly, Reading, ReadingRevision, Source
from app.services.ingest import Value, store_readings

UTC = dt.UTC
IMPORT = "1.0.1.8.0.255"
EXPORT = "1.0.2.8.0.255"


def profile(meter_id: int, start: dt.datetime, count: int, wh_per_interval: float = 250.0, base: float = 10_000.0,
            source: int = Source.SCHEDULE) -> list[Value]:
    """A 15-minute cumulative import profile."""
    return [Value(meter_id, IMPORT, start + dt.timedelta(minutes=15 * i), base + wh_per_interval * i, source=source)
            for i in range(count)]


def count_rows(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar()


def test_same_values_twice_are_stored_once(app, meter_id):
    start = dt.datetime(2026, 3, 1, tzinfo=UTC)
    with app.app_context():
        first = store_readings(profile(meter_id, start, 96))
        again = store_readings(profile(meter_id, start, 96))
        assert (first.inserted, again.inserted, again.unchanged, again.revised) == (96, 0, 96, 0)
        assert count_rows(Reading) == 96 and count_rows(ReadingRevision) == 0


def test_changed_value_is_kept_as_a_revision(app, meter_id):
    start = dt.datetime(2026, 3, 1, tzinfo=UTC)
    with app.app_context():
        store_readings(profile(meter_id, start, 4))
        changed = profile(meter_id, start, 4)
        changed[2] = Value(meter_id, IMPORT, changed[2].ts, 99_999.0, source=Source.BACKFILL)
        result = store_readings(changed)
        assert (result.inserted, result.unchanged, result.revised) == (0, 3, 1)
        revision = db.session.execute(select(ReadingRevision)).scalar_one()
        assert (revision.old_value, revision.new_value) == (10_500.0, 99_999.0)
        assert (revision.old_source, revision.new_source) == (Source.SCHEDULE, Source.BACKFILL)
        stored = db.session.execute(select(Reading.value, Reading.source).where(Reading.ts == changed[2].ts)).one()
        assert tuple(stored) == (99_999.0, Source.BACKFILL)


def test_rollups_follow_late_and_backfilled_data(app, meter_id):
    start = dt.datetime(2026, 3, 2, tzinfo=UTC)
    with app.app_context():
        app.config["HES_TIMEZONE"] = "UTC"
        values = profile(meter_id, start, 97)  # a full day plus the closing reading at midnight
        store_readings(values[:40] + values[60:])  # a gap of 20 intervals
        daily = db.session.execute(select(ConsumptionDaily)).scalars().all()
        assert [(d.bucket, d.import_wh, d.intervals) for d in daily] == [(start, 96 * 250.0, 76)]
        store_readings(values[40:60])  # the gap is backfilled later
        daily = db.session.execute(select(ConsumptionDaily)).scalar_one()
        assert (daily.import_wh, daily.intervals) == (96 * 250.0, 96)
        hours = db.session.execute(select(ConsumptionHourly).order_by(ConsumptionHourly.bucket)).scalars().all()
        assert len(hours) == 24 and {h.import_wh for h in hours} == {1000.0} and {h.intervals for h in hours} == {4}


@pytest.mark.parametrize(("zone", "expected_days"), [
    # Lagos (UTC+1): the UTC day 2026-03-02 00:00-24:00 spans two local days: 23 h and 1 h.
    ("Africa/Lagos", {dt.datetime(2026, 3, 1, 23, tzinfo=UTC): 23 * 1000.0,
                      dt.datetime(2026, 3, 2, 23, tzinfo=UTC): 1000.0}),
    # Kolkata (UTC+05:30): local midnight is 18:30 UTC.
    ("Asia/Kolkata", {dt.datetime(2026, 3, 1, 18, 30, tzinfo=UTC): 18.5 * 1000.0,
                      dt.datetime(2026, 3, 2, 18, 30, tzinfo=UTC): 5.5 * 1000.0}),
])
def test_daily_buckets_are_local_days(app, meter_id, zone, expected_days):
    start = dt.datetime(2026, 3, 2, tzinfo=UTC)
    with app.app_context():
        app.config["HES_TIMEZONE"] = zone
        try:
            store_readings(profile(meter_id, start, 97))
            daily = {d.bucket: d.import_wh for d in db.session.execute(select(ConsumptionDaily)).scalars()}
        finally:
            app.config["HES_TIMEZONE"] = "UTC"
    assert daily == expected_days


def test_dst_day_has_23_hours(app, meter_id):
    # Europe/Berlin springs forward on 2026-03-29: the local day is 23 hours long.
    start = dt.datetime(2026, 3, 28, 23, tzinfo=UTC)  # local midnight (UTC+1)
    with app.app_context():
        app.config["HES_TIMEZONE"] = "Europe/Berlin"
        try:
            store_readings(profile(meter_id, start, 24 * 4 + 1))
            rows = db.session.execute(select(ConsumptionDaily).order_by(ConsumptionDaily.bucket)).scalars().all()
            hours = count_rows(ConsumptionHourly)
        finally:
            app.config["HES_TIMEZONE"] = "UTC"
    first = rows[0]
    assert first.bucket == start and first.import_wh == 23 * 1000.0 and first.intervals == 92
    assert rows[1].bucket == dt.datetime(2026, 3, 29, 22, tzinfo=UTC)  # next local midnight is UTC+2
    assert hours == 24


def test_export_and_reset_do_not_count_negative(app, meter_id):
    start = dt.datetime(2026, 3, 2, tzinfo=UTC)
    with app.app_context():
        values = profile(meter_id, start, 5)
        values += [Value(meter_id, EXPORT, start + dt.timedelta(minutes=15 * i), 100.0 + 10 * i) for i in range(5)]
        values.append(Value(meter_id, IMPORT, start + dt.timedelta(minutes=75), 5.0))  # register reset
        store_readings(values)
        day = db.session.execute(select(ConsumptionDaily)).scalar_one()
        assert (day.import_wh, day.export_wh) == (1000.0, 40.0)


def test_postgresql_readings_are_partitioned_by_month(app, meter_id, monkeypatch):
    from app.services.partitions import ensure_partitions, is_partitioned

    monkeypatch.setitem(app.config, "HES_FUTURE_TOLERANCE_HOURS", 24 * 800)  # 2027 is "now" for this test
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            assert not is_partitioned() and ensure_partitions() == []
            return
        assert is_partitioned()
        names = ensure_partitions(months_ahead=5, today=dt.date(2027, 1, 15))
        assert names[0] == "reading_y2027m01" and names[-1] == "reading_y2027m06"
        store_readings(profile(meter_id, dt.datetime(2027, 2, 28, 23, 30, tzinfo=UTC), 4))
        where = dict(db.session.execute(text(
            "SELECT tableoid::regclass::text, count(*) FROM reading GROUP BY 1")).all())
        assert {k.split(".")[-1]: v for k, v in where.items()} == {"reading_y2027m02": 2, "reading_y2027m03": 2}
        # Idempotent storage holds across partitions too.
        assert store_readings(profile(meter_id, dt.datetime(2027, 2, 28, 23, 30, tzinfo=UTC), 4)).inserted == 0


def test_register_snapshot_between_intervals_changes_no_bucket(app, meter_id):
    start = dt.datetime(2026, 3, 2, tzinfo=UTC)
    with app.app_context():
        store_readings(profile(meter_id, start, 97))
        before = {(d.bucket, d.import_wh, d.intervals) for d in db.session.execute(select(ConsumptionDaily)).scalars()}
        snapshot = Value(meter_id, IMPORT, start + dt.timedelta(hours=5, minutes=7), 10_000 + 250 * 20.5,
                         source=Source.PUSH)
        store_readings([snapshot])  # with rollups recomputed for its day...
        after = {(d.bucket, d.import_wh, d.intervals) for d in db.session.execute(select(ConsumptionDaily)).scalars()}
        assert after == before  # ...the day's energy and its interval count are unchanged


def test_channel_created_in_a_lost_transaction_is_not_remembered(app, meter_id):
    ts = dt.datetime(2026, 3, 2, tzinfo=UTC)
    with app.app_context():
        store_readings([Value(meter_id, "1.0.3.8.0.255", ts, 1.0)], commit=False)
        db.session.rollback()  # e.g. the database restarted before the commit
        assert store_readings([Value(meter_id, "1.0.3.8.0.255", ts, 1.0)]).inserted == 1
        assert count_rows(Reading) == 1


def test_postgresql_partitions_on_demand_default_partition_stays_empty_and_retention(app, meter_id, monkeypatch):
    """An old month gets its partition when its rows arrive; rows left in the default partition by the
    old code move out (future ones to quarantine) so start-up never fails; retention drops old months."""
    from app.models import QuarantinedRow
    from app.services.partitions import add_months, ensure_partitions, existing_months, forget_known_months

    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            return
        today = dt.datetime.now(UTC).date()
        old = add_months(today, -20)
        db.session.execute(text(f"DROP TABLE IF EXISTS reading_y{old:%Y}m{old:%m}"))
        db.session.commit()
        forget_known_months()
        stamp = dt.datetime(old.year, old.month, 10, tzinfo=UTC)
        assert store_readings(profile(meter_id, stamp, 4)).inserted == 4
        assert db.session.execute(text("SELECT count(*) FROM reading_default")).scalar() == 0
        assert old in existing_months(db.session.connection())
        # What the old code left behind: a future row and a row of a month without a partition.
        gone = add_months(today, -8)
        db.session.execute(text(f"DROP TABLE IF EXISTS reading_y{gone:%Y}m{gone:%m}"))
        cid = db.session.execute(text("SELECT id FROM channel WHERE obis = :o"), {"o": IMPORT}).scalar()
        for ts in (dt.datetime(2031, 5, 1, tzinfo=UTC), dt.datetime(gone.year, gone.month, 3, tzinfo=UTC)):
            db.session.execute(text("INSERT INTO reading_default (meter_id, channel_id, ts, value, quality, source, "
                                    "received_at) VALUES (:m, :c, :t, 5, 0, 2, now())"),
                               {"m": meter_id, "c": cid, "t": ts})
        db.session.commit()
        ensure_partitions(months_ahead=3)
        assert db.session.execute(text("SELECT count(*) FROM reading_default")).scalar() == 0
        held = db.session.execute(select(QuarantinedRow)).scalars().all()
        assert [(q.ts.year, q.source) for q in held] == [(2031, "default_partition")]
        monkeypatch.setitem(app.config, "HES_READING_RETENTION_MONTHS", 12)
        ensure_partitions(months_ahead=3)
        months = existing_months(db.session.connection())
        assert old not in months and gone in months and today.replace(day=1) in months


def test_postgresql_a_batch_across_a_month_end_gets_both_partitions(app, meter_id):
    """A profile read from late on a month's last day into the next month, both months without a partition yet:
    each month gets its own, and nothing lands in the default partition."""
    from app.services.partitions import add_months, existing_months, forget_known_months

    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            return
        first = add_months(dt.datetime.now(UTC).date().replace(day=1), -15)
        second = add_months(first, 1)
        for month in (first, second):
            db.session.execute(text(f"DROP TABLE IF EXISTS reading_y{month:%Y}m{month:%m}"))
        db.session.commit()
        forget_known_months()
        start = dt.datetime(second.year, second.month, 1, tzinfo=UTC) - dt.timedelta(hours=2)
        assert store_readings(profile(meter_id, start, 12)).inserted == 12  # 22:00 to 00:45
        assert db.session.execute(text("SELECT count(*) FROM reading_default")).scalar() == 0
        assert {first, second} <= existing_months(db.session.connection())


def test_batches_in_one_transaction_and_after_a_rollback(app, meter_id):
    """The staged merge (PostgreSQL: COPY into a temporary table) keeps each call's rows to that call: two
    calls in one transaction, and a call after a rolled-back one, store exactly what they were given."""
    start = dt.datetime(2026, 3, 3, tzinfo=UTC)
    with app.app_context():
        app.config["HES_TIMEZONE"] = "UTC"
        values = profile(meter_id, start, 97)
        store_readings(values[:10], commit=False)
        db.session.rollback()  # the first batch is lost (a failed collection session)
        first = store_readings(values[:48], commit=False)
        second = store_readings(values[48:], commit=False)
        db.session.commit()
        again = store_readings(values[40:56])
        assert (first.inserted, second.inserted, again.unchanged, again.inserted) == (48, 49, 16, 0)
        assert count_rows(Reading) == 97
        daily = db.session.execute(select(ConsumptionDaily)).scalar_one()
        assert (daily.import_wh, daily.intervals) == (96 * 250.0, 96)


def test_two_batches_of_one_meter_at_once_count_each_interval_once(app, meter_id):
    """A push beside a collection round: while one batch of a meter is stored but not committed, a second batch
    of the same meter (the next intervals) waits for it, then counts its first interval from the first batch's
    last reading — not from the reading before both, which would count the first batch's energy twice."""
    start = dt.datetime(2026, 3, 4, tzinfo=UTC)
    values = profile(meter_id, start, 13)
    with app.app_context():
        app.config["HES_TIMEZONE"] = "UTC"
        store_readings(values[:1])  # the reading before both batches
    first_stored, second_started, failures = threading.Event(), threading.Event(), []

    def first() -> None:
        with app.app_context():
            try:
                store_readings(values[1:7], commit=False)
            finally:
                first_stored.set()
            second_started.wait(10)
            time.sleep(0.5)  # the second batch would be stored and committed by now if it did not wait
            db.session.commit()

    def second() -> None:
        first_stored.wait(10)
        with app.app_context():
            second_started.set()
            store_readings(values[7:])

    def keep_failure(target):
        def run() -> None:
            try:
                target()
            except Exception as exc:  # noqa: BLE001 - reported by the test below
                failures.append(exc)
        return run

    threads = [threading.Thread(target=keep_failure(t)) for t in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    with app.app_context():
        daily = db.session.execute(select(ConsumptionDaily)).scalar_one()
        assert (daily.import_wh, daily.intervals) == (12 * 250.0, 12)
        hourly = db.session.execute(select(func.sum(ConsumptionHourly.import_wh))).scalar()
        assert hourly == 12 * 250.0


def test_many_meters_in_one_batch_each_get_their_own_rollups(app, meter_id):
    """One batch of several meters (a collection round stored at once): each meter's previous reading
    and buckets are its own, and the meters' energy adds up in their area's quarter-hours."""
    from app.models import EnergyQuarter, Meter

    # Yesterday: the quarter-hours are written for intervals inside the kept window only.
    start = dt.datetime.combine(dt.datetime.now(UTC).date() - dt.timedelta(days=1), dt.time(0), tzinfo=UTC)
    with app.app_context():
        app.config["HES_TIMEZONE"] = "UTC"
        template = db.session.get(Meter, meter_id)
        others = [Meter(number=f"ING0000010{i}", brand_id=template.brand_id, area_id=template.area_id)
                  for i in range(3)]
        db.session.add_all(others)
        db.session.commit()
        ids = [meter_id, *(m.id for m in others)]
        series = {m: profile(m, start, 9, 100.0 * (n + 1), base=1000.0 * n) for n, m in enumerate(ids)}
        store_readings([v for values in series.values() for v in values[:5]])
        store_readings([v for values in series.values() for v in values[5:]])  # appended after each meter's own
        per_meter = dict(db.session.execute(select(ConsumptionDaily.meter_id, ConsumptionDaily.import_wh)).all())
        assert per_meter == {m: 8 * 100.0 * (n + 1) for n, m in enumerate(ids)}
        assert db.session.execute(select(func.sum(EnergyQuarter.import_wh))).scalar() == 8000.0


def test_a_backfill_older_than_the_kept_quarter_hours_writes_none(app, meter_id):
    """The areas' quarter-hours feed the dashboard's last hour and are pruned after QUARTERS_KEPT: a profile
    older than that still lands in the hourly and daily rollups, but writes no quarter-hour the pruning would
    drop unread; one that crosses the window's edge writes the quarters inside it only."""
    from app.models import ConsumptionHourly, EnergyQuarter
    from app.services.rollups import QUARTERS_KEPT

    with app.app_context():
        app.config["HES_TIMEZONE"] = "UTC"
        old = dt.datetime.combine(dt.datetime.now(UTC).date() - dt.timedelta(days=30), dt.time(0), tzinfo=UTC)
        store_readings(profile(meter_id, old, 9, 100.0))
        assert db.session.execute(select(func.sum(ConsumptionHourly.import_wh))).scalar() == 800.0
        assert count_rows(EnergyQuarter) == 0
        cutoff = dt.datetime.now(UTC) - QUARTERS_KEPT
        edge = cutoff.replace(minute=cutoff.minute - cutoff.minute % 15, second=0, microsecond=0)
        edge += dt.timedelta(minutes=15)  # the first quarter-hour that starts inside the window
        store_readings(profile(meter_id, edge - dt.timedelta(hours=1), 9, 100.0, base=50_000.0))
        quarters = db.session.execute(select(EnergyQuarter.bucket, EnergyQuarter.import_wh)).all()
        assert sorted(bucket.astimezone(UTC) for bucket, _wh in quarters) == [
            edge + dt.timedelta(minutes=15 * i) for i in range(4)]
        assert {wh for _bucket, wh in quarters} == {100.0}


def test_rows_older_than_the_installation_are_held_and_the_rest_of_the_batch_lands(app, meter_id):
    """One batch with rows stamped before the meter's installation (less the grace) and rows after it: the early
    ones are quarantined with the reason and a clock fault, the others stored with their rollups (PostgreSQL
    screens in the merge statement, SQLite before it). The same batch again holds and stores nothing new."""
    from app.models import Event, Meter, QuarantinedRow

    installed = dt.datetime.combine(dt.datetime.now(UTC).date() - dt.timedelta(days=2), dt.time(0), tzinfo=UTC)
    with app.app_context():
        app.config["HES_TIMEZONE"] = "UTC"
        db.session.get(Meter, meter_id).installed_at = installed
        db.session.commit()
        early = profile(meter_id, installed - dt.timedelta(days=5), 4, base=0.0)
        batch = early + profile(meter_id, installed, 9, 100.0)
        result = store_readings(batch)
        assert (result.inserted, result.quarantined) == (9, 4)
        held = db.session.execute(select(QuarantinedRow)).scalars().all()
        assert len(held) == 4 and all("first reading" in q.reason and q.obis == IMPORT for q in held)
        assert count_rows(Reading) == 9
        assert db.session.execute(select(func.sum(ConsumptionDaily.import_wh))).scalar() == 800.0
        assert db.session.execute(select(func.count()).select_from(Event)).scalar() == 1
        again = store_readings(batch)
        assert (again.inserted, again.unchanged, again.quarantined) == (0, 9, 4)
        assert count_rows(QuarantinedRow) == 4 and count_rows(Reading) == 9
        assert db.session.execute(select(func.sum(ConsumptionDaily.import_wh))).scalar() == 800.0

def recomputed_daily(meter_id: int) -> dict[dt.datetime, tuple[float, float, int]]:
    """The meter's daily rollup (UTC days) recomputed from its stored readings: each energy channel's consecutive
    readings' delta (a reset counts 0) in the day the later one ends in; intervals on the quarter-hour grid."""
    from app.services.ingest import channel_id

    days: dict[dt.datetime, list] = {}
    for column, obis in ((0, IMPORT), (1, EXPORT)):
        series = db.session.execute(select(Reading.ts, Reading.value).where(
            Reading.meter_id == meter_id, Reading.channel_id == channel_id(obis)).order_by(Reading.ts)).all()
        for (_t0, v0), (t1, v1) in zip(series, series[1:], strict=False):
            t1 = t1.astimezone(UTC)
            day = dt.datetime.combine((t1 - dt.timedelta(microseconds=1)).date(), dt.time(0), tzinfo=UTC)
            acc = days.setdefault(day, [0.0, 0.0, 0])
            acc[column] += max(v1 - v0, 0.0)
            if column == 0 and int(t1.timestamp()) % 900 == 0:
                acc[2] += 1
    return {day: tuple(acc) for day, acc in days.items()}


def stored_daily(meter_id: int) -> dict[dt.datetime, tuple[float, float, int]]:
    return {bucket.astimezone(UTC): (i, e, n) for bucket, i, e, n in db.session.execute(select(
        ConsumptionDaily.bucket, ConsumptionDaily.import_wh, ConsumptionDaily.export_wh, ConsumptionDaily.intervals
    ).where(ConsumptionDaily.meter_id == meter_id)).all() if (i, e, n) != (0.0, 0.0, 0)}


def both_channels(meter_id: int, start: dt.datetime, count: int, base: float = 10_000.0) -> list[Value]:
    """Import and export profiles of ``count`` intervals from ``start`` (import 250 Wh, export 10 Wh each)."""
    stamps = [start + dt.timedelta(minutes=15 * i) for i in range(count)]
    offset = (start - dt.datetime(2026, 1, 1, tzinfo=UTC)) // dt.timedelta(minutes=15)
    return [v for n, ts in enumerate(stamps) for v in (
        Value(meter_id, IMPORT, ts, base + 250.0 * (offset + n)), Value(meter_id, EXPORT, ts, 10.0 * (offset + n)))]


def test_sqlite_out_of_order_backfill_costs_its_own_days_and_keeps_running_totals(app, meter_id):
    """SQLite keeps per-meter running totals (the consumption reports read two rows a meter): a day backfilled
    before the meter's later days rewrites its own range and shifts the later days once — the same backfill before
    30 more later days costs 30 more row writes (the triggers shifted all of them again for every daily row
    rewritten: 5 x 30 here, O(days²) over a history filled from newest to oldest) — and every running total still
    equals the sum of the meter's days up to it."""
    from app.models import ConsumptionDailyRunning, Meter

    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("SQLite only: PostgreSQL keeps no running totals (migration 0160_ing_pg_running_off)")
    start = dt.datetime(2026, 3, 1, tzinfo=UTC)
    day = dt.timedelta(days=1)

    def running_equal_to_the_days(meter):
        days = db.session.execute(select(ConsumptionDaily.bucket, ConsumptionDaily.import_wh,
                                         ConsumptionDaily.export_wh, ConsumptionDaily.intervals)
                                  .where(ConsumptionDaily.meter_id == meter).order_by(ConsumptionDaily.bucket)).all()
        totals, expected = [0.0, 0.0, 0, 0], []
        for bucket, i, e, n in days:
            totals = [totals[0] + i, totals[1] + e, totals[2] + n, totals[3] + 1]
            expected.append((bucket, pytest.approx(totals[0]), pytest.approx(totals[1]), totals[2], totals[3]))
        stored = db.session.execute(select(ConsumptionDailyRunning.bucket, ConsumptionDailyRunning.import_wh,
                                           ConsumptionDailyRunning.export_wh, ConsumptionDailyRunning.intervals,
                                           ConsumptionDailyRunning.days)
                                    .where(ConsumptionDailyRunning.meter_id == meter)
                                    .order_by(ConsumptionDailyRunning.bucket)).all()
        assert len(stored) == len(expected) > 0
        assert [tuple(r) for r in stored] == expected

    def changes_to_store(values):
        before = db.session.connection().exec_driver_sql("SELECT total_changes()").scalar()
        store_readings(values, commit=False)
        changed = db.session.connection().exec_driver_sql("SELECT total_changes()").scalar() - before
        db.session.commit()
        return changed

    with app.app_context():
        app.config["HES_TIMEZONE"] = "UTC"
        template = db.session.get(Meter, meter_id)
        other = Meter(number="ING00000099", brand_id=template.brand_id, area_id=template.area_id)
        db.session.add(other)
        db.session.commit()
        changed = {}
        for meter, count in ((meter_id, 10), (other.id, 40)):
            days = [both_channels(meter, start + n * day, 97) for n in range(count)]
            for n, values in enumerate(days):
                if n not in (2, 3):
                    store_readings(values)  # days 3 and 4 missed (an outage)
            running_equal_to_the_days(meter)
            changed[meter] = changes_to_store(days[2])  # day 3 backfilled before the later days
            days[3][10] = Value(meter, IMPORT, days[3][10].ts, days[3][10].value + 5.0)  # day 4, a value revised
            changes_to_store(days[3])
            running_equal_to_the_days(meter)
            assert stored_daily(meter) == recomputed_daily(meter)
        assert changed[other.id] - changed[meter_id] <= 30 + 5, changed
        assert db.session.execute(text("SELECT count(*) FROM consumption_running_hold")).scalar() == 0


def test_a_round_that_reads_its_last_interval_again_appends(app, meter_id, monkeypatch):
    """A profile is read from its cursor's time on, so each round brings the last stored interval again: it is
    counted unchanged, the rest lands, and the rollups add only the new energy — no day is recomputed from the
    stored readings. The keys are not compared after a conflicting insert (``_revise``): the interval read again is
    known before anything is written. On PostgreSQL the round goes straight into the table (no staging table on the
    connection: the merge's way was not taken)."""
    from app.services import ingest, rollups
    from app.services.ingest import STAGE

    def recompute(*args) -> None:
        raise AssertionError(f"a day was recomputed: {args}")

    def revise(*args) -> None:
        raise AssertionError("the round met its stored interval at the insert")

    start = dt.datetime(2026, 3, 5, tzinfo=UTC)
    values = profile(meter_id, start, 97)
    with app.app_context():
        app.config["HES_TIMEZONE"] = "UTC"
        first = store_readings(values[:49])
        db.session.connection().connection.info.pop(STAGE, None)  # whatever an earlier test left
        monkeypatch.setattr(rollups, "_recompute", recompute)
        monkeypatch.setattr(ingest, "_revise", revise)
        second = store_readings(values[48:])
        assert (first.inserted, second.inserted, second.unchanged, second.revised) == (49, 48, 1, 0)
        assert second.latest == values[-1].ts
        if db.engine.dialect.name == "postgresql":
            assert STAGE not in db.session.connection().connection.info
            # The check's generic plans end with it; the rest of a transaction plans as usual.
            store_readings(profile(meter_id, values[-1].ts, 3, base=values[-1].value), commit=False)
            assert db.session.execute(text("SHOW plan_cache_mode")).scalar() == "auto"
            db.session.rollback()
        assert count_rows(Reading) == 97 and count_rows(ReadingRevision) == 0
        daily = db.session.execute(select(ConsumptionDaily)).scalar_one()
        assert (daily.import_wh, daily.intervals) == (96 * 250.0, 96)
        hourly = db.session.execute(select(func.sum(ConsumptionHourly.import_wh))).scalar()
        assert hourly == 96 * 250.0


def test_a_round_after_a_pushed_register_appends_from_the_push(app, meter_id, monkeypatch):
    """Both backends follow one rule (``appends_only``): a register pushed at 10:07 lies inside the next round's span
    (10:00 read again .. 11:00) but before its new intervals, so the round still appends — no day recomputed — and
    its first new interval adds only the energy since the push, which was counted when it landed."""
    from app.services import rollups

    def recompute(*args) -> None:
        raise AssertionError(f"a day was recomputed: {args}")

    start = dt.datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
    values = profile(meter_id, start, 9)  # 09:00 .. 11:00, 250 Wh an interval
    with app.app_context():
        app.config["HES_TIMEZONE"] = "UTC"
        store_readings(values[:5])
        pushed = values[4].value + 250.0 * 7 / 15
        store_readings([Value(meter_id, IMPORT, values[4].ts + dt.timedelta(minutes=7), pushed, source=Source.PUSH)])
        monkeypatch.setattr(rollups, "_recompute", recompute)
        result = store_readings(values[4:])
        assert (result.inserted, result.unchanged, result.revised) == (4, 1, 0)
        daily = db.session.execute(select(ConsumptionDaily)).scalar_one()
        assert (daily.import_wh, daily.intervals) == (8 * 250.0, 8)
        hours = db.session.execute(select(ConsumptionHourly.import_wh).order_by(ConsumptionHourly.bucket)).scalars()
        assert list(hours) == [1000.0, 1000.0]


def test_a_round_whose_last_interval_changed_is_merged_with_its_revision(app, meter_id):
    """The interval read again carries another value (the meter corrected it): not an append — the value is kept as
    a revision, the new intervals land, and the day's energy follows the corrected reading."""
    start = dt.datetime(2026, 3, 6, tzinfo=UTC)
    values = profile(meter_id, start, 97)
    with app.app_context():
        app.config["HES_TIMEZONE"] = "UTC"
        store_readings(values[:49])
        again = [Value(meter_id, IMPORT, values[48].ts, values[48].value + 100.0), *values[49:]]
        result = store_readings(again)
        assert (result.inserted, result.revised) == (48, 1)
        daily = db.session.execute(select(ConsumptionDaily)).scalar_one()
        assert daily.import_wh == 96 * 250.0  # 48 intervals end 100 Wh later, the next starts 100 Wh later
        assert count_rows(ReadingRevision) == 1


def test_postgresql_a_reading_written_outside_the_service_meets_the_append_and_it_merges(app, meter_id):
    """A key the append's check could not see (written by another connection, committed while the batch's COPY
    waited on it) ends the COPY with a conflict: the COPY is undone and the batch merged — stored once, counted once,
    and nothing else lost."""
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("PostgreSQL's way of appending")
    from sqlalchemy import create_engine

    start = dt.datetime(2026, 3, 7, tzinfo=UTC)
    values = profile(meter_id, start, 9)
    with app.app_context():
        app.config["HES_TIMEZONE"] = "UTC"
        store_readings(values[:1])
        import_id = db.session.execute(text("SELECT id FROM channel WHERE obis = :o"), {"o": IMPORT}).scalar_one()
        schema = db.session.execute(text("SELECT current_schema()")).scalar_one()
        db.session.commit()
    other = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    outside = other.connect()
    outside.execute(text(f'SET search_path TO "{schema}"'))
    outside.execute(text("INSERT INTO reading (meter_id, channel_id, ts, value, quality, source, received_at) "
                         "VALUES (:m, :c, :ts, :v, 0, 0, now())"),
                    {"m": meter_id, "c": import_id, "ts": values[4].ts, "v": values[4].value})
    results, failures = [], []

    def store() -> None:
        with app.app_context():
            try:
                results.append(store_readings(values[1:], commit=False))
                # The merge after the undone COPY, and the rest of the transaction, plan as usual with JIT off.
                results.append(db.session.execute(text("SELECT current_setting('plan_cache_mode'), "
                                                       "current_setting('jit')")).one())
                db.session.commit()
            except Exception as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

    thread = threading.Thread(target=store)
    thread.start()
    # Commit only once the batch's COPY waits on the uncommitted key: its backend is blocked by this one.
    blocked_by_us = text("SELECT count(*) FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))")
    deadline = time.monotonic() + 30
    while not outside.execute(blocked_by_us).scalar_one():
        assert thread.is_alive() and time.monotonic() < deadline, "the batch never waited on the outside key"
        time.sleep(0.02)
    outside.commit()
    outside.close()
    other.dispose()
    thread.join(30)
    assert failures == []
    assert (results[0].inserted, results[0].unchanged) == (7, 1)
    assert tuple(results[1]) == ("auto", "off")
    with app.app_context():
        assert count_rows(Reading) == 9
        daily = db.session.execute(select(ConsumptionDaily)).scalar_one()
        assert daily.import_wh == 8 * 250.0


def test_a_pushed_register_inside_a_new_profile_span_is_not_counted_twice(app, meter_id):
    """A register value pushed at 10:07 lands between profile reads and its energy is counted then; the profile
    read that follows brings 09:15..11:00, all new, without the interval before it: the day's energy is the
    profile's (2,000 Wh), not that plus the push's share again."""
    start = dt.datetime(2026, 3, 8, 9, 0, tzinfo=UTC)
    values = profile(meter_id, start, 9)  # 09:00 .. 11:00, 250 Wh an interval
    pushed_at = start + dt.timedelta(minutes=67)
    with app.app_context():
        app.config["HES_TIMEZONE"] = "UTC"
        store_readings(values[:1])
        store_readings([Value(meter_id, IMPORT, pushed_at, values[0].value + 250.0 * 67 / 15, source=Source.PUSH)])
        result = store_readings(values[1:])
        assert result.inserted == 8
        daily = db.session.execute(select(ConsumptionDaily)).scalar_one()
        assert (daily.import_wh, daily.intervals) == (8 * 250.0, 8)
        assert db.session.execute(select(func.sum(ConsumptionHourly.import_wh))).scalar() == 8 * 250.0


def test_rebuild_rollups_command_follows_readings_repaired_by_hand(app, meter_id):
    """An operator corrects readings in the database (a register offset from 12:00 on, a bad partial day removed):
    the ingest never saw it, so the rollups still hold the old energy. ``flask hes rebuild-rollups`` rewrites the
    meter's days from its readings and prints the energy before and after."""
    from sqlalchemy import delete, update

    start = dt.datetime(2026, 3, 10, tzinfo=UTC)
    with app.app_context():
        app.config["HES_TIMEZONE"] = "UTC"
        store_readings(profile(meter_id, start, 2 * 96 + 1 + 8))  # 03-10 00:00 .. 03-12 02:00, 250 Wh an interval
        daily = dict(db.session.execute(select(ConsumptionDaily.bucket, ConsumptionDaily.import_wh)).all())
        assert sorted(daily.values()) == [2000.0, 24000.0, 24000.0]
        db.session.execute(update(Reading).where(Reading.meter_id == meter_id,
                                                 Reading.ts >= start + dt.timedelta(days=1, hours=12))
                           .values(value=Reading.value + 1000.0))
        db.session.execute(delete(Reading).where(Reading.meter_id == meter_id,
                                                 Reading.ts > start + dt.timedelta(days=2)))
        db.session.commit()
        number = db.session.execute(text("SELECT number FROM meter WHERE id = :m"), {"m": meter_id}).scalar_one()

    runner = app.test_cli_runner()
    result = runner.invoke(args=["hes", "rebuild-rollups", number])
    assert result.exit_code == 0, result.output
    assert f"{number}: 4 days rebuilt; import 50.000 -> 49.000 kWh" in result.output
    with app.app_context():
        rows = db.session.execute(select(ConsumptionDaily.bucket, ConsumptionDaily.import_wh,
                                         ConsumptionDaily.intervals).order_by(ConsumptionDaily.bucket)).all()
        assert [(b.astimezone(UTC).date().isoformat(), wh, n) for b, wh, n in rows] == [
            ("2026-03-10", 24000.0, 96), ("2026-03-11", 25000.0, 96)]
        assert db.session.execute(select(func.sum(ConsumptionHourly.import_wh))).scalar() == 49000.0

    one_day = runner.invoke(args=["hes", "rebuild-rollups", number, "--since", "2026-03-11", "--until", "2026-03-11"])
    assert f"{number}: 1 day rebuilt; import 25.000 -> 25.000 kWh" in one_day.output
    unknown = runner.invoke(args=["hes", "rebuild-rollups", number, "NO-SUCH-METER"])
    assert unknown.exit_code != 0 and "no such meter: NO-SUCH-METER" in unknown.output


def test_rebuild_rollups_of_every_meter_on_an_empty_fleet_says_so(app):
    """``--all`` with no meter registered rebuilds nothing and says so (rather than printing nothing)."""
    result = app.test_cli_runner().invoke(args=["hes", "rebuild-rollups", "--all"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "No meters: nothing to rebuild."


def test_batches_across_areas_stored_at_once_never_deadlock(app):
    """Batches of several meters (a push batch) add to their areas' quarter-hours, rows every batch of those areas
    shares. Two such batches naming the same two areas in opposite orders, stored at the same moment round after
    round, must neither deadlock nor lose energy: every writer takes the rows in one order (area, quarter)."""
    from app.models import Area, CommMode, EnergyQuarter, Meter, MeterBrand, MeterStatus

    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            return  # one writer at a time on SQLite
        brand = db.session.execute(select(MeterBrand.id).where(MeterBrand.name == "hes_sim")).scalar_one()
        areas = [Area(name=f"Ward {c}", code=f"W{c}") for c in "AB"]
        db.session.add_all(areas)
        db.session.flush()
        meters = [Meter(number=f"DLK{i}", brand_id=brand, area_id=areas[i % 2].id, status=MeterStatus.active,
                        comm_mode=CommMode.dial_in) for i in range(4)]
        db.session.add_all(meters)
        db.session.commit()
        ids = [m.id for m in meters]  # 0, 2 in ward A; 1, 3 in ward B
    now = dt.datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - dt.timedelta(hours=161, minutes=now.minute % 15)  # inside the quarter-hours kept (7 days)
    orders = ([ids[0], ids[1]], [ids[3], ids[2]])  # A then B; B then A
    rounds, per_round = 80, 8  # ~12 s; without one lock order, half of 40-round runs deadlocked
    barrier, failures = threading.Barrier(2), []

    def writer(order: list[int]) -> None:
        with app.app_context():
            for r in range(rounds):
                batch = [v for m in order for v in profile(m, start + dt.timedelta(minutes=15 * per_round * r),
                                                            per_round + 1, base=10_000.0 + 250.0 * per_round * r)]
                barrier.wait(timeout=60)
                try:
                    store_readings(batch)
                except Exception as exc:  # noqa: BLE001 - the failure is the finding
                    failures.append(repr(exc))
                    db.session.rollback()
            db.session.remove()

    threads = [threading.Thread(target=writer, args=(order,)) for order in orders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not failures, failures[:2]
    with app.app_context():
        total = db.session.execute(select(func.sum(EnergyQuarter.import_wh))).scalar()
    assert total == 4 * rounds * per_round * 250.0
