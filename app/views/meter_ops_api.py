"""Meter endpoints that talk to the meter or its secrets: on-demand read and write-only credentials."""

from __future__ import annotations

from flask import request
from flask_appbuilder.api import expose, protect
from flask_appbuilder.security.decorators import permission_name

from app.extensions import db
from app.models import Meter
from app.services import NotFound, audit
from app.services.meter_view import load_meter_view
from app.services.reads import read_now
from app.services.secrets import describe, store_credentials
from app.views.errors import safe

CREDENTIAL_FIELDS = ("password", "block_cipher_key", "authentication_key", "system_title", "invocation_counter")


class MeterOperationsMixin:
    """Mixed into MeterApi: ``/api/v1/meter/<id>/read`` and ``/api/v1/meter/<id>/credentials``."""

    def _scoped(self, query):
        """``query`` (a SELECT on ``Meter``) narrowed by this API's base filters (the user's scope)."""
        for flt, value in self._base_filters.get_filters_values():
            query = flt.apply(query, value)
        return query

    def _visible_meter(self, pk: int) -> Meter | None:
        return db.session.execute(self._scoped(db.select(Meter).where(Meter.id == pk))).scalar()

    @expose("/<int:pk>/read", methods=["POST"])
    @protect()
    @safe
    @permission_name("read")
    def read(self, pk: int):
        """Read parameters from the meter now.
        ---
        post:
          summary: Read OBIS parameters (by key or OBIS code) from the meter
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    points: {type: array, items: {type: string}, example: [energy_import, "0.0.1.0.0.255"]}
                    from: {type: string, format: date-time, description: profile range start}
                    to: {type: string, format: date-time, description: profile range end}
          responses:
            200: {description: "values with units and read times"}
            404: {description: meter not found}
            422: {description: unknown parameter}
            503: {description: meter offline or not answering}
        """
        try:  # the user's scope in the statement that loads the meter for the read: one SELECT, not two
            meter = load_meter_view(pk, scope=self._scoped)
        except NotFound:
            return self.response_404()
        body = request.get_json(silent=True) or {}
        return self.response(200, **read_now(pk, body.get("points"), body.get("from"), body.get("to"), view=meter))

    @expose("/<int:pk>/collect", methods=["POST"])
    @protect()
    @safe
    @permission_name("read")
    def collect_now(self, pk: int):
        """Collect from the meter now (load profile, daily snapshot, billing, events or clock sync).
        ---
        post:
          summary: Run one collection on demand and return what was stored
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema: {type: object, properties: {kind: {type: string, example: load_profile}}}
          responses:
            200: {description: collection result}
            503: {description: meter offline or not answering}
        """
        from app.services.meter_access import run_on_meter
        from app.services.operations import ON_DEMAND, SCHEDULE_OPERATIONS

        if self._visible_meter(pk) is None:
            return self.response_404()
        kind = (request.get_json(silent=True) or {}).get("kind", "load_profile")
        if kind not in SCHEDULE_OPERATIONS:
            return self.response_400(message=f"kind must be one of {', '.join(SCHEDULE_OPERATIONS)}")
        result = run_on_meter(pk, SCHEDULE_OPERATIONS[kind], priority=ON_DEMAND)
        audit.record("collect", "meter", pk, f"on-demand {kind}")
        db.session.commit()
        return self.response(200, kind=kind, result=result)

    @expose("/<int:pk>/gaps", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def gaps(self, pk: int):
        """Missing load-profile intervals of the meter (default: the last 7 days).
        ---
        get:
          summary: Missing 15/30-minute intervals as [from, to] ranges
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          - {in: query, name: from, schema: {type: string, format: date-time}}
          - {in: query, name: to, schema: {type: string, format: date-time}}
          - {in: query, name: profile, schema: {type: string, enum: [load_profile, daily]}}
          responses:
            200: {description: missing ranges}
        """
        import datetime as dt

        from app.models.types import UTC
        from app.services.gaps import as_ranges, missing_times

        meter = self._visible_meter(pk)
        if meter is None:
            return self.response_404()
        try:
            end = dt.datetime.fromisoformat(request.args["to"]) if "to" in request.args else dt.datetime.now(UTC)
            start = (dt.datetime.fromisoformat(request.args["from"]) if "from" in request.args
                     else end - dt.timedelta(days=7))
        except ValueError:
            return self.response_400(message="from/to must be ISO 8601 date-times with an offset")
        if start.tzinfo is None or end.tzinfo is None:
            return self.response_400(message="from/to need a time zone offset")
        profile = request.args.get("profile", "load_profile")
        if profile not in ("load_profile", "daily"):
            return self.response_400(message="profile must be load_profile or daily")
        found, times = missing_times(meter, start, end, profile)
        ranges = as_ranges(times, found.period)
        return self.response(200, meter_id=pk, profile=profile, period_minutes=found.seconds // 60,
                             captures=list(found.captures), missing_intervals=len(times),
                             ranges=[{"from": a.isoformat(), "to": b.isoformat()} for a, b in ranges])

    @expose("/<int:pk>/credentials", methods=["PUT"])
    @protect()
    @safe
    @permission_name("credentials")
    def credentials(self, pk: int):
        """Set the meter's DLMS secrets (write-only; the answer says what is set, never the values).
        ---
        put:
          summary: Set LLS password and/or HLS keys (hex) of the meter
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    password: {type: string}
                    block_cipher_key: {type: string, description: 32 hex digits}
                    authentication_key: {type: string, description: 32 hex digits}
                    system_title: {type: string, description: 16 hex digits}
          responses:
            200: {description: which secrets are set}
            422: {description: malformed key}
        """
        meter = self._visible_meter(pk)
        if meter is None:
            return self.response_404()
        body = request.get_json(silent=True) or {}
        meter.secret = store_credentials(meter.secret, **{k: body[k] for k in CREDENTIAL_FIELDS if k in body})
        audit.record("credentials", "meter", meter.id, f"credentials set for {meter.number}",
                     details={"fields": sorted(k for k in CREDENTIAL_FIELDS if k in body)})
        db.session.commit()
        return self.response(200, **describe(meter.secret))

    @expose("/<int:pk>/credentials/rotate", methods=["POST"])
    @protect()
    @safe
    @permission_name("credentials")
    def rotate_password(self, pk: int):
        """Give an LLS meter a password of its own: generated, written into the meter, stored (never shown).
        ---
        post:
          summary: Generate a per-meter LLS password and write it into the meter
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: which secrets are set (never the values)}
            409: {description: the meter does not use LLS}
            503: {description: meter offline or not answering}
        """
        from app.services.meter_access import run_on_meter

        if self._visible_meter(pk) is None:
            return self.response_404()
        return self.response(200, **run_on_meter(pk, "rotate_lls_password"))

    @expose("/credentials/import", methods=["POST"])
    @protect()
    @safe
    @permission_name("credentials")
    def import_passwords(self):
        """Import per-meter LLS passwords from CSV (columns meter_number, password): all rows or none.
        ---
        post:
          summary: Import per-meter LLS passwords (write-only)
          requestBody:
            content:
              multipart/form-data:
                schema: {type: object, properties: {file: {type: string, format: binary}}}
              text/csv:
                schema: {type: string}
          responses:
            200: {description: how many meters were updated}
            422: {description: every problem by line and column}
        """
        from app.services.identity import import_lls_passwords

        upload = request.files.get("file")
        data = upload.read() if upload is not None else request.get_data()
        return self.response(200, **import_lls_passwords(data))
