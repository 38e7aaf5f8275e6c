"""What a theft/leakage rule sees and returns: a meter's consumption series, the context, and findings.

Pure data, no database and no app: rule plugins (``plugins/rules/<rule>/plugin.py``) import these types
and are tested on hand-made series.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import fmean
from typing import Protocol

# Event types that mean someone opened or fooled the meter (the HES standard event names).
TAMPER_EVENT_TYPES = ("cover_open", "terminal_cover_open", "magnetic_tamper", "reverse_flow", "neutral_missing",
                      "bypass", "current_reversal", "tamper")


@dataclass(frozen=True)
class Finding:
    """A suspicion about one meter: which rule, how strong (0–1) and why, in words and figures."""

    meter_id: int
    rule: str
    score: float
    reason: str
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MeterSeries:
    """A meter's consumption over consecutive local days (oldest first; the last is the day before ``as_of``).

    ``None`` marks a day (or hour) with no data, as opposed to a measured zero.
    """

    meter_id: int
    days: tuple[dt.date, ...]
    import_kwh: tuple[float | None, ...]
    export_kwh: tuple[float | None, ...] = ()
    hourly_kwh: tuple[tuple[float | None, ...], ...] = ()  # per day, 24 local hours
    events: tuple[tuple[dt.datetime, str], ...] = ()  # (UTC time, event type)
    number: str = ""

    def daily(self, last: int, skip: int = 0, values: Sequence[float | None] | None = None) -> list[float]:
        """Known daily values of the ``last`` days that end ``skip`` days before the newest day."""
        values = self.import_kwh if values is None else values
        end = len(values) - skip
        return [v for v in values[max(0, end - last):max(0, end)] if v is not None]

    def hours(self, last_days: int, skip: int = 0) -> list[list[float | None]]:
        """The 24 hourly values of each of the ``last_days`` days ending ``skip`` days before the newest."""
        end = len(self.hourly_kwh) - skip
        return [list(day) for day in self.hourly_kwh[max(0, end - last_days):max(0, end)]]

    def day_index(self, day: dt.date) -> int | None:
        """Position of a local day in the series, or None when outside it."""
        if not self.days or not self.days[0] <= day <= self.days[-1]:
            return None
        return (day - self.days[0]).days


@dataclass(frozen=True)
class RuleContext:
    """What a rule may know beyond the meter: the run's day, its thresholds, and the meter's area."""

    as_of: dt.date
    params: Mapping[str, float]
    # Mean daily kWh per meter of the meter's area for each day of the series (None: no data that day).
    area_daily_kwh: tuple[float | None, ...] = ()
    area_meters: int = 0
    local_zone: str = "UTC"


class Rule(Protocol):
    """A theft/leakage rule as plugins register it."""

    name: str
    title: str
    defaults: Mapping[str, float]

    def evaluate(self, series: MeterSeries, context: RuleContext) -> list[Finding]:
        """Findings for one meter (an empty list when nothing is suspicious)."""


def mean_or_none(values: Sequence[float]) -> float | None:
    """The mean of the values, or None when there are none."""
    return fmean(values) if values else None


def clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    """``value`` limited to ``[low, high]``."""
    return max(low, min(high, value))
