"""Shapes of admission data crossing the boundary (API bodies and answers), validated by msgspec.

Unknown fields are refused and every string and list has a limit. Identifiers are checked here
only for length; their checksums are the services' business, which answer with the rule broken.
Answers carry an ID number only masked.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from onboarding.catalogue import CertificateKind, DocumentKind, WorkType
from tenants.schemas import Email, Input, Locale, LongName, Name, NewPassword, Phone, Slug

Text200 = Annotated[str, Meta(min_length=1, max_length=200)]
Text300 = Annotated[str, Meta(min_length=1, max_length=300)]
Number = Annotated[str, Meta(min_length=1, max_length=64)]
Trade = Annotated[str, Meta(min_length=1, max_length=64)]
Reason = Annotated[str, Meta(min_length=1, max_length=500)]
# Long enough for any typing of an identifier (full-width characters, spaces), short enough to
# stop abuse; the services check the real length.
IdentifierText = Annotated[str, Meta(min_length=1, max_length=40)]
WorkTypes = Annotated[list[WorkType], Meta(min_length=1, max_length=len(WorkType))]
Token = Annotated[str, Meta(min_length=1, max_length=200)]


class ContractorAdminIn(Input, kw_only=True):
    email: Email
    name: Name
    password: NewPassword
    phone: Phone | None = None
    locale: Locale = "zh_CN"


class ContractorUserIn(ContractorAdminIn, kw_only=True):
    """Another account of the company; a worker's own login has the worker role and names the
    worker it belongs to."""

    role: Literal["contractor_admin", "contractor_worker"] = "contractor_worker"
    worker_id: uuid.UUID | None = None


class ContractorRegistration(Input, kw_only=True):
    """A company registering itself, with its first administrator."""

    tenant: Slug
    invitation_token: Token | None = None
    name: LongName
    uscc: IdentifierText
    legal_representative: Name
    contact_name: Name
    contact_phone: Phone
    address: Text300
    work_types: WorkTypes
    admin: ContractorAdminIn


class ContractorUpdate(Input, kw_only=True):
    name: LongName | UnsetType = UNSET
    uscc: IdentifierText | UnsetType = UNSET
    legal_representative: Name | UnsetType = UNSET
    contact_name: Name | UnsetType = UNSET
    contact_phone: Phone | UnsetType = UNSET
    address: Text300 | UnsetType = UNSET
    work_types: WorkTypes | UnsetType = UNSET


class DocumentIn(Input, kw_only=True):
    kind: DocumentKind
    number: Number
    issuer: Text200
    valid_from: date
    valid_until: date | None = None
    scan_id: uuid.UUID


class DocumentUpdate(Input, kw_only=True):
    number: Number | UnsetType = UNSET
    issuer: Text200 | UnsetType = UNSET
    valid_from: date | UnsetType = UNSET
    valid_until: date | UnsetType | None = UNSET
    scan_id: uuid.UUID | UnsetType = UNSET


class WorkerIn(Input, kw_only=True):
    name: Name
    id_number: IdentifierText
    phone: Phone
    trade: Trade
    photo_id: uuid.UUID | None = None


class WorkerUpdate(Input, kw_only=True):
    name: Name | UnsetType = UNSET
    phone: Phone | UnsetType = UNSET
    trade: Trade | UnsetType = UNSET
    photo_id: uuid.UUID | UnsetType | None = UNSET


class CertificateIn(Input, kw_only=True):
    worker_id: uuid.UUID
    kind: CertificateKind
    number: Number
    issuing_authority: Text200
    issued_on: date
    expires_on: date
    scan_id: uuid.UUID


class CertificateUpdate(Input, kw_only=True):
    number: Number | UnsetType = UNSET
    issuing_authority: Text200 | UnsetType = UNSET
    issued_on: date | UnsetType = UNSET
    expires_on: date | UnsetType = UNSET
    scan_id: uuid.UUID | UnsetType = UNSET


class ItemVerdict(Input, kw_only=True):
    id: uuid.UUID
    verdict: Literal["verified", "rejected"]
    reason: Reason | None = None


class ReviewIn(Input, kw_only=True):
    """One EHS decision: on the company (or none, to judge only items added since admission)
    and on each document, worker and certificate, each with its own reason."""

    decision: Literal["approve", "reject", "request_changes"] | None = None
    reason: Reason | None = None
    documents: Annotated[list[ItemVerdict], Meta(max_length=20)] = msgspec.field(
        default_factory=list
    )
    workers: Annotated[list[ItemVerdict], Meta(max_length=1000)] = msgspec.field(
        default_factory=list
    )
    certificates: Annotated[list[ItemVerdict], Meta(max_length=3000)] = msgspec.field(
        default_factory=list
    )


class StateChangeIn(Input, kw_only=True):
    reason: Reason


class InvitationIn(Input, kw_only=True):
    email: Email
    valid_days: Annotated[int, Meta(ge=1, le=60)] = 14


class OnboardingSettingsIn(Input, kw_only=True):
    """A field left out keeps its value. The reminder days' rules (how many, which days) are the
    services', so the refusal names them; the limit here only stops abuse."""

    open_registration: bool | UnsetType = UNSET
    reminder_days: Annotated[list[int], Meta(max_length=20)] | UnsetType = UNSET


# --- answers ---------------------------------------------------------------------------------


class ContractorRead(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    name: str
    uscc: str
    legal_representative: str
    contact_name: str
    contact_phone: str
    address: str
    work_types: list[str]
    state: str
    state_reason: str | None
    state_changed_at: datetime | None
    state_changed_by: uuid.UUID | None
    created_at: datetime


class ContractorUserRead(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    email: str
    name: str
    role: str


class RegistrationRead(msgspec.Struct, kw_only=True):
    contractor: ContractorRead
    admin_user_id: uuid.UUID


class DocumentRead(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    contractor_id: uuid.UUID
    kind: str
    number: str
    issuer: str
    valid_from: date
    valid_until: date | None
    scan_id: uuid.UUID
    state: str
    reason: str | None


class WorkerRead(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    contractor_id: uuid.UUID
    name: str
    id_number_masked: str
    birth_date: date
    phone: str
    trade: str
    photo_id: uuid.UUID | None
    state: str
    reason: str | None


class CertificateRead(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    worker_id: uuid.UUID
    kind: str
    number: str
    issuing_authority: str
    issued_on: date
    expires_on: date
    scan_id: uuid.UUID
    state: str
    reason: str | None


class RowProblemRead(msgspec.Struct, kw_only=True):
    row: int
    column: str
    rule: str
    message: str


class ImportRead(msgspec.Struct, kw_only=True):
    imported: list[WorkerRead]
    skipped: list[RowProblemRead]


class QueueEntryRead(msgspec.Struct, kw_only=True):
    contractor: ContractorRead
    pending_documents: int
    pending_workers: int
    pending_certificates: int


class QualificationRead(msgspec.Struct, kw_only=True):
    worker_id: uuid.UUID
    worker_name: str
    qualified: bool
    reason: str | None
    message: str | None
    certificate_id: uuid.UUID | None


class ExpiringRead(msgspec.Struct, kw_only=True):
    item: Literal["contractor_document", "certificate"]
    id: uuid.UUID
    contractor_id: uuid.UUID
    contractor_name: str
    worker_id: uuid.UUID | None
    worker_name: str | None
    kind: str
    number: str
    expires_on: date
    days_left: int
    state: str


class InvitationRead(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    email: str
    expires_at: datetime
    token: str


class OnboardingSettingsRead(msgspec.Struct, kw_only=True):
    open_registration: bool
    reminder_days: list[int]
