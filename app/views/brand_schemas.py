"""OpenAPI shape of a brand definition (validated by app.services.brand_definition.normalise)."""

from __future__ import annotations

from marshmallow import Schema, fields

from app.services.brand_definition import ACCESS, DATATYPES, GROUPS, ROLES


class BrandPointSchema(Schema):
    """One point; for a standard OBIS code only ``obis`` is needed (a bare known object gives all its points)."""

    key = fields.String(metadata={"description": "lower_snake_case, unique in the brand", "example": "energy_import"})
    name = fields.String(metadata={"example": "Active energy import"})
    obis = fields.String(required=True, metadata={"example": "1.0.1.8.0.255"})
    class_id = fields.Integer(metadata={"description": "COSEM interface class (inferred for standard codes)",
                                        "example": 3})
    attribute = fields.Integer(allow_none=True, metadata={"example": 2})
    method = fields.Integer(allow_none=True, metadata={"description": "for access x"})
    unit = fields.String(allow_none=True, metadata={"example": "Wh"})
    scaler = fields.Integer(allow_none=True, metadata={"example": 0})
    datatype = fields.String(allow_none=True, metadata={"enum": list(DATATYPES),
                                                        "description": "required for writable points"})
    group = fields.String(metadata={"enum": list(GROUPS)})
    access = fields.String(metadata={"enum": list(ACCESS)})


class BrandConnectionSchema(Schema):
    """Connection defaults of the brand's meters (a meter may override each)."""

    interface = fields.String(metadata={"enum": ["wrapper", "hdlc"], "example": "wrapper"})
    client_address = fields.Integer(metadata={"example": 1})
    server_address = fields.Integer(metadata={"example": 1})
    auth_level = fields.String(metadata={"example": "low"})
    profile_period_minutes = fields.Integer(metadata={"example": 15})
    push_policy = fields.String(metadata={"enum": ["auto", "plain", "authenticated"]})
    profile_read = fields.String(metadata={"enum": ["auto", "entry"], "description": (
        "auto: profiles by date range, by entry where the meter gets ranges wrong; entry: by entry number "
        "from the last entry read")})


class BrandRolesSchema(Schema):
    """Roles name points (by key or OBIS code); standard OBIS codes fill them in by themselves."""

    load_profile = fields.String(metadata={"example": "load_profile"})
    daily_profile = fields.String()
    billing_profile = fields.String()
    event_logs = fields.Dict(metadata={"description": "log name -> point key, or {point, codes: {code: type}}",
                                       "example": {"standard": {"point": "standard_event_log",
                                                                "codes": {"1": "power_fail"}}}})
    relay = fields.String()
    token_gateway = fields.String()
    credit = fields.String()
    account = fields.String()
    clock = fields.String()
    image_transfer = fields.String()
    push_setup = fields.String()
    limiter = fields.String()
    serial_number = fields.String()
    logical_device_name = fields.String()
    push_objects = fields.List(fields.String(), metadata={"example": ["serial_number", "clock", "energy_import"]})


assert set(BrandRolesSchema().fields) == set(ROLES)


class BrandDefinitionSchema(Schema):
    """A whole brand: POST takes all of it, PUT/PATCH the sections to change."""

    name = fields.String(required=True, metadata={"example": "acme_x1"})
    title = fields.String(metadata={"example": "ACME X1"})
    manufacturer = fields.String(allow_none=True)
    connection = fields.Nested(BrandConnectionSchema)
    points = fields.List(fields.Nested(BrandPointSchema))
    points_csv = fields.String(metadata={"description": "instead of points: a pasted list, CSV with a header or "
                                         "bare lines 'OBIS[, class[, attribute]][, datatype][, name]'"})
    roles = fields.Nested(BrandRolesSchema)
    event_codes = fields.Dict(metadata={"description": "code -> event type, for every log",
                                        "example": {"1": "power_fail", "2": "power_restore"}})


class DefinitionErrorSchema(Schema):
    """A 422 answer: a message and every error, naming the point and the field."""

    message = fields.String()
    errors = fields.List(fields.Dict(), metadata={"example": [
        {"point": "energy_import", "field": "scaler", "reason": "must be between -127 and 127", "value": "300"}]})
