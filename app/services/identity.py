"""Who a meter is and what it must prove: its DLMS system title (how ciphered pushes name their sender) and
per-meter LLS passwords (generated and written into the meter, or imported from CSV; write-only)."""

from __future__ import annotations

import logging
import re
import secrets
import string

from flask import current_app
from sqlalchemy import select, update

from app.comms.session import DlmsSession
from app.extensions import db
from app.models import Meter, MeterSecret
from app.services import ServiceError, audit, csvio
from app.services.csvio import Column
from app.services.secrets import describe, store_credentials

log = logging.getLogger(__name__)
SYSTEM_TITLE = re.compile(r"^[0-9a-f]{16}$")


def validate_identity(meter: Meter) -> None:
    """Normalise the meter's system title (8 bytes as 16 hex digits; empty means unknown)."""
    title = (meter.system_title or "").strip().lower()
    if title and not SYSTEM_TITLE.match(title):
        raise ServiceError("system_title must be 8 bytes written as 16 hex digits.", status=422,
                           errors=[{"column": "system_title", "reason": "invalid", "value": meter.system_title}])
    meter.system_title = title or None


def learn_system_title(meter: Meter, title: bytes | None) -> None:
    """Remember the system title a meter gave in its AARE (so its ciphered pushes are recognised)."""
    if not title or meter.system_title == title.hex():
        return
    hexed = title.hex()
    if meter.system_title is not None:
        log.warning("meter %s answered with system title %s, not its registered %s", meter.number, hexed,
                    meter.system_title)
        return
    if db.session.execute(select(Meter.id).where(Meter.system_title == hexed)).scalar() is not None:
        log.warning("meter %s answered with system title %s, which another meter holds", meter.number, hexed)
        return
    db.session.execute(update(Meter).where(Meter.id == meter.id).values(system_title=hexed))
    db.session.commit()


# ----- per-meter LLS passwords ----------------------------------------------------------------------

ASSOCIATION_OBIS = "0.0.40.0.0.255"
LLS_SECRET_ATTRIBUTE = 7  # Association LN attribute 7: the LLS secret (write-only)
PASSWORD_ALPHABET = string.ascii_letters + string.digits
PASSWORD_COLUMNS = [Column("meter_number", aliases=("meter", "number")),
                    Column("password", check=lambda v: None if 1 <= len(v) <= 64 and v.isprintable()
                           else "must be 1 to 64 printable characters")]


def new_lls_password(length: int | None = None) -> str:
    """A random LLS password (letters and digits, HES_LLS_PASSWORD_LENGTH long, 16 by default)."""
    size = int(length or current_app.config.get("HES_LLS_PASSWORD_LENGTH", 16))
    if not 8 <= size <= 64:
        raise ServiceError("An LLS password must be 8 to 64 characters long.", status=422)
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(size))


def _own_secret(meter: Meter) -> MeterSecret | None:
    """The meter's own secret row (never the brand's shared default)."""
    return meter.secret if meter.secret_id is not None else None


def rotate_lls_password(session: DlmsSession, meter: Meter, length: int | None = None) -> dict:
    """Give the meter a password of its own: generate it, write it into the meter, then keep it (write-only).

    Nobody sees it: the meter gets it over the current association, the HES stores it encrypted."""
    if meter.effective["auth"] != "low":
        raise ServiceError(f"Meter {meter.number} authenticates with {meter.effective['auth']}, not LLS.", status=409)
    password = new_lls_password(length)
    session.set(ASSOCIATION_OBIS, 15, LLS_SECRET_ATTRIBUTE, password.encode("ascii"), "octet_string")
    # The meter now only accepts the new password: keep it before anything else can fail.
    meter.secret = store_credentials(_own_secret(meter), password=password)
    audit.record("credentials", "meter", meter.id, f"LLS password of {meter.number} generated and written to it")
    db.session.commit()
    return describe(meter.secret) | {"per_meter_password": True}


def import_lls_passwords(data: bytes | str) -> dict:
    """Set per-meter LLS passwords from a CSV file (meter_number, password): all rows or none.

    For passwords the meters already hold (set at the factory and delivered with the shipment)."""
    parsed = csvio.parse(data, PASSWORD_COLUMNS)
    meters: list[tuple[Meter, str]] = []
    if not parsed.unreadable:
        numbers = [row["meter_number"] for _line, row in parsed.rows]
        known = {m.number: m for m in db.session.execute(select(Meter).where(Meter.number.in_(numbers))).scalars()}
        seen: set[str] = set()
        for line, row in parsed.rows:
            number = row["meter_number"]
            if number in seen:
                parsed.error(line, "meter_number", "appears twice in the file", number)
            elif number and number not in known:
                parsed.error(line, "meter_number", "no such meter", number)
            elif number and row["password"]:
                meters.append((known[number], row["password"]))
            seen.add(number)
    if parsed.errors:
        raise ServiceError("Password file rejected", errors=[e.as_dict() for e in parsed.errors], status=422)
    for meter, password in meters:
        meter.secret = store_credentials(_own_secret(meter), password=password)
    audit.record("credentials", "meter", None, f"per-meter LLS passwords imported for {len(meters)} meters")
    db.session.commit()
    return {"updated": len(meters)}
