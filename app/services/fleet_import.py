"""CSV import and export of meters, SIM cards and customers.

The whole file is validated first; any bad row means nothing is written and every problem
is listed by line, column and reason. A clean file upserts by natural key in bulk.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update

from app.extensions import db
from app.models import Area, CommMode, Customer, Meter, MeterBrand, MeterStatus, Sim
from app.services import ServiceError, audit
from app.services.csvio import Column, ParsedFile, parse, write_rows
from app.services.fleet import identifier_problem

COMM_MODES = {m.value for m in CommMode}
STATUSES = {m.value for m in MeterStatus}
PHONE = re.compile(r"^\+?[0-9][0-9 \-()]{4,24}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
BATCH = 5000


def _ident(value: str) -> str | None:
    return identifier_problem(value)


def _ip(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return "is not a valid IP address"
    return None


def _port(value: str) -> str | None:
    if not (value.isascii() and value.isdigit()):  # "²".isdigit() is true, but int("²") fails
        return "must be a whole number"
    return None if 1 <= int(value) <= 65535 else "is out of range (1-65535)"


def _phone(value: str) -> str | None:
    return None if PHONE.match(value) else "is not a valid phone number"


def _email(value: str) -> str | None:
    return None if EMAIL.match(value) else "is not a valid e-mail address"


def _max(n: int) -> Callable[[str], str | None]:
    return lambda v: None if len(v) <= n else f"is longer than {n} characters"


METER_COLUMNS = [
    Column("Meter Number", aliases=("meter no", "meter", "meter id", "serial number"), check=_ident),
    Column("Concentrator ID", aliases=("concentrator", "dcu", "dcu id", "concentrator no"), check=_max(40)),
    Column("Meter Type", aliases=("type", "brand", "meter brand", "model")),
    Column("Area", required=False, aliases=("area name", "area code")),
    Column("SIM Number", required=False, aliases=("sim", "sim no", "iccid", "msisdn"), check=_ident),
    Column("Comm Mode", required=False, aliases=("mode", "communication mode"), check=lambda v: None
           if v.lower().replace("-", "_").replace(" ", "_") in COMM_MODES else "must be dial_in or dial_out"),
    Column("Status", required=False, aliases=("meter status",), check=lambda v: None
           if v.lower() in STATUSES else f"must be one of {', '.join(sorted(STATUSES))}"),
]
SIM_COLUMNS = [
    Column("Sim Number", aliases=("sim", "sim no", "iccid", "msisdn"), check=_ident),
    Column("IP Address", aliases=("ip", "ip addr"), check=_ip),
    Column("Port", aliases=("tcp port",), check=_port),
    Column("APN", required=False, check=_max(64)),
]
CUSTOMER_COLUMNS = [
    Column("Customer Name", aliases=("name", "customer"), check=_max(120)),
    Column("Address", aliases=("customer address",), check=_max(255)),
    Column("Phone No", aliases=("phone", "phone number", "mobile", "telephone"), check=_phone),
    Column("Meter Number", aliases=("meter no", "meter"), check=_ident),
    Column("Sim Number", aliases=("sim", "sim no"), check=_ident),
    Column("Account Number", required=False, aliases=("account", "account no"), check=_ident),
    Column("Email", required=False, aliases=("e mail", "email address"), check=_email),
]


@dataclass
class ImportResult:
    """Counts of a clean import."""

    created: int = 0
    updated: int = 0

    def as_dict(self) -> dict:
        """JSON form: ``{"created": n, "updated": n, "errors": []}``."""
        return {"created": self.created, "updated": self.updated, "errors": []}


class ImportRejected(ServiceError):
    """The file has problems; nothing was written."""

    status = 422


def _reject(parsed: ParsedFile, what: str, *, only_if_unreadable: bool = False) -> None:
    if parsed.errors and (parsed.unreadable or not only_if_unreadable):
        parsed.errors.sort(key=lambda e: e.line)
        raise ImportRejected(
            f"{what} file rejected: {len(parsed.errors)} problem(s); nothing was imported.",
            errors=[e.as_dict() for e in parsed.errors],
        )


def _duplicates(parsed: ParsedFile, column: str) -> None:
    seen: dict[str, int] = {}
    for line, row in parsed.rows:
        key = row[column].lower()
        if key and key in seen:
            parsed.error(line, column, f"duplicate in file (also on line {seen[key]})", row[column])
        elif key:
            seen[key] = line


def _lookup(stmt) -> dict:
    return {k.lower(): v for k, v in db.session.execute(stmt).all()}


def _apply(model, new_rows: list[dict], changed_rows: list[dict]) -> ImportResult:
    for i in range(0, len(new_rows), BATCH):
        db.session.execute(insert(model), new_rows[i : i + BATCH])
    for i in range(0, len(changed_rows), BATCH):
        db.session.execute(update(model), changed_rows[i : i + BATCH])
    return ImportResult(created=len(new_rows), updated=len(changed_rows))


def _brand_index() -> dict[str, int]:
    index = {}
    for brand_id, name, title in db.session.execute(select(MeterBrand.id, MeterBrand.name, MeterBrand.title)):
        index[name.lower()] = brand_id
        index[title.lower()] = brand_id
    return index


def _area_index() -> dict[str, int | None]:
    """Area lookup by code, full name and name; ambiguous names map to None."""
    index: dict[str, int | None] = {}
    areas = db.session.execute(select(Area)).scalars().all()
    for area in areas:
        for key in {area.code, area.full_name, area.name} - {None}:
            key = key.lower()
            index[key] = None if key in index and index[key] != area.id else area.id
    return index


def import_meters(data: bytes | str) -> ImportResult:
    """Validate and upsert meters (key: Meter Number)."""
    parsed = parse(data, METER_COLUMNS)
    _reject(parsed, "Meter", only_if_unreadable=True)
    _duplicates(parsed, "Meter Number")
    _duplicates(parsed, "SIM Number")
    brands, areas = _brand_index(), _area_index()
    existing = _lookup(select(Meter.number, Meter.id))
    sims = _lookup(select(Sim.number, Sim.id))
    sim_owner = dict(db.session.execute(select(Meter.sim_id, Meter.number).where(Meter.sim_id.is_not(None))).all())
    new_rows, changed = [], []
    for line, row in parsed.rows:
        number = row["Meter Number"]
        brand_id = brands.get(row["Meter Type"].lower())
        if row["Meter Type"] and brand_id is None:
            parsed.error(line, "Meter Type", "unknown meter type (not a brand on this HES)", row["Meter Type"])
        area_id = None
        if row["Area"]:
            key = row["Area"].lower()
            area_id = areas.get(key)
            if area_id is None:
                reason = "ambiguous area name; use its code or full name" if key in areas else "unknown area"
                parsed.error(line, "Area", reason, row["Area"])
        sim_id = None
        if row["SIM Number"]:
            sim_id = sims.get(row["SIM Number"].lower())
            owner = sim_owner.get(sim_id)
            if sim_id is None:
                parsed.error(line, "SIM Number", "unknown SIM (import SIM cards first)", row["SIM Number"])
            elif owner is not None and owner.lower() != number.lower():
                parsed.error(line, "SIM Number", f"already assigned to meter {owner}", row["SIM Number"])
        values = {"number": number, "concentrator_id": row["Concentrator ID"], "brand_id": brand_id}
        # A blank optional cell leaves the stored value alone, so partial files don't wipe data.
        if row["Area"]:
            values["area_id"] = area_id
        if row["SIM Number"]:
            values["sim_id"] = sim_id
        mode = row["Comm Mode"].lower().replace("-", "_").replace(" ", "_")
        if mode in COMM_MODES:
            values["comm_mode"] = CommMode(mode)
        if row["Status"].lower() in STATUSES:
            values["status"] = MeterStatus(row["Status"].lower())
        meter_id = existing.get(number.lower())
        if meter_id is None:
            new_rows.append({"area_id": None, "sim_id": None, "status": MeterStatus.warehouse,
                             "comm_mode": CommMode.dial_in} | values)
        else:
            changed.append(values | {"id": meter_id})
    _reject(parsed, "Meter")
    result = _apply(Meter, new_rows, changed)
    audit.record("import", "meter", summary=f"meters imported: {result.created} created, {result.updated} updated",
                 details=result.as_dict())
    db.session.commit()
    return result


def import_sims(data: bytes | str) -> ImportResult:
    """Validate and upsert SIM cards (key: Sim Number)."""
    parsed = parse(data, SIM_COLUMNS)
    _reject(parsed, "SIM", only_if_unreadable=True)
    _duplicates(parsed, "Sim Number")
    existing = _lookup(select(Sim.number, Sim.id))
    endpoints = {(ip, port): number for number, ip, port in
                 db.session.execute(select(Sim.number, Sim.ip_address, Sim.port)).all()}
    in_file: dict[tuple[str, int], int] = {}
    new_rows, changed = [], []
    for line, row in parsed.rows:
        if not row["IP Address"] or not row["Port"] or _ip(row["IP Address"]) or _port(row["Port"]):
            continue
        number, ip, port = row["Sim Number"], str(ipaddress.ip_address(row["IP Address"])), int(row["Port"])
        holder = endpoints.get((ip, port))
        if holder is not None and holder.lower() != number.lower():
            parsed.error(line, "IP Address", f"{ip}:{port} is already used by SIM {holder}", row["IP Address"])
        if (ip, port) in in_file:
            parsed.error(line, "IP Address", f"{ip}:{port} duplicate in file (also on line {in_file[(ip, port)]})",
                         row["IP Address"])
        in_file[(ip, port)] = line
        values = {"number": number, "ip_address": ip, "port": port}
        if row["APN"]:
            values["apn"] = row["APN"]
        sim_id = existing.get(number.lower())
        if sim_id is None:
            new_rows.append(values)
        else:
            changed.append(values | {"id": sim_id})
    _reject(parsed, "SIM")
    result = _apply(Sim, new_rows, changed)
    audit.record("import", "sim", summary=f"SIMs imported: {result.created} created, {result.updated} updated",
                 details=result.as_dict())
    db.session.commit()
    return result


def import_customers(data: bytes | str) -> ImportResult:
    """Validate and upsert customers and assign each row's meter and SIM to them.

    Key: Account Number when given, else the customer who already holds the meter, else a
    new account ``ACC-<meter number>``. One customer may span several rows (several meters).
    """
    parsed = parse(data, CUSTOMER_COLUMNS)
    _reject(parsed, "Customer", only_if_unreadable=True)
    _duplicates(parsed, "Meter Number")
    _duplicates(parsed, "Sim Number")
    accounts = _lookup(select(Customer.account_number, Customer.id))
    meters = {n.lower(): (mid, cid, sid, st) for n, mid, cid, sid, st in db.session.execute(
        select(Meter.number, Meter.id, Meter.customer_id, Meter.sim_id, Meter.status)).all()}
    sims = _lookup(select(Sim.number, Sim.id))
    sim_owner = dict(db.session.execute(select(Meter.sim_id, Meter.id).where(Meter.sim_id.is_not(None))).all())
    plan = []
    for line, row in parsed.rows:
        meter = meters.get(row["Meter Number"].lower())
        if meter is None:
            parsed.error(line, "Meter Number", "unknown meter (add it under Meter Management first)",
                         row["Meter Number"])
            continue
        meter_id, holder_id, _, status = meter
        if status == MeterStatus.decommissioned:
            parsed.error(line, "Meter Number", "meter is decommissioned", row["Meter Number"])
        account = row["Account Number"]
        customer_id = accounts.get(account.lower()) if account else holder_id
        if holder_id is not None and holder_id != customer_id:
            parsed.error(line, "Meter Number", "already assigned to another customer", row["Meter Number"])
        sim_id = sims.get(row["Sim Number"].lower())
        if sim_id is None:
            parsed.error(line, "Sim Number", "unknown SIM (import SIM cards first)", row["Sim Number"])
        elif sim_owner.get(sim_id) not in (None, meter_id):
            parsed.error(line, "Sim Number", "already assigned to another meter", row["Sim Number"])
        plan.append((row, meter_id, customer_id, sim_id, status))
    _reject(parsed, "Customer")

    created = updated = 0
    for row, meter_id, customer_id, sim_id, status in plan:
        values = {"name": row["Customer Name"], "address": row["Address"], "phone": row["Phone No"]}
        if row["Email"]:
            values["email"] = row["Email"]
        if customer_id is None and row["Account Number"]:
            customer_id = accounts.get(row["Account Number"].lower())  # created by an earlier row
        if customer_id is None:
            account = row["Account Number"] or f"ACC-{row['Meter Number']}"
            customer = Customer(account_number=account, **values)
            db.session.add(customer)
            db.session.flush()
            accounts[account.lower()] = customer_id = customer.id
            created += 1
        else:
            db.session.execute(update(Customer).where(Customer.id == customer_id).values(**values))
            updated += 1
        new_status = MeterStatus.installed if status == MeterStatus.warehouse else status
        db.session.execute(update(Meter).where(Meter.id == meter_id)
                           .values(customer_id=customer_id, sim_id=sim_id, status=new_status))
    result = ImportResult(created=created, updated=updated)
    audit.record("import", "customer", summary=f"customers imported: {created} created, {updated} updated",
                 details=result.as_dict())
    db.session.commit()
    return result


def _visible_ids(model, query):
    """The ids a (possibly scoped) select of ``model`` lets through."""
    return (query if query is not None else select(model)).with_only_columns(model.id).scalar_subquery()


def _stream(stmt) -> Iterator[tuple]:
    """Rows of ``stmt`` from a connection of its own, so a download streams (server-side cursor on
    PostgreSQL) independently of the request's session, which ends before the body is sent."""
    with db.engine.connect() as conn:
        yield from conn.execution_options(stream_results=True, yield_per=2000).execute(stmt)


