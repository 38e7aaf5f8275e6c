"""On-demand reads of any brand parameter, for the API and the Meter Reading page."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.extensions import db
from app.models import Meter
from app.services import NotFound, ServiceError, audit
from app.services.meter_access import run_on_meter
from app.services.meter_ops import resolve_points

MAX_POINTS = 64


def read_now(meter_id: int, refs: list[str], start: str | None = None, end: str | None = None) -> dict[str, Any]:
    """Validate, read the parameters from the meter, and return values with units and times."""
    meter = db.session.get(Meter, meter_id)
    if meter is None:
        raise NotFound(f"Meter {meter_id} not found.")
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
    results = run_on_meter(meter_id, "read_points", refs=refs, start=start, end=end)
    audit.record("read", "meter", meter_id, f"read {len(refs)} parameter(s) from {number}",
                 details={"points": refs})
    db.session.commit()
    return {"meter_id": meter_id, "number": number, "results": results}
