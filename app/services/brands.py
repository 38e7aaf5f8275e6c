"""Meter brands as data: validate OBIS point lists, sync plugin brands, create brands from the UI."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select

from app.comms.cosem import CLASS_NAMES, normalise_obis
from app.extensions import db
from app.models import AuthLevel, Interface, Meter, MeterBrand, ObisPoint, PushPolicy
from app.services import ServiceError, audit
from app.services.brand_definition import DefinitionError, compile_objects, infer_roles, normalise
from app.services.csvio import Column, parse

GROUPS = ("Energy", "Instantaneous", "Demand", "Profiles", "Events", "Relay", "Prepaid", "Clock",
          "Network", "Firmware", "Identification", "Configuration", "Power Quality", "Other")
ACCESS = {"r", "w", "rw", "x"}
KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
OBJECT_KEYS = ("profiles", "event_logs", "relay", "token_gateway", "credit", "account", "image_transfer",
               "push_objects", "push_setup", "limiter", "clock", "serial_number", "logical_device_name")


def _check_obis(value: str) -> str | None:
    try:
        normalise_obis(value)
    except ValueError as exc:
        return f"malformed OBIS code: {exc}"
    return None


def _check_class(value: str) -> str | None:
    if not (value.isascii() and value.isdigit()):  # "²".isdigit() is true, but int("²") fails
        return "class id must be a number"
    return None if int(value) in CLASS_NAMES else "unknown COSEM interface class id"


def _check_int(lo: int, hi: int):
    def check(value: str) -> str | None:
        try:
            n = int(value)
        except ValueError:
            return "must be a whole number"
        return None if lo <= n <= hi else f"must be between {lo} and {hi}"

    return check


POINT_COLUMNS = [
    Column("key", check=lambda v: None if KEY.match(v) else "key must be lower_snake_case"),
    Column("name", aliases=("description", "parameter")),
    Column("obis", aliases=("obis code", "logical name"), check=_check_obis),
    Column("class_id", aliases=("class", "class id", "ic"), check=_check_class),
    Column("attribute", required=False, aliases=("attr", "attribute index"), check=_check_int(1, 255)),
    Column("unit", required=False),
    Column("scaler", required=False, check=_check_int(-127, 127)),
    Column("group", required=False, check=lambda v: None if v.title() in {g.title() for g in GROUPS}
           else f"unknown group (use one of: {', '.join(GROUPS)})"),
    Column("access", required=False, check=lambda v: None if v.lower() in ACCESS else "access must be r, w, rw or x"),
    Column("method", required=False, check=_check_int(1, 255)),
    Column("datatype", required=False),
]


@dataclass(frozen=True)
class PointSpec:
    """One OBIS point of a brand, validated."""

    key: str
    name: str
    obis: str
    class_id: int
    attribute: int = 2
    unit: str | None = None
    scaler: int | None = None
    group: str = "Other"
    access: str = "r"
    method: int | None = None
    datatype: str | None = None


def _group(value: str) -> str:
    return next((g for g in GROUPS if g.lower() == value.lower()), "Other") if value else "Other"


def points_from_rows(rows: list[dict], where: str = "point") -> tuple[list[PointSpec], list[dict]]:
    """Validate point dicts (from YAML, JSON or CSV); return specs and errors with positions."""
    specs, errors, keys = [], [], set()
    for i, row in enumerate(rows, 1):
        line = row.pop("_line", i)
        row = {k: ("" if v is None else str(v).strip()) for k, v in row.items()}
        problems = []
        for col in POINT_COLUMNS:
            value = row.get(col.name, "")
            if not value:
                if col.required:
                    problems.append((col.name, "is required", value))
                continue
            reason = col.check(value) if col.check else None
            if reason:
                problems.append((col.name, reason, value))
        if row.get("key") in keys:
            problems.append(("key", "duplicate key", row.get("key")))
        access = (row.get("access") or "r").lower()
        if access == "x" and not row.get("method"):
            problems.append(("method", "a method point (access x) needs a method number", ""))
        for column, reason, value in problems:
            errors.append({where == "line" and "line" or "index": line, "column": column, "reason": reason,
                           "value": value})
        if problems:
            continue
        keys.add(row["key"])
        specs.append(PointSpec(
            key=row["key"], name=row["name"], obis=normalise_obis(row["obis"]), class_id=int(row["class_id"]),
            attribute=int(row.get("attribute") or 2), unit=row.get("unit") or None,
            scaler=int(row["scaler"]) if row.get("scaler") else None, group=_group(row.get("group", "")),
            access=access, method=int(row["method"]) if row.get("method") else None,
            datatype=row.get("datatype") or None,
        ))
    return specs, errors


def points_from_csv(data: bytes | str) -> list[PointSpec]:
    """Parse a pasted or uploaded CSV of OBIS points; rejects the whole list on any bad line."""
    parsed = parse(data, POINT_COLUMNS)
    if parsed.errors:
        raise ServiceError("OBIS list rejected", errors=[e.as_dict() for e in parsed.errors], status=422)
    specs, errors = points_from_rows([dict(row, _line=line) for line, row in parsed.rows], where="line")
    if errors:
        raise ServiceError("OBIS list rejected", errors=errors, status=422)
    return specs


def _set_points(brand: MeterBrand, points: list[dict]) -> None:
    """Update points in place by key (meters keep working through an edit), add new ones, drop the rest."""
    existing = {p.key: p for p in brand.points}
    keep = []
    for position, spec in enumerate(points):
        point = existing.get(spec["key"]) or ObisPoint(key=spec["key"])
        for field_name in ("name", "obis", "class_id", "attribute", "method", "unit", "scaler", "group", "access",
                           "datatype"):
            setattr(point, field_name, spec[field_name])
        if point.attribute is None:  # a method point; the column predates methods and is NOT NULL
            point.attribute = 2
        point.position = position
        keep.append(point)
    brand.points = keep


def definition_of(brand: MeterBrand) -> dict:
    """A stored brand as its canonical definition (what GET answers and what a partial update starts from)."""
    points = [{"key": p.key, "name": p.name, "obis": p.obis, "class_id": p.class_id,
               "attribute": None if p.access == "x" else p.attribute, "method": p.method, "unit": p.unit,
               "scaler": p.scaler, "group": p.group, "access": p.access, "datatype": p.datatype}
              for p in brand.points]
    return {"name": brand.name, "title": brand.title, "manufacturer": brand.manufacturer,
            "connection": {"interface": _value(brand.interface, "wrapper"),
                           "client_address": brand.client_address if brand.client_address is not None else 1,
                           "server_address": brand.server_address if brand.server_address is not None else 1,
                           "auth_level": _value(brand.auth_level, "low"),
                           "profile_period_minutes": brand.profile_period_minutes or 15,
                           "push_policy": _value(brand.push_policy, "auto"),
                           "profile_read": (brand.objects or {}).get("profile_read", "auto")},
            "points": points, "roles": (brand.objects or {}).get("roles") or infer_roles(points),
            "event_codes": dict(brand.event_codes or {})}


def _value(member, default: str) -> str:
    return member.value if member is not None else default


def save_brand(data: dict, *, source: str = "ui", points: list[PointSpec] | None = None,
               partial: bool = False) -> MeterBrand:
    """Create or update a brand from a definition (``obis.yaml`` shape, validated by ``normalise``).

    ``partial``: only the sections the data names change; otherwise the data is the whole definition.
    Every save keeps a version; meters of the brand forget cached objects of it."""
    from app.models import BrandVersion
    from app.services.meter_access import forget_meter_objects

    data = dict(data)
    if points is not None:
        data["points"] = [{k: v for k, v in vars(p).items()} for p in points]
    name = str(data.get("name", "")).strip()
    brand = db.session.execute(select(MeterBrand).where(MeterBrand.name == name)).scalar() if name else None
    created = brand is None
    base = definition_of(brand) if brand is not None and partial else None
    if brand is not None and not partial and "points" not in data and "points_csv" not in data:
        raise DefinitionError("A full brand definition needs its points; use PATCH (or partial) to change only "
                              "some fields.", errors=[{"point": None, "field": "points", "column": "points",
                                                       "reason": "is required", "value": None}])
    definition = normalise(data, base)
    if created:
        brand = MeterBrand(name=definition["name"])
        db.session.add(brand)
    connection = definition["connection"]
    brand.title = definition["title"]
    brand.manufacturer = definition.get("manufacturer")
    brand.source = source
    brand.interface = Interface(connection["interface"])
    brand.auth_level = AuthLevel(connection["auth_level"])
    brand.push_policy = PushPolicy(connection["push_policy"])
    brand.client_address = connection["client_address"]
    brand.server_address = connection["server_address"]
    brand.profile_period_minutes = connection["profile_period_minutes"]
    brand.objects = {**compile_objects(definition), "roles": definition["roles"],
                     "profile_read": connection["profile_read"]}
    brand.event_codes = definition["event_codes"]
    _set_points(brand, definition["points"])
    db.session.flush()
    last = db.session.execute(select(func.max(BrandVersion.version)).where(BrandVersion.brand_id == brand.id)
                              ).scalar() or 0
    db.session.add(BrandVersion(brand_id=brand.id, version=last + 1, source=source, saved_by=_user_name(),
                                definition=definition))
    for (meter_id,) in db.session.execute(select(Meter.id).where(Meter.brand_id == brand.id)):
        forget_meter_objects(meter_id)
    audit.record("create" if created else "update", "brand", brand.id,
                 f"brand {brand.name} version {last + 1} ({len(definition['points'])} points)")
    return brand


def _user_name() -> str | None:
    try:
        from flask_login import current_user

        return getattr(current_user, "username", None)
    except Exception:  # noqa: BLE001  (outside a request)
        return None


def sync_plugin_brands() -> list[str]:
    """Upsert every brand offered by plugins; brands created in the UI are left alone."""
    from app.plugins.manager import hook

    names = []
    for batch in hook().hes_register_brands():
        for data in batch or []:
            existing = db.session.execute(select(MeterBrand).where(MeterBrand.name == data["name"])).scalar()
            if existing is not None and existing.source == "ui":
                continue
            if existing is not None and _unchanged(existing, data):
                continue
            save_brand(dict(data), source="plugin")
            names.append(data["name"])
    db.session.commit()
    return names


def _unchanged(brand: MeterBrand, data: dict) -> bool:
    """True when a plugin's definition is the one the brand already has (no new version on every start)."""
    try:
        return normalise(dict(data)) == normalise(definition_of(brand))
    except DefinitionError:
        return False


def point_by_ref(brand: MeterBrand, ref: str) -> ObisPoint | None:
    """A brand's point by key or by OBIS code (any notation)."""
    for point in brand.points:
        if point.key == ref:
            return point
    try:
        obis = normalise_obis(ref)
    except ValueError:
        return None
    return next((p for p in brand.points if p.obis == obis), None)
