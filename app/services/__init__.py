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
