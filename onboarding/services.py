"""Admission (准入): registration, the contractor's own records, EHS review, suspension and
blacklisting, worker qualification, and the lists EHS works from.

Every function runs in the caller's transaction and tenant scope, and every change of state is
written to the ledger in that transaction. Functions that act for a signed-in user take their
:class:`~onboarding.access.Viewer`: what it may not see answers ``NotFound``, like what does not
exist. ID numbers enter through :func:`add_worker` and :func:`import_workers` and are stored only
encrypted; nothing here hands them back except masked.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

import anyio
from msgspec import UNSET
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from infra import audit
from infra.db import utcnow
from infra.errors import Conflict, InvalidInput, NotFound
from infra.field_encryption import FieldCipher
from infra.i18n import N_, gettext
from infra.security import new_secret, secret_digest
from infra.tenancy import current_tenant_id
from infra.uploads import StoredObject
from onboarding.access import (
    CONTRACTOR_NOT_FOUND,
    Viewer,
    ensure_editable_by,
    ensure_reviewer,
    ensure_visible,
)
from onboarding.catalogue import DOCUMENT_LABELS, REQUIRED_DOCUMENTS, WorkType
from onboarding.changes import (
    Item,
    change_contractor_state,
    notify_decision,
)
from onboarding.clock import plant_date, plant_today
from onboarding.expiry import certificates_expiring_by, documents_expiring_by
from onboarding.models import (
    DEFAULT_REMINDER_DAYS,
    Certificate,
    Contractor,
    ContractorDocument,
    ContractorInvitation,
    ContractorMember,
    OnboardingSettings,
    Worker,
)
from onboarding.qualification import Verdict, contractor_verdict, worker_verdict
from onboarding.review import apply_review, required_documents_problem, required_documents_valid
from onboarding.roster import ID_NUMBER, RosterRefused, RowProblem, read_roster
from onboarding.schemas import (
    CertificateIn,
    CertificateUpdate,
    ContractorAdminIn,
    ContractorRegistration,
    ContractorUpdate,
    ContractorUserIn,
    DocumentIn,
    DocumentUpdate,
    ReviewIn,
    WorkerIn,
    WorkerUpdate,
)
from onboarding.states import (
    EDITABLE_STATES,
    PROFILE_EDITABLE_STATES,
    ContractorAction,
    ContractorState,
    ItemAction,
    ItemState,
    contractor_transition,
    item_transition,
)
from onboarding.validators import IdNumber, normalise, validate_id_number, validate_uscc
from tenants import entitlements
from tenants import services as tenant_services
from tenants.models import Role, User

ID_NUMBER_FIELD = "workers.id_number"
NAME_FIELD = "workers.name"
PHONE_FIELD = "workers.phone"
CERTIFICATE_NUMBER_FIELD = "certificates.number"
DEFAULT_INVITATION_DAYS = 14
MAX_REMINDER_DAY = 365
MAX_REMINDERS = 5
EXPIRING_WITHIN_DAYS = 30
_UNIQUE_USCC = N_("A company with this unified social credit code is already registered.")
_UNIQUE_WORKER = N_("This person is already a worker of this company.")
_UNIQUE_CERTIFICATE = N_("A certificate with this number is already registered.")


def _day(value: date | None) -> str | None:
    """Dates go into the ledger as ISO text; its canonical JSON knows times, not days."""
    return value.isoformat() if value is not None else None


async def _ledger(
    session: AsyncSession,
    action: str,
    subject_type: str,
    subject_id: uuid.UUID,
    viewer_or_actor: Viewer | uuid.UUID | None,
    payload: dict[str, Any],
) -> audit.AuditEntry:
    actor = viewer_or_actor.user_id if isinstance(viewer_or_actor, Viewer) else viewer_or_actor
    return await audit.record(
        session,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        actor_id=actor,
        payload=payload,
    )


# --- tenant settings and invitations ---------------------------------------------------------


def _check_reminder_days(days: Sequence[int]) -> list[int]:
    """The days before an expiry or a lapse when reminders go out, longest first: one to five
    different days, each from 1 to 365."""
    if not 1 <= len(days) <= MAX_REMINDERS:
        raise InvalidInput(
            "reminder_days",
            "count",
            N_("Give from 1 to %(count)s reminder days."),
            count=MAX_REMINDERS,
        )
    if any(not 1 <= day <= MAX_REMINDER_DAY for day in days):
        raise InvalidInput(
            "reminder_days",
            "range",
            N_("Each reminder day must be from 1 to %(maximum)s."),
            maximum=MAX_REMINDER_DAY,
        )
    if len(set(days)) != len(days):
        raise InvalidInput("reminder_days", "distinct", N_("Give each reminder day once."))
    return sorted(days, reverse=True)


async def onboarding_settings(session: AsyncSession) -> OnboardingSettings:
    """The tenant's settings; the defaults (registration by invitation only) when never set."""
    row = await session.scalar(select(OnboardingSettings))
    if row is not None:
        return row
    return OnboardingSettings(open_registration=False, reminder_days=list(DEFAULT_REMINDER_DAYS))


async def set_open_registration(
    session: AsyncSession, *, allowed: bool, actor_id: uuid.UUID | None
) -> OnboardingSettings:
    row = await session.scalar(select(OnboardingSettings).with_for_update())
    if row is None:
        row = OnboardingSettings(open_registration=allowed)
        session.add(row)
    row.open_registration = allowed
    await session.flush()
    await _ledger(
        session,
        "onboarding_settings.changed",
        "onboarding_settings",
        row.id,
        actor_id,
        {"open_registration": allowed},
    )
    return row


