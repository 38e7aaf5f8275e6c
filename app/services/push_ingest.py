"""Where a push becomes rows: identify the sending meter, open and decode the push with its keys,
apply its brand's push policy, and hand events and register values to storage (source = push).

A push is identified by, in order: the dial-in socket it came on; the system title of a ciphered
push; an identifying object it carries (logical device name or serial, as its brand maps it, or a
meter number as its first value); the source address of a meter whose SIM has a static IP. A push
from a meter nobody registered is listed for registration with its decoded content; one that cannot
be decoded or is refused keeps its bytes (``PushFailure``) with the reason.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import delete, func, select
from sqlalchemy.exc import SQLAlchemyError

from app.comms.cosem import normalise_obis, to_jsonable, to_python
from app.comms.framing import FrameError
from app.comms.push import (
    PushError,
    PushKeys,
    PushNotification,
    ReceivedPush,
    Sender,
    decode_data_notification,
    extract_apdu,
    printable,
    sender_of,
)
from app.comms.session import GMAC_AUTH
from app.extensions import db
from app.models import (
    CommMode,
    Meter,
    MeterBrand,
    PushFailure,
    PushPolicy,
    Reading,
    Sim,
    Source,
    UnregisteredConnection,
)
from app.models.types import UTC
from app.services.events import RawEvent, store_events
from app.services.ingest import Value, channel_id, store_readings

log = logging.getLogger(__name__)
# Objects that carry "the last event code" of a log: 0.0.96.11.E.255, E = log number.
EVENT_CODE_GROUP = (0, 0, 96, 11)
IDENTITY_OBIS = ("0.0.42.0.0.255", "0.0.96.1.0.255")
FAILURES_KEPT = 10_000


@dataclass(frozen=True)
class PushSpec:
    """What a brand's pushes carry: the object list, register scalers, and event log names."""

    objects: list[tuple[int, str, int]]
    scalers: dict[str, int]
    logs: list[str]

    @property
    def identity_index(self) -> int | None:
        """Position of the logical device name / serial number in the push, if the brand maps one."""
        return next((i for i, (class_id, obis, attr) in enumerate(self.objects)
                     if class_id == 1 and attr == 2 and normalise_obis(obis) in IDENTITY_OBIS), None)


_specs: dict[tuple[int, dt.datetime], PushSpec] = {}


def push_spec(brand: MeterBrand) -> PushSpec:
    """The brand's push description, cached until the brand changes."""
    key = (brand.id, brand.updated_at)
    spec = _specs.get(key)
    if spec is None:
        objects = [(int(c), str(o), int(a)) for c, o, a in (brand.objects or {}).get("push_objects") or []]
        scalers = {p.obis: p.scaler for p in brand.points if p.scaler is not None}
        logs = list(((brand.objects or {}).get("event_logs") or {}).keys())
        spec = _specs[key] = PushSpec(objects, scalers, logs)
    return spec


def requires_authenticated_pushes(brand: MeterBrand) -> bool:
    """The brand's push policy: 'auto' means authenticated only when the brand has HLS (GMAC) keys."""
    policy = brand.push_policy or PushPolicy.auto
    if policy != PushPolicy.auto:
        return policy == PushPolicy.authenticated
    secret = brand.default_secret
    has_keys = bool(secret and secret.block_cipher_key_enc and secret.authentication_key_enc)
    return has_keys or brand.auth_level.value in GMAC_AUTH


def push_keys(meter: Meter) -> PushKeys | None:
    """The meter's block cipher and authentication keys (its own, else its brand's)."""
    from app.services.secrets import decrypt

    secret = meter.secret if meter.secret is not None and meter.secret.block_cipher_key_enc else \
        meter.brand.default_secret
    if secret is None or not secret.block_cipher_key_enc or not secret.authentication_key_enc:
        return None
    return PushKeys(decrypt(secret.block_cipher_key_enc), decrypt(secret.authentication_key_enc))


class Refused(Exception):
    """A push that decoded but is not stored (category and reason say why)."""

    def __init__(self, category: str, reason: str, meter: Meter | None = None, identity: str | None = None):
        super().__init__(reason)
        self.category, self.reason, self.meter, self.identity = category, reason, meter, identity


@dataclass
class Opened:
    """A push from a known meter, decoded with its keys."""

    meter: Meter
    push: PushNotification


# ----- identification ---------------------------------------------------------------------------

def _by_number(number: str | None) -> Meter | None:
    if not number:
        return None
    return db.session.execute(select(Meter).where(Meter.number == number)).scalar()


