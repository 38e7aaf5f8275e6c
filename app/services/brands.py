"""Meter brands as data: validate OBIS point lists, sync plugin brands, create brands from the UI."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select

from app.comms.cosem import CLASS_NAMES, normalise_obis
from app.extensions import db
from app.models import AuthLevel, Interface, MeterBrand, ObisPoint, PushPolicy
from app.services import ServiceError, audit
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


def _set_points(brand: MeterBrand, specs: list[PointSpec]) -> None:
    existing = {p.key: p for p in brand.points}
    keep = []
    for position, spec in enumerate(specs):
        point = existing.get(spec.key) or ObisPoint(key=spec.key)
        for field_name, value in vars(spec).items():
            setattr(point, field_name, value)
        point.position = position
        keep.append(point)
    brand.points = keep


def save_brand(data: dict, *, source: str = "ui", points: list[PointSpec] | None = None) -> MeterBrand:
    """Create or update a brand from a definition dict (``obis.yaml`` shape)."""
    name = str(data.get("name", "")).strip()
    if not KEY.match(name):
        raise ServiceError("Brand name must be lower_snake_case letters and digits.",
                           errors=[{"column": "name", "reason": "invalid", "value": name}], status=422)
    if points is None:
        raw_points = data.get("points") or []
        if not isinstance(raw_points, list) or not all(isinstance(p, dict) for p in raw_points):
            raise ServiceError("points must be a list of objects.", status=422,
                               errors=[{"column": "points", "reason": "invalid"}])
        points, errors = points_from_rows([dict(p) for p in raw_points])
        if errors:
            raise ServiceError(f"Brand '{name}' has invalid OBIS points", errors=errors, status=422)
    defaults = data.get("defaults") or {}
    brand = db.session.execute(select(MeterBrand).where(MeterBrand.name == name)).scalar()
    created = brand is None
    if created:
        brand = MeterBrand(name=name)
        db.session.add(brand)
    brand.title = data.get("title") or brand.title or name
    brand.manufacturer = data.get("manufacturer") or brand.manufacturer
    brand.source = source
    try:
        brand.interface = Interface(defaults.get("interface", (brand.interface or Interface.wrapper).value))
        brand.auth_level = AuthLevel(defaults.get("auth", (brand.auth_level or AuthLevel.low).value))
        brand.push_policy = PushPolicy(defaults.get("push_policy", (brand.push_policy or PushPolicy.auto).value))
    except ValueError as exc:
        raise ServiceError(f"Brand '{name}': {exc}", status=422) from exc
    brand.client_address = int(defaults.get("client_address", brand.client_address or 1))
    brand.server_address = int(defaults.get("server_address", brand.server_address or 1))
    brand.profile_period_minutes = int(defaults.get("profile_period_minutes", brand.profile_period_minutes or 15))
    brand.objects = {k: data[k] for k in OBJECT_KEYS if k in data} or brand.objects or {}
    brand.event_codes = {str(k): v for k, v in (data.get("event_codes") or brand.event_codes or {}).items()}
    _set_points(brand, points)
    db.session.flush()
    audit.record("create" if created else "update", "brand", brand.id, f"brand {name} ({len(points)} points)")
    return brand


def sync_plugin_brands() -> list[str]:
    """Upsert every brand offered by plugins; brands created in the UI are left alone."""
    from app.plugins.manager import hook

    names = []
    for batch in hook().hes_register_brands():
        for data in batch or []:
            existing = db.session.execute(select(MeterBrand).where(MeterBrand.name == data["name"])).scalar()
            if existing is not None and existing.source == "ui":
                continue
            save_brand(dict(data), source="plugin")
            names.append(data["name"])
    db.session.commit()
    return names


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