async def set_reminder_days(
    session: AsyncSession, days: Sequence[int], *, actor_id: uuid.UUID | None
) -> OnboardingSettings:
    """Set the tenant's reminder days, used by the expiry watch and the induction lapse watch
    from their next pass."""
    checked = _check_reminder_days(days)
    row = await session.scalar(select(OnboardingSettings).with_for_update())
    if row is None:
        row = OnboardingSettings(open_registration=False)
        session.add(row)
    row.reminder_days = checked
    await session.flush()
    await _ledger(
        session,
        "onboarding_settings.changed",
        "onboarding_settings",
        row.id,
        actor_id,
        {"reminder_days": checked},
    )
    return row


async def create_invitation(
    session: AsyncSession,
    *,
    email: str,
    valid_for: timedelta = timedelta(days=DEFAULT_INVITATION_DAYS),
    actor_id: uuid.UUID | None,
) -> tuple[ContractorInvitation, str]:
    """An invitation for one e-mail address; returns it with its token, which exists only in
    this answer (the row keeps its digest)."""
    token = new_secret()
    invitation = ContractorInvitation(
        email=tenant_services.normalize_email(email),
        token_hash=secret_digest(token),
        expires_at=utcnow() + valid_for,
        created_by=actor_id,
    )
    session.add(invitation)
    await session.flush()
    await _ledger(
        session,
        "contractor_invitation.created",
        "contractor_invitation",
        invitation.id,
        actor_id,
        {"email": invitation.email, "expires_at": invitation.expires_at},
    )
    return invitation, token


async def _claim_invitation(session: AsyncSession, token: str, email: str) -> ContractorInvitation:
    invitation = await session.scalar(
        select(ContractorInvitation)
        .where(ContractorInvitation.token_hash == secret_digest(token))
        .with_for_update()
    )
    if invitation is None or invitation.used_at is not None or invitation.expires_at <= utcnow():
        raise InvalidInput(
            "invitation_token",
            "invalid",
            N_("The invitation is unknown, already used or expired."),
        )
    if invitation.email != tenant_services.normalize_email(email):
        raise InvalidInput(
            "admin.email",
            "invitation",
            N_("Register with the e-mail address the invitation was sent to."),
        )
    return invitation


# --- registration and the company record -------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    contractor: Contractor
    admin_user_id: uuid.UUID


async def _ensure_uscc_free(
    session: AsyncSession, uscc: str, *, other_than: uuid.UUID | None = None
) -> None:
    query = select(Contractor.id).where(Contractor.uscc == uscc)
    if other_than is not None:
        query = query.where(Contractor.id != other_than)
    if (await session.execute(query)).first():
        raise Conflict("uscc", "unique", _UNIQUE_USCC)


def _work_types(values: Iterable[WorkType]) -> list[str]:
    """Each once, in the catalogue's order, so equal choices compare equal."""
    chosen = {WorkType(value) for value in values}
    return [work_type.value for work_type in WorkType if work_type in chosen]


async def _add_member(
    session: AsyncSession,
    contractor_id: uuid.UUID,
    person: ContractorAdminIn | ContractorUserIn,
    *,
    role: Role,
    field_prefix: str,
    actor_id: uuid.UUID | None,
) -> User:
    """A user account of the company: the user, their role and their link to the company."""
    try:
        user = await tenant_services.create_user(
            session,
            email=person.email,
            name=person.name,
            password=person.password,
            phone=person.phone,
            locale=person.locale,
            actor_id=actor_id,
        )
    except Conflict as exc:
        # The tenant service knows a user; the caller sent a company, and must learn which field.
        for problem in exc.problems:
            problem.field = f"{field_prefix}{problem.field}"
        raise
    await tenant_services.grant_role(
        session, user_id=user.id, role=role, actor_id=actor_id or user.id
    )
    session.add(ContractorMember(user_id=user.id, contractor_id=contractor_id))
    await session.flush()
    return user


async def register_contractor(session: AsyncSession, data: ContractorRegistration) -> Registration:
    """Register a company in the current tenant with its first administrator, by invitation or,
    when the tenant allows it, openly. The company starts as a draft."""
    uscc = validate_uscc(data.uscc)
    invitation = None
    if data.invitation_token:
        invitation = await _claim_invitation(session, data.invitation_token, data.admin.email)
    elif not (await onboarding_settings(session)).open_registration:
        raise InvalidInput(
            "invitation_token", "required", N_("Registration here is by invitation only.")
        )
    await _ensure_uscc_free(session, uscc)
    contractor = Contractor(
        name=data.name,
        uscc=uscc,
        legal_representative=data.legal_representative,
        contact_name=data.contact_name,
        contact_phone=data.contact_phone,
        address=data.address,
        work_types=_work_types(data.work_types),
        state=ContractorState.DRAFT.value,
    )
    session.add(contractor)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("uscc", "unique", _UNIQUE_USCC) from exc
    admin = await _add_member(
        session,
        contractor.id,
        data.admin,
        role=Role.CONTRACTOR_ADMIN,
        field_prefix="admin.",
        actor_id=None,
    )
    if invitation is not None:
        invitation.used_at = utcnow()
        invitation.contractor_id = contractor.id
    await session.flush()
    await _ledger(
        session,
        "contractor.registered",
        "contractor",
        contractor.id,
        admin.id,
        {
            "name": contractor.name,
            "uscc": uscc,
            "work_types": contractor.work_types,
            "admin_user_id": admin.id,
            "invitation_id": invitation.id if invitation else None,
        },
    )
    return Registration(contractor, admin.id)


async def _contractor(
    session: AsyncSession, contractor_id: uuid.UUID, *, lock: bool = False
) -> Contractor:
    query = select(Contractor).where(Contractor.id == contractor_id)
    if lock:
        query = query.with_for_update()
    contractor = await session.scalar(query)
    if contractor is None:
        raise NotFound(CONTRACTOR_NOT_FOUND)
    return contractor