def _claimed_number(values: list, spec: PushSpec | None) -> str | None:
    """The meter number a push says it comes from (its brand's identifying object, else its first value)."""
    if spec is not None and spec.identity_index is not None and len(values) == len(spec.objects):
        return printable(values[spec.identity_index])
    return printable(values[0]) if values else None


def _by_source_address(host: str) -> Meter | None:
    """A dial-out meter whose SIM has this static address (only when exactly one has it)."""
    rows = db.session.execute(select(Meter).join(Sim, Meter.sim_id == Sim.id).where(
        Sim.ip_address == host, Meter.comm_mode == CommMode.dial_out).limit(2)).scalars().all()
    return rows[0] if len(rows) == 1 else None


def _identify_plain(push: ReceivedPush, values: list) -> tuple[Meter | None, str, str | None]:
    """(meter, how, claimed number) of a plain push that did not come on a known dial-in socket."""
    brands = db.session.execute(select(MeterBrand)).scalars().all()
    for brand in brands:
        spec = push_spec(brand)
        if spec.identity_index is None or len(values) != len(spec.objects):
            continue
        number = printable(values[spec.identity_index])
        meter = _by_number(number)
        if meter is not None:
            return meter, "push:identifying_object", number
    number = _claimed_number(values, None)
    meter = _by_number(number)
    if meter is not None:
        return meter, "push:identifying_object", number
    meter = _by_source_address(push.remote_host)
    if meter is not None and number is None:
        return meter, "push:source_address", number
    # A push that names a meter nobody has is not another meter's data because it came from that meter's
    # address (behind NAT or on a shared APN many devices may): it is listed as an unknown sender.
    return None, "", number


def _open_ciphered(push: ReceivedPush, apdu: bytes, sender: Sender, meter: Meter | None) -> Opened:
    title = sender.system_title.hex()
    titled = db.session.execute(select(Meter).where(Meter.system_title == title)).scalar()
    if meter is not None and titled is not None and titled.id != meter.id:
        raise Refused("refused", f"system title {title} belongs to meter {titled.number}, but the push came on "
                                 f"the connection of meter {meter.number}", meter)
    meter = meter or titled
    if meter is None:
        _list_unknown_ciphered(push, apdu, sender)
    keys = push_keys(meter)
    if keys is None:
        raise Refused("undecodable", f"ciphered push from meter {meter.number}, which has no block cipher and "
                                     "authentication keys", meter)
    spec = push_spec(meter.brand)
    try:
        opened = decode_data_notification(apdu, spec.objects or None, keys)
    except PushError as exc:
        raise Refused("undecodable", str(exc), meter) from exc
    counter = sender.invocation_counter or 0
    if counter <= (meter.push_invocation_counter or 0):
        raise Refused("refused", f"replayed push: invocation counter {counter}, last accepted "
                                 f"{meter.push_invocation_counter}", meter)
    meter.push_invocation_counter = counter
    if meter.system_title is None:
        meter.system_title = title  # it opened with this meter's keys on its own connection
    return Opened(meter, opened)


def _list_unknown_ciphered(push: ReceivedPush, apdu: bytes, sender: Sender) -> None:
    """A ciphered push from a system title no meter has: list it, decoded when a brand's keys open it."""
    brands = db.session.execute(select(MeterBrand).where(MeterBrand.default_secret_id.is_not(None))).scalars()
    for brand in brands:
        secret = brand.default_secret
        if not (secret.block_cipher_key_enc and secret.authentication_key_enc):
            continue
        from app.services.secrets import decrypt

        keys = PushKeys(decrypt(secret.block_cipher_key_enc), decrypt(secret.authentication_key_enc))
        try:
            opened = decode_data_notification(apdu, None, keys)
        except PushError:
            continue
        number = _claimed_number(opened.values, push_spec(brand))
        identity = number or sender.system_title.hex()
        _list_unknown(push, identity, f"push:system_title ({brand.name} keys)", opened, sender.system_title.hex())
        raise Refused("unknown_sender", f"push from unregistered meter {identity}", identity=identity)
    identity = sender.system_title.hex()
    _list_unknown(push, identity, "push:system_title", None, identity)
    raise Refused("unknown_sender", f"ciphered push from unknown system title {identity}", identity=identity)


