"""The fleet registry: areas, brands, meters, SIM cards, customers and meter secrets."""

from __future__ import annotations

import datetime as dt
import enum

from flask_appbuilder import Model
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
    func,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.types import UTCDateTime, utcnow


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Member names equal their values (FAB's form fields look members up by name), stored as
    # portable VARCHARs rather than native enums so adding a member needs no type migration.
    return Enum(cls, name=name, native_enum=False, length=24, validate_strings=True)


class AreaKind(enum.StrEnum):
    """The level of a node in the area tree."""

    region = "region"
    district = "district"
    area = "area"
    feeder = "feeder"
    transformer = "transformer"


class MeterStatus(enum.StrEnum):
    """Where a meter is in its life."""

    warehouse = "warehouse"
    installed = "installed"
    active = "active"
    decommissioned = "decommissioned"


class CommMode(enum.StrEnum):
    """Who opens the TCP connection."""

    dial_in = "dial_in"
    dial_out = "dial_out"


class AuthLevel(enum.StrEnum):
    """DLMS authentication mechanism of the association (and, for GMAC, whether APDUs are ciphered)."""

    none = "none"  # mechanism 0, lowest level
    low = "low"  # mechanism 1, LLS: a password
    high_md5 = "high_md5"  # mechanism 3, HLS with MD5
    high_sha1 = "high_sha1"  # mechanism 4, HLS with SHA-1
    high_gmac = "high_gmac"  # mechanism 5, HLS with GMAC, APDUs ciphered (authenticated encryption)
    high_gmac_plain = "high_gmac_plain"  # mechanism 5, HLS with GMAC, APDUs not ciphered
    high_sha256 = "high_sha256"  # mechanism 6, HLS with SHA-256


class PushPolicy(enum.StrEnum):
    """Which pushes of a brand the HES stores."""

    auto = "auto"  # authenticated only when the brand authenticates with HLS keys, else plain too
    plain = "plain"  # plain pushes accepted (their values never override profile values)
    authenticated = "authenticated"  # plain pushes refused (kept for diagnosis)


class Interface(enum.StrEnum):
    """DLMS transport framing over TCP."""

    wrapper = "wrapper"
    hdlc = "hdlc"


class RelayState(enum.StrEnum):
    """Disconnect-control output as last read from the meter."""

    connected = "connected"
    disconnected = "disconnected"
    ready_for_reconnection = "ready_for_reconnection"
    unknown = "unknown"


class SimStatus(enum.StrEnum):
    """Life of a SIM card."""

    warehouse = "warehouse"
    active = "active"
    suspended = "suspended"
    terminated = "terminated"


class Area(Model):
    """A node in the area tree (region › district › area, plus feeders and transformers).

    ``path`` is the materialised chain of ids (``/1/4/9/``) so that "this area and
    everything under it" is one indexed prefix match.
    """

    __tablename__ = "area"
    __table_args__ = (UniqueConstraint("parent_id", "name", name="uq_area_parent_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    code: Mapped[str | None] = mapped_column(String(40), unique=True)
    kind: Mapped[AreaKind] = mapped_column(_enum(AreaKind, "area_kind"), default=AreaKind.area)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("area.id", ondelete="RESTRICT"))
    path: Mapped[str] = mapped_column(String(255), default="/", index=True)
    description: Mapped[str | None] = mapped_column(Text)
    # The feeder/transformer meter whose energy is the input of this area's energy balance.
    supply_meter_id: Mapped[int | None] = mapped_column(
        ForeignKey("meter.id", ondelete="SET NULL", use_alter=True, name="fk_area_supply_meter")
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    parent: Mapped[Area | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Area]] = relationship(back_populates="parent")
    supply_meter: Mapped[Meter | None] = relationship(foreign_keys=[supply_meter_id])

    def __repr__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        """Name with its ancestors, e.g. ``North › Kano › Sabon Gari``."""
        names, node = [], self
        while node is not None:
            names.append(node.name)
            node = node.parent
        return " › ".join(reversed(names))


class AreaTreeError(ValueError):
    """A move that would break the area tree (a cycle)."""


# The materialised path is an invariant of the table, so it is kept by mapper events and holds
# whichever edge (form, REST API, import, service) inserted or moved the area.
def _path_for(connection, area: Area) -> str:
    if area.parent_id is None:
        return f"/{area.id}/"
    parent_path = connection.execute(select(Area.path).where(Area.id == area.parent_id)).scalar()
    return f"{parent_path}{area.id}/"


@event.listens_for(Area, "after_insert")
def _set_path_on_insert(mapper, connection, area: Area) -> None:
    area.path = _path_for(connection, area)
    connection.execute(update(Area).where(Area.id == area.id).values(path=area.path))


@event.listens_for(Area, "before_update")
def _check_move(mapper, connection, area: Area) -> None:
    if area.parent_id is None:
        return
    if area.parent_id == area.id:
        raise AreaTreeError("An area cannot be its own parent.")
    parent_path = connection.execute(select(Area.path).where(Area.id == area.parent_id)).scalar() or ""
    if f"/{area.id}/" in parent_path:
        raise AreaTreeError("An area cannot be moved under one of its own sub-areas.")


@event.listens_for(Area, "after_update")
def _move_subtree(mapper, connection, area: Area) -> None:
    old_path = connection.execute(select(Area.path).where(Area.id == area.id)).scalar()
    new_path = _path_for(connection, area)
    if old_path == new_path:
        return
    # Rewrite the prefix of this node and every descendant in one statement.
    connection.execute(
        update(Area)
        .where(Area.path.startswith(old_path, autoescape=True))
        .values(path=func.replace(Area.path, old_path, new_path))
    )
    area.path = new_path



class MeterBrand(Model):
    """A meter brand/type: its DLMS defaults and its OBIS points (from plugins or the UI)."""

    __tablename__ = "meter_brand"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    title: Mapped[str] = mapped_column(String(120), nullable=False)
    manufacturer: Mapped[str | None] = mapped_column(String(120))
    source: Mapped[str] = mapped_column(String(16), default="ui")  # plugin | ui
    interface: Mapped[Interface] = mapped_column(_enum(Interface, "interface"), default=Interface.wrapper)
    client_address: Mapped[int] = mapped_column(Integer, default=1)
    server_address: Mapped[int] = mapped_column(Integer, default=1)
    auth_level: Mapped[AuthLevel] = mapped_column(_enum(AuthLevel, "auth_level"), default=AuthLevel.low)
    profile_period_minutes: Mapped[int] = mapped_column(Integer, default=15)
    # Objects and maps that are not single points: profiles, event logs, relay, token gateway ...
    objects: Mapped[dict] = mapped_column(JSON, default=dict)
    event_codes: Mapped[dict] = mapped_column(JSON, default=dict)
    default_secret_id: Mapped[int | None] = mapped_column(ForeignKey("meter_secret.id", ondelete="SET NULL"))
    push_policy: Mapped[PushPolicy] = mapped_column(_enum(PushPolicy, "push_policy"), default=PushPolicy.auto,
                                                    server_default="auto", nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    points: Mapped[list[ObisPoint]] = relationship(
        back_populates="brand", cascade="all, delete-orphan", order_by="ObisPoint.position"
    )
    default_secret: Mapped[MeterSecret | None] = relationship(foreign_keys=[default_secret_id])

    def __repr__(self) -> str:
        return self.title


class PointAccess:
    """What a point's access letters allow (r, w, rw, x): shared by the ORM point and its plain view."""

    __slots__ = ()
    access: str

    @property
    def readable(self) -> bool:
        """True when the point can be read."""
        return "r" in self.access

    @property
    def writable(self) -> bool:
        """True when the point can be written or executed."""
        return "w" in self.access or "x" in self.access


class ObisPoint(PointAccess, Model):
    """One readable/writable COSEM attribute (or method) of a brand."""

    __tablename__ = "obis_point"
    __table_args__ = (UniqueConstraint("brand_id", "key", name="uq_obis_point_brand_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("meter_brand.id", ondelete="CASCADE"), nullable=False)
    position: Mapped[int] = mapped_column(Integer, default=0)
    key: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    obis: Mapped[str] = mapped_column(String(32), nullable=False)
    class_id: Mapped[int] = mapped_column(Integer, nullable=False)
    attribute: Mapped[int] = mapped_column(Integer, default=2)
    method: Mapped[int | None] = mapped_column(Integer)
    unit: Mapped[str | None] = mapped_column(String(24))
    scaler: Mapped[int | None] = mapped_column(Integer)
    group: Mapped[str] = mapped_column(String(32), default="Other")
    access: Mapped[str] = mapped_column(String(4), default="r")  # r, w, rw, x
    datatype: Mapped[str | None] = mapped_column(String(24))

    brand: Mapped[MeterBrand] = relationship(back_populates="points")

    def __repr__(self) -> str:
        return f"{self.name} ({self.obis})"


class MeterSecret(Model):
    """DLMS credentials, encrypted at rest (see ``app.services.secrets``); never shown back."""

    __tablename__ = "meter_secret"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    password_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    block_cipher_key_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    authentication_key_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    system_title: Mapped[str | None] = mapped_column(String(32))  # hex, not secret
    # Persisted so that it only ever moves forward (replay protection on the meter side).
    invocation_counter: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Sim(Model):
    """A SIM card: the meter's IP address on the private APN."""

    __tablename__ = "sim"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    ip_address: Mapped[str | None] = mapped_column(String(45))
    port: Mapped[int | None] = mapped_column(Integer)
    apn: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[SimStatus] = mapped_column(_enum(SimStatus, "sim_status"), default=SimStatus.active)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    meter: Mapped[Meter | None] = relationship(back_populates="sim", uselist=False)

    def __repr__(self) -> str:
        return self.number


class Customer(Model):
    """A consumer account; a Customer-role user is linked to exactly one of these."""

    __tablename__ = "customer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_number: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    address: Mapped[str | None] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(120))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    meters: Mapped[list[Meter]] = relationship(back_populates="customer")
    user = relationship("User", foreign_keys=[user_id])

    @property
    def sims(self) -> list[Sim]:
        """The SIM cards of the customer's meters (a customer reaches the network through them)."""
        return [meter.sim for meter in self.meters if meter.sim is not None]

    def __repr__(self) -> str:
        return f"{self.name} ({self.account_number})"


class Meter(Model):
    """A smart meter: identity, place in the tree, comms settings and live state."""

    __tablename__ = "meter"
    __table_args__ = (
        Index("ix_meter_area_status", "area_id", "status"),
        Index("ix_meter_online", "online"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    brand_id: Mapped[int] = mapped_column(ForeignKey("meter_brand.id", ondelete="RESTRICT"), nullable=False)
    # Communication trace switched on until this time (frames kept in trace_frame).
    trace_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    concentrator_id: Mapped[str | None] = mapped_column(String(40))
    area_id: Mapped[int | None] = mapped_column(ForeignKey("area.id", ondelete="SET NULL"), index=True)
    sim_id: Mapped[int | None] = mapped_column(ForeignKey("sim.id", ondelete="SET NULL"), unique=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"), index=True)
    status: Mapped[MeterStatus] = mapped_column(_enum(MeterStatus, "meter_status"), default=MeterStatus.warehouse)
    comm_mode: Mapped[CommMode] = mapped_column(_enum(CommMode, "comm_mode"), default=CommMode.dial_in)
    # Per-meter overrides of the brand's DLMS defaults (NULL = use the brand's).
    interface: Mapped[Interface | None] = mapped_column(_enum(Interface, "interface"))
    client_address: Mapped[int | None] = mapped_column(Integer)
    server_address: Mapped[int | None] = mapped_column(Integer)
    auth_level: Mapped[AuthLevel | None] = mapped_column(_enum(AuthLevel, "auth_level"))
    secret_id: Mapped[int | None] = mapped_column(ForeignKey("meter_secret.id", ondelete="SET NULL"))
    # The meter's own DLMS system title (hex): who a ciphered push comes from. Learnt at association.
    system_title: Mapped[str | None] = mapped_column(String(16), unique=True)
    # The last invocation counter of an authenticated push from this meter: a replay is refused.
    push_invocation_counter: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0", nullable=False)
    # Live state, written by the comms node.
    online: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    last_seen: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    first_seen: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    node_id: Mapped[str | None] = mapped_column(String(64))
    comm_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0", nullable=False)
    relay_state: Mapped[RelayState] = mapped_column(_enum(RelayState, "relay_state"), default=RelayState.unknown)
    firmware_version: Mapped[str | None] = mapped_column(String(64))
    credit_balance: Mapped[float | None] = mapped_column()
    clock_drift_seconds: Mapped[float | None] = mapped_column()
    latitude: Mapped[float | None] = mapped_column()
    longitude: Mapped[float | None] = mapped_column()
    installed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    brand: Mapped[MeterBrand] = relationship()
    area: Mapped[Area | None] = relationship(foreign_keys=[area_id])
    sim: Mapped[Sim | None] = relationship(back_populates="meter")
    customer: Mapped[Customer | None] = relationship(back_populates="meters")
    secret: Mapped[MeterSecret | None] = relationship(foreign_keys=[secret_id])

    def __repr__(self) -> str:
        return self.number

    @property
    def effective(self) -> dict:
        """DLMS settings with the per-meter overrides applied over the brand's defaults."""
        brand = self.brand
        return {
            "interface": (self.interface or brand.interface).value,
            "client_address": self.client_address if self.client_address is not None else brand.client_address,
            "server_address": self.server_address if self.server_address is not None else brand.server_address,
            "auth": (self.auth_level or brand.auth_level).value,
        }