async def list_contractors(
    session: AsyncSession, viewer: Viewer, *, state: ContractorState | None = None
) -> list[Contractor]:
    query = select(Contractor).order_by(Contractor.name, Contractor.id)
    if not viewer.is_host:
        if viewer.contractor_id is None:
            return []
        query = query.where(Contractor.id == viewer.contractor_id)
    if state is not None:
        query = query.where(Contractor.state == state.value)
    return list(await session.scalars(query))


async def get_contractor(
    session: AsyncSession, viewer: Viewer, contractor_id: uuid.UUID
) -> Contractor:
    ensure_visible(viewer, contractor_id)
    return await _contractor(session, contractor_id)


def _not_editable() -> Conflict:
    return Conflict(
        "state", "editable", N_("The company's records cannot be changed in this state.")
    )


async def _editable(session: AsyncSession, viewer: Viewer, contractor_id: uuid.UUID) -> Contractor:
    ensure_editable_by(viewer, contractor_id)
    contractor = await _contractor(session, contractor_id, lock=True)
    if contractor.state not in EDITABLE_STATES:
        raise _not_editable()
    return contractor


def _given(data: Any, *names: str) -> dict[str, Any]:
    """The fields a partial update sets."""
    return {name: getattr(data, name) for name in names if getattr(data, name) is not UNSET}


def _apply_changes(record: object, changes: dict[str, Any]) -> dict[str, Any]:
    """Set the fields whose value differs; the ones that did change, for the ledger."""
    changed = {name: value for name, value in changes.items() if getattr(record, name) != value}
    for name, value in changed.items():
        setattr(record, name, value)
    return changed


async def update_contractor(
    session: AsyncSession, viewer: Viewer, contractor_id: uuid.UUID, data: ContractorUpdate
) -> Contractor:
    """Change the company's details; only before admission, and by its own administrator."""
    contractor = await _editable(session, viewer, contractor_id)
    if contractor.state not in PROFILE_EDITABLE_STATES:
        raise _not_editable()
    changes = _given(
        data,
        "name",
        "uscc",
        "legal_representative",
        "contact_name",
        "contact_phone",
        "address",
        "work_types",
    )
    if "uscc" in changes:
        changes["uscc"] = validate_uscc(changes["uscc"])
        await _ensure_uscc_free(session, changes["uscc"], other_than=contractor.id)
    if "work_types" in changes:
        changes["work_types"] = _work_types(changes["work_types"])
    changes = _apply_changes(contractor, changes)
    if not changes:
        return contractor
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("uscc", "unique", _UNIQUE_USCC) from exc
    await _ledger(session, "contractor.updated", "contractor", contractor.id, viewer, changes)
    return contractor


async def _member_ids(session: AsyncSession, contractor_id: uuid.UUID) -> set[uuid.UUID]:
    return set(
        await session.scalars(
            select(ContractorMember.user_id).where(ContractorMember.contractor_id == contractor_id)
        )
    )


async def _check_upload(
    session: AsyncSession,
    object_id: uuid.UUID,
    *,
    kind: str,
    field_name: str,
    contractor_id: uuid.UUID,
) -> None:
    """The file must be an upload of this tenant, made by a user of this company, of the right
    kind; another company's upload answers like one that does not exist."""
    record = await session.scalar(select(StoredObject).where(StoredObject.id == object_id))
    if record is None or record.created_by not in await _member_ids(session, contractor_id):
        raise InvalidInput(field_name, "exists", N_("No such uploaded file."))
    if record.kind != kind:
        raise InvalidInput(field_name, "kind", N_("Upload this file as %(kind)s."), kind=kind)


async def submit_contractor(
    session: AsyncSession, viewer: Viewer, contractor_id: uuid.UUID
) -> Contractor:
    """Hand the company's records to EHS; the required company documents must be there."""
    ensure_editable_by(viewer, contractor_id)
    contractor = await _contractor(session, contractor_id, lock=True)
    contractor_transition(contractor.state, ContractorAction.SUBMIT)
    present = set(
        await session.scalars(
            select(ContractorDocument.kind).where(
                ContractorDocument.contractor_id == contractor.id,
                ContractorDocument.state.in_((ItemState.PENDING, ItemState.VERIFIED)),
            )
        )
    )
    missing = sorted(REQUIRED_DOCUMENTS - present)
    if missing:
        raise InvalidInput(
            "documents",
            "required_documents",
            N_("Add these documents before submitting: %(documents)s."),
            documents=", ".join(gettext(DOCUMENT_LABELS[kind]) for kind in missing),
        )
    await session.run_sync(
        lambda sync: change_contractor_state(
            sync, contractor, ContractorAction.SUBMIT, reason=None, actor_id=viewer.user_id
        )
    )
    return contractor


async def add_contractor_user(
    session: AsyncSession, viewer: Viewer, contractor_id: uuid.UUID, data: ContractorUserIn
) -> User:
    """Another account of the company, made by its administrator: a second administrator, or a
    worker's own login for inductions and check-ins on their phone."""
    contractor = await _editable(session, viewer, contractor_id)
    worker = await _worker_for_account(session, contractor.id, data)
    user = await _add_member(
        session,
        contractor.id,
        data,
        role=Role(data.role),
        field_prefix="",
        actor_id=viewer.user_id,
    )
    if worker is not None:
        worker.user_id = user.id
        await session.flush()
    await _ledger(
        session,
        "contractor.user_added",
        "contractor",
        contractor.id,
        viewer,
        {"user_id": user.id, "role": data.role, "worker_id": worker.id if worker else None},
    )
    return user


