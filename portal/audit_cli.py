"""Ledger verification across tenants, for ``portal audit verify``."""

from __future__ import annotations

from sqlalchemy import select

from infra.audit import ChainReport, verify_chain
from infra.db import Database
from infra.settings import Settings
from infra.tenancy import tenant_scope
from tenants.models import Tenant


async def verify_tenants(
    settings: Settings, tenant_slug: str | None = None
) -> list[tuple[str, ChainReport]]:
    database = Database.from_settings(settings)
    try:
        async with database.session() as session:
            query = select(Tenant.id, Tenant.slug).order_by(Tenant.slug)
            if tenant_slug is not None:
                query = query.where(Tenant.slug == tenant_slug)
            tenants = (await session.execute(query)).all()
            reports = []
            for tenant_id, slug in tenants:
                with tenant_scope(tenant_id):
                    reports.append((slug, await session.run_sync(verify_chain)))
            return reports
    finally:
        await database.dispose()
