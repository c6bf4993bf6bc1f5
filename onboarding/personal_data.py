"""A worker's personal data, on the worker's request: handed over as one zip, or erased.

The worker's records are found through the schema rather than listed: every tenant table with a
``worker_id`` column (certificates, training attempts and signatures, permit crews, check-ins…),
and the stored files those rows point at (certificate scans, signature images). So a table added
later is covered without anyone remembering this module.

Erasure keeps the worker's row and every record that cites it, so permits, ratings and the
ledger stay whole and the ledger still verifies: the name becomes a pseudonym, the ID number is
replaced by an empty value under encryption (with a digest that can match no number), the date
of birth is kept to its year, the phone is emptied, the photo is unlinked, and the bytes of the
photo, the scans and the signature images are deleted from object storage. The stored-object
rows stay, without their original file names: their SHA-256 is what signed records cite.
The ledger's worker entries hold keyed digests of the name, ID number and phone, not the values
(see :func:`onboarding.services.field_context`), so there is nothing readable there to erase.
What erasure cannot reach is said in ``docs/tenant-data.md``: ledger entries written before the
ledger held digests (they hold the name and masked ID number given when the worker was added,
and changed names and phones) and the name and strokes inside signature records, which their
record hash seals.
"""

from __future__ import annotations

import io
import uuid
import zipfile
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from infra import audit
from infra.db import utcnow
from infra.errors import Conflict, NotFound
from infra.field_encryption import FieldCipher
from infra.i18n import N_
from infra.schema import load_models
from infra.uploads import StoredObject
from onboarding.access import Viewer
from onboarding.models import Worker
from onboarding.services import id_number_context
from tenants.export import json_bytes

WORKER_COLUMN = "worker_id"
UPLOADS_TABLE = "stored_objects"
# A digest that no ID number produces (real digests are ``<version>:<hex>``), unique per worker.
ERASED_DIGEST_PREFIX = "erased:"
ERASED_FIELDS = ("name", "id_number", "birth_date", "phone", "photo", "files")
_NOT_FOUND = N_("Worker not found.")


def is_erased(worker: Worker) -> bool:
    return worker.id_number_digest.startswith(ERASED_DIGEST_PREFIX)


def pseudonym(worker: Worker) -> str:
    return f"W-{worker.id.hex[:8].upper()}"


def worker_tables() -> list[Table]:
    """Every table whose rows can belong to one worker, other than the workers table."""
    return [
        table
        for table in load_models().sorted_tables
        if WORKER_COLUMN in table.c and table.name != Worker.__tablename__
    ]


def _file_columns(table: Table) -> list[str]:
    """The columns of a table that point at a stored upload."""
    return [
        column.name
        for constraint in table.foreign_key_constraints
        if constraint.referred_table.name == UPLOADS_TABLE
        for column in constraint.columns
        if column.name != "tenant_id"
    ]


@dataclass(frozen=True)
class WorkerRecords:
    worker: Worker
    records: dict[str, list[dict[str, Any]]]
    uploads: list[StoredObject]


async def _records(session: AsyncSession, worker: Worker) -> WorkerRecords:
    records: dict[str, list[dict[str, Any]]] = {}
    upload_ids = {worker.photo_id} if worker.photo_id else set()
    for table in worker_tables():
        query = select(table).where(table.c[WORKER_COLUMN] == worker.id)
        rows = [dict(row) for row in (await session.execute(query)).mappings()]
        if not rows:
            continue
        records[table.name] = rows
        for name in _file_columns(table):
            upload_ids.update(row[name] for row in rows if row[name] is not None)
    uploads = (
        list(
            (
                await session.execute(
                    select(StoredObject)
                    .where(StoredObject.id.in_(upload_ids))
                    .order_by(StoredObject.key)
                )
            ).scalars()
        )
        if upload_ids
        else []
    )
    return WorkerRecords(worker, records, uploads)


