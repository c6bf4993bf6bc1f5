"""tenants: a plant's boundary, the tenant's branding on documents and its own e-mail server
and SMS account

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28 23:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infra.db
from infra import rls

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = ("tenant_brandings", "notification_channel_settings")


def _common_columns() -> list[sa.Column]:
    return [
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
    ]


def _tenant_constraints(table: str) -> list[sa.Constraint]:
    return [
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f(f"fk_{table}_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f(f"pk_{table}")),
        sa.UniqueConstraint("tenant_id", name=op.f(f"uq_{table}_tenant_id")),
    ]


def upgrade() -> None:
    with op.batch_alter_table("plants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("boundary", sa.JSON(), nullable=True))
    op.create_table(
        "tenant_brandings",
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("logo_id", sa.Uuid(), nullable=True),
        *_common_columns(),
        *_tenant_constraints("tenant_brandings"),
    )
    op.create_table(
        "notification_channel_settings",
        sa.Column("smtp_host", sa.String(length=255), nullable=True),
        sa.Column("smtp_port", sa.Integer(), nullable=True),
        sa.Column("smtp_from", sa.String(length=254), nullable=True),
        sa.Column("smtp_username", sa.String(length=254), nullable=True),
        sa.Column("smtp_password_encrypted", sa.String(length=600), nullable=True),
        sa.Column("smtp_starttls", sa.Boolean(), nullable=False),
        sa.Column("sms_provider", sa.String(length=32), nullable=True),
        sa.Column("sms_sign_name", sa.String(length=64), nullable=True),
        sa.Column("sms_template_id", sa.String(length=64), nullable=True),
        sa.Column("sms_access_key_id", sa.String(length=128), nullable=True),
        sa.Column("sms_secret_encrypted", sa.String(length=600), nullable=True),
        *_common_columns(),
        *_tenant_constraints("notification_channel_settings"),
    )
    for table in TENANT_TABLES:
        rls.enable_tenant_rls(table)
    rls.grant_app_role()


def downgrade() -> None:
    for table in TENANT_TABLES:
        rls.disable_tenant_rls(table)
    op.drop_table("notification_channel_settings")
    op.drop_table("tenant_brandings")
    with op.batch_alter_table("plants", schema=None) as batch_op:
        batch_op.drop_column("boundary")
