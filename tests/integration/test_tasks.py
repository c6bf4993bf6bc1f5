"""Celery tasks against real workers: Redis as the broker, PostgreSQL as the application role.

A tenant task is refused without its tenant, sees only its tenant's rows, and a task cut off by
SIGKILL runs again on the next worker with its effect recorded once. The embedded default
(in-memory broker, worker thread in the same process) runs tasks and the outbox relay on SQLite.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from celery import Celery
from sqlalchemy import func, select

from infra.db import Database
from infra.outbox import OutboxMessage, OutboxStatus, enqueue
from infra.settings import Settings
from infra.tasks import (
    EMBEDDED_BROKER,
    TaskEffect,
    TenantTaskArgumentError,
    app,
    record_effect,
    start_embedded_worker,
)
from infra.tenancy import tenant_scope
from tests.conftest import PostgresDatabase
from tests.factories import TenantFactory
from tests.integration.celery_app import slow_effect
from tests.integration.workers import (
    SHARED_REDIS_URL,
    Worker,
    client_app,
    pg_task_settings,
    prefixed_keys,
    running_worker,
    wait_until,
)

# Short, so that the message of a killed worker is handed out again within the test.
VISIBILITY_TIMEOUT = 2


@pytest.fixture(scope="module")
def task_settings(
    postgres: PostgresDatabase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    with prefixed_keys(SHARED_REDIS_URL) as prefix:
        yield pg_task_settings(
            postgres,
            tmp_path_factory.mktemp("tasks"),
            SHARED_REDIS_URL,
            celery_result_backend=SHARED_REDIS_URL,
            celery_key_prefix=prefix,
        )


@pytest.fixture(scope="module")
def worker(task_settings: Settings) -> Iterator[Worker]:
    with running_worker(task_settings, task_settings.var_dir / "worker.log") as running:
        yield running


@pytest.fixture(scope="module")
def client(task_settings: Settings) -> Iterator[Celery]:
    sender = client_app(task_settings)
    yield sender
    sender.close()


def effect_count(database: Database, tenant_id: uuid.UUID, key: str) -> int:
    with tenant_scope(tenant_id), database.sync_session() as session:
        return session.execute(
            select(func.count()).select_from(TaskEffect).where(TaskEffect.key == key)
        ).scalar_one()


@pytest.mark.postgres
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"tenant_id": "not-a-uuid"}, {"tenant_id": 42}],
    ids=["missing", "malformed", "not-a-string"],
)
def test_the_worker_refuses_a_tenant_task_without_a_tenant(
    worker: Worker, client: Celery, kwargs: dict[str, object]
) -> None:
    # Sent by name, so that only the worker's own check stands in the way.
    result = client.send_task("tests.visible_plants", kwargs=kwargs)
    with pytest.raises(TenantTaskArgumentError, match="tenant_id"):
        result.get(timeout=15)


@pytest.mark.postgres
async def test_a_task_sees_only_its_tenants_rows(
    worker: Worker, client: Celery, pg_db: Database, factory: TenantFactory
) -> None:
    first = await factory.create(pg_db, plants=("A1", "A2"))
    second = await factory.create(pg_db, plants=("B1",))
    for tenant, codes in ((first, ["A1", "A2"]), (second, ["B1"])):
        seen = client.send_task("tests.visible_plants", kwargs={"tenant_id": str(tenant.id)}).get(
            timeout=15
        )
        # raw_count is plain SQL: only row-level security keeps other tenants' plants out.
        assert seen == {"codes": codes, "raw_count": len(codes), "orm_count": len(codes)}


@pytest.mark.postgres
async def test_a_task_killed_mid_way_runs_again_with_one_effect(
    postgres: PostgresDatabase, pg_db: Database, factory: TenantFactory, tmp_path: Path
) -> None:
    tenant = await factory.create(pg_db, plants=())
    key = f"slow-{uuid.uuid4().hex[:8]}"
    started_log = tmp_path / "started.log"
    started_log.touch()

    def runs_started() -> int:
        return started_log.read_text().split().count(key)

    with prefixed_keys(SHARED_REDIS_URL) as prefix:
        settings = pg_task_settings(
            postgres,
            tmp_path / "var",
            SHARED_REDIS_URL,
            celery_result_backend=SHARED_REDIS_URL,
            celery_key_prefix=prefix,
            celery_visibility_timeout=VISIBILITY_TIMEOUT,
        )
        client = client_app(settings)
        arguments = {
            "tenant_id": str(tenant.id),
            "key": key,
            "seconds": 3,
            "started_log": str(started_log),
        }
        with running_worker(settings, tmp_path / "first.log") as first:
            client.send_task("tests.slow_effect", kwargs=arguments)
            wait_until(lambda: runs_started() == 1, timeout=15, what="the task to start")
            killed_at = time.monotonic()
            first.kill()
        assert effect_count(pg_db, tenant.id, key) == 0, "the killed run must leave no effect"

        # The broker hands the unacknowledged message out again once its visibility timeout
        # has passed; the next worker looks for such messages when it connects.
        await asyncio.sleep(max(0.0, killed_at + VISIBILITY_TIMEOUT + 0.5 - time.monotonic()))
        with running_worker(settings, tmp_path / "second.log") as second:
            wait_until(
                lambda: effect_count(pg_db, tenant.id, key) == 1,
                timeout=20,
                what=f"the redelivered task's effect\n{second.log()}",
            )
            assert runs_started() == 2, "the task ran again after the kill"

            # A duplicate of the message (the same key) runs and finds the effect done.
            duplicate = client.send_task(
                "tests.slow_effect", kwargs={**arguments, "seconds": 0}
            ).get(timeout=15)
            assert duplicate is False
        client.close()
    assert effect_count(pg_db, tenant.id, key) == 1


@pytest.mark.postgres
@pytest.mark.parametrize("first_commits", [True, False], ids=["commit", "rollback"])
async def test_concurrent_runs_of_one_key_are_settled_by_the_database(
    pg_db: Database, factory: TenantFactory, first_commits: bool
) -> None:
    tenant = await factory.create(pg_db, plants=())
    key = "concurrent"

    def second_run() -> bool:
        with tenant_scope(tenant.id), pg_db.sync_session() as session:
            claimed = record_effect(session, key=key, task="tests.concurrent")
            session.commit()
            return claimed

    with tenant_scope(tenant.id), pg_db.sync_session() as first:
        assert record_effect(first, key=key, task="tests.concurrent") is True
        with ThreadPoolExecutor(max_workers=1) as pool:
            second = pool.submit(second_run)
            await asyncio.sleep(0.5)
            assert not second.done(), "the second run must wait for the first transaction"
            if first_commits:
                first.commit()
            else:
                first.rollback()
            assert second.result(timeout=10) is (not first_commits)
    assert effect_count(pg_db, tenant.id, key) == 1


async def test_the_embedded_worker_runs_tasks_and_the_relay_in_process(
    sqlite_settings: Settings, sqlite_db: Database, factory: TenantFactory, tmp_path: Path
) -> None:
    assert app.conf.broker_url == EMBEDDED_BROKER, "the test process runs the embedded default"
    tenant = await factory.create(sqlite_db, plants=())
    with tenant_scope(tenant.id), sqlite_db.sync_session() as session:
        enqueue(session, topic="tests.effect", payload={}, key="embedded-outbox")
        session.commit()

    embedded = start_embedded_worker(sqlite_settings)
    assert embedded is not None
    try:
        slow_effect.delay(
            tenant_id=str(tenant.id),
            key="embedded-task",
            seconds=0,
            started_log=str(tmp_path / "started.log"),
        )
        wait_until(
            lambda: effect_count(sqlite_db, tenant.id, "embedded-task") == 1,
            timeout=10,
            what="the embedded worker to run the task",
        )

        def delivered() -> bool:
            with tenant_scope(tenant.id), sqlite_db.sync_session() as session:
                message = session.execute(select(OutboxMessage)).scalar_one()
                return message.status == OutboxStatus.DELIVERED

        wait_until(delivered, timeout=20, what="the embedded beat to relay the outbox message")
        assert effect_count(sqlite_db, tenant.id, "embedded-outbox") == 1
    finally:
        embedded.stop()
