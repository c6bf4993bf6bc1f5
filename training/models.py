"""Inductions and their frozen versions, quiz attempts, signatures, and job briefings.

What a worker signs is a version: its content is frozen at publication and hashed over a
canonical form, and each signature names the hash it was given. The draft an EHS officer edits
lives on the induction; publishing copies it into a new version, so nothing signed ever changes.

Signatures (of an induction or of a briefing) keep what binds them to the moment of signing —
the signer, the content hash, the time, the address and browser, the position when the phone gave
it, and the drawn strokes with the image rendered from them — and a ``record_hash`` over all of
it, which the ledger entry written in the same transaction repeats. The strokes' digest is unique
within the tenant: the same drawing can never be offered for a second record.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from infra.tenancy import TenantOwned, tenant_foreign_key


class Induction(TenantOwned):
    """An induction of one plant, for everyone there or for one work type, with its draft.

    ``draft`` holds the editable content (sections, question bank and quiz rules, see
    :class:`training.schemas.InductionContent`); ``current_version`` is the latest published
    version number, 0 before the first publication."""

    __tablename__ = "inductions"
    __table_args__ = (
        tenant_foreign_key(("plant_id",), "plants", ondelete="CASCADE"),
        Index("ix_inductions_plant", "tenant_id", "plant_id"),
    )

    plant_id: Mapped[uuid.UUID]
    work_type: Mapped[str | None] = mapped_column(String(32))
    draft: Mapped[dict[str, Any]] = mapped_column(JSON)
    current_version: Mapped[int] = mapped_column(default=0)
    retired_at: Mapped[datetime | None]
    created_by: Mapped[uuid.UUID | None]


class InductionVersion(TenantOwned):
    """A published, frozen version. ``content`` is what was hashed; never updated."""

    __tablename__ = "induction_versions"
    __table_args__ = (
        tenant_foreign_key(("induction_id",), "inductions", ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "induction_id", "version"),
        CheckConstraint("version >= 1", name="version"),
    )

    induction_id: Mapped[uuid.UUID]
    version: Mapped[int]
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime]
    published_by: Mapped[uuid.UUID | None]


class QuizAttempt(TenantOwned):
    """One try at a version's quiz. The drawn questions are fixed when the attempt starts;
    answers to anything else are refused. ``operated_by`` is the account that held the phone:
    the worker's own, or the contractor administrator's in an assisted session."""

    __tablename__ = "quiz_attempts"
    __table_args__ = (
        tenant_foreign_key(("version_id",), "induction_versions", ondelete="CASCADE"),
        tenant_foreign_key(("worker_id",), "workers", ondelete="CASCADE"),
        Index("ix_quiz_attempts_worker", "tenant_id", "worker_id", "started_at"),
        CheckConstraint("score IS NULL OR (score >= 0 AND score <= 100)", name="score"),
    )

    version_id: Mapped[uuid.UUID]
    induction_id: Mapped[uuid.UUID]
    worker_id: Mapped[uuid.UUID]
    operated_by: Mapped[uuid.UUID | None]
    plant_day: Mapped[date]
    started_at: Mapped[datetime]
    drawn: Mapped[list[str]] = mapped_column(JSON)
    answers: Mapped[dict[str, list[int]] | None] = mapped_column(JSON)
    submitted_at: Mapped[datetime | None]
    score: Mapped[int | None]
    passed: Mapped[bool | None]
    wrong: Mapped[list[str] | None] = mapped_column(JSON)


class SignatureFields:
    """The evidence every signature keeps, for inductions and briefings alike."""

    signer_user_id: Mapped[uuid.UUID | None]
    full_name: Mapped[str] = mapped_column(String(100))
    consent: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime]
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(400))
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    accuracy_m: Mapped[float | None]
    strokes: Mapped[dict[str, Any]] = mapped_column(JSON)
    strokes_sha256: Mapped[str] = mapped_column(String(64))
    image_id: Mapped[uuid.UUID]
    image_sha256: Mapped[str] = mapped_column(String(64))
    record_hash: Mapped[str] = mapped_column(String(64))
    ledger_seq: Mapped[int]


class InductionSignature(SignatureFields, TenantOwned):
    """A worker's signature of the version they passed; one per passing attempt."""

    __tablename__ = "induction_signatures"
    __table_args__ = (
        tenant_foreign_key(("version_id",), "induction_versions", ondelete="CASCADE"),
        tenant_foreign_key(("worker_id",), "workers", ondelete="CASCADE"),
        tenant_foreign_key(("attempt_id",), "quiz_attempts", ondelete="CASCADE"),
        tenant_foreign_key(("image_id",), "stored_objects"),
        UniqueConstraint("tenant_id", "attempt_id"),
        UniqueConstraint("tenant_id", "strokes_sha256"),
        Index("ix_induction_signatures_worker", "tenant_id", "worker_id", "valid_until"),
    )

    version_id: Mapped[uuid.UUID]
    induction_id: Mapped[uuid.UUID]
    worker_id: Mapped[uuid.UUID]
    attempt_id: Mapped[uuid.UUID]
    assisted_by: Mapped[uuid.UUID | None]
    valid_until: Mapped[date]


