"""plant retired: a plant taken out of service keeps its history and is no longer billed

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-29 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infra.db

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("plants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("retired_at", infra.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("plants", schema=None) as batch_op:
        batch_op.drop_column("retired_at")
