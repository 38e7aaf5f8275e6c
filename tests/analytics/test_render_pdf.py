"""The report renderer's children (``render_pdf``): real processes, real xhtml2pdf and matplotlib."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from app.services.reports import render_pdf
from app.services.reports.render_pdf import Chart, RenderError, in_child, pdf_of, png_of


def test_pdf_of_renders_the_html_in_a_child():
    body = pdf_of("<h1>Energy Consumption</h1><p>Ward A: 1234.500 kWh</p>")
    assert body.startswith(b"%PDF")
    text = PdfReader(io.BytesIO(body)).pages[0].extract_text()
    assert "Energy Consumption" in text and "Ward A: 1234.500 kWh" in text


def test_png_of_draws_a_chart_and_nothing_without_data():
    assert png_of(Chart(["2026-03-01", "2026-03-02"], [("Import (kWh)", [1.0, 2.0])])).startswith(b"\x89PNG")
    assert png_of(Chart(["a"], [("Tamper", [0.0])], kind="donut", colours=["#dc2626"])) is None


def test_a_failed_job_says_why_and_the_child_serves_the_next():
    with pytest.raises(RenderError, match="nonsense rendering failed: RenderError: unknown mode 'nonsense'"):
        in_child("nonsense", b"")
    assert pdf_of("<p>still here</p>").startswith(b"%PDF")


def test_a_child_that_died_is_replaced_by_the_next_render():
    pdf_of("<p>warm</p>")
    for child in render_pdf._idle:
        child.proc.kill()
        child.proc.wait()
    with pytest.raises(RenderError, match="rendering failed"):
        pdf_of("<p>to a dead child</p>")
    assert pdf_of("<p>to a new child</p>").startswith(b"%PDF")


def test_a_child_past_its_timeout_is_stopped_and_replaced():
    table = "".join(f"<tr><td>BM{i:08d}</td><td>{i * 1.5:.3f}</td></tr>" for i in range(3000))
    with pytest.raises(RenderError, match="pdf rendering failed: took longer than 0.05 s"):
        in_child("pdf", f"<table>{table}</table>".encode(), timeout=0.05)
    assert pdf_of("<p>after</p>").startswith(b"%PDF")
