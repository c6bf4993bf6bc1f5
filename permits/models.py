"""Work permits (作业票) and what hangs from them: the crew, gas analyses, the approval chain,
per-day numbering, the tenant's calendar and its own approval steps.

A permit is edited only as a draft. From approval on its content is frozen under
``content_hash``; a change makes a new version (``version`` + 1, ``supersedes_id``) that goes
through approval again while the old one is kept, superseded (GB 30871 §4.16, §4.18). Versions of
one permit share its ``number``.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from infra.tenancy import TenantOwned, tenant_foreign_key
from permits.states import PermitState

# What a row of the permit list shows beside the columns of its index.
LIST_ROW_COLUMNS = [
    "number",
    "version",
    "level",
    "zone_id",
    "contractor_id",
    "location",
    "planned_end",
]


class Permit(TenantOwned):
    __tablename__ = "permits"
    __table_args__ = (
        tenant_foreign_key(("plant_id",), "plants"),
        tenant_foreign_key(("zone_id",), "zones"),
        tenant_foreign_key(("contractor_id",), "contractors"),
        tenant_foreign_key(("work_leader_id",), "workers"),
        tenant_foreign_key(("guardian_worker_id",), "workers"),
        tenant_foreign_key(("guardian_user_id",), "users"),
        tenant_foreign_key(("supersedes_id",), "permits"),
        UniqueConstraint("tenant_id", "number", "version"),
        CheckConstraint(
            "state IN (" + ", ".join(f"'{state.value}'" for state in PermitState) + ")",
            name="state",
        ),
        CheckConstraint("planned_end > planned_start", name="window"),
        CheckConstraint(
            "(guardian_worker_id IS NULL) <> (guardian_user_id IS NULL)", name="one_guardian"
        ),
        # The list's order (planned start, then id) read backwards, with every column a list row
        # shows: PostgreSQL answers a page from the index alone, without visiting the table.
        Index(
            "ix_permits_list",
            "tenant_id",
            "plant_id",
            "state",
            "work_type",
            "planned_start",
            "id",
            postgresql_include=LIST_ROW_COLUMNS,
        ),
        Index("ix_permits_zone_window", "tenant_id", "zone_id", "planned_start", "planned_end"),
        Index("ix_permits_contractor", "tenant_id", "contractor_id", "planned_start"),
    )

    plant_id: Mapped[uuid.UUID]
    zone_id: Mapped[uuid.UUID]
    contractor_id: Mapped[uuid.UUID]
    work_type: Mapped[str] = mapped_column(String(32))
    # The level or grade the rules decided (hot work level, height grade, lifting level); the
    # applicant's requested hot-work level is kept beside it with the reasons for an upgrade.
    level: Mapped[str | None] = mapped_column(String(16))
    requested_level: Mapped[str | None] = mapped_column(String(16))
    level_reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    number: Mapped[str | None] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(default=1)
    supersedes_id: Mapped[uuid.UUID | None]
    state: Mapped[str] = mapped_column(String(16), default=PermitState.DRAFT.value)
    location: Mapped[str] = mapped_column(String(300))
    work_content: Mapped[str] = mapped_column(Text)
    planned_start: Mapped[datetime]
    planned_end: Mapped[datetime]
    work_leader_id: Mapped[uuid.UUID]
    guardian_worker_id: Mapped[uuid.UUID | None]
    guardian_user_id: Mapped[uuid.UUID | None]
    related_numbers: Mapped[list[str]] = mapped_column(JSON, default=list)
    hazards: Mapped[list[str]] = mapped_column(JSON, default=list)
    emergency_measures: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The type's control-measure checklist: [{code, text, applies, confirmed_by, confirmed_at}].
    checklist: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The type's own fields (hot-work method, medium, blind plate, height, load …).
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    applicant_id: Mapped[uuid.UUID]
    content_hash: Mapped[str | None] = mapped_column(String(64))
    submitted_at: Mapped[datetime | None]
    approved_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    paused_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    state_changed_at: Mapped[datetime | None]
    state_reason: Mapped[str | None] = mapped_column(Text)


class PermitCrewMember(TenantOwned):
    """A worker named on the permit; ``duty`` says what they do (e.g. welder, rigger)."""

    __tablename__ = "permit_crew"
    __table_args__ = (
        tenant_foreign_key(("permit_id",), "permits", ondelete="CASCADE"),
        tenant_foreign_key(("worker_id",), "workers"),
        UniqueConstraint("tenant_id", "permit_id", "worker_id"),
        Index("ix_permit_crew_worker", "tenant_id", "worker_id"),
    )

    permit_id: Mapped[uuid.UUID]
    worker_id: Mapped[uuid.UUID]
    duty: Mapped[str | None] = mapped_column(String(40))


class GasAnalysis(TenantOwned):
    """One sample's readings. ``passed`` and ``violations`` are decided by the rules from the
    readings (§5.3.2, §6.4), never typed in."""

    __tablename__ = "gas_analyses"
    __table_args__ = (
        tenant_foreign_key(("permit_id",), "permits", ondelete="CASCADE"),
        Index("ix_gas_analyses_permit", "tenant_id", "permit_id", "sampled_at"),
    )

    permit_id: Mapped[uuid.UUID]
    sampled_at: Mapped[datetime]
    point: Mapped[str] = mapped_column(String(200))
    readings: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    analyst: Mapped[str] = mapped_column(String(100))
    instrument: Mapped[str] = mapped_column(String(100))
    passed: Mapped[bool]
    violations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    recorded_by: Mapped[uuid.UUID]


class ApprovalStep(TenantOwned):
    """One step of a permit version's chain. A step is ``waiting`` until the one before it is
    decided, then ``pending`` with a due time; ``escalations`` counts how often it was passed up
    for being late. Times are kept for the HQ approval metrics."""

    __tablename__ = "approval_steps"
    __table_args__ = (
        tenant_foreign_key(("permit_id",), "permits", ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "permit_id", "position"),
        CheckConstraint(
            "status IN ('waiting', 'pending', 'approved', 'rejected', 'returned', 'cancelled')",
            name="status",
        ),
        Index("ix_approval_steps_due", "tenant_id", "status", "due_at"),
    )

    permit_id: Mapped[uuid.UUID]
    position: Mapped[int]
    role: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    clause: Mapped[str | None] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    activated_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None]
    escalations: Mapped[int] = mapped_column(default=0)
    escalated_at: Mapped[datetime | None]
    decided_by: Mapped[uuid.UUID | None]
    decided_at: Mapped[datetime | None]
    comment: Mapped[str | None] = mapped_column(Text)
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    accuracy_m: Mapped[float | None]
    # None when the approver's position was not given; False is an approval away from the zone
    # (§4.11a), which is recorded and flagged, not refused.
    on_site: Mapped[bool | None]
    minutes: Mapped[float | None]


class PermitCounter(TenantOwned):
    """The last number given per plant, work type and plant-local day."""

    __tablename__ = "permit_counters"
    __table_args__ = (
        tenant_foreign_key(("plant_id",), "plants", ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "plant_id", "work_type", "day"),
    )

    plant_id: Mapped[uuid.UUID]
    work_type: Mapped[str] = mapped_column(String(32))
    day: Mapped[date]
    last: Mapped[int] = mapped_column(default=0)


class CalendarDay(TenantOwned):
    """The tenant's own holidays and make-up working days, on top of the national calendar."""

    __tablename__ = "permit_calendar_days"
    __table_args__ = (
        UniqueConstraint("tenant_id", "day"),
        CheckConstraint("kind IN ('holiday', 'workday')", name="kind"),
    )

    day: Mapped[date]
    kind: Mapped[str] = mapped_column(String(8))
    note: Mapped[str | None] = mapped_column(String(200))


class ChainPolicy(TenantOwned):
    """The tenant's approval chain for a work type and level: the standard steps with the
    tenant's own inserted (``steps``: [{role, kind, label}] in signing order). Checked against
    Table B.1 when saved and again when used: the standard's steps are never removed."""

    __tablename__ = "permit_chain_policies"
    __table_args__ = (UniqueConstraint("tenant_id", "work_type", "level"),)

    work_type: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(16), default="")
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
