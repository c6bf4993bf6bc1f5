"""The ORM tenant layer: criterion on every query, stamping on insert, raising without a tenant.

These run on SQLite and on PostgreSQL (as the application role, under RLS)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import delete, func, select, text, true, update
from sqlalchemy.orm import aliased

from infra.db import Database
from infra.tenancy import (
    TenantContextMissing,
    TenantMismatch,
    bypass_tenant_scope_for_cross_tenant_job,
    current_tenant_id,
    current_tenant_id_or_none,
    filtered_by_tenant,
    read_rows,
    tenant_scope,
)
from tenants.models import Plant, User
from tests.factories import TenantFactory


async def test_queries_see_only_the_scoped_tenant(any_db: Database, factory: TenantFactory) -> None:
    first = await factory.create(any_db, plants=("A1", "A2"))
    second = await factory.create(any_db, plants=("B1",))
    async with any_db.session() as session:
        with tenant_scope(first.id):
            codes = set((await session.execute(select(Plant.code))).scalars())
            assert codes == {"A1", "A2"}
            by_other_id = await session.execute(
                select(Plant).where(Plant.id == second.plants["B1"])
            )
            assert by_other_id.scalar_one_or_none() is None
        with tenant_scope(second.id):
            count = (await session.execute(select(func.count()).select_from(Plant))).scalar_one()
            assert count == 1


async def test_one_statement_in_turns_for_two_tenants_sees_each_ones_rows(
    any_db: Database, factory: TenantFactory
) -> None:
    """The tenant criterion is built once per tenant and reused: taking turns, each tenant still
    gets its own rows from the same statement."""
    first = await factory.create(any_db, plants=("A1", "A2"))
    second = await factory.create(any_db, plants=("B1",))
    statement = select(Plant.code).order_by(Plant.code)
    async with any_db.session() as session:
        for _ in range(2):
            for tenant, codes in ((first, ["A1", "A2"]), (second, ["B1"])):
                with tenant_scope(tenant.id):
                    assert list((await session.execute(statement)).scalars()) == codes
                    entities = (await session.execute(select(Plant))).scalars()
                    assert sorted(plant.code for plant in entities) == codes


async def test_bulk_update_and_delete_are_scoped(any_db: Database, factory: TenantFactory) -> None:
    first = await factory.create(any_db, plants=("A1",))
    second = await factory.create(any_db, plants=("B1",))
    async with any_db.session() as session:
        with tenant_scope(first.id):
            await session.execute(update(Plant).values(name="改名"))
            await session.execute(delete(Plant).where(Plant.code == "B1"))
            await session.commit()
    async with any_db.session() as session:
        with tenant_scope(second.id):
            plant = (await session.execute(select(Plant))).scalar_one()
            assert plant.code == "B1"
            assert plant.name != "改名"


async def test_query_without_tenant_raises(any_db: Database, factory: TenantFactory) -> None:
    await factory.create(any_db)
    async with any_db.session() as session:
        with pytest.raises(TenantContextMissing):
            await session.execute(select(User))
        with pytest.raises(TenantContextMissing):
            await session.execute(update(Plant).values(name="x"))


async def test_insert_is_stamped_and_cross_tenant_writes_refused(
    any_db: Database, factory: TenantFactory
) -> None:
    first = await factory.create(any_db, plants=())
    second = await factory.create(any_db, plants=())
    async with any_db.session() as session:
        with tenant_scope(first.id):
            plant = Plant(code="NEW", name="新厂区")
            session.add(plant)
            await session.flush()
            assert plant.tenant_id == first.id
            session.add(Plant(code="X", name="x", tenant_id=second.id))
            with pytest.raises(TenantMismatch):
                await session.flush()
            await session.rollback()
        session.add(Plant(code="Y", name="y"))
        with pytest.raises(TenantContextMissing):
            await session.flush()


async def test_core_reads_see_only_the_scoped_tenant(
    any_db: Database, factory: TenantFactory
) -> None:
    first = await factory.create(any_db, plants=("A1", "A2"))
    second = await factory.create(any_db, plants=("B1",))
    codes = filtered_by_tenant(select(Plant.code).order_by(Plant.code))
    async with any_db.session() as session:
        with tenant_scope(first.id):
            assert [row.code for row in await read_rows(session, codes, {})] == ["A1", "A2"]
        with tenant_scope(second.id):
            assert [row.code for row in await read_rows(session, codes, {})] == ["B1"]
        # On SQLite only the statement's own filter stands between the tenants; it must be there
        # even when row-level security would hide the other rows anyway.
        assert str(codes).count("plants.tenant_id = :scope_tenant_id") == 1


async def test_core_read_of_a_join_filters_every_tenant_table(
    any_db: Database, factory: TenantFactory
) -> None:
    await factory.create(any_db, plants=("A1",))
    second = await factory.create(any_db, plants=("B1",))
    # A cross join: only the filter on each table keeps the other tenant's users out.
    pairs = filtered_by_tenant(select(Plant.code, User.email).join(User, true()))
    async with any_db.session() as session:
        with tenant_scope(second.id):
            rows = await read_rows(session, pairs, {})
    assert {(row.code, row.email) for row in rows} == {("B1", user.email) for user in second.users}
    # One filter per table, however many of its columns the statement names.
    assert str(pairs).count("plants.tenant_id = :scope_tenant_id") == 1
    assert str(pairs).count("users.tenant_id = :scope_tenant_id") == 1


async def test_core_read_without_tenant_or_filter_raises(
    any_db: Database, factory: TenantFactory
) -> None:
    first = await factory.create(any_db, plants=("A1",))
    async with any_db.session() as session:
        with pytest.raises(TenantContextMissing):
            await read_rows(session, filtered_by_tenant(select(Plant.code)), {})
        with tenant_scope(first.id), pytest.raises(TenantContextMissing, match="filtered_by"):
            await read_rows(session, select(Plant.code), {})
        with (
            bypass_tenant_scope_for_cross_tenant_job("test: a bypass is no tenant for Core"),
            pytest.raises(TenantContextMissing),
        ):
            await read_rows(session, filtered_by_tenant(select(Plant.code)), {})


def test_an_alias_of_a_tenant_table_is_refused() -> None:
    other = aliased(Plant)
    with pytest.raises(ValueError, match="alias"):
        filtered_by_tenant(select(other.code))


async def test_core_read_sees_the_sessions_pending_rows(
    any_db: Database, factory: TenantFactory
) -> None:
    first = await factory.create(any_db, plants=("A1",))
    async with any_db.session() as session:
        with tenant_scope(first.id):
            session.add(Plant(code="A2", name="尚未提交"))
            rows = await read_rows(
                session, filtered_by_tenant(select(Plant.code).order_by(Plant.code)), {}
            )
    assert [row.code for row in rows] == ["A1", "A2"]


def test_scope_nests_and_resets_on_exception() -> None:
    outer, inner = uuid.uuid4(), uuid.uuid4()
    assert current_tenant_id_or_none() is None
    with tenant_scope(outer):
        with tenant_scope(inner):
            assert current_tenant_id() == inner
        assert current_tenant_id() == outer
        with pytest.raises(RuntimeError), tenant_scope(inner):
            raise RuntimeError("boom")
        assert current_tenant_id() == outer
    assert current_tenant_id_or_none() is None
    with pytest.raises(TenantContextMissing):
        current_tenant_id()


def test_scope_refuses_non_uuid() -> None:
    with pytest.raises(TypeError), tenant_scope("not-a-uuid"):  # type: ignore[arg-type]
        pass


def test_bypass_needs_a_reason() -> None:
    with pytest.raises(ValueError), bypass_tenant_scope_for_cross_tenant_job("  "):
        pass


async def test_bypass_lifts_the_orm_filter_on_sqlite(
    sqlite_db: Database, factory: TenantFactory
) -> None:
    await factory.create(sqlite_db, plants=("A1",))
    await factory.create(sqlite_db, plants=("B1",))
    async with sqlite_db.session() as session:
        with bypass_tenant_scope_for_cross_tenant_job("test: count plants of every tenant"):
            count = (await session.execute(select(func.count()).select_from(Plant))).scalar_one()
        assert count == 2
        with pytest.raises(TenantContextMissing):
            await session.execute(select(Plant))


async def test_raw_sql_stays_confined_by_rls_on_postgres(
    pg_db: Database, factory: TenantFactory
) -> None:
    first = await factory.create(pg_db, plants=("A1",))
    await factory.create(pg_db, plants=("B1",))
    async with pg_db.session() as session:
        with bypass_tenant_scope_for_cross_tenant_job("test: RLS is the floor under the bypass"):
            rows = (await session.execute(text("SELECT code FROM plants"))).all()
            assert rows == []
        with tenant_scope(first.id):
            rows = (await session.execute(text("SELECT code FROM plants"))).scalars().all()
            assert rows == ["A1"]


async def test_sync_worker_session_is_scoped_the_same_way(
    any_settings, factory: TenantFactory
) -> None:  # type: ignore[no-untyped-def]
    database = Database.from_settings(any_settings)
    try:
        first = await factory.create(database, plants=("A1",))
        await factory.create(database, plants=("B1",))
        with database.sync_session() as session:
            with pytest.raises(TenantContextMissing):
                session.execute(select(Plant))
            with tenant_scope(first.id):
                assert session.execute(select(Plant.code)).scalars().all() == ["A1"]
                session.add(Plant(code="A9", name="工作进程新增"))
                session.commit()
            with tenant_scope(first.id):
                codes = session.execute(select(Plant.code).order_by(Plant.code)).scalars().all()
        assert codes == ["A1", "A9"]
    finally:
        await database.dispose()
