"""Pieces shared by the views: labels, CSV responses, service-error handling."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Response, jsonify, stream_with_context

from app.services import ServiceError


def csv_response(chunks: Iterator[str], filename: str) -> Response:
    """Stream CSV text as a download (UTF-8 with BOM so spreadsheets read accents right)."""

    def body():
        yield "\ufeff"
        yield from chunks

    return Response(
        stream_with_context(body()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def error_json(exc: ServiceError) -> tuple[Response, int]:
    """A service error as the API's JSON answer."""
    return jsonify({"message": exc.message, "errors": exc.errors}), exc.status