async def _worker_for_account(
    session: AsyncSession, contractor_id: uuid.UUID, data: ContractorUserIn
) -> Worker | None:
    """The worker a new worker login belongs to: one of the company's, without a login yet."""
    if data.role != Role.CONTRACTOR_WORKER.value:
        if data.worker_id is not None:
            raise InvalidInput(
                "worker_id", "worker_role_only", N_("Only a worker's login names a worker.")
            )
        return None
    if data.worker_id is None:
        raise InvalidInput("worker_id", "required", N_("Choose the worker this login is for."))
    worker = await session.scalar(
        select(Worker)
        .where(Worker.id == data.worker_id, Worker.contractor_id == contractor_id)
        .with_for_update()
    )
    if worker is None:
        raise InvalidInput("worker_id", "exists", N_("No such worker in this company."))
    if worker.user_id is not None:
        raise Conflict("worker_id", "unique", N_("This worker already has a login."))
    return worker


async def worker_for_user(session: AsyncSession, user_id: uuid.UUID) -> Worker | None:
    """The worker whose own login this is, if it is one."""
    return await session.scalar(select(Worker).where(Worker.user_id == user_id))


# --- documents -------------------------------------------------------------------------------


def _check_document_dates(valid_from: date, valid_until: date | None, today: date) -> None:
    if valid_until is None:
        return
    if valid_until <= valid_from:
        raise InvalidInput(
            "valid_until",
            "after_valid_from",
            N_("The end of validity must come after its start."),
        )
    if valid_until <= today:
        raise InvalidInput("valid_until", "expired", N_("This document has already expired."))


async def list_documents(
    session: AsyncSession, viewer: Viewer, contractor_id: uuid.UUID
) -> list[ContractorDocument]:
    contractor = await get_contractor(session, viewer, contractor_id)
    return list(
        await session.scalars(
            select(ContractorDocument)
            .where(ContractorDocument.contractor_id == contractor.id)
            .order_by(ContractorDocument.kind)
        )
    )


async def add_document(
    session: AsyncSession, viewer: Viewer, contractor_id: uuid.UUID, data: DocumentIn
) -> ContractorDocument:
    contractor = await _editable(session, viewer, contractor_id)
    _check_document_dates(data.valid_from, data.valid_until, plant_today())
    await _check_upload(
        session,
        data.scan_id,
        kind="company_document",
        field_name="scan_id",
        contractor_id=contractor.id,
    )
    taken = await session.scalar(
        select(ContractorDocument.id).where(
            ContractorDocument.contractor_id == contractor.id,
            ContractorDocument.kind == data.kind.value,
        )
    )
    if taken is not None:
        raise Conflict(
            "kind",
            "unique",
            N_("The company already has a document of this kind; change that one instead."),
        )
    document = ContractorDocument(
        contractor_id=contractor.id,
        kind=data.kind.value,
        number=normalise(data.number),
        issuer=data.issuer,
        valid_from=data.valid_from,
        valid_until=data.valid_until,
        scan_id=data.scan_id,
        state=ItemState.PENDING.value,
    )
    session.add(document)
    await session.flush()
    await _ledger(
        session,
        "contractor_document.added",
        "contractor_document",
        document.id,
        viewer,
        {
            "contractor_id": contractor.id,
            "kind": document.kind,
            "number": document.number,
            "valid_from": _day(document.valid_from),
            "valid_until": _day(document.valid_until),
            "scan_id": document.scan_id,
        },
    )
    return document


def _revise(item: Item) -> str:
    """A changed item goes back to EHS; returns the state it left."""
    previous = item.state
    item.state = item_transition(item.state, ItemAction.REVISE).value
    item.reason = None
    return previous


def _ledger_values(changes: dict[str, Any]) -> dict[str, Any]:
    return {
        name: _day(value) if isinstance(value, date) else value for name, value in changes.items()
    }


async def update_document(
    session: AsyncSession,
    viewer: Viewer,
    contractor_id: uuid.UUID,
    document_id: uuid.UUID,
    data: DocumentUpdate,
) -> ContractorDocument:
    """Change a document (a renewal, a better scan); it is checked by EHS again."""
    contractor = await _editable(session, viewer, contractor_id)
    document = await session.scalar(
        select(ContractorDocument).where(
            ContractorDocument.id == document_id,
            ContractorDocument.contractor_id == contractor.id,
        )
    )
    if document is None:
        raise NotFound(N_("Document not found."))
    changes = _given(data, "number", "issuer", "valid_from", "valid_until", "scan_id")
    if "number" in changes:
        changes["number"] = normalise(changes["number"])
    _check_document_dates(
        changes.get("valid_from", document.valid_from),
        changes.get("valid_until", document.valid_until),
        plant_today(),
    )
    if "scan_id" in changes:
        await _check_upload(
            session,
            changes["scan_id"],
            kind="company_document",
            field_name="scan_id",
            contractor_id=contractor.id,
        )
    changes = _apply_changes(document, changes)
    if not changes:
        return document
    previous = _revise(document)
    await session.flush()
    await _ledger(
        session,
        "contractor_document.updated",
        "contractor_document",
        document.id,
        viewer,
        {"changes": _ledger_values(changes), "from": previous, "to": document.state},
    )
    return document


# --- workers ---------------------------------------------------------------------------------


def field_context(field: str) -> str:
    """Binds ciphertexts and digests to this tenant and column: a value copied into another
    tenant's row does not decrypt, and equal values in two tenants have unrelated digests."""
    return f"{current_tenant_id()}/{field}"


def id_number_context() -> str:
    return field_context(ID_NUMBER_FIELD)


# The ledger's entries cannot be erased, so a worker's name and phone enter them only as keyed
# digests: an inspector with the key can check a name, and erasure leaves nothing readable.
_LEDGER_DIGESTED = {"name": NAME_FIELD, "phone": PHONE_FIELD}


