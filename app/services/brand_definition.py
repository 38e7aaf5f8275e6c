"""One typed brand definition for ``obis.yaml``, the REST API and the UI form.

A definition is ``name``, ``title``, ``manufacturer``, ``connection`` (interface, addresses, authentication,
profile period, push policy), ``points`` (OBIS, class, attribute or method, unit, scaler, datatype, group,
access) and ``roles`` that name points (load/daily/billing profile, event logs with their code tables, relay,
token gateway, clock, push objects, firmware image transfer ...), plus ``event_codes`` shared by all logs.
Whatever the standard fixes (class, attributes, data types, roles of well-known OBIS codes) may be left out:
it is filled in from ``app.services.obis_catalogue``. ``normalise`` validates a definition the same way for
every entry point; its errors name the point and the field."""

from __future__ import annotations

import copy
import csv
import re
from typing import Any

from app.comms.cosem import CLASS_NAMES, normalise_obis
from app.models.fleet import AuthLevel, Interface, PushPolicy
from app.services import ServiceError
from app.services.obis_catalogue import known, role_of, standard_points

GROUPS = ("Energy", "Instantaneous", "Demand", "Profiles", "Events", "Relay", "Prepaid", "Clock",
          "Network", "Firmware", "Identification", "Configuration", "Power Quality", "Other")
ACCESS = ("r", "w", "rw", "x")
KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
DATATYPES = ("boolean", "bit_string", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
             "enum", "float32", "float64", "octet_string", "visible_string", "utf8_string", "date_time", "date",
             "time", "structure", "array", "bcd")
CONNECTION_DEFAULTS = {"interface": "wrapper", "client_address": 1, "server_address": 1, "auth_level": "low",
                       "profile_period_minutes": 15, "push_policy": "auto", "profile_read": "auto"}
# How the brand's profiles are read: "auto" by range, falling back to by entry when the meter gets ranges
# wrong; "entry" by entry from the last entry read (the meter keeps entry numbers until its buffer is full).
PROFILE_READS = ("auto", "entry")
# Role -> the interface class its point must have (a role names a point; the point's object plays the role).
ROLE_CLASSES = {"load_profile": 7, "daily_profile": 7, "billing_profile": 7, "relay": 70, "token_gateway": 115,
                "credit": 112, "account": 111, "clock": 8, "image_transfer": 18, "push_setup": 40, "limiter": 71,
                "serial_number": 1, "logical_device_name": 1}
ROLES = (*ROLE_CLASSES, "event_logs", "push_objects")
TOP_LEVEL = ("name", "title", "manufacturer", "connection", "points", "roles", "event_codes", "points_csv")
_LEGACY_PROFILES = {"load_profile": "load_profile", "daily": "daily_profile", "billing": "billing_profile"}
_POINT_FIELDS = ("key", "name", "obis", "class_id", "attribute", "method", "unit", "scaler", "group", "access",
                 "datatype")
_CSV_ALIASES = {"obis code": "obis", "logical name": "obis", "class": "class_id", "class id": "class_id",
                "ic": "class_id", "attr": "attribute", "attribute index": "attribute", "description": "name",
                "parameter": "name", "type": "datatype", "data type": "datatype"}


class DefinitionError(ServiceError):
    """A brand definition that does not validate; ``errors`` name the point and the field."""

    status = 422


def _err(errors: list, where: str | None, field: str, reason: str, value: Any = None, **extra: Any) -> None:
    errors.append({"point": where, "field": field, "column": field, "reason": reason,
                   "value": None if value is None else str(value), **extra})


# --- point lists -----------------------------------------------------------------------------------------

