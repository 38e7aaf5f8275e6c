"""Content-Security-Policy: scripts only from this site's files or with this answer's nonce (FAB's stock templates
carry ``nonce="{{ csp_nonce() }}"``; HES pages keep their scripts in ``app/static``). Nothing loads from another
host, no inline event handlers, no ``eval``, no framing by other sites."""

from __future__ import annotations

import secrets

from flask import Flask, current_app, g

# Styles may be inline: FAB's widgets, select2 and Chart.js set style attributes. Scripts may not.
POLICY = ("default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
          "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
          "form-action 'self'; frame-ancestors 'self'")


def csp_nonce() -> str:
    """This answer's script nonce (one per request)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return g.csp_nonce


def content_security_policy(response):
    """Send the policy on every answer (APIs included: a JSON body opened in a tab runs nothing either)."""
    response.headers.setdefault("Content-Security-Policy", POLICY.format(nonce=csp_nonce()))
    return response


def install(app: Flask) -> None:
    """The nonce for templates and the header on answers."""
    app.add_template_global(csp_nonce, "csp_nonce")
    app.after_request(content_security_policy)


def register(appbuilder) -> None:
    """Installed with the views (FAB's templates look the nonce up as ``csp_nonce``)."""
    install(current_app)
