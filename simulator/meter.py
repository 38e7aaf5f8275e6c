"""One simulated meter: small mutable state plus COSEM reads/writes/actions computed lazily."""

from __future__ import annotations

import calendar
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.comms.cosem import decode_datetime, encode_datetime
from simulator import axdr, behaviours, model
from simulator import objects as o
from simulator.axdr import Typed, structure
from simulator.dlms_server import (
    MANAGEMENT_CLIENT,
    OBJECT_UNDEFINED,
    OTHER_REASON,
    PUBLIC_CLIENT,
    READ_WRITE_DENIED,
    TEMPORARY_FAILURE,
    TYPE_UNMATCHED,
    ClientContext,
    CosemError,
    RawData,
)

MAX_RECORDED_EVENTS = 200
PRICE_CENTS_PER_KWH = 20
INITIAL_CREDIT_CENTS = 50000
LOW_CREDIT_CENTS = 1000
MAX_CREDIT_CENTS = 100_000_00
DEFAULT_FIRMWARE = "HESSIM-1.0.0"
IMAGE_STATUS = {"not_initiated": 0, "initiated": 1, "verify_ok": 3, "verify_failed": 4, "activated": 6}
TOKEN_FORMAT_OK, TOKEN_EXECUTION_OK = 0, 3
TOKEN_FORMAT_FAIL, TOKEN_AUTH_FAIL, TOKEN_VALIDATION_FAIL, TOKEN_EXECUTION_FAIL = 4, 5, 6, 7
TOKEN_NOT_PROCESSED = 8
TAMPERS = ("magnet", "cover_open", "reverse_flow", "neutral_missing", "bypass")
TAMPER_EVENT_CODE = {"magnet": 11, "cover_open": 10, "reverse_flow": 12, "neutral_missing": 13, "bypass": 14}


