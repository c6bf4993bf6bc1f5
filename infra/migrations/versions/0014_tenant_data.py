"""tenant data: export jobs of everything a tenant owns, and the tenant's scheduled deletion

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28 23:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infra.db
from infra import rls

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "tenant_exports"


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("deletion_scheduled_at", infra.db.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        TABLE,
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("object_key", sa.String(length=300), nullable=True),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column("requested_by", sa.Uuid(), nullable=False),
        sa.Column("finished_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('running', 'done', 'failed')", name=op.f("ck_tenant_exports_state")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_tenant_exports_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_tenant_exports")),
    )
    rls.enable_tenant_rls(TABLE)
    rls.grant_app_role()


def downgrade() -> None:
    rls.disable_tenant_rls(TABLE)
    op.drop_table(TABLE)
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("deletion_scheduled_at")
