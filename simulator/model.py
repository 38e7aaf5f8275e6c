"""Deterministic meter physics: load shape, energy integration, instantaneous values, history.

Everything is a pure function of the meter's seed, the time and the meter's list of energy
segments, so weeks of history cost no memory and any read is reproducible by tests.
Energy is integrated in integer milli-watt-hours per 15-minute slot; the value at an
arbitrary instant adds the current slot's energy pro rata (floored), so a register read at
a slot boundary equals the load-profile entry captured at that boundary exactly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from functools import lru_cache

SLOT_SECONDS = 900
SLOTS_PER_DAY = 96
DAY = 86400
UTC = dt.UTC

# Relative load per hour of the local day: low night, morning and evening peaks.
_HOURLY_SHAPE = (
    40, 35, 33, 32, 33, 40, 70, 140, 150, 110, 85, 80,
    85, 80, 75, 80, 95, 130, 180, 200, 190, 160, 110, 60,
)


def _hash_int(*parts: object) -> int:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def base_load_watts(seed: int) -> int:
    """Per-meter base load in watts (between 250 and 1250)."""
    return 250 + _hash_int("base", seed) % 1001


@lru_cache(maxsize=4096)
def slot_weights(seed: int, utc_offset_minutes: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Per-slot energy weights over a local day, and their prefix sums (cached per meter).

    Slot s of a day has energy weight * day_factor milli-watt-hours; the slot is counted
    from UTC midnight, the shape is applied on local time.
    """
    base = base_load_watts(seed)
    weights = []
    for slot in range(SLOTS_PER_DAY):
        local_minute = (slot * 15 + utc_offset_minutes) % 1440
        shape = _HOURLY_SHAPE[local_minute // 60]
        noise = 85 + _hash_int("slot", seed, slot) % 31
        # watts * shape% * noise% * 0.25 h * 1000 mWh/Wh, divided by the mean day factor 10.
        weights.append(max(1, base * shape * noise * 250 // (100 * 100 * 10)))
    prefix = [0]
    for weight in weights:
        prefix.append(prefix[-1] + weight)
    return tuple(weights), tuple(prefix)


def day_factor(seed: int, day_index: int) -> int:
    """Integer multiplier (about 10) of UTC day `day_index`: weekends higher, some days busier."""
    weekday = (day_index + 3) % 7  # 1970-01-01 was a Thursday (weekday 3)
    factor = 8 + _hash_int("day", seed, day_index) % 5
    return factor + (3 if weekday >= 5 else 0)


def slot_energy_mwh(seed: int, slot: int, utc_offset_minutes: int = 0) -> int:
    """Base energy (mWh) consumed in absolute 15-minute slot `slot` (epoch seconds // 900)."""
    weights, _ = slot_weights(seed, utc_offset_minutes)
    day, within = divmod(slot, SLOTS_PER_DAY)
    return weights[within] * day_factor(seed, day)


def base_cumulative_mwh(seed: int, start: float, t: float, utc_offset_minutes: int = 0) -> int:
    """Base energy (mWh) consumed from `start` to `t` (epoch seconds), pro rata inside slots."""
    if t <= start:
        return 0
    return _cum_from_epoch_day(seed, start, t, utc_offset_minutes)


def _slot_cum(seed: int, first_day: int, ms: int, utc_offset_minutes: int) -> int:
    """Energy from first_day 00:00 UTC to ms (milliseconds since epoch)."""
    weights, prefix = slot_weights(seed, utc_offset_minutes)
    slot, into_ms = divmod(ms, SLOT_SECONDS * 1000)
    day, within = divmod(slot, SLOTS_PER_DAY)
    total = 0
    for d in range(first_day, day):
        total += prefix[-1] * day_factor(seed, d)
    factor = day_factor(seed, day)
    total += prefix[within] * factor
    total += weights[within] * factor * into_ms // (SLOT_SECONDS * 1000)
    return total


def _cum_from_epoch_day(seed: int, start: float, t: float, utc_offset_minutes: int) -> int:
    start_ms, t_ms = round(start * 1000), round(t * 1000)
    first_day = start_ms // (DAY * 1000)
    return _slot_cum(seed, first_day, t_ms, utc_offset_minutes) - _slot_cum(
        seed, first_day, start_ms, utc_offset_minutes
    )


def initial_import_wh(seed: int) -> int:
    """Register reading (Wh) at install time, so meters do not all start at zero."""
    return 1000 + _hash_int("initial", seed) % 50000


def voltage_dv(seed: int, slot: int) -> int:
    """Average L1 voltage in the slot, in 0.1 V."""
    return 2250 + _hash_int("volt", seed, slot) % 101


def frequency_chz(seed: int, t: float) -> int:
    """Network frequency in 0.01 Hz around 50 Hz."""
    return 4995 + _hash_int("freq", seed, int(t) // 10) % 11


def power_factor_milli(seed: int, slot: int) -> int:
    """Power factor in thousandths (0.900 .. 0.990)."""
    return 900 + _hash_int("pf", seed, slot) % 91


def slot_of(t: float) -> int:
    """Absolute 15-minute slot containing t."""
    return int(t // SLOT_SECONDS)


def to_datetime(t: float) -> dt.datetime:
    """Epoch seconds to tz-aware UTC datetime."""
    return dt.datetime.fromtimestamp(t, UTC)


def luhn_check_digit(digits: str) -> int:
    """Luhn (mod 10) check digit for a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        value = int(ch)
        if i % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return (10 - total % 10) % 10


def make_token(credit_cents: int, serial_no: int = 0) -> str:
    """Build a simulator-valid 20-digit token: 2 class digits, 6 credit digits, 11 id digits, check."""
    if not 0 <= credit_cents <= 999999:
        raise ValueError("credit must fit 6 digits of cents")
    body = f"01{credit_cents:06d}{serial_no % 10**11:011d}"
    return body + str(luhn_check_digit(body))