def parse_points_text(text: str | bytes) -> list[dict]:
    """Points from a pasted list: CSV with a header line, or bare lines ``OBIS[, class[, attribute]][, type]
    [, name]`` (``#`` starts a comment). Fields left out are filled in from the standard later."""
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig", errors="replace")
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()
             and not line.lstrip().startswith("#")]
    if not lines:
        return []
    sample = lines[0][1]
    dialect = ";" if sample.count(";") > sample.count(",") else ("\t" if "\t" in sample else ",")
    first = [c.strip().lower() for c in next(csv.reader([sample], delimiter=dialect))]
    header = [(_CSV_ALIASES.get(c, c)) for c in first]
    rows = []
    if "obis" in header:
        for n, line in lines[1:]:
            cells = next(csv.reader([line], delimiter=dialect))
            row = {h: c.strip() for h, c in zip(header, cells, strict=False) if h in _POINT_FIELDS and c.strip()}
            rows.append({**row, "_line": n})
        return rows
    for n, line in lines:
        cells = [c.strip() for c in re.split(r"[,;\t]", line) if c.strip()]
        if len(cells) == 1 and " " in cells[0]:
            cells = [cells[0].split(None, 1)[0], cells[0].split(None, 1)[1]]
        row: dict[str, Any] = {"obis": cells[0], "_line": n}
        numbers = []
        for cell in cells[1:]:
            if cell.lstrip("-").isdigit():
                numbers.append(cell)
            elif cell.lower() in DATATYPES:
                row["datatype"] = cell.lower()
            elif cell.lower() in ACCESS:
                row["access"] = cell.lower()
            else:
                row["name"] = cell
        for field, number in zip(("class_id", "attribute"), numbers, strict=False):
            row[field] = number
        rows.append(row)
    return rows


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not (text.isascii() and text.lstrip("-").isdigit()):
        raise ValueError("not a whole number")
    return int(text)


def _complete_point(raw: dict, where: str, errors: list) -> list[dict]:
    """One point (or, for a bare OBIS code of a known object, its standard points), filled and checked."""
    row = {k: (v.strip() if isinstance(v, str) else v) for k, v in raw.items() if k != "_line"}
    row = {k: v for k, v in row.items() if v not in ("", None)}
    unknown = sorted(set(row) - set(_POINT_FIELDS))
    for field in unknown:
        _err(errors, where, field, "unknown field (use " + ", ".join(_POINT_FIELDS) + ")", row[field])
    try:
        obis = normalise_obis(row.get("obis", ""))
    except ValueError as exc:
        _err(errors, where, "obis", f"malformed OBIS code: {exc}", row.get("obis"))
        return []
    class_id = None
    if "class_id" in row:
        try:
            class_id = _int(row["class_id"])
        except ValueError:
            _err(errors, where, "class_id", "class id must be a number", row["class_id"])
            return []
        if class_id not in CLASS_NAMES:
            _err(errors, where, "class_id", "unknown COSEM interface class id", class_id)
            return []
    info = known(obis)
    if class_id is None:
        if info is None:
            _err(errors, where, "class_id", f"{obis} is not an object the standard fixes; give its interface "
                 "class (e.g. 3 for a register)", None)
            return []
        class_id = info.class_id
    standard = standard_points(obis, class_id)
    if "attribute" not in row and "method" not in row and "key" not in row and standard:
        # A bare code of a known object: every standard point of it (relay, image transfer ...); what else
        # the row says (name, scaler, unit, datatype ...) is about its value (the first point).
        extra = {k: v for k, v in row.items() if k not in ("obis", "class_id")}
        return [_check_point({**p, **(extra if i == 0 else {})}, where, errors) for i, p in enumerate(standard)]
    base = {"attribute": 2, "access": "r", "group": info.group if info else "Other", "class_id": class_id}
    match = None
    for p in standard:
        if ("method" in row and p["method"] is not None and str(p["method"]) == str(row["method"])) or (
                "method" not in row and p["attribute"] is not None
                and str(p["attribute"]) == str(row.get("attribute", 2))):
            match = p
            break
    if match is None and "key" in row:
        match = next((p for p in standard if p["key"] == row["key"]), None)
    if match:
        base.update({k: v for k, v in match.items() if v is not None})
        if match["method"] is not None:
            base.pop("attribute", None)
    elif info is None:
        base["key"] = "obj_" + obis.replace(".", "_") + (f"_a{row['attribute']}" if "attribute" in row else "")
        base["name"] = obis
    merged = {**base, **row, "obis": obis, "class_id": class_id}
    if "method" in row:
        merged.pop("attribute", None)
        merged.setdefault("access", "x")
    return [_check_point(merged, where, errors)]