def _worker_ledger_values(cipher: FieldCipher, values: dict[str, Any]) -> dict[str, Any]:
    """The values as the ledger keeps them: a name or a phone as its keyed digest."""
    kept: dict[str, Any] = {}
    for name, value in values.items():
        field = _LEDGER_DIGESTED.get(name)
        if field is None:
            kept[name] = value
        else:
            kept[f"{name}_digest"] = cipher.digest(value, context=field_context(field))
    return kept


def _worker_identity(cipher: FieldCipher, worker: Worker) -> dict[str, Any]:
    """What the ledger says of who a new worker is: digests, never the name or the number."""
    return {
        **_worker_ledger_values(cipher, {"name": worker.name}),
        "id_number_digest": worker.id_number_digest,
    }


async def _registered(
    session: AsyncSession, digests: Sequence[str], contractor_id: uuid.UUID
) -> set[str]:
    return set(
        await session.scalars(
            select(Worker.id_number_digest).where(
                Worker.contractor_id == contractor_id, Worker.id_number_digest.in_(digests)
            )
        )
    )


def _new_worker(
    cipher: FieldCipher,
    contractor_id: uuid.UUID,
    *,
    name: str,
    id_number: IdNumber,
    phone: str,
    trade: str,
    photo_id: uuid.UUID | None,
) -> Worker:
    context = id_number_context()
    return Worker(
        contractor_id=contractor_id,
        name=name,
        id_number_encrypted=cipher.encrypt(id_number.value, context=context),
        id_number_digest=cipher.digest(id_number.value, context=context),
        id_number_masked=id_number.masked,
        birth_date=id_number.birth_date,
        phone=phone,
        trade=trade,
        photo_id=photo_id,
        state=ItemState.PENDING.value,
    )


async def find_workers_by_id_number(
    session: AsyncSession, viewer: Viewer, id_number: str, *, cipher: FieldCipher
) -> list[Worker]:
    """The workers with this ID number among those the viewer sees, found by digest: the
    number is never decrypted to compare."""
    number = validate_id_number(id_number, today=plant_today())
    query = select(Worker).where(
        Worker.id_number_digest.in_(cipher.digests(number.value, context=id_number_context()))
    )
    if not viewer.is_host:
        if viewer.contractor_id is None:
            return []
        query = query.where(Worker.contractor_id == viewer.contractor_id)
    return list(await session.scalars(query.order_by(Worker.name, Worker.id)))


async def list_workers(
    session: AsyncSession, viewer: Viewer, contractor_id: uuid.UUID
) -> list[Worker]:
    contractor = await get_contractor(session, viewer, contractor_id)
    return list(
        await session.scalars(
            select(Worker)
            .where(Worker.contractor_id == contractor.id)
            .order_by(Worker.name, Worker.id)
        )
    )


async def _worker_of(
    session: AsyncSession, contractor_id: uuid.UUID, worker_id: uuid.UUID
) -> Worker | None:
    return await session.scalar(
        select(Worker).where(Worker.id == worker_id, Worker.contractor_id == contractor_id)
    )


async def get_worker(
    session: AsyncSession, viewer: Viewer, contractor_id: uuid.UUID, worker_id: uuid.UUID
) -> Worker:
    contractor = await get_contractor(session, viewer, contractor_id)
    worker = await _worker_of(session, contractor.id, worker_id)
    if worker is None:
        raise NotFound(N_("Worker not found."))
    return worker


async def add_worker(
    session: AsyncSession,
    viewer: Viewer,
    contractor_id: uuid.UUID,
    data: WorkerIn,
    *,
    cipher: FieldCipher,
) -> Worker:
    contractor = await _editable(session, viewer, contractor_id)
    number = validate_id_number(data.id_number, today=plant_today())
    if await _registered(
        session, cipher.digests(number.value, context=id_number_context()), contractor.id
    ):
        raise Conflict("id_number", "unique", _UNIQUE_WORKER)
    if data.photo_id is not None:
        await _check_upload(
            session, data.photo_id, kind="photo", field_name="photo_id", contractor_id=contractor.id
        )
    worker = _new_worker(
        cipher,
        contractor.id,
        name=data.name,
        id_number=number,
        phone=data.phone,
        trade=data.trade,
        photo_id=data.photo_id,
    )
    session.add(worker)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("id_number", "unique", _UNIQUE_WORKER) from exc
    await _ledger(
        session,
        "worker.added",
        "worker",
        worker.id,
        viewer,
        {
            "contractor_id": contractor.id,
            **_worker_identity(cipher, worker),
            "trade": worker.trade,
        },
    )
    return worker


# A worker is identified by name and photo; a new phone number or trade needs no new check.
_IDENTIFYING = frozenset({"name", "photo_id"})


async def update_worker(
    session: AsyncSession,
    viewer: Viewer,
    contractor_id: uuid.UUID,
    worker_id: uuid.UUID,
    data: WorkerUpdate,
    *,
    cipher: FieldCipher,
) -> Worker:
    contractor = await _editable(session, viewer, contractor_id)
    worker = await _worker_of(session, contractor.id, worker_id)
    if worker is None:
        raise NotFound(N_("Worker not found."))
    changes = _given(data, "name", "phone", "trade", "photo_id")
    if changes.get("photo_id") is not None:
        await _check_upload(
            session,
            changes["photo_id"],
            kind="photo",
            field_name="photo_id",
            contractor_id=contractor.id,
        )
    changes = _apply_changes(worker, changes)
    if not changes:
        return worker
    previous = _revise(worker) if _IDENTIFYING & changes.keys() else worker.state
    await session.flush()
    await _ledger(
        session,
        "worker.updated",
        "worker",
        worker.id,
        viewer,
        {
            "changes": _worker_ledger_values(cipher, changes),
            "from": previous,
            "to": worker.state,
        },
    )
    return worker


