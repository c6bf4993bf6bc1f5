"""Every user-facing message is in the catalogs, translated to Chinese, and the catalogs load."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from infra.i18n import SUPPORTED_LOCALES, TRANSLATIONS_DIR, gettext, locale_scope

ROOT = Path(__file__).resolve().parents[2]


def _makefile_keywords() -> dict[str, tuple[int, ...] | None]:
    """The extraction keywords exactly as `make i18n` passes them, plus Babel's defaults."""
    line = next(
        line
        for line in (ROOT / "Makefile").read_text().splitlines()
        if line.startswith("BABEL_KEYWORDS")
    )
    keywords: dict[str, tuple[int, ...] | None] = {
        "_": None,
        "gettext": None,
        "ngettext": (1, 2),
    }
    for spec in re.findall(r"-k (\S+)", line):
        name, _, position = spec.partition(":")
        keywords[name] = (int(position),) if position else None
    return keywords


def _source_messages() -> set[str]:
    with (ROOT / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    found = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        ROOT, method_map, options_map, keywords=_makefile_keywords()
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def _catalog(locale: str):  # type: ignore[no-untyped-def]
    with (TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=locale)


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_every_source_message_is_translated(locale: str) -> None:
    catalog = _catalog(locale)
    translated = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
    missing = sorted(_source_messages() - translated)
    assert missing == [], f"run `make i18n` and translate these in {locale}: {missing}"


def test_chinese_is_really_chinese() -> None:
    catalog = _catalog("zh_CN")
    untranslated = [m.id for m in catalog if m.id and m.string == m.id and re.search("[a-z]", m.id)]
    assert untranslated == []


def test_lookup_follows_the_locale_scope() -> None:
    with locale_scope("zh_CN"):
        assert gettext("Sign in") == "登录"
    with locale_scope("en"):
        assert gettext("Sign in") == "Sign in"
    with locale_scope("fr"):
        assert gettext("Sign in") == "登录", "an unsupported language falls back to Chinese"


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_translations_keep_the_format_placeholders(locale: str) -> None:
    """Messages are filled with ``%``, in Python and in templates alike: a translation with a
    placeholder, or a bare percent sign, its message lacks breaks the page that shows it."""
    placeholder = re.compile(r"%(?:\([a-z_]+\)s|%)")
    broken = [
        m.id
        for m in _catalog(locale)
        if m.id
        and isinstance(m.string, str)
        and (
            sorted(placeholder.findall(m.string)) != sorted(placeholder.findall(m.id))
            or m.string.count("%") != m.id.count("%")
        )
    ]
    assert broken == []
