"""The HQ rollups held against the naive computation, for ``portal scoring verify``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from infra.db import Database
from infra.settings import Settings
from infra.tenancy import tenant_scope
from scoring import naive, reports, rollups
from tenants.models import Tenant


class NotPostgres(RuntimeError):
    """The naive computation is written for PostgreSQL."""


@dataclass(frozen=True)
class PlantCheck:
    code: str
    differences: list[str]


def _check(session: Session, start: date, end: date) -> list[PlantCheck]:
    rows = reports.compare_plants(session, start, end)
    raw = naive.plant_figures(session, start, end)
    checks = []
    for row in rows:
        expected = raw.get(row.plant_id)
        if expected is None:
            checks.append(PlantCheck(row.code, ["missing from the raw tables"]))
            continue
        found = naive.differences(row.figures.measures, expected)
        ours, theirs = row.figures.approval_p90_minutes, expected.approval_p90_sketch
        if ours != theirs:
            found.append(f"approval_p90_minutes: rollups {ours} ≠ raw {theirs}")
        checks.append(PlantCheck(row.code, found))
    codes = {row.plant_id: check for row, check in zip(rows, checks, strict=True)}
    for plant_id, month, name, by_days, by_month in rollups.month_mismatches(session, start, end):
        codes[plant_id].differences.append(
            f"{name}: rollups of the days of {month:%Y-%m} {by_days} ≠ of the month {by_month}"
        )
    return checks


async def verify_rollups(
    settings: Settings, start: date, end: date
) -> list[tuple[str, list[PlantCheck]]]:
    """Per tenant, each plant's rollups against the raw tables over the days ``start`` up to
    ``end`` (exclusive). The stale days are rebuilt first and that is kept, as a report does."""
    database = Database.from_settings(settings)
    try:
        if database.async_engine.dialect.name != "postgresql":
            raise NotPostgres(database.async_engine.dialect.name)
        async with database.session() as session:
            tenants = (
                await session.execute(select(Tenant.id, Tenant.slug).order_by(Tenant.slug))
            ).all()
            results = []
            for tenant_id, slug in tenants:
                with tenant_scope(tenant_id):
                    checks = await session.run_sync(lambda sync: _check(sync, start, end))
                    await session.commit()
                results.append((slug, checks))
            return results
    finally:
        await database.dispose()
