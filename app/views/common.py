"""Pieces shared by the views: CSV responses (service errors are answered in app/views/errors.py)."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Response, stream_with_context


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