@dataclass
class FleetConfig:
    """Settings every meter of a fleet shares (one object, referenced by all meters)."""

    interface: str = "wrapper"
    auth: str = "low"
    password: bytes = b"00000000"
    block_cipher_key: bytes = bytes(range(16))
    authentication_key: bytes = bytes(range(16, 32))
    history_days: int = 35
    utc_offset_minutes: int = 0
    image_block_size: int = 128
    start_time: float = field(default_factory=time.time)
    event_sink: Callable[[Meter, int], None] | None = None
    push_sink: Callable[[Meter], None] | None = None
    behaviours: frozenset[str] | None = None  # simulator.behaviours every meter starts with

    @property
    def install_time(self) -> float:
        """When every meter's history starts: history_days before start, at a UTC midnight."""
        day = int(self.start_time // model.DAY) - self.history_days
        return float(day * model.DAY)


def _u32(v: int) -> Typed:
    return Typed(axdr.UINT32, v)


def _octets(v: bytes) -> Typed:
    return Typed(axdr.OCTET_STRING, v)


def _capture_list(columns: tuple[tuple[int, bytes, int], ...]) -> Typed:
    return axdr.array([structure(Typed(axdr.UINT16, c), _octets(ln), Typed(axdr.INT8, a), Typed(axdr.UINT16, 0))
                       for c, ln, a in columns])


class Meter:
    """A simulated meter. Values come from model.py and a few mutable fields; no history is stored."""

    __slots__ = (
        "behaviours",
        "cfg",
        "clock_offset",
        "clock_steps",
        "control_state",
        "credit_cents",
        "credit_import_wh",
        "demand_period",
        "drift_per_day",
        "drift_ref",
        "events",
        "faults",
        "firmware",
        "gbt_blocks_sent",
        "image",
        "index",
        "last_client_invocation_counter",
        "last_token",
        "limiter_threshold",
        "link",
        "low_credit_raised",
        "password",
        "push_destination",
        "relay_connected",
        "seed",
        "segments",
        "serial",
        "server_invocation_counter",
        "system_title",
        "token_status",
        "token_time",
        "tokens_used",
    )

    def __init__(self, serial: str, index: int, seed: int, cfg: FleetConfig) -> None:
        """Create meter `serial` (fleet position index) with its load seed."""
        self.serial = serial
        self.index = index
        self.seed = seed
        self.cfg = cfg
        self.clock_offset = 0.0
        # When the clock was stepped: (true time, whole seconds the clock is off from then on). Capture
        # stamps of profiles and logs follow these steps (drift, seconds a day, is left out of them).
        self.clock_steps: list[tuple[float, int]] | None = None
        self.drift_per_day = float(((seed >> 8) % 11) - 5)  # -5..+5 s/day
        self.drift_ref = cfg.start_time
        self.relay_connected = True
        self.control_state = 1
        self.segments: list[tuple[float, int, int]] | None = None
        self.faults: dict[str, Any] | None = None
        self.events: list[tuple[float, int, float]] | None = None  # (stamp, code, true time)
        self.credit_cents = INITIAL_CREDIT_CENTS
        self.credit_import_wh = -1
        self.tokens_used: set[str] | None = None
        self.last_token = b""
        self.token_status = TOKEN_NOT_PROCESSED
        self.token_time = 0.0
        self.image: dict[str, Any] | None = None
        self.firmware = DEFAULT_FIRMWARE
        self.gbt_blocks_sent = 0
        self.password: bytes | None = None
        self.last_client_invocation_counter = 0
        self.server_invocation_counter = 0
        self.limiter_threshold = 10000
        self.demand_period = 900
        self.low_credit_raised = False
        self.push_destination = ""
        self.link: Any = None
        self.behaviours: frozenset[str] | None = cfg.behaviours
        # Manufacturer id "SIM" and five bytes unique to the meter, as real system titles carry a serial.
        self.system_title = b"SIM" + hashlib.sha256(serial.encode()).digest()[:5]

    # ----- secrets and access --------------------------------------------------------------

    def auth_for_client(self, client_address: int) -> tuple[str, bytes, bytes, bytes] | None:
        """(authentication name, password or HLS secret, block key, auth key) for a client, None if unknown."""
        if client_address == PUBLIC_CLIENT:
            return "none", b"", self.cfg.block_cipher_key, self.cfg.authentication_key
        if client_address == MANAGEMENT_CLIENT:
            password = self.password if self.password is not None else self.cfg.password
            return self.cfg.auth, password, self.cfg.block_cipher_key, self.cfg.authentication_key
        return None

    # ----- time and energy ----------------------------------------------------------------------

    def clock(self, now: float | None = None) -> float:
        """The meter's own clock (epoch seconds), including offset and drift."""
        now = time.time() if now is None else now
        return now + self.clock_offset + self.drift_per_day * (now - self.drift_ref) / model.DAY

    def set_clock(self, when: float, now: float | None = None) -> None:
        """Set the meter clock; accumulated drift restarts from zero."""
        now = time.time() if now is None else now
        self.set_offset(when - now, now)
        self.record_event(3, now)

    def set_offset(self, offset: float, now: float | None = None, since: float | None = None) -> None:
        """Put the clock ``offset`` seconds off the true time, from ``since`` (default now; earlier to say
        the clock has been off for a while, so the rows captured since then carry the wrong stamps)."""
        now = time.time() if now is None else now
        since = now if since is None else min(since, now)
        self.clock_offset = float(offset)
        self.drift_ref = now
        steps = [s for s in self.clock_steps or () if s[0] < since]
        if int(offset) != self.stamp_offset(since):
            steps.append((since, int(offset)))
        self.clock_steps = steps or None

    def stamp_offset(self, t: float) -> int:
        """Whole seconds the meter's clock was off at true time t (what its capture stamps carry)."""
        offset = 0
        for since, value in self.clock_steps or ():
            if since > t:
                break
            offset = value
        return offset

    def clock_segments(self, now: float) -> list[tuple[float, float, int]]:
        """(true from, true to, offset) spans of the meter's clock up to now."""
        bounds = [(-float("inf"), 0), *(self.clock_steps or ())]
        return [(since, bounds[i + 1][0] if i + 1 < len(bounds) else now, offset)
                for i, (since, offset) in enumerate(bounds)]

    def _factors(self) -> tuple[int, int]:
        if not self.relay_connected:
            return 0, 0
        faults = self.faults or {}
        if "reverse_flow" in faults:
            return 0, 100
        if "bypass" in faults:
            return 10, 0
        if "neutral_missing" in faults:
            return 30, 0
        return 100, 0

    def energy_changed(self, now: float | None = None) -> None:
        """Start a new energy segment with the current relay/tamper factors."""
        now = time.time() if now is None else now
        if self.segments is None:
            self.segments = [(self.cfg.install_time, 100, 0)]
        factors = self._factors()
        if self.segments[-1][1:] != factors:
            self.segments.append((now, *factors))

    def energy_mwh(self, t: float) -> tuple[int, int]:
        """Cumulative (import, export) energy in mWh from install to t."""
        segments = self.segments or [(self.cfg.install_time, 100, 0)]
        imp = exp = 0
        for i, (start, imp_pct, exp_pct) in enumerate(segments):
            if start >= t:
                break
            end = min(segments[i + 1][0], t) if i + 1 < len(segments) else t
            base = model.base_cumulative_mwh(self.seed, start, end, self.cfg.utc_offset_minutes)
            imp += base * imp_pct // 100
            exp += base * exp_pct // 100
        return imp, exp

    def import_wh(self, t: float) -> int:
        """Active energy import register (Wh) at t."""
        return model.initial_import_wh(self.seed) + self.energy_mwh(t)[0] // 1000

    def export_wh(self, t: float) -> int:
        """Active energy export register (Wh) at t."""
        return self.energy_mwh(t)[1] // 1000

    def apparent_wh(self, t: float) -> int:
        """Apparent energy import (VAh) at t (import over a 0.95 mean power factor)."""
        return self.import_wh(t) * 100 // 95

    def power_w(self, t: float) -> int:
        """Instantaneous active power (W): negative while energy flows in reverse."""
        imp_pct, exp_pct = self._factors()
        slot_w = model.slot_energy_mwh(self.seed, model.slot_of(t), self.cfg.utc_offset_minutes) * 4 // 1000
        return (slot_w * imp_pct - slot_w * exp_pct) // 100

    def current_ca(self, t: float) -> int:
        """Instantaneous current in 0.01 A."""
        slot = model.slot_of(t)
        return abs(self.power_w(t)) * 1_000_000 // (model.voltage_dv(self.seed, slot)
                                                   * model.power_factor_milli(self.seed, slot))

    def slot_average(self, slot: int) -> tuple[int, int]:
        """(average voltage dV, average current cA) over a completed slot."""
        start = slot * model.SLOT_SECONDS
        imp, exp = self.energy_mwh(start + model.SLOT_SECONDS)
        imp0, exp0 = self.energy_mwh(start)
        watts = ((imp - imp0) + (exp - exp0)) * 4 // 1000
        volts = model.voltage_dv(self.seed, slot)
        return volts, watts * 1_000_000 // (volts * model.power_factor_milli(self.seed, slot))

    def max_demand(self, t: float) -> tuple[int, float]:
        """(max slot-average import power in W, slot end time) in the current local month."""
        month_start = self._month_start(t)
        best, when = 0, month_start
        first = max(model.slot_of(month_start), model.slot_of(self.cfg.install_time))
        previous = self.energy_mwh(first * model.SLOT_SECONDS)[0]
        for slot in range(first, model.slot_of(t)):
            end = (slot + 1) * model.SLOT_SECONDS
            current = self.energy_mwh(end)[0]
            if (current - previous) * 4 // 1000 > best:
                best, when = (current - previous) * 4 // 1000, end
            previous = current
        return best, when

    def _month_start(self, t: float) -> float:
        local = model.to_datetime(t + self.cfg.utc_offset_minutes * 60)
        first = calendar.timegm((local.year, local.month, 1, 0, 0, 0))
        return first - self.cfg.utc_offset_minutes * 60

    # ----- credit ---------------------------------------------------------------------------------

    def credit(self, t: float) -> int:
        """Prepaid balance in cents at t: credit minus the price of energy used since the last top-up."""
        if self.credit_import_wh < 0:
            self.credit_import_wh = self.import_wh(self.cfg.start_time)
        used = self.import_wh(t) - self.credit_import_wh
        return self.credit_cents - used * PRICE_CENTS_PER_KWH // 1000

    def check_credit(self, now: float | None = None) -> None:
        """Raise the low-credit event once when the balance falls under the threshold."""
        now = time.time() if now is None else now
        low = self.credit(now) < LOW_CREDIT_CENTS
        if low and not self.low_credit_raised:
            self.low_credit_raised = True
            self.record_event(30, now)
        elif not low:
            self.low_credit_raised = False

    def enter_token(self, token: bytes, now: float | None = None) -> int:
        """Apply a 20-digit token; return the token status code (see the brand README)."""
        now = time.time() if now is None else now
        self.last_token, self.token_time = bytes(token), now
        text = bytes(token).decode("ascii", "replace")
        if len(text) != 20 or not text.isdigit():
            self.token_status = TOKEN_FORMAT_FAIL
        elif model.luhn_check_digit(text[:19]) != int(text[19]):
            self.token_status = TOKEN_AUTH_FAIL
        elif self.tokens_used is not None and text in self.tokens_used:
            self.token_status = TOKEN_VALIDATION_FAIL
        else:
            amount = int(text[2:8])
            balance = self.credit(now)
            if balance + amount > MAX_CREDIT_CENTS:
                self.token_status = TOKEN_EXECUTION_FAIL
            else:
                self.tokens_used = (self.tokens_used or set()) | {text}
                self.credit_cents = balance + amount
                self.credit_import_wh = self.import_wh(now)
                self.token_status = TOKEN_EXECUTION_OK
                self.check_credit(now)
        return self.token_status

    # ----- relay, tamper, events ------------------------------------------------------------

    def set_relay(self, connected: bool, now: float | None = None) -> None:
        """Connect or disconnect the load; records the relay event."""
        now = time.time() if now is None else now
        if connected == self.relay_connected:
            self.control_state = 1 if connected else 0
            return
        self.relay_connected = connected
        self.control_state = 1 if connected else 0
        self.energy_changed(now)
        self.record_event(21 if connected else 20, now)

    def set_tamper(self, kind: str, active: bool = True, now: float | None = None) -> None:
        """Start (or clear) a tamper condition; starting one logs and pushes its event."""
        if kind not in TAMPERS:
            raise ValueError(f"unknown tamper {kind!r}; use one of {', '.join(TAMPERS)}")
        now = time.time() if now is None else now
        faults = dict(self.faults or {})
        if active:
            faults[kind] = now
        else:
            faults.pop(kind, None)
        self.faults = faults or None
        self.energy_changed(now)
        if active:
            self.record_event(TAMPER_EVENT_CODE[kind], now)

    def record_event(self, code: int, now: float | None = None) -> None:
        """Append an event to its log and hand it to the fleet's push sink."""
        now = time.time() if now is None else now
        events = self.events if self.events is not None else []
        events.append((now + self.stamp_offset(now), code, now))
        del events[:-MAX_RECORDED_EVENTS]
        self.events = events
        if self.cfg.event_sink is not None:
            self.cfg.event_sink(self, code)

    def log_rows(self, log: bytes, now: float) -> list[tuple[float, int]]:
        """Rows (time, code) of an event log: synthetic power outages in history plus recorded events."""
        rows = self.history_rows(log)
        # Recorded events follow in the order they happened (stamps need not rise: a clock set back).
        rows += [(when, code) for when, code, _ in self.events or () if o.LOGS[o.log_of(code)] == log]
        return rows

    def history_rows(self, log: bytes) -> list[tuple[float, int]]:
        """The synthetic rows (time, code) of an event log before the simulator started: power outages."""
        rows: list[tuple[float, int]] = []
        if log == o.POWER_LOG:
            first_day = int(self.cfg.install_time // model.DAY)
            for day in range(first_day, int(self.cfg.start_time // model.DAY)):
                h = model._hash_int("outage", self.seed, day)
                if h % 9 == 0:
                    start = day * model.DAY + h % 80000
                    rows += [(float(start), 1), (float(start + 60 + h % 3000), 2)]
        return sorted(rows)

    # ----- image transfer -----------------------------------------------------------------------

    def _image_initiate(self, value: Any) -> None:
        if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], bytes)
                and isinstance(value[1], int) and value[1] > 0):
            raise CosemError(TYPE_UNMATCHED)
        identifier, size = value
        image = self.image
        if image and image["id"] == identifier and image["size"] == size and image["status"] == 1:
            return
        blocks = -(-size // self.cfg.image_block_size)
        self.image = {"id": identifier, "size": size, "blocks": bytearray(blocks), "status": 1}

    def _image_block(self, value: Any) -> None:
        image = self.image
        if not image or image["status"] != 1:
            raise CosemError(TEMPORARY_FAILURE)
        if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int)
                and isinstance(value[1], bytes)):
            raise CosemError(TYPE_UNMATCHED)
        number, data = value
        blocks = image["blocks"]
        if not 0 <= number < len(blocks):
            raise CosemError(19)
        size = self.cfg.image_block_size
        expected = size if number < len(blocks) - 1 else image["size"] - size * (len(blocks) - 1)
        if len(data) != expected:
            raise CosemError(OTHER_REASON)
        blocks[number] = 1

    def image_first_missing(self) -> int:
        """First block number not yet transferred (= block count when complete)."""
        if not self.image:
            return 0
        blocks = self.image["blocks"]
        missing = blocks.find(0)
        return len(blocks) if missing < 0 else missing

    def _image_verify(self) -> None:
        image = self.image
        if not image:
            raise CosemError(TEMPORARY_FAILURE)
        if image["status"] == 6:
            return
        complete = self.image_first_missing() == len(image["blocks"])
        image["status"] = 3 if complete else 4
        if not complete:
            raise CosemError(OTHER_REASON)

    def _image_activate(self, now: float) -> None:
        image = self.image
        if not image:
            raise CosemError(TEMPORARY_FAILURE)
        if image["status"] in (1, 4):
            self._image_verify()
        if image["status"] != 3:
            raise CosemError(OTHER_REASON)
        image["status"] = 6
        self.firmware = image["id"].decode("ascii", "replace")
        self.record_event(4, now)

    # ----- profiles ---------------------------------------------------------------------------

    def _grid(self, ln: bytes, lo: float, hi: float) -> list[float]:
        """A profile's capture instants in lo..hi: every period (load profile), local midnights (daily),
        local month starts (billing)."""
        local = self.cfg.utc_offset_minutes * 60
        if ln == o.BILLING_PROFILE:
            times, month = [], self._month_start(lo)
            while month <= hi:
                if month >= lo:
                    times.append(float(month))
                day = model.to_datetime(month + local + 32 * model.DAY)
                month = calendar.timegm((day.year, day.month, 1, 0, 0, 0)) - local
            return times
        period, base = (float(model.SLOT_SECONDS), 0.0) if ln == o.LOAD_PROFILE else (float(model.DAY), -local)
        first, last = -(-(lo - base) // period), (hi - base) // period
        return [base + k * period for k in range(int(first), int(last) + 1)]

    def captures(self, ln: bytes, now: float) -> list[tuple[float, float]]:
        """(stamp, true time) of every row of a profile since installation up to now, in capture order:
        the meter captures on its own clock, so a clock off by d stamps the row of true time t with t + d
        (and a clock set back captures the same stamps again)."""
        install = self.cfg.install_time
        rows: list[tuple[float, float]] = []
        for start, end, offset in self.clock_segments(now):
            if end <= install:
                continue
            for stamp in self._grid(ln, max(start, install) + offset, end + offset):
                t = stamp - offset
                if install < t and start <= t and (t < end or end == now and t <= now):
                    rows.append((stamp, t))
        return rows

    def profile_row(self, ln: bytes, t: float, stamp: float | None = None) -> list[Typed]:
        """Encode-ready row of a profile captured at true time t, stamped ``stamp`` (default t)."""
        stamp_cell = _octets(encode_datetime(model.to_datetime(t if stamp is None else stamp),
                                             -self.cfg.utc_offset_minutes))
        imp, exp = self.energy_mwh(t)
        row = [stamp_cell, _u32(model.initial_import_wh(self.seed) + imp // 1000), _u32(exp // 1000)]
        if ln == o.LOAD_PROFILE:
            volts, amps = self.slot_average(model.slot_of(t) - 1)
            row += [Typed(axdr.UINT16, volts), Typed(axdr.UINT16, amps)]
        elif ln == o.BILLING_PROFILE:
            row.append(_u32(self.max_demand(t - 1)[0]))
        return row

    def profile_times(self, ln: bytes, now: float) -> list[float]:
        """All capture stamps of a profile up to now (cheap: arithmetic only)."""
        return [stamp for stamp, _ in self.captures(ln, now)]

    def _profile_count(self, ln: bytes, now: float) -> int:
        if ln in o.LOG_EVENT_OBJECT:
            return len(self.log_rows(ln, now))
        return len(self.captures(ln, now))

    def _columns(self, ln: bytes) -> tuple[tuple[int, bytes, int], ...]:
        if ln == o.LOAD_PROFILE:
            return o.LOAD_PROFILE_CAPTURE
        if ln == o.DAILY_PROFILE:
            return o.DAILY_PROFILE_CAPTURE
        if ln == o.BILLING_PROFILE:
            return o.BILLING_PROFILE_CAPTURE
        return ((8, o.CLOCK, 2), (1, o.LOG_EVENT_OBJECT[ln], 2))

    def profile_buffer(self, ln: bytes, selector: int, params: Any, now: float) -> RawData:
        """The profile's buffer, whole or selected by range (1) or entry (2), A-XDR encoded."""
        columns = self._columns(ln)
        is_log = ln in o.LOG_EVENT_OBJECT
        if is_log:
            entries = self.log_rows(ln, now)
            times = [t for t, _ in entries]
        else:
            captured = self.captures(ln, now)
            times = [stamp for stamp, _ in captured]
        first_index, last_index = 0, len(times)
        chosen = list(range(len(columns)))
        indices: range | list[int] = range(len(times))
        if selector == 1:
            if not (isinstance(params, list) and len(params) >= 3):
                raise CosemError(TYPE_UNMATCHED)
            start, end = self._range_bound(params[1]), self._range_bound(params[2])
            # Rows whose stamp lies in the range (stamps need not rise: a clock set back repeats them).
            inside = [i for i, t in enumerate(times) if start <= t <= end]
            right = (inside[0], inside[-1] + 1) if inside else (len(times), len(times))
            first_index, last_index = behaviours.range_rows(self, *right, len(times))
            indices = inside if (first_index, last_index) == right else range(first_index, last_index)
            if len(params) > 3 and params[3]:
                wanted = [(c[0], c[1], c[2]) for c in params[3] if isinstance(c, list) and len(c) >= 3]
                chosen = [i for i, col in enumerate(columns) if (col[0], col[1], col[2]) in wanted]
        elif selector == 2:
            if not (isinstance(params, list) and len(params) >= 2):
                raise CosemError(TYPE_UNMATCHED)
            from_entry, to_entry = max(1, params[0]), params[1] or len(times)
            first_index, last_index = from_entry - 1, min(to_entry, len(times))
            indices = range(first_index, last_index)
            if len(params) >= 4 and (params[2] or params[3]):
                from_col = max(1, params[2])
                to_col = params[3] or len(columns)
                chosen = list(range(from_col - 1, min(to_col, len(columns))))
        elif selector != 0:
            raise CosemError(OTHER_REASON)
        out = bytearray([axdr.ARRAY]) + axdr.encode_length(len(indices))
        for i in indices:
            if is_log:
                t, code = entries[i]
                row = [_octets(encode_datetime(model.to_datetime(t), -self.cfg.utc_offset_minutes)),
                       Typed(axdr.UINT16, code)]
            else:
                stamp, true = captured[i]
                row = self.profile_row(ln, true, stamp)
            out += axdr.encode(structure(*(row[c] for c in chosen)))
        return RawData(bytes(out))

    def _range_bound(self, value: Any) -> float:
        if isinstance(value, int):
            return float(value)
        when = decode_datetime(value, -self.cfg.utc_offset_minutes) if isinstance(value, bytes) else None
        if when is None:
            raise CosemError(TYPE_UNMATCHED)
        return when.timestamp()

    # ----- COSEM access ---------------------------------------------------------------------------

    def cosem_get(self, ctx: ClientContext, class_id: int, ln: bytes, attr: int, selector: int,
                  params: Any) -> Any:
        """Read one attribute (see dlms_server.CosemDevice)."""
        access = o.OBJECT_INDEX.get((class_id, ln))
        if access is None:
            raise CosemError(OBJECT_UNDEFINED)
        if attr not in access[0]:
            raise CosemError(READ_WRITE_DENIED)
        if attr == 1:
            return _octets(ln)
        now = time.time()
        if selector and class_id != 7:
            raise CosemError(OTHER_REASON)
        return _GETTERS[class_id](self, ctx, ln, attr, selector, params, now)

    def cosem_set(self, ctx: ClientContext, class_id: int, ln: bytes, attr: int, value: Any) -> None:
        """Write one attribute (see dlms_server.CosemDevice)."""
        access = o.OBJECT_INDEX.get((class_id, ln))
        if access is None:
            raise CosemError(OBJECT_UNDEFINED)
        if attr not in access[1]:
            raise CosemError(READ_WRITE_DENIED)
        now = time.time()
        if ln == o.CLOCK and attr == 2:
            when = decode_datetime(value, -self.cfg.utc_offset_minutes) if isinstance(value, bytes) else None
            if when is None:
                raise CosemError(TYPE_UNMATCHED)
            self.set_clock(when.timestamp(), now)
        elif ln == o.DEMAND_PERIOD:
            self.demand_period = _want_int(value, 60, 86400)
        elif ln == o.LIMITER:
            threshold = _want_int(value, 0, 0xFFFFFFFF)
            if attr == 3:
                self.limiter_threshold = threshold
                if abs(self.power_w(now)) > threshold:
                    self.record_event(15, now)
        elif ln == o.DISCONNECT_CONTROL:
            _want_int(value, 0, 6)
        elif ln == o.ASSOCIATION and attr == 7:
            if not isinstance(value, bytes) or not 1 <= len(value) <= 64:
                raise CosemError(TYPE_UNMATCHED)
            self.password = value  # a new LLS password for the management client
        elif ln == o.PUSH_SETUP:
            if not (isinstance(value, list) and len(value) == 3 and isinstance(value[1], bytes)):
                raise CosemError(TYPE_UNMATCHED)
            self.push_destination = value[1].decode("ascii", "replace")
        elif ln == o.CREDIT:
            _want_int(value, -(2**31), 2**31 - 1)
        elif ln == o.IMAGE_TRANSFER:
            _want_bool(value)
        else:
            raise CosemError(READ_WRITE_DENIED)

    def cosem_action(self, ctx: ClientContext, class_id: int, ln: bytes, method: int, value: Any) -> Any:
        """Invoke one method (see dlms_server.CosemDevice)."""
        access = o.OBJECT_INDEX.get((class_id, ln))
        if access is None:
            raise CosemError(OBJECT_UNDEFINED)
        if method not in access[2]:
            raise CosemError(READ_WRITE_DENIED)
        now = time.time()
        if ln == o.DISCONNECT_CONTROL:
            self.set_relay(method == 2, now)
        elif ln == o.TOKEN_GATEWAY:
            token = value.encode("ascii", "replace") if isinstance(value, str) else value
            if not isinstance(token, bytes):
                raise CosemError(TYPE_UNMATCHED)
            if self.enter_token(token, now) != TOKEN_EXECUTION_OK:
                raise CosemError(OTHER_REASON)
        elif ln == o.IMAGE_TRANSFER:
            if method == 1:
                self._image_initiate(value)
            elif method == 2:
                self._image_block(value)
            elif method == 3:
                self._image_verify()
            else:
                self._image_activate(now)
        elif ln == o.PUSH_SETUP and self.cfg.push_sink is not None:
            self.cfg.push_sink(self)
        return None

    # ----- per-class getters -----------------------------------------------------------------

    def _get_data(self, ctx: ClientContext, ln: bytes, attr: int, selector: int, params: Any, now: float) -> Any:
        if ln in (o.LOGICAL_DEVICE_NAME, o.SERIAL_NUMBER):
            return _octets(self.serial.encode("ascii"))
        if ln == o.FIRMWARE_VERSION:
            return _octets(self.firmware.encode("ascii"))
        if ln == o.INVOCATION_COUNTER:
            return _u32(self.last_client_invocation_counter)
        if ln == o.DEMAND_PERIOD:
            return _u32(self.demand_period)
        log = {o.STANDARD_EVENT: o.STANDARD_LOG, o.TAMPER_EVENT: o.TAMPER_LOG, o.POWER_EVENT: o.POWER_LOG}[ln]
        rows = self.log_rows(log, now)
        return Typed(axdr.UINT16, rows[-1][1] if rows else 0)

    def _get_register(self, ctx: ClientContext, ln: bytes, attr: int, selector: int, params: Any,
                      now: float) -> Any:
        if attr == 3:
            scaler, unit = o.SCALER_UNIT[ln]
            return structure(Typed(axdr.INT8, scaler), Typed(axdr.ENUM, unit))
        if ln == o.ENERGY_IMPORT:
            return _u32(self.import_wh(now))
        if ln == o.ENERGY_EXPORT:
            return _u32(self.export_wh(now))
        if ln == o.APPARENT_ENERGY:
            return _u32(self.apparent_wh(now))
        if ln == o.VOLTAGE:
            return Typed(axdr.UINT16, model.voltage_dv(self.seed, model.slot_of(now)) + int(now) % 7 - 3)
        if ln == o.CURRENT:
            return Typed(axdr.UINT16, self.current_ca(now))
        if ln == o.POWER_FACTOR:
            return Typed(axdr.INT16, model.power_factor_milli(self.seed, model.slot_of(now)))
        if ln == o.ACTIVE_POWER:
            return Typed(axdr.INT32, self.power_w(now))
        if ln == o.FREQUENCY:
            return Typed(axdr.UINT16, model.frequency_chz(self.seed, now))
        volts, amps = self.slot_average(model.slot_of(now) - 1)
        return Typed(axdr.UINT16, volts if ln == o.AVG_VOLTAGE else amps)

    def _get_demand(self, ctx: ClientContext, ln: bytes, attr: int, selector: int, params: Any, now: float) -> Any:
        if attr == 3:
            return structure(Typed(axdr.INT8, 0), Typed(axdr.ENUM, 27))
        if attr == 7:
            return _u32(self.demand_period)
        if attr == 8:
            return Typed(axdr.UINT16, 1)
        value, when = self.max_demand(now)
        if attr == 2:
            return _u32(value)
        return _octets(encode_datetime(model.to_datetime(when), -self.cfg.utc_offset_minutes))

    def _get_clock(self, ctx: ClientContext, ln: bytes, attr: int, selector: int, params: Any, now: float) -> Any:
        if attr == 2:
            when = model.to_datetime(self.clock(now))
            return _octets(encode_datetime(when, -self.cfg.utc_offset_minutes))
        if attr == 3:
            return Typed(axdr.INT16, -self.cfg.utc_offset_minutes)
        if attr == 4:
            return Typed(axdr.UINT8, 0)
        return Typed(axdr.ENUM, 1)

    def _get_profile(self, ctx: ClientContext, ln: bytes, attr: int, selector: int, params: Any,
                     now: float) -> Any:
        if attr == 2:
            return self.profile_buffer(ln, selector, params, now)
        if attr == 3:
            return _capture_list(self._columns(ln))
        if attr == 4:
            if ln in o.LOG_EVENT_OBJECT or ln == o.BILLING_PROFILE:
                return _u32(0)
            return _u32(model.SLOT_SECONDS if ln == o.LOAD_PROFILE else model.DAY)
        if attr == 5:
            return Typed(axdr.ENUM, 1)
        if attr == 6:
            return structure(Typed(axdr.UINT16, 8), _octets(o.CLOCK), Typed(axdr.INT8, 2), Typed(axdr.UINT16, 0))
        count = self._profile_count(ln, now)
        if attr == 7:
            return _u32(count)
        # Profile entries (capacity): room for a year beyond the history; an event log holds its synthetic
        # history plus the newest MAX_RECORDED_EVENTS events, so it is full once that many were recorded.
        days = self.cfg.history_days + 366
        capacity = {o.LOAD_PROFILE: days * 96, o.DAILY_PROFILE: days, o.BILLING_PROFILE: days // 28 + 1}.get(ln)
        if capacity is None:
            capacity = count - len(self.events or ()) + MAX_RECORDED_EVENTS
        return _u32(max(count, capacity))

    def _get_association(self, ctx: ClientContext, ln: bytes, attr: int, selector: int, params: Any,
                         now: float) -> Any:
        if attr == 3:
            return structure(Typed(axdr.INT8, ctx.client_address), Typed(axdr.UINT16, 1))
        if attr == 8:
            return Typed(axdr.ENUM, 2)
        items = []
        for class_id, obj_ln, version, readable, writable, methods in o.OBJECTS:
            attrs = []
            for a in sorted(set(readable) | set(writable)):
                mode = (1 if a in readable else 0) | (2 if a in writable and ctx.can_write else 0)
                attrs.append(structure(Typed(axdr.INT8, a), Typed(axdr.ENUM, mode), None))
            meths = [structure(Typed(axdr.INT8, m), Typed(axdr.ENUM, 1 if ctx.can_write else 0)) for m in methods]
            items.append(structure(Typed(axdr.UINT16, class_id), Typed(axdr.UINT8, version), _octets(obj_ln),
                                   structure(axdr.array(attrs), axdr.array(meths))))
        return axdr.array(items)

    def _get_disconnect(self, ctx: ClientContext, ln: bytes, attr: int, selector: int, params: Any,
                        now: float) -> Any:
        if attr == 2:
            return Typed(axdr.BOOLEAN, self.relay_connected)
        if attr == 3:
            return Typed(axdr.ENUM, self.control_state)
        return Typed(axdr.ENUM, 1)

    def _get_limiter(self, ctx: ClientContext, ln: bytes, attr: int, selector: int, params: Any, now: float) -> Any:
        if attr == 2:
            return structure(Typed(axdr.UINT16, 3), _octets(o.ACTIVE_POWER), Typed(axdr.INT8, 2))
        if attr == 10:
            return Typed(axdr.BOOLEAN, False)
        return _u32({3: self.limiter_threshold, 4: self.limiter_threshold, 5: self.limiter_threshold // 2,
                     6: 60, 7: 60}[attr])

    def _get_token_gateway(self, ctx: ClientContext, ln: bytes, attr: int, selector: int, params: Any,
                           now: float) -> Any:
        if attr == 2:
            return _octets(self.last_token)
        if attr == 3:
            return _octets(encode_datetime(model.to_datetime(self.token_time or self.cfg.install_time),
                                           -self.cfg.utc_offset_minutes))
        if attr == 4:
            return axdr.array([])
        if attr == 5:
            return Typed(axdr.ENUM, 0)
        return structure(Typed(axdr.ENUM, self.token_status), Typed(axdr.BIT_STRING, ""))

    def _get_credit(self, ctx: ClientContext, ln: bytes, attr: int, selector: int, params: Any, now: float) -> Any:
        balance = self.credit(now)
        if attr in (2, 9):
            return Typed(axdr.INT32, balance if attr == 2 else INITIAL_CREDIT_CENTS)
        if attr == 3:
            return Typed(axdr.ENUM, 0)
        if attr == 4:
            return Typed(axdr.UINT8, 1)
        if attr in (5, 10):
            return Typed(axdr.INT32, LOW_CREDIT_CENTS)
        if attr == 6:
            return Typed(axdr.INT32, 0)
        if attr == 7:
            return Typed(axdr.BIT_STRING, "00000")
        return Typed(axdr.ENUM, 4 if balance <= 0 else 3)

    def _get_account(self, ctx: ClientContext, ln: bytes, attr: int, selector: int, params: Any, now: float) -> Any:
        if attr == 2:
            return structure(Typed(axdr.ENUM, 1), Typed(axdr.ENUM, 2))
        if attr == 5:
            return Typed(axdr.INT32, self.credit(now))
        return Typed(axdr.INT32, 0)

    def _get_image(self, ctx: ClientContext, ln: bytes, attr: int, selector: int, params: Any, now: float) -> Any:
        image = self.image
        if attr == 2:
            return _u32(self.cfg.image_block_size)
        if attr == 3:
            blocks = image["blocks"] if image else b""
            return Typed(axdr.BIT_STRING, "".join("1" if b else "0" for b in blocks))
        if attr == 4:
            return _u32(self.image_first_missing())
        if attr == 5:
            return Typed(axdr.BOOLEAN, True)
        if attr == 6:
            return Typed(axdr.ENUM, image["status"] if image else 0)
        if not image:
            return axdr.array([])
        return axdr.array([structure(_u32(image["size"]), _octets(image["id"]), _octets(b""))])

    def _get_push(self, ctx: ClientContext, ln: bytes, attr: int, selector: int, params: Any, now: float) -> Any:
        if attr == 2:
            return _capture_list(o.PUSH_OBJECTS)
        if attr == 3:
            return structure(Typed(axdr.ENUM, 0), _octets(self.push_destination.encode("ascii")),
                             Typed(axdr.ENUM, 0))
        if attr == 4:
            return axdr.array([])
        return {5: Typed(axdr.UINT16, 0), 6: Typed(axdr.UINT8, 3), 7: Typed(axdr.UINT16, 60)}[attr]

    def push_values(self, code: int, now: float | None = None) -> list[Typed]:
        """Values of the push object list for a push about event `code` (0: periodic)."""
        now = time.time() if now is None else now
        return [
            _octets(self.serial.encode("ascii")),
            _octets(encode_datetime(model.to_datetime(self.clock(now)), -self.cfg.utc_offset_minutes)),
            Typed(axdr.UINT16, code),
            _u32(self.import_wh(now)),
        ]

    def recorded(self, start: float, end: float, now: float | None = None,
                 parts: tuple[str, ...] = ("load_profile", "daily", "billing", "events")) -> dict[str, Any]:
        """Ground truth: every row this meter captured in true time [start, end], as it stamped it (its own
        clock, right or wrong): profile rows as [stamp, {obis: value scaled as its scalers say}] and
        logged events as [stamp, code]."""
        now = time.time() if now is None else now
        end = min(end, now)
        out: dict[str, Any] = {}
        for name, ln in (("load_profile", o.LOAD_PROFILE), ("daily", o.DAILY_PROFILE),
                         ("billing", o.BILLING_PROFILE)):
            if name not in parts:
                continue
            columns = self._columns(ln)
            rows = []
            for stamp, t in self.captures(ln, now):
                if start <= t <= end:
                    row = self.profile_row(ln, t, stamp)
                    values = {}
                    for (class_id, obj, _attr), cell in zip(columns, row, strict=True):
                        if class_id in (3, 4):
                            scaler = o.SCALER_UNIT.get(obj, (0, 0))[0]
                            values[".".join(str(b) for b in obj)] = cell.value * 10.0 ** scaler
                    rows.append([stamp, values])
            out[name] = rows
        if "events" in parts:
            recorded = [[t, code] for log in o.LOGS.values() for t, code in self.history_rows(log) if start <= t <= end]
            recorded += [[stamp, code] for stamp, code, t in self.events or () if start <= t <= end]
            out["events"] = recorded
        return out

    def state(self) -> dict[str, Any]:
        """JSON-friendly snapshot for the control API and tests."""
        now = time.time()
        return {
            "serial": self.serial,
            "index": self.index,
            "seed": self.seed,
            "clock": model.to_datetime(self.clock(now)).isoformat(),
            "drift_seconds_per_day": self.drift_per_day,
            "relay_connected": self.relay_connected,
            "control_state": self.control_state,
            "import_wh": self.import_wh(now),
            "export_wh": self.export_wh(now),
            "credit_cents": self.credit(now),
            "token_status": self.token_status,
            "firmware": self.firmware,
            "image_first_missing": self.image_first_missing(),
            "faults": sorted((self.faults or {}).keys()),
            "events": [{"time": model.to_datetime(t).isoformat(), "code": c, "type": o.EVENT_CODES.get(c)}
                       for t, c, _ in (self.events or ())],
            "last_client_invocation_counter": self.last_client_invocation_counter,
            "server_invocation_counter": self.server_invocation_counter,
            "gbt_blocks_sent": self.gbt_blocks_sent,
            "limiter_threshold": self.limiter_threshold,
            "link": getattr(self.link, "status", None),
            "behaviours": sorted(self.behaviours or ()),
            "system_title": self.system_title.hex(),
        }


def _want_int(value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CosemError(TYPE_UNMATCHED)
    return value


def _want_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise CosemError(TYPE_UNMATCHED)
    return value


_GETTERS: dict[int, Callable[..., Any]] = {
    1: Meter._get_data, 3: Meter._get_register, 4: Meter._get_demand, 7: Meter._get_profile,
    8: Meter._get_clock, 15: Meter._get_association, 70: Meter._get_disconnect, 71: Meter._get_limiter,
    111: Meter._get_account, 112: Meter._get_credit, 115: Meter._get_token_gateway, 18: Meter._get_image,
    40: Meter._get_push,
}

__all__ = ["FleetConfig", "Meter"]
