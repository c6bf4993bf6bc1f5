"""reminder days: the tenant's own days before an expiry or a lapse when reminders go out

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29 00:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The server default fills the rows already there with the days every tenant had so far.
    with op.batch_alter_table("onboarding_settings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "reminder_days", sa.JSON(), nullable=False, server_default=sa.text("'[30, 7, 1]'")
            )
        )
    with op.batch_alter_table("onboarding_settings", schema=None) as batch_op:
        batch_op.alter_column("reminder_days", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("onboarding_settings", schema=None) as batch_op:
        batch_op.drop_column("reminder_days")
