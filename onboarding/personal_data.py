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

Sealed records (induction and briefing signatures) take the pseudonym for the typed name and lose
their strokes; their record hash, which covers the name, cannot be recomputed afterwards, so the
erasure's own ledger entry states, for each, that it was intact before and what it hashes to
after (:func:`attested_after_erasure` is what a verifier asks). The worker's own login is
disabled and loses its name, address and phone. The tenant's cached PDFs are deleted after the
erasure commits (:func:`delete_erased_objects`), so a permit or record is rendered again with the
pseudonym.

The tenant's outbox keeps every notification queued or sent, with its text's values and its
addresses. Erasure keeps those rows too, as the history of what was sent, but without the worker:
in each message that is the worker's (:class:`Traces`) the names become the pseudonym and the
numbers and addresses are removed; one not yet delivered that goes to the worker is withdrawn
(:func:`infra.outbox.cancel`), there being nobody to send it to.

The ledger's worker and certificate entries hold keyed digests of the name, ID number, phone and
certificate number, not the values (see :func:`onboarding.services.field_context`), so there is
nothing readable there to erase. What erasure cannot reach is said in ``docs/tenant-data.md``:
ledger entries written before the ledger held digests, and messages already delivered.
"""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import flag_modified

from infra import audit, outbox
from infra.db import utcnow
from infra.documents import cached_documents_prefix
from infra.errors import Conflict, NotFound
from infra.field_encryption import FieldCipher
from infra.i18n import N_
from infra.notify.sms import mask_phone
from infra.schema import load_models
from infra.storage import ObjectStorage
from infra.uploads import StoredObject
from onboarding.access import Viewer
from onboarding.models import Worker
from onboarding.services import id_number_context
from tenants.export import json_bytes
from tenants.models import ApiToken, User

WORKER_COLUMN = "worker_id"
UPLOADS_TABLE = "stored_objects"
# A digest that no ID number produces (real digests are ``<version>:<hex>``), unique per worker.
ERASED_DIGEST_PREFIX = "erased:"
ERASED_FIELDS = ("name", "id_number", "birth_date", "phone", "photo", "files")
ERASED_ACTION = "worker.personal_data_erased"
# A sealed record is a row whose ``record_hash`` covers its content (signatures); of it, erasure
# replaces the typed name and empties the drawing, whose digest stays sealed.
RECORD_HASH = "record_hash"
SEALED_NAME = "full_name"
SEALED_DRAWING = "strokes"
# Rows that copy the worker's name beside their ``worker_id`` (or the worker's login's
# ``user_id``), such as the people of a geofence watch.
COPIED_NAME = "name"
# Alerts copy the display name of the login whose phone raised them.
COPIED_PERSON = "person"
LOGIN_COLUMN = "user_id"
# An address no mail reaches (RFC 2606), unique per account as the tenant's addresses must be.
ERASED_EMAIL = "erased-{id}@erased.invalid"
# Where a stored notification says whom it goes to: the notification's recipient (a user id, an
# e-mail address or a phone number), and one channel's destination.
ADDRESS_KEYS = ("recipient", "destination")
OUTBOX_BATCH = 1000
OUTBOX_CANCELLED = "the recipient's personal data was erased"
_NOT_FOUND = N_("Worker not found.")


@dataclass(frozen=True)
class SealedRecords:
    """How to recompute the record hash of one table's sealed rows."""

    model: type[Any]
    record_hash: Callable[[Any], str]


_SEALED: dict[str, SealedRecords] = {}


def register_sealed_records(model: type[Any], record_hash: Callable[[Any], str]) -> None:
    """Called by the package that seals the rows of ``model``: erasure refuses to run on a
    table with a record hash that nobody registered, rather than break its seals unawares."""
    _SEALED[model.__tablename__] = SealedRecords(model, record_hash)


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


async def _erase_sealed_records(
    session: AsyncSession, worker: Worker, name: str
) -> list[dict[str, Any]]:
    """Put the pseudonym in the worker's sealed records and empty their drawings; what the
    erasure's ledger entry attests of each."""
    attested: list[dict[str, Any]] = []
    for table in worker_tables():
        if RECORD_HASH not in table.c:
            continue
        sealed = _SEALED.get(table.name)
        if sealed is None:
            raise RuntimeError(f"{table.name} holds sealed records that nobody registered")
        model = sealed.model
        rows = await session.scalars(
            select(model).where(model.worker_id == worker.id).order_by(model.id)
        )
        for row in rows:
            intact = sealed.record_hash(row) == row.record_hash
            if SEALED_NAME in table.c:
                setattr(row, SEALED_NAME, name)
            if SEALED_DRAWING in table.c:
                setattr(row, SEALED_DRAWING, {})
            attested.append(
                {
                    "table": table.name,
                    "id": row.id,
                    "intact": intact,
                    "record_hash": row.record_hash,
                    "erased_record_hash": sealed.record_hash(row),
                }
            )
    return attested


