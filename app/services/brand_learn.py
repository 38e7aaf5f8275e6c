"""Learn a brand from a live meter: read its association's object list (0.0.40.0.0.255 attribute 2), each
profile's capture objects and period, each register's scaler and unit, the push object list and the data
type of values the standard leaves open; propose a complete brand definition for the integrator to review.
Objects the meter refuses to read are listed, not fatal."""

from __future__ import annotations

from typing import Any

from gurux_dlms.enums import DataType

from app.comms.cosem import normalise_obis, unit_symbol
from app.comms.session import DlmsError, DlmsSession
from app.models import Meter
from app.services.brand_definition import DefinitionError, collection_plan, normalise
from app.services.obis_catalogue import CLASS_POINTS, known, standard_points

ASSOCIATION = "0.0.40.0.0.255"
_TYPE_NAMES = {DataType.BITSTRING: "bit_string", DataType.OCTET_STRING: "octet_string",
               DataType.STRING: "visible_string", DataType.STRING_UTF8: "utf8_string",
               DataType.DATETIME: "date_time", DataType.COMPACT_ARRAY: "array"}


def type_name(tag: int | None) -> str | None:
    """The definition's name of a DLMS data type tag (uint32, octet_string ...)."""
    if tag is None or tag == DataType.NONE:
        return None
    try:
        member = DataType(tag)
    except ValueError:
        return None
    return _TYPE_NAMES.get(member, member.name.lower())


def _access(modes: list) -> tuple[dict[int, str], set[int]]:
    """Attribute access ('r', 'w', 'rw') and the methods the association grants."""
    attributes, methods = {}, set()
    try:
        attribute_modes, method_modes = modes[0], modes[1]
    except (IndexError, TypeError):
        return attributes, methods
    for item in attribute_modes or []:
        index, mode = int(item[0]), int(item[1])
        read, write = bool(mode & 1), bool(mode & 2)
        if read or write:
            attributes[index] = ("r" if read else "") + ("w" if write else "")
    for item in method_modes or []:
        if int(item[1]):
            methods.add(int(item[0]))
    return attributes, methods


def learn(session: DlmsSession) -> dict[str, Any]:
    """Read the meter and propose ``{definition, refused, profiles, skipped, plan}``."""
    refused: list[dict] = []
    skipped: list[dict] = []
    profiles: dict[str, dict] = {}

    def attempt(what: dict, read):
        try:
            return read()
        except DlmsError as exc:
            refused.append({**what, "reason": str(exc)})
            return None

    object_list = session.get(ASSOCIATION, 15, 2)
    points: list[dict] = []
    push_objects: list = []
    period = None
    for entry in object_list:
        class_id, obis = int(entry[0]), normalise_obis(bytes(entry[2]))
        attributes, methods = _access(entry[3] if len(entry) > 3 else [])
        if class_id not in CLASS_POINTS:
            if class_id != 15:
                skipped.append({"obis": obis, "class_id": class_id, "reason": "no points proposed for this class"})
            continue
        info = known(obis)
        for point in standard_points(obis, class_id):
            if point["method"] is not None:
                if point["method"] not in methods:
                    continue
            elif point["attribute"] not in attributes:
                continue
            else:
                point["access"] = attributes[point["attribute"]]
                if point["access"] == "w":
                    point["access"] = "rw"  # the HES reads back what it writes
            where = {"obis": obis, "class_id": class_id}
            if class_id in (3, 4) and point["attribute"] == 2 and 3 in attributes:
                scaler_unit = attempt({**where, "attribute": 3}, lambda o=obis, c=class_id: session.get(o, c, 3))
                if isinstance(scaler_unit, list) and len(scaler_unit) == 2:
                    point["scaler"] = int(scaler_unit[0])
                    point["unit"] = unit_symbol(int(scaler_unit[1])) or None
            if point["method"] is None and not point["datatype"] and "r" in point["access"]:
                typed = attempt({**where, "attribute": point["attribute"]},
                                lambda o=obis, c=class_id, a=point["attribute"]: session.get_typed(o, c, a))
                if typed is not None:
                    point["datatype"] = type_name(typed[1])
            points.append(point)
        if class_id == 7 and 3 in attributes:
            captures = attempt({"obis": obis, "class_id": 7, "attribute": 3},
                               lambda o=obis: session.read_capture_objects(o)) or []
            seconds = attempt({"obis": obis, "class_id": 7, "attribute": 4},
                              lambda o=obis: session.capture_period(o)) if 4 in attributes else None
            profiles[obis] = {"capture_period_seconds": seconds,
                              "captures": [[c["class_id"], c["obis"], c["attribute"]] for c in captures]}
            if info is not None and info.role == "load_profile" and seconds:
                period = max(1, int(seconds) // 60)
        if class_id == 40 and 2 in attributes:
            listed = attempt({"obis": obis, "class_id": 40, "attribute": 2},
                             lambda o=obis: session.get(o, 40, 2)) or []
            push_objects = [[int(i[0]), normalise_obis(bytes(i[1])), int(i[2])] for i in listed]
    data: dict[str, Any] = {"name": "learned", "points": points, "roles": {}}
    keys = {(p["class_id"], p["obis"], p["attribute"]): p["key"] for p in points if p["method"] is None}
    pushed = [keys.get(tuple(o)) for o in push_objects]
    if pushed and all(pushed):
        data["roles"]["push_objects"] = pushed
    elif push_objects:
        skipped.append({"obis": "push object list", "reason": "lists objects that are not points: "
                        + ", ".join(f"{c}/{o}/{a}" for c, o, a in push_objects)})
    if period:
        data["connection"] = {"profile_period_minutes": period}
    try:
        definition = normalise(data)
    except DefinitionError as exc:  # e.g. a writable attribute the standard gives no type and the meter hid
        return {"definition": None, "errors": exc.errors, "points": points, "refused": refused,
                "skipped": skipped, "profiles": profiles}
    return {"definition": definition, "refused": refused, "skipped": skipped, "profiles": profiles,
            "plan": collection_plan(definition)}


def learn_brand(session: DlmsSession, meter: Meter, **_kwargs) -> dict[str, Any]:
    """Meter operation: read the meter's objects and propose a brand definition."""
    return learn(session)
