"""Operations run against one meter inside an associated session (named in ``app.services.operations`` so they can
be routed to the node that owns the meter's socket)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.comms.cosem import decode_datetime, normalise_obis, to_jsonable, unit_symbol
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


def _prefetch(session: DlmsSession, points: list[ObisPoint]) -> dict[tuple[str, int, int], Any]:
    """The plain attributes among ``points`` (registers with any scaler not yet known, the clock, settings), read
    together: one GET-WITH-LIST where the meter supports it. A refused attribute maps to its DlmsError."""
    wanted: list[tuple[str, int, int]] = []
    for point in points:
        if point.access == "x" or (point.class_id == 7 and point.attribute == 2):
            continue
        if point.class_id in (3, 4) and point.attribute == 2 and session.cached_scaler(point.obis,
                                                                                       point.class_id) is None:
            wanted.append((point.obis, point.class_id, 3))
        wanted.append((point.obis, point.class_id, point.attribute))
    wanted = list(dict.fromkeys(wanted))
    if len(wanted) < 2 or not session.with_list:
        return {}
    return dict(zip(wanted, session.get_many(wanted), strict=True))


def _fetched(fetched: dict[tuple[str, int, int], Any], key: tuple[str, int, int]) -> Any:
    value = fetched[key]
    if isinstance(value, DlmsError):
        raise value
    return value


def _read_point(session: DlmsSession, point: ObisPoint, start: dt.datetime | None,
                end: dt.datetime | None, brand: MeterBrand | None = None,
                fetched: dict[tuple[str, int, int], Any] | None = None) -> dict[str, Any]:
    if point.access == "x":
        raise ServiceError(f"{point.key} is a method (execute it, it cannot be read)", status=422)
    key = (point.obis, point.class_id, point.attribute)
    if fetched and key in fetched:
        return _from_fetched(session, point, fetched)
    if point.class_id in (3, 4) and point.attribute == 2:
        value, unit = session.read_register(point.obis, point.class_id)
        return {"value": value, "unit": unit or point.unit}
    if point.class_id == 8 and point.attribute == 2:
        return {"value": session.read_clock().isoformat(), "unit": None}
    if point.class_id == 7 and point.attribute == 2:
        read = session.read_profile(point.obis, start, end)
        columns, rows = profile_table(session, brand, read.columns, read.rows[-MAX_PROFILE_ROWS:])
        return {"columns": columns, "rows": rows,
                "value": f"{len(read.rows)} rows", "unit": None, "method": read.method, "notes": read.notes}
    # A plain attribute carries the raw integer (credit in cents): scale it as the brand's point says.
    raw = session.get(point.obis, point.class_id, point.attribute)
    return {"value": to_jsonable(scaled(point, raw)), "unit": point.unit}


def _from_fetched(session: DlmsSession, point: ObisPoint, fetched: dict[tuple[str, int, int], Any]) -> dict[str, Any]:
    """A point's result from the values read together (as ``_read_point`` reads it alone)."""
    raw = _fetched(fetched, (point.obis, point.class_id, point.attribute))
    if point.class_id in (3, 4) and point.attribute == 2:
        scaler_key = (point.obis, point.class_id, 3)
        known_scaler = session.cached_scaler(point.obis, point.class_id)
        scaler, unit = known_scaler if known_scaler is not None else session.remember_scaler(
            point.obis, point.class_id, _fetched(fetched, scaler_key))
        return {"value": scale(raw, scaler), "unit": unit_symbol(unit) or point.unit}
    if point.class_id == 8 and point.attribute == 2:
        when = decode_datetime(raw) if isinstance(raw, bytes) else None
        if when is None:
            raise DlmsError(12, f"meter clock is not a valid date-time: {raw!r}")
        return {"value": when.isoformat(), "unit": None}
    return {"value": to_jsonable(scaled(point, raw)), "unit": point.unit}


def profile_table(session: DlmsSession, brand: MeterBrand | None, columns: list[dict],
                  rows: list[list]) -> tuple[list[dict], list[list]]:
    """A profile as a person reads it: each column named after its channel (the brand's point, else the
    standard's name, else the OBIS code) with its unit, register columns scaled by the meter's scaler; the rows
    JSON-ready (each cell scaled and converted in one step by its column's converter)."""
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
    convert = [_scaled_cell(scalers[i]) if i in scalers else _json_cell for i in range(len(described))]
    width = len(convert)
    return described, [[convert[i](v) if i < width else to_jsonable(v) for i, v in enumerate(row)] for row in rows]


_PLAIN_JSON = (int, float, str, bool, type(None))


# A profile timestamp's ISO text, per process (the same quarter-hours come back in every meter's rows).
_ISO: dict[dt.datetime, str] = {}
ISO_CACHE_LIMIT = 50_000


def _json_cell(value: Any) -> Any:
    """One profile cell as JSON: plain values as they are, datetimes ISO 8601, bytes hex (see to_jsonable)."""
    if type(value) in _PLAIN_JSON:
        return value
    if isinstance(value, dt.datetime):
        text = _ISO.get(value)
        if text is None:
            if len(_ISO) >= ISO_CACHE_LIMIT:
                _ISO.clear()
            text = _ISO[value] = value.astimezone(UTC).isoformat()
        return text
    return to_jsonable(value)


def _scaled_cell(scaler: int):
    """A converter that scales numbers by the register's scaler (other values as ``_json_cell``)."""
    def convert(value: Any) -> Any:
        if type(value) in (int, float):
            return scale(value, scaler)
        return _json_cell(value)
    return convert


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
    points = resolve_points(meter, refs)
    fetched = _prefetch(session, points)
    for point in points:
        item = {"key": point.key, "name": point.name, "obis": point.obis, "class_id": point.class_id,
                "attribute": point.attribute, "group": point.group}
        try:
            item.update(_read_point(session, point, start_dt, end_dt, meter.brand, fetched))
        except DlmsError as exc:
            item.update(value=None, unit=point.unit, error=str(exc))
        item["read_at"] = dt.datetime.now(UTC).isoformat()
        results.append(item)
    return results