async def _erase_copied_names(session: AsyncSession, worker: Worker, name: str) -> list[str]:
    """Put the pseudonym in every other row that copied the worker's name; the tables."""
    changed = []
    for table in worker_tables():
        if COPIED_NAME not in table.c or RECORD_HASH in table.c:
            continue
        whose = table.c[WORKER_COLUMN] == worker.id
        if worker.user_id is not None and LOGIN_COLUMN in table.c:
            whose = whose | (table.c[LOGIN_COLUMN] == worker.user_id)
        result = await session.execute(
            update(table)
            .where(table.c.tenant_id == worker.tenant_id, whose)
            .values({COPIED_NAME: name})
        )
        if result.rowcount:
            changed.append(table.name)
    if worker.user_id is None:
        return changed
    for table in load_models().sorted_tables:
        if COPIED_PERSON not in table.c or LOGIN_COLUMN not in table.c:
            continue
        result = await session.execute(
            update(table)
            .where(table.c.tenant_id == worker.tenant_id, table.c[LOGIN_COLUMN] == worker.user_id)
            .values({COPIED_PERSON: name})
        )
        if result.rowcount:
            changed.append(table.name)
    return changed


async def _disable_login(session: AsyncSession, worker: Worker, name: str) -> bool:
    """The worker's own login can no longer sign in and no longer names them; its id stays,
    as the records it signed and the ledger cite it. Whether there was one."""
    if worker.user_id is None:
        return False
    user = await session.scalar(select(User).where(User.id == worker.user_id))
    if user is None:
        return False
    user.name = name
    user.email = ERASED_EMAIL.format(id=user.id)
    user.phone = None
    user.password_hash = None
    user.is_active = False
    user.failed_login_count = 0
    user.locked_until = None
    await session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return True


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _addresses(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ADDRESS_KEYS and isinstance(item, str):
                yield item
            else:
                yield from _addresses(item)
    elif isinstance(value, list):
        for item in value:
            yield from _addresses(item)


def _longest_first(values: Iterable[str | None]) -> tuple[str, ...]:
    """Distinct values, each before the shorter ones it may contain, as it is replaced first."""
    return tuple(sorted({value for value in values if value}, key=len, reverse=True))


@dataclass(frozen=True)
class Traces:
    """What names the worker in a stored message, read before the erasure: the names (the
    worker's and their login's) give way to the pseudonym; the ID number (full and masked),
    phones and e-mail address are removed."""

    names: tuple[str, ...]
    pseudonym: str
    identifying: tuple[str, ...]
    removed: tuple[str, ...]
    addresses: frozenset[str]

    @classmethod
    def of(cls, worker: Worker, login: User | None, id_number: str, pseudonym: str) -> Traces:
        names: list[str | None] = [worker.name]
        phones: list[str | None] = [worker.phone]
        emails: list[str] = []
        logins: list[str] = []
        if login is not None:
            names.append(login.name)
            phones.append(login.phone)
            emails.append(login.email)
            logins.append(str(login.id))
        identifying = [id_number, worker.id_number_masked, *phones, *emails]
        return cls(
            names=_longest_first(names),
            pseudonym=pseudonym,
            identifying=_longest_first(identifying),
            # A masked phone could as well be another person's: it is removed from the worker's
            # messages, but does not make a message the worker's.
            removed=_longest_first(
                [*identifying, *(mask_phone(phone) for phone in phones if phone)]
            ),
            addresses=frozenset(value for value in [*logins, *phones, *emails] if value),
        )

    def addressed(self, payload: Any) -> bool:
        """Whether the message goes to the worker."""
        return any(address in self.addresses for address in _addresses(payload))

    def removes_address(self, payload: Any) -> bool:
        """Whether the message goes to one of the worker's phones or e-mail addresses."""
        return any(address in self.removed for address in _addresses(payload))

    def concerns(self, payload: Any, error: str | None) -> bool:
        """Whether the message is the worker's: it goes to them, holds one of their numbers or
        addresses, or names them in a field of its own. A name inside longer text is not enough,
        as it may be part of another name."""
        texts = [*_strings(payload), error or ""]
        return (
            self.addressed(payload)
            or any(value in text for text in texts for value in self.identifying)
            or any(text in self.names for text in texts)
        )

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for name in self.names:
                value = value.replace(name, self.pseudonym)
            for removed in self.removed:
                value = value.replace(removed, "")
            return value
        if isinstance(value, dict):
            return {key: self.scrub(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.scrub(item) for item in value]
        return value


async def _outbox_naming(session: AsyncSession, traces: Traces) -> list[uuid.UUID]:
    """The tenant's outbox messages that are the worker's, read in batches."""
    found: list[uuid.UUID] = []
    after: uuid.UUID | None = None
    while True:
        query = (
            select(
                outbox.OutboxMessage.id,
                outbox.OutboxMessage.payload,
                outbox.OutboxMessage.last_error,
            )
            .order_by(outbox.OutboxMessage.id)
            .limit(OUTBOX_BATCH)
        )
        if after is not None:
            query = query.where(outbox.OutboxMessage.id > after)
        rows = (await session.execute(query)).all()
        found += [row.id for row in rows if traces.concerns(row.payload, row.last_error)]
        if len(rows) < OUTBOX_BATCH:
            return found
        after = rows[-1].id


async def _erase_from_outbox(session: AsyncSession, traces: Traces) -> dict[str, int]:
    """Take the worker out of the tenant's queued and delivered messages, keeping each row, its
    status and its times; withdraw those not delivered yet that go to the worker. How many
    messages were changed, and of them how many withdrawn."""
    scrubbed = cancelled = 0
    done: set[uuid.UUID] = set()
    # A delivery running during the first look may have queued more messages from one of the
    # worker's; they are committed by the time its row lock is released, so look once more.
    while found := [id_ for id_ in await _outbox_naming(session, traces) if id_ not in done]:
        done.update(found)
        messages = await session.scalars(
            select(outbox.OutboxMessage)
            .where(outbox.OutboxMessage.id.in_(found))
            .order_by(outbox.OutboxMessage.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        for message in messages:
            before = (message.payload, message.last_error, message.status, message.key)
            if traces.removes_address(message.payload):
                # A channel's key is a plain digest of its destination, which is enough to find
                # a phone number again.
                message.key = f"erased:{message.id}"
            if traces.addressed(message.payload) and message.status not in (
                outbox.OutboxStatus.DELIVERED,
                outbox.OutboxStatus.CANCELLED,
            ):
                outbox.cancel(message, OUTBOX_CANCELLED)
                cancelled += 1
            message.payload = traces.scrub(message.payload)
            if message.last_error is not None:
                message.last_error = traces.scrub(message.last_error)
            if (message.payload, message.last_error, message.status, message.key) == before:
                continue
            scrubbed += 1
            if message.status == before[2]:
                # Only the content changed: the row keeps the time of its last delivery attempt.
                flag_modified(message, "updated_at")
    return {"scrubbed": scrubbed, "cancelled": cancelled}


async def erase_personal_data(
    session: AsyncSession,
    viewer: Viewer,
    contractor_id: uuid.UUID,
    worker_id: uuid.UUID,
    *,
    cipher: FieldCipher,
) -> list[str]:
    """Erase the worker's personal data (see the module's description); the storage keys whose
    objects the caller deletes with :func:`delete_erased_objects` once this has committed."""
    worker = await _reviewed_worker(session, viewer, contractor_id, worker_id)
    if is_erased(worker):
        raise Conflict("worker", "already_erased", N_("This worker's data is already erased."))
    found = await _records(session, worker)
    name = pseudonym(worker)
    login = (
        None
        if worker.user_id is None
        else await session.scalar(select(User).where(User.id == worker.user_id))
    )
    id_number = cipher.decrypt(worker.id_number_encrypted, context=id_number_context())
    messages = await _erase_from_outbox(session, Traces.of(worker, login, id_number, name))
    sealed = await _erase_sealed_records(session, worker, name)
    copied = await _erase_copied_names(session, worker, name)
    disabled = await _disable_login(session, worker, name)
    worker.name = name
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
        action=ERASED_ACTION,
        subject_type="worker",
        subject_id=worker.id,
        actor_id=viewer.user_id,
        payload={
            "fields": list(ERASED_FIELDS),
            "files": len(found.uploads),
            "sealed_records": sealed,
            "named_in": copied,
            "login_disabled": disabled,
            "outbox_messages": messages,
            "cached_documents_deleted": True,
        },
    )
    return [upload.key for upload in found.uploads]


def delete_erased_objects(storage: ObjectStorage, tenant_id: uuid.UUID, keys: Iterable[str]) -> int:
    """After the erasure committed: delete the worker's files, and every PDF the tenant has
    cached. A cached PDF is named by a hash of what it shows, not by whom, so the worker's cannot
    be told apart; the others are rendered again when next asked for. How many were deleted."""
    doomed = [*keys, *storage.keys(cached_documents_prefix(tenant_id))]
    for key in doomed:
        storage.delete(key)
    return len(doomed)


async def attested_after_erasure(
    session: AsyncSession,
    *,
    worker_id: uuid.UUID | None,
    table: str,
    record_id: uuid.UUID,
    record_hash: str,
    recomputed: str,
) -> bool:
    """Whether the worker's erasure, in an intact ledger entry, attests that this sealed record
    was intact when erased, under ``record_hash``, and hashes to ``recomputed`` since: the check
    that replaces recomputing the record hash once the name it covers is gone."""
    if worker_id is None:
        return False
    entries = await session.scalars(
        select(audit.AuditEntry).where(
            audit.AuditEntry.action == ERASED_ACTION,
            audit.AuditEntry.subject_type == "worker",
            audit.AuditEntry.subject_id == str(worker_id),
        )
    )
    wanted = {
        "table": table,
        "id": str(record_id),
        "intact": True,
        "record_hash": record_hash,
        "erased_record_hash": recomputed,
    }
    return any(
        audit.entry_intact(entry) and wanted in entry.payload.get("sealed_records", [])
        for entry in entries
    )