@dataclass(frozen=True)
class ImportReport:
    imported: list[Worker]
    skipped: list[RowProblem]


async def import_workers(
    session: AsyncSession,
    viewer: Viewer,
    contractor_id: uuid.UUID,
    content: bytes,
    *,
    cipher: FieldCipher,
    import_valid_rows: bool = False,
) -> ImportReport:
    """Add the workers of an XLSX roster (see :mod:`onboarding.roster`).

    A file with any wrong row imports nothing and raises :class:`RosterRefused` listing every
    problem, unless ``import_valid_rows``: then the good rows are added and the others are
    reported back. A person already on the company's list, or twice in the file, is a problem
    of that row.
    """
    contractor = await _editable(session, viewer, contractor_id)
    roster = await anyio.to_thread.run_sync(partial(read_roster, content, today=plant_today()))
    context = id_number_context()
    digests = {row.row: cipher.digests(row.id_number.value, context=context) for row in roster.rows}
    registered = await _registered(
        session,
        [digest for row_digests in digests.values() for digest in row_digests],
        contractor.id,
    )
    problems = list(roster.problems)
    first_row: dict[str, int] = {}
    valid = []
    for row in roster.rows:
        if registered.intersection(digests[row.row]):
            problems.append(RowProblem(row.row, ID_NUMBER, "unique", _UNIQUE_WORKER))
        elif row.id_number.value in first_row:
            problems.append(
                RowProblem(
                    row.row,
                    ID_NUMBER,
                    "duplicate",
                    N_("The same ID number is already on row %(row)s."),
                    {"row": first_row[row.id_number.value]},
                )
            )
        else:
            first_row[row.id_number.value] = row.row
            valid.append(row)
    problems.sort(key=lambda problem: problem.row)
    if problems and not import_valid_rows:
        raise RosterRefused([problem.as_field_problem() for problem in problems])
    workers = [
        _new_worker(
            cipher,
            contractor.id,
            name=row.name,
            id_number=row.id_number,
            phone=row.phone,
            trade=row.trade,
            photo_id=None,
        )
        for row in valid
    ]
    session.add_all(workers)
    await session.flush()
    if workers:
        await _ledger(
            session,
            "workers.imported",
            "contractor",
            contractor.id,
            viewer,
            {
                "workers": [{"id": w.id, **_worker_identity(cipher, w)} for w in workers],
                "skipped_rows": sorted({problem.row for problem in problems}),
            },
        )
    return ImportReport(workers, problems)


# --- certificates ----------------------------------------------------------------------------


def _check_certificate_dates(issued_on: date, expires_on: date, today: date) -> None:
    if expires_on <= issued_on:
        raise InvalidInput(
            "expires_on", "after_issue", N_("The expiry date must come after the issue date.")
        )
    if issued_on > today:
        raise InvalidInput("issued_on", "not_future", N_("The issue date cannot be in the future."))
    if expires_on <= today:
        raise InvalidInput("expires_on", "expired", N_("This certificate has already expired."))


async def _ensure_number_free(
    session: AsyncSession, number: str, *, other_than: uuid.UUID | None = None
) -> None:
    query = select(Certificate.id).where(Certificate.number == number)
    if other_than is not None:
        query = query.where(Certificate.id != other_than)
    if (await session.execute(query)).first():
        raise Conflict("number", "unique", _UNIQUE_CERTIFICATE)


async def list_certificates(
    session: AsyncSession, viewer: Viewer, contractor_id: uuid.UUID
) -> list[Certificate]:
    contractor = await get_contractor(session, viewer, contractor_id)
    return list(
        await session.scalars(
            select(Certificate)
            .join(Worker, Worker.id == Certificate.worker_id)
            .where(Worker.contractor_id == contractor.id)
            .order_by(Worker.name, Certificate.kind, Certificate.id)
        )
    )


def _certificate_ledger_values(cipher: FieldCipher, values: dict[str, Any]) -> dict[str, Any]:
    """A certificate's values as the ledger keeps them: the number, often the holder's ID
    number, as its keyed digest, like the worker's own fields."""
    kept = _ledger_values(values)
    if "number" in kept:
        number = kept.pop("number")
        kept["number_digest"] = cipher.digest(
            number, context=field_context(CERTIFICATE_NUMBER_FIELD)
        )
    return kept


async def add_certificate(
    session: AsyncSession,
    viewer: Viewer,
    contractor_id: uuid.UUID,
    data: CertificateIn,
    *,
    cipher: FieldCipher,
) -> Certificate:
    contractor = await _editable(session, viewer, contractor_id)
    worker = await _worker_of(session, contractor.id, data.worker_id)
    if worker is None:
        raise InvalidInput("worker_id", "exists", N_("No such worker in this company."))
    _check_certificate_dates(data.issued_on, data.expires_on, plant_today())
    await _check_upload(
        session,
        data.scan_id,
        kind="certificate_scan",
        field_name="scan_id",
        contractor_id=contractor.id,
    )
    number = normalise(data.number)
    await _ensure_number_free(session, number)
    certificate = Certificate(
        worker_id=worker.id,
        kind=data.kind.value,
        number=number,
        issuing_authority=data.issuing_authority,
        issued_on=data.issued_on,
        expires_on=data.expires_on,
        scan_id=data.scan_id,
        state=ItemState.PENDING.value,
    )
    session.add(certificate)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("number", "unique", _UNIQUE_CERTIFICATE) from exc
    await _ledger(
        session,
        "certificate.added",
        "certificate",
        certificate.id,
        viewer,
        {
            "worker_id": worker.id,
            "kind": certificate.kind,
            **_certificate_ledger_values(
                cipher,
                {
                    "number": certificate.number,
                    "issued_on": certificate.issued_on,
                    "expires_on": certificate.expires_on,
                },
            ),
            "scan_id": certificate.scan_id,
        },
    )
    return certificate


