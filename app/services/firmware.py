"""Firmware: uploaded images, and the image transfer (class 18) that resumes from the meter's first missing
block, verifies, activates and reads the version back."""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any

from flask import current_app
from sqlalchemy import select

from app.comms import gx
from app.comms.session import DATA_ACCESS_RESULTS, DlmsSession
from app.extensions import db
from app.models import FirmwareImage, FirmwareTransfer, Meter
from app.services import ServiceError, audit
from app.services.brands import point_by_ref
from app.services.commands.kinds import brand_object
from app.services.meter_gate import lend_to_urgent

IDENTIFIER = re.compile(r"^[\x21-\x7e]{1,64}$")
FIRMWARE_VERSION_OBIS = "1.0.0.2.0.255"
# Image transfer status (attribute 6).
VERIFY_RUNNING, VERIFIED, VERIFY_FAILED, ACTIVATING, ACTIVATED, ACTIVATE_FAILED = 2, 3, 4, 5, 6, 7
PROGRESS_EVERY_BLOCKS = 64
STATUS_POLLS = 20


def upload_image(identifier: str, data: bytes, *, filename: str | None = None, notes: str | None = None,
                 user=None) -> FirmwareImage:
    """Store an image under the identifier the meter will report once it runs it."""
    identifier = (identifier or "").strip()
    if not IDENTIFIER.match(identifier):
        raise ServiceError("The image identifier is 1 to 64 printable ASCII characters without spaces "
                           "(the meter reports it as its firmware version).", status=422)
    if not data:
        raise ServiceError("The image file is empty.", status=422)
    limit = int(current_app.config.get("HES_FIRMWARE_MAX_MB", 32)) * 1024 * 1024
    if len(data) > limit:
        raise ServiceError(f"The image is larger than {limit // 1048576} MB.", status=422)
    if db.session.execute(select(FirmwareImage.id).where(FirmwareImage.identifier == identifier)).scalar():
        raise ServiceError(f"An image with identifier {identifier!r} already exists.", status=409)
    image = FirmwareImage(identifier=identifier, data=data, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                          filename=(filename or "")[:255] or None, notes=notes or None,
                          uploaded_by_id=getattr(user, "id", None))
    db.session.add(image)
    db.session.flush()
    audit.record("firmware_upload", "firmware_image", image.id, f"firmware {identifier} uploaded ({len(data)} bytes)",
                 user=user, details={"identifier": identifier, "size": len(data), "sha256": image.sha256})
    db.session.commit()
    return image


def image_dict(image: FirmwareImage) -> dict[str, Any]:
    """An image without its bytes."""
    return {"id": image.id, "identifier": image.identifier, "filename": image.filename, "size": image.size,
            "sha256": image.sha256, "notes": image.notes, "created_at": image.created_at.isoformat(),
            "uploaded_by": image.uploaded_by.username if image.uploaded_by else None}


def list_images() -> list[dict[str, Any]]:
    """Every uploaded image, newest first."""
    images = db.session.execute(select(FirmwareImage).order_by(FirmwareImage.id.desc())).scalars()
    return [image_dict(i) for i in images]


def read_version(session: DlmsSession, meter: Meter) -> str | None:
    """The active firmware version the meter reports (brand point ``firmware_version`` or 1.0.0.2.0.255)."""
    point = point_by_ref(meter.brand, "firmware_version")
    where = (point.obis, point.class_id, point.attribute) if point else (FIRMWARE_VERSION_OBIS, 1, 2)
    value = session.get(*where)
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return None if value is None else str(value)


