"""The report renderer's child process (``render_pdf``): real children, real xhtml2pdf and matplotlib."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from app.services.reports.render_pdf import Chart, RenderError, in_child, pdf_of, png_of


def test_pdf_of_renders_the_html_in_a_child():
    body = pdf_of("<h1>Energy Consumption</h1><p>Ward A: 1234.500 kWh</p>")
    assert body.startswith(b"%PDF")
    text = PdfReader(io.BytesIO(body)).pages[0].extract_text()
    assert "Energy Consumption" in text and "Ward A: 1234.500 kWh" in text


def test_png_of_draws_a_chart_and_nothing_without_data():
    assert png_of(Chart(["2026-03-01", "2026-03-02"], [("Import (kWh)", [1.0, 2.0])])).startswith(b"\x89PNG")
    assert png_of(Chart(["a"], [("Tamper", [0.0])], kind="donut", colours=["#dc2626"])) is None


def test_a_failing_child_says_why():
    with pytest.raises(RenderError, match=r"exit 2\): usage: python -m app.services.reports.render_pdf"):
        in_child("nonsense", b"")


def test_a_child_past_its_timeout_is_stopped():
    with pytest.raises(RenderError, match="took longer than 0.05 s"):
        in_child("pdf", b"<p>x</p>", timeout=0.05)