def _list_unknown(push: ReceivedPush, identity: str, how: str, opened: PushNotification | None,
                  system_title: str | None) -> None:
    from app.realtime.emit import emit_event
    from app.services.comms_node import _unregistered_row

    now = dt.datetime.now(UTC)
    row = _unregistered_row(identity, now)
    if row.id is None or not row.connected:
        row.kind, row.connected = "push", False  # a meter that only pushes holds no connection
    row.remote_addr, row.last_seen, row.how_identified = push.remote, now, how
    row.node_id = current_app.config.get("HES_NODE_ID")
    row.first_frame_hex = row.first_frame_hex or push.frame[:128].hex()
    row.pushes = (row.pushes or 0) + 1
    row.system_title = system_title or row.system_title
    row.last_push = json.dumps(_content(opened) if opened is not None else {"ciphered": True,
                                                                          "system_title": system_title})
    emit_event("unregistered_connection", {"identity": identity, "remote": push.remote, "seen_at": now.isoformat(),
                                           "kind": "push"})


def _content(opened: PushNotification) -> dict:
    """A decoded push as JSON for the unregistered list."""
    return {"timestamp": opened.timestamp.isoformat() if opened.timestamp else None,
            "values": to_jsonable(opened.values), "authenticated": opened.authenticated,
            "system_title": opened.system_title.hex() if opened.system_title else None}


def _open_plain(push: ReceivedPush, apdu: bytes, meter: Meter | None) -> Opened:
    try:
        plain = decode_data_notification(apdu)
    except PushError as exc:
        raise Refused("undecodable", str(exc), meter) from exc
    if meter is None:
        meter, _how, number = _identify_plain(push, plain.values)
        if meter is None:
            identity = number or f"push-from-{push.remote_host}"
            _list_unknown(push, identity, "push:identifying_object" if number else "push:source_address",
                          plain, None)
            raise Refused("unknown_sender", f"plain push from unregistered meter {identity}", identity=identity)
    else:
        claimed = _claimed_number(plain.values, push_spec(meter.brand))
        other = _by_number(claimed) if claimed and claimed != meter.number else None
        if other is not None:
            raise Refused("refused", f"push names meter {claimed} but came on the connection of meter "
                                     f"{meter.number}", meter)
    if requires_authenticated_pushes(meter.brand):
        raise Refused("refused", f"plain push refused: brand {meter.brand.name} accepts authenticated pushes only",
                      meter)
    spec = push_spec(meter.brand)
    try:
        return Opened(meter, decode_data_notification(apdu, spec.objects or None))
    except PushError as exc:
        raise Refused("undecodable", str(exc), meter) from exc


def open_push(push: ReceivedPush) -> Opened:
    """Identify, decipher and decode one push; raises Refused with a category and reason."""
    meter = db.session.get(Meter, push.meter_id) if push.meter_id is not None else None
    try:
        apdu = extract_apdu(push.frame)
        sender = sender_of(apdu)
    except (FrameError, PushError) as exc:
        raise Refused("undecodable", str(exc), meter) from exc
    if sender.ciphered:
        return _open_ciphered(push, apdu, sender, meter)
    return _open_plain(push, apdu, meter)


# ----- values --------------------------------------------------------------------------------------

def push_values(meter: Meter, push: PushNotification) -> tuple[list[RawEvent], list[Value]]:
    """The events and register values a decoded push carries."""
    from app.services.meter_access import object_cache_for

    spec = push_spec(meter.brand)
    when = push.timestamp
    for obj in push.objects:
        if obj["class_id"] == 8 and isinstance(obj["value"], dt.datetime):
            when = obj["value"]
    when = (when or dt.datetime.now(UTC)).astimezone(UTC)
    events, values = [], []
    for obj in push.objects:
        obis, value = normalise_obis(obj["obis"]), to_python(obj["value"])
        parts = tuple(int(x) for x in obis.split("."))
        if parts[:4] == EVENT_CODE_GROUP and isinstance(value, int):
            if value:
                index = parts[4]
                events.append(RawEvent(when, value, spec.logs[index] if index < len(spec.logs) else f"log{index}",
                                       source="push"))
        elif obj["class_id"] in (3, 4) and isinstance(value, int | float) and not isinstance(value, bool):
            # The meter's own scaler as its sessions read it (the one profiles are scaled with), else the brand's.
            learnt = object_cache_for(meter.id).scalers.get((obis, int(obj["class_id"])))
            scaler = learnt[0] if learnt is not None else spec.scalers.get(obis, 0)
            values.append(Value(meter.id, obis, when, float(value) * 10 ** scaler,
                                source=Source.PUSH, authenticated=push.authenticated))
    if not push.objects:
        log.info("push from %s without an object list: %r", meter.number, push.values)
    return events, values


