"""Each rule plugin on hand-made series: it fires on the pattern it is for and stays quiet on normal use."""

from __future__ import annotations

import datetime as dt

import pytest

from app.plugins.manager import build_manager
from app.services.analytics.features import meter_features
from app.services.analytics.model import detect_anomalies
from app.services.analytics.rules import MeterSeries, RuleContext
from tests.analytics.conftest import SHAPE

AS_OF = dt.date(2026, 3, 31)
DAYS = tuple(AS_OF - dt.timedelta(days=45 - i) for i in range(45))


@pytest.fixture(scope="module")
def rules():
    """The rules registered by the folders under plugins/rules/."""
    pm = build_manager()
    return {rule.name: rule for batch in pm.hook.hes_register_rules() for rule in batch}


def series(daily: list[float | None], *, export: list[float] | None = None, shape=SHAPE, hourly=None,
           events=()) -> MeterSeries:
    """A 45-day series; hourly values follow ``shape`` unless given."""
    hours = hourly or [None if kwh is None else tuple(kwh * s / sum(shape) for s in shape) for kwh in daily]
    return MeterSeries(meter_id=1, days=DAYS, import_kwh=tuple(daily), export_kwh=tuple(export or [0.0] * 45),
                       hourly_kwh=tuple(h if h is not None else (None,) * 24 for h in hours), events=tuple(events))


def run(rule, s: MeterSeries, **context):
    return rule.evaluate(s, RuleContext(as_of=AS_OF, params=dict(rule.defaults), **context))


def test_every_required_rule_is_registered(rules):
    assert {"drop_vs_last_month", "below_area_average", "tamper_then_drop", "flat_line",
            "day_night_shift"} <= set(rules)
    for rule in rules.values():
        assert rule.title and rule.defaults


def test_drop_vs_last_month(rules):
    rule = rules["drop_vs_last_month"]
    found = run(rule, series([10.0] * 38 + [1.5] * 7))
    assert len(found) == 1 and found[0].rule == "drop_vs_last_month" and found[0].score == pytest.approx(0.85)
    assert "85%" in found[0].reason
    assert run(rule, series([10.0] * 38 + [2.5] * 7)) == []  # a 75% drop is below the 80% threshold
    assert run(rule, series([10.0] * 45)) == []
    assert run(rule, series([None] * 38 + [0.0] * 7)) == []  # no baseline: nothing to compare with


def test_below_area_average(rules):
    rule = rules["below_area_average"]
    area = tuple([10.0] * 45)
    found = run(rule, series([2.5] * 45), area_daily_kwh=area, area_meters=8)
    assert len(found) == 1 and "25%" in found[0].reason
    assert run(rule, series([3.5] * 45), area_daily_kwh=area, area_meters=8) == []
    assert run(rule, series([2.5] * 45), area_daily_kwh=area, area_meters=2) == []  # too few neighbours


def test_tamper_then_drop(rules):
    rule = rules["tamper_then_drop"]
    at = dt.datetime.combine(DAYS[35], dt.time(14), tzinfo=dt.UTC)
    found = run(rule, series([8.0] * 36 + [2.0] * 9, events=[(at, "cover_open")]))
    assert len(found) == 1 and found[0].details["event"] == "cover_open"
    assert run(rule, series([8.0] * 45, events=[(at, "cover_open")])) == []  # tamper, but no drop
    assert run(rule, series([8.0] * 36 + [2.0] * 9)) == []  # drop, but no tamper
    assert run(rule, series([8.0] * 36 + [2.0] * 9, events=[(at, "power_failure")])) == []


def test_flat_line(rules):
    rule = rules["flat_line"]
    flat = [tuple([0.2] * 24)] * 45
    found = run(rule, series([4.8] * 45, hourly=flat))
    assert len(found) == 1 and found[0].details["coefficient_of_variation"] == 0
    assert run(rule, series([4.8] * 45)) == []  # a household's shape varies hour to hour
    assert run(rule, series([0.0] * 45, hourly=[tuple([0.0] * 24)] * 45)) == []  # zero is not "flat use"


def test_day_night_shift(rules):
    rule = rules["day_night_shift"]
    night_theft = tuple(0.0 if h < 6 else s for h, s in enumerate(SHAPE))
    hours = [tuple(8 * s / 24 for s in SHAPE)] * 38 + [tuple(8 * s / 24 for s in night_theft)] * 7
    found = run(rule, series([8.0] * 45, hourly=hours))
    assert len(found) == 1 and found[0].details["recent_night_share"] == 0
    assert "fell" in found[0].reason
    assert run(rule, series([8.0] * 45)) == []


def test_reverse_energy(rules):
    rule = rules["reverse_energy"]
    assert len(run(rule, series([5.0] * 45, export=[0.0] * 38 + [3.0] * 7))) == 1
    assert run(rule, series([5.0] * 45)) == []


def test_model_flags_the_outlier_and_explains_why():
    normal = {i: meter_features(series([8.0 + (i % 5)] * 45), RuleContext(AS_OF, {})) for i in range(60)}
    night_thief = [tuple(0.0 if h < 6 else 9 * s / 24 for h, s in enumerate(SHAPE))] * 45
    odd = meter_features(series([9.0] * 45, hourly=night_thief), RuleContext(AS_OF, {}))
    found = detect_anomalies({**normal, 999: odd}, {"contamination": 0.02, "min_meters": 20, "trees": 200,
                                                    "top_features": 3, "seed": 0})
    assert 999 in {f.meter_id for f in found}
    finding = next(f for f in found if f.meter_id == 999)
    assert finding.details["drivers"][0]["feature"] == "night_share"
    assert "night-time share" in finding.reason
    assert detect_anomalies(dict(list(normal.items())[:10]), {"contamination": 0.02, "min_meters": 20,
                                                              "trees": 50, "top_features": 3, "seed": 0}) == []