def _check_point(p: dict, where: str, errors: list) -> dict:
    out: dict[str, Any] = {"key": str(p.get("key") or ""), "name": str(p.get("name") or p.get("key") or ""),
                           "obis": p["obis"], "class_id": p["class_id"], "attribute": None, "method": None,
                           "unit": p.get("unit") or None, "scaler": None,
                           "group": str(p.get("group") or "Other"), "access": str(p.get("access") or "r").lower(),
                           "datatype": (str(p["datatype"]).lower() if p.get("datatype") else None)}
    label = out["key"] or where
    if not KEY.match(out["key"]):
        _err(errors, label, "key", "key must be lower_snake_case (a letter, then letters, digits, _)", out["key"])
    for field, lo, hi in (("attribute", 1, 255), ("method", 1, 255), ("scaler", -127, 127)):
        if p.get(field) is None:
            continue
        try:
            out[field] = _int(p[field])
        except ValueError:
            _err(errors, label, field, "must be a whole number", p[field])
            continue
        if not lo <= out[field] <= hi:
            _err(errors, label, field, f"must be between {lo} and {hi}", out[field])
    group = next((g for g in GROUPS if g.lower() == out["group"].lower()), None)
    if group is None:
        _err(errors, label, "group", f"unknown group (use one of: {', '.join(GROUPS)})", out["group"])
    out["group"] = group or "Other"
    if out["access"] not in ACCESS:
        _err(errors, label, "access", "access must be r, w, rw or x", out["access"])
    if out["datatype"] and out["datatype"] not in DATATYPES:
        _err(errors, label, "datatype", f"unknown data type (use one of: {', '.join(DATATYPES)})", out["datatype"])
    if out["access"] == "x":
        if out["method"] is None:
            _err(errors, label, "method", "a method point (access x) needs a method number")
        out["attribute"] = None
    else:
        if out["method"] is not None:
            _err(errors, label, "access", "a point with a method number has access x", out["access"])
        out["attribute"] = out["attribute"] or 2
    if ("w" in out["access"] or out["access"] == "x") and not out["datatype"]:
        _err(errors, label, "datatype", f"the standard does not fix the data type of {out['obis']} "
             f"{'method ' + str(out['method']) if out['method'] else 'attribute ' + str(out['attribute'])}; "
             "give one so the HES can write it (e.g. uint32)")
    return out


# --- roles ----------------------------------------------------------------------------------------------

def _resolve(ref: Any, points: list[dict], role: str, errors: list, class_id: int | None = None) -> str | None:
    """The key of the point a role names (by key, or by OBIS code of a point of the right class)."""
    if ref in (None, ""):
        return None
    text = str(ref).strip()
    by_key = next((p for p in points if p["key"] == text), None)
    if by_key is None:
        try:
            obis = normalise_obis(text)
        except ValueError:
            _err(errors, None, f"roles.{role}", "names no point of this brand (give a point key or OBIS code)",
                 text)
            return None
        by_key = next((p for p in points if p["obis"] == obis and (class_id is None or p["class_id"] == class_id)
                       and p["method"] is None), None)
        if by_key is None:
            _err(errors, None, f"roles.{role}", f"no point of this brand has OBIS code {obis}"
                 + (f" and class {class_id}" if class_id else ""), text)
            return None
    if class_id is not None and by_key["class_id"] != class_id:
        _err(errors, by_key["key"], f"roles.{role}", f"a {role.replace('_', ' ')} is an object of class "
             f"{class_id} ({CLASS_NAMES.get(class_id)}), this point is class {by_key['class_id']}", text)
        return None
    return by_key["key"]


