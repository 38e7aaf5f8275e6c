"""One command service for every remote operation (relay, token, firmware, settings, reads, clock, load
limit): validated, queued, sent once, read back, audited, and pushed live."""

from __future__ import annotations

from app.services import firmware  # noqa: F401  (registers the firmware operation)
from app.services.commands import ops  # noqa: F401  (registers the meter operations)
from app.services.commands.history import (
    command_select,
    export_audit,
    export_commands,
    token_history,
    wait_for_outcome,
)
from app.services.commands.jobs import cancel_job, create_job, get_job, job_commands, job_dict, list_jobs
from app.services.commands.kinds import CHANGING, KINDS, TOKEN_STATUS, normalise_token
from app.services.commands.queue import (
    as_dict,
    cancel,
    create_command,
    execute,
    expire_if_due,
    on_meter_status,
    run_pending,
    sweep,
)

__all__ = [
    "CHANGING", "KINDS", "TOKEN_STATUS", "as_dict", "cancel", "cancel_job", "command_select", "create_command",
    "create_job", "execute", "expire_if_due", "export_audit", "export_commands", "get_job", "job_commands", "job_dict",
    "list_jobs", "normalise_token", "on_meter_status", "run_pending", "sweep", "token_history", "wait_for_outcome",
]
