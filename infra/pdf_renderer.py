"""WeasyPrint and fontTools behind :func:`infra.documents.render_pdf`: the resource fetcher, the
prepared CJK font, and the font configuration and stylesheets every render shares.

:mod:`infra.documents` imports this module on the first render or warm-up, not at startup: the
two libraries take most of a second to import, which every server process, worker and command
would pay, most of which never render a PDF.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from contextlib import suppress
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import fontTools
from fontTools import subset
from fontTools.ttLib import TTCollection, TTFont
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse

from infra.documents import (
    BASE_STYLESHEET,
    COMMON_FONT_FAMILY,
    PDF_TEMPLATES_DIR,
    SYSTEM_CJK_FAMILY,
    SYSTEM_CJK_FONT,
    TEMPLATES_URL,
)
from infra.settings import get_settings
from infra.storage import write_atomically

logger = logging.getLogger(__name__)

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

# Every render shares one font configuration (a Pango font map and WeasyPrint's caches), which
# is not made for concurrent use.
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
    fetcher = _DocumentFetcher((TEMPLATES_URL,))
    paths = [PDF_TEMPLATES_DIR / BASE_STYLESHEET]
    own = (PDF_TEMPLATES_DIR / template_name).with_suffix(".css")
    if own.is_file():
        paths.append(own)
    parsed = (CSS(filename=path, url_fetcher=fetcher, font_config=font_config) for path in paths)
    return (fonts, *parsed)


def load_fonts() -> None:
    """Prepare the common font subset and load the fonts."""
    with _render_lock:
        _font_configuration()


def write_pdf(html: str, template_name: str, base_url: str | None) -> bytes:
    """``html``, the rendering of ``template_name``, as PDF bytes; relative URLs resolve against
    ``base_url`` (default: the templates directory)."""
    roots = (TEMPLATES_URL, base_url) if base_url else (TEMPLATES_URL,)
    document = HTML(
        string=html, base_url=base_url or TEMPLATES_URL, url_fetcher=_DocumentFetcher(roots)
    )
    with _render_lock:
        font_config, _ = _font_configuration()
        return document.write_pdf(
            stylesheets=list(_stylesheets(template_name)), font_config=font_config
        )
