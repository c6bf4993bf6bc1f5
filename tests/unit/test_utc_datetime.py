"""Times go in as UTC and come back as UTC-aware values, whatever the database and driver."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from infra.db import Database
from infra.tenancy import filtered_by_tenant, read_rows, tenant_scope
from tenants.models import Plant
from tests.factories import TenantFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def test_a_plant_local_time_is_read_back_as_the_same_instant_in_utc(
    any_db: Database, factory: TenantFactory
) -> None:
    seeded = await factory.create(any_db, plants=())
    local = datetime(2026, 11, 28, 8, 30, tzinfo=SHANGHAI)
    async with any_db.session() as session:
        with tenant_scope(seeded.id):
            session.add(Plant(code="T1", name="时区", created_at=local))
            await session.commit()
    async with any_db.session() as session:
        with tenant_scope(seeded.id):
            through_orm = (
                await session.execute(select(Plant.created_at).where(Plant.code == "T1"))
            ).scalar_one()
            through_core = (
                await read_rows(
                    session,
                    filtered_by_tenant(select(Plant.created_at).where(Plant.code == "T1")),
                    {},
                )
            )[0].created_at
    for value in (through_orm, through_core):
        assert value == local
        assert value.utcoffset() == timedelta(0)
        assert value.hour == 0
        assert value.tzinfo == UTC


async def test_a_naive_time_is_refused(any_db: Database, factory: TenantFactory) -> None:
    seeded = await factory.create(any_db, plants=())
    async with any_db.session() as session:
        with tenant_scope(seeded.id):
            session.add(Plant(code="T2", name="无时区", created_at=datetime(2026, 11, 28, 8, 30)))
            with pytest.raises(Exception, match="naive datetime"):
                await session.flush()
