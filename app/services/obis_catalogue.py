"""What the DLMS standard (Blue Book / IDIS) fixes about well-known OBIS codes: the interface class, the
attributes and methods worth a point, their data types where the standard fixes them, the group a point
is shown in, and the role an object plays. The one place brand defaults come from."""

from __future__ import annotations

from dataclasses import dataclass

from app.comms.cosem import parse_obis

# The attributes (and methods) of a class that make a point, with a key suffix, a name suffix, the access
# the standard gives them and the data type where the standard fixes it (None: the meter decides).
# (attribute, method, key suffix, name suffix, access, datatype, unit)
ClassPoint = tuple[int | None, int | None, str, str, str, str | None, str | None]
CLASS_POINTS: dict[int, tuple[ClassPoint, ...]] = {
    1: ((2, None, "", "", "r", None, None),),
    3: ((2, None, "", "", "r", None, None),),
    4: ((2, None, "", "", "r", None, None), (5, None, "_time", " time", "r", "date_time", None)),
    7: ((2, None, "", "", "r", None, None),),
    8: ((2, None, "", "", "rw", "date_time", None), (3, None, "_time_zone", " time zone (minutes)", "r", "int16",
                                                       "min")),
    70: ((2, None, "_output_state", " output state", "r", "boolean", None),
         (3, None, "_control_state", " control state", "r", "enum", None),
         (4, None, "_control_mode", " control mode", "rw", "enum", None),
         (None, 1, "_disconnect", ": remote disconnect", "x", "int8", None),
         (None, 2, "_reconnect", ": remote reconnect", "x", "int8", None)),
    71: ((3, None, "_threshold", " threshold (active)", "rw", None, "W"),
         (4, None, "_normal", " threshold (normal)", "rw", None, "W")),
    115: ((None, 1, "_enter", ": enter token", "x", "octet_string", None),
          (2, None, "_last", ": last token", "r", "octet_string", None),
          (6, None, "_status", ": token status", "r", "structure", None)),
    112: ((2, None, "_balance", " balance", "r", "int32", "currency"),
          (5, None, "=low_credit_threshold", "Low credit threshold", "rw", "int32", "currency")),
    111: ((5, None, "=available_credit", "Available credit (account)", "r", "int32", "currency"),),
    18: ((2, None, "_block_size", ": block size", "r", "uint32", None),
         (3, None, "_transferred_blocks", ": transferred blocks", "r", "bit_string", None),
         (4, None, "_first_missing_block", ": first not transferred block", "r", "uint32", None),
         (6, None, "_transfer_status", ": transfer status", "r", "enum", None),
         (None, 1, "_initiate", ": initiate", "x", "structure", None),
         (None, 2, "_block_transfer", ": block transfer", "x", "structure", None),
         (None, 3, "_verify", ": verify", "x", "int8", None),
         (None, 4, "_activate", ": activate", "x", "int8", None)),
    40: ((2, None, "_object_list", ": object list", "r", "array", None),
         (3, None, "_destination", ": destination", "rw", "structure", None),
         (None, 1, "_now", ": push now", "x", "int8", None)),
}


@dataclass(frozen=True)
class Known:
    """A well-known object: its key, name, class, group, unit, role and data type of attribute 2."""

    key: str
    name: str
    class_id: int
    group: str
    unit: str | None = None
    role: str | None = None
    datatype: str | None = None


_QUANTITY = {1: ("active", "Active", "W", "Wh"), 2: ("active_export", "Active export", "W", "Wh"),
             3: ("reactive", "Reactive", "var", "varh"), 4: ("reactive_export", "Reactive export", "var", "varh"),
             9: ("apparent", "Apparent", "VA", "VAh"), 10: ("apparent_export", "Apparent export", "VA", "VAh")}
_PHASE = {31: ("current_l1", "Current L1", "A"), 51: ("current_l2", "Current L2", "A"),
          71: ("current_l3", "Current L3", "A"), 32: ("voltage_l1", "Voltage L1", "V"),
          52: ("voltage_l2", "Voltage L2", "V"), 72: ("voltage_l3", "Voltage L3", "V"),
          11: ("current", "Current (any phase)", "A"), 12: ("voltage", "Voltage (any phase)", "V"),
          13: ("power_factor", "Power factor", None), 14: ("frequency", "Frequency", "Hz"),
          91: ("neutral_current", "Neutral current", "A")}
_ENERGY_KEYS = {1: "energy_import", 2: "energy_export", 9: "apparent_energy_import", 10: "apparent_energy_export",
                3: "reactive_energy_import", 4: "reactive_energy_export"}
