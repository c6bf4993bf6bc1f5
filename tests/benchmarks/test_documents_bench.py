"""PDF and QR generation against WeasyPrint's and qrcode's defaults on the same input."""

from __future__ import annotations

import dataclasses
import io
import json
import uuid
from typing import Any

import pytest
import qrcode
from jinja2 import Environment, FileSystemLoader
from weasyprint import HTML

from infra.documents import BASE_STYLESHEET, PDF_TEMPLATES_DIR, render_pdf
from infra.qr import VerificationRef, qr_svg, svg_data_uri, verification_url
from infra.settings import get_settings
from tests.benchmarks.report import median_seconds, record

pytestmark = pytest.mark.benchmark

TEMPLATE = "permit_sample.html"
PDF_TARGET_SECONDS = 0.3
QR_TARGET_RATIO = 2.0


def _verification_url() -> str:
    settings = dataclasses.replace(get_settings(), base_url="https://portal.example.com")
    return verification_url(settings, VerificationRef(uuid.uuid4(), "permit", uuid.uuid4(), 1))


def _permit_context() -> dict[str, Any]:
    context = json.loads((PDF_TEMPLATES_DIR / "permit_sample.json").read_text(encoding="utf-8"))
    context["qr_data_uri"] = svg_data_uri(qr_svg(_verification_url()))
    return context


def _default_weasyprint_html(context: dict[str, Any]) -> str:
    """The same page as one HTML string, set in the system CJK font, as a default render gets it."""
    html = (
        Environment(loader=FileSystemLoader(PDF_TEMPLATES_DIR), autoescape=True)
        .get_template(TEMPLATE)
        .render(context)
    )
    css = "\n".join(
        (PDF_TEMPLATES_DIR / name).read_text(encoding="utf-8")
        for name in (BASE_STYLESHEET, "permit_sample.css")
    )
    plain_font = 'html { font-family: "Noto Sans CJK SC"; }'
    return html.replace("</head>", f"<style>{css}\n{plain_font}</style></head>", 1)


def test_pdf_permit_warm_s() -> None:
    context = _permit_context()
    baseline_html = _default_weasyprint_html(context)

    # The first render of a process loads fonts (and on a new machine prepares the subset).
    ours = median_seconds(lambda: render_pdf(TEMPLATE, context), runs=10, warmup=2)
    baseline = median_seconds(lambda: HTML(string=baseline_html).write_pdf(), runs=3)

    result = record(
        "pdf_permit_warm_s",
        unit="s",
        ours=ours,
        baseline=baseline,
        target=f"ours <= {PDF_TARGET_SECONDS} s",
        meets=ours <= PDF_TARGET_SECONDS,
    )
    assert result["meets"]


def test_qr_svg_ms() -> None:
    url = _verification_url()

    def default_png() -> bytes:
        buffer = io.BytesIO()
        qrcode.make(url).save(buffer)
        return buffer.getvalue()

    ours = median_seconds(lambda: qr_svg(url), runs=30) * 1000
    baseline = median_seconds(default_png, runs=30) * 1000

    result = record(
        "qr_svg_ms",
        unit="ms",
        ours=ours,
        baseline=baseline,
        target=f"ours <= {QR_TARGET_RATIO:g} x baseline (qrcode's default PNG)",
        meets=ours <= QR_TARGET_RATIO * baseline,
    )
    assert result["meets"]
