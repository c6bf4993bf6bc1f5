"""`portal demo` seeds a realistic Chinese tenant once, however often it runs."""

from __future__ import annotations

import json
from datetime import date, timedelta

from sqlalchemy import func, select

from infra.audit import verify_chain
from infra.db import Database
from infra.security import verify_password
from infra.settings import Settings
from infra.tenancy import tenant_scope
from infra.uploads import StoredObject
from onboarding.models import Certificate, Contractor, ContractorDocument, Worker
from onboarding.states import ContractorState, ItemState
from onboarding.validators import validate_id_number, validate_uscc
from portal.demo import DEMO_CONTRACTORS, DEMO_PLANTS, DEMO_SLUG, DEMO_USERS, seed_demo
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
        # Every host user, and one administrator per demo company.
        assert users == len(DEMO_USERS) + len(DEMO_CONTRACTORS)
        assert grants == users
        assert report.ok
    finally:
        await database.dispose()


async def test_seed_has_contractors_in_every_state_once(sqlite_settings: Settings) -> None:
    await seed_demo(sqlite_settings)
    logins, _ = await seed_demo(sqlite_settings)
    contractor_logins = [login for login in logins if login.role == "contractor_admin"]
    assert len(contractor_logins) == 2

    database = Database.from_settings(sqlite_settings)
    try:
        async with database.session() as session:
            tenant = await services.tenant_by_slug(session, DEMO_SLUG)
            assert tenant is not None
            with tenant_scope(tenant.id):
                contractors = list(await session.scalars(select(Contractor)))
                workers = list(await session.scalars(select(Worker)))
                certificates = list(await session.scalars(select(Certificate)))
                documents = (
                    await session.execute(select(func.count()).select_from(ContractorDocument))
                ).scalar()
                scans = (
                    await session.execute(select(func.count()).select_from(StoredObject))
                ).scalar()
        assert {c.state for c in contractors} == {state.value for state in ContractorState}
        assert len(contractors) == len(DEMO_CONTRACTORS)
        for contractor in contractors:
            assert validate_uscc(contractor.uscc) == contractor.uscc
        assert len(workers) == sum(len(c.workers) for c in DEMO_CONTRACTORS)
        for demo in DEMO_CONTRACTORS:
            for person in demo.workers:
                validate_id_number(person.id_number, today=date.today())
        assert len(certificates) == sum(
            len(w.certificates) for c in DEMO_CONTRACTORS for w in c.workers
        )
        assert len({c.kind for c in certificates}) >= 5
        assert any(c.state == ItemState.EXPIRED for c in certificates)
        soon = date.today() + timedelta(days=7)
        assert any(c.state != ItemState.EXPIRED and c.expires_on <= soon for c in certificates)
        assert documents == 3 * len(DEMO_CONTRACTORS)
        assert scans == documents + len(certificates), "each scan stored once"
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