_FIXED: dict[str, Known] = {
    "0.0.1.0.0.255": Known("clock", "Clock", 8, "Clock", role="clock"),
    "0.0.42.0.0.255": Known("logical_device_name", "Logical device name", 1, "Identification",
                            role="logical_device_name", datatype="octet_string"),
    "0.0.96.1.0.255": Known("serial_number", "Serial number", 1, "Identification", role="serial_number",
                            datatype="octet_string"),
    "1.0.0.2.0.255": Known("firmware_version", "Firmware version", 1, "Firmware", datatype="octet_string"),
    "0.0.43.1.0.255": Known("invocation_counter", "Invocation counter (client 1)", 1, "Network",
                            datatype="uint32"),
    "1.0.0.8.0.255": Known("demand_integration_period", "Demand integration period", 1, "Configuration", "s"),
    "1.0.99.1.0.255": Known("load_profile", "Load profile", 7, "Profiles", role="load_profile"),
    "1.0.99.2.0.255": Known("daily_profile", "Daily profile", 7, "Profiles", role="daily_profile"),
    "0.0.98.1.0.255": Known("billing_profile", "Billing profile", 7, "Profiles", role="billing_profile"),
    "0.0.99.98.0.255": Known("standard_event_log", "Standard event log", 7, "Events", role="event_log:standard"),
    "0.0.99.98.1.255": Known("tamper_event_log", "Tamper (fraud detection) event log", 7, "Events",
                             role="event_log:tamper"),
    "0.0.99.98.2.255": Known("power_event_log", "Power / disconnector event log", 7, "Events",
                             role="event_log:power"),
    "0.0.99.97.0.255": Known("power_failure_log", "Power failure event log", 7, "Events",
                             role="event_log:power_failure"),
    "0.0.96.11.0.255": Known("last_standard_event", "Last standard event code", 1, "Events"),
    "0.0.96.11.1.255": Known("last_tamper_event", "Last tamper event code", 1, "Events"),
    "0.0.96.11.2.255": Known("last_power_event", "Last power event code", 1, "Events"),
    "0.0.96.3.10.255": Known("relay", "Relay", 70, "Relay", role="relay"),
    "0.0.17.0.0.255": Known("load_limit", "Load limit", 71, "Configuration", role="limiter"),
    "0.0.19.40.0.255": Known("token", "Token gateway", 115, "Prepaid", role="token_gateway"),
    "0.0.19.10.0.255": Known("credit", "Credit", 112, "Prepaid", role="credit"),
    "0.0.19.0.0.255": Known("account", "Account", 111, "Prepaid", role="account"),
    "0.0.44.0.0.255": Known("image", "Image transfer", 18, "Firmware", role="image_transfer"),
    "0.0.25.9.0.255": Known("push", "Push setup", 40, "Network", role="push_setup"),
    "0.0.40.0.0.255": Known("association", "Current association", 15, "Network"),
}


def known(obis: str) -> Known | None:
    """What the standard says an OBIS code is (None for codes it leaves to the manufacturer)."""
    if obis in _FIXED:
        return _FIXED[obis]
    a, _b, c, d, e, f = parse_obis(obis)
    if a != 1 or f != 255 or c >= 128 or d >= 128 or e >= 128:
        return None
    tariff = "" if e == 0 else f"_t{e}"
    tariff_name = "" if e == 0 else f" (tariff {e})"
    if d == 8 and c in _QUANTITY:
        kind = _QUANTITY[c][1].split()[0]
        return Known(_ENERGY_KEYS[c] + tariff, f"{kind} energy {'import' if c in (1, 3, 9) else 'export'}"
                     f"{tariff_name}", 3, "Energy", _QUANTITY[c][3])
    if d == 6 and c in _QUANTITY:
        base = "max_demand" if c == 1 else f"max_demand_{_QUANTITY[c][0]}"
        return Known(base + tariff, f"Maximum demand ({_QUANTITY[c][1].lower()}){tariff_name}", 4, "Energy",
                     _QUANTITY[c][2])
    if d == 7 and e == 0 and c in _QUANTITY:
        return Known(f"{_QUANTITY[c][0]}_power", f"{_QUANTITY[c][1]} power", 3, "Instantaneous", _QUANTITY[c][2])
    if d in (7, 27) and e == 0 and c in _PHASE:
        key, name, unit = _PHASE[c]
        if d == 27:
            return Known(f"{key}_avg", f"{name} (last average)", 3, "Instantaneous", unit)
        return Known(key, name, 3, "Instantaneous", unit)
    return None


def standard_points(obis: str, class_id: int | None = None) -> list[dict]:
    """The points the standard gives an object (empty when the OBIS code and class are not known)."""
    info = known(obis)
    cls = class_id or (info.class_id if info else None)
    if cls is None or cls not in CLASS_POINTS:
        return []
    key = info.key if info else "obj_" + obis.replace(".", "_")
    name = info.name if info else obis
    points = []
    for attribute, method, suffix, name_suffix, access, datatype, unit in CLASS_POINTS[cls]:
        if info and info.class_id == cls and attribute == 2 and suffix == "" and info.datatype:
            datatype = info.datatype
        absolute = suffix.startswith("=")
        points.append({"key": suffix[1:] if absolute else key + suffix,
                       "name": name_suffix if absolute else name + name_suffix, "obis": obis, "class_id": cls,
                       "attribute": attribute, "method": method, "access": access, "datatype": datatype,
                       "unit": (info.unit if info and attribute == 2 and not unit and cls in (1, 3, 4) else unit),
                       "group": info.group if info else "Other"})
    return points


def role_of(obis: str, class_id: int) -> str | None:
    """The role the standard gives an object ('load_profile', 'event_log:standard', ...)."""
    info = known(obis)
    return info.role if info and info.class_id == class_id else None
