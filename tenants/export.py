"""The export of everything a tenant owns, as one zip built by a task (``tenants.build_export``)
that reports its progress on a :class:`~tenants.models.DataExport` row and stores the file under
the tenant's prefix in object storage, like the long exports of the HQ tables.

The tables are every table with a ``tenant_id`` column, read from the schema's metadata, so a
table added later is exported without anyone listing it here. The archive holds:

* ``tables/<table>.json`` for each of them: its rows in primary-key order, UUIDs, dates and
  instants (UTC) as ISO text, so the same data gives the same file;
* ``csv/<table>.csv`` for the main tables, for spreadsheets (UTF-8 with a byte-order mark);
* ``files/<key>`` for each stored upload (scans, photos, signature images), by its storage key
  under the tenant's prefix;
* ``ledger/verification.json``: the result of walking the tenant's hash chain when exported
  (the entries themselves are ``tables/audit_entries.json``);
* ``manifest.json``: the tenant, the moment, the row count of each table and the files.

A large tenant's archive is gigabytes, so it is written to a temporary file a part at a time
(rows fetched in batches, each written as it comes; stored files copied in chunks) and stored
from there: no step holds the archive, a table or a file whole.

The data is the tenant's own: columns stored encrypted (``<name>_encrypted``, such as the
workers' ID numbers) are written decrypted as ``<name>``. Credentials are left out: password
and token hashes, webhook secrets and the passwords of the tenant's own e-mail and SMS accounts
would only let someone act as the tenant.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from infra import audit
from infra.db import utcnow
from infra.field_encryption import FieldCipher
from infra.schema import load_models
from infra.spreadsheets import CsvSheet, as_text
from infra.storage import CHUNK_BYTES, ObjectNotFound, ObjectStorage, tenant_key
from infra.uploads import StoredObject
from tenants.models import DataExport, DataExportState, Tenant

logger = logging.getLogger(__name__)

TENANT_COLUMN = "tenant_id"
ENCRYPTED_SUFFIX = "_encrypted"
# Secrets that would let the holder act as the tenant or use its accounts; the tenant's data
# does not need them, so they are left out rather than decrypted.
CREDENTIAL_COLUMNS = frozenset(
    {
        "password_hash",
        "token_hash",
        "secret",
        "bi_webhook_secret",
        "smtp_password_encrypted",
        "sms_secret_encrypted",
    }
)
# The tables people open in a spreadsheet; every table is in the archive as JSON anyway.
CSV_TABLES = (
    "plants",
    "users",
    "contractors",
    "workers",
    "certificates",
    "permits",
    "scoring_ratings",
)
ZIP_TYPE = "application/zip"
# Rows fetched from the database at a time (a server-side cursor on PostgreSQL), so a table of
# years of pings is never in memory whole.
ROWS_PER_FETCH = 1000

Progress = Callable[[int], None]


def tenant_owned_tables() -> list[Table]:
    """Every table with a tenant column, parents before children."""
    return [table for table in load_models().sorted_tables if TENANT_COLUMN in table.c]


def _json_default(value: Any) -> Any:
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot export {type(value).__name__}")


def json_bytes(value: Any) -> bytes:
    return json.dumps(
        value, ensure_ascii=False, sort_keys=True, indent=1, default=_json_default
    ).encode()


def _decrypted(
    cipher: FieldCipher, tenant_id: uuid.UUID, table: Table, row: Mapping[str, Any]
) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for name, value in row.items():
        if name in CREDENTIAL_COLUMNS:
            continue
        if name.endswith(ENCRYPTED_SUFFIX) and isinstance(value, str):
            # The context every encrypted column is written with: ``<tenant>/<table>.<field>``.
            field = name.removesuffix(ENCRYPTED_SUFFIX)
            document[field] = cipher.decrypt(value, context=f"{tenant_id}/{table.name}.{field}")
            continue
        document[name] = value
    return document


def table_rows(
    session: Session, cipher: FieldCipher, tenant_id: uuid.UUID, table: Table
) -> Iterator[dict[str, Any]]:
    """The tenant's rows of one table as the archive holds them, fetched a batch at a time."""
    query = select(table).where(table.c[TENANT_COLUMN] == tenant_id)
    query = query.order_by(*table.primary_key.columns)
    result = session.execute(query, execution_options={"yield_per": ROWS_PER_FETCH})
    try:
        for row in result.mappings():
            yield _decrypted(cipher, tenant_id, table, row)
    finally:
        result.close()


