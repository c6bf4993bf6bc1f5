"""Every PDF the product makes: a Jinja template under ``infra/templates/pdf`` rendered by
WeasyPrint, and cached in object storage by the hash of its inputs.

A template ``name.html`` is styled by ``base.css`` and, when it exists, ``name.css`` beside it.
Resources load only from ``data:`` URIs, the templates directory and the caller's ``base_url``:
templates print user-supplied text, and a value that ends up in a URL must not make the renderer
read local files or call internal services.

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
import logging
import threading
import uuid
from collections.abc import Mapping
from contextlib import suppress
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import fontTools
import weasyprint
from fontTools import subset
from fontTools.ttLib import TTCollection, TTFont
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse

from infra.audit import canonical_json
from infra.settings import get_settings
from infra.storage import ObjectNotFound, ObjectStorage, tenant_key, write_atomically

logger = logging.getLogger(__name__)

PDF_TEMPLATES_DIR = Path(__file__).parent / "templates" / "pdf"
BASE_STYLESHEET = "base.css"
# Part of every cache key: bump the number when a change here alters the PDFs a template makes.
RENDERER_VERSION = f"documents-1/weasyprint-{weasyprint.__version__}"

# Installed by fonts-noto-cjk (scripts/system-deps.sh); the collection holds SC, TC, JP and KR.
SYSTEM_CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
SYSTEM_CJK_FAMILY = "Noto Sans CJK SC"
# The name base.css puts first in the font stack.
COMMON_FONT_FAMILY = "Portal CJK Common"
# Blocks besides GB 2312 that forms print: Latin, punctuation, sub- and superscripts (H₂S),
# units and letterlike symbols (℃, ㎡), numbers (①, Ⅳ), arrows, maths, boxes (☐, ☑) and
# fullwidth forms. Only what the system font has is kept.
_COMMON_RANGES = (
    (0x0020, 0x007E),
    (0x00A0, 0x017F),
    (0x2000, 0x27BF),
    (0x3000, 0x303F),
    (0x3200, 0x33FF),
    (0xFF00, 0xFFEF),
)
# Part of the prepared font's file name: bump it when the character set or the recipe changes.
_COMMON_FONT_RECIPE = "1"

_TEMPLATES_URL = PDF_TEMPLATES_DIR.as_uri() + "/"

_environment = Environment(
    loader=FileSystemLoader(PDF_TEMPLATES_DIR),
    autoescape=True,
    # A blank where a permit field should be is worse than a failed render.
    undefined=StrictUndefined,
    auto_reload=False,
)
_render_lock = threading.Lock()


def _file_path(url: str) -> Path:
    return Path(url2pathname(urlsplit(url).path)).resolve()


class _DocumentFetcher(URLFetcher):
    def __init__(self, roots: tuple[str, ...]) -> None:
        super().__init__()
        self._roots = roots

    def _allowed(self, url: str) -> bool:
        if url.startswith("data:"):
            return True
        if url.startswith("file:"):
            # Resolved first, so ``..`` or a symlink cannot step out of an allowed directory.
            path = _file_path(url)
            return any(
                root.startswith("file:") and path.is_relative_to(_file_path(root))
                for root in self._roots
            )
        return any(not root.startswith("file:") and url.startswith(root) for root in self._roots)

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        if not self._allowed(url):
            raise ValueError(f"not a document resource: {url}")
        return super().fetch(url, headers)


def _common_codepoints() -> set[int]:
    codepoints = {code for start, end in _COMMON_RANGES for code in range(start, end + 1)}
    for high in range(0xA1, 0xF8):
        for low in range(0xA1, 0xFF):
            with suppress(UnicodeDecodeError):
                codepoints.add(ord(bytes((high, low)).decode("gb2312")))
    return codepoints


def _prepare_common_font(target: Path) -> None:
    with TTCollection(SYSTEM_CJK_FONT, lazy=True) as collection:
        families = [face["name"].getDebugName(1) for face in collection]
    # The whole font's bounding boxes still bound the subset; recomputing them would draw every
    # glyph three times and double the build time.
    font = TTFont(
        SYSTEM_CJK_FONT,
        fontNumber=families.index(SYSTEM_CJK_FAMILY),
        lazy=True,
        recalcBBoxes=False,
    )
    options = subset.Options()
    options.hinting = False
    options.name_IDs = ["*"]
    # Kerning and ligatures for the Latin text; the default list also closes over the font's
    # vertical and Japanese/Korean/Traditional forms, which doubles the font and its build time.
    options.layout_features = ["kern", "liga"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=_common_codepoints() & set(font.getBestCmap()))
    subsetter.subset(font)
    # Its own name, so that asking fontconfig for the system family never yields the subset.
    postscript = COMMON_FONT_FAMILY.replace(" ", "") + "-Regular"
    names = {1: COMMON_FONT_FAMILY, 2: "Regular", 4: f"{COMMON_FONT_FAMILY} Regular", 6: postscript}
    for name_id in (*names, 3, 16, 17):
        font["name"].removeNames(nameID=name_id)
    for name_id, value in names.items():
        font["name"].setName(value, name_id, 3, 1, 0x409)
    write_atomically(target, font.save)


def _common_font() -> Path | None:
    """The prepared subset, built on first use and kept until the system font changes."""
    if not SYSTEM_CJK_FONT.is_file():
        logger.warning(
            "%s is missing: PDFs use whatever CJK font fontconfig finds", SYSTEM_CJK_FONT
        )
        return None
    stat = SYSTEM_CJK_FONT.stat()
    source = f"{SYSTEM_CJK_FONT}|{stat.st_size}|{stat.st_mtime_ns}|{SYSTEM_CJK_FAMILY}"
    identity = f"{source}|{_COMMON_FONT_RECIPE}|fonttools-{fontTools.version}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    target = get_settings().var_dir / "fonts" / f"portal-cjk-common-{digest}.otf"
    if not target.is_file():
        logger.info("preparing the common CJK font subset %s", target)
        _prepare_common_font(target)
    return target


@cache
def _font_configuration() -> tuple[FontConfiguration, CSS]:
    font_config = FontConfiguration()
    common = _common_font()
    rule = (
        f'@font-face {{ font-family: "{COMMON_FONT_FAMILY}"; src: url("{common.as_uri()}"); }}'
        if common
        else ""
    )
    return font_config, CSS(string=rule, font_config=font_config)


@cache
def _stylesheets(template_name: str) -> tuple[CSS, ...]:
    font_config, fonts = _font_configuration()
    fetcher = _DocumentFetcher((_TEMPLATES_URL,))
    paths = [PDF_TEMPLATES_DIR / BASE_STYLESHEET]
    own = (PDF_TEMPLATES_DIR / template_name).with_suffix(".css")
    if own.is_file():
        paths.append(own)
    parsed = (CSS(filename=path, url_fetcher=fetcher, font_config=font_config) for path in paths)
    return (fonts, *parsed)


def warm_up() -> None:
    """Prepare the common font subset and load the fonts now, so that the first document after
    a start does not wait for them (seconds on a busy machine)."""
    with _render_lock:
        _font_configuration()


def render_pdf(
    template_name: str, context: Mapping[str, Any], *, base_url: str | None = None
) -> bytes:
    """Render ``infra/templates/pdf/{template_name}`` with ``context`` to PDF bytes.

    Relative URLs resolve against ``base_url`` (default: the templates directory)."""
    html = _environment.get_template(template_name).render(context)
    roots = (_TEMPLATES_URL, base_url) if base_url else (_TEMPLATES_URL,)
    document = HTML(
        string=html, base_url=base_url or _TEMPLATES_URL, url_fetcher=_DocumentFetcher(roots)
    )
    with _render_lock:
        font_config, _ = _font_configuration()
        return document.write_pdf(
            stylesheets=list(_stylesheets(template_name)), font_config=font_config
        )


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
