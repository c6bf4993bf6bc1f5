"""Daily partitions on PostgreSQL: made ahead, dropped after the retention, and each under the
same tenant floor as its parent (a partition is a table of its own in the catalog)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import create_engine, text

from infra import partitions
from infra.migrate import head_revision
from infra.rls import POLICY_NAME
from infra.settings import to_sync_url
from tests.conftest import PG_APP_ROLE, PostgresDatabase

pytestmark = pytest.mark.postgres

TODAY = date(2026, 11, 28)


@pytest.fixture
def probe_table(postgres: PostgresDatabase):  # type: ignore[no-untyped-def]
    """A partitioned table of its own, so that dropping days never touches the pings."""
    name = f"probe_{uuid.uuid4().hex[:8]}"
    engine = create_engine(to_sync_url(postgres.owner_url))
    with engine.begin() as connection:
        connection.execute(
            text(
                f"CREATE TABLE {name} (tenant_id uuid NOT NULL, at timestamptz NOT NULL) "
                "PARTITION BY RANGE (at)"
            )
        )
    yield engine, name
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE {name}"))
    engine.dispose()


def _days(connection, table: str) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(partitions.existing_days(connection, table).values())


def test_days_are_made_ahead_and_dropped_after_the_retention(probe_table) -> None:  # type: ignore[no-untyped-def]
    engine, table = probe_table
    with engine.begin() as connection:
        made = partitions.maintain_daily(
            connection, table, TODAY, back_days=2, ahead_days=3, keep_days=10
        )
        assert made.created == [
            partitions.partition_name(table, TODAY + timedelta(days=offset))
            for offset in range(-2, 4)
        ]
        assert made.dropped == []
        # Run again: nothing to do.
        again = partitions.maintain_daily(
            connection, table, TODAY, back_days=2, ahead_days=3, keep_days=10
        )
        assert (again.created, again.dropped) == ([], [])
        # Nine days on: the days older than the retention go, the coming ones are made.
        later = partitions.maintain_daily(
            connection, table, TODAY + timedelta(days=9), back_days=2, ahead_days=3, keep_days=10
        )
        assert later.dropped == [partitions.partition_name(table, TODAY - timedelta(days=2))]
        assert _days(connection, table)[-1] == partitions.partition_name(
            table, TODAY + timedelta(days=12)
        )
        rows = connection.execute(
            text(
                "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
                "EXISTS (SELECT 1 FROM pg_policies p WHERE p.tablename = c.relname "
                "        AND p.policyname = :policy) AS has_policy, "
                "has_table_privilege(:role, c.oid, 'INSERT') AS writable "
                "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :table"
            ),
            {"policy": POLICY_NAME, "role": PG_APP_ROLE, "table": table},
        ).all()
    assert rows and all(
        row.relrowsecurity and row.relforcerowsecurity and row.has_policy and row.writable
        for row in rows
    )


def test_the_migration_made_the_ping_partitions_around_today(postgres: PostgresDatabase) -> None:
    engine = create_engine(to_sync_url(postgres.owner_url))
    try:
        with engine.connect() as connection:
            assert (
                connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
                == head_revision()
            )
            days = partitions.existing_days(connection, "geofence_pings")
    finally:
        engine.dispose()
    today = date.today()
    assert {today - timedelta(days=1), today, today + timedelta(days=7)} <= set(days)
