"""Per-meter communication traces for onboarding: switch on for N minutes, every frame kept (bounded ring per
meter) with time, direction and gurux's decoded XML, secrets masked; shown on the meter's page, downloadable."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app
from sqlalchemy import delete, insert, select

from app.comms import trace as comm_trace
from app.extensions import db
from app.models import Meter, TraceFrame
from app.services import ServiceError, audit

log = logging.getLogger(__name__)
UTC = dt.UTC
MASK = "********"
_CALLING_AUTH = re.compile(r'(<!--[^\n]*-->\s*\n\s*)?(<(?:CallingAuthentication|CalledAuthentication)[^>]*Value=")'
                           r'[0-9A-Fa-f ]*(")')


def ring_size() -> int:
    """How many frames are kept per meter (HES_TRACE_FRAMES, default 2000)."""
    return int(current_app.config.get("HES_TRACE_FRAMES", 2000))


def switch(meter: Meter, minutes: float) -> dt.datetime | None:
    """Trace the meter for ``minutes`` from now (0 switches tracing off); returns until when."""
    if not 0 <= minutes <= 24 * 60:
        raise ServiceError("Trace for 0 to 1440 minutes.", status=422,
                           errors=[{"field": "minutes", "reason": "0 to 1440", "value": str(minutes)}])
    meter.trace_until = dt.datetime.now(UTC) + dt.timedelta(minutes=minutes) if minutes else None
    audit.record("trace", "meter", meter.id, f"trace {f'on for {minutes:g} min' if minutes else 'off'} "
                 f"for {meter.number}")
    return meter.trace_until


def is_on(meter: Meter) -> bool:
    """True while the meter's trace window is open."""
    until = meter.trace_until
    if until is None:
        return False
    if until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    return until > dt.datetime.now(UTC)


@contextmanager
def tracing(meter: Meter) -> Iterator[None]:
    """Collect the frames of sessions opened inside this block when the meter is traced; store them after."""
    if not is_on(meter) or comm_trace.CURRENT.get() is not None:
        yield
        return
    current = comm_trace.Trace(meter.id, limit=ring_size())
    token = comm_trace.CURRENT.set(current)
    try:
        yield
    finally:
        comm_trace.CURRENT.reset(token)
        try:
            store(current)
        except Exception:  # a trace must never break the operation it watched
            log.exception("storing the trace of meter %s", meter.id)


def _secrets(params) -> list[bytes]:
    found = []
    for name in ("password", "block_cipher_key", "authentication_key"):
        value = bytes(getattr(params, name, b"") or b"")
        if len(value) >= 4:
            found.append(value)
    return found


def mask(text: str, secrets: list[bytes]) -> str:
    """Hide secrets in a hex dump or decoded XML: the authentication value of an AARQ, and any known secret
    wherever it appears (as hex in either case, or as text)."""
    text = _CALLING_AUTH.sub(lambda m: f'{m.group(2)}{MASK}{m.group(3)}', text)
    for secret in secrets:
        for form in {secret.hex(), secret.hex().upper(), " ".join(f"{b:02X}" for b in secret)}:
            text = text.replace(form, MASK)
        try:
            plain = secret.decode("ascii")
        except UnicodeDecodeError:
            plain = ""
        if plain.isprintable() and len(plain) >= 4:
            text = text.replace(plain, MASK)
    return text


def _translator(params):
    from gurux_dlms import GXDLMSTranslator
    from gurux_dlms.enums import Security, TranslatorOutputType

    translator = GXDLMSTranslator(TranslatorOutputType.SIMPLE_XML)
    translator.comments = True
    if params is not None and getattr(params, "block_cipher_key", b""):
        translator.security = Security.AUTHENTICATION_ENCRYPTION
        translator.blockCipherKey = bytes(params.block_cipher_key)
        translator.authenticationKey = bytes(params.authentication_key)
        translator.systemTitle = bytes(params.system_title)
    return translator


def decode(frame: bytes, params=None) -> str:
    """A frame as gurux's XML (wrapper or HDLC with its APDU), or why it does not decode."""
    from gurux_dlms import GXByteBuffer

    try:
        return _translator(params).messageToXml(GXByteBuffer(frame)).strip()
    except Exception as exc:  # noqa: BLE001  (a frame the translator does not understand is still kept)
        return f"<!-- not decoded: {exc} -->"


def store(current: comm_trace.Trace) -> int:
    """Decode, mask and append the collected frames; keep only the newest ``ring_size()`` of the meter."""
    if not current.frames:
        return 0
    secrets = _secrets(current.params)
    rows = [{"meter_id": current.meter_id, "at": dt.datetime.fromtimestamp(at, UTC), "direction": direction,
             "hex": mask(frame.hex(), secrets), "xml": mask(decode(frame, current.params), secrets)}
            for at, direction, frame in current.frames]
    with db.engine.begin() as conn:  # its own transaction: the operation's may roll back, the trace stays
        conn.execute(insert(TraceFrame), rows)
        cutoff = conn.execute(select(TraceFrame.id).where(TraceFrame.meter_id == current.meter_id)
                              .order_by(TraceFrame.id.desc()).offset(ring_size()).limit(1)).scalar()
        if cutoff is not None:
            conn.execute(delete(TraceFrame).where(TraceFrame.meter_id == current.meter_id, TraceFrame.id <= cutoff))
    return len(rows)


def frames(meter_id: int, limit: int = 500, after_id: int = 0) -> list[dict]:
    """The newest frames of a meter's trace, oldest first."""
    rows = db.session.execute(select(TraceFrame).where(TraceFrame.meter_id == meter_id, TraceFrame.id > after_id)
                              .order_by(TraceFrame.id.desc()).limit(limit)).scalars().all()
    return [{"id": r.id, "at": r.at.isoformat(), "direction": r.direction, "hex": r.hex, "xml": r.xml}
            for r in reversed(rows)]


def as_text(meter: Meter) -> str:
    """The whole kept trace as a text file to send a vendor."""
    lines = [f"# HES communication trace of meter {meter.number} (brand {meter.brand.name}); secrets masked",
             f"# exported {dt.datetime.now(UTC).isoformat()}", ""]
    for f in frames(meter.id, limit=ring_size()):
        arrow = "HES -> meter" if f["direction"] == "tx" else "meter -> HES"
        lines += [f"{f['at']}  {arrow}", f"  {f['hex']}", f["xml"] or "", ""]
    return "\n".join(lines)


def clear(meter_id: int) -> None:
    """Forget a meter's kept frames."""
    db.session.execute(delete(TraceFrame).where(TraceFrame.meter_id == meter_id))
