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

The data is the tenant's own: columns stored encrypted (``<name>_encrypted``, such as the
workers' ID numbers) are written decrypted as ``<name>``. Credentials are left out: password
and token hashes, webhook secrets and the passwords of the tenant's own e-mail and SMS accounts
would only let someone act as the tenant.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
import zipfile
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from infra import audit
from infra.db import utcnow
from infra.field_encryption import FieldCipher
from infra.schema import load_models
from infra.spreadsheets import CsvDocument, as_text
from infra.storage import ObjectNotFound, ObjectStorage, tenant_key
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
) -> list[dict[str, Any]]:
    """The tenant's rows of one table as the archive holds them."""
    query = select(table).where(table.c[TENANT_COLUMN] == tenant_id)
    query = query.order_by(*table.primary_key.columns)
    return [_decrypted(cipher, tenant_id, table, row) for row in session.execute(query).mappings()]


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


def csv_bytes(rows: list[dict[str, Any]], columns: Iterable[str]) -> bytes:
    names = list(columns)
    document = CsvDocument(names)
    for row in rows:
        document.add_row(_csv_text(row.get(name)) for name in names)
    return document.encoded()


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


def build_archive(
    session: Session,
    storage: ObjectStorage,
    cipher: FieldCipher,
    tenant: Tenant,
    *,
    progress: Progress | None = None,
) -> bytes:
    """The zip of everything the tenant owns, read in the caller's tenant scope."""
    tables = tenant_owned_tables()
    uploads = list(session.execute(select(StoredObject).order_by(StoredObject.key)).scalars())
    steps = len(tables) + len(uploads) + 1
    done = 0

    def advance() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(99 * done // steps)

    buffer = io.BytesIO()
    counts: dict[str, int] = {}
    files: list[dict[str, Any]] = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for table in tables:
            rows = table_rows(session, cipher, tenant.id, table)
            counts[table.name] = len(rows)
            archive.writestr(f"tables/{table.name}.json", json_bytes(rows))
            if table.name in CSV_TABLES:
                archive.writestr(f"csv/{table.name}.csv", csv_bytes(rows, _exported_columns(table)))
            advance()
        for upload in uploads:
            path = file_path(tenant.id, upload.key)
            try:
                archive.writestr(path, storage.get(upload.key))
            except ObjectNotFound:
                # Erased on a worker's request: the record and its hash stay, the bytes do not.
                path = None
            files.append(
                {
                    "key": upload.key,
                    "path": path,
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
    return buffer.getvalue()


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
    session: Session, storage: ObjectStorage, cipher: FieldCipher, export_id: uuid.UUID
) -> DataExport | None:
    """Build a recorded export, committing its progress as it goes. An export no longer running
    (a duplicate delivery of the task) is left alone; a failure marks it failed."""
    export = session.get(DataExport, export_id)
    if export is None or export.state != DataExportState.RUNNING:
        return export

    def progress(percent: int) -> None:
        export.progress = max(export.progress, min(percent, 99))
        session.commit()

    try:
        tenant = session.get_one(Tenant, export.tenant_id)
        data = build_archive(session, storage, cipher, tenant, progress=progress)
        key = export_key(export)
        storage.put(key, data, content_type=ZIP_TYPE)
    except Exception as exc:
        logger.exception("tenant export %s failed", export_id)
        session.rollback()
        return fail_export(session, export_id, type(exc).__name__)
    export.state = DataExportState.DONE.value
    export.progress = 100
    export.size = len(data)
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
