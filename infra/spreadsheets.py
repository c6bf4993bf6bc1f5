"""CSV files that spreadsheets open as meant: UTF-8 with a byte-order mark (without it Excel
reads Chinese as mojibake), CRLF line ends, and text that a spreadsheet would run as a formula
turned back into text."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

# What spreadsheets read as the start of a formula (OWASP's CSV injection list).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def as_text(value: str) -> str:
    """The value as a cell shows it, never as a formula."""
    return "'" + value if value.startswith(FORMULA_START) else value


class CsvDocument:
    def __init__(self, header: Iterable[str]) -> None:
        self._buffer = io.StringIO()
        self._buffer.write("\ufeff")
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")
        self._writer.writerow(list(header))

    def add_row(self, cells: Iterable[str]) -> None:
        self._writer.writerow(list(cells))

    def encoded(self) -> bytes:
        return self._buffer.getvalue().encode("utf-8")
