"""scoring: monthly rollups per plant, the sum of the daily ones, filled from them

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 23:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infra.db
from infra import rls

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "scoring_plant_monthly"
MARK_DAYS_STALE = sa.text(
    "INSERT INTO scoring_stale_days (tenant_id, id, plant_id, day, generation, created_at, "
    "updated_at) SELECT tenant_id, id, plant_id, day, 1, created_at, updated_at "
    "FROM scoring_plant_daily AS daily WHERE NOT EXISTS (SELECT 1 FROM scoring_stale_days AS "
    "stale WHERE stale.tenant_id = daily.tenant_id AND stale.plant_id = daily.plant_id "
    "AND stale.day = daily.day)"
)


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("month", sa.Date(), nullable=False),
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
            name=op.f("fk_scoring_plant_monthly_tenant_id_plant_id_plants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_scoring_plant_monthly_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_scoring_plant_monthly")),
        sa.UniqueConstraint(
            "tenant_id",
            "month",
            "plant_id",
            name=op.f("uq_scoring_plant_monthly_tenant_id_month_plant_id"),
        ),
    )
    rls.enable_tenant_rls(TABLE)
    rls.grant_app_role()
    # Every plant-day already rolled up is marked stale, so the beat (or the first report)
    # rebuilds those days and, with them, their months. Row-level security binds the owner too,
    # so on PostgreSQL this runs once per tenant, inside that tenant's setting.
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        bind.execute(MARK_DAYS_STALE)
        return
    for (tenant_id,) in bind.execute(sa.text("SELECT id FROM tenants")).all():
        bind.execute(
            sa.text("SELECT set_config('app.tenant_id', :tenant, true)"), {"tenant": str(tenant_id)}
        )
        bind.execute(MARK_DAYS_STALE)
    bind.execute(sa.text("SELECT set_config('app.tenant_id', '', true)"))


def downgrade() -> None:
    rls.disable_tenant_rls(TABLE)
    op.drop_table(TABLE)
