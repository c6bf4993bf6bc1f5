"""permit list index: ordered by start then id, covering the list's columns

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-29 04:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIST_ROW_COLUMNS = [
    "number",
    "version",
    "level",
    "zone_id",
    "contractor_id",
    "location",
    "planned_end",
]


def upgrade() -> None:
    with op.batch_alter_table("permits", schema=None) as batch_op:
        batch_op.drop_index("ix_permits_list")
        batch_op.create_index(
            "ix_permits_list",
            ["tenant_id", "plant_id", "state", "work_type", "planned_start", "id"],
            unique=False,
            postgresql_include=LIST_ROW_COLUMNS,
        )


def downgrade() -> None:
    with op.batch_alter_table("permits", schema=None) as batch_op:
        batch_op.drop_index("ix_permits_list")
        batch_op.create_index(
            "ix_permits_list",
            ["tenant_id", "plant_id", "state", "work_type", "planned_start"],
            unique=False,
        )
