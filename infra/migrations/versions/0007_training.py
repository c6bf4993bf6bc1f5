"""training: worker logins linked to their worker, inductions and their frozen versions, quiz
attempts, induction signatures, and job briefings with their crew and signatures

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infra.db
from infra import rls

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


TENANT_TABLES = (
    "inductions",
    "induction_versions",
    "quiz_attempts",
    "induction_signatures",
    "briefings",
    "briefing_crew",
    "briefing_signatures",
)


def upgrade() -> None:
    op.create_table(
        "briefings",
        sa.Column("permit_id", sa.Uuid(), nullable=False),
        sa.Column("permit_number", sa.String(length=40), nullable=False),
        sa.Column("plant_id", sa.Uuid(), nullable=False),
        sa.Column("work_type", sa.String(length=32), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("briefer_id", sa.Uuid(), nullable=False),
        sa.Column("superseded_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "briefer_id"],
            ["users.tenant_id", "users.id"],
            name=op.f("fk_briefings_tenant_id_briefer_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "plant_id"],
            ["plants.tenant_id", "plants.id"],
            name=op.f("fk_briefings_tenant_id_plant_id_plants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_briefings_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_briefings")),
        sa.UniqueConstraint(
            "tenant_id",
            "permit_id",
            "content_hash",
            name=op.f("uq_briefings_tenant_id_permit_id_content_hash"),
        ),
    )
    with op.batch_alter_table("briefings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_briefings_permit", ["tenant_id", "permit_id", "created_at"], unique=False
        )

    op.create_table(
        "inductions",
        sa.Column("plant_id", sa.Uuid(), nullable=False),
        sa.Column("work_type", sa.String(length=32), nullable=True),
        sa.Column("draft", sa.JSON(), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("retired_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "plant_id"],
            ["plants.tenant_id", "plants.id"],
            name=op.f("fk_inductions_tenant_id_plant_id_plants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_inductions_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_inductions")),
    )
    with op.batch_alter_table("inductions", schema=None) as batch_op:
        batch_op.create_index("ix_inductions_plant", ["tenant_id", "plant_id"], unique=False)

    op.create_table(
        "briefing_crew",
        sa.Column("briefing_id", sa.Uuid(), nullable=False),
        sa.Column("worker_id", sa.Uuid(), nullable=False),
        sa.Column("added_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("removed_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "briefing_id"],
            ["briefings.tenant_id", "briefings.id"],
            name=op.f("fk_briefing_crew_tenant_id_briefing_id_briefings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "worker_id"],
            ["workers.tenant_id", "workers.id"],
            name=op.f("fk_briefing_crew_tenant_id_worker_id_workers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_briefing_crew_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_briefing_crew")),
        sa.UniqueConstraint(
            "tenant_id",
            "briefing_id",
            "worker_id",
            name=op.f("uq_briefing_crew_tenant_id_briefing_id_worker_id"),
        ),
    )
    op.create_table(
        "briefing_signatures",
        sa.Column("briefing_id", sa.Uuid(), nullable=False),
        sa.Column("worker_id", sa.Uuid(), nullable=True),
        sa.Column("device", sa.String(length=16), nullable=False),
        sa.Column("signer_user_id", sa.Uuid(), nullable=True),
        sa.Column("full_name", sa.String(length=100), nullable=False),
        sa.Column("consent", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("signed_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ip_address", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=400), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("strokes", sa.JSON(), nullable=False),
        sa.Column("strokes_sha256", sa.String(length=64), nullable=False),
        sa.Column("image_id", sa.Uuid(), nullable=False),
        sa.Column("image_sha256", sa.String(length=64), nullable=False),
        sa.Column("record_hash", sa.String(length=64), nullable=False),
        sa.Column("ledger_seq", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "device IN ('own_phone', 'briefer_tablet')", name=op.f("ck_briefing_signatures_device")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "briefing_id"],
            ["briefings.tenant_id", "briefings.id"],
            name=op.f("fk_briefing_signatures_tenant_id_briefing_id_briefings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "image_id"],
            ["stored_objects.tenant_id", "stored_objects.id"],
            name=op.f("fk_briefing_signatures_tenant_id_image_id_stored_objects"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "worker_id"],
            ["workers.tenant_id", "workers.id"],
            name=op.f("fk_briefing_signatures_tenant_id_worker_id_workers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_briefing_signatures_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_briefing_signatures")),
        sa.UniqueConstraint(
            "tenant_id",
            "briefing_id",
            "worker_id",
            name=op.f("uq_briefing_signatures_tenant_id_briefing_id_worker_id"),
        ),
        sa.UniqueConstraint(
            "tenant_id",
            "strokes_sha256",
            name=op.f("uq_briefing_signatures_tenant_id_strokes_sha256"),
        ),
    )
    op.create_table(
        "induction_versions",
        sa.Column("induction_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("published_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.Uuid(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("version >= 1", name=op.f("ck_induction_versions_version")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "induction_id"],
            ["inductions.tenant_id", "inductions.id"],
            name=op.f("fk_induction_versions_tenant_id_induction_id_inductions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_induction_versions_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_induction_versions")),
        sa.UniqueConstraint(
            "tenant_id",
            "induction_id",
            "version",
            name=op.f("uq_induction_versions_tenant_id_induction_id_version"),
        ),
    )
    op.create_table(
        "quiz_attempts",
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("induction_id", sa.Uuid(), nullable=False),
        sa.Column("worker_id", sa.Uuid(), nullable=False),
        sa.Column("operated_by", sa.Uuid(), nullable=True),
        sa.Column("plant_day", sa.Date(), nullable=False),
        sa.Column("started_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("drawn", sa.JSON(), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=True),
        sa.Column("submitted_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("wrong", sa.JSON(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "score IS NULL OR (score >= 0 AND score <= 100)", name=op.f("ck_quiz_attempts_score")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "version_id"],
            ["induction_versions.tenant_id", "induction_versions.id"],
            name=op.f("fk_quiz_attempts_tenant_id_version_id_induction_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "worker_id"],
            ["workers.tenant_id", "workers.id"],
            name=op.f("fk_quiz_attempts_tenant_id_worker_id_workers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_quiz_attempts_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_quiz_attempts")),
    )
    with op.batch_alter_table("quiz_attempts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_quiz_attempts_worker", ["tenant_id", "worker_id", "started_at"], unique=False
        )

    op.create_table(
        "induction_signatures",
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("induction_id", sa.Uuid(), nullable=False),
        sa.Column("worker_id", sa.Uuid(), nullable=False),
        sa.Column("attempt_id", sa.Uuid(), nullable=False),
        sa.Column("assisted_by", sa.Uuid(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("signer_user_id", sa.Uuid(), nullable=True),
        sa.Column("full_name", sa.String(length=100), nullable=False),
        sa.Column("consent", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("signed_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ip_address", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=400), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("strokes", sa.JSON(), nullable=False),
        sa.Column("strokes_sha256", sa.String(length=64), nullable=False),
        sa.Column("image_id", sa.Uuid(), nullable=False),
        sa.Column("image_sha256", sa.String(length=64), nullable=False),
        sa.Column("record_hash", sa.String(length=64), nullable=False),
        sa.Column("ledger_seq", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "attempt_id"],
            ["quiz_attempts.tenant_id", "quiz_attempts.id"],
            name=op.f("fk_induction_signatures_tenant_id_attempt_id_quiz_attempts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "image_id"],
            ["stored_objects.tenant_id", "stored_objects.id"],
            name=op.f("fk_induction_signatures_tenant_id_image_id_stored_objects"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "version_id"],
            ["induction_versions.tenant_id", "induction_versions.id"],
            name=op.f("fk_induction_signatures_tenant_id_version_id_induction_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "worker_id"],
            ["workers.tenant_id", "workers.id"],
            name=op.f("fk_induction_signatures_tenant_id_worker_id_workers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_induction_signatures_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_induction_signatures")),
        sa.UniqueConstraint(
            "tenant_id", "attempt_id", name=op.f("uq_induction_signatures_tenant_id_attempt_id")
        ),
        sa.UniqueConstraint(
            "tenant_id",
            "strokes_sha256",
            name=op.f("uq_induction_signatures_tenant_id_strokes_sha256"),
        ),
    )
    with op.batch_alter_table("induction_signatures", schema=None) as batch_op:
        batch_op.create_index(
            "ix_induction_signatures_worker",
            ["tenant_id", "worker_id", "valid_until"],
            unique=False,
        )

    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_id", sa.Uuid(), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_workers_tenant_id_user_id"), ["tenant_id", "user_id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_workers_tenant_id_user_id_users"),
            "users",
            ["tenant_id", "user_id"],
            ["tenant_id", "id"],
            ondelete="SET NULL",
        )

    for table in TENANT_TABLES:
        rls.enable_tenant_rls(table)
    rls.grant_app_role()


def downgrade() -> None:
    for table in TENANT_TABLES:
        rls.disable_tenant_rls(table)
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_workers_tenant_id_user_id_users"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("uq_workers_tenant_id_user_id"), type_="unique")
        batch_op.drop_column("user_id")

    with op.batch_alter_table("induction_signatures", schema=None) as batch_op:
        batch_op.drop_index("ix_induction_signatures_worker")

    op.drop_table("induction_signatures")
    with op.batch_alter_table("quiz_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_quiz_attempts_worker")

    op.drop_table("quiz_attempts")
    op.drop_table("induction_versions")
    op.drop_table("briefing_signatures")
    op.drop_table("briefing_crew")
    with op.batch_alter_table("inductions", schema=None) as batch_op:
        batch_op.drop_index("ix_inductions_plant")

    op.drop_table("inductions")
    with op.batch_alter_table("briefings", schema=None) as batch_op:
        batch_op.drop_index("ix_briefings_permit")

    op.drop_table("briefings")
