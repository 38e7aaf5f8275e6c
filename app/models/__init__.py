"""All HES models, imported here so Alembic and the app see every table."""

from app.models.analytics import (
    Investigation,
    InvestigationNote,
    InvestigationOutcome,
    InvestigationState,
    RuleFinding,
)
from app.models.audit import AuditLog, Setting, UserPreference
from app.models.collection import (
    SCHEDULE_KINDS,
    CollectionCursor,
    Delivery,
    QuarantinedRow,
    Schedule,
    Subscription,
)
from app.models.commands import Command, CommandJob, CommandState
from app.models.comms import CommsNode, HesProcess, PushFailure, UnregisteredConnection
from app.models.events import Alert, AlertState, Event, Severity
from app.models.fleet import (
    Area,
    AreaKind,
    AuthLevel,
    CommMode,
    Customer,
    Interface,
    Meter,
    MeterBrand,
    MeterSecret,
    MeterStatus,
    ObisPoint,
    PushPolicy,
    RelayState,
    Sim,
    SimStatus,
)
from app.models.imports import ImportJob
from app.models.onboarding import BrandVersion, TraceFrame
from app.models.readings import Channel, Quality, Reading, ReadingRevision, Source
from app.models.remote import FirmwareImage, FirmwareTransfer, JobTracking
from app.models.rollups import (
    ConsumptionAreaDaily,
    ConsumptionDaily,
    ConsumptionDailyRunning,
    ConsumptionHourly,
    EnergyQuarter,
)

__all__ = [
    "ImportJob",
    "BrandVersion",
    "TraceFrame",
    "PushFailure",
    "PushPolicy",
    "EnergyQuarter",
    "Investigation",
    "InvestigationNote",
    "InvestigationOutcome",
    "InvestigationState",
    "RuleFinding",
    "SCHEDULE_KINDS",
    "CollectionCursor",
    "Delivery",
    "QuarantinedRow",
    "Schedule",
    "Subscription",
    "ConsumptionAreaDaily",
    "ConsumptionDaily",
    "ConsumptionDailyRunning",
    "ConsumptionHourly",
    "CommsNode",
    "HesProcess",
    "UnregisteredConnection",
    "Alert",
    "AlertState",
    "Area",
    "AreaKind",
    "AuditLog",
    "AuthLevel",
    "Channel",
    "CommMode",
    "Command",
    "CommandJob",
    "CommandState",
    "Customer",
    "Event",
    "FirmwareImage",
    "FirmwareTransfer",
    "Interface",
    "JobTracking",
    "Meter",
    "MeterBrand",
    "MeterSecret",
    "MeterStatus",
    "ObisPoint",
    "Quality",
    "Reading",
    "ReadingRevision",
    "RelayState",
    "Setting",
    "Severity",
    "Sim",
    "SimStatus",
    "Source",
    "UserPreference",
]
