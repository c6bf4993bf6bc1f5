"""notifications: per-user channel preferences and the tenant's outgoing webhooks

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infra.db
from infra import rls

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = ("notification_preferences", "notification_webhooks")


def upgrade() -> None:
    op.create_table(
        "notification_preferences",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("email", sa.Boolean(), nullable=False),
        sa.Column("sms", sa.Boolean(), nullable=False),
        sa.Column("webhook", sa.Boolean(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["users.tenant_id", "users.id"],
            name=op.f("fk_notification_preferences_tenant_id_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_notification_preferences_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_notification_preferences")),
        sa.UniqueConstraint(
            "tenant_id",
            "user_id",
            "kind",
            name=op.f("uq_notification_preferences_tenant_id_user_id_kind"),
        ),
    )
    op.create_table(
        "notification_webhooks",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("url", sa.String(length=1000), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "format IN ('generic', 'dingtalk', 'wecom')",
            name=op.f("ck_notification_webhooks_format"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_notification_webhooks_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_notification_webhooks")),
        sa.UniqueConstraint(
            "tenant_id", "name", name=op.f("uq_notification_webhooks_tenant_id_name")
        ),
    )
    for table in TENANT_TABLES:
        rls.enable_tenant_rls(table)
    rls.grant_app_role()


def downgrade() -> None:
    for table in TENANT_TABLES:
        rls.disable_tenant_rls(table)
    op.drop_table("notification_webhooks")
    op.drop_table("notification_preferences")
