"""Translations: one catalog per language (Chinese first), chosen per request or task.

Messages are written as English msgids and translated from the ``.po`` catalogs under
``infra/translations``; the catalogs are compiled in memory at first use, so no compiled
artefacts live in the repository.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

SUPPORTED_LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
TRANSLATIONS_DIR = Path(__file__).parent / "translations"

_locale: ContextVar[str] = ContextVar("locale", default=DEFAULT_LOCALE)


@cache
def translations(locale: str) -> Translations:
    po_path = TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po"
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def N_(message: str) -> str:
    """Marks a message for extraction where it is defined; it is translated where it is shown."""
    return message


def current_locale() -> str:
    return _locale.get()


@contextmanager
def locale_scope(locale: str) -> Iterator[str]:
    token = _locale.set(locale if locale in SUPPORTED_LOCALES else DEFAULT_LOCALE)
    try:
        yield _locale.get()
    finally:
        _locale.reset(token)


def gettext(message: str, **params: object) -> str:
    translated = translations(current_locale()).gettext(message)
    return translated % params if params else translated


def ngettext(singular: str, plural: str, n: int, **params: object) -> str:
    translated = translations(current_locale()).ngettext(singular, plural, n)
    return translated % {"num": n, **params}


def negotiate_locale(
    *, explicit: str | None, user_locale: str | None, accept_language: str | None
) -> str:
    """Pick the language: an explicit choice, then the user's setting, then the browser's list,
    then Chinese."""
    for candidate in (explicit, user_locale):
        if candidate in SUPPORTED_LOCALES:
            return candidate
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().replace("-", "_").lower()
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT_LOCALE
