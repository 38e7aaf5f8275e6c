"""A meter as the read path needs it, without the ORM: one Core statement a session, the rest kept in process.

Per session the HES reads one row: the meter's state (online, last seen, failures, trace window, owner node),
its DLMS settings and its brand's, its SIM's address, and the secret in force (its own, else the brand's default)
as stored — encrypted, with the invocation counter. What costs time is kept between sessions:

- the brand's points, per brand, until the brand's change stamp (``meter_brand.updated_at``) moves; editing,
  adding or removing a point moves it (``install_brand_stamps``), so does any change of the brand itself;
- the session parameters with the decrypted secrets, per meter, until any input changes: the meter's or
  brand's settings, which secret is in force, or the secret's stored ciphertext (every write of a secret makes
  a new Fernet token, so a changed password or key can never meet a stale cache entry). The invocation counter
  is never cached: it comes from the row of this session.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, event, func, inspect, select
from sqlalchemy.orm import Session

from app.comms.session import GMAC_AUTH, SessionParams
from app.extensions import db
from app.models import CommMode, Meter, MeterBrand, MeterSecret, ObisPoint, Sim
from app.models.fleet import PointAccess
from app.models.types import utcnow
from app.services import NotFound, ServiceError

CACHE_LIMIT = 200_000


@dataclass(frozen=True, slots=True)
class PointView(PointAccess):
    """A brand point as plain data (the attributes of ``ObisPoint`` the read path uses)."""

    key: str
    name: str
    obis: str
    class_id: int
    attribute: int
    method: int | None
    unit: str | None
    scaler: int | None
    group: str
    access: str
    datatype: str | None


@dataclass(frozen=True, slots=True)
class BrandView:
    """A brand's name and points as of its change stamp."""

    id: int
    name: str
    stamp: dt.datetime | None
    points: tuple[PointView, ...]


@dataclass(frozen=True, slots=True)
class SimView:
    """Where a dial-out meter is reached."""

    ip_address: str | None
    port: int | None


@dataclass(frozen=True, slots=True)
class MeterView:
    """One meter for one session: state as read now, brand and parameters from the process caches."""

    id: int
    number: str
    comm_mode: CommMode
    node_id: str | None
    online: bool
    last_seen: dt.datetime | None
    comm_failures: int
    trace_until: dt.datetime | None
    system_title: str | None
    brand: BrandView
    sim: SimView | None
    effective: dict[str, Any]
    secret_id: int | None
    _secret_key: tuple
    _invocation_counter: int

    def session_params(self, response_timeout: float) -> tuple[SessionParams, int | None]:
        """DLMS parameters (decrypted secrets from the cache when nothing changed) and the secret's id."""
        key = (*self._secret_key, tuple(self.effective.values()), response_timeout)
        cached = _params.get(self.id)
        if cached is None or cached[0] != key:
            if len(_params) > CACHE_LIMIT:
                _params.clear()
            cached = (key, self._build_params(response_timeout))
            _params[self.id] = cached
        params = cached[1]
        if self.effective["auth"] in GMAC_AUTH and params.invocation_counter != self._invocation_counter:
            params = dataclasses.replace(params, invocation_counter=self._invocation_counter)
        return params, self.secret_id

    def _build_params(self, response_timeout: float) -> SessionParams:
        from app.services.secrets import decrypt

        settings = self.effective
        kwargs: dict[str, Any] = dict(interface=settings["interface"], client_address=settings["client_address"],
                                      server_address=settings["server_address"], auth=settings["auth"],
                                      response_timeout=response_timeout)
        if settings["interface"] == "hdlc":
            kwargs["logical_address"] = settings["server_address"]
        if self.secret_id is not None:
            _, password_enc, block_enc, auth_enc, system_title = self._secret_key
            # LLS password, or the HLS secret of mechanisms 3, 4 and 6 (never sent: only hashes of challenges are).
            kwargs["password"] = decrypt(password_enc)
            if settings["auth"] in GMAC_AUTH:
                kwargs.update(block_cipher_key=decrypt(block_enc), authentication_key=decrypt(auth_enc),
                              invocation_counter=self._invocation_counter)
            if system_title:
                kwargs["system_title"] = bytes.fromhex(system_title)
        try:
            return SessionParams(**kwargs)
        except ValueError as exc:
            raise ServiceError(f"Meter {self.number}: {exc} (set its credentials first)", status=409) from exc


_brands: dict[int, BrandView] = {}
_params: dict[int, tuple[tuple, SessionParams]] = {}

