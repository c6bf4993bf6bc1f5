"""sms app id: Tencent Cloud's SmsSdkAppId on the tenant's SMS account

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29 03:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notification_channel_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sms_app_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notification_channel_settings", schema=None) as batch_op:
        batch_op.drop_column("sms_app_id")
