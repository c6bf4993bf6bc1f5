"""Every PDF the product makes: a Jinja template under ``infra/templates/pdf`` rendered by
WeasyPrint, and cached in object storage by the hash of its inputs.

A template ``name.html`` is styled by ``base.css`` and, when it exists, ``name.css`` beside it.
Resources load only from ``data:`` URIs, the templates directory and the caller's ``base_url``:
templates print user-supplied text, and a value that ends up in a URL must not make the renderer
read local files or call internal services. The WeasyPrint side lives in
:mod:`infra.pdf_renderer`, imported on the first render.

Speed, measured on the sample permit (A4, a 25-row table of Chinese text, a QR code) against the
target of 0.3 s warm, on the 2-core development machine:

- The 3.6 s (WenQuanYi) to 14 s (Noto Sans CJK) of a default render are WeasyPrint subsetting
  the CJK font with fontTools, its fallback when HarfBuzz's subsetter (``libharfbuzz-subset0``)
  is missing: 7-10 s for Noto's 65,535 glyphs here. ``scripts/system-deps.sh`` installs it, and
  default WeasyPrint then renders the first draft of the permit in 0.4-0.5 s.
- Layout took most of that: automatic table layout measures every cell with Pango first
  (``base.css`` makes tables ``table-layout: fixed``), and qrcode's SVG has WeasyPrint parse a
  path command per module (:mod:`infra.qr` draws runs of modules). Default WeasyPrint renders
  the result in ~0.22 s.
- HarfBuzz still subsets the whole system font for every document (~50 ms, after copying the
  19 MB collection). So a common subset is prepared once per machine with fontTools (GB 2312
  plus Latin and the symbols forms print: ~8,700 glyphs, 1.7 MB, ~4 s, kept in ``var/fonts``)
  and registered with ``@font-face``. The system fonts stay next in the font stack, so a
  character outside the subset (生僻字 in names; fonts-hanazono has CJK Extensions B-F) is drawn
  from them as real text, and only a document holding one embeds a second font. A render takes
  ~0.17 s and its file ~0.13 MB instead of ~0.23 MB.
- Fonts and stylesheets load once per process into one font configuration that every render
  shares; renders take turns because it (a Pango font map and WeasyPrint's caches) is not made
  for concurrent use.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from infra.audit import canonical_json
from infra.storage import ObjectNotFound, ObjectStorage, tenant_key

PDF_TEMPLATES_DIR = Path(__file__).parent / "templates" / "pdf"
BASE_STYLESHEET = "base.css"
# Part of every cache key: bump the number when a change here alters the PDFs a template makes.
RENDERER_VERSION = f"documents-1/weasyprint-{version('weasyprint')}"

# Installed by fonts-noto-cjk (scripts/system-deps.sh); the collection holds SC, TC, JP and KR.
SYSTEM_CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
SYSTEM_CJK_FAMILY = "Noto Sans CJK SC"
# The name base.css puts first in the font stack.
COMMON_FONT_FAMILY = "Portal CJK Common"
TEMPLATES_URL = PDF_TEMPLATES_DIR.as_uri() + "/"

_environment = Environment(
    loader=FileSystemLoader(PDF_TEMPLATES_DIR),
    autoescape=True,
    # A blank where a permit field should be is worse than a failed render.
    undefined=StrictUndefined,
    auto_reload=False,
)


def warm_up() -> None:
    """Prepare the common font subset and load the fonts now, so that the first document after
    a start does not wait for them (seconds on a busy machine)."""
    from infra import pdf_renderer  # on first use: see its docstring

    pdf_renderer.load_fonts()


def render_pdf(
    template_name: str, context: Mapping[str, Any], *, base_url: str | None = None
) -> bytes:
    """Render ``infra/templates/pdf/{template_name}`` with ``context`` to PDF bytes.

    Relative URLs resolve against ``base_url`` (default: the templates directory)."""
    from infra import pdf_renderer  # on first use: see its docstring

    html = _environment.get_template(template_name).render(context)
    return pdf_renderer.write_pdf(html, template_name, base_url)


@cache
def _templates_fingerprint() -> str:
    # Templates extend and include each other and share stylesheets and images, so a change to
    # any file of the directory changes every key; templates only change with a deployment.
    digest = hashlib.sha256()
    for path in sorted(p for p in PDF_TEMPLATES_DIR.rglob("*") if p.is_file()):
        digest.update(path.relative_to(PDF_TEMPLATES_DIR).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def document_digest(template_name: str, context: Mapping[str, Any]) -> str:
    """The hash a rendered document is stored under: same inputs, same PDF."""
    inputs = {
        "renderer": RENDERER_VERSION,
        "template": template_name,
        "templates": _templates_fingerprint(),
        "context": context,
    }
    return hashlib.sha256(canonical_json(inputs)).hexdigest()


CACHE_FOLDER = "documents"


def cached_documents_prefix(tenant_id: uuid.UUID) -> str:
    """Where a tenant's rendered PDFs are kept: a cache, which may be emptied at any time."""
    return tenant_key(tenant_id, CACHE_FOLDER) + "/"


def render_pdf_cached(
    storage: ObjectStorage,
    tenant_id: uuid.UUID,
    template_name: str,
    context: Mapping[str, Any],
) -> tuple[str, bytes]:
    """The stored PDF for these inputs, rendered and stored on the first request."""
    key = cached_documents_prefix(tenant_id) + f"{document_digest(template_name, context)}.pdf"
    try:
        return key, storage.get(key)
    except ObjectNotFound:
        pdf = render_pdf(template_name, context)
        storage.put(key, pdf, content_type="application/pdf")
        return key, pdf