def export_meters(query=None) -> Iterator[str]:
    """The meter list in the import format (round-trips through ``import_meters``)."""
    stmt = (
        select(Meter.number, Meter.concentrator_id, MeterBrand.name, func.coalesce(Area.code, Area.name), Sim.number,
               Meter.comm_mode, Meter.status)
        .join(MeterBrand, Meter.brand_id == MeterBrand.id)
        .outerjoin(Area, Meter.area_id == Area.id)
        .outerjoin(Sim, Meter.sim_id == Sim.id)
        .where(Meter.id.in_(_visible_ids(Meter, query)))
        .order_by(Meter.number)
    )
    return write_rows([c.name for c in METER_COLUMNS], _stream(stmt))


def export_sims(query=None) -> Iterator[str]:
    """The SIM list in the import format."""
    stmt = (select(Sim.number, Sim.ip_address, Sim.port, Sim.apn)
            .where(Sim.id.in_(_visible_ids(Sim, query))).order_by(Sim.number))
    return write_rows([c.name for c in SIM_COLUMNS], _stream(stmt))


def export_customers(query=None) -> Iterator[str]:
    """One row per (customer, meter) in the import format."""
    stmt = (
        select(Customer.name, Customer.address, Customer.phone, Meter.number, Sim.number, Customer.account_number,
               Customer.email)
        .join(Meter, Meter.customer_id == Customer.id)
        .outerjoin(Sim, Meter.sim_id == Sim.id)
        .where(Customer.id.in_(_visible_ids(Customer, query)))
        .order_by(Customer.account_number, Meter.number)
    )
    return write_rows([c.name for c in CUSTOMER_COLUMNS], _stream(stmt))


IMPORTERS = {"meter": import_meters, "sim": import_sims, "customer": import_customers}
EXPORTERS = {"meter": export_meters, "sim": export_sims, "customer": export_customers}
