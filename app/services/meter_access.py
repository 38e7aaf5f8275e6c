"""Talking to one meter: open an associated DLMS session wherever its socket is, and run an
operation on the node that owns it (dial-in sockets live in exactly one comms node)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from app.comms.connection import ConnectionGone
from app.comms.dialer import DialError, dial
from app.comms.framing import ConnectionClosed, FrameError, FrameTimeout
from app.comms.node import get_node
from app.comms.session import AuthenticationError, DlmsError, DlmsSession, ObjectCache
from app.extensions import db
from app.models import CommMode, Meter, MeterBrand
from app.services import NotFound, ServiceError
from app.services.meter_view import MeterView, load_meter_view
from app.services.secrets import advance_invocation_counter, session_params

log = logging.getLogger(__name__)

OBJECT_CACHE_SECONDS = 6 * 3600
_object_caches: dict[int, tuple[float, ObjectCache]] = {}


def object_cache_for(meter_id: int) -> ObjectCache:
    """Scalers and capture objects learnt from a meter, kept a few hours (cleared on firmware change)."""
    now = time.monotonic()
    entry = _object_caches.get(meter_id)
    if entry is None or now - entry[0] > OBJECT_CACHE_SECONDS:
        if len(_object_caches) > 200_000:
            _object_caches.clear()
        entry = (now, ObjectCache())
        _object_caches[meter_id] = entry
    return entry[1]


def forget_meter_objects(meter_id: int) -> None:
    """Drop what was learnt from a meter (after a firmware upgrade or a configuration change)."""
    _object_caches.pop(meter_id, None)


class MeterUnreachable(ServiceError):
    """The meter is offline, did not answer, or refused the association."""

    status = 503


@contextmanager
def open_session(meter: Meter | MeterView, *, response_timeout: float | None = None) -> Iterator[DlmsSession]:
    """An associated session with the meter (dial-in socket on this node, or dial-out)."""
    timeout = response_timeout or float(current_app.config.get("HES_RESPONSE_TIMEOUT", 30))
    if isinstance(meter, MeterView):
        params, secret_id = meter.session_params(timeout)
    else:
        params, secret_id = session_params(meter, response_timeout=timeout)
    app = current_app._get_current_object()

    def persist_counter(value: int) -> None:
        if secret_id is not None:
            with app.app_context():
                advance_invocation_counter(secret_id, value)

    from app.services.trace import tracing

    try:
        with tracing(meter):
            yield from _open(meter, params, timeout, persist_counter)
    except AuthenticationError as exc:
        raise MeterUnreachable(f"Meter {meter.number} refused the association: {exc}") from exc
    except (DialError, FrameTimeout, ConnectionGone, ConnectionClosed, FrameError, TimeoutError, OSError) as exc:
        raise MeterUnreachable(f"Meter {meter.number}: {exc}") from exc


def _open(meter: Meter | MeterView, params, timeout: float, persist_counter) -> Iterator[DlmsSession]:
    """The session itself (dial-in socket on this node, or dial-out), released afterwards."""
    if meter.comm_mode == CommMode.dial_in:
        node = get_node()
        conn = node.connection(meter.id) if node is not None else None
        if conn is None:
            raise MeterUnreachable(f"Meter {meter.number} is offline (no dial-in connection on this node).")
        with conn.session(params, persist_counter, lock_timeout=timeout * 4,
                          object_cache=object_cache_for(meter.id)) as session:
            yield session
    else:
        if meter.sim is None or not meter.sim.ip_address or not meter.sim.port:
            raise MeterUnreachable(f"Meter {meter.number} dials out but has no SIM with an IP and port.")
        stream = dial(meter.sim.ip_address, meter.sim.port, params.interface,
                      connect_timeout=min(10.0, timeout), response_timeout=timeout,
                      attempts=int(current_app.config.get("HES_DIAL_ATTEMPTS", 3)))
        try:
            session = DlmsSession(stream, params, on_invocation_counter=persist_counter,
                                  object_cache=object_cache_for(meter.id))
            session.associate()
            try:
                yield session
            finally:
                try:
                    session.release()
                except Exception as exc:  # meters that drop instead of releasing are common
                    log.debug("release %s: %s", meter.number, exc)
        finally:
            stream.close()


def hot_path_loads() -> tuple:
    """What every session reads of its meter (settings, secret, dial-out SIM, the brand's points and default
    secret), loaded with the meter in one statement (plus one for the points) instead of a lazy load each."""
    return (joinedload(Meter.secret), joinedload(Meter.sim),
            joinedload(Meter.brand).joinedload(MeterBrand.default_secret),
            joinedload(Meter.brand).selectinload(MeterBrand.points))


def execute_local(meter_id: int, name: str, *, priority: int | None = None, view: MeterView | None = None,
                  **kwargs) -> Any:
    """Run an operation of the table (``app.services.operations``) against a meter from this process, in its
    turn at the meter's gate: one association per meter at a time. Operations marked ``view`` get the meter as
    a ``MeterView`` (``view`` when the caller loaded it already), the others the ORM meter."""
    from app.services.meter_gate import MeterBusy, meter_turn
    from app.services.operations import operation

    op = operation(name)
    if op.view:
        meter = view if view is not None else load_meter_view(meter_id)
    else:
        meter = db.session.get(Meter, meter_id, options=hot_path_loads())
        if meter is None:
            raise NotFound(f"Meter {meter_id} not found.")
    func = op.load()
    wait = float(current_app.config.get("HES_METER_WAIT_SECONDS", 120))
    number, dial_out = meter.number, meter.comm_mode == CommMode.dial_out
    try:
        with meter_turn(meter_id, op.priority if priority is None else priority, wait) as turn:
            if turn.lent is not None:
                # Inside another operation's association (a firmware transfer lends it between blocks).
                result = func(turn.lent, meter, **kwargs)
            else:
                with open_session(meter) as session:
                    result = func(session, meter, **kwargs)
                    from app.services.identity import learn_system_title

                    learn_system_title(meter, session.server_system_title)
    except DlmsError as exc:
        raise ServiceError(f"Meter {number} answered: {exc}", status=502) from exc
    except MeterBusy:
        raise
    except MeterUnreachable as exc:
        if dial_out:
            from app.services.health import session_failed

            session_failed(meter_id, exc.message)
        raise
    if dial_out:
        from app.services.health import session_succeeded

        session_succeeded(meter)
    return result


NODE_STALE_SECONDS = 15


def _node_alive(node_id: str) -> bool:
    from app.models import CommsNode
    from app.models.types import utcnow

    heartbeat = db.session.execute(select(CommsNode.heartbeat_at).where(CommsNode.node_id == node_id)).scalar()
    return heartbeat is not None and (utcnow() - heartbeat).total_seconds() <= NODE_STALE_SECONDS


def owner_is_alive(meter_id: int, node_id: str) -> bool:
    """True while the meter is still held by ``node_id`` (a dial-in socket, or a dial-out meter's gate) and that
    node keeps reporting."""
    owner, mode = db.session.execute(select(Meter.node_id, Meter.comm_mode).where(Meter.id == meter_id)).one()
    db.session.commit()  # end the read so the next poll sees fresh rows
    return (mode == CommMode.dial_out or owner == node_id) and _node_alive(node_id)


def _require_live_node(node_id: str, number: str) -> None:
    """Fail fast when the node holding a meter's socket has stopped reporting (it died)."""
    if not _node_alive(node_id):
        raise MeterUnreachable(f"Meter {number} is held by comms node {node_id}, which is not running; "
                               "it will be reachable again when the meter reconnects.")


def run_on_meter(meter_id: int, name: str, *, timeout: float | None = None, priority: int | None = None,
                 view: MeterView | None = None, **kwargs) -> Any:
    """Run an operation where the meter's socket is: here, or on its owning node via its queue. A dial-out
    meter held by another node (multi-node mode) gets an urgent operation routed to that node, where it
    borrows the holder's association instead of waiting for the whole transfer."""
    from app.services.meter_gate import URGENT, holder_node
    from app.services.operations import operation

    op = operation(name)
    if op.view:
        meter = view = view if view is not None else load_meter_view(meter_id)
    else:
        meter = db.session.get(Meter, meter_id, options=hot_path_loads())
        if meter is None:
            raise NotFound(f"Meter {meter_id} not found.")
    node = get_node()
    here = node.node_id if node is not None else None
    owner = meter.node_id if meter.comm_mode == CommMode.dial_in else None
    effective = op.priority if priority is None else priority
    if owner is None and effective >= URGENT and (holder := holder_node(meter_id)) not in (None, here) \
            and _node_alive(holder):
        owner = holder
    if owner is None or owner == here:
        return execute_local(meter_id, name, priority=priority, view=view, **kwargs)
    _require_live_node(owner, meter.number)
    from app.tasks.routing import execute_on_node

    return execute_on_node(owner, meter_id, name, kwargs, timeout=timeout, priority=priority)
