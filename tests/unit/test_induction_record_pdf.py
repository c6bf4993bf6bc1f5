"""The signed induction record's PDF: one A4 page of extractable Chinese text, the signature
image, and a QR code that is also a link to the record's verification page."""

from __future__ import annotations

import base64
import io
from typing import Any

import pypdf
import pytest
from PIL import Image

from infra.documents import render_pdf
from infra.qr import qr_svg, svg_data_uri
from training.records import PDF_TEMPLATE

VERIFICATION_URL = "https://portal.example.cn/v/eyJ0IjoiaW5kdWN0aW9uIn0.sample-token"


def _png_data_uri() -> str:
    image = Image.new("L", (60, 20), 255)
    for x in range(5, 55):
        image.putpixel((x, 10), 0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@pytest.fixture
def context() -> dict[str, Any]:
    """Every key :func:`training.records.record_context` builds, with sample values."""
    return {
        "company_name": "江苏扬子江石化集团有限公司",
        "plant_name": "南京炼化厂",
        "title": "入厂安全教育",
        "version": 3,
        "published_at": "2026-11-01 09:30",
        "content_hash": "a" * 64,
        "sections": ["厂区安全须知", "动火作业风险", "应急疏散与集合点"],
        "worker_name": "张三丰",
        "id_number_masked": "3301**********123X",
        "contractor_name": "南京鑫泰安装工程有限公司",
        "score": 90,
        "pass_mark": 80,
        "questions": 10,
        "typed_name": "张三丰",
        "consent": "本人已阅读并理解上述内容，独立完成答题，并将在作业中遵守。",
        "signed_at": "2026-11-28 16:42",
        "timezone": "Asia/Shanghai",
        "valid_until": "2027-11-27",
        "assisted": True,
        "ip_address": "203.0.113.7",
        "user_agent": "Mozilla/5.0 (Linux; Android 14; HUAWEI Mate 60) AppleWebKit/537.36",
        "position": "32.060255, 118.796877 (±12 m)",
        "record_hash": "b" * 64,
        "ledger_seq": 1287,
        "signature_data_uri": _png_data_uri(),
        "qr_data_uri": svg_data_uri(qr_svg(VERIFICATION_URL)),
        "verification_url": VERIFICATION_URL,
    }


def _page(pdf: bytes) -> pypdf.PageObject:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    return reader.pages[0]


def _compact(text: str) -> str:
    return "".join(text.split())


def test_the_record_prints_its_facts_in_chinese(context: dict[str, Any]) -> None:
    text = _compact(_page(render_pdf(PDF_TEMPLATE, context)).extract_text())
    for printed in (
        "入厂安全教育培训记录",
        context["worker_name"],
        context["title"],
        context["contractor_name"],
        context["id_number_masked"],
        context["valid_until"],
        "扫码核验记录真伪",
        context["record_hash"],
        context["content_hash"],
        str(context["ledger_seq"]),
    ):
        assert printed in text, printed


def test_the_qr_code_links_to_the_verification_page(context: dict[str, Any]) -> None:
    page = _page(render_pdf(PDF_TEMPLATE, context))
    links = [
        annotation.get_object()
        for annotation in page.get("/Annots", [])
        if annotation.get_object().get("/Subtype") == "/Link"
    ]
    # WeasyPrint annotates the link and the image inside it, over the same area.
    assert links
    assert {link["/A"]["/URI"] for link in links} == {VERIFICATION_URL}
    assert len({tuple(float(v) for v in link["/Rect"]) for link in links}) == 1


def test_the_signature_and_qr_code_are_drawn(context: dict[str, Any]) -> None:
    page = _page(render_pdf(PDF_TEMPLATE, context))
    # The signature is a raster image; the QR code is vector (an SVG drawn as paths).
    assert len(page.images) == 1


def test_a_record_signed_alone_without_position(context: dict[str, Any]) -> None:
    context |= {"assisted": False, "position": None, "ip_address": "", "user_agent": ""}
    text = _compact(_page(render_pdf(PDF_TEMPLATE, context)).extract_text())
    assert "本人手机签署" in text and "未提供" in text
