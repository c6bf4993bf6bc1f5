"""PostgreSQL row-level security and the application role, applied by migrations.

Every tenant-owned table gets RLS enabled *and forced* (so even the owner is filtered) with one
policy comparing ``tenant_id`` to the transaction's ``app.tenant_id``. When the setting is absent
or empty the policy matches no row: a missing tenant reads nothing and writes nothing.
The application connects as a role that owns no table and lacks ``BYPASSRLS``.
"""

from __future__ import annotations

import re

from alembic import op

from infra.settings import get_settings

POLICY_NAME = "tenant_isolation"
TENANT_PREDICATE = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _is_postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return name


def app_role() -> str:
    return _identifier(get_settings().db_app_role)


def tenant_rls_statements(table: str) -> tuple[str, ...]:
    """The DDL that puts a table under the tenant floor; also run for each new partition."""
    table = _identifier(table)
    return (
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY {POLICY_NAME} ON {table} "
        f"USING ({TENANT_PREDICATE}) WITH CHECK ({TENANT_PREDICATE})",
    )


def data_grant_statement(table: str) -> str:
    return f"GRANT SELECT, INSERT, UPDATE, DELETE ON {_identifier(table)} TO {app_role()}"


def enable_tenant_rls(table: str) -> None:
    if not _is_postgres():
        return
    for statement in tenant_rls_statements(table):
        op.execute(statement)


def disable_tenant_rls(table: str) -> None:
    if not _is_postgres():
        return
    table = _identifier(table)
    op.execute(f"DROP POLICY IF EXISTS {POLICY_NAME} ON {table}")
    op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")


def ensure_app_role() -> None:
    """Create the application role if missing, and strip any power that would skip RLS."""
    if not _is_postgres():
        return
    role = app_role()
    # Roles are shared by every database of the server, and databases are often migrated side
    # by side (one per test worker): a role another migration created meanwhile is fine, and
    # the role is altered only when it has a power to lose, since two concurrent ALTER ROLEs of
    # one role fail ("tuple concurrently updated").
    statement = (
        "DO $$ BEGIN "  # noqa: S608 - the role name is checked by _identifier
        f"IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN "
        f"BEGIN CREATE ROLE {role} LOGIN; "
        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END; "
        "END IF; "
        f"IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}' AND "
        "(rolsuper OR rolbypassrls OR rolcreatedb OR rolcreaterole)) THEN "
        f"ALTER ROLE {role} NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE; END IF; "
        "END $$"
    )
    op.execute(statement)


def grant_app_role() -> None:
    """Data rights on every table, none on the schema itself or the migration bookkeeping."""
    if not _is_postgres():
        return
    role = app_role()
    op.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")
    op.execute(f"REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {role}")
