"""tasks and outbox: idempotent task effects and the transactional outbox

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infra.db
from infra import rls

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = ("task_effects", "outbox_messages")


def upgrade() -> None:
    op.create_table(
        "task_effects",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("task", sa.String(length=200), nullable=False),
        sa.Column("completed_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_task_effects_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_task_effects")),
        sa.UniqueConstraint("tenant_id", "key", name=op.f("uq_task_effects_tenant_id_key")),
    )
    op.create_table(
        "outbox_messages",
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')",
            name=op.f("ck_outbox_messages_status"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_outbox_messages_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_outbox_messages")),
        sa.UniqueConstraint("tenant_id", "key", name=op.f("uq_outbox_messages_tenant_id_key")),
    )
    op.create_index(
        "ix_outbox_messages_due",
        "outbox_messages",
        ["tenant_id", "status", "next_attempt_at"],
        unique=False,
    )
    for table in TENANT_TABLES:
        rls.enable_tenant_rls(table)
    rls.grant_app_role()


def downgrade() -> None:
    for table in TENANT_TABLES:
        rls.disable_tenant_rls(table)
    op.drop_index("ix_outbox_messages_due", table_name="outbox_messages")
    op.drop_table("outbox_messages")
    op.drop_table("task_effects")
