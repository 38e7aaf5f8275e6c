"""A profile read that came back empty while the meter holds entries in the window is a failure: it is
retried (with the unreachable-meter backoff) and visible as a "profile read failed" alert with the
meter's reason, resolved by itself when a retry reads the profile."""

from __future__ import annotations

from app.comms.session import ProfileReadError
from app.models import Severity
from app.services.alerts import raise_alert, resolve_automatically

ALERT_TYPE = "profile_read_failed"


def profile_read_error(exc: BaseException | None) -> ProfileReadError | None:
    """The ProfileReadError behind an exception (services wrap DLMS errors), if there is one."""
    while exc is not None:
        if isinstance(exc, ProfileReadError):
            return exc
        exc = exc.__cause__
    return None


def profile_read_failed(meter_id: int, kind: str, error: ProfileReadError, attempt: int, retrying: bool) -> None:
    """Raise (or fold into) the meter's "profile read failed" alert, saying why and whether it is retried."""
    then = f"retry {attempt + 1} follows" if retrying else f"gave up after {attempt + 1} attempts"
    title = f"{kind.replace('_', ' ')} read failed ({then}): {error.message}"
    raise_alert(meter_id, ALERT_TYPE, title[:200], severity=Severity.warning, kind="comms",
                details={"kind": kind, "attempt": attempt + 1, "retrying": retrying, "reason": error.message})


def profile_read_recovered(meter_id: int, kind: str) -> None:
    """A retry read the profile: the failure alert resolves by itself."""
    resolve_automatically(meter_id, ALERT_TYPE, f"{kind.replace('_', ' ')} read on retry")
