"""A database restart during ingestion loses no acknowledged ping (PostgreSQL).

A phone keeps sending batches over HTTP while, beside it, the application role's backends are
terminated again and again over the owner's connection — what the application sees when
PostgreSQL restarts or fails over. The phone does what its offline queue does: it sends a batch
again until the answer is a 2xx. Afterwards every ping of every acknowledged batch is in the
table exactly once, and no request hung or answered anything but a 2xx or a retryable 5xx.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import psycopg
import pytest
from litestar.testing import AsyncTestClient

from infra.db import Database, utcnow
from infra.settings import Settings
from portal.app import create_app
from tests.conftest import PG_APP_ROLE, PostgresDatabase
from tests.factories import TenantFactory, issue_token
from tests.geofence_factories import GeofenceWorld, ping

pytestmark = [pytest.mark.postgres]

BATCHES = 50
PINGS_PER_BATCH = 100
# A request that takes longer than this is taken for a hang on a dead connection.
REQUEST_TIMEOUT_S = 10.0
MAX_ATTEMPTS = 60
# Pauses between terminations: short enough that many requests are cut mid-way, long enough
# that a request on a fresh connection can get through.
KILL_PAUSE_S = (0.1, 0.4)


def _plain(url: str) -> str:
    """A SQLAlchemy URL as libpq and asyncpg take it."""
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _batches(start: datetime) -> list[list[dict[str, Any]]]:
    """Consecutive positions inside the work zone, a quarter of a second apart, each with its
    own id."""
    batches = []
    for number in range(BATCHES):
        batch = []
        for index in range(PINGS_PER_BATCH):
            step = number * PINGS_PER_BATCH + index
            at = start + timedelta(seconds=step * 0.25)
            batch.append(ping(at, (step % 40) - 20, (step % 30) - 15, ping_id=uuid.uuid4()))
        batches.append(batch)
    return batches


def _terminate_app_backends(owner_url: str, stop: threading.Event) -> int:
    """Terminate the application role's connections to this database until told to stop;
    returns how many were terminated. It runs on a thread of its own, so that it cuts
    connections at any moment of a request, not only when the app's event loop lets it."""
    rng = random.Random(11)
    terminated = 0
    with psycopg.connect(_plain(owner_url), autocommit=True) as connection:
        while not stop.is_set():
            row = connection.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
                "FROM pg_stat_activity "
                "WHERE usename = %s AND datname = current_database() AND pid <> pg_backend_pid()",
                (PG_APP_ROLE,),
            ).fetchone()
            terminated += row[0] if row else 0
            stop.wait(rng.uniform(*KILL_PAUSE_S))
    return terminated


async def test_terminated_connections_lose_no_acknowledged_ping(
    postgres: PostgresDatabase, pg_db: Database, pg_settings: Settings, factory: TenantFactory
) -> None:
    world = await GeofenceWorld.create(pg_db, pg_settings, factory)
    zhang = world.crew["张三"]
    headers = {"Authorization": f"Bearer {await issue_token(pg_db, world.tenant.id, zhang)}"}
    batches = _batches(utcnow() - timedelta(minutes=45))
    failures: list[int] = []
    acknowledged: list[dict[str, Any]] = []
    stop = threading.Event()
    started = time.monotonic()

    async with AsyncTestClient(app=create_app(pg_settings)) as client:
        killer = asyncio.create_task(
            asyncio.to_thread(_terminate_app_backends, postgres.owner_url, stop)
        )
        try:
            for batch in batches:
                for _attempt in range(MAX_ATTEMPTS):
                    try:
                        answer = await asyncio.wait_for(
                            client.post("/api/v1/pings", json={"pings": batch}, headers=headers),
                            REQUEST_TIMEOUT_S,
                        )
                    except TimeoutError:
                        pytest.fail(f"a request hung for {REQUEST_TIMEOUT_S} s")
                    if 200 <= answer.status_code < 300:
                        acknowledged.append(answer.json())
                        break
                    failures.append(answer.status_code)
                else:
                    pytest.fail(f"a batch was not acknowledged in {MAX_ATTEMPTS} attempts")
        finally:
            stop.set()
            terminated = await killer
    elapsed = time.monotonic() - started

    print(
        f"\n{len(batches)} batches acknowledged in {elapsed:.1f} s after {len(failures)} failed "
        f"attempts ({sorted(set(failures))}); {terminated} backends terminated"
    )
    # The run proves something only if connections were cut under requests.
    assert terminated > 0 and failures, (terminated, failures)
    # A cut connection is "try again", never a crash.
    assert set(failures) == {503}, sorted(set(failures))
    assert all(report["rejected"] == [] for report in acknowledged)
    assert all(
        report["accepted"] + report["duplicates"] == PINGS_PER_BATCH for report in acknowledged
    )

    sent = {str(item["id"]) for batch in batches for item in batch}
    connection = await asyncpg.connect(_plain(postgres.owner_url))
    try:
        rows = await connection.fetch(
            "SELECT id::text AS id, count(*) AS copies FROM geofence_pings "
            "WHERE tenant_id = $1 GROUP BY id",
            world.tenant.id,
        )
    finally:
        await connection.close()
    stored = {row["id"]: row["copies"] for row in rows}
    assert set(stored) == sent, (len(sent - set(stored)), len(set(stored) - sent))
    assert set(stored.values()) == {1}
    assert len(stored) == BATCHES * PINGS_PER_BATCH
