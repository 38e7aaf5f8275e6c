"""Rule: the share of energy used at night changed sharply (theft only at night, or only by day)."""

from __future__ import annotations

import pluggy

from app.services.analytics.rules import Finding, MeterSeries, RuleContext, clamp

hookimpl = pluggy.HookimplMarker("hes")


def night_share(days: list[list[float | None]], start: int, end: int) -> tuple[float, float] | None:
    """(night kWh, total kWh) of complete hours; night is local hours ``start`` ≤ h < ``end`` (may wrap)."""
    night = total = 0.0
    for day in days:
        for hour, value in enumerate(day):
            if value is None:
                continue
            total += value
            if (start <= hour < end) if start < end else (hour >= start or hour < end):
                night += value
    return (night, total) if total > 0 else None


class DayNightShift:
    """Night share of the last ``recent_days`` against the ``baseline_days`` before, changed ``factor``-fold."""

    name = "day_night_shift"
    title = "Day/night ratio shift"
    defaults = {"recent_days": 7, "baseline_days": 28, "night_start": 0, "night_end": 6, "factor": 2.5,
                "min_kwh": 1.0}

    def evaluate(self, series: MeterSeries, context: RuleContext) -> list[Finding]:
        """A finding when the night share fell below 1/factor or rose above factor × its usual value."""
        p = context.params
        recent_days, start, end = int(p["recent_days"]), int(p["night_start"]), int(p["night_end"])
        recent = night_share(series.hours(recent_days), start, end)
        baseline = night_share(series.hours(int(p["baseline_days"]), skip=recent_days), start, end)
        if recent is None or baseline is None or recent[1] < p["min_kwh"] or baseline[1] < p["min_kwh"]:
            return []
        was, now = baseline[0] / baseline[1], recent[0] / recent[1]
        if was <= 0:
            return []
        ratio = now / was
        if 1 / p["factor"] < ratio < p["factor"]:
            return []
        direction = "fell" if ratio < 1 else "rose"
        return [Finding(series.meter_id, self.name, clamp(1 - min(ratio, 1 / ratio) if ratio else 1.0),
                        f"Night-time share of consumption {direction} from {was:.1%} to {now:.1%} "
                        f"(hours {start:02d}–{end:02d}).",
                        {"baseline_night_share": round(was, 4), "recent_night_share": round(now, 4)})]


@hookimpl
def hes_register_rules():
    """This folder's rule."""
    return [DayNightShift()]