class Briefing(TenantOwned):
    """The job briefing (安全交底) of one permit, given by a host user. ``permit_id`` names the
    permit without a foreign key: permits sit above training and hand their facts down as a
    :class:`training.schemas.BriefingSource`. A permit's new content makes a new briefing."""

    __tablename__ = "briefings"
    __table_args__ = (
        tenant_foreign_key(("plant_id",), "plants", ondelete="CASCADE"),
        tenant_foreign_key(("briefer_id",), "users"),
        UniqueConstraint("tenant_id", "permit_id", "content_hash"),
        Index("ix_briefings_permit", "tenant_id", "permit_id", "created_at"),
    )

    permit_id: Mapped[uuid.UUID]
    permit_number: Mapped[str] = mapped_column(String(40))
    plant_id: Mapped[uuid.UUID]
    work_type: Mapped[str] = mapped_column(String(32))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    briefer_id: Mapped[uuid.UUID]
    superseded_at: Mapped[datetime | None]


class BriefingCrewMember(TenantOwned):
    """Who must sign: the permit's crew as it stands. A member who leaves the crew keeps the row
    with ``removed_at``; one who joins later is added and must sign too."""

    __tablename__ = "briefing_crew"
    __table_args__ = (
        tenant_foreign_key(("briefing_id",), "briefings", ondelete="CASCADE"),
        tenant_foreign_key(("worker_id",), "workers", ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "briefing_id", "worker_id"),
    )

    briefing_id: Mapped[uuid.UUID]
    worker_id: Mapped[uuid.UUID]
    added_at: Mapped[datetime]
    removed_at: Mapped[datetime | None]


class BriefingSignature(SignatureFields, TenantOwned):
    """A signature of a briefing: the briefer's (安全交底人, ``worker_id`` empty) or a crew
    member's (接受交底人). ``device`` says whose screen it was drawn on."""

    __tablename__ = "briefing_signatures"
    __table_args__ = (
        tenant_foreign_key(("briefing_id",), "briefings", ondelete="CASCADE"),
        tenant_foreign_key(("worker_id",), "workers", ondelete="CASCADE"),
        tenant_foreign_key(("image_id",), "stored_objects"),
        UniqueConstraint("tenant_id", "briefing_id", "worker_id"),
        UniqueConstraint("tenant_id", "strokes_sha256"),
        CheckConstraint("device IN ('own_phone', 'briefer_tablet')", name="device"),
    )

    briefing_id: Mapped[uuid.UUID]
    worker_id: Mapped[uuid.UUID | None]
    device: Mapped[str] = mapped_column(String(16))
