"""Reading a worker roster (花名册) from an XLSX file.

The first sheet's first row names the columns — 姓名, 身份证号, 手机号, 工种, in any order, no
others — and every further non-empty row is a worker. The file is read streaming and with
formulas kept as formulas (``data_only=False``): a formula's cached value is whatever the program
that saved the file computed, which is not necessarily what the cell shows, so a file with any
formula is refused rather than trusted. Sizes are bounded before anything is parsed: the file
itself, what its zip members claim to expand to, the number of columns and of rows.

File-level problems raise :class:`InvalidInput`; problems with single rows are collected, with
the row number and the column's header, so the whole file can be corrected in one go.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from infra.errors import DomainError, FieldProblem, InvalidInput
from infra.i18n import N_
from infra.uploads import MB, size_label
from onboarding.validators import IdNumber, validate_id_number
from tenants.schemas import PHONE_PATTERN

FIELD = "file"
MAX_ROSTER_BYTES = 2 * MB
# What the members of a 2 MB zip may claim to expand to; a roster of a thousand rows is far
# below it, a zip bomb far above.
MAX_EXPANDED_BYTES = 40 * MB
MAX_ROSTER_ROWS = 1000
MAX_COLUMNS = 50
NAME_LIMIT = 100
TRADE_LIMIT = 64
XLSX_MAGIC = b"PK\x03\x04"

NAME, ID_NUMBER, PHONE, TRADE = "姓名", "身份证号", "手机号", "工种"
COLUMNS = (NAME, ID_NUMBER, PHONE, TRADE)
_PHONE = re.compile(PHONE_PATTERN)


@dataclass(frozen=True)
class RosterRow:
    row: int
    name: str
    id_number: IdNumber
    phone: str
    trade: str


@dataclass(frozen=True)
class RowProblem:
    row: int
    column: str
    rule: str
    message: str
    params: dict[str, Any] = field(default_factory=dict)

    def as_field_problem(self) -> FieldProblem:
        return FieldProblem(f"rows[{self.row}].{self.column}", self.rule, self.message, self.params)


class RosterRefused(InvalidInput):
    """Rows or columns of a roster are wrong; every problem is listed, nothing was imported."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        DomainError.__init__(self, N_("The roster has errors; nothing was imported."), problems)


@dataclass
class Roster:
    rows: list[RosterRow] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def problem_rows(self) -> set[int]:
        return {problem.row for problem in self.problems}


def _check_container(content: bytes) -> None:
    if len(content) > MAX_ROSTER_BYTES:
        raise InvalidInput(
            FIELD,
            "max_size",
            N_("The file is larger than %(limit)s."),
            limit=size_label(MAX_ROSTER_BYTES),
        )
    if not content:
        raise InvalidInput(FIELD, "empty", N_("The file is empty."))
    not_xlsx = InvalidInput(FIELD, "xlsx", N_("The file is not an Excel workbook (.xlsx)."))
    if not content.startswith(XLSX_MAGIC):
        raise not_xlsx
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            expanded = sum(member.file_size for member in archive.infolist())
    except zipfile.BadZipFile:
        raise not_xlsx from None
    if expanded > MAX_EXPANDED_BYTES:
        raise InvalidInput(
            FIELD,
            "max_size",
            N_("The file is larger than %(limit)s."),
            limit=size_label(MAX_EXPANDED_BYTES),
        )


def _header_text(value: Any) -> str:
    return unicodedata.normalize("NFKC", str(value)).strip() if value is not None else ""


def _columns(header: tuple[Any, ...]) -> dict[int, str]:
    """Column index → header, or InvalidInput naming every unknown, repeated or missing one."""
    problems: list[FieldProblem] = []
    found: dict[int, str] = {}
    for index, cell in enumerate(header):
        text = _header_text(cell.value)
        if not text:
            continue
        letter = get_column_letter(index + 1)
        if text not in COLUMNS:
            problems.append(
                FieldProblem(
                    f"columns.{letter}",
                    "unknown_column",
                    N_("Unknown column %(column)s; use only 姓名, 身份证号, 手机号 and 工种."),
                    {"column": text},
                )
            )
        elif text in found.values():
            problems.append(
                FieldProblem(
                    f"columns.{letter}",
                    "duplicate_column",
                    N_("The column %(column)s appears twice."),
                    {"column": text},
                )
            )
        else:
            found[index] = text
    for missing in (column for column in COLUMNS if column not in found.values()):
        problems.append(
            FieldProblem(
                f"columns.{missing}",
                "missing_column",
                N_("The column %(column)s is missing."),
                {"column": missing},
            )
        )
    if problems:
        raise RosterRefused(problems)
    return found


