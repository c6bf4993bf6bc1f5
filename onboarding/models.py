"""Contractors, their documents, workers and certificates, invitations, and the link between a
contractor's user accounts and their company."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import JSON, CheckConstraint, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from infra.tenancy import TenantOwned, tenant_foreign_key
from onboarding.catalogue import CertificateKind, DocumentKind
from onboarding.states import ContractorState, ItemState


def _enum_check(column: str, values: type[enum.StrEnum]) -> str:
    allowed = ", ".join(f"'{value.value}'" for value in values)
    return f"{column} IN ({allowed})"


class Contractor(TenantOwned):
    """A contractor company registered with the tenant. ``state_changed_by`` has no foreign key:
    like the ledger's actor, who decided outlives the account."""

    __tablename__ = "contractors"
    __table_args__ = (
        UniqueConstraint("tenant_id", "uscc"),
        CheckConstraint(_enum_check("state", ContractorState), name="state"),
    )

    name: Mapped[str] = mapped_column(String(200))
    uscc: Mapped[str] = mapped_column(String(18))
    legal_representative: Mapped[str] = mapped_column(String(100))
    contact_name: Mapped[str] = mapped_column(String(100))
    contact_phone: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(300))
    work_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(24), default=ContractorState.DRAFT.value)
    state_reason: Mapped[str | None] = mapped_column(Text)
    state_changed_by: Mapped[uuid.UUID | None]
    state_changed_at: Mapped[datetime | None]


class ContractorMember(TenantOwned):
    """A contractor user's company. Kept here rather than on the membership, because tenants/
    sits below onboarding/ and must not know contractors; a user belongs to one company."""

    __tablename__ = "contractor_members"
    __table_args__ = (
        tenant_foreign_key(("user_id",), "users", ondelete="CASCADE"),
        tenant_foreign_key(("contractor_id",), "contractors", ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "user_id"),
        Index("ix_contractor_members_contractor", "tenant_id", "contractor_id"),
    )

    user_id: Mapped[uuid.UUID]
    contractor_id: Mapped[uuid.UUID]


class ContractorDocument(TenantOwned):
    """A company document; one of each kind per contractor. ``valid_until`` empty means the
    document does not expire (a business licence with a 长期 term)."""

    __tablename__ = "contractor_documents"
    __table_args__ = (
        tenant_foreign_key(("contractor_id",), "contractors", ondelete="CASCADE"),
        tenant_foreign_key(("scan_id",), "stored_objects"),
        UniqueConstraint("tenant_id", "contractor_id", "kind"),
        CheckConstraint(_enum_check("kind", DocumentKind), name="kind"),
        CheckConstraint(_enum_check("state", ItemState), name="state"),
        CheckConstraint("valid_until IS NULL OR valid_until > valid_from", name="validity"),
        Index("ix_contractor_documents_expiry", "tenant_id", "valid_until"),
    )

    contractor_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(String(32))
    number: Mapped[str] = mapped_column(String(64))
    issuer: Mapped[str] = mapped_column(String(200))
    valid_from: Mapped[date]
    valid_until: Mapped[date | None]
    scan_id: Mapped[uuid.UUID]
    state: Mapped[str] = mapped_column(String(16), default=ItemState.PENDING.value)
    reason: Mapped[str | None] = mapped_column(Text)


class Worker(TenantOwned):
    """A contractor's worker. The ID number is stored only encrypted (``id_number_encrypted``,
    see :mod:`infra.field_encryption`), with a keyed digest for lookups and the masked form for
    display; the date of birth is read from the number when it is entered. ``user_id`` is the
    worker's own login, when the company gave them one: what they sign on their phone is theirs.
    """

    __tablename__ = "workers"
    __table_args__ = (
        tenant_foreign_key(("contractor_id",), "contractors", ondelete="CASCADE"),
        tenant_foreign_key(("photo_id",), "stored_objects"),
        tenant_foreign_key(("user_id",), "users", ondelete="SET NULL"),
        UniqueConstraint("tenant_id", "contractor_id", "id_number_digest"),
        UniqueConstraint("tenant_id", "user_id"),
        CheckConstraint(_enum_check("state", ItemState), name="state"),
        Index("ix_workers_id_number_digest", "tenant_id", "id_number_digest"),
    )

    contractor_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(String(100))
    id_number_encrypted: Mapped[str] = mapped_column(String(160))
    id_number_digest: Mapped[str] = mapped_column(String(80))
    id_number_masked: Mapped[str] = mapped_column(String(18))
    birth_date: Mapped[date]
    phone: Mapped[str] = mapped_column(String(32))
    photo_id: Mapped[uuid.UUID | None]
    trade: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default=ItemState.PENDING.value)
    reason: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[uuid.UUID | None]


class Certificate(TenantOwned):
    """A worker's special-operation certificate; its number is unique within the tenant, since
    one certificate cannot belong to two people."""

    __tablename__ = "certificates"
    __table_args__ = (
        tenant_foreign_key(("worker_id",), "workers", ondelete="CASCADE"),
        tenant_foreign_key(("scan_id",), "stored_objects"),
        UniqueConstraint("tenant_id", "number"),
        CheckConstraint(_enum_check("kind", CertificateKind), name="kind"),
        CheckConstraint(_enum_check("state", ItemState), name="state"),
        CheckConstraint("expires_on > issued_on", name="validity"),
        Index("ix_certificates_worker", "tenant_id", "worker_id"),
        Index("ix_certificates_expiry", "tenant_id", "expires_on"),
    )

    worker_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(String(40))
    number: Mapped[str] = mapped_column(String(64))
    issuing_authority: Mapped[str] = mapped_column(String(200))
    issued_on: Mapped[date]
    expires_on: Mapped[date]
    scan_id: Mapped[uuid.UUID]
    state: Mapped[str] = mapped_column(String(16), default=ItemState.PENDING.value)
    reason: Mapped[str | None] = mapped_column(Text)


class ContractorInvitation(TenantOwned):
    """An invitation to register. Only the SHA-256 of its token is kept; the token is shown once,
    to the EHS officer who sends it on."""

    __tablename__ = "contractor_invitations"
    __table_args__ = (
        UniqueConstraint("tenant_id", "token_hash"),
        tenant_foreign_key(("contractor_id",), "contractors"),
    )

    email: Mapped[str] = mapped_column(String(254))
    token_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    contractor_id: Mapped[uuid.UUID | None]
    created_by: Mapped[uuid.UUID | None]


DEFAULT_REMINDER_DAYS = (30, 7, 1)


class OnboardingSettings(TenantOwned):
    """The tenant's admission settings, one row per tenant; no row means the defaults.
    ``reminder_days`` are the days before an expiry or a lapse when reminders go out, longest
    first (checked by the service)."""

    __tablename__ = "onboarding_settings"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    open_registration: Mapped[bool] = mapped_column(default=False)
    reminder_days: Mapped[list[int]] = mapped_column(
        JSON, default=lambda: list(DEFAULT_REMINDER_DAYS)
    )