def infer_roles(points: list[dict]) -> dict:
    """Roles the standard OBIS codes give the points (first point of each object)."""
    roles: dict[str, Any] = {"event_logs": {}}
    for p in points:
        role = role_of(p["obis"], p["class_id"])
        if not role or p["method"] is not None:
            continue
        if role.startswith("event_log:"):
            roles["event_logs"].setdefault(role.split(":", 1)[1], {"point": p["key"]})
        else:
            roles.setdefault(role, p["key"])
    return roles


def _roles(raw: Any, points: list[dict], errors: list) -> dict:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        _err(errors, None, "roles", "roles must be an object of role: point key", raw)
        return {}
    roles = infer_roles(points)
    for name in raw:
        if name not in ROLES:
            _err(errors, None, f"roles.{name}", "unknown role (use one of: " + ", ".join(ROLES) + ")")
    for name, class_id in ROLE_CLASSES.items():
        if name in raw:
            roles[name] = _resolve(raw[name], points, name, errors, class_id)
    if "event_logs" in raw:
        logs = raw["event_logs"] or {}
        if not isinstance(logs, dict):
            _err(errors, None, "roles.event_logs", "event_logs must be an object of log name: point", logs)
            logs = {}
        roles["event_logs"] = {}
        for log, spec in logs.items():
            spec = spec if isinstance(spec, dict) else {"point": spec}
            key = _resolve(spec.get("point"), points, f"event_logs.{log}", errors, 7)
            if not re.match(r"^[a-z][a-z0-9_]{0,31}$", str(log)):
                _err(errors, None, f"roles.event_logs.{log}", "log names are lower_snake_case")
            if key:
                entry = {"point": key}
                if spec.get("codes"):
                    entry["codes"] = _codes(spec["codes"], f"roles.event_logs.{log}.codes", errors)
                roles["event_logs"][str(log)] = entry
    if "push_objects" in raw:
        items = raw["push_objects"] or []
        if not isinstance(items, list):
            _err(errors, None, "roles.push_objects", "push_objects is a list of point keys", items)
            items = []
        keys = []
        for item in items:
            if isinstance(item, list | tuple) and len(item) == 3:  # [class, obis, attribute]
                try:
                    obis = normalise_obis(str(item[1]))
                    match = next((p for p in points if p["obis"] == obis and p["class_id"] == _int(item[0])
                                  and p["attribute"] == _int(item[2])), None)
                except ValueError:
                    match = None
                if match is None:
                    _err(errors, None, "roles.push_objects", "no point of this brand is this object attribute",
                         item)
                    continue
                keys.append(match["key"])
            else:
                key = _resolve(item, points, "push_objects", errors)
                if key:
                    keys.append(key)
        roles["push_objects"] = keys
    return {k: v for k, v in roles.items() if v not in (None, {}, [])}


def _codes(raw: Any, field: str, errors: list) -> dict[str, str]:
    if not isinstance(raw, dict):
        _err(errors, None, field, "an event code table is an object of code: event type", raw)
        return {}
    out = {}
    for code, name in raw.items():
        try:
            out[str(_int(code))] = str(name)
        except ValueError:
            _err(errors, None, field, "event codes are whole numbers", code)
    return out


# --- the whole definition -------------------------------------------------------------------------------

def _legacy(data: dict) -> dict:
    """Accept the older ``obis.yaml`` shape (``defaults`` and top-level object maps) and top-level
    connection fields; return the canonical shape."""
    data = dict(data)
    connection = dict(data.pop("defaults", None) or {})
    if "auth" in connection:
        connection.setdefault("auth_level", connection.pop("auth"))
    for field in CONNECTION_DEFAULTS:
        if field in data:
            connection[field] = data.pop(field)
    if "auth" in data:
        connection["auth_level"] = data.pop("auth")
    if connection:
        data["connection"] = {**(data.get("connection") or {}), **connection}
    roles = data.get("roles") if data.get("roles") is not None else {}
    roles = dict(roles) if isinstance(roles, dict) else roles
    moved = False
    for legacy in ("profiles", "event_logs", "push_objects", *ROLE_CLASSES):
        if legacy not in data or not isinstance(roles, dict):
            continue
        moved = True
        value = data.pop(legacy)
        if legacy == "profiles":
            for old, new in _LEGACY_PROFILES.items():
                if isinstance(value, dict) and old in value:
                    roles[new] = value[old]
        else:
            roles[legacy] = value
    if moved:
        data["roles"] = roles
    return data


