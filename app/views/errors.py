"""One place where a service error becomes an answer: JSON with its status for APIs (``@safe`` below replaces FAB's,
which would turn it into a 500), a message and the page the user came from for pages. The session is rolled back
either way, so nothing half-done is committed later in the request."""

from __future__ import annotations

import functools
import logging

from flask import Response, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import BadRequest, HTTPException, InternalServerError, ServiceUnavailable

from app.extensions import db
from app.services import ServiceError, database_unavailable

log = logging.getLogger(__name__)


def error_json(exc: ServiceError) -> tuple[Response, int]:
    """A service error as the API's JSON answer (with ``Retry-After`` when it says when to try again)."""
    response = jsonify({"message": exc.message, "errors": exc.errors})
    if getattr(exc, "retry_after", None):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response, exc.status


def domain_errors(method):
    """For the methods FAB calls from inside its own ``@safe`` (ModelRestApi's ``post_headless``, ``put_headless``):
    a ``ServiceError`` is rolled back and answered with its status, a unique conflict with 422, a database that
    went away with 503 and Retry-After."""

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
        except Exception as exc:  # FAB's own ``@safe`` would answer a database that went away with a 500
            unavailable = _unavailable(exc)
            if unavailable is None:
                raise
            return error_json(unavailable)

    return wrapper


def rollback_quietly() -> None:
    """Roll the session back; on a connection that is gone the rollback fails too, and the pool replaces it."""
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 — the answer is already an error; a failed rollback must not hide it
        log.warning("rollback failed (connection lost)", exc_info=True)


def _unavailable(exc: Exception):
    """A database that went away, as the ``DatabaseUnavailable`` to answer (logged in one line, rolled back),
    else None."""
    unavailable = database_unavailable(exc)
    if unavailable is not None:
        log.warning("database unavailable on %s: %s", request.path,
                    str(getattr(exc, "orig", None) or exc).splitlines()[0])
        rollback_quietly()
    return unavailable


def safe(view):
    """FAB's ``@safe`` for HES APIs: a ``ServiceError`` is rolled back and answered with its own status and message;
    a malformed request is a 400; a database that went away a 503 to retry; anything else is logged, rolled back
    and answered 500."""

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
        except Exception as exc:
            unavailable = _unavailable(exc)
            if unavailable is not None:
                return error_json(unavailable)
            log.exception("unhandled error in %s", request.path)
            rollback_quietly()
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


def _error_text(status: int) -> tuple[str, str]:
    """Heading and explanation of an error page, in the reader's words."""
    texts = {
        403: (gettext("You do not have access to this page"),
              gettext("Your role does not include this page. Ask an administrator to add it to your role if you "
                      "need it.")),
        404: (gettext("Page not found"),
              gettext("The address may be mistyped, or the record was deleted or is not visible to you.")),
        429: (gettext("Too many attempts"),
              gettext("Too many requests or failed sign-ins came from here in a short time. Wait a few minutes, "
                      "then try again.")),
        503: (gettext("The database is unavailable for a moment"),
              gettext("It is restarting or failing over. Nothing you entered was saved half-way; try again in a few "
                      "seconds.")),
        500: (gettext("Something went wrong on our side"),
              gettext("The error was logged for the administrators. Nothing you entered was saved half-way; try "
                      "again, and tell an administrator if it keeps happening.")),
    }
    return texts.get(status) or (gettext("The request could not be completed"), "")


def _actions(status: int) -> list[tuple[str, str, bool]]:
    """Where to go from an error page: home (or sign in), and back where the user came from."""
    from app.views.stock import safe_return_url

    signed_in = getattr(current_user, "is_authenticated", False)
    home = current_app.appbuilder.get_url_for_index
    actions = [(gettext("Go to the start page"), home, True)] if signed_in else [
        (gettext("Sign in"), url_for("AuthDBView.login"), True)]
    back = safe_return_url(request.referrer)
    if back and back.split("?")[0] != request.path:
        actions.append((gettext("Back to the previous page"), back, False))
    return actions


def handle_http_error(exc: HTTPException):
    """403, 404, 429, 500 and 503 as a branded page that says what happened and where to go (JSON for APIs)."""
    status = exc.code or 500
    if status >= 500:
        rollback_quietly()
    retry_after = exc.get_response().headers.get("Retry-After") if status in (429, 503) else None
    if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
        response = jsonify(message=exc.description if status < 500 or status == 503 else "Internal error")
        response.status_code = status
    else:
        response = _error_page(status)
    if retry_after:
        response.headers["Retry-After"] = retry_after
    return response


def _error_page(status: int) -> Response:
    """The branded error page (a plain one when the layout itself cannot be rendered)."""
    heading, explanation = _error_text(status)
    try:
        body = render_template("hes/error.html", appbuilder=current_app.appbuilder, status=status, heading=heading,
                               explanation=explanation,
                               actions=_actions(status), title=heading)
    except Exception:  # the layout itself failed (e.g. the database is down): a plain page still answers
        log.exception("error page could not be rendered")
        body = f"<!doctype html><title>{status}</title><h1>{status} {heading}</h1><p>{explanation}</p>"
    return current_app.make_response((body, status))


def handle_unexpected_error(exc: Exception):
    """Anything unhandled: logged, rolled back, and the branded 500 page."""
    if isinstance(exc, HTTPException):
        return handle_http_error(exc)
    unavailable = _unavailable(exc)
    if unavailable is not None:
        return handle_http_error(ServiceUnavailable(unavailable.message, retry_after=unavailable.retry_after))
    log.exception("unhandled error on %s", request.path)
    return handle_http_error(InternalServerError())


def register(appbuilder) -> None:
    """The page-side handlers (APIs use ``@safe`` from here)."""
    current_app.register_error_handler(ServiceError, handle_service_error)
    for status in (403, 404, 405, 429):
        current_app.register_error_handler(status, handle_http_error)
    current_app.register_error_handler(Exception, handle_unexpected_error)