async def update_certificate(
    session: AsyncSession,
    viewer: Viewer,
    contractor_id: uuid.UUID,
    certificate_id: uuid.UUID,
    data: CertificateUpdate,
    *,
    cipher: FieldCipher,
) -> Certificate:
    """Change a certificate (a renewal, a corrected number); it is checked by EHS again."""
    contractor = await _editable(session, viewer, contractor_id)
    certificate = await session.scalar(
        select(Certificate)
        .join(Worker, Worker.id == Certificate.worker_id)
        .where(Certificate.id == certificate_id, Worker.contractor_id == contractor.id)
    )
    if certificate is None:
        raise NotFound(N_("Certificate not found."))
    changes = _given(data, "number", "issuing_authority", "issued_on", "expires_on", "scan_id")
    _check_certificate_dates(
        changes.get("issued_on", certificate.issued_on),
        changes.get("expires_on", certificate.expires_on),
        plant_today(),
    )
    if "number" in changes:
        changes["number"] = normalise(changes["number"])
        await _ensure_number_free(session, changes["number"], other_than=certificate.id)
    if "scan_id" in changes:
        await _check_upload(
            session,
            changes["scan_id"],
            kind="certificate_scan",
            field_name="scan_id",
            contractor_id=contractor.id,
        )
    changes = _apply_changes(certificate, changes)
    if not changes:
        return certificate
    previous = _revise(certificate)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("number", "unique", _UNIQUE_CERTIFICATE) from exc
    await _ledger(
        session,
        "certificate.updated",
        "certificate",
        certificate.id,
        viewer,
        {
            "changes": _certificate_ledger_values(cipher, changes),
            "from": previous,
            "to": certificate.state,
        },
    )
    return certificate


# --- review ----------------------------------------------------------------------------------


async def _workers_starting_to_count(
    session: AsyncSession, contractor: Contractor, data: ReviewIn
) -> int:
    """How many workers this review adds to the plan's active workers (see
    :func:`tenants.entitlements.active_worker_count`): those it verifies in an admitted company,
    or, when it approves the company, those it verifies and those verified earlier in the review.
    A verdict the review itself will refuse is not counted, so that its own error answers."""
    approving = data.decision == "approve" and contractor.state == ContractorState.SUBMITTED
    admitted = data.decision is None and contractor.state in entitlements.ADMITTED_CONTRACTOR_STATES
    if not (approving or admitted):
        return 0
    verifying = {verdict.id for verdict in data.workers if verdict.verdict == "verified"}
    counting = Worker.id.in_(verifying) & (Worker.state == ItemState.PENDING.value)
    if approving:
        counting = counting | (Worker.state == ItemState.VERIFIED.value)
    query = select(func.count()).select_from(Worker).where(Worker.contractor_id == contractor.id)
    return (await session.execute(query.where(counting))).scalar_one()


async def review_contractor(
    session: AsyncSession,
    viewer: Viewer,
    contractor_id: uuid.UUID,
    data: ReviewIn,
    *,
    billing: entitlements.BillingPolicy | None = None,
) -> Contractor:
    """One EHS decision on a company and, in the same transaction, on each document, worker and
    certificate named, each with its reason. Without a decision only the items are judged (a
    partial review, or items added after admission). Approval needs every pending item judged
    and the required documents verified. With ``billing``, a review that would take the tenant
    past its plan's active workers answers 402 before anything changes; without it (demo data,
    tests of admission alone) the plan is not consulted."""
    ensure_reviewer(viewer)
    contractor = await _contractor(session, contractor_id, lock=True)
    if billing is not None:
        adding = await _workers_starting_to_count(session, contractor, data)
        await entitlements.ensure_can_add_active_workers(session, billing, adding)
    await session.run_sync(lambda sync: apply_review(sync, viewer, contractor, data))
    return contractor


async def _decide(
    session: AsyncSession,
    viewer: Viewer,
    contractor_id: uuid.UUID,
    action: ContractorAction,
    reason: str,
) -> Contractor:
    ensure_reviewer(viewer)
    contractor = await _contractor(session, contractor_id, lock=True)

    def change(sync: Session) -> None:
        if action is ContractorAction.REINSTATE:
            contractor_transition(contractor.state, action)
            if not required_documents_valid(sync, contractor.id, plant_today()):
                raise required_documents_problem()
        entry = change_contractor_state(
            sync, contractor, action, reason=reason, actor_id=viewer.user_id
        )
        notify_decision(
            sync, contractor, decision=contractor.state, reason=reason, decision_id=entry.id
        )

    await session.run_sync(change)
    return contractor


async def suspend_contractor(
    session: AsyncSession, viewer: Viewer, contractor_id: uuid.UUID, *, reason: str
) -> Contractor:
    return await _decide(session, viewer, contractor_id, ContractorAction.SUSPEND, reason)


async def reinstate_contractor(
    session: AsyncSession, viewer: Viewer, contractor_id: uuid.UUID, *, reason: str
) -> Contractor:
    """Lift a suspension; the required documents must be verified and valid again."""
    return await _decide(session, viewer, contractor_id, ContractorAction.REINSTATE, reason)


async def blacklist_contractor(
    session: AsyncSession, viewer: Viewer, contractor_id: uuid.UUID, *, reason: str
) -> Contractor:
    return await _decide(session, viewer, contractor_id, ContractorAction.BLACKLIST, reason)


@dataclass(frozen=True)
class QueueEntry:
    contractor: Contractor
    pending_documents: int
    pending_workers: int
    pending_certificates: int


