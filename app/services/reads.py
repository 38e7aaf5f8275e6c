"""On-demand reads of any brand parameter, for the API and the Meter Reading page."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.extensions import db
from app.services import ServiceError, audit
from app.services.meter_access import run_on_meter
from app.services.meter_ops import resolve_points
from app.services.meter_view import MeterView, load_meter_view

MAX_POINTS = 64


def read_now(meter_id: int, refs: list[str], start: str | None = None, end: str | None = None, *,
             view: MeterView | None = None) -> dict[str, Any]:
    """Validate, read the parameters from the meter, and return values with units and times (``view``: the
    meter when the caller loaded it already, e.g. with its user's scope)."""
    meter = view if view is not None else load_meter_view(meter_id)
    if not refs or not isinstance(refs, list) or len(refs) > MAX_POINTS:
        raise ServiceError(f"Give 1 to {MAX_POINTS} parameter keys or OBIS codes in 'points'.", status=422)
    for name, value in (("from", start), ("to", end)):
        if value:
            try:
                parsed = dt.datetime.fromisoformat(value)
            except ValueError as exc:
                raise ServiceError(f"'{name}' must be an ISO 8601 date-time.", status=422) from exc
            if parsed.tzinfo is None:
                raise ServiceError(f"'{name}' needs a time zone offset (e.g. Z or +01:00).", status=422)
    resolve_points(meter, refs)
    number = meter.number
    results = run_on_meter(meter_id, "read_points", view=meter, refs=refs, start=start, end=end)
    audit.append("read", "meter", meter_id, f"read {len(refs)} parameter(s) from {number}",
                 details={"points": refs})
    db.session.commit()
    return {"meter_id": meter_id, "number": number, "results": results}