def without_overrides(values: list[Value]) -> list[Value]:
    """The values to store, less those of plain pushes whose reading is stored already: an unauthenticated
    push (anyone on the network could have sent it) never overrides a value read from the meter. It may
    fill an instant nothing else did; a later profile read then revises it."""
    plain = [v for v in values if not v.authenticated]
    if not plain:
        return values
    keys = {(v.meter_id, channel_id(v.obis), v.ts.astimezone(UTC)): v for v in plain}
    stored = db.session.execute(select(Reading.meter_id, Reading.channel_id, Reading.ts).where(
        Reading.meter_id.in_({m for m, _, _ in keys}), Reading.ts.in_({ts for _, _, ts in keys}))).all()
    taken = {id(keys[key]) for key in ((m, c, ts.astimezone(UTC)) for m, c, ts in stored) if key in keys}
    if taken:
        log.warning("%d value(s) of plain pushes not stored: a reading exists at their instant", len(taken))
    return [v for v in values if id(v) not in taken]


def _keep_failure(push: ReceivedPush, refused: Refused, node_id: str | None) -> None:
    db.session.add(PushFailure(received_at=dt.datetime.fromtimestamp(push.received_at, UTC), node_id=node_id,
                               remote_addr=push.remote, port=push.port,
                               meter_id=refused.meter.id if refused.meter is not None else push.meter_id,
                               identity=refused.identity or (refused.meter.number if refused.meter else None),
                               category=refused.category, reason=refused.reason[:2000], frame=push.frame))


def _prune_failures() -> None:
    newest = db.session.execute(select(func.max(PushFailure.id))).scalar() or 0
    if newest > FAILURES_KEPT and newest % 100 == 0:
        db.session.execute(delete(PushFailure).where(PushFailure.id <= newest - FAILURES_KEPT))


def handle_pushes(batch: list[ReceivedPush], node_id: str | None = None) -> dict:
    """Store a batch of pushes (from many meters) in one transaction, then emit their alerts.

    Returns counts: stored, undecodable, unknown_sender, refused. A push that is not stored never
    stops the rest of the batch."""
    from app.services.alerts import emit_raised

    counts: Counter = Counter(stored=0, undecodable=0, unknown_sender=0, refused=0)
    values, raised, events_stored = [], [], 0
    per_meter: dict[int, list[RawEvent]] = {}
    for push in batch:
        refused = None
        try:
            opened = open_push(push)
        except Refused as exc:
            refused = exc
        except SQLAlchemyError:
            raise  # the database is busy or gone: the node retries the whole batch
        except Exception as exc:  # a decoder bug must cost one push, not the batch
            log.exception("push from %s could not be decoded", push.remote)
            refused = Refused("undecodable", f"decoder error: {exc}")
        if refused is not None:
            counts[refused.category] += 1
            log.warning("push from %s not stored (%s): %s", push.remote, refused.category, refused.reason)
            if refused.category != "unknown_sender":
                _keep_failure(push, refused, node_id)
            continue
        events, meter_values = push_values(opened.meter, opened.push)
        values += meter_values
        per_meter.setdefault(opened.meter.id, []).extend(events)
        counts["stored"] += 1
    if values:
        # Register snapshots between profile intervals: no bucket changes (see store_readings).
        store_readings(without_overrides(values), rollups=False, commit=False, raised=raised)
    for meter_id, events in per_meter.items():
        if events:
            events_stored += len(store_events(db.session.get(Meter, meter_id), events, raised=raised))
    if counts["undecodable"] or counts["refused"]:
        _prune_failures()
    db.session.commit()
    emit_raised(raised)
    return dict(counts, pushes=len(batch), events=events_stored, values=len(values))


def handle_push(meter_id: int | None, frame: bytes, remote: str = "127.0.0.1:0") -> dict:
    """Decode one push frame (from a known dial-in meter, or identified from its content) and store it."""
    return handle_pushes([ReceivedPush(frame, remote, meter_id)])


def failure_summary(limit: int = 20) -> list[dict]:
    """The newest pushes that were not stored, for the nodes page."""
    rows = db.session.execute(select(PushFailure).order_by(PushFailure.id.desc()).limit(limit)).scalars()
    return [{"id": r.id, "received_at": r.received_at.isoformat(), "remote": r.remote_addr, "category": r.category,
             "identity": r.identity, "reason": r.reason, "size": len(r.frame)} for r in rows]


def unregistered_content(row: UnregisteredConnection) -> dict | None:
    """The decoded content of an unregistered meter's last push."""
    return json.loads(row.last_push) if row.last_push else None
