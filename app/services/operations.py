"""Every operation the HES runs against a meter, in one table: its name, the function that runs it inside an
associated session, and its priority at the meter's gate (see ``meter_gate``).

Who asks for what:
- schedules run ``SCHEDULE_OPERATIONS[kind]`` (a Huey task per meter, ``app.tasks.jobs.collect``);
- the "collect now" API runs the same operations at on-demand priority;
- commands run the row ``_operation`` in ``app.services.commands.queue`` picks for their kind;
- the read API runs ``read_points``; the credentials API runs ``rotate_lls_password``; the Define Brand form
  runs ``learn_brand``.
A function is named "module:function" so this table imports nothing until an operation runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.services import ServiceError

# Priorities at a meter's gate: higher goes first; URGENT and above borrow a firmware transfer's session.
ON_DEMAND = 100
COMMAND = 50
FIRMWARE = 20
SCHEDULE = 10


@dataclass(frozen=True)
class Operation:
    """One meter operation: ``function(session, meter, **kwargs) -> JSON-able``. ``meter`` is a ``MeterView``
    (plain data, no ORM: ``app.services.meter_view``) for operations marked ``view``, else the ORM ``Meter``."""

    name: str
    function: str
    priority: int
    doc: str
    view: bool = False

    def load(self) -> Callable[..., Any]:
        """The function itself."""
        module, _, attr = self.function.partition(":")
        return getattr(importlib.import_module(module), attr)


OPERATIONS: dict[str, Operation] = {op.name: op for op in (
    # name                    function                                              priority   what it does
    Operation("read_points", "app.services.meter_ops:read_points", ON_DEMAND,
              "read brand points now (Meter Reading page, read API)", view=True),
    Operation("rotate_lls_password", "app.services.identity:rotate_lls_password", ON_DEMAND,
              "write a new per-meter LLS password"),
    Operation("learn_brand", "app.services.brand_learn:learn_brand", ON_DEMAND,
              "read a meter's objects and propose a brand (Define Brand form)"),
    Operation("command_relay", "app.services.commands.ops:relay", COMMAND, "disconnect / reconnect"),
    Operation("command_token", "app.services.commands.ops:token", COMMAND, "load a prepaid token"),
    Operation("command_set", "app.services.commands.ops:set_values", COMMAND, "write settings, read back"),
    Operation("command_load_limit", "app.services.commands.ops:load_limit", COMMAND, "set the load limit"),
    Operation("command_clock_sync", "app.services.commands.ops:clock_sync", COMMAND, "set the clock (command)"),
    Operation("command_read", "app.services.commands.ops:read", COMMAND, "read points (command)"),
    Operation("command_firmware", "app.services.firmware:transfer_image", FIRMWARE,
              "image transfer; lends its session to urgent operations between blocks"),
    Operation("collect_load_profile", "app.services.collection:collect_load_profile", SCHEDULE, "load profile"),
    Operation("collect_daily_snapshot", "app.services.collection:collect_daily_snapshot", SCHEDULE,
              "daily snapshots"),
    Operation("collect_billing", "app.services.collection:collect_billing", SCHEDULE, "monthly billing rows"),
    Operation("collect_events", "app.services.collection:collect_events", SCHEDULE, "event logs"),
    Operation("sync_clock", "app.services.collection:sync_clock", SCHEDULE, "measure drift, set the clock"),
    Operation("health_probe", "app.services.health:probe", SCHEDULE, "dial-out health check: associate"),
)}

# Which operation a schedule kind runs (health_check is not per meter operation alone: see services.health).
SCHEDULE_OPERATIONS: dict[str, str] = {
    "load_profile": "collect_load_profile",
    "events": "collect_events",
    "daily_snapshot": "collect_daily_snapshot",
    "billing": "collect_billing",
    "clock_sync": "sync_clock",
}


def operation(name: str) -> Operation:
    """The table row of an operation (a 500-class error names an unknown one)."""
    try:
        return OPERATIONS[name]
    except KeyError as exc:
        raise ServiceError(f"Unknown meter operation {name!r}.", status=500) from exc
