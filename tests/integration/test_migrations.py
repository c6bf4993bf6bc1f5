"""Migrations and models agree on both databases, and readiness reports the schema state."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from litestar.testing import AsyncTestClient
from sqlalchemy import create_engine, insert, select

from infra.db import Database, new_id
from infra.migrate import alembic_config, head_revision, upgrade
from infra.outbox import OutboxMessage
from infra.partitions import include_in_autogenerate
from infra.schema import load_models
from infra.settings import Settings
from portal.app import create_app
from tests.conftest import fresh_postgres, settings_for
from tests.factories import TenantFactory


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


def _outbox_states(url: str) -> dict[str, tuple[str, str | None]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            table = OutboxMessage.__table__
            rows = connection.execute(select(table.c.key, table.c.status, table.c.last_error))
            return {key: (status, error) for key, status, error in rows}
    finally:
        engine.dispose()


async def _withdrawn_messages_get_their_own_state(settings: Settings) -> None:
    """0019 moves messages withdrawn before it (failed, ``cancelled: `` reason) to
    ``cancelled`` with the reason alone, for every tenant; its downgrade moves them back."""
    url = settings.sync_migration_database_url
    command.downgrade(alembic_config(url), "0018")
    database = Database.from_settings(settings)
    try:
        tenants = [await TenantFactory().create(database, plants=()) for _ in range(2)]
    finally:
        await database.dispose()
    now = datetime.now(UTC)
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for index, (key, status, error) in enumerate(
                [
                    ("withdrawn", "failed", "cancelled: the recipient's personal data was erased"),
                    ("broken", "failed", "gateway refused: 403"),
                    ("sent", "delivered", None),
                ]
            ):
                connection.execute(
                    insert(OutboxMessage.__table__).values(
                        id=new_id(),
                        tenant_id=tenants[index % 2].id,
                        topic="notify.sms",
                        payload={},
                        key=key,
                        status=status,
                        attempts=0,
                        next_attempt_at=now,
                        last_error=error,
                        created_at=now,
                        updated_at=now,
                    )
                )
    finally:
        engine.dispose()
    before = _outbox_states(url)
    upgrade(settings)
    assert _outbox_states(url) == {
        **before,
        "withdrawn": ("cancelled", "the recipient's personal data was erased"),
    }
    command.downgrade(alembic_config(url), "0018")
    assert _outbox_states(url) == before
    upgrade(settings)


async def test_withdrawn_outbox_messages_migrate_on_sqlite(tmp_path: Path) -> None:
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'portal.db'}", tmp_path / "var")
    upgrade(settings)
    await _withdrawn_messages_get_their_own_state(settings)


@pytest.mark.postgres
async def test_withdrawn_outbox_messages_migrate_on_postgres(tmp_path: Path) -> None:
    with fresh_postgres() as database:
        settings = settings_for(
            database.app_url, tmp_path / "var", migration_database_url=database.owner_url
        )
        await _withdrawn_messages_get_their_own_state(settings)
