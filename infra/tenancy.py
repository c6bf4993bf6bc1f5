"""Tenant scoping: the one place where the current tenant is set, read and enforced.

Three layers keep tenants apart (see ``docs/architecture.md``):

1. the request resolves the tenant once and enters :func:`tenant_scope`;
2. every ORM statement on a :class:`TenantOwned` model gets ``tenant_id = <current>`` added, new
   rows are stamped with it, and such a statement with no tenant in context raises
   :class:`TenantContextMissing`;
3. on PostgreSQL each transaction carries ``app.tenant_id`` (``set_config(..., true)``), which the
   row-level-security policies of every tenant table compare against.

The only way around layer 2 is :func:`bypass_tenant_scope_for_cross_tenant_job`, whose name is
meant to stand out in review. Layer 3 has no bypass for the application role.

A hot read that cannot afford the ORM's per-row work runs through Core with :func:`read_rows`,
under the same rules: its statement is built by :func:`filtered_by_tenant`, the tenant comes from
the scope (missing raises), and the transaction carries ``app.tenant_id``.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import (
    ForeignKey,
    ForeignKeyConstraint,
    Row,
    Select,
    Table,
    bindparam,
    event,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import (
    Mapped,
    ORMExecuteState,
    Session,
    declared_attr,
    mapped_column,
    with_loader_criteria,
)
from sqlalchemy.sql.util import find_tables

from infra.db import Entity

logger = logging.getLogger(__name__)

_current_tenant: ContextVar[uuid.UUID | None] = ContextVar("current_tenant", default=None)
_bypass_reason: ContextVar[str | None] = ContextVar("tenant_bypass_reason", default=None)

_RLS_SETTING_KEY = "rls_tenant_id"


class TenantContextMissing(RuntimeError):
    """A tenant-owned table was touched with no tenant in context."""


class TenantMismatch(RuntimeError):
    """A row of one tenant was about to be written under another tenant's scope."""


def current_tenant_id() -> uuid.UUID:
    tenant_id = _current_tenant.get()
    if tenant_id is None:
        raise TenantContextMissing("no tenant in context; enter tenant_scope(tenant_id) first")
    return tenant_id


def current_tenant_id_or_none() -> uuid.UUID | None:
    return _current_tenant.get()


@contextmanager
def tenant_scope(tenant_id: uuid.UUID) -> Iterator[uuid.UUID]:
    """Run the block as ``tenant_id``. Scopes nest; the previous one returns on exit or error."""
    if not isinstance(tenant_id, uuid.UUID):
        raise TypeError(f"tenant_id must be a UUID, got {type(tenant_id).__name__}")
    token = _current_tenant.set(tenant_id)
    bypass_token = _bypass_reason.set(None)
    try:
        yield tenant_id
    finally:
        _bypass_reason.reset(bypass_token)
        _current_tenant.reset(token)


@contextmanager
def bypass_tenant_scope_for_cross_tenant_job(reason: str) -> Iterator[None]:
    """Lift the ORM tenant filter for a named job that must see every tenant.

    PostgreSQL row-level security still applies to the application role, so on PostgreSQL a
    cross-tenant job reads tenant rows by entering :func:`tenant_scope` for each tenant in turn;
    this bypass is for the tenant registry walk and for maintenance run as the schema owner.
    """
    if not reason.strip():
        raise ValueError("a bypass must say why")
    logger.warning("tenant scope bypassed: %s", reason)
    token = _bypass_reason.set(reason)
    tenant_token = _current_tenant.set(None)
    try:
        yield
    finally:
        _current_tenant.reset(tenant_token)
        _bypass_reason.reset(token)


def tenant_foreign_key(columns: tuple[str, ...], table: str, **kwargs: Any) -> ForeignKeyConstraint:
    """A foreign key that also matches ``tenant_id``, so a row can never point across tenants."""
    return ForeignKeyConstraint(
        ["tenant_id", *columns],
        [f"{table}.tenant_id", *(f"{table}.id" for _ in columns)],
        **kwargs,
    )


class TenantOwned(Entity):
    """Abstract base for every table that belongs to one tenant.

    ``tenant_id`` leads the primary key (Citus-ready); the mapper still identifies rows by
    ``id`` alone, which is globally unique.
    """

    __abstract__ = True

    @declared_attr
    def tenant_id(cls) -> Mapped[uuid.UUID]:
        return mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"primary_key": [cls.__table__.c.id]}


# Building the option costs more than many of the queries it goes on (SQLAlchemy analyses the
# lambda each time); the tenant is its only variable, so one per tenant serves every statement.
@functools.lru_cache(maxsize=4096)
def _tenant_criteria(tenant_id: uuid.UUID) -> Any:
    return with_loader_criteria(
        TenantOwned,
        lambda cls: cls.tenant_id == tenant_id,
        include_aliases=True,
    )


_tenant_tables_cache: tuple[int, frozenset[Table]] = (-1, frozenset())


def tenant_tables() -> frozenset[Table]:
    """Every table mapped by a :class:`TenantOwned` model."""
    global _tenant_tables_cache
    mappers = TenantOwned.registry.mappers
    if _tenant_tables_cache[0] != len(mappers):
        tables = frozenset(
            mapper.local_table for mapper in mappers if issubclass(mapper.class_, TenantOwned)
        )
        _tenant_tables_cache = (len(mappers), tables)  # type: ignore[assignment]
    return _tenant_tables_cache[1]