def normalise(data: Any, base: dict | None = None) -> dict:
    """Validate a (possibly partial) definition over ``base`` and return the complete canonical one.

    With a base, only the sections the data names change: ``connection`` and ``roles`` field by field,
    ``points`` and ``event_codes`` as a whole. Raises DefinitionError naming every bad point and field."""
    if not isinstance(data, dict):
        raise DefinitionError("Send the brand definition as an object.", errors=[
            {"point": None, "field": "(body)", "column": "(body)", "reason": "not an object", "value": None}])
    data = _legacy(data)
    errors: list[dict] = []
    for field in sorted(set(data) - set(TOP_LEVEL)):
        _err(errors, None, field, "unknown field (a brand has " + ", ".join(TOP_LEVEL[:-1]) + ")")
    out = copy.deepcopy(base) if base else {"connection": dict(CONNECTION_DEFAULTS), "points": [], "roles": {},
                                             "event_codes": {}}
    name = str(data.get("name", out.get("name", "")) or "").strip()
    if not KEY.match(name):
        _err(errors, None, "name", "brand name must be lower_snake_case letters and digits", name)
    out["name"] = name
    out["title"] = str(data.get("title") or out.get("title") or name)
    out["manufacturer"] = data.get("manufacturer", out.get("manufacturer"))
    connection = data.get("connection") or {}
    if not isinstance(connection, dict):
        _err(errors, None, "connection", "connection must be an object", connection)
        connection = {}
    conn = {**CONNECTION_DEFAULTS, **out.get("connection", {})}
    for field, value in connection.items():
        if field not in CONNECTION_DEFAULTS:
            _err(errors, None, f"connection.{field}", "unknown connection field (use "
                 + ", ".join(CONNECTION_DEFAULTS) + ")")
            continue
        enum = {"interface": Interface, "auth_level": AuthLevel, "push_policy": PushPolicy,
                "profile_read": PROFILE_READS}.get(field)
        if enum:
            choices = [getattr(m, "value", m) for m in enum]
            if value not in choices:
                _err(errors, None, f"connection.{field}", "use one of " + ", ".join(choices), value)
                continue
        else:
            try:
                value = _int(value)
            except ValueError:
                _err(errors, None, f"connection.{field}", "must be a whole number", value)
                continue
            lo, hi = (1, 1440) if field == "profile_period_minutes" else (0, 0x3FFF)
            if not lo <= value <= hi:
                _err(errors, None, f"connection.{field}", f"must be between {lo} and {hi}", value)
                continue
        conn[field] = value
    out["connection"] = conn
    if "points_csv" in data:
        if "points" in data:
            _err(errors, None, "points_csv", "give points or points_csv, not both")
        data["points"] = parse_points_text(data.get("points_csv") or "")
    if "points" in data:
        raw_points = data["points"]
        if not isinstance(raw_points, list) or not all(isinstance(p, dict) for p in raw_points):
            _err(errors, None, "points", "points must be a list of objects", None)
            raw_points = []
        points: list[dict] = []
        for i, raw in enumerate(raw_points, 1):
            where = str(raw.get("key") or raw.get("obis") or f"#{i}")
            if "_line" in raw:
                where = f"line {raw['_line']} ({where})"
            before = len(errors)
            completed = _complete_point(raw, where, errors)
            for error in errors[before:]:
                if "_line" in raw:
                    error["line"] = raw["_line"]
                else:
                    error["index"] = i
            for point in completed:
                if any(p["key"] == point["key"] for p in points):
                    _err(errors, point["key"], "key", "duplicate key", point["key"])
                    continue
                points.append(point)
        if not points and not errors:
            _err(errors, None, "points", "a brand needs at least one point")
        out["points"] = points
    if "roles" in data or "points" in data:
        raw_roles = data.get("roles")
        if base and isinstance(raw_roles, dict) and "points" not in data:
            raw_roles = {**_explicit(out.get("roles", {})), **raw_roles}
        elif base and raw_roles is None and "points" in data:
            raw_roles = {k: v for k, v in _explicit(out.get("roles", {})).items()
                         if _still_there(k, v, out["points"])}
        out["roles"] = _roles(raw_roles, out["points"], errors)
    if "event_codes" in data:
        out["event_codes"] = _codes(data.get("event_codes") or {}, "event_codes", errors)
    if errors:
        first = errors[0]
        where = f"point {first['point']}: " if first.get("point") else ""
        raise DefinitionError(f"Brand '{name or '?'}' is not valid: {where}{first['field']} {first['reason']}"
                              + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""), errors=errors)
    return out


