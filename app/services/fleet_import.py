"""CSV import and export of meters, SIM cards and customers.

The whole file is validated first; any bad row means nothing is written and every problem
is listed by line, column and reason. A clean file upserts by natural key in bulk. Files are
read as streams, never whole, and the importer yields the event loop as it goes (see ``FleetImport``).
"""

from __future__ import annotations

import io
import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import func, insert, select, update

from app.extensions import db
from app.models import Area, CommMode, Customer, Meter, MeterBrand, MeterStatus, Sim
from app.services import ServiceError, audit
from app.services.csvio import Column, ParsedFile, cooperate, read, write_rows
from app.services.fleet import identifier_problem

COMM_MODES = {m.value for m in CommMode}
STATUSES = {m.value for m in MeterStatus}
PHONE = re.compile(r"^\+?[0-9][0-9 \-()]{4,24}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
BATCH = 5000  # rows per committed chunk
WRITE_STEP = 500  # rows per statement (the loop is yielded between two)


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


# (phase "checking" | "writing", fraction of the file's bytes read, last line read)
Progress = Callable[[str, float, int], None]


class FleetImport:
    """One import of one file, in two streaming passes: every row is checked first (a bad row anywhere means
    nothing is written and every problem is listed by line, column and reason); a clean file is then read again and
    written in chunks of ``BATCH`` rows, each committed. A file of up to ``BATCH`` rows is one transaction; a
    larger one that fails while writing (a lost database, a concurrent edit) keeps the chunks already committed —
    imports upsert by natural key, so importing the same file again completes it."""

    what = ""
    columns: list[Column] = []

    def prepare(self) -> None:
        """Load the lookups the rows are checked against."""

    def unique_keys(self, row: dict) -> Iterator[tuple[str, str, str]]:
        """``(column, key, label)`` for each value that must not repeat within the file."""
        return iter(())

    def plan(self, parsed: ParsedFile, line: int, row: dict):
        """Check one row against the database (recording problems in ``parsed``); what ``write`` needs for it."""
        raise NotImplementedError

    def write(self, planned: list) -> None:
        """Write one chunk of planned rows (counting them in ``self.result``)."""
        raise NotImplementedError

    def __init__(self) -> None:
        self.result = ImportResult()

    def run(self, source: bytes | str | BinaryIO, progress: Progress | None = None, user=None) -> ImportResult:
        """Check the whole file, then write it; ``ImportRejected`` with every problem when any row is wrong."""
        stream = io.BytesIO(source.encode() if isinstance(source, str) else source) \
            if isinstance(source, bytes | str) else source
        size = max(1, stream.seek(0, io.SEEK_END))
        stream.seek(0)
        report = progress or (lambda *_args: None)
        parsed = ParsedFile()
        seen: dict[str, dict[str, int]] = {}
        self.prepare()
        for count, (line, row) in enumerate(read(stream, self.columns, parsed), 1):
            for column, key, label in self.unique_keys(row):
                first = seen.setdefault(column, {}).setdefault(key, line)
                if first != line:
                    parsed.error(line, column, f"{label}duplicate in file (also on line {first})", row[column])
            self.plan(parsed, line, row)
            if count % BATCH == 0:
                report("checking", stream.tell() / size, line)
        _reject(parsed, self.what)
        del seen
        step: list = []
        for count, (line, row) in enumerate(read(stream, self.columns, ParsedFile()), 1):
            step.append(self.plan(parsed, line, row))
            if len(step) == WRITE_STEP:
                self.write(step)
                step = []
                cooperate()
            if count % BATCH == 0:
                report("writing", stream.tell() / size, line)  # may write the job's progress with this chunk
                db.session.commit()
        self.write(step)
        result = self.result
        audit.record("import", self.what.lower(),
                     summary=f"{self.what}s imported: {result.created} created, {result.updated} updated",
                     details=result.as_dict(), user=user)
        db.session.commit()
        return result


def _reject(parsed: ParsedFile, what: str) -> None:
    if parsed.errors:
        parsed.errors.sort(key=lambda e: e.line)
        raise ImportRejected(
            f"{what} file rejected: {len(parsed.errors)} problem(s); nothing was imported.",
            errors=[e.as_dict() for e in parsed.errors],
        )


def _rows(stmt) -> Iterator[tuple]:
    """The rows of a select, fetched a partition at a time with a yield of the loop between (a large fleet)."""
    for partition in db.session.execute(stmt.execution_options(yield_per=WRITE_STEP)).partitions():
        yield from partition
        cooperate()


def _lookup(stmt) -> dict:
    return {k.lower(): v for k, v in _rows(stmt)}


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


class _Upsert(FleetImport):
    """Rows planned as ``(values, existing id or None)``, inserted or updated in bulk."""

    model = None

    def write(self, planned: list) -> None:
        new_rows = [values for values, row_id in planned if row_id is None]
        changed = [values | {"id": row_id} for values, row_id in planned if row_id is not None]
        if new_rows:
            db.session.execute(insert(self.model), new_rows)
        if changed:
            db.session.execute(update(self.model), changed)
        self.result.created += len(new_rows)
        self.result.updated += len(changed)


class MeterImport(_Upsert):
    """Meters, keyed by Meter Number."""

    what, columns, model = "Meter", METER_COLUMNS, Meter

    def prepare(self) -> None:
        self.brands, self.areas = _brand_index(), _area_index()
        self.existing = _lookup(select(Meter.number, Meter.id))
        self.sims = _lookup(select(Sim.number, Sim.id))
        self.sim_owner = dict(_rows(select(Meter.sim_id, Meter.number).where(Meter.sim_id.is_not(None))))

    def unique_keys(self, row: dict) -> Iterator[tuple[str, str, str]]:
        for column in ("Meter Number", "SIM Number"):
            if row[column]:
                yield column, row[column].lower(), ""

    def plan(self, parsed: ParsedFile, line: int, row: dict):
        number = row["Meter Number"]
        brand_id = self.brands.get(row["Meter Type"].lower())
        if row["Meter Type"] and brand_id is None:
            parsed.error(line, "Meter Type", "unknown meter type (not a brand on this HES)", row["Meter Type"])
        area_id = None
        if row["Area"]:
            key = row["Area"].lower()
            area_id = self.areas.get(key)
            if area_id is None:
                reason = "ambiguous area name; use its code or full name" if key in self.areas else "unknown area"
                parsed.error(line, "Area", reason, row["Area"])
        sim_id = None
        if row["SIM Number"]:
            sim_id = self.sims.get(row["SIM Number"].lower())
            owner = self.sim_owner.get(sim_id)
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
        meter_id = self.existing.get(number.lower())
        if meter_id is None:
            values = {"area_id": None, "sim_id": None, "status": MeterStatus.warehouse,
                      "comm_mode": CommMode.dial_in} | values
        return values, meter_id


class SimImport(_Upsert):
    """SIM cards, keyed by Sim Number; one SIM per IP address and port."""

    what, columns, model = "SIM", SIM_COLUMNS, Sim

    def prepare(self) -> None:
        self.existing = _lookup(select(Sim.number, Sim.id))
        self.endpoints = {(ip, port): number for number, ip, port in
                          _rows(select(Sim.number, Sim.ip_address, Sim.port))}

    @staticmethod
    def _endpoint(row: dict) -> tuple[str, int] | None:
        if not row["IP Address"] or not row["Port"] or _ip(row["IP Address"]) or _port(row["Port"]):
            return None
        return str(ipaddress.ip_address(row["IP Address"])), int(row["Port"])

    def unique_keys(self, row: dict) -> Iterator[tuple[str, str, str]]:
        if row["Sim Number"]:
            yield "Sim Number", row["Sim Number"].lower(), ""
        endpoint = self._endpoint(row)
        if endpoint:
            label = f"{endpoint[0]}:{endpoint[1]}"
            yield "IP Address", label, label + " "

    def plan(self, parsed: ParsedFile, line: int, row: dict):
        endpoint = self._endpoint(row)
        if endpoint is None:
            return None
        number, (ip, port) = row["Sim Number"], endpoint
        holder = self.endpoints.get(endpoint)
        if holder is not None and holder.lower() != number.lower():
            parsed.error(line, "IP Address", f"{ip}:{port} is already used by SIM {holder}", row["IP Address"])
        values = {"number": number, "ip_address": ip, "port": port}
        if row["APN"]:
            values["apn"] = row["APN"]
        return values, self.existing.get(number.lower())


class CustomerImport(FleetImport):
    """Customers, with each row's meter and SIM assigned to them.

    Key: Account Number when given, else the customer who already holds the meter, else a
    new account ``ACC-<meter number>``. One customer may span several rows (several meters).
    """

    what, columns = "Customer", CUSTOMER_COLUMNS

    def prepare(self) -> None:
        self.accounts = _lookup(select(Customer.account_number, Customer.id))
        self.meters = {n.lower(): (mid, cid, sid, st) for n, mid, cid, sid, st in _rows(
            select(Meter.number, Meter.id, Meter.customer_id, Meter.sim_id, Meter.status))}
        self.sims = _lookup(select(Sim.number, Sim.id))
        self.sim_owner = dict(_rows(select(Meter.sim_id, Meter.id).where(Meter.sim_id.is_not(None))))

    def unique_keys(self, row: dict) -> Iterator[tuple[str, str, str]]:
        for column in ("Meter Number", "Sim Number"):
            if row[column]:
                yield column, row[column].lower(), ""

    def plan(self, parsed: ParsedFile, line: int, row: dict):
        meter = self.meters.get(row["Meter Number"].lower())
        if meter is None:
            parsed.error(line, "Meter Number", "unknown meter (add it under Meter Management first)",
                         row["Meter Number"])
            return None
        meter_id, holder_id, _, status = meter
        if status == MeterStatus.decommissioned:
            parsed.error(line, "Meter Number", "meter is decommissioned", row["Meter Number"])
        account = row["Account Number"]
        customer_id = self.accounts.get(account.lower()) if account else holder_id
        if holder_id is not None and holder_id != customer_id:
            parsed.error(line, "Meter Number", "already assigned to another customer", row["Meter Number"])
        sim_id = self.sims.get(row["Sim Number"].lower())
        if sim_id is None:
            parsed.error(line, "Sim Number", "unknown SIM (import SIM cards first)", row["Sim Number"])
        elif self.sim_owner.get(sim_id) not in (None, meter_id):
            parsed.error(line, "Sim Number", "already assigned to another meter", row["Sim Number"])
        return row, meter_id, customer_id, sim_id, status

    def write(self, planned: list) -> None:
        for row, meter_id, customer_id, sim_id, status in planned:
            values = {"name": row["Customer Name"], "address": row["Address"], "phone": row["Phone No"]}
            if row["Email"]:
                values["email"] = row["Email"]
            if customer_id is None and row["Account Number"]:
                customer_id = self.accounts.get(row["Account Number"].lower())  # created by an earlier row
            if customer_id is None:
                account = row["Account Number"] or f"ACC-{row['Meter Number']}"
                customer = Customer(account_number=account, **values)
                db.session.add(customer)
                db.session.flush()
                self.accounts[account.lower()] = customer_id = customer.id
                self.result.created += 1
            else:
                db.session.execute(update(Customer).where(Customer.id == customer_id).values(**values))
                self.result.updated += 1
            new_status = MeterStatus.installed if status == MeterStatus.warehouse else status
            db.session.execute(update(Meter).where(Meter.id == meter_id)
                               .values(customer_id=customer_id, sim_id=sim_id, status=new_status))


def import_meters(data: bytes | str | BinaryIO, progress: Progress | None = None, user=None) -> ImportResult:
    """Validate and upsert meters (key: Meter Number)."""
    return MeterImport().run(data, progress, user)


def import_sims(data: bytes | str | BinaryIO, progress: Progress | None = None, user=None) -> ImportResult:
    """Validate and upsert SIM cards (key: Sim Number)."""
    return SimImport().run(data, progress, user)


def import_customers(data: bytes | str | BinaryIO, progress: Progress | None = None, user=None) -> ImportResult:
    """Validate and upsert customers and assign each row's meter and SIM to them."""
    return CustomerImport().run(data, progress, user)


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
