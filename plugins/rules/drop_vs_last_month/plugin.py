"""Rule: consumption of the last week fell by more than 80% against the average of the month before."""

from __future__ import annotations

import pluggy

from app.services.analytics.rules import Finding, MeterSeries, RuleContext, clamp, mean_or_none

hookimpl = pluggy.HookimplMarker("hes")


class DropVsLastMonth:
    """Average daily kWh of the last ``recent_days`` against the ``baseline_days`` before them."""

    name = "drop_vs_last_month"
    title = "Consumption drop against last month"
    defaults = {"recent_days": 7, "baseline_days": 30, "drop": 0.8, "min_baseline_kwh": 1.0, "min_days": 5}

    def evaluate(self, series: MeterSeries, context: RuleContext) -> list[Finding]:
        """A finding when the recent average is below ``(1 - drop)`` of last month's."""
        p = context.params
        recent_days = int(p["recent_days"])
        recent = series.daily(recent_days)
        baseline = series.daily(int(p["baseline_days"]), skip=recent_days)
        if len(recent) < min(p["min_days"], recent_days) or len(baseline) < p["min_days"]:
            return []
        now, before = mean_or_none(recent), mean_or_none(baseline)
        if before < p["min_baseline_kwh"] or now >= (1 - p["drop"]) * before:
            return []
        drop = 1 - now / before
        return [Finding(series.meter_id, self.name, clamp(drop),
                        f"Consumption fell {drop:.0%}: {now:.2f} kWh/day over the last {recent_days} days "
                        f"against {before:.2f} kWh/day in the {int(p['baseline_days'])} days before.",
                        {"recent_kwh_per_day": round(now, 3), "baseline_kwh_per_day": round(before, 3)})]


@hookimpl
def hes_register_rules():
    """This folder's rule."""
    return [DropVsLastMonth()]
