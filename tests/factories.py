"""Building tenants with plants and users for tests, through the real services."""

from __future__ import annotations

import dataclasses
import secrets
import uuid
from datetime import timedelta

from sqlalchemy import func, select

from infra.audit import AuditEntry
from infra.db import Base, Database
from infra.tenancy import tenant_scope
from tenants import services
from tenants.models import Role, TenantStatus


@dataclasses.dataclass
class SeededUser:
    id: uuid.UUID
    email: str
    password: str
    role: Role
    plant_code: str | None


@dataclasses.dataclass
class SeededTenant:
    id: uuid.UUID
    slug: str
    plants: dict[str, uuid.UUID]
    users: list[SeededUser]

    def user(self, role: Role) -> SeededUser:
        return next(user for user in self.users if user.role == role)


class TenantFactory:
    async def create(
        self,
        database: Database,
        *,
        plants: tuple[str, ...] = ("P1", "P2"),
        users: tuple[tuple[Role, str | None], ...] = ((Role.TENANT_ADMIN, None),),
        slug: str | None = None,
    ) -> SeededTenant:
        slug = slug or f"t-{secrets.token_hex(4)}"
        async with database.session() as session:
            tenant = await services.create_tenant(
                session, slug=slug, name=f"测试集团 {slug}", status=TenantStatus.ACTIVE
            )
            seeded_users = []
            with tenant_scope(tenant.id):
                plant_ids = {}
                for code in plants:
                    plant = await services.add_plant(session, code=code, name=f"{code} 厂区")
                    plant_ids[code] = plant.id
                for index, (role, plant_code) in enumerate(users):
                    password = secrets.token_urlsafe(12)
                    user = await services.create_user(
                        session,
                        email=f"{role.value}.{index}@{slug}.example",
                        name=f"用户{index}",
                        password=password,
                    )
                    await services.grant_role(
                        session,
                        user_id=user.id,
                        role=role,
                        plant_id=plant_ids[plant_code] if plant_code else None,
                    )
                    seeded_users.append(SeededUser(user.id, user.email, password, role, plant_code))
            await session.commit()
        return SeededTenant(tenant.id, slug, plant_ids, seeded_users)


async def issue_token(database: Database, tenant_id: uuid.UUID, user_id: uuid.UUID) -> str:
    """A bearer token made through the service, skipping the password check: tests that are not
    about signing in should not pay for an Argon2 verification each."""
    async with database.session() as session:
        with tenant_scope(tenant_id):
            user = await services.get_user(session, user_id)
            token, _record = await services.issue_api_token(
                session, user, name="test", ttl=timedelta(hours=1)
            )
            await session.commit()
    return token


async def count_rows(
    database: Database, tenant_id: uuid.UUID, *models: type[Base]
) -> dict[str, int]:
    async with database.session() as session:
        with tenant_scope(tenant_id):
            return {
                model.__tablename__: (
                    await session.execute(select(func.count()).select_from(model))
                ).scalar_one()
                for model in models
            }


async def audit_actions(database: Database, tenant_id: uuid.UUID, prefix: str = "") -> list[str]:
    """The tenant's ledger actions in chain order, optionally only those starting with prefix."""
    async with database.session() as session:
        with tenant_scope(tenant_id):
            query = select(AuditEntry.action).order_by(AuditEntry.seq)
            if prefix:
                query = query.where(AuditEntry.action.startswith(prefix))
            return list((await session.execute(query)).scalars())
