"""One place where a service error becomes an answer: JSON with its status for APIs (``@safe`` below replaces FAB's,
which would turn it into a 500), a message and the page the user came from for pages. The session is rolled back
either way, so nothing half-done is committed later in the request."""

from __future__ import annotations

import functools
import logging

from flask import Response, current_app, flash, jsonify, redirect, request
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import BadRequest

from app.extensions import db
from app.services import ServiceError

log = logging.getLogger(__name__)


def error_json(exc: ServiceError) -> tuple[Response, int]:
    """A service error as the API's JSON answer."""
    return jsonify({"message": exc.message, "errors": exc.errors}), exc.status


def domain_errors(method):
    """For the methods FAB calls from inside its own ``@safe`` (ModelRestApi's ``post_headless``, ``put_headless``):
    a ``ServiceError`` is rolled back and answered with its status, a unique conflict with 422."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except ServiceError as exc:
            db.session.rollback()
            return error_json(exc)
        except IntegrityError:  # a rule (pre_add) queried and autoflushed a duplicate before FAB's own check
            db.session.rollback()
            return error_json(ServiceError("This conflicts with an existing record (a value must be unique).",
                                           status=422))

    return wrapper


def safe(view):
    """FAB's ``@safe`` for HES APIs: a ``ServiceError`` is rolled back and answered with its own status and message;
    a malformed request is a 400; anything else is logged, rolled back and answered 500."""

    @functools.wraps(view)
    def wrapper(self, *args, **kwargs):
        try:
            return view(self, *args, **kwargs)
        except ServiceError as exc:
            db.session.rollback()
            return error_json(exc)
        except BadRequest as exc:
            db.session.rollback()
            return self.response_400(message=str(exc.description or exc))
        except Exception:
            log.exception("unhandled error in %s", request.path)
            db.session.rollback()
            return self.response_500(message="Internal error")

    return wrapper


def handle_service_error(exc: ServiceError):
    """A service error raised by a page (not an API): roll back, say what went wrong, go back where the user was."""
    db.session.rollback()
    if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
        return error_json(exc)
    flash(exc.message, "danger")
    from app.views.stock import safe_return_url

    target = safe_return_url(request.referrer)
    if target and target.split("?")[0] != request.path:
        return redirect(target)
    return redirect(current_app.appbuilder.get_url_for_index)


def register(appbuilder) -> None:
    """The page-side handler (APIs use ``@safe`` from here)."""
    current_app.register_error_handler(ServiceError, handle_service_error)