def write_json_array(stream: IO[bytes], documents: Iterable[Any]) -> int:
    """Write the documents one at a time, byte for byte as :func:`json_bytes` writes the list
    of them; how many."""
    count = 0
    stream.write(b"[")
    for document in documents:
        stream.write(b",\n " if count else b"\n ")
        # One level deeper than on its own. A newline in JSON text is only ever indentation
        # (strings escape theirs), and in UTF-8 its byte is never part of another character.
        stream.write(json_bytes(document).replace(b"\n", b"\n "))
        count += 1
    stream.write(b"\n]" if count else b"]")
    return count


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=_json_default)
    if isinstance(value, str):
        return as_text(value)
    return str(value)


def ledger_verification(session: Session) -> dict[str, Any]:
    report = audit.verify_chain(session)
    return {
        "ok": report.ok,
        "entries_checked": report.entries_checked,
        "broken": None if report.broken is None else report.broken.describe(),
    }


def file_path(tenant_id: uuid.UUID, key: str) -> str:
    """Where a stored object goes in the archive: its key below the tenant's prefix."""
    return "files/" + key.removeprefix(tenant_key(tenant_id) + "/")


def _entry(name: str, size: int = 0) -> zipfile.ZipInfo:
    """An entry as ``ZipFile.writestr`` makes one: stamped now, deflated. Its expected size
    decides whether it needs ZIP64 sizes, as its actual size does for ``writestr``."""
    info = zipfile.ZipInfo(name, date_time=time.localtime(time.time())[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.file_size = size
    return info


def _write_table(
    archive: zipfile.ZipFile,
    session: Session,
    cipher: FieldCipher,
    tenant_id: uuid.UUID,
    table: Table,
    scratch_dir: Path | None,
) -> int:
    """A table's JSON, and its CSV if it has one, from one read of its rows; how many rows."""
    rows = table_rows(session, cipher, tenant_id, table)
    # A table's size is only known once written, and may pass what plain ZIP sizes can hold.
    json_entry = _entry(f"tables/{table.name}.json")
    if table.name not in CSV_TABLES:
        with archive.open(json_entry, "w", force_zip64=True) as stream:
            return write_json_array(stream, rows)
    # One entry is written at a time, so the CSV waits on disk while the JSON is written.
    with tempfile.TemporaryFile(dir=scratch_dir) as scratch:
        columns = _exported_columns(table)
        sheet = CsvSheet(scratch, columns)

        def written_to_sheet(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
            for row in rows:
                sheet.add_row(_csv_text(row.get(name)) for name in columns)
                yield row

        with archive.open(json_entry, "w", force_zip64=True) as stream:
            count = write_json_array(stream, written_to_sheet(rows))
        sheet.finish()
        size = scratch.tell()
        scratch.seek(0)
        with archive.open(_entry(f"csv/{table.name}.csv", size), "w") as stream:
            shutil.copyfileobj(scratch, stream, CHUNK_BYTES)
    return count


def _write_file(
    archive: zipfile.ZipFile, storage: ObjectStorage, tenant_id: uuid.UUID, key: str
) -> str | None:
    """Copy a stored object into the archive; its path there, or None when it is gone."""
    try:
        reader = storage.open(key)
    except ObjectNotFound:
        # Erased on a worker's request: the record and its hash stay, the bytes do not.
        return None
    path = file_path(tenant_id, key)
    with reader, archive.open(_entry(path, reader.size), "w") as stream:
        shutil.copyfileobj(reader, stream, CHUNK_BYTES)
    return path


def build_archive(
    session: Session,
    storage: ObjectStorage,
    cipher: FieldCipher,
    tenant: Tenant,
    target: IO[bytes],
    *,
    scratch_dir: Path | None = None,
    progress: Progress | None = None,
) -> None:
    """Write the zip of everything the tenant owns to ``target`` (a file open for writing, that
    can seek), read in the caller's tenant scope. Rows and files pass through a part at a time,
    never the whole archive; temporary files go to ``scratch_dir``, the system's by default."""
    tables = tenant_owned_tables()
    uploads = session.execute(
        select(StoredObject.key, StoredObject.sha256, StoredObject.content_type)
        .where(StoredObject.tenant_id == tenant.id)
        .order_by(StoredObject.key)
    ).all()
    steps = len(tables) + len(uploads) + 1
    done = 0

    def advance() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(99 * done // steps)

    counts: dict[str, int] = {}
    files: list[dict[str, Any]] = []
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for table in tables:
            counts[table.name] = _write_table(
                archive, session, cipher, tenant.id, table, scratch_dir
            )
            advance()
        for upload in uploads:
            files.append(
                {
                    "key": upload.key,
                    "path": _write_file(archive, storage, tenant.id, upload.key),
                    "sha256": upload.sha256,
                    "content_type": upload.content_type,
                }
            )
            advance()
        verification = ledger_verification(session)
        archive.writestr("ledger/verification.json", json_bytes(verification))
        manifest = {
            "tenant": {"id": tenant.id, "slug": tenant.slug, "name": tenant.name},
            "exported_at": utcnow(),
            "tables": counts,
            "files": files,
            "ledger_ok": verification["ok"],
        }
        archive.writestr("manifest.json", json_bytes(manifest))
        advance()


def _exported_columns(table: Table) -> list[str]:
    names = []
    for column in table.c:
        if column.name in CREDENTIAL_COLUMNS:
            continue
        names.append(column.name.removesuffix(ENCRYPTED_SUFFIX))
    return names


def create_export(session: Session, tenant: Tenant, *, requested_by: uuid.UUID) -> DataExport:
    """Record an export for the task to build; the caller commits, then sends the task."""
    export = DataExport(
        state=DataExportState.RUNNING.value,
        progress=0,
        filename=f"{tenant.slug}-{utcnow():%Y%m%d-%H%M}.zip",
        requested_by=requested_by,
    )
    session.add(export)
    session.flush()
    return export


def export_key(export: DataExport) -> str:
    return tenant_key(export.tenant_id, "tenant-exports", f"{export.id}.zip")


def run_export(
    session: Session,
    storage: ObjectStorage,
    cipher: FieldCipher,
    export_id: uuid.UUID,
    *,
    scratch_dir: Path | None = None,
) -> DataExport | None:
    """Build a recorded export, committing its progress as it goes. An export no longer running
    (a duplicate delivery of the task) is left alone; a failure marks it failed. The archive is
    built in a temporary file in ``scratch_dir`` (the system's by default), then stored."""
    export = session.get(DataExport, export_id)
    if export is None or export.state != DataExportState.RUNNING:
        return export

    def progress(percent: int) -> None:
        export.progress = max(export.progress, min(percent, 99))
        session.commit()

    try:
        tenant = session.get_one(Tenant, export.tenant_id)
        key = export_key(export)
        # Unnamed where the system allows, so nothing is left behind should the worker die.
        with tempfile.TemporaryFile(dir=scratch_dir, prefix="tenant-export-") as archive:
            build_archive(
                session,
                storage,
                cipher,
                tenant,
                archive,
                scratch_dir=scratch_dir,
                progress=progress,
            )
            size = archive.seek(0, os.SEEK_END)
            archive.seek(0)
            storage.put_file(key, archive, content_type=ZIP_TYPE)
    except Exception as exc:
        logger.exception("tenant export %s failed", export_id)
        session.rollback()
        return fail_export(session, export_id, type(exc).__name__)
    export.state = DataExportState.DONE.value
    export.progress = 100
    export.size = size
    export.object_key = key
    export.finished_at = utcnow()
    return export


def fail_export(session: Session, export_id: uuid.UUID, reason: str) -> DataExport:
    """Mark an export failed; ``reason`` is for operators and names no secret."""
    export = session.get_one(DataExport, export_id)
    export.state = DataExportState.FAILED.value
    export.error = reason[:200]
    export.finished_at = utcnow()
    return export
