"""`portal demo` seeds a realistic Chinese tenant once, however often it runs."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from infra.audit import verify_chain
from infra.db import Database
from infra.security import verify_password
from infra.settings import Settings
from infra.tenancy import tenant_scope
from portal.demo import DEMO_PLANTS, DEMO_SLUG, seed_demo
from tenants import services
from tenants.models import Membership, Plant, Role, User


async def test_seed_is_idempotent_and_writes_logins(sqlite_settings: Settings) -> None:
    first_logins, path = await seed_demo(sqlite_settings)
    second_logins, _ = await seed_demo(sqlite_settings)
    assert first_logins == second_logins, "a re-run keeps the passwords"

    stored = json.loads(path.read_text())
    assert {tuple(sorted(item)) for item in stored} == {("email", "password", "role", "tenant")}
    host_roles = {role.value for role in Role if role.is_host}
    assert host_roles <= {item["role"] for item in stored}
    assert {item["tenant"] for item in stored} == {DEMO_SLUG}

    database = Database.from_settings(sqlite_settings)
    try:
        async with database.session() as session:
            tenant = await services.tenant_by_slug(session, DEMO_SLUG)
            assert tenant is not None and tenant.name == "东海化工集团"
            with tenant_scope(tenant.id):
                plants = (await session.execute(select(func.count()).select_from(Plant))).scalar()
                users = (await session.execute(select(func.count()).select_from(User))).scalar()
                grants = (
                    await session.execute(select(func.count()).select_from(Membership))
                ).scalar()
                report = await session.run_sync(verify_chain)
        assert plants == len(DEMO_PLANTS) == 3
        assert users == len(stored)
        assert grants == len(stored)
        assert report.ok
    finally:
        await database.dispose()


async def test_seed_repairs_a_lost_logins_file(sqlite_settings: Settings) -> None:
    _, path = await seed_demo(sqlite_settings)
    path.unlink()
    logins, _ = await seed_demo(sqlite_settings)
    database = Database.from_settings(sqlite_settings)
    try:
        async with database.session() as session:
            tenant = await services.tenant_by_slug(session, DEMO_SLUG)
            assert tenant is not None
            with tenant_scope(tenant.id):
                for login in logins:
                    user = await services.user_by_email(session, login.email)
                    assert user is not None
                    assert verify_password(user.password_hash, login.password)
    finally:
        await database.dispose()
