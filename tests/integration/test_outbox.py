"""The transactional outbox against a real worker and beat on Redis and PostgreSQL: what commits
is delivered once, failures back off and end visible to the tenant's admins, and a broker outage
loses nothing."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update

from infra.db import Database, utcnow
from infra.outbox import (
    PUBLISH_RETRY_POLICY,
    OutboxMessage,
    OutboxStatus,
    backoff_delay,
    dispatch_due,
    enqueue,
    enqueue_async,
)
from infra.settings import Settings
from infra.tasks import TaskEffect
from infra.tenancy import tenant_scope
from portal.app import create_app
from tenants import services
from tenants.models import Plant, Role
from tests.conftest import PostgresDatabase
from tests.factories import TenantFactory, audit_actions, issue_token
from tests.integration.workers import (
    SHARED_REDIS_URL,
    PrivateRedis,
    Worker,
    client_app,
    pg_task_settings,
    prefixed_keys,
    running_worker,
    wait_until,
)

FAILED_URL = "/api/v1/admin/outbox/failed"
# Quick rounds, so that backoff and exhausted attempts fit in a test.
FAST_OUTBOX: dict[str, Any] = {
    "outbox_relay_seconds": 0.3,
    "outbox_backoff_seconds": 0.3,
    "outbox_max_attempts": 3,
    "outbox_redispatch_seconds": 2.0,
}


@pytest.fixture(scope="class")
def worker(
    postgres: PostgresDatabase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    """A worker with beat for one class of tests: its relay walks every tenant of the database,
    so it must be gone before a test that needs its own worker to be the only one."""
    var_dir = tmp_path_factory.mktemp("outbox")
    with prefixed_keys(SHARED_REDIS_URL) as prefix:
        settings = pg_task_settings(
            postgres, var_dir, SHARED_REDIS_URL, celery_key_prefix=prefix, **FAST_OUTBOX
        )
        with running_worker(settings, var_dir / "worker.log", beat=True) as running:
            yield running


@pytest.fixture
async def http(pg_settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(app=create_app(pg_settings)) as client:
        yield client


def enqueue_committed(
    database: Database, tenant_id: uuid.UUID, *, topic: str, key: str, **payload: Any
) -> None:
    with tenant_scope(tenant_id), database.sync_session() as session:
        enqueue(session, topic=topic, payload=payload, key=key)
        session.commit()


def message(database: Database, tenant_id: uuid.UUID, key: str) -> OutboxMessage | None:
    with tenant_scope(tenant_id), database.sync_session() as session:
        return session.execute(
            select(OutboxMessage).where(OutboxMessage.key == key)
        ).scalar_one_or_none()


def wait_for_status(
    database: Database, tenant_id: uuid.UUID, key: str, status: OutboxStatus, worker: Worker
) -> OutboxMessage:
    def reached() -> OutboxMessage | None:
        found = message(database, tenant_id, key)
        return found if found is not None and found.status == status else None

    return wait_until(reached, timeout=30, what=f"{key} to be {status}\n{worker.log()}")


def effects(database: Database, tenant_id: uuid.UUID, key: str) -> int:
    with tenant_scope(tenant_id), database.sync_session() as session:
        return session.execute(
            select(func.count()).select_from(TaskEffect).where(TaskEffect.key == key)
        ).scalar_one()


async def test_a_rolled_back_change_queues_nothing(
    any_db: Database, factory: TenantFactory
) -> None:
    tenant = await factory.create(any_db, plants=())
    async with any_db.session() as session:
        with tenant_scope(tenant.id):
            await services.add_plant(session, code="R1", name="回滚厂区")
            queued = await enqueue_async(session, topic="tests.effect", payload={}, key="r1")
            assert queued.status == OutboxStatus.PENDING
            await session.rollback()
    async with any_db.session() as session:
        with tenant_scope(tenant.id):
            for model in (Plant, OutboxMessage):
                count = await session.execute(select(func.count()).select_from(model))
                assert count.scalar_one() == 0


@pytest.mark.postgres
class TestDeliveryByAWorker:
    async def test_a_committed_message_is_delivered_once(
        self, worker: Worker, pg_db: Database, factory: TenantFactory
    ) -> None:
        tenant = await factory.create(pg_db, plants=())
        async with pg_db.session() as session:
            with tenant_scope(tenant.id):
                plant = await services.add_plant(session, code="C1", name="提交厂区")
                await enqueue_async(
                    session, topic="tests.effect", payload={"plant_id": plant.id}, key="c1"
                )
                await session.commit()

        delivered = wait_for_status(pg_db, tenant.id, "c1", OutboxStatus.DELIVERED, worker)
        assert delivered.attempts == 0 and delivered.delivered_at is not None
        assert delivered.payload == {"plant_id": str(plant.id)}
        assert effects(pg_db, tenant.id, "c1") == 1

        # The same key again is the same message: nothing new is queued or delivered.
        enqueue_committed(pg_db, tenant.id, topic="tests.effect", key="c1")
        with tenant_scope(tenant.id), pg_db.sync_session() as session:
            rows = session.execute(select(func.count()).select_from(OutboxMessage)).scalar_one()
        assert rows == 1
        assert effects(pg_db, tenant.id, "c1") == 1

    async def test_a_failing_handler_is_retried_with_backoff_until_it_succeeds(
        self, worker: Worker, pg_db: Database, factory: TenantFactory
    ) -> None:
        tenant = await factory.create(pg_db, plants=())
        enqueue_committed(pg_db, tenant.id, topic="tests.flaky", key="flaky", fail_times=2)

        delivered = wait_for_status(pg_db, tenant.id, "flaky", OutboxStatus.DELIVERED, worker)
        assert delivered.attempts == 2
        assert delivered.last_error == "RuntimeError: flaky failure on attempt 2"
        assert delivered.delivered_at is not None
        waited = delivered.delivered_at - delivered.created_at
        base = FAST_OUTBOX["outbox_backoff_seconds"]
        assert waited >= backoff_delay(1, base) + backoff_delay(2, base)
        assert effects(pg_db, tenant.id, "flaky") == 1

    async def test_a_failure_that_will_not_heal_fails_at_once(
        self, worker: Worker, pg_db: Database, factory: TenantFactory
    ) -> None:
        tenant = await factory.create(pg_db, plants=())
        enqueue_committed(pg_db, tenant.id, topic="tests.refused", key="refused")
        failed = wait_for_status(pg_db, tenant.id, "refused", OutboxStatus.FAILED, worker)
        assert failed.attempts == 1
        assert failed.last_error == "_Refused: the receiver refused refused for good"

    async def test_an_exhausted_message_is_failed_and_shown_to_its_tenants_admins_only(
        self,
        worker: Worker,
        pg_db: Database,
        factory: TenantFactory,
        http: AsyncTestClient[Any],
    ) -> None:
        tenant = await factory.create(
            pg_db, plants=("P1",), users=((Role.TENANT_ADMIN, None), (Role.EHS_OFFICER, "P1"))
        )
        other = await factory.create(pg_db, plants=())
        enqueue_committed(pg_db, tenant.id, topic="tests.broken", key="broken", to="ehs@example.cn")
        failed = wait_for_status(pg_db, tenant.id, "broken", OutboxStatus.FAILED, worker)
        assert failed.attempts == FAST_OUTBOX["outbox_max_attempts"]

        def bearer(token: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token}"}

        admin = bearer(await issue_token(pg_db, tenant.id, tenant.user(Role.TENANT_ADMIN).id))
        officer = bearer(await issue_token(pg_db, tenant.id, tenant.user(Role.EHS_OFFICER).id))
        other_admin = bearer(await issue_token(pg_db, other.id, other.user(Role.TENANT_ADMIN).id))

        listed = await http.get(FAILED_URL, headers=admin)
        assert listed.status_code == 200
        [entry] = listed.json()
        assert entry["id"] == str(failed.id)
        assert entry["topic"] == "tests.broken" and entry["key"] == "broken"
        assert entry["attempts"] == FAST_OUTBOX["outbox_max_attempts"]
        assert entry["last_error"] == "RuntimeError: the receiver for broken is down"
        assert entry["payload"] == {"to": "ehs@example.cn"}

        assert (await http.get(FAILED_URL, headers=officer)).status_code == 403
        assert (await http.get(FAILED_URL, headers=other_admin)).json() == []
        retry_url = f"/api/v1/admin/outbox/{failed.id}/retry"
        assert (await http.post(retry_url, headers=other_admin)).status_code == 404
        assert (await http.post(retry_url, headers=officer)).status_code == 403
        malformed = await http.post("/api/v1/admin/outbox/nope/retry", headers=admin)
        assert malformed.status_code == 422
        assert malformed.json()["errors"][0]["field"] == "message_id"

        retried = await http.post(retry_url, headers=admin)
        assert retried.status_code == 202
        assert retried.json()["status"] == "pending" and retried.json()["attempts"] == 0
        assert "outbox.retried" in await audit_actions(pg_db, tenant.id, "outbox.")

        # The new round fails like the first, and the message is listed again.
        again = wait_for_status(pg_db, tenant.id, "broken", OutboxStatus.FAILED, worker)
        assert again.updated_at > failed.updated_at
        assert [item["id"] for item in (await http.get(FAILED_URL, headers=admin)).json()] == [
            str(failed.id)
        ]
        # Only a failed message can be sent again.
        enqueue_committed(pg_db, tenant.id, topic="tests.effect", key="fine")
        wait_for_status(pg_db, tenant.id, "fine", OutboxStatus.DELIVERED, worker)
        fine = message(pg_db, tenant.id, "fine")
        assert fine is not None
        conflict = await http.post(f"/api/v1/admin/outbox/{fine.id}/retry", headers=admin)
        assert conflict.status_code == 409


@pytest.mark.postgres
async def test_a_broker_outage_loses_nothing(
    postgres: PostgresDatabase, pg_db: Database, factory: TenantFactory, tmp_path: Path
) -> None:
    broker = PrivateRedis(tmp_path / "redis").start()
    try:
        settings = pg_task_settings(postgres, tmp_path / "var", broker.url, **FAST_OUTBOX)
        tenants = [await factory.create(pg_db, plants=()) for _ in range(2)]
        with running_worker(settings, tmp_path / "worker.log", beat=True) as worker:
            enqueue_committed(pg_db, tenants[0].id, topic="tests.effect", key="before")
            wait_for_status(pg_db, tenants[0].id, "before", OutboxStatus.DELIVERED, worker)

            broker.stop()
            keys = [f"outage-{n}" for n in range(5)]
            for tenant in tenants:
                for key in keys:
                    enqueue_committed(pg_db, tenant.id, topic="tests.effect", key=key)

            # Several relay intervals pass with nothing delivered, and a relay pass cannot
            # publish: the messages stay pending and due, untouched.
            await asyncio.sleep(5 * FAST_OUTBOX["outbox_relay_seconds"])
            sender = client_app(settings)

            def publish(queued: OutboxMessage) -> None:
                sender.send_task(
                    "outbox.deliver",
                    kwargs={"tenant_id": str(queued.tenant_id), "message_id": str(queued.id)},
                    retry=True,
                    retry_policy=PUBLISH_RETRY_POLICY,
                )

            with tenant_scope(tenants[1].id), pg_db.sync_session() as session:
                assert dispatch_due(session, publish) == (0, False)
                session.commit()
                pending = session.execute(select(OutboxMessage)).scalars().all()
            sender.close()
            assert {m.key for m in pending} == set(keys)
            assert all(m.status == OutboxStatus.PENDING and m.attempts == 0 for m in pending)
            assert all(m.next_attempt_at <= utcnow() for m in pending)

            broker.start()
            for tenant in tenants:
                for key in keys:
                    wait_for_status(pg_db, tenant.id, key, OutboxStatus.DELIVERED, worker)
            for tenant in tenants:
                assert [effects(pg_db, tenant.id, key) for key in keys] == [1] * len(keys)
            deliveries = re.findall(
                r"outbox\.deliver\[\S+\] succeeded", worker.log_path.read_text()
            )
            assert len(deliveries) >= 1 + len(tenants) * len(keys), "this worker delivered them"
    finally:
        broker.stop()


async def test_a_published_message_is_published_again_only_after_the_redispatch_interval(
    sqlite_db: Database, factory: TenantFactory
) -> None:
    """What covers a broker that took a message and then lost it."""
    tenant = await factory.create(sqlite_db, plants=())
    enqueue_committed(sqlite_db, tenant.id, topic="tests.effect", key="lost")
    published: list[str] = []

    def relay_pass() -> tuple[int, bool]:
        with tenant_scope(tenant.id), sqlite_db.sync_session() as session:
            outcome = dispatch_due(session, lambda queued: published.append(queued.key))
            session.commit()
        return outcome

    assert relay_pass() == (1, True)
    assert relay_pass() == (0, True), "a message just handed out is not due again yet"
    with tenant_scope(tenant.id), sqlite_db.sync_session() as session:
        # As if the redispatch interval had passed without a delivery.
        session.execute(
            update(OutboxMessage).values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()
    assert relay_pass() == (1, True)
    assert published == ["lost", "lost"]
