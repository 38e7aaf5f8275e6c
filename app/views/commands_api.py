"""REST API of the command queue: ``/api/v1/command/`` (one meter), ``/api/v1/job/`` (a group of meters),
``/api/v1/firmware/`` (images and transfers). Thin: parse, check visibility, call the services."""

from __future__ import annotations

from flask import request
from flask_appbuilder import AppBuilder
from flask_appbuilder.api import BaseApi, expose, protect
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name

from app.extensions import db
from app.models import Meter
from app.models.commands import Command
from app.services import MAX_ID, commands, firmware
from app.services.audit import acting_user
from app.services.scope import customer_meter_ids, restricted_customer_id, scoped_base_filters
from app.views.common import csv_response
from app.views.dashboard import int_arg
from app.views.errors import domain_errors, safe
from app.views.fleet_api import HesModelRestApi


def _body() -> dict:
    return request.get_json(silent=True) or {}


def _idempotency_key(body: dict) -> str | None:
    return request.headers.get("Idempotency-Key") or body.get("idempotency_key")


def _wait_seconds(body: dict) -> float:
    raw = body.get("wait", request.args.get("wait", 0))
    try:
        return max(0.0, min(float(raw or 0), 120.0))
    except (TypeError, ValueError):
        return 0.0


def _visible_meter(meter_id) -> Meter | None:
    if not str(meter_id or "").isdecimal() or int(meter_id) > MAX_ID:
        return None
    query = db.select(Meter).where(Meter.id == int(meter_id))
    customer_id = restricted_customer_id()
    if customer_id is not None:
        query = query.where(Meter.customer_id == customer_id)
    return db.session.execute(query).scalar()


def _visible_meter_ids():
    customer_id = restricted_customer_id()
    return customer_meter_ids(customer_id) if customer_id is not None else None


