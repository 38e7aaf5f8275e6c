"""Meter operations behind the commands, each run inside one associated session on the node that holds
the meter. They return what the meter answered and read back, with ``ok`` and a ``reason`` when not ok."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from app.comms.cosem import to_jsonable
from app.comms.session import DATA_ACCESS_RESULTS, DlmsError, DlmsSession
from app.extensions import db
from app.models import Meter, ObisPoint, RelayState
from app.models.types import UTC
from app.services.brands import point_by_ref
from app.services.commands.kinds import (
    TOKEN_EXECUTED,
    TOKEN_FAILURES,
    TOKEN_STATUS,
    brand_object,
    encode_token,
    limiter_point,
    parse_value,
    point_at,
)
from app.services.meter_ops import scaled as _scaled

CONTROL_STATES = {0: RelayState.disconnected, 1: RelayState.connected, 2: RelayState.ready_for_reconnection}
TOKEN_POLLS = 6


def _result_text(code: int) -> str:
    return f"{DATA_ACCESS_RESULTS.get(code, 'error')} (code {code})"


def read_relay(session: DlmsSession, meter: Meter) -> dict[str, Any]:
    """Output state (attr 2) and control state (attr 3) of the disconnect control; updates the meter."""
    obis = brand_object(meter.brand, "relay")
    output = session.get(obis, 70, 2)
    control = session.get(obis, 70, 3)
    state = CONTROL_STATES.get(control, RelayState.connected if output else RelayState.disconnected)
    meter.relay_state = state
    return {"output_state": bool(output), "control_state": control, "relay_state": state.value}


def relay(session: DlmsSession, meter: Meter, connect: bool) -> dict[str, Any]:
    """Remote reconnect (method 2) or disconnect (method 1), then read the relay back."""
    code = session.action(brand_object(meter.brand, "relay"), 70, 2 if connect else 1)
    result = {"action_result": code, **read_relay(session, meter)}
    db.session.commit()
    if code != 0:
        return {**result, "ok": False, "reason": f"The meter refused the {'reconnect' if connect else 'disconnect'}: "
                f"{_result_text(code)}; relay is {result['relay_state']}."}
    if connect and result["relay_state"] == RelayState.ready_for_reconnection.value:
        return {**result, "ok": True, "note": "ready for reconnection: the customer must press the button"}
    if result["output_state"] != connect:
        return {**result, "ok": False, "reason": f"The meter accepted the command but the relay reads back "
                f"{result['relay_state']}."}
    return {**result, "ok": True}




def read_credit(session: DlmsSession, meter: Meter) -> float | None:
    """The credit balance from the brand's credit object (class 112 attr 2, scaled by its point)."""
    obis = brand_object(meter.brand, "credit")
    try:
        raw = session.get(obis, 112, 2)
    except DlmsError:
        return None
    return _scaled(point_at(meter.brand, obis, 112, 2), raw)


def _token_status(session: DlmsSession, gateway: str) -> int:
    value = session.get(gateway, 115, 6)
    return int(value[0] if isinstance(value, list) else value)


def token(session: DlmsSession, meter: Meter, token: str, retry: bool = False) -> dict[str, Any]:
    """Enter a token through the gateway (class 115 method 1), read the status it reports and the credit."""
    gateway = brand_object(meter.brand, "token_gateway")
    encoded = encode_token(meter.brand, token)
    credit_before = read_credit(session, meter)
    # A retry after a broken link may follow an attempt that reached the meter: never enter a token twice.
    already = retry and session.get(gateway, 115, 2) == encoded
    code = 0 if already else session.action(gateway, 115, 1, encoded, "octet_string")
    status = _token_status(session, gateway)
    for _ in range(TOKEN_POLLS):
        if status == TOKEN_EXECUTED or status in TOKEN_FAILURES:
            break
        time.sleep(0.5)
        status = _token_status(session, gateway)
    credit = read_credit(session, meter)
    if credit is not None:
        meter.credit_balance = credit
    db.session.commit()
    result = {"action_result": code, "token_status": status, "token_status_text": TOKEN_STATUS.get(status, "unknown"),
              "credit_before": credit_before, "credit": credit, "entered_before": already}
    if status == TOKEN_EXECUTED:
        return {**result, "ok": True}
    if status in TOKEN_FAILURES:
        return {**result, "ok": False, "reason": f"The meter rejected the token: {TOKEN_STATUS[status]} "
                f"(status {status})."}
    return {**result, "ok": False, "reason": f"The meter did not confirm the token (status {status}: "
            f"{TOKEN_STATUS.get(status, 'unknown')}; method result {_result_text(code)})."}


