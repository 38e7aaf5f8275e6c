"""Rule: the export register grows on a meter (reverse flow: swapped wires or a meter turned around)."""

from __future__ import annotations

import pluggy

from app.services.analytics.rules import Finding, MeterSeries, RuleContext, clamp

hookimpl = pluggy.HookimplMarker("hes")


class ReverseEnergy:
    """Exported kWh over ``window_days`` at least ``min_export_kwh`` and ``min_share`` of the energy."""

    name = "reverse_energy"
    title = "Reverse energy flow"
    defaults = {"window_days": 7, "min_export_kwh": 0.5, "min_share": 0.05}

    def evaluate(self, series: MeterSeries, context: RuleContext) -> list[Finding]:
        """A finding when a consumer meter registers energy flowing back to the grid."""
        p = context.params
        window = int(p["window_days"])
        exported = sum(series.daily(window, values=series.export_kwh))
        imported = sum(series.daily(window))
        if exported < p["min_export_kwh"] or exported < p["min_share"] * (exported + imported):
            return []
        share = exported / (exported + imported)
        return [Finding(series.meter_id, self.name, clamp(0.5 + share / 2),
                        f"{exported:.2f} kWh registered as export in {window} days ({share:.0%} of the energy) "
                        f"on a consumer meter.",
                        {"export_kwh": round(exported, 3), "import_kwh": round(imported, 3)})]


@hookimpl
def hes_register_rules():
    """This folder's rule."""
    return [ReverseEnergy()]
