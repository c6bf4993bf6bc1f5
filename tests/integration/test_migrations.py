"""Migrations and models agree on both databases, and readiness reports the schema state."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from litestar.testing import AsyncTestClient
from sqlalchemy import create_engine

from infra.migrate import head_revision
from infra.partitions import include_in_autogenerate
from infra.schema import load_models
from infra.settings import Settings
from portal.app import create_app


def test_models_match_migrations(any_settings: Settings) -> None:
    engine = create_engine(any_settings.sync_migration_database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={"compare_type": True, "include_name": include_in_autogenerate},
            )
            assert context.get_current_revision() == head_revision()
            differences = compare_metadata(context, load_models())
    finally:
        engine.dispose()
    assert differences == [], f"models and migrations disagree: {differences}"


async def test_readyz_reports_ready_and_healthz_is_up(any_settings: Settings) -> None:
    async with AsyncTestClient(app=create_app(any_settings)) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["migration"] == head_revision()


async def test_readyz_fails_on_an_unmigrated_database(tmp_path, sqlite_settings: Settings) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    empty = dataclasses.replace(
        sqlite_settings, database_url=f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    )
    async with AsyncTestClient(app=create_app(empty)) as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["migrations"]["head"] == head_revision()


@pytest.mark.parametrize("path", ["/schema/openapi.json"])
async def test_openapi_is_served(sqlite_settings: Settings, path: str) -> None:
    async with AsyncTestClient(app=create_app(sqlite_settings)) as client:
        response = await client.get(path)
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/auth/token" in paths
    assert "/api/v1/plants" in paths