def _read_back(session: DlmsSession, point: ObisPoint) -> Any:
    if point.class_id in (3, 4) and point.attribute == 2:
        return session.read_register(point.obis, point.class_id)[0]
    if point.class_id == 8 and point.attribute == 2:
        return session.read_clock().isoformat()
    return to_jsonable(_scaled(point, session.get(point.obis, point.class_id, point.attribute)))


def _same(point: ObisPoint, written: Any, read: Any) -> bool:
    if isinstance(written, dt.datetime):
        try:
            return abs((dt.datetime.fromisoformat(str(read)) - written).total_seconds()) < 5
        except ValueError:
            return False
    if isinstance(written, bytes):
        return to_jsonable(written) == read
    if isinstance(written, bool) or isinstance(read, bool):
        return bool(written) == bool(read)
    if isinstance(written, int) and isinstance(read, int | float):
        return abs(_scaled(point, written) - read) < 1e-6
    return written == read


def write_point(session: DlmsSession, meter: Meter, point: ObisPoint, value: str | None) -> dict[str, Any]:
    """Write one attribute (or invoke one method) and read the result back."""
    item: dict[str, Any] = {"key": point.key, "name": point.name, "obis": point.obis, "unit": point.unit,
                            "written": value}
    try:
        if point.access == "x":
            if point.class_id == 115:
                raw, datatype = encode_token(meter.brand, value or ""), "octet_string"
            elif value in (None, ""):
                raw, datatype = None, None
            else:
                raw, datatype = parse_value(point, value)
            code = session.action(point.obis, point.class_id, point.method or 1, raw, datatype)
            item["action_result"] = code
            item["ok"] = code == 0
            if code:
                item["error"] = f"method refused: {_result_text(code)}"
            if point.class_id == 70:
                item["read_back"] = read_relay(session, meter)
            return item
        raw, datatype = parse_value(point, value)
        if point.class_id == 8 and point.attribute == 2:
            session.set_clock(raw)
        else:
            session.set(point.obis, point.class_id, point.attribute, raw, datatype)
        if "r" in point.access:
            item["value"] = _read_back(session, point)
            item["read_at"] = dt.datetime.now(UTC).isoformat()
            item["ok"] = _same(point, raw, item["value"])
            if not item["ok"]:
                item["error"] = f"written, but the meter reads back {item['value']!r}"
        else:
            item["ok"] = True
    except DlmsError as exc:
        item.update(ok=False, error=str(exc))
    return item


def set_values(session: DlmsSession, meter: Meter, values: dict[str, str | None]) -> dict[str, Any]:
    """Write brand points in order, each read back; ok when every one reads back as written."""
    items = [write_point(session, meter, point_by_ref(meter.brand, key), value) for key, value in values.items()]
    db.session.commit()
    bad = [i for i in items if not i["ok"]]
    result: dict[str, Any] = {"values": items, "ok": not bad}
    if bad:
        result["reason"] = "; ".join(f"{i['name']}: {i['error']}" for i in bad)
    return result


def load_limit(session: DlmsSession, meter: Meter, threshold: str) -> dict[str, Any]:
    """Write the limiter threshold and read it back."""
    item = write_point(session, meter, limiter_point(meter.brand), threshold)
    return {"values": [item], "ok": item["ok"], **({} if item["ok"] else {"reason": item["error"]})}


def clock_sync(session: DlmsSession, meter: Meter) -> dict[str, Any]:
    """Set the meter clock to the HES time and read it back."""
    from app.services.collection import sync_clock

    before = sync_clock(session, meter, threshold_seconds=-1)
    sent = time.time()
    after = (session.read_clock() - dt.datetime.fromtimestamp(sent, UTC)).total_seconds()
    meter.clock_drift_seconds = round(after, 3)
    db.session.commit()
    ok = abs(after) < 5
    return {"drift_before_seconds": before["drift_seconds"], "drift_after_seconds": round(after, 3), "ok": ok,
            **({} if ok else {"reason": f"the clock still differs by {after:.1f} s after setting it"})}


def read(session: DlmsSession, meter: Meter, points: list[str], start: str | None = None,
         end: str | None = None) -> dict[str, Any]:
    """Read brand points (values with units and read times, or the meter's error per point)."""
    from app.services.meter_ops import read_points

    values = read_points(session, meter, points, start, end)
    bad = [v for v in values if v.get("error")]
    result: dict[str, Any] = {"values": values, "ok": not bad}
    if bad:
        result["reason"] = "; ".join(f"{v['name']}: {v['error']}" for v in bad)
    return result
