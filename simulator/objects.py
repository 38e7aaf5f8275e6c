"""The simulated meter's COSEM object list (shared by every meter) and its event code table."""

from __future__ import annotations

from app.comms.cosem import obis_bytes

CLOCK = obis_bytes("0.0.1.0.0.255")
LOGICAL_DEVICE_NAME = obis_bytes("0.0.42.0.0.255")
SERIAL_NUMBER = obis_bytes("0.0.96.1.0.255")
FIRMWARE_VERSION = obis_bytes("1.0.0.2.0.255")
INVOCATION_COUNTER = obis_bytes("0.0.43.1.0.255")
ASSOCIATION = obis_bytes("0.0.40.0.0.255")
ENERGY_IMPORT = obis_bytes("1.0.1.8.0.255")
ENERGY_EXPORT = obis_bytes("1.0.2.8.0.255")
APPARENT_ENERGY = obis_bytes("1.0.9.8.0.255")
VOLTAGE = obis_bytes("1.0.32.7.0.255")
CURRENT = obis_bytes("1.0.31.7.0.255")
POWER_FACTOR = obis_bytes("1.0.13.7.0.255")
ACTIVE_POWER = obis_bytes("1.0.1.7.0.255")
FREQUENCY = obis_bytes("1.0.14.7.0.255")
AVG_VOLTAGE = obis_bytes("1.0.32.27.0.255")
AVG_CURRENT = obis_bytes("1.0.31.27.0.255")
MAX_DEMAND = obis_bytes("1.0.1.6.0.255")
DEMAND_PERIOD = obis_bytes("1.0.0.8.0.255")
LOAD_PROFILE = obis_bytes("1.0.99.1.0.255")
DAILY_PROFILE = obis_bytes("1.0.99.2.0.255")
BILLING_PROFILE = obis_bytes("0.0.98.1.0.255")
STANDARD_LOG = obis_bytes("0.0.99.98.0.255")
TAMPER_LOG = obis_bytes("0.0.99.98.1.255")
POWER_LOG = obis_bytes("0.0.99.98.2.255")
STANDARD_EVENT = obis_bytes("0.0.96.11.0.255")
TAMPER_EVENT = obis_bytes("0.0.96.11.1.255")
POWER_EVENT = obis_bytes("0.0.96.11.2.255")
DISCONNECT_CONTROL = obis_bytes("0.0.96.3.10.255")
LIMITER = obis_bytes("0.0.17.0.0.255")
TOKEN_GATEWAY = obis_bytes("0.0.19.40.0.255")
CREDIT = obis_bytes("0.0.19.10.0.255")
ACCOUNT = obis_bytes("0.0.19.0.0.255")
IMAGE_TRANSFER = obis_bytes("0.0.44.0.0.255")
PUSH_SETUP = obis_bytes("0.0.25.9.0.255")