class _Transfer:
    """One session's worth of a transfer: sends blocks, records progress, notices a cancel."""

    def __init__(self, session: DlmsSession, meter: Meter, transfer: FirmwareTransfer, deadline: float) -> None:
        self.session, self.meter, self.transfer, self.deadline = session, meter, transfer, deadline
        self.obis = brand_object(meter.brand, "image_transfer")
        self.image = transfer.image

    def save(self, status: str | None = None) -> None:
        from app.services.commands.queue import emit_command, transfer_dict

        if status is not None:
            self.transfer.status = status
        db.session.commit()
        emit_command(self.transfer.command, transfer=transfer_dict(self.transfer))

    def cancelled(self) -> bool:
        db.session.refresh(self.transfer, ["status"])
        return self.transfer.status == "cancelling"

    def status(self) -> int:
        return int(self.session.get(self.obis, 18, 6) or 0)

    def fail(self, reason: str) -> dict[str, Any]:
        self.save("failed")
        return self.outcome(False, reason)

    def outcome(self, ok: bool, reason: str | None = None, **extra: Any) -> dict[str, Any]:
        from app.services.commands.queue import transfer_dict

        result = {**transfer_dict(self.transfer), "identifier": self.image.identifier, "ok": ok, **extra}
        return {**result, "reason": reason} if reason else result

    def send_blocks(self, first: int, total: int, size: int) -> str | None:
        data = self.image.data
        for number in range(first, total):
            block = data[number * size:(number + 1) * size]
            code = self.session.action(self.obis, 18, 2, gx.structure(gx.Typed("uint32", number),
                                                                      gx.Typed("octet_string", block)))
            if code:
                return f"block {number} refused: {DATA_ACCESS_RESULTS.get(code, 'error')} (code {code})"
            self.transfer.blocks_sent += 1
            self.transfer.blocks_done = number + 1
            # Between blocks an urgent read or command waiting for this meter runs inside this association.
            lend_to_urgent(self.meter.id, self.session)
            if (number + 1) % PROGRESS_EVERY_BLOCKS == 0:
                self.save()
                if self.cancelled():
                    return "cancelled"
                if time.monotonic() > self.deadline:
                    return "the transfer took longer than its time limit"
        self.save()
        return None

    def wait_status(self, running: int, success: int) -> int:
        status = self.status()
        for _ in range(STATUS_POLLS):
            if status != running:
                break
            time.sleep(0.5)
            status = self.status()
        return status

    def run(self) -> dict[str, Any]:
        transfer, image = self.transfer, self.image
        transfer.sessions += 1
        current = read_version(self.session, self.meter)
        if transfer.version_before is None:
            transfer.version_before = current
        if current == image.identifier:
            # Already running it (e.g. activated in a session whose link dropped before the read-back).
            return self.finish(current)
        size = int(self.session.get(self.obis, 18, 2))
        total = -(-image.size // size)
        transfer.block_size, transfer.blocks_total = size, total
        self.save("transferring")
        code = self.session.action(self.obis, 18, 1, gx.structure(
            gx.Typed("octet_string", image.identifier.encode("ascii")), gx.Typed("uint32", image.size)))
        if code:
            return self.fail(f"The meter refused to start the transfer: {DATA_ACCESS_RESULTS.get(code, 'error')} "
                             f"(code {code}).")
        first = int(self.session.get(self.obis, 18, 4))
        if transfer.sessions > 1:
            transfer.resumed_from = first
        transfer.blocks_done = first
        for _ in range(3):
            problem = self.send_blocks(first, total, size)
            if problem == "cancelled":
                self.save("cancelled")
                return self.outcome(False, "Cancelled during the transfer.", cancelled=True)
            if problem:
                return self.fail(problem)
            first = int(self.session.get(self.obis, 18, 4))
            if first >= total:
                break
        else:
            return self.fail(f"The meter still misses block {first} after three passes.")
        self.save("verifying")
        if self.session.action(self.obis, 18, 3) != 0 and self.wait_status(VERIFY_RUNNING, VERIFIED) != VERIFIED:
            return self.fail("The meter could not verify the image.")
        self.save("activating")
        if self.session.action(self.obis, 18, 4) != 0 and self.wait_status(ACTIVATING, ACTIVATED) != ACTIVATED:
            return self.fail("The meter did not activate the image.")
        return self.finish(read_version(self.session, self.meter))

    def finish(self, version: str | None) -> dict[str, Any]:
        from app.services.meter_access import forget_meter_objects

        # New firmware may change scalers, capture objects and how profiles read: learn them again.
        forget_meter_objects(self.meter.id)
        self.transfer.version_after = version
        self.meter.firmware_version = version
        if self.transfer.blocks_total:
            self.transfer.blocks_done = self.transfer.blocks_total
        if version != self.image.identifier:
            return self.fail(f"Activated, but the meter reports version {version!r}.")
        self.save("done")
        return self.outcome(True)


def transfer_image(session: DlmsSession, meter: Meter, command_id: int) -> dict[str, Any]:
    """Transfer (or resume), verify and activate the command's image; read the version back."""
    transfer = db.session.execute(select(FirmwareTransfer).where(FirmwareTransfer.command_id == command_id)).scalar()
    if transfer is None:
        raise ServiceError(f"Command {command_id} has no firmware transfer.", status=404)
    minutes = float(current_app.config.get("HES_FIRMWARE_TIMEOUT_MINUTES", 120))
    return _Transfer(session, meter, transfer, time.monotonic() + minutes * 60).run()


def transfers(job_id: int | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Per-meter transfer progress (of one job, or the latest)."""
    from app.models.commands import Command
    from app.services.commands.queue import transfer_dict

    query = (select(FirmwareTransfer, Command).join(Command, Command.id == FirmwareTransfer.command_id)
             .order_by(FirmwareTransfer.id.desc()).limit(limit))
    if job_id is not None:
        query = query.where(Command.job_id == job_id)
    return [{"command_id": command.id, "meter_id": command.meter_id, "number": command.meter.number,
             "job_id": command.job_id, "state": command.state.value, "reason": command.reason,
             "identifier": transfer.image.identifier, **transfer_dict(transfer)}
            for transfer, command in db.session.execute(query)]
