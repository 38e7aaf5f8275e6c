"""Rule: a meter consumes less than 30% of the average meter of its area (neighbourhood comparison)."""

from __future__ import annotations

import pluggy

from app.services.analytics.rules import Finding, MeterSeries, RuleContext, clamp, mean_or_none

hookimpl = pluggy.HookimplMarker("hes")


class BelowAreaAverage:
    """Average daily kWh over ``window_days`` against the area's per-meter average on the same days."""

    name = "below_area_average"
    title = "Far below the area average"
    defaults = {"window_days": 30, "ratio": 0.3, "min_area_meters": 5, "min_days": 7, "min_area_kwh": 0.5}

    def evaluate(self, series: MeterSeries, context: RuleContext) -> list[Finding]:
        """A finding when the meter's average is under ``ratio`` × the area's on the days both have data."""
        p = context.params
        if context.area_meters < p["min_area_meters"] or not context.area_daily_kwh:
            return []
        window = int(p["window_days"])
        start = max(0, len(series.import_kwh) - window)
        pairs = [(mine, area) for mine, area in zip(series.import_kwh[start:], context.area_daily_kwh[start:],
                                                    strict=False) if mine is not None and area is not None]
        if len(pairs) < p["min_days"]:
            return []
        mine = mean_or_none([m for m, _ in pairs])
        area = mean_or_none([a for _, a in pairs])
        if area < p["min_area_kwh"] or mine >= p["ratio"] * area:
            return []
        share = mine / area
        return [Finding(series.meter_id, self.name, clamp(1 - share),
                        f"Uses {share:.0%} of its area's average: {mine:.2f} kWh/day against {area:.2f} kWh/day "
                        f"per meter over {len(pairs)} days.",
                        {"meter_kwh_per_day": round(mine, 3), "area_kwh_per_day": round(area, 3),
                         "area_meters": context.area_meters})]


@hookimpl
def hes_register_rules():
    """This folder's rule."""
    return [BelowAreaAverage()]
