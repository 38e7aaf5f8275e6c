"""Ground-truth reconciliation: what the database holds against what each meter itself recorded.

``record`` is a meter's own account (the simulator's ``GET /meters/<serial>/record``): profile rows
(load profile, daily, billing) as {obis: value} per capture time, and logged events (time, code).
Counts: *missing* (a recorded value or event with nothing stored), *duplicated* (more than one
stored event for one recorded event; readings are unique by key), *wrong* (stored value differs);
rollups are checked against the sum of their readings. A recorded row whose meter timestamp fails
the checks (a clock days ahead, or before the meter's first reading or the horizon) is expected in
quarantine, not among the readings: *out_of_range* counts them, *quarantine_missing* those not held
there; stored readings and collection cursors outside the accepted window are counted too.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select

from app.extensions import db
from app.models import Channel, CollectionCursor, ConsumptionDaily, ConsumptionHourly, Event, QuarantinedRow, Reading
from app.models.types import UTC

IMPORT_OBIS = "1.0.1.8.0.255"


@dataclass
class Reconciliation:
    """Counts of one reconciliation (all should be 0 but ``expected``, ``events`` and ``quarantined``)."""

    expected: int = 0
    missing: int = 0
    duplicated: int = 0
    wrong: int = 0
    events: int = 0
    events_missing: int = 0
    events_duplicated: int = 0
    rollup_mismatches: int = 0
    out_of_range_stored: int = 0
    out_of_range: int = 0
    quarantine_missing: int = 0
    cursors_out_of_range: int = 0
    quarantined: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def completeness_pct(self) -> float:
        """Recorded values stored, in percent."""
        return 100.0 if not self.expected else round(100.0 * (self.expected - self.missing) / self.expected, 3)

    @property
    def clean(self) -> bool:
        """Nothing missing, duplicated or wrong, rollups right, nothing out of range stored."""
        return not (self.missing or self.duplicated or self.wrong or self.events_missing or self.events_duplicated
                    or self.rollup_mismatches or self.out_of_range_stored or self.quarantine_missing
                    or self.cursors_out_of_range)

    def as_dict(self) -> dict:
        """The counts (and a few examples) as JSON."""
        return {k: v for k, v in self.__dict__.items()} | {"completeness_pct": self.completeness_pct,
                                                             "clean": self.clean}

    def note(self, text: str) -> None:
        if len(self.examples) < 10:
            self.examples.append(text)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


def reconcile_meter(result: Reconciliation, meter_id: int, record: dict, event_window_s: float = 120.0) -> None:
    """Add one meter's comparison to ``result``."""
    channels = dict(db.session.execute(select(Channel.obis, Channel.id)).all())
    rows = [(t, values) for name in ("load_profile", "daily", "billing") for t, values in record.get(name, [])]
    events = record.get("events", [])
    rows, events = _held_in_quarantine(result, meter_id, rows, events)
    if rows:
        lo = dt.datetime.fromtimestamp(min(t for t, _ in rows), UTC)
        hi = dt.datetime.fromtimestamp(max(t for t, _ in rows), UTC)
        stored = {(cid, ts.timestamp()): value for cid, ts, value in db.session.execute(
            select(Reading.channel_id, Reading.ts, Reading.value).where(
                Reading.meter_id == meter_id, Reading.ts >= lo, Reading.ts <= hi))}
        seen: set[tuple[str, float]] = set()
        for t, values in rows:
            for obis, value in values.items():
                if (obis, t) in seen:
                    continue  # shared series: a daily/billing value of the same register at the same instant
                seen.add((obis, t))
                result.expected += 1
                got = stored.get((channels.get(obis), float(t)))
                if got is None:
                    result.missing += 1
                    result.note(f"meter {meter_id}: {obis} at {dt.datetime.fromtimestamp(t, UTC)} missing")
                elif not _close(got, value):
                    result.wrong += 1
                    result.note(f"meter {meter_id}: {obis} at {dt.datetime.fromtimestamp(t, UTC)} is {got}, "
                                f"meter says {value}")
    if events:
        window = dt.timedelta(seconds=event_window_s)
        lo = dt.datetime.fromtimestamp(min(t for t, _ in events), UTC) - window
        hi = dt.datetime.fromtimestamp(max(t for t, _ in events), UTC) + window
        stored_events = db.session.execute(select(Event.ts, Event.code).where(
            Event.meter_id == meter_id, Event.ts >= lo, Event.ts <= hi, Event.source != "hes")).all()
        for t, code in events:
            result.events += 1
            near = [ts for ts, c in stored_events if c == code and abs(ts.timestamp() - t) <= 1.0]
            if not near:
                result.events_missing += 1
                result.note(f"meter {meter_id}: event {code} at {dt.datetime.fromtimestamp(t, UTC)} missing")
            elif len(near) > 1:
                result.events_duplicated += len(near) - 1
        counts = Counter((ts, c) for ts, c in stored_events)
        result.events_duplicated += sum(n - 1 for n in counts.values() if n > 1)
    result.rollup_mismatches += rollup_mismatches(meter_id)


