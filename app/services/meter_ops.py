"""Operations run against one meter inside an associated session (named in ``app.services.operations`` so they can
be routed to the node that owns the meter's socket)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.comms.cosem import normalise_obis, to_jsonable, unit_symbol
from app.comms.session import DlmsError, DlmsSession, scale
from app.models import Meter, MeterBrand, ObisPoint
from app.models.types import UTC
from app.services import ServiceError
from app.services.brands import point_by_ref
from app.services.obis_catalogue import known

MAX_PROFILE_ROWS = 20_000


def resolve_points(meter: Meter, refs: list[str]) -> list[ObisPoint]:
    """The brand points named by key or OBIS code; unknown ones are a 422 listing them."""
    points, unknown = [], []
    for ref in refs:
        point = point_by_ref(meter.brand, str(ref))
        (points if point is not None else unknown).append(point if point is not None else ref)
    if unknown:
        raise ServiceError(f"Unknown parameter(s) for brand {meter.brand.name}: {', '.join(map(str, unknown))}",
                           errors=[{"column": "points", "reason": "unknown parameter", "value": u} for u in unknown],
                           status=422)
    return points


def _read_point(session: DlmsSession, point: ObisPoint, start: dt.datetime | None,
                end: dt.datetime | None, brand: MeterBrand | None = None) -> dict[str, Any]:
    if point.access == "x":
        raise ServiceError(f"{point.key} is a method (execute it, it cannot be read)", status=422)
    if point.class_id in (3, 4) and point.attribute == 2:
        value, unit = session.read_register(point.obis, point.class_id)
        return {"value": value, "unit": unit or point.unit}
    if point.class_id == 8 and point.attribute == 2:
        return {"value": session.read_clock().isoformat(), "unit": None}
    if point.class_id == 7 and point.attribute == 2:
        read = session.read_profile(point.obis, start, end)
        columns, rows = profile_table(session, brand, read.columns, read.rows[-MAX_PROFILE_ROWS:])
        return {"columns": columns, "rows": to_jsonable(rows),
                "value": f"{len(read.rows)} rows", "unit": None, "method": read.method, "notes": read.notes}
    # A plain attribute carries the raw integer (credit in cents): scale it as the brand's point says.
    raw = session.get(point.obis, point.class_id, point.attribute)
    return {"value": to_jsonable(scaled(point, raw)), "unit": point.unit}


def profile_table(session: DlmsSession, brand: MeterBrand | None, columns: list[dict],
                  rows: list[list]) -> tuple[list[dict], list[list]]:
    """A profile as a person reads it: each column named after its channel (the brand's point, else the
    standard's name, else the OBIS code) with its unit, register columns scaled by the meter's scaler."""
    described, scalers = [], {}
    for i, column in enumerate(columns):
        column = dict(to_jsonable(column))
        obis = normalise_obis(column["obis"])
        point = next((p for p in (brand.points if brand is not None else ())
                      if p.obis == obis and p.attribute == column["attribute"]), None)
        info = known(obis)
        column["name"] = point.name if point is not None else info.name if info else column["obis"]
        column["unit"] = point.unit if point is not None else info.unit if info else None
        if column["class_id"] in (3, 4) and column["attribute"] == 2:
            try:
                scaler, unit = session.scaler_unit(column["obis"], column["class_id"])
                scalers[i] = scaler
                column["unit"] = unit_symbol(unit) or column["unit"]
            except DlmsError:  # the meter will not say: the brand's scaler is the next best truth
                if point is not None and point.scaler:
                    scalers[i] = point.scaler
        described.append(column)
    scaled_rows = [[scale(v, scalers[i]) if i in scalers and isinstance(v, int | float) and not isinstance(v, bool)
                    else v for i, v in enumerate(row)] for row in rows]
    return described, scaled_rows


def scaled(point: ObisPoint | None, raw: Any) -> Any:
    """A raw number times 10^scaler of its point (rounded to the scaler's decimals); anything else unchanged."""
    if point is None or not isinstance(raw, int | float) or isinstance(raw, bool) or not point.scaler:
        return raw
    return round(raw * 10.0 ** point.scaler, max(0, -point.scaler))


def read_points(session: DlmsSession, meter: Meter, refs: list[str], start: str | None = None,
                end: str | None = None) -> list[dict[str, Any]]:
    """Read brand points; each result has its value, unit and read time, or the meter's error."""
    start_dt = dt.datetime.fromisoformat(start) if start else None
    end_dt = dt.datetime.fromisoformat(end) if end else None
    results = []
    for point in resolve_points(meter, refs):
        item = {"key": point.key, "name": point.name, "obis": point.obis, "class_id": point.class_id,
                "attribute": point.attribute, "group": point.group}
        try:
            item.update(_read_point(session, point, start_dt, end_dt, meter.brand))
        except DlmsError as exc:
            item.update(value=None, unit=point.unit, error=str(exc))
        item["read_at"] = dt.datetime.now(UTC).isoformat()
        results.append(item)
    return results