# (class_id, logical name, version, readable attributes, writable attributes, methods)
OBJECTS: tuple[tuple[int, bytes, int, tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...] = (
    (15, ASSOCIATION, 1, (1, 2, 3, 8), (7,), (1,)),  # attribute 7: the LLS secret (write-only)
    (8, CLOCK, 0, (1, 2, 3, 4, 9), (2,), ()),
    (1, LOGICAL_DEVICE_NAME, 0, (1, 2), (), ()),
    (1, SERIAL_NUMBER, 0, (1, 2), (), ()),
    (1, FIRMWARE_VERSION, 0, (1, 2), (), ()),
    (1, INVOCATION_COUNTER, 0, (1, 2), (), ()),
    (1, DEMAND_PERIOD, 0, (1, 2), (2,), ()),
    (3, ENERGY_IMPORT, 0, (1, 2, 3), (), ()),
    (3, ENERGY_EXPORT, 0, (1, 2, 3), (), ()),
    (3, APPARENT_ENERGY, 0, (1, 2, 3), (), ()),
    (3, VOLTAGE, 0, (1, 2, 3), (), ()),
    (3, CURRENT, 0, (1, 2, 3), (), ()),
    (3, POWER_FACTOR, 0, (1, 2, 3), (), ()),
    (3, ACTIVE_POWER, 0, (1, 2, 3), (), ()),
    (3, FREQUENCY, 0, (1, 2, 3), (), ()),
    (3, AVG_VOLTAGE, 0, (1, 2, 3), (), ()),
    (3, AVG_CURRENT, 0, (1, 2, 3), (), ()),
    (4, MAX_DEMAND, 0, (1, 2, 3, 5, 7, 8), (), ()),
    (7, LOAD_PROFILE, 1, (1, 2, 3, 4, 5, 6, 7, 8), (), ()),
    (7, DAILY_PROFILE, 1, (1, 2, 3, 4, 5, 6, 7, 8), (), ()),
    (7, BILLING_PROFILE, 1, (1, 2, 3, 4, 5, 6, 7, 8), (), ()),
    (7, STANDARD_LOG, 1, (1, 2, 3, 4, 5, 6, 7, 8), (), ()),
    (7, TAMPER_LOG, 1, (1, 2, 3, 4, 5, 6, 7, 8), (), ()),
    (7, POWER_LOG, 1, (1, 2, 3, 4, 5, 6, 7, 8), (), ()),
    (1, STANDARD_EVENT, 0, (1, 2), (), ()),
    (1, TAMPER_EVENT, 0, (1, 2), (), ()),
    (1, POWER_EVENT, 0, (1, 2), (), ()),
    (70, DISCONNECT_CONTROL, 0, (1, 2, 3, 4), (4,), (1, 2)),
    (71, LIMITER, 0, (1, 2, 3, 4, 5, 6, 7, 10), (3, 4, 5, 6, 7), ()),
    (115, TOKEN_GATEWAY, 0, (1, 2, 3, 4, 5, 6), (), (1,)),
    (112, CREDIT, 0, (1, 2, 3, 4, 5, 6, 7, 8, 9, 10), (5,), ()),
    (111, ACCOUNT, 0, (1, 2, 5, 6, 8), (), ()),
    (18, IMAGE_TRANSFER, 0, (1, 2, 3, 4, 5, 6, 7), (5,), (1, 2, 3, 4)),
    (40, PUSH_SETUP, 0, (1, 2, 3, 4, 5, 6, 7), (3,), (1,)),
)
OBJECT_INDEX = {(class_id, ln): (r, w, m) for class_id, ln, _v, r, w, m in OBJECTS}

# (class_id, logical name, scaler, unit) of registers.
SCALER_UNIT = {
    ENERGY_IMPORT: (0, 30), ENERGY_EXPORT: (0, 30), APPARENT_ENERGY: (0, 31),
    VOLTAGE: (-1, 35), CURRENT: (-2, 33), POWER_FACTOR: (-3, 255), ACTIVE_POWER: (0, 27),
    FREQUENCY: (-2, 44), AVG_VOLTAGE: (-1, 35), AVG_CURRENT: (-2, 33), MAX_DEMAND: (0, 27),
}

# Event codes written to the logs (and their HES standard event types).
EVENT_CODES = {
    1: "power_fail", 2: "power_restore", 3: "clock_set", 4: "firmware_activated",
    10: "cover_open", 11: "magnetic_tamper", 12: "reverse_flow", 13: "neutral_missing",
    14: "bypass", 15: "overload", 20: "relay_disconnected", 21: "relay_connected", 30: "low_credit",
}
EVENT_BY_NAME = {name: code for code, name in EVENT_CODES.items()}
TAMPER_CODES = {10, 11, 12, 13, 14}
POWER_CODES = {1, 2}
LOGS = {"standard": STANDARD_LOG, "tamper": TAMPER_LOG, "power": POWER_LOG}
LOG_EVENT_OBJECT = {STANDARD_LOG: STANDARD_EVENT, TAMPER_LOG: TAMPER_EVENT, POWER_LOG: POWER_EVENT}


def log_of(code: int) -> str:
    """Which event log an event code is written to."""
    if code in TAMPER_CODES:
        return "tamper"
    if code in POWER_CODES:
        return "power"
    return "standard"


# Capture objects (class_id, logical name, attribute) of each profile.
LOAD_PROFILE_CAPTURE = (
    (8, CLOCK, 2), (3, ENERGY_IMPORT, 2), (3, ENERGY_EXPORT, 2), (3, AVG_VOLTAGE, 2), (3, AVG_CURRENT, 2),
)
DAILY_PROFILE_CAPTURE = ((8, CLOCK, 2), (3, ENERGY_IMPORT, 2), (3, ENERGY_EXPORT, 2))
BILLING_PROFILE_CAPTURE = (
    (8, CLOCK, 2), (3, ENERGY_IMPORT, 2), (3, ENERGY_EXPORT, 2), (4, MAX_DEMAND, 2),
)
PUSH_OBJECTS = (
    (1, SERIAL_NUMBER, 2), (8, CLOCK, 2), (1, STANDARD_EVENT, 2), (3, ENERGY_IMPORT, 2),
)
