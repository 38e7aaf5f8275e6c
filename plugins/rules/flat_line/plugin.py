"""Rule: hourly consumption that stays almost constant for days (a stuck register, a fixed bypass shunt)."""

from __future__ import annotations

from statistics import fmean, pstdev

import pluggy

from app.services.analytics.rules import Finding, MeterSeries, RuleContext, clamp

hookimpl = pluggy.HookimplMarker("hes")


class FlatLine:
    """Coefficient of variation of the hourly kWh of the last ``days`` days under ``max_cv``."""

    name = "flat_line"
    title = "Flat-line consumption"
    defaults = {"days": 3, "max_cv": 0.05, "min_mean_kwh": 0.01, "min_coverage": 0.9}

    def evaluate(self, series: MeterSeries, context: RuleContext) -> list[Finding]:
        """A finding when real households would vary far more than this meter does."""
        p = context.params
        days = int(p["days"])
        values = [v for day in series.hours(days) for v in day if v is not None]
        if len(values) < p["min_coverage"] * 24 * days:
            return []
        mean = fmean(values)
        if mean < p["min_mean_kwh"]:
            return []
        cv = pstdev(values) / mean
        if cv >= p["max_cv"]:
            return []
        return [Finding(series.meter_id, self.name, clamp(1 - cv / p["max_cv"] / 2),
                        f"Hourly consumption has stayed at {mean:.3f} kWh (±{cv:.1%}) for {days} days; "
                        f"a household's load varies far more.",
                        {"mean_kwh_per_hour": round(mean, 4), "coefficient_of_variation": round(cv, 4)})]


@hookimpl
def hes_register_rules():
    """This folder's rule."""
    return [FlatLine()]