_m, _b, _s, _k = Meter.__table__, MeterBrand.__table__, Sim.__table__, MeterSecret.__table__
_ROW = (
    select(_m.c.id, _m.c.number, _m.c.comm_mode, _m.c.node_id, _m.c.online, _m.c.last_seen, _m.c.comm_failures,
           _m.c.trace_until, _m.c.system_title, _m.c.interface, _m.c.client_address, _m.c.server_address,
           _m.c.auth_level,
           _b.c.id.label("brand_id"), _b.c.name.label("brand_name"), _b.c.updated_at.label("brand_stamp"),
           _b.c.interface.label("brand_interface"), _b.c.client_address.label("brand_client_address"),
           _b.c.server_address.label("brand_server_address"), _b.c.auth_level.label("brand_auth_level"),
           _s.c.id.label("sim_id"), _s.c.ip_address, _s.c.port,
           _k.c.id.label("secret_id"), _k.c.password_enc, _k.c.block_cipher_key_enc, _k.c.authentication_key_enc,
           _k.c.system_title.label("secret_system_title"), _k.c.invocation_counter)
    .select_from(_m.join(_b, _b.c.id == _m.c.brand_id)
                 .outerjoin(_s, _s.c.id == _m.c.sim_id)
                 .outerjoin(_k, _k.c.id == func.coalesce(_m.c.secret_id, _b.c.default_secret_id)))
    .where(_m.c.id == bindparam("meter_id"))
)
_POINTS = (select(ObisPoint.key, ObisPoint.name, ObisPoint.obis, ObisPoint.class_id, ObisPoint.attribute,
                  ObisPoint.method, ObisPoint.unit, ObisPoint.scaler, ObisPoint.group, ObisPoint.access,
                  ObisPoint.datatype)
           .where(ObisPoint.brand_id == bindparam("brand_id")).order_by(ObisPoint.position, ObisPoint.id))


def _brand(brand_id: int, name: str, stamp: dt.datetime | None) -> BrandView:
    brand = _brands.get(brand_id)
    if brand is None or brand.stamp != stamp or brand.name != name:
        points = tuple(PointView(*row) for row in db.session.execute(_POINTS, {"brand_id": brand_id}))
        brand = _brands[brand_id] = BrandView(brand_id, name, stamp, points)
    return brand


def load_meter_view(meter_id: int, scope=None) -> MeterView:
    """The meter as of now (one statement; a second only when its brand changed since the last time).
    ``scope``: a function narrowing a SELECT on ``Meter`` to what the user may see (an API's base filters),
    applied to the same statement: a meter outside it is not found."""
    row = db.session.execute(_ROW if scope is None else scope(_ROW), {"meter_id": meter_id}).one_or_none()
    if row is None:
        raise NotFound(f"Meter {meter_id} not found.")
    effective = {
        "interface": (row.interface or row.brand_interface).value,
        "client_address": row.client_address if row.client_address is not None else row.brand_client_address,
        "server_address": row.server_address if row.server_address is not None else row.brand_server_address,
        "auth": (row.auth_level or row.brand_auth_level).value,
    }
    return MeterView(
        id=row.id, number=row.number, comm_mode=row.comm_mode, node_id=row.node_id, online=row.online,
        last_seen=row.last_seen, comm_failures=row.comm_failures or 0, trace_until=row.trace_until,
        system_title=row.system_title, brand=_brand(row.brand_id, row.brand_name, row.brand_stamp),
        sim=SimView(row.ip_address, row.port) if row.sim_id is not None else None, effective=effective,
        secret_id=row.secret_id,
        _secret_key=(row.secret_id, row.password_enc, row.block_cipher_key_enc, row.authentication_key_enc,
                     row.secret_system_title),
        _invocation_counter=row.invocation_counter or 0)


def forget_cached(meter_id: int | None = None) -> None:
    """Drop the cached parameters of one meter (or of all meters and brands)."""
    if meter_id is None:
        _params.clear()
        _brands.clear()
    else:
        _params.pop(meter_id, None)


def cache_sizes() -> dict[str, int]:
    """Entries in the read path's caches (soak benches print them to tell a cache from a leak)."""
    return {"meter_params": len(_params), "brands": len(_brands)}


def _stamp_brands(session: Session, flush_context, instances) -> None:
    """A brand's change stamp moves with its points: a point added, edited or removed (directly, or through the
    brand's collection) updates ``meter_brand.updated_at`` in the same flush."""
    brands: dict[int, MeterBrand] = {}
    for obj in (*session.new, *session.dirty, *session.deleted):
        brand = None
        if isinstance(obj, ObisPoint):
            brand = obj.brand if obj.brand is not None else (
                session.get(MeterBrand, obj.brand_id) if obj.brand_id is not None else None)
        elif isinstance(obj, MeterBrand) and obj not in session.new and \
                inspect(obj).attrs.points.history.has_changes():
            brand = obj
        if brand is not None and brand not in session.deleted:
            brands[id(brand)] = brand
    now = utcnow()
    for brand in brands.values():
        brand.updated_at = now


def install_brand_stamps() -> None:
    """Move a brand's change stamp whenever its points change (see ``_stamp_brands``)."""
    if not event.contains(Session, "before_flush", _stamp_brands):
        event.listen(Session, "before_flush", _stamp_brands)