def _refuse_formula(cell: Any, row: int, column: int) -> None:
    if cell.data_type == "f":
        raise InvalidInput(
            FIELD,
            "formula",
            N_("Cell %(cell)s holds a formula; enter plain values only."),
            cell=f"{get_column_letter(column + 1)}{row}",
        )


def _text(value: Any) -> str:
    """A cell as text: whole numbers without the ``.0`` a spreadsheet adds to them."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unicodedata.normalize("NFKC", str(value)).strip()


def _read_row(
    row: int, values: dict[str, Any], today: date, problems: list[RowProblem], roster: Roster
) -> None:
    def problem(column: str, rule: str, message: str, **params: Any) -> None:
        problems.append(RowProblem(row, column, rule, message, params))

    name = _text(values[NAME]) if values[NAME] is not None else ""
    if not name:
        problem(NAME, "required", N_("This field is required."))
    elif len(name) > NAME_LIMIT:
        problem(NAME, "max_length", N_("At most %(limit)s characters."), limit=NAME_LIMIT)

    raw_id = values[ID_NUMBER]
    id_number: IdNumber | None = None
    if raw_id is None or _text(raw_id) == "":
        problem(ID_NUMBER, "required", N_("This field is required."))
    elif isinstance(raw_id, int | float):
        # An 18-digit number does not survive as a spreadsheet number: its last digits are
        # rounded away, so the value cannot be the person's number any more.
        problem(
            ID_NUMBER,
            "text",
            N_("Format the ID number cells as text; as numbers their last digits are lost."),
        )
    else:
        try:
            id_number = validate_id_number(str(raw_id), today=today, field_name=ID_NUMBER)
        except InvalidInput as exc:
            problems.extend(
                RowProblem(row, ID_NUMBER, p.rule, p.message, p.params) for p in exc.problems
            )

    phone = _text(values[PHONE]) if values[PHONE] is not None else ""
    if not phone:
        problem(PHONE, "required", N_("This field is required."))
    elif not _PHONE.match(phone):
        problem(PHONE, "phone", N_("Must be a phone number."))

    trade = _text(values[TRADE]) if values[TRADE] is not None else ""
    if not trade:
        problem(TRADE, "required", N_("This field is required."))
    elif len(trade) > TRADE_LIMIT:
        problem(TRADE, "max_length", N_("At most %(limit)s characters."), limit=TRADE_LIMIT)

    if problems or id_number is None:
        roster.problems.extend(problems)
        return
    roster.rows.append(RosterRow(row, name, id_number, phone, trade))


def _is_blank(cells: tuple[Any, ...]) -> bool:
    return all(cell.value is None or _header_text(cell.value) == "" for cell in cells)


def read_roster(content: bytes, *, today: date) -> Roster:
    _check_container(content)
    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=False)
    except Exception as exc:
        # openpyxl raises whatever its zip and XML layers do for a damaged or foreign file.
        raise InvalidInput(FIELD, "xlsx", N_("The file is not an Excel workbook (.xlsx).")) from exc
    try:
        return _read_sheet(workbook.worksheets[0], today)
    finally:
        workbook.close()


def _check_cells(cells: tuple[Any, ...], row: int) -> None:
    for index, cell in enumerate(cells):
        _refuse_formula(cell, row, index)
        if index >= MAX_COLUMNS and cell.value is not None:
            raise InvalidInput(
                FIELD, "max_columns", N_("At most %(limit)s columns."), limit=MAX_COLUMNS
            )


def _read_sheet(sheet: Any, today: date) -> Roster:
    # The stored dimensions are the file's claim, and rows would be padded out to them; each row
    # is read at its own length instead.
    sheet.reset_dimensions()
    rows = sheet.iter_rows()
    header = next(rows, ())
    _check_cells(header, 1)
    columns = _columns(header)
    roster = Roster()
    seen = 0
    for number, cells in enumerate(rows, start=2):
        _check_cells(cells, number)
        if _is_blank(cells):
            continue
        seen += 1
        if seen > MAX_ROSTER_ROWS:
            raise InvalidInput(
                FIELD, "max_rows", N_("At most %(limit)s workers per file."), limit=MAX_ROSTER_ROWS
            )
        problems = [
            RowProblem(
                number,
                get_column_letter(index + 1),
                "no_header",
                N_("This cell is in a column without a header."),
            )
            for index, cell in enumerate(cells)
            if index not in columns and _header_text(cell.value)
        ]
        values: dict[str, Any] = dict.fromkeys(COLUMNS)
        for index, column in columns.items():
            if index < len(cells):
                values[column] = cells[index].value
        _read_row(number, values, today, problems, roster)
    if seen == 0:
        raise InvalidInput(FIELD, "no_rows", N_("The file lists no workers."))
    return roster
