"""Theft detection on a labelled synthetic fleet: precision and recall of the rules alone, the learned model
alone, and both together.

Load shapes come from the simulator's meter model (``simulator/model.py``: per-meter base load, hourly
shape, day factors). A share of the meters is stolen from over the last days with one of five patterns
(bypass, magnet, reverse, gradual drop, night-only); a few honest meters change for honest reasons (a
household away on holiday, one that doubled its load) so false alarms are possible.

    .venv/bin/python -m bench.bench_detection [--meters 600] [--days 60] [--theft 0.1] [--seed 7]
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections import defaultdict

import numpy as np
from sqlalchemy import insert

from bench.common import bench_app, print_table
from simulator.model import day_factor, slot_weights

PATTERNS = ("bypass", "magnet", "reverse", "gradual_drop", "night_only")
HONEST_CHANGES = ("holiday", "new_appliance")
AS_OF = dt.date(2026, 5, 1)


def meter_days(seed: int, first_day: dt.date, days: int) -> np.ndarray:
    """Honest hourly kWh of a simulated meter: ``days`` × 24."""
    weights, _ = slot_weights(seed, 0)
    slots = np.array(weights, dtype=float).reshape(24, 4).sum(axis=1)  # mWh per hour for day factor 1
    epoch_day = (first_day - dt.date(1970, 1, 1)).days
    factors = np.array([day_factor(seed, epoch_day + d) for d in range(days)], dtype=float)
    return factors[:, None] * slots[None, :] / 1e6  # mWh → kWh


def inject(kind: str, hourly: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray, int]:
    """Apply a theft pattern (or an honest change) from a start day in the last two weeks: the recorded
    import, the recorded export and the start day."""
    days = len(hourly)
    start = days - int(rng.integers(8, 15))
    recorded, export = hourly.copy(), np.zeros_like(hourly)
    if kind == "bypass":
        recorded[start:] *= rng.uniform(0.03, 0.15)
    elif kind == "magnet":
        recorded[start:] *= rng.uniform(0.2, 0.45)
    elif kind == "reverse":
        export[start:] = hourly[start:] * rng.uniform(0.3, 0.7)
        recorded[start:] *= 0.05
    elif kind == "gradual_drop":
        ramp_start = days - 30
        recorded[ramp_start:] *= np.linspace(1.0, rng.uniform(0.1, 0.3), days - ramp_start)[:, None]
        start = ramp_start
    elif kind == "night_only":
        recorded[start:, :6] = 0.0
        recorded[start:, 22:] = 0.0
    elif kind == "holiday":
        recorded[start:start + 10] *= 0.08
    elif kind == "new_appliance":
        recorded[start:] *= 2.0
    return recorded, export, start


def build_fleet(meters: int, days: int, theft: float, seed: int):
    """Seed areas, meters, rollups and tamper events; returns {meter id: label} (label None = honest)."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Area, ConsumptionDaily, ConsumptionHourly, Event, Meter, MeterBrand

    rng = np.random.default_rng(seed)
    brand = db.session.execute(select(MeterBrand.id).where(MeterBrand.name == "hes_sim")).scalar_one()
    areas = []
    for i in range(max(1, meters // 100)):
        area = Area(name=f"Detection Ward {i}")
        db.session.add(area)
        db.session.flush()
        areas.append(area.id)
    db.session.execute(insert(Meter), [
        {"number": f"DT{i:07d}", "brand_id": brand, "area_id": areas[i % len(areas)], "status": "active",
         "comm_mode": "dial_in", "online": True, "relay_state": "connected"} for i in range(meters)])
    ids = list(db.session.execute(select(Meter.id).order_by(Meter.id)).scalars())
    order = rng.permutation(len(ids))
    n_theft, n_honest = int(theft * len(ids)), int(0.03 * len(ids))
    labels: dict[int, str | None] = dict.fromkeys(ids)
    for rank, index in enumerate(order[:n_theft]):
        labels[ids[index]] = PATTERNS[rank % len(PATTERNS)]
    changes = {ids[index]: HONEST_CHANGES[rank % 2] for rank, index in enumerate(order[n_theft:n_theft + n_honest])}
    first = AS_OF - dt.timedelta(days=days)
    midnights = [dt.datetime.combine(first + dt.timedelta(days=d), dt.time(0), tzinfo=dt.UTC) for d in range(days)]
    hourly_rows, daily_rows, events = [], [], []
    for meter_id in ids:
        hourly = meter_days(meter_id * 7919 + seed, first, days)
        kind = labels[meter_id] or changes.get(meter_id)
        recorded, export, start = inject(kind, hourly, rng) if kind else (hourly, np.zeros_like(hourly), None)
        if kind == "magnet":
            events.append({"meter_id": meter_id, "ts": midnights[start] + dt.timedelta(hours=13),
                           "event_type": "magnetic_tamper", "code": 0, "severity": "warning", "source": "log"})
        for d, midnight in enumerate(midnights):
            daily_rows.append({"meter_id": meter_id, "bucket": midnight, "import_wh": float(recorded[d].sum() * 1000),
                               "export_wh": float(export[d].sum() * 1000), "intervals": 96, "on_time": 96})
            hourly_rows.extend({"meter_id": meter_id, "bucket": midnight + dt.timedelta(hours=h),
                                "import_wh": float(recorded[d, h] * 1000), "export_wh": float(export[d, h] * 1000),
                                "intervals": 4} for h in range(24))
        if len(hourly_rows) > 200_000:
            db.session.execute(insert(ConsumptionHourly), hourly_rows)
            hourly_rows = []
    db.session.execute(insert(ConsumptionHourly), hourly_rows)
    db.session.execute(insert(ConsumptionDaily), daily_rows)
    if events:
        db.session.execute(insert(Event), events)
    db.session.commit()
    return labels


def scores(flagged: set[int], labels: dict[int, str | None]) -> tuple:
    """(precision, recall, TP, FP, FN, recall per pattern)."""
    thieves = {m for m, label in labels.items() if label}
    tp, fp, fn = len(flagged & thieves), len(flagged - thieves), len(thieves - flagged)
    per_pattern = {}
    for pattern in PATTERNS:
        group = {m for m, label in labels.items() if label == pattern}
        per_pattern[pattern] = len(flagged & group) / len(group) if group else 0.0
    return (tp / (tp + fp) if tp + fp else 0.0, tp / (tp + fn) if tp + fn else 0.0, tp, fp, fn, per_pattern)


def main() -> None:
    """Build the fleet, run detection once, and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=600)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--theft", type=float, default=0.1, help="share of meters with injected theft")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    app = bench_app(HES_TIMEZONE="UTC")
    from app.services.analytics.detection import detect
    from app.services.analytics.model import NAME as MODEL

    with app.test_request_context():
        t0 = time.perf_counter()
        labels = build_fleet(args.meters, args.days, args.theft, args.seed)
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = detect(AS_OF)
        took = time.perf_counter() - t0
    by_rule: dict[str, set[int]] = defaultdict(set)
    for finding in result.findings:
        by_rule[finding.rule].add(finding.meter_id)
    rules = set().union(*(m for r, m in by_rule.items() if r != MODEL))
    model = by_rule.get(MODEL, set())
    rows = [("meters / thieves / honest changes", f"{len(labels)} / {sum(1 for v in labels.values() if v)} / "
             f"{int(0.03 * len(labels))}", ""),
            ("build fleet (rollups, events)", f"{built:.1f} s", ""), ("detection run", f"{took:.2f} s", "")]
    for name, flagged in (("rules alone", rules), ("model alone", model), ("rules + model", rules | model)):
        precision, recall, tp, fp, fn, per_pattern = scores(flagged, labels)
        rows.append((f"{name}: precision", f"{precision:.2f}", f"TP {tp}, FP {fp}"))
        rows.append((f"{name}: recall", f"{recall:.2f}", f"FN {fn}; " + ", ".join(
            f"{p} {r:.0%}" for p, r in per_pattern.items())))
    for rule, flagged in sorted(by_rule.items()):
        precision, recall, tp, fp, _fn, _ = scores(flagged, labels)
        rows.append((f"rule {rule}", f"{len(flagged)} flagged", f"precision {precision:.2f}, TP {tp}, FP {fp}"))
    print_table(f"Theft detection: {args.meters} meters × {args.days} days, {args.theft:.0%} thieves "
                f"(seed {args.seed})", rows)


if __name__ == "__main__":
    main()
