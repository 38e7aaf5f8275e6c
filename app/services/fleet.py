"""Rules for single fleet records, shared by forms and the REST API."""

from __future__ import annotations

import ipaddress
import re

from sqlalchemy import select

from app.extensions import db
from app.models import Customer, Meter, MeterStatus, Sim
from app.services import ServiceError

# Meter and SIM numbers: what the CSV importer and the REST API/forms both accept (no markup, no right-to-left,
# zero-width or other invisible characters that make two numbers look alike).
IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]{0,39}$")


def identifier_problem(value: str) -> str | None:
    """Why ``value`` is not a usable meter or SIM number, or None."""
    return None if IDENT.fullmatch(value or "") else "must be 1-40 letters, digits or . _ - /"


def validate_meter(meter: Meter) -> None:
    """The rules for a meter written through a form or the REST API (the CSV importer applies the same)."""
    from app.services.identity import validate_identity

    meter.number = (meter.number or "").strip()
    problem = identifier_problem(meter.number)
    if problem:
        raise ServiceError(f"Meter number {problem}.", status=422,
                           errors=[{"column": "number", "reason": problem, "value": meter.number}])
    validate_identity(meter)


def validate_sim(sim: Sim) -> None:
    """A SIM needs a usable number, a valid IP and port, and no other SIM may hold the same IP:port."""
    sim.number = (sim.number or "").strip()
    if identifier_problem(sim.number):
        raise ServiceError(f"SIM number {identifier_problem(sim.number)}.", status=422)
    if sim.ip_address:
        try:
            sim.ip_address = str(ipaddress.ip_address(sim.ip_address.strip()))
        except ValueError as exc:
            raise ServiceError(f"IP Address '{sim.ip_address}' is not a valid IP address.", status=422) from exc
    if sim.port is not None and not 1 <= int(sim.port) <= 65535:
        raise ServiceError(f"Port {sim.port} is out of range (1-65535).", status=422)
    if sim.ip_address and sim.port:
        clash = db.session.execute(
            select(Sim.number).where(Sim.ip_address == sim.ip_address, Sim.port == sim.port, Sim.id != sim.id)
        ).scalar()
        if clash:
            raise ServiceError(f"{sim.ip_address}:{sim.port} is already used by SIM {clash}.", status=422)


def prepare_customer(customer: Customer) -> None:
    """Give a new customer an account number and move newly assigned meters out of the warehouse."""
    if not customer.account_number:
        first = customer.meters[0].number if customer.meters else None
        customer.account_number = f"ACC-{first}" if first else None
    if not customer.account_number:
        raise ServiceError("A customer needs an account number or at least one meter.", status=422)
    for meter in customer.meters:
        if meter.status == MeterStatus.warehouse:
            meter.status = MeterStatus.installed
