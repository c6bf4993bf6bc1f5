"""scoring: job ratings and appeals, inspection findings, supplier reviews, the scoring policy,
the daily rollups behind the HQ comparison with their stale-day marks, and export jobs

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 19:58:00.586475
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infra.db
from infra import rls

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = (
    "scoring_exports",
    "scoring_policies",
    "scoring_daily",
    "scoring_plant_daily",
    "scoring_reviews",
    "scoring_stale_days",
    "scoring_findings",
    "scoring_ratings",
    "scoring_appeals",
)


def upgrade() -> None:
    op.create_table(
        "scoring_exports",
        sa.Column("table", sa.String(length=40), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("object_key", sa.String(length=300), nullable=True),
        sa.Column("filename", sa.String(length=200), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.Uuid(), nullable=False),
        sa.Column("finished_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('running', 'done', 'failed')", name=op.f("ck_scoring_exports_state")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_scoring_exports_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_scoring_exports")),
    )
    op.create_table(
        "scoring_policies",
        sa.Column("weights", sa.JSON(), nullable=False),
        sa.Column("severity_points", sa.JSON(), nullable=False),
        sa.Column("alert_severity", sa.JSON(), nullable=False),
        sa.Column("risk_weights", sa.JSON(), nullable=False),
        sa.Column("grade_thresholds", sa.JSON(), nullable=False),
        sa.Column("prior_jobs", sa.Float(), nullable=False),
        sa.Column("blacklist_critical", sa.Integer(), nullable=False),
        sa.Column("appeal_days", sa.Integer(), nullable=False),
        sa.Column("bi_webhook_url", sa.String(length=1000), nullable=True),
        sa.Column("bi_webhook_secret", sa.String(length=200), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_scoring_policies_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_scoring_policies")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_scoring_policies_tenant_id")),
    )
    op.create_table(
        "scoring_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("plant_id", sa.Uuid(), nullable=False),
        sa.Column("work_type", sa.String(length=32), nullable=False),
        sa.Column("contractor_id", sa.Uuid(), nullable=True),
        sa.Column("permits", sa.Integer(), nullable=False),
        sa.Column("finished", sa.Integer(), nullable=False),
        sa.Column("full_loop", sa.Integer(), nullable=False),
        sa.Column("approvals", sa.Integer(), nullable=False),
        sa.Column("approval_minutes", sa.Float(), nullable=False),
        sa.Column("approval_histogram", sa.JSON(), nullable=False),
        sa.Column("alerts", sa.Integer(), nullable=False),
        sa.Column("responses", sa.Integer(), nullable=False),
        sa.Column("response_minutes", sa.Float(), nullable=False),
        sa.Column("violations", sa.Integer(), nullable=False),
        sa.Column("work_minutes", sa.Float(), nullable=False),
        sa.Column("checkins", sa.Integer(), nullable=False),
        sa.Column("phone_checkins", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "plant_id"],
            ["plants.tenant_id", "plants.id"],
            name=op.f("fk_scoring_daily_tenant_id_plant_id_plants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_scoring_daily_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_scoring_daily")),
    )
    with op.batch_alter_table("scoring_daily", schema=None) as batch_op:
        batch_op.create_index(
            "ix_scoring_daily_contractor_day", ["tenant_id", "contractor_id", "day"], unique=False
        )
        batch_op.create_index(
            "ix_scoring_daily_plant_day", ["tenant_id", "plant_id", "day"], unique=False
        )

    op.create_table(
        "scoring_plant_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("plant_id", sa.Uuid(), nullable=False),
        sa.Column("contractor_ids", sa.JSON(), nullable=False),
        sa.Column("permits", sa.Integer(), nullable=False),
        sa.Column("finished", sa.Integer(), nullable=False),
        sa.Column("full_loop", sa.Integer(), nullable=False),
        sa.Column("approvals", sa.Integer(), nullable=False),
        sa.Column("approval_minutes", sa.Float(), nullable=False),
        sa.Column("approval_histogram", sa.JSON(), nullable=False),
        sa.Column("alerts", sa.Integer(), nullable=False),
        sa.Column("responses", sa.Integer(), nullable=False),
        sa.Column("response_minutes", sa.Float(), nullable=False),
        sa.Column("violations", sa.Integer(), nullable=False),
        sa.Column("work_minutes", sa.Float(), nullable=False),
        sa.Column("checkins", sa.Integer(), nullable=False),
        sa.Column("phone_checkins", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "plant_id"],
            ["plants.tenant_id", "plants.id"],
            name=op.f("fk_scoring_plant_daily_tenant_id_plant_id_plants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_scoring_plant_daily_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_scoring_plant_daily")),
        sa.UniqueConstraint(
            "tenant_id",
            "day",
            "plant_id",
            name=op.f("uq_scoring_plant_daily_tenant_id_day_plant_id"),
        ),
    )
    op.create_table(
        "scoring_reviews",
        sa.Column("contractor_id", sa.Uuid(), nullable=False),
        sa.Column("period_kind", sa.String(length=8), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("jobs", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("grade", sa.String(length=1), nullable=False),
        sa.Column("violations", sa.Integer(), nullable=False),
        sa.Column("critical_violations", sa.Integer(), nullable=False),
        sa.Column("proposed_decision", sa.String(length=16), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("approved_by", sa.Uuid(), nullable=True),
        sa.Column("approved_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("scorecard_key", sa.String(length=300), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("grade IN ('A', 'B', 'C', 'D')", name=op.f("ck_scoring_reviews_grade")),
        sa.CheckConstraint(
            "period_kind IN ('quarter', 'year')", name=op.f("ck_scoring_reviews_period_kind")
        ),
        sa.CheckConstraint(
            "proposed_decision IN ('keep', 'probation', 'suspend', 'blacklist')",
            name=op.f("ck_scoring_reviews_proposed_decision"),
        ),
        sa.CheckConstraint("state IN ('draft', 'approved')", name=op.f("ck_scoring_reviews_state")),
        sa.CheckConstraint("period_end > period_start", name=op.f("ck_scoring_reviews_period")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "contractor_id"],
            ["contractors.tenant_id", "contractors.id"],
            name=op.f("fk_scoring_reviews_tenant_id_contractor_id_contractors"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_scoring_reviews_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_scoring_reviews")),
    )
    with op.batch_alter_table("scoring_reviews", schema=None) as batch_op:
        batch_op.create_index(
            "ix_scoring_reviews_contractor",
            ["tenant_id", "contractor_id", "period_start"],
            unique=False,
        )

    op.create_table(
        "scoring_stale_days",
        sa.Column("plant_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "plant_id"],
            ["plants.tenant_id", "plants.id"],
            name=op.f("fk_scoring_stale_days_tenant_id_plant_id_plants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_scoring_stale_days_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_scoring_stale_days")),
        sa.UniqueConstraint(
            "tenant_id",
            "plant_id",
            "day",
            name=op.f("uq_scoring_stale_days_tenant_id_plant_id_day"),
        ),
    )
    op.create_table(
        "scoring_findings",
        sa.Column("plant_id", sa.Uuid(), nullable=False),
        sa.Column("contractor_id", sa.Uuid(), nullable=False),
        sa.Column("permit_id", sa.Uuid(), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("photo_ids", sa.JSON(), nullable=False),
        sa.Column("observed_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "severity IN ('minor', 'major', 'critical')", name=op.f("ck_scoring_findings_severity")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "contractor_id"],
            ["contractors.tenant_id", "contractors.id"],
            name=op.f("fk_scoring_findings_tenant_id_contractor_id_contractors"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "permit_id"],
            ["permits.tenant_id", "permits.id"],
            name=op.f("fk_scoring_findings_tenant_id_permit_id_permits"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "plant_id"],
            ["plants.tenant_id", "plants.id"],
            name=op.f("fk_scoring_findings_tenant_id_plant_id_plants"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_scoring_findings_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_scoring_findings")),
    )
    with op.batch_alter_table("scoring_findings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_scoring_findings_contractor",
            ["tenant_id", "contractor_id", "observed_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_scoring_findings_permit", ["tenant_id", "permit_id"], unique=False
        )

    op.create_table(
        "scoring_ratings",
        sa.Column("permit_id", sa.Uuid(), nullable=False),
        sa.Column("plant_id", sa.Uuid(), nullable=False),
        sa.Column("contractor_id", sa.Uuid(), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("weights", sa.JSON(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("photo_ids", sa.JSON(), nullable=False),
        sa.Column("rated_by", sa.Uuid(), nullable=False),
        sa.Column("rated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("appeal_until", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "contractor_id"],
            ["contractors.tenant_id", "contractors.id"],
            name=op.f("fk_scoring_ratings_tenant_id_contractor_id_contractors"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "permit_id"],
            ["permits.tenant_id", "permits.id"],
            name=op.f("fk_scoring_ratings_tenant_id_permit_id_permits"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "plant_id"],
            ["plants.tenant_id", "plants.id"],
            name=op.f("fk_scoring_ratings_tenant_id_plant_id_plants"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_scoring_ratings_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_scoring_ratings")),
        sa.UniqueConstraint(
            "tenant_id", "permit_id", name=op.f("uq_scoring_ratings_tenant_id_permit_id")
        ),
    )
    with op.batch_alter_table("scoring_ratings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_scoring_ratings_contractor",
            ["tenant_id", "contractor_id", "rated_at"],
            unique=False,
        )

    op.create_table(
        "scoring_appeals",
        sa.Column("rating_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("filed_by", sa.Uuid(), nullable=False),
        sa.Column("filed_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("decision_text", sa.Text(), nullable=True),
        sa.Column("previous_scores", sa.JSON(), nullable=True),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decided_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('open', 'upheld', 'amended')", name=op.f("ck_scoring_appeals_state")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "rating_id"],
            ["scoring_ratings.tenant_id", "scoring_ratings.id"],
            name=op.f("fk_scoring_appeals_tenant_id_rating_id_scoring_ratings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_scoring_appeals_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_scoring_appeals")),
        sa.UniqueConstraint(
            "tenant_id", "rating_id", name=op.f("uq_scoring_appeals_tenant_id_rating_id")
        ),
    )

    for table in TENANT_TABLES:
        rls.enable_tenant_rls(table)
    rls.grant_app_role()


def downgrade() -> None:
    for table in TENANT_TABLES:
        rls.disable_tenant_rls(table)
    op.drop_table("scoring_appeals")
    with op.batch_alter_table("scoring_ratings", schema=None) as batch_op:
        batch_op.drop_index("ix_scoring_ratings_contractor")

    op.drop_table("scoring_ratings")
    with op.batch_alter_table("scoring_findings", schema=None) as batch_op:
        batch_op.drop_index("ix_scoring_findings_permit")
        batch_op.drop_index("ix_scoring_findings_contractor")

    op.drop_table("scoring_findings")
    op.drop_table("scoring_stale_days")
    with op.batch_alter_table("scoring_reviews", schema=None) as batch_op:
        batch_op.drop_index("ix_scoring_reviews_contractor")

    op.drop_table("scoring_reviews")
    op.drop_table("scoring_plant_daily")
    with op.batch_alter_table("scoring_daily", schema=None) as batch_op:
        batch_op.drop_index("ix_scoring_daily_plant_day")
        batch_op.drop_index("ix_scoring_daily_contractor_day")

    op.drop_table("scoring_daily")
    op.drop_table("scoring_policies")
    op.drop_table("scoring_exports")