def _touched_tenant_tables(state: ORMExecuteState) -> list[str]:
    """Tenant tables the statement reads or writes, found in its FROM clauses and columns, not
    only in its ORM entities: ``select(func.count()).select_from(Plant)`` has no entity."""
    owned = tenant_tables()
    found = find_tables(
        state.statement, check_columns=True, include_aliases=True, include_crud=True
    )
    return sorted({table.name for table in found if table in owned})


_SET_TENANT = text("SELECT set_config('app.tenant_id', :tenant_id, true)")


def _sync_rls_setting(session: Session) -> None:
    """Make the transaction's ``app.tenant_id`` match the current scope (PostgreSQL only)."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return
    wanted = _current_tenant.get()
    wanted_text = str(wanted) if wanted is not None else ""
    # Asking for the connection first begins the transaction if none is open, and beginning one
    # forgets the previous transaction's setting (see _on_begin).
    connection = session.connection()
    if session.info.get(_RLS_SETTING_KEY) == wanted_text:
        return
    connection.execute(_SET_TENANT, {"tenant_id": wanted_text})
    session.info[_RLS_SETTING_KEY] = wanted_text


TENANT_PARAMETER = "scope_tenant_id"
_FILTERED_OPTION = "filtered_by_tenant"


def filtered_by_tenant(statement: Select[Any]) -> Select[Any]:
    """``statement`` with ``tenant_id = :scope_tenant_id`` on every tenant table it reads, to
    be run by :func:`read_rows`, which fills the parameter from the scope; the statement itself
    holds no tenant, so it can be built once and kept."""
    owned = tenant_tables()
    found = find_tables(statement, check_columns=True, include_aliases=True)
    for table in found:
        if table not in owned and getattr(table, "element", None) in owned:
            raise ValueError(f"an alias of tenant table {table.element.name} cannot be filtered")
    # find_tables names a table once for every column of it the statement mentions.
    for table in sorted({table for table in found if table in owned}, key=lambda t: t.name):
        statement = statement.where(table.c.tenant_id == bindparam(TENANT_PARAMETER))
    return statement.execution_options(**{_FILTERED_OPTION: True})


async def read_rows(
    session: AsyncSession, statement: Select[Any], parameters: Mapping[str, Any]
) -> Sequence[Row[Any]]:
    """The rows of a statement from :func:`filtered_by_tenant`, read through Core in the
    session's transaction, for the current tenant. Building ORM rows costs more than running
    the query for a page of a busy list; this costs neither the loading nor the per-call
    rewrite of the statement the ORM layer makes. Pending changes are flushed first, as an ORM
    query would."""
    if not statement.get_execution_options().get(_FILTERED_OPTION):
        raise TenantContextMissing("read_rows takes only statements built by filtered_by_tenant")
    bound = {**parameters, TENANT_PARAMETER: current_tenant_id()}
    return await session.run_sync(_read_rows, statement, bound)


def _read_rows(
    session: Session, statement: Select[Any], parameters: Mapping[str, Any]
) -> Sequence[Row[Any]]:
    if session.autoflush:
        session.flush()
    _sync_rls_setting(session)
    return session.connection().execute(statement, parameters).all()


@event.listens_for(Session, "after_begin")
def _on_begin(session: Session, _transaction: Any, connection: Any) -> None:
    session.info.pop(_RLS_SETTING_KEY, None)


@event.listens_for(Session, "do_orm_execute")
def _on_execute(state: ORMExecuteState) -> None:
    _sync_rls_setting(state.session)
    if not (state.is_select or state.is_update or state.is_delete):
        return
    # An entity of a tenant-owned model answers at once; only statements without one (counts,
    # core selects) need the walk over every table they name.
    entity = any(issubclass(mapper.class_, TenantOwned) for mapper in state.all_mappers)
    if not entity and not _touched_tenant_tables(state):
        return
    if _bypass_reason.get() is not None:
        return
    tenant_id = _current_tenant.get()
    if tenant_id is None:
        raise TenantContextMissing(
            "query on tenant-owned tables with no tenant in context: "
            + ", ".join(_touched_tenant_tables(state))
        )
    state.statement = state.statement.options(_tenant_criteria(tenant_id))


@event.listens_for(Session, "before_flush")
def _on_flush(session: Session, _context: Any, _instances: Any) -> None:
    tenant_id = _current_tenant.get()
    bypassed = _bypass_reason.get() is not None
    for obj in list(session.new) + list(session.dirty) + list(session.deleted):
        if not isinstance(obj, TenantOwned):
            continue
        if obj.tenant_id is None:
            if tenant_id is None:
                raise TenantContextMissing(f"new {type(obj).__name__} with no tenant in context")
            obj.tenant_id = tenant_id
        elif tenant_id is not None and obj.tenant_id != tenant_id:
            raise TenantMismatch(
                f"{type(obj).__name__} of tenant {obj.tenant_id} written in scope of {tenant_id}"
            )
        elif tenant_id is None and not bypassed:
            raise TenantContextMissing(f"write to {type(obj).__name__} with no tenant in context")
    _sync_rls_setting(session)
