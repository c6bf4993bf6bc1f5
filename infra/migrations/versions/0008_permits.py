"""permits: plant zones, work permits with their crew, gas analyses and approval steps, per-day
permit numbers, the tenant's calendar and its approval chain policies

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 16:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infra.db
from infra import rls

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


TENANT_TABLES = (
    "permit_calendar_days",
    "permit_chain_policies",
    "permit_counters",
    "zones",
    "permits",
    "approval_steps",
    "gas_analyses",
    "permit_crew",
)


def upgrade() -> None:
    op.create_table(
        "permit_calendar_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('holiday', 'workday')", name=op.f("ck_permit_calendar_days_kind")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_permit_calendar_days_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_permit_calendar_days")),
        sa.UniqueConstraint("tenant_id", "day", name=op.f("uq_permit_calendar_days_tenant_id_day")),
    )
    op.create_table(
        "permit_chain_policies",
        sa.Column("work_type", sa.String(length=32), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_permit_chain_policies_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_permit_chain_policies")),
        sa.UniqueConstraint(
            "tenant_id",
            "work_type",
            "level",
            name=op.f("uq_permit_chain_policies_tenant_id_work_type_level"),
        ),
    )
    op.create_table(
        "permit_counters",
        sa.Column("plant_id", sa.Uuid(), nullable=False),
        sa.Column("work_type", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "plant_id"],
            ["plants.tenant_id", "plants.id"],
            name=op.f("fk_permit_counters_tenant_id_plant_id_plants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_permit_counters_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_permit_counters")),
        sa.UniqueConstraint(
            "tenant_id",
            "plant_id",
            "work_type",
            "day",
            name=op.f("uq_permit_counters_tenant_id_plant_id_work_type_day"),
        ),
    )
    op.create_table(
        "zones",
        sa.Column("plant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("geometry", sa.JSON(), nullable=False),
        sa.Column("radius_m", sa.Float(), nullable=True),
        sa.Column("buffer_m", sa.Float(), nullable=False),
        sa.Column("retired_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('work_area', 'restricted', 'assembly_point')", name=op.f("ck_zones_kind")
        ),
        sa.CheckConstraint("buffer_m >= 0", name=op.f("ck_zones_buffer")),
        sa.CheckConstraint("radius_m IS NULL OR radius_m > 0", name=op.f("ck_zones_radius")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "plant_id"],
            ["plants.tenant_id", "plants.id"],
            name=op.f("fk_zones_tenant_id_plant_id_plants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_zones_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_zones")),
        sa.UniqueConstraint(
            "tenant_id", "plant_id", "name", name=op.f("uq_zones_tenant_id_plant_id_name")
        ),
    )
    op.create_table(
        "permits",
        sa.Column("plant_id", sa.Uuid(), nullable=False),
        sa.Column("zone_id", sa.Uuid(), nullable=False),
        sa.Column("contractor_id", sa.Uuid(), nullable=False),
        sa.Column("work_type", sa.String(length=32), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=True),
        sa.Column("requested_level", sa.String(length=16), nullable=True),
        sa.Column("level_reasons", sa.JSON(), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("supersedes_id", sa.Uuid(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("location", sa.String(length=300), nullable=False),
        sa.Column("work_content", sa.Text(), nullable=False),
        sa.Column("planned_start", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("planned_end", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("work_leader_id", sa.Uuid(), nullable=False),
        sa.Column("guardian_worker_id", sa.Uuid(), nullable=True),
        sa.Column("guardian_user_id", sa.Uuid(), nullable=True),
        sa.Column("related_numbers", sa.JSON(), nullable=False),
        sa.Column("hazards", sa.JSON(), nullable=False),
        sa.Column("emergency_measures", sa.JSON(), nullable=False),
        sa.Column("checklist", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("applicant_id", sa.Uuid(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("submitted_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("approved_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("started_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("paused_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("state_changed_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('draft', 'submitted', 'in_approval', 'approved', 'active', 'suspended', 'completed', 'closed', 'rejected', 'cancelled', 'expired', 'superseded')",
            name=op.f("ck_permits_state"),
        ),
        sa.CheckConstraint(
            "(guardian_worker_id IS NULL) <> (guardian_user_id IS NULL)",
            name=op.f("ck_permits_one_guardian"),
        ),
        sa.CheckConstraint("planned_end > planned_start", name=op.f("ck_permits_window")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "contractor_id"],
            ["contractors.tenant_id", "contractors.id"],
            name=op.f("fk_permits_tenant_id_contractor_id_contractors"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "guardian_user_id"],
            ["users.tenant_id", "users.id"],
            name=op.f("fk_permits_tenant_id_guardian_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "guardian_worker_id"],
            ["workers.tenant_id", "workers.id"],
            name=op.f("fk_permits_tenant_id_guardian_worker_id_workers"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "plant_id"],
            ["plants.tenant_id", "plants.id"],
            name=op.f("fk_permits_tenant_id_plant_id_plants"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "supersedes_id"],
            ["permits.tenant_id", "permits.id"],
            name=op.f("fk_permits_tenant_id_supersedes_id_permits"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "work_leader_id"],
            ["workers.tenant_id", "workers.id"],
            name=op.f("fk_permits_tenant_id_work_leader_id_workers"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "zone_id"],
            ["zones.tenant_id", "zones.id"],
            name=op.f("fk_permits_tenant_id_zone_id_zones"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_permits_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_permits")),
        sa.UniqueConstraint(
            "tenant_id", "number", "version", name=op.f("uq_permits_tenant_id_number_version")
        ),
    )
    with op.batch_alter_table("permits", schema=None) as batch_op:
        batch_op.create_index(
            "ix_permits_contractor", ["tenant_id", "contractor_id", "planned_start"], unique=False
        )
        batch_op.create_index(
            "ix_permits_list",
            ["tenant_id", "plant_id", "state", "work_type", "planned_start"],
            unique=False,
        )
        batch_op.create_index(
            "ix_permits_zone_window",
            ["tenant_id", "zone_id", "planned_start", "planned_end"],
            unique=False,
        )

    op.create_table(
        "approval_steps",
        sa.Column("permit_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("clause", sa.String(length=16), nullable=True),
        sa.Column("label", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("activated_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("due_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("escalations", sa.Integer(), nullable=False),
        sa.Column("escalated_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decided_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("on_site", sa.Boolean(), nullable=True),
        sa.Column("minutes", sa.Float(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('waiting', 'pending', 'approved', 'rejected', 'returned', 'cancelled')",
            name=op.f("ck_approval_steps_status"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "permit_id"],
            ["permits.tenant_id", "permits.id"],
            name=op.f("fk_approval_steps_tenant_id_permit_id_permits"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_approval_steps_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_approval_steps")),
        sa.UniqueConstraint(
            "tenant_id",
            "permit_id",
            "position",
            name=op.f("uq_approval_steps_tenant_id_permit_id_position"),
        ),
    )
    with op.batch_alter_table("approval_steps", schema=None) as batch_op:
        batch_op.create_index(
            "ix_approval_steps_due", ["tenant_id", "status", "due_at"], unique=False
        )

    op.create_table(
        "gas_analyses",
        sa.Column("permit_id", sa.Uuid(), nullable=False),
        sa.Column("sampled_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("point", sa.String(length=200), nullable=False),
        sa.Column("readings", sa.JSON(), nullable=False),
        sa.Column("analyst", sa.String(length=100), nullable=False),
        sa.Column("instrument", sa.String(length=100), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("violations", sa.JSON(), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "permit_id"],
            ["permits.tenant_id", "permits.id"],
            name=op.f("fk_gas_analyses_tenant_id_permit_id_permits"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_gas_analyses_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_gas_analyses")),
    )
    with op.batch_alter_table("gas_analyses", schema=None) as batch_op:
        batch_op.create_index(
            "ix_gas_analyses_permit", ["tenant_id", "permit_id", "sampled_at"], unique=False
        )

    op.create_table(
        "permit_crew",
        sa.Column("permit_id", sa.Uuid(), nullable=False),
        sa.Column("worker_id", sa.Uuid(), nullable=False),
        sa.Column("duty", sa.String(length=40), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "permit_id"],
            ["permits.tenant_id", "permits.id"],
            name=op.f("fk_permit_crew_tenant_id_permit_id_permits"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "worker_id"],
            ["workers.tenant_id", "workers.id"],
            name=op.f("fk_permit_crew_tenant_id_worker_id_workers"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_permit_crew_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_permit_crew")),
        sa.UniqueConstraint(
            "tenant_id",
            "permit_id",
            "worker_id",
            name=op.f("uq_permit_crew_tenant_id_permit_id_worker_id"),
        ),
    )
    with op.batch_alter_table("permit_crew", schema=None) as batch_op:
        batch_op.create_index("ix_permit_crew_worker", ["tenant_id", "worker_id"], unique=False)

    for table in TENANT_TABLES:
        rls.enable_tenant_rls(table)
    rls.grant_app_role()


def downgrade() -> None:
    for table in TENANT_TABLES:
        rls.disable_tenant_rls(table)
    with op.batch_alter_table("permit_crew", schema=None) as batch_op:
        batch_op.drop_index("ix_permit_crew_worker")

    op.drop_table("permit_crew")
    with op.batch_alter_table("gas_analyses", schema=None) as batch_op:
        batch_op.drop_index("ix_gas_analyses_permit")

    op.drop_table("gas_analyses")
    with op.batch_alter_table("approval_steps", schema=None) as batch_op:
        batch_op.drop_index("ix_approval_steps_due")

    op.drop_table("approval_steps")
    with op.batch_alter_table("permits", schema=None) as batch_op:
        batch_op.drop_index("ix_permits_zone_window")
        batch_op.drop_index("ix_permits_list")
        batch_op.drop_index("ix_permits_contractor")

    op.drop_table("permits")
    op.drop_table("zones")
    op.drop_table("permit_counters")
    op.drop_table("permit_chain_policies")
    op.drop_table("permit_calendar_days")