def _explicit(roles: dict) -> dict:
    return dict(roles)


def _still_there(role: str, value: Any, points: list[dict]) -> bool:
    keys = {p["key"] for p in points}
    if role == "event_logs":
        return all((v["point"] if isinstance(v, dict) else v) in keys for v in value.values())
    if role == "push_objects":
        return all(k in keys for k in value)
    return value in keys


def compile_objects(definition: dict) -> dict:
    """The resolved object map the collection, command and push code reads (OBIS codes, not keys)."""
    points = {p["key"]: p for p in definition["points"]}
    roles = definition.get("roles", {})
    objects: dict[str, Any] = {}
    profiles = {old: points[roles[new]]["obis"] for old, new in _LEGACY_PROFILES.items() if roles.get(new)}
    if profiles:
        objects["profiles"] = profiles
    logs = {log: points[spec["point"]]["obis"] for log, spec in (roles.get("event_logs") or {}).items()}
    if logs:
        objects["event_logs"] = logs
        codes = {log: spec["codes"] for log, spec in roles["event_logs"].items() if spec.get("codes")}
        if codes:
            objects["event_codes_by_log"] = codes
    for role in ROLE_CLASSES:
        if role not in _LEGACY_PROFILES.values() and roles.get(role):
            objects[role] = points[roles[role]]["obis"]
    if roles.get("push_objects"):
        objects["push_objects"] = [[points[k]["class_id"], points[k]["obis"], points[k]["attribute"]]
                                   for k in roles["push_objects"]]
    return objects


def collection_plan(definition: dict) -> list[str]:
    """What the HES will collect and do with a brand, in words (the preview an integrator reviews)."""
    points = {p["key"]: p for p in definition["points"]}
    roles = definition.get("roles", {})
    plan = []
    period = definition["connection"]["profile_period_minutes"]
    for role, words in (("load_profile", f"load profile every {period} min"), ("daily_profile", "daily snapshots"),
                        ("billing_profile", "monthly billing values")):
        if roles.get(role):
            plan.append(f"Collects {words} from {points[roles[role]]['obis']}")
    for log, spec in (roles.get("event_logs") or {}).items():
        plan.append(f"Collects the {log} event log from {points[spec['point']]['obis']}")
    for role, words in (("relay", "Switches the relay"), ("token_gateway", "Sends prepaid tokens"),
                        ("limiter", "Sets the load limit"), ("image_transfer", "Upgrades firmware"),
                        ("clock", "Reads and sets the clock")):
        if roles.get(role):
            plan.append(f"{words} through {points[roles[role]]['obis']}")
    if roles.get("push_objects"):
        plan.append("Decodes pushes of " + ", ".join(roles["push_objects"]))
    readable = sum(1 for p in definition["points"] if "r" in p["access"])
    writable = sum(1 for p in definition["points"] if "w" in p["access"] or p["access"] == "x")
    plan.append(f"{readable} readable and {writable} writable/executable points")
    if not roles.get("load_profile"):
        plan.append("No load profile: scheduled load-profile collection will skip this brand")
    return plan
