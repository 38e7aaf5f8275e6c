"""Business logic shared by every edge (views, REST API, tasks, CLI)."""

# The largest row id the API accepts: HES tables key on INTEGER, which PostgreSQL holds in 32 bits. A larger number
# from a client is no row (404/422), not a number the database refuses with an error (a 500).
MAX_ID = 2**31 - 1


class ServiceError(Exception):
    """A domain error that every edge turns into its own kind of answer."""

    status = 400

    def __init__(self, message: str, *, errors: list | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or []
        if status is not None:
            self.status = status


class NotFound(ServiceError):
    """The object asked for does not exist (or is not visible to this user)."""

    status = 404


class Forbidden(ServiceError):
    """The user may not do this."""

    status = 403


class TooManyRequests(ServiceError):
    """Over a rate limit; ``retry_after`` is how many seconds until the next attempt is accepted."""

    status = 429

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class DatabaseUnavailable(ServiceError):
    """The database went away for a moment (a restart, a failover, a lost connection, SQLite busy): nothing was
    saved half-way and the same request can be sent again after ``retry_after`` seconds."""

    status = 503
    retry_after = 5

    def __init__(self):
        super().__init__("The database is unavailable for a moment (restarting, failing over or busy); nothing was "
                         f"saved half-way. Try again in {self.retry_after} seconds.")


def database_unavailable(exc: BaseException) -> DatabaseUnavailable | None:
    """``exc`` as a ``DatabaseUnavailable`` when it says the database went away for a moment, else None: an
    invalidated connection, a server's ``OperationalError`` (shutting down, refused, dropped), SQLite locked or
    busy. SQLite raises ``OperationalError`` for a missing table or column too: those are faults, not a moment."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    if not isinstance(exc, DBAPIError):
        return None
    if exc.connection_invalidated:
        return DatabaseUnavailable()
    if isinstance(exc, OperationalError):
        if type(exc.orig).__module__ != "sqlite3" or any(word in str(exc.orig) for word in ("locked", "busy")):
            return DatabaseUnavailable()
    return None
