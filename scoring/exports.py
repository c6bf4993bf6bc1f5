"""Downloads of the HQ tables (:mod:`scoring.tables`) as CSV or XLSX, holding exactly the rows
the pages show.

Headers are translated in the requester's language. Instants are written on the clock of the
row's plant, or the group's clock (北京时间) for rows of no one plant; XLSX cells keep numbers
as numbers and dates as dates, CSV is UTF-8 with a byte-order mark so that Excel reads Chinese
correctly. Text that a spreadsheet would take for a formula (a company may name itself
``=HYPERLINK(…)``) is written as text.

Small exports are answered in the request. What may exceed :data:`DIRECT_ROW_LIMIT` rows, by
an estimate that costs one count query, becomes an :class:`~scoring.models.Export` built by a
task (``scoring.build_export``) that stores the file under the tenant's prefix in object storage
and reports its progress on the row.
"""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from infra.db import utcnow
from infra.i18n import N_, gettext, locale_scope
from infra.spreadsheets import CsvDocument, as_text
from infra.storage import ObjectStorage, tenant_key
from onboarding.catalogue import WorkType
from onboarding.clock import PLANT_TIMEZONE
from onboarding.models import Contractor
from permits.models import Permit
from scoring.models import Export, ExportState
from scoring.rollups import NOT_COUNTED, plant_zones, utc_margin
from scoring.tables import TABLES, Column, Params, Table
from tenants.models import Plant

logger = logging.getLogger(__name__)

# Rows answered within the request; an export that may hold more runs as a task. Writing this
# many rows takes well under a second, so the request stays quick.
DIRECT_ROW_LIMIT = 2_000
# How often (in rows) a running export reports its progress.
PROGRESS_EVERY = 500
# The group's clock, for rows that belong to no one plant.
GROUP_ZONE = PLANT_TIMEZONE

CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CONTENT_TYPES = {"csv": CSV_TYPE, "xlsx": XLSX_TYPE}
FORMATS = tuple(CONTENT_TYPES)

YES, NO = N_("Yes"), N_("No")
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
# Excel refuses sheet names longer than this or holding any of these characters.
SHEET_NAME_LIMIT = 31
SHEET_NAME_FORBIDDEN = str.maketrans({character: " " for character in "[]:*?/\\"})

Progress = Callable[[int], None]


@dataclass(frozen=True)
class ExportFile:
    filename: str
    content_type: str
    data: bytes
    rows: int


def filename(table: Table, params: Params, fmt: str) -> str:
    """ASCII, so every browser keeps it: the table and the first and last day."""
    last_day = params.end - timedelta(days=1)
    return f"{table.name}_{params.start.isoformat()}_{last_day.isoformat()}.{fmt}"


def _plain(value: Any, zone: ZoneInfo) -> Any:
    """A row's value as a cell holds it: instants on the plant's clock without a zone (Excel
    has none), yes/no in words, ids as text; None stays empty."""
    if isinstance(value, bool):
        return gettext(YES if value else NO)
    if isinstance(value, datetime):
        return value.astimezone(zone).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _row_zone(row: Mapping[str, Any], zones: Mapping[uuid.UUID, ZoneInfo]) -> ZoneInfo:
    plant_id = row.get("plant_id")
    return zones.get(plant_id, GROUP_ZONE) if isinstance(plant_id, uuid.UUID) else GROUP_ZONE


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return as_text(value)
    return str(value)


def _report(progress: Progress | None, written: int, total: int, start: int) -> None:
    if progress is not None and total and written % PROGRESS_EVERY == 0:
        progress(start + (99 - start) * written // total)


def write_csv(
    columns: Sequence[Column],
    rows: Sequence[Mapping[str, Any]],
    zones: Mapping[uuid.UUID, ZoneInfo],
    *,
    progress: Progress | None = None,
    progress_from: int = 0,
) -> bytes:
    document = CsvDocument(column.heading() for column in columns)
    for written, row in enumerate(rows, start=1):
        zone = _row_zone(row, zones)
        document.add_row(_csv_text(_plain(row.get(column.key), zone)) for column in columns)
        _report(progress, written, len(rows), progress_from)
    return document.encoded()


def _xlsx_cell(sheet: WriteOnlyWorksheet, value: Any) -> Any:
    if isinstance(value, datetime):
        cell = WriteOnlyCell(sheet, value)
        cell.number_format = DATETIME_FORMAT
        return cell
    if isinstance(value, date):
        cell = WriteOnlyCell(sheet, value)
        cell.number_format = DATE_FORMAT
        return cell
    if isinstance(value, str) and value.startswith("="):
        cell = WriteOnlyCell(sheet, value)
        # openpyxl stores text that starts with "=" as a formula unless told otherwise.
        cell.data_type = "s"
        return cell
    return value


def sheet_name(title: str) -> str:
    return title.translate(SHEET_NAME_FORBIDDEN).strip()[:SHEET_NAME_LIMIT] or "Sheet1"


def write_xlsx(
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Mapping[str, Any]],
    zones: Mapping[uuid.UUID, ZoneInfo],
    *,
    progress: Progress | None = None,
    progress_from: int = 0,
) -> bytes:
    # Write-only mode streams rows, so a long export does not hold every cell object at once.
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_name(title))
    sheet.freeze_panes = "A2"
    for index, column in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = (
            24 if column.kind == "text" else 14
        )
    bold = Font(bold=True)
    headers = []
    for column in columns:
        cell = WriteOnlyCell(sheet, column.heading())
        cell.font = bold
        headers.append(cell)
    sheet.append(headers)
    for written, row in enumerate(rows, start=1):
        zone = _row_zone(row, zones)
        sheet.append([_xlsx_cell(sheet, _plain(row.get(column.key), zone)) for column in columns])
        _report(progress, written, len(rows), progress_from)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def write_table(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    fmt: str,
    *,
    progress: Progress | None = None,
    progress_from: int = 0,
) -> bytes:
    """The rows as a file in the current language."""
    zones = plant_zones(session)
    if fmt == "xlsx":
        return write_xlsx(
            gettext(table.title),
            table.columns,
            rows,
            zones,
            progress=progress,
            progress_from=progress_from,
        )
    return write_csv(table.columns, rows, zones, progress=progress, progress_from=progress_from)