async def _reviewed_worker(
    session: AsyncSession, viewer: Viewer, contractor_id: uuid.UUID, worker_id: uuid.UUID
) -> Worker:
    if not viewer.is_reviewer:
        raise NotFound(_NOT_FOUND)
    worker = await session.scalar(
        select(Worker).where(Worker.id == worker_id, Worker.contractor_id == contractor_id)
    )
    if worker is None:
        raise NotFound(_NOT_FOUND)
    return worker


def file_path(upload: StoredObject) -> str:
    return f"files/{upload.kind}/{upload.id}"


@dataclass(frozen=True)
class PersonalDataExport:
    """What the worker gets: the document, and the stored files to add by key."""

    filename: str
    document: dict[str, Any]
    files: dict[str, str]

    def archive(self, contents: dict[str, bytes]) -> bytes:
        """The zip, given the bytes of each stored key (a key whose object is gone is left out,
        as after an erasure)."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("worker.json", json_bytes(self.document))
            for path, key in self.files.items():
                if key in contents:
                    archive.writestr(path, contents[key])
        return buffer.getvalue()


async def export_personal_data(
    session: AsyncSession,
    viewer: Viewer,
    contractor_id: uuid.UUID,
    worker_id: uuid.UUID,
    *,
    cipher: FieldCipher,
) -> PersonalDataExport:
    """Everything about one worker, the ID number decrypted, recorded in the ledger (without
    the data itself). The caller reads the files from storage and builds the zip."""
    worker = await _reviewed_worker(session, viewer, contractor_id, worker_id)
    found = await _records(session, worker)
    photo = next((upload for upload in found.uploads if upload.id == worker.photo_id), None)
    document = {
        "worker": {
            "id": worker.id,
            "contractor_id": worker.contractor_id,
            "name": worker.name,
            "id_number": cipher.decrypt(worker.id_number_encrypted, context=id_number_context()),
            "birth_date": worker.birth_date,
            "phone": worker.phone,
            "trade": worker.trade,
            "state": worker.state,
            "photo": None if photo is None else file_path(photo),
            "erased": is_erased(worker),
        },
        "records": found.records,
        "files": [
            {
                "path": file_path(upload),
                "kind": upload.kind,
                "content_type": upload.content_type,
                "sha256": upload.sha256,
            }
            for upload in found.uploads
        ],
        "exported_at": utcnow(),
    }
    await audit.record(
        session,
        action="worker.personal_data_exported",
        subject_type="worker",
        subject_id=worker.id,
        actor_id=viewer.user_id,
        payload={"files": len(found.uploads)},
    )
    return PersonalDataExport(
        filename=f"worker-{worker.id}.zip",
        document=document,
        files={file_path(upload): upload.key for upload in found.uploads},
    )


async def erase_personal_data(
    session: AsyncSession,
    viewer: Viewer,
    contractor_id: uuid.UUID,
    worker_id: uuid.UUID,
    *,
    cipher: FieldCipher,
) -> list[str]:
    """Erase the worker's personal data (see the module's description); the storage keys whose
    objects the caller deletes once this has committed."""
    worker = await _reviewed_worker(session, viewer, contractor_id, worker_id)
    if is_erased(worker):
        raise Conflict("worker", "already_erased", N_("This worker's data is already erased."))
    found = await _records(session, worker)
    worker.name = pseudonym(worker)
    # Encrypting an empty value keeps the column readable by everything that decrypts it,
    # such as the re-encryption after a key rotation.
    worker.id_number_encrypted = cipher.encrypt("", context=id_number_context())
    worker.id_number_digest = f"{ERASED_DIGEST_PREFIX}{worker.id}"
    worker.id_number_masked = ""
    # The year alone still answers the age checks of admission; the day identifies.
    worker.birth_date = date(worker.birth_date.year, 1, 1)
    worker.phone = ""
    worker.photo_id = None
    for upload in found.uploads:
        upload.original_filename = None
    await session.flush()
    await audit.record(
        session,
        action="worker.personal_data_erased",
        subject_type="worker",
        subject_id=worker.id,
        actor_id=viewer.user_id,
        payload={"fields": list(ERASED_FIELDS), "files": len(found.uploads)},
    )
    return [upload.key for upload in found.uploads]
