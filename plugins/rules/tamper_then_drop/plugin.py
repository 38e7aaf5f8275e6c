"""Rule: a tamper event (cover open, magnet, bypass …) followed by a drop in consumption."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pluggy

from app.services.analytics.rules import (
    TAMPER_EVENT_TYPES,
    Finding,
    MeterSeries,
    RuleContext,
    clamp,
    mean_or_none,
)

hookimpl = pluggy.HookimplMarker("hes")


class TamperThenDrop:
    """Average daily kWh in the ``window_days`` after a tamper event against the ``window_days`` before it."""

    name = "tamper_then_drop"
    title = "Tamper followed by a consumption drop"
    defaults = {"window_days": 7, "drop": 0.5, "min_days": 3, "min_before_kwh": 0.5}

    def evaluate(self, series: MeterSeries, context: RuleContext) -> list[Finding]:
        """One finding for the latest tamper event that consumption dropped after."""
        p = context.params
        window, zone = int(p["window_days"]), ZoneInfo(context.local_zone)
        for at, kind in sorted(series.events, reverse=True):
            if kind not in TAMPER_EVENT_TYPES:
                continue
            index = series.day_index(at.astimezone(zone).date())
            if index is None:
                continue
            before = [v for v in series.import_kwh[max(0, index - window):index] if v is not None]
            after = [v for v in series.import_kwh[index + 1:index + 1 + window] if v is not None]
            if len(before) < p["min_days"] or len(after) < p["min_days"]:
                continue
            was, now = mean_or_none(before), mean_or_none(after)
            if was < p["min_before_kwh"] or now >= (1 - p["drop"]) * was:
                continue
            drop = 1 - now / was
            return [Finding(series.meter_id, self.name, clamp(0.5 + drop / 2),
                            f"{kind.replace('_', ' ').capitalize()} on {at.astimezone(zone):%Y-%m-%d %H:%M}, then "
                            f"consumption fell {drop:.0%} ({was:.2f} → {now:.2f} kWh/day).",
                            {"event": kind, "event_at": at.isoformat(), "before_kwh_per_day": round(was, 3),
                             "after_kwh_per_day": round(now, 3)})]
        return []


@hookimpl
def hes_register_rules():
    """This folder's rule."""
    return [TamperThenDrop()]