async def _pending_by_contractor(session: AsyncSession, query: Any) -> dict[uuid.UUID, int]:
    return {contractor_id: count for contractor_id, count in (await session.execute(query)).all()}


async def review_queue(session: AsyncSession, viewer: Viewer) -> list[QueueEntry]:
    """What waits for EHS: companies submitted for review (longest waiting first), then admitted
    companies with documents, workers or certificates not yet judged."""
    ensure_reviewer(viewer)
    pending = ItemState.PENDING.value
    documents = await _pending_by_contractor(
        session,
        select(ContractorDocument.contractor_id, func.count())
        .where(ContractorDocument.state == pending)
        .group_by(ContractorDocument.contractor_id),
    )
    workers = await _pending_by_contractor(
        session,
        select(Worker.contractor_id, func.count())
        .where(Worker.state == pending)
        .group_by(Worker.contractor_id),
    )
    certificates = await _pending_by_contractor(
        session,
        select(Worker.contractor_id, func.count())
        .select_from(Certificate)
        .join(Worker, Worker.id == Certificate.worker_id)
        .where(Certificate.state == pending)
        .group_by(Worker.contractor_id),
    )
    with_items = set(documents) | set(workers) | set(certificates)
    admitted = (ContractorState.APPROVED.value, ContractorState.SUSPENDED.value)
    contractors = await session.scalars(
        select(Contractor)
        .where(
            (Contractor.state == ContractorState.SUBMITTED.value)
            | (Contractor.state.in_(admitted) & Contractor.id.in_(with_items))
        )
        .order_by(Contractor.state_changed_at, Contractor.id)
    )
    entries = [
        QueueEntry(
            contractor,
            documents.get(contractor.id, 0),
            workers.get(contractor.id, 0),
            certificates.get(contractor.id, 0),
        )
        for contractor in contractors
    ]
    entries.sort(key=lambda entry: entry.contractor.state != ContractorState.SUBMITTED)
    return entries


# --- qualification and expiry ----------------------------------------------------------------


@dataclass(frozen=True)
class WorkerQualification:
    worker: Worker
    verdict: Verdict


def _check_window(start: datetime, end: datetime) -> None:
    for name, moment in (("start", start), ("end", end)):
        if moment.tzinfo is None:
            raise InvalidInput(name, "timezone", N_("Give the time with its UTC offset."))
    if end <= start:
        raise InvalidInput("end", "after_start", N_("The end must come after the start."))


async def qualified_workers(
    session: AsyncSession,
    contractor_id: uuid.UUID,
    work_type: WorkType,
    start: datetime,
    end: datetime,
    *,
    today: date | None = None,
) -> list[WorkerQualification]:
    """For each of the company's workers: qualified for ``work_type`` from ``start`` to ``end``,
    or the first rule that stops them (see :mod:`onboarding.qualification`). ``today`` defaults
    to the plant's date; its verdict messages are in the current language."""
    _check_window(start, end)
    contractor = await _contractor(session, contractor_id)
    today = today or plant_today()
    workers = list(
        await session.scalars(
            select(Worker)
            .where(Worker.contractor_id == contractor.id)
            .order_by(Worker.name, Worker.id)
        )
    )
    certificates: dict[uuid.UUID, list[Certificate]] = {}
    for certificate in await session.scalars(
        select(Certificate)
        .join(Worker, Worker.id == Certificate.worker_id)
        .where(Worker.contractor_id == contractor.id)
        .order_by(Certificate.expires_on.desc())
    ):
        certificates.setdefault(certificate.worker_id, []).append(certificate)
    company = contractor_verdict(contractor.state, contractor.work_types, work_type)
    first_day, last_day = plant_date(start), plant_date(end)
    return [
        WorkerQualification(
            worker,
            company
            if not company.qualified
            else worker_verdict(
                worker.state,
                certificates.get(worker.id, []),
                work_type,
                first_day=first_day,
                last_day=last_day,
                today=today,
            ),
        )
        for worker in workers
    ]


@dataclass(frozen=True)
class ExpiringItem:
    item: str
    id: uuid.UUID
    contractor: Contractor
    worker: Worker | None
    kind: str
    number: str
    expires_on: date
    days_left: int
    state: str


async def expiring_soon(
    session: AsyncSession,
    viewer: Viewer,
    *,
    within_days: int = EXPIRING_WITHIN_DAYS,
    today: date | None = None,
) -> list[ExpiringItem]:
    """Documents and certificates still counting that expire within ``within_days`` (or already
    have, before the watch marked them), soonest first; a rejected or blacklisted company's are
    left out, as the watch leaves them."""
    today = today or plant_today()
    horizon = today + timedelta(days=within_days)
    document_query = documents_expiring_by(horizon)
    certificate_query = certificates_expiring_by(horizon)
    if not viewer.is_host:
        if viewer.contractor_id is None:
            return []
        document_query = document_query.where(Contractor.id == viewer.contractor_id)
        certificate_query = certificate_query.where(Contractor.id == viewer.contractor_id)
    items = [
        ExpiringItem(
            "contractor_document",
            document.id,
            contractor,
            None,
            document.kind,
            document.number,
            document.valid_until,
            (document.valid_until - today).days,
            document.state,
        )
        for document, contractor in (await session.execute(document_query)).all()
        if document.valid_until is not None
    ]
    items.extend(
        ExpiringItem(
            "certificate",
            certificate.id,
            contractor,
            worker,
            certificate.kind,
            certificate.number,
            certificate.expires_on,
            (certificate.expires_on - today).days,
            certificate.state,
        )
        for certificate, worker, contractor in (await session.execute(certificate_query)).all()
    )
    items.sort(key=lambda item: (item.expires_on, item.contractor.name, str(item.id)))
    return items