def estimated_rows(session: Session, table: Table, params: Params) -> int:
    """An upper bound on the table's rows, for choosing between the request and a task: the
    permits with their count (a day's margin at either end), the others from what they group."""
    plants = params.plants
    plant_count = (
        len(plants)
        if plants is not None
        else session.scalar(select(func.count()).select_from(Plant)) or 0
    )
    if table.name == "permits":
        earliest, latest = utc_margin(params.start, params.end)
        query = (
            select(func.count())
            .select_from(Permit)
            .where(
                Permit.state.not_in(NOT_COUNTED),
                Permit.planned_start >= earliest,
                Permit.planned_start < latest,
            )
        )
        if plants is not None:
            query = query.where(Permit.plant_id.in_(list(plants)))
        if params.work_type is not None:
            query = query.where(Permit.work_type == params.work_type)
        if params.contractor_id is not None:
            query = query.where(Permit.contractor_id == params.contractor_id)
        return session.scalar(query) or 0
    if table.name == "trend":
        return plant_count * ((params.end - params.start).days // 7 + 2)
    if table.name == "work_types":
        # Every type, and the row of alerts and findings that belong to no permit.
        return len(WorkType) + 1
    if table.name == "contractors":
        # And the row of what no known company did.
        return (session.scalar(select(func.count()).select_from(Contractor)) or 0) + 1
    return plant_count


def export_now(session: Session, table: Table, params: Params, fmt: str) -> ExportFile:
    """The whole file, built in the caller's transaction and language."""
    rows = table.rows(session, params)
    return ExportFile(
        filename=filename(table, params, fmt),
        content_type=CONTENT_TYPES[fmt],
        data=write_table(session, table, rows, fmt),
        rows=len(rows),
    )


def params_document(params: Params) -> dict[str, Any]:
    def text(value: uuid.UUID | None) -> str | None:
        return None if value is None else str(value)

    return {
        "start": params.start.isoformat(),
        "end": params.end.isoformat(),
        "plant_ids": None
        if params.plant_ids is None
        else sorted(str(plant_id) for plant_id in params.plant_ids),
        "plant_id": text(params.plant_id),
        "work_type": params.work_type,
        "contractor_id": text(params.contractor_id),
    }


def params_from_document(document: Mapping[str, Any]) -> Params:
    def parsed(value: str | None) -> uuid.UUID | None:
        return None if value is None else uuid.UUID(value)

    plant_ids = document["plant_ids"]
    return Params(
        start=date.fromisoformat(document["start"]),
        end=date.fromisoformat(document["end"]),
        plant_ids=None if plant_ids is None else frozenset(uuid.UUID(p) for p in plant_ids),
        plant_id=parsed(document["plant_id"]),
        work_type=document["work_type"],
        contractor_id=parsed(document["contractor_id"]),
    )


def create_export(
    session: Session,
    table: Table,
    params: Params,
    fmt: str,
    *,
    locale: str,
    requested_by: uuid.UUID,
) -> Export:
    """Record an export for the task to build; the caller commits, then sends the task."""
    export = Export(
        table=table.name,
        format=fmt,
        parameters={**params_document(params), "locale": locale},
        state=ExportState.RUNNING.value,
        progress=0,
        rows=0,
        filename=filename(table, params, fmt),
        requested_by=requested_by,
    )
    session.add(export)
    session.flush()
    return export


def export_key(export: Export) -> str:
    return tenant_key(export.tenant_id, "exports", f"{export.id}.{export.format}")


# Part of the progress bar that reading the rows takes; writing them fills the rest.
READ_SHARE = 20


def run_export(session: Session, storage: ObjectStorage, export_id: uuid.UUID) -> Export | None:
    """Build a recorded export, committing its progress as it goes. An export no longer running
    (a duplicate delivery of the task) is left alone; a failure marks it failed."""
    export = session.get(Export, export_id)
    if export is None or export.state != ExportState.RUNNING:
        return export

    def progress(percent: int) -> None:
        export.progress = max(export.progress, min(percent, 99))
        session.commit()

    try:
        table = TABLES[export.table]
        params = params_from_document(export.parameters)
        with locale_scope(export.parameters["locale"]):
            rows = table.rows(session, params)
            progress(READ_SHARE)
            data = write_table(
                session, table, rows, export.format, progress=progress, progress_from=READ_SHARE
            )
        key = export_key(export)
        storage.put(key, data, content_type=CONTENT_TYPES[export.format])
    except Exception as exc:
        logger.exception("export %s failed", export_id)
        session.rollback()
        return fail_export(session, export_id, type(exc).__name__)
    export.state = ExportState.DONE.value
    export.progress = 100
    export.rows = len(rows)
    export.object_key = key
    export.finished_at = utcnow()
    return export


def fail_export(session: Session, export_id: uuid.UUID, reason: str) -> Export:
    """Mark an export failed; ``reason`` is for operators and names no secret."""
    export = session.get_one(Export, export_id)
    export.state = ExportState.FAILED.value
    export.error = reason
    export.finished_at = utcnow()
    return export
