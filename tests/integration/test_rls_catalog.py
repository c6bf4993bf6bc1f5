"""The floor under tenancy: PostgreSQL's catalog must show RLS on every tenant table, and the
application role must not be able to step around it."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from infra.rls import POLICY_NAME
from infra.schema import load_models
from infra.settings import to_sync_url
from infra.tenancy import tenant_tables
from tests.conftest import PG_APP_ROLE, PostgresDatabase

load_models()


@pytest.fixture
def catalog(postgres: PostgresDatabase):  # type: ignore[no-untyped-def]
    engine = create_engine(to_sync_url(postgres.owner_url))
    with engine.connect() as connection:
        yield connection
    engine.dispose()


def test_every_tenant_table_has_forced_rls_and_a_policy(catalog) -> None:  # type: ignore[no-untyped-def]
    rows = catalog.execute(
        text(
            """
            SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   array_remove(array_agg(p.policyname), NULL) AS policies
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
                                AND NOT a.attisdropped
            LEFT JOIN pg_policies p ON p.schemaname = 'public' AND p.tablename = c.relname
            WHERE c.relkind IN ('r', 'p')
            GROUP BY c.relname, c.relrowsecurity, c.relforcerowsecurity
            """
        )
    ).all()
    catalog_tables = {row.relname: row for row in rows}
    model_tables = {table.name for table in tenant_tables()}
    assert model_tables, "no tenant-owned models were found"
    assert model_tables <= set(catalog_tables), "a tenant model has no table in the database"
    missing = [
        name
        for name, row in catalog_tables.items()
        if not (row.relrowsecurity and row.relforcerowsecurity and POLICY_NAME in row.policies)
    ]
    assert missing == [], (
        f"tables with tenant_id lacking enabled+forced RLS and a policy: {missing}"
    )


def test_app_role_owns_nothing_and_cannot_bypass(catalog) -> None:  # type: ignore[no-untyped-def]
    role = catalog.execute(
        text("SELECT rolsuper, rolbypassrls, rolcreaterole FROM pg_roles WHERE rolname = :r"),
        {"r": PG_APP_ROLE},
    ).one()
    assert not role.rolsuper and not role.rolbypassrls and not role.rolcreaterole
    owned = catalog.execute(
        text(
            "SELECT c.relname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
            "WHERE r.rolname = :r"
        ),
        {"r": PG_APP_ROLE},
    ).all()
    assert owned == []


def test_app_role_cannot_switch_rls_off_or_rewrite_migrations(postgres: PostgresDatabase) -> None:
    engine = create_engine(to_sync_url(postgres.app_url))
    try:
        with engine.connect() as connection:
            for statement in (
                "ALTER TABLE plants DISABLE ROW LEVEL SECURITY",
                "DROP POLICY tenant_isolation ON plants",
                "SET row_security = off; SELECT * FROM plants",
                "UPDATE alembic_version SET version_num = 'x'",
            ):
                with pytest.raises(Exception, match=r"(?i)owner|permission|denied|row-level"):
                    with connection.begin():
                        connection.execute(text(statement))
    finally:
        engine.dispose()
