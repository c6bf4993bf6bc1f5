"""outbox cancelled: a message withdrawn on purpose has a state of its own

Before, such a message was ``failed`` with an error starting ``cancelled: ``; it moves to
``cancelled`` with the reason alone.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-29 06:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WITH_CANCELLED = "status IN ('pending', 'delivered', 'failed', 'cancelled')"
WITHOUT_CANCELLED = "status IN ('pending', 'delivered', 'failed')"


def _rewrite_rows(statement: str) -> None:
    # Row-level security is forced on the table, for its owner too: lifted for the rewrite, so
    # that it reaches every tenant's rows, and put back in the same transaction.
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("ALTER TABLE outbox_messages NO FORCE ROW LEVEL SECURITY")
    op.execute(statement)
    if postgres:
        op.execute("ALTER TABLE outbox_messages FORCE ROW LEVEL SECURITY")


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_outbox_messages_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_outbox_messages_status"), WITH_CANCELLED)
    _rewrite_rows(
        "UPDATE outbox_messages SET status = 'cancelled', last_error = substr(last_error, 12) "
        "WHERE status = 'failed' AND last_error LIKE 'cancelled: %'"
    )


def downgrade() -> None:
    _rewrite_rows(
        "UPDATE outbox_messages SET status = 'failed', last_error = 'cancelled: ' || last_error "
        "WHERE status = 'cancelled'"
    )
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_outbox_messages_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_outbox_messages_status"), WITHOUT_CANCELLED)