def _held_in_quarantine(result: Reconciliation, meter_id: int, rows: list, events: list) -> tuple[list, list]:
    """Take out the recorded rows and events whose timestamps fail the checks, counting each that is not
    in quarantine; return the rest, which must be stored."""
    from app.models import QuarantinedRow
    from app.services.ingest import first_reading, timestamp_problem, timestamp_window

    window, first = timestamp_window(), first_reading([meter_id]).get(meter_id)

    def bad(t: float) -> bool:
        return timestamp_problem(dt.datetime.fromtimestamp(t, UTC), window, first) is not None

    if not any(bad(t) for t, _ in rows) and not any(bad(t) for t, _ in events):
        return rows, events
    held = {(q.kind, q.obis if q.kind == "reading" else q.code, int(q.ts.timestamp())) for q in db.session.execute(
        select(QuarantinedRow).where(QuarantinedRow.meter_id == meter_id)).scalars()}
    # Distinct (value, stamp): a daily snapshot shares its kWh registers with the load profile by design, so
    # a wrong-clock midnight row recorded by both profiles is one quarantined reading, as it is one reading.
    for kind, items in (("reading", {(t, obis) for t, values in rows if bad(t) for obis in values}),
                        ("event", {(t, code) for t, code in events if bad(t)})):
        for t, what in sorted(items):
            result.out_of_range += 1
            if (kind, what, int(t)) not in held:  # whole seconds: a log stamp may lose its hundredths
                result.quarantine_missing += 1
                result.note(f"meter {meter_id}: {kind} {what} at {dt.datetime.fromtimestamp(t, UTC)} is out of "
                            "range but not in quarantine")
    return [r for r in rows if not bad(r[0])], [e for e in events if not bad(e[0])]


def rollup_mismatches(meter_id: int) -> int:
    """Hourly and daily buckets whose import energy differs from the sum of the meter's import deltas."""
    from app.services.rollups import local_day_start, local_hour_start, utility_zone

    tz = utility_zone()
    series = db.session.execute(select(Reading.ts, Reading.value).join(Channel).where(
        Reading.meter_id == meter_id, Channel.obis == IMPORT_OBIS).order_by(Reading.ts)).all()
    hours: dict[dt.datetime, float] = defaultdict(float)
    days: dict[dt.datetime, float] = defaultdict(float)
    for (_t0, v0), (t1, v1) in zip(series, series[1:], strict=False):
        end = t1 - dt.timedelta(microseconds=1)
        hours[local_hour_start(end, tz)] += max(v1 - v0, 0.0)
        days[local_day_start(end, tz)] += max(v1 - v0, 0.0)
    bad = 0
    for model, expected in ((ConsumptionHourly, hours), (ConsumptionDaily, days)):
        stored = dict(db.session.execute(select(model.bucket, model.import_wh).where(
            model.meter_id == meter_id)).all())
        for bucket in set(stored) | {b for b, v in expected.items() if v}:
            if not _close(stored.get(bucket, 0.0), expected.get(bucket, 0.0)):
                bad += 1
    return bad


def finish(result: Reconciliation) -> Reconciliation:
    """Fleet-wide checks: nothing out of the accepted window stored; how much is in quarantine."""
    from app.services.ingest import timestamp_window

    oldest, newest = timestamp_window()
    result.out_of_range_stored = db.session.execute(select(func.count()).select_from(Reading).where(
        (Reading.ts > newest) | (Reading.ts < oldest))).scalar()
    result.quarantined = db.session.execute(select(func.count()).select_from(QuarantinedRow)).scalar()
    result.cursors_out_of_range = db.session.execute(select(func.count()).select_from(CollectionCursor).where(
        (CollectionCursor.last_ts > newest) | (CollectionCursor.last_ts < oldest))).scalar()
    return result
