"""PDF rendering: one small page of real, extractable Chinese text, cached by its inputs."""

from __future__ import annotations

import copy
import ctypes.util
import io
import json
import logging
import uuid
from pathlib import Path
from typing import Any

import pypdf
import pytest

from infra import documents
from infra.documents import PDF_TEMPLATES_DIR, render_pdf, render_pdf_cached
from infra.qr import qr_svg, svg_data_uri
from infra.security import TokenSigner
from infra.storage import LocalStorage

TEMPLATE = "permit_sample.html"
# Outside the prepared GB 2312 subset: 龘 is in Noto Sans CJK, 𫖯 (Extension C, a 通用规范汉字) is
# in Noto too but outside the Basic Multilingual Plane, 𠀀 (Extension B) only in fonts-hanazono.
RARE_NAMES = ("王龘", "李𫖯", "张𠀀")


@pytest.fixture
def context() -> dict[str, Any]:
    sample = json.loads((PDF_TEMPLATES_DIR / "permit_sample.json").read_text(encoding="utf-8"))
    sample["qr_data_uri"] = svg_data_uri(qr_svg("https://portal.example.com/v/sample"))
    return sample


def _page(pdf: bytes) -> pypdf.PageObject:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    return reader.pages[0]


def _compact(text: str) -> str:
    # Table cells wrap long text onto several lines.
    return "".join(text.split())


def _printed_strings(context: dict[str, Any]) -> list[str]:
    permit = context["permit"]
    return [
        context["company_name"],
        permit["number"],
        permit["location"],
        permit["content"],
        permit["work_leader"],
        permit["guardian"],
        *(worker["name"] for worker in permit["workers"]),
        *(analysis["gas"] for analysis in context["gas_analyses"]),
        *(measure["text"] for measure in context["measures"]),
        *(signature["signer"] for signature in context["signatures"] if signature["signer"]),
    ]


def test_harfbuzz_subsetter_is_installed() -> None:
    # Without it WeasyPrint subsets fonts with fontTools and a CJK page takes seconds.
    assert ctypes.util.find_library("harfbuzz-subset"), (
        "libharfbuzz-subset0 is missing: run scripts/system-deps.sh"
    )


def test_permit_is_one_small_page_of_real_text(context: dict[str, Any]) -> None:
    for worker, name in zip(context["permit"]["workers"], RARE_NAMES, strict=True):
        worker["name"] = name

    pdf = render_pdf(TEMPLATE, context)

    assert pdf.startswith(b"%PDF-")
    assert len(pdf) < 1_000_000
    text = _compact(_page(pdf).extract_text())
    for printed in _printed_strings(context):
        assert _compact(printed) in text


def test_rare_characters_are_drawn_from_a_font_that_has_them(context: dict[str, Any]) -> None:
    context["permit"]["work_leader"] = "".join(RARE_NAMES)

    page = _page(render_pdf(TEMPLATE, context))

    fonts = [font.get_object() for font in page["/Resources"]["/Font"].values()]
    assert any("Portal-CJK-Common" in font["/BaseFont"] for font in fonts)
    # WeasyPrint replaces the identity encoding by its own CMap when a glyph is missing.
    assert all(font["/Encoding"] == "/Identity-H" for font in fonts)


def test_common_text_uses_only_the_prepared_subset(context: dict[str, Any]) -> None:
    # Without the subscripts of H₂S and O₂, which Noto Sans CJK does not have.
    for analysis, gas in zip(context["gas_analyses"], ("甲烷", "硫化氢", "氧气"), strict=True):
        analysis["gas"] = gas

    page = _page(render_pdf(TEMPLATE, context))

    fonts = [font.get_object()["/BaseFont"] for font in page["/Resources"]["/Font"].values()]
    assert len(fonts) == 1
    assert "Portal-CJK-Common" in fonts[0]


def test_text_is_escaped(context: dict[str, Any]) -> None:
    context["permit"]["content"] = "<b>更换</b> & 焊接"

    text = _page(render_pdf(TEMPLATE, context)).extract_text()

    assert "<b>更换</b> & 焊接" in text


def test_resources_outside_the_document_sources_are_not_read(
    context: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    svg = tmp_path / "qr.svg"
    svg.write_text(qr_svg("https://portal.example.com/v/sample"), encoding="utf-8")
    context["qr_data_uri"] = svg.as_uri()

    with caplog.at_level(logging.ERROR, logger="weasyprint"):
        render_pdf(TEMPLATE, context)
    assert "not a document resource" in caplog.text

    caplog.clear()
    context["qr_data_uri"] = "qr.svg"
    with caplog.at_level(logging.ERROR, logger="weasyprint"):
        render_pdf(TEMPLATE, context, base_url=tmp_path.as_uri() + "/")
    assert caplog.text == ""


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "storage", TokenSigner("k"), "http://x")


def test_cache_returns_the_stored_pdf_for_the_same_inputs(
    storage: LocalStorage, context: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant_id = uuid.uuid4()
    key, pdf = render_pdf_cached(storage, tenant_id, TEMPLATE, context)

    assert key.startswith(f"tenants/{tenant_id}/documents/")
    assert key.endswith(".pdf")
    assert storage.get(key) == pdf

    def render_again(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("rendered although the inputs were unchanged")

    monkeypatch.setattr(documents, "render_pdf", render_again)
    assert render_pdf_cached(storage, tenant_id, TEMPLATE, copy.deepcopy(context)) == (key, pdf)


def test_changed_inputs_make_a_new_document(
    storage: LocalStorage, context: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant_id = uuid.uuid4()
    key, pdf = render_pdf_cached(storage, tenant_id, TEMPLATE, context)

    changed = copy.deepcopy(context)
    changed["permit"]["level"] = "特级动火"
    changed_key, changed_pdf = render_pdf_cached(storage, tenant_id, TEMPLATE, changed)
    assert changed_key != key
    assert changed_pdf != pdf
    assert "特级动火" in _page(changed_pdf).extract_text()

    monkeypatch.setattr(documents, "RENDERER_VERSION", "documents-next")
    assert documents.document_digest(TEMPLATE, context) not in key


def test_documents_of_another_tenant_are_stored_apart(
    storage: LocalStorage, context: dict[str, Any]
) -> None:
    first, _ = render_pdf_cached(storage, uuid.uuid4(), TEMPLATE, context)
    second, _ = render_pdf_cached(storage, uuid.uuid4(), TEMPLATE, context)
    assert first.rsplit("/", 1)[1] == second.rsplit("/", 1)[1]
    assert first != second
