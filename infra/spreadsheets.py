"""CSV files that spreadsheets open as meant: UTF-8 with a byte-order mark (without it Excel
reads Chinese as mojibake), CRLF line ends, and text that a spreadsheet would run as a formula
turned back into text."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import IO

# What spreadsheets read as the start of a formula (OWASP's CSV injection list).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def as_text(value: str) -> str:
    """The value as a cell shows it, never as a formula."""
    return "'" + value if value.startswith(FORMULA_START) else value


class CsvSheet:
    """A CSV written row by row into a binary stream, which stays open once it is finished."""

    def __init__(self, stream: IO[bytes], header: Iterable[str]) -> None:
        self._text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        self._text.write("\ufeff")
        self._writer = csv.writer(self._text, lineterminator="\r\n")
        self._writer.writerow(list(header))

    def add_row(self, cells: Iterable[str]) -> None:
        self._writer.writerow(list(cells))

    def flush(self) -> None:
        self._text.flush()

    def finish(self) -> None:
        """Everything written into the stream, which is left open to be read back."""
        self._text.flush()
        self._text.detach()


class CsvDocument:
    """A whole CSV in memory, for files small enough to answer in one piece."""

    def __init__(self, header: Iterable[str]) -> None:
        self._buffer = io.BytesIO()
        self._sheet = CsvSheet(self._buffer, header)

    def add_row(self, cells: Iterable[str]) -> None:
        self._sheet.add_row(cells)

    def encoded(self) -> bytes:
        self._sheet.flush()
        return self._buffer.getvalue()
