"""Per-meter consumption features for the learned model, computed from the same series the rules see."""

from __future__ import annotations

import math
from statistics import fmean, pstdev

from app.services.analytics.rules import TAMPER_EVENT_TYPES, MeterSeries, RuleContext

# name -> how a person reads it in an explanation
FEATURES: dict[str, str] = {
    "mean_kwh_per_day": "average kWh/day (30 days)",
    "ratio_to_area": "share of the area's average",
    "recent_vs_baseline": "last 7 days against the 30 before",
    "night_share": "night-time share (last 7 days)",
    "night_share_change": "night-time share against its usual value",
    "hourly_cv": "hour-to-hour variation (last 7 days)",
    "zero_days": "days with zero consumption (last 14)",
    "export_share": "share of energy exported (last 7 days)",
    "tamper_events": "tamper events",
    "trend_per_day": "trend of daily consumption (per day, relative)",
}
NIGHT_HOURS = range(0, 6)


def _night(days: list[list[float | None]]) -> float | None:
    night = total = 0.0
    for day in days:
        for hour, value in enumerate(day):
            if value is not None:
                total += value
                night += value if hour in NIGHT_HOURS else 0.0
    return night / total if total > 0 else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _slope(values: list[float | None]) -> float | None:
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(points) < 7:
        return None
    mx = fmean(i for i, _ in points)
    my = fmean(v for _, v in points)
    sxx = sum((i - mx) ** 2 for i, _ in points)
    if not sxx or my <= 0:
        return None
    return sum((i - mx) * (v - my) for i, v in points) / sxx / my


def meter_features(series: MeterSeries, context: RuleContext) -> dict[str, float | None]:
    """The feature vector of one meter (None where the data does not allow a value)."""
    month = series.daily(30)
    recent, baseline = series.daily(7), series.daily(30, skip=7)
    mean30 = fmean(month) if month else None
    area = [a for a in context.area_daily_kwh[-30:] if a is not None]
    hours = [v for day in series.hours(7) for v in day if v is not None]
    hourly_mean = fmean(hours) if hours else 0.0
    exported, imported = sum(series.daily(7, values=series.export_kwh)), sum(recent)
    night_now, night_before = _night(series.hours(7)), _night(series.hours(28, skip=7))
    fortnight = series.daily(14)
    return {
        "mean_kwh_per_day": mean30,
        "ratio_to_area": _ratio(mean30, fmean(area) if area and context.area_meters >= 3 else None),
        "recent_vs_baseline": _ratio(fmean(recent) if recent else None, fmean(baseline) if baseline else None),
        "night_share": night_now,
        "night_share_change": _ratio(night_now, night_before),
        "hourly_cv": pstdev(hours) / hourly_mean if len(hours) >= 24 and hourly_mean > 0 else None,
        "zero_days": float(sum(1 for v in fortnight if v <= 1e-6)) if fortnight else None,
        "export_share": exported / (exported + imported) if exported + imported > 0 else None,
        "tamper_events": float(sum(1 for _, kind in series.events if kind in TAMPER_EVENT_TYPES)),
        "trend_per_day": _slope(list(series.import_kwh[-30:])),
    }


def as_model_input(value: float | None, name: str) -> float | None:
    """Ratios on a log scale so that halving and doubling are equally far from normal."""
    if value is None:
        return None
    if name in ("ratio_to_area", "recent_vs_baseline", "night_share_change"):
        return math.log(max(value, 1e-3))
    return value