class CommandApi(HesModelRestApi):
    """Commands to one meter: list, show, create (idempotent), cancel, token entry, CSV of the log and audit."""

    resource_name = "command"
    datamodel = SQLAInterface(Command)
    base_filters = scoped_base_filters("meter_id")
    exclude_route_methods = {"put", "delete"}
    list_columns = ["id", "kind", "meter_id", "meter.number", "job_id", "state", "reason", "attempts", "params",
                    "result", "created_at", "sent_at", "finished_at", "expires_at", "requested_by.username"]
    show_columns = list_columns + ["idempotency_key"]
    search_columns = ["kind", "state", "meter_id", "job_id", "created_at"]
    order_columns = ["id", "created_at", "finished_at", "kind", "state"]
    base_order = ("id", "desc")

    def _create(self, kind: str, body: dict):
        meter = _visible_meter(body.get("meter_id"))
        if meter is None:
            return self.response_404()
        command, created = commands.create_command(
            kind, meter.id, body.get("params") or {k: v for k, v in body.items() if k not in (
                "kind", "meter_id", "idempotency_key", "expires_in", "wait")},
            user=acting_user(), idempotency_key=_idempotency_key(body), expires_in=body.get("expires_in"))
        wait = _wait_seconds(body)
        result = commands.wait_for_outcome(command, wait) if wait else commands.as_dict(command)
        return self.response(201 if created else 200, id=command.id, created=created, result=result)

    @domain_errors
    def post_headless(self):
        """Create a command: ``{kind, meter_id, params | fields, idempotency_key?, expires_in?, wait?}``."""
        body = _body()
        return self._create(str(body.get("kind", "")), body)

    @expose("/token", methods=["POST"])
    @protect()
    @safe
    @permission_name("submit_token")
    def submit_token(self):
        """Load an STS token on a meter (customers: their own meter, when the site allows it).
        ---
        post:
          summary: Send a 20-digit token through the meter's token gateway and read back status and credit
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    meter_id: {type: integer}
                    token: {type: string, example: "12000123000000000428"}
                    idempotency_key: {type: string}
                    wait: {type: number, description: seconds to wait for the meter's answer}
          responses:
            201: {description: command created}
            200: {description: the command already created with this idempotency key}
            422: {description: malformed token (nothing was sent)}
        """
        body = _body()
        return self._create("token", {k: v for k, v in body.items() if k != "params"} | {
            "params": {"token": body.get("token")}})

    @expose("/<int:pk>", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def get(self, pk: int, **kwargs):
        """One command with its state, reason, read-back result (and transfer progress for firmware).
        ---
        get:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: the command}
            404: {description: not found}
        """
        command = db.session.get(Command, pk)
        if command is None or _visible_meter(command.meter_id) is None:
            return self.response_404()
        return self.response(200, id=pk, result=commands.as_dict(command))

    @expose("/<int:pk>/cancel", methods=["POST"])
    @protect()
    @safe
    @permission_name("cancel")
    def cancel(self, pk: int):
        """Cancel a queued command (or stop a running firmware transfer).
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: cancelled}
            409: {description: already sent or finished}
        """
        command = db.session.get(Command, pk)
        if command is None or _visible_meter(command.meter_id) is None:
            return self.response_404()
        return self.response(200, result=commands.as_dict(commands.cancel(pk, acting_user())))

    @expose("/export", methods=["GET"])
    @protect()
    @safe
    @permission_name("export")
    def export(self):
        """The command log as CSV (``?kind=&state=&meter=&from=&to=``).
        ---
        get:
          responses:
            200: {description: CSV file}
        """
        args = request.args
        stmt = commands.command_select(_visible_meter_ids(), args.get("kind"), args.get("state"), args.get("from"),
                                       args.get("to"), args.get("meter"))
        return csv_response(commands.export_commands(stmt), "commands.csv")

    @expose("/audit", methods=["GET"])
    @protect()
    @safe
    @permission_name("audit")
    def audit(self):
        """The audit trail of commands, jobs and firmware uploads as CSV (``?from=&to=``).
        ---
        get:
          responses:
            200: {description: CSV file}
        """
        return csv_response(commands.export_audit(request.args.get("from"), request.args.get("to")),
                            "command-audit.csv")


class JobApi(BaseApi):
    """Group jobs over a selection of meters or an area, with per-meter progress on Socket.IO ``job_progress``."""

    resource_name = "job"
    allow_browser_login = True

    @expose("/", methods=["POST"])
    @protect()
    @safe
    @permission_name("post")
    def post(self):
        """Start a group job.
        ---
        post:
          summary: One command kind over many meters; commands that change meters need confirm=true
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    kind:
                      type: string
                      enum: [disconnect, reconnect, token, firmware, set, read, clock_sync, load_limit]
                    meter_ids: {type: array, items: {type: integer}}
                    area_id: {type: integer}
                    points: {type: array, items: {type: string}, description: for read}
                    values: {type: object, description: "for set: {key: value}"}
                    params: {type: object}
                    confirm: {type: boolean}
                    idempotency_key: {type: string}
                    expires_in: {type: number}
          responses:
            201: {description: "job created: id, total"}
            428: {description: confirmation missing}
            429: {description: too many jobs a minute}
        """
        body = _body()
        job, created = commands.create_job(body, user=acting_user(), idempotency_key=_idempotency_key(body))
        return self.response(201 if created else 200, created=created, **commands.job_dict(job))

    @expose("/", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def list(self):
        """The latest jobs with their progress.
        ---
        get:
          responses:
            200: {description: jobs}
        """
        return self.response(200, result=commands.list_jobs())

    @expose("/<int:pk>", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def show(self, pk: int):
        """A job's progress (done, failed, total, counts by state).
        ---
        get:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: the job}
        """
        return self.response(200, **commands.job_dict(commands.get_job(pk)))

    @expose("/<int:pk>/commands", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def job_commands(self, pk: int):
        """The per-meter commands of a job (``?page=&page_size=&state=``).
        ---
        get:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: a page of commands}
        """
        page = int_arg("page", 0)
        size = max(1, min(int_arg("page_size", 100), 1000))
        return self.response(200, **commands.job_commands(pk, page, size, request.args.get("state") or None))

    @expose("/<int:pk>/cancel", methods=["POST"])
    @protect()
    @safe
    @permission_name("cancel")
    def cancel(self, pk: int):
        """Cancel the job's commands that have not been sent.
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: how many were cancelled}
        """
        return self.response(200, **commands.cancel_job(pk, acting_user()))


class FirmwareApi(BaseApi):
    """Firmware images (upload with an identifier) and per-meter transfer progress."""

    resource_name = "firmware"
    allow_browser_login = True

    @expose("/image", methods=["POST"])
    @protect()
    @safe
    @permission_name("upload")
    def upload(self):
        """Upload an image (multipart: file, identifier, notes).
        ---
        post:
          requestBody:
            content:
              multipart/form-data:
                schema:
                  type: object
                  properties:
                    file: {type: string, format: binary}
                    identifier: {type: string}
                    notes: {type: string}
          responses:
            201: {description: the stored image}
            409: {description: identifier already used}
            422: {description: bad identifier or file}
        """
        upload = request.files.get("file")
        if upload is None:
            return self.response_400(message="Send the image as a multipart field named 'file'.")
        image = firmware.upload_image(request.form.get("identifier", ""), upload.read(), filename=upload.filename,
                                      notes=request.form.get("notes"), user=acting_user())
        return self.response(201, id=image.id, result=firmware.image_dict(image))

    @expose("/image", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def images(self):
        """Uploaded images.
        ---
        get:
          responses:
            200: {description: images}
        """
        return self.response(200, result=firmware.list_images())

    @expose("/transfer", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def transfers(self):
        """Per-meter transfer progress (``?job_id=``).
        ---
        get:
          responses:
            200: {description: transfers}
        """
        job_id = request.args.get("job_id", "")
        return self.response(200, result=firmware.transfers(int(job_id) if job_id.isdecimal() else None))


def register(appbuilder: AppBuilder) -> None:
    """Add the command, job and firmware APIs."""
    for api in (CommandApi, JobApi, FirmwareApi):
        appbuilder.add_api(api)
