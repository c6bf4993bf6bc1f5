"""Ping ingestion over real HTTP against a raw ``COPY`` of the same rows into the same table, on
the same PostgreSQL in the same run.

The application runs as in production — ``portal serve``'s uvicorn, one process per core,
connecting as the unprivileged application role under row-level security. Each of ``CLIENTS``
phones (a crew login on an active, checked-in job, so the engine evaluates every ping and moves
each person's state on) posts batches of 500 pings, each batch after the answer to the previous
one, as a phone's queue does; several phones at once, because one alone leaves the server idle
while its next batch is on the way, and enough of them that the kernel spreads their
connections over the server processes evenly. The rate counts the pings acknowledged between
the first request and the last answer.

The baseline is one ``COPY`` of exactly those rows (same ids, times, users, job and values)
into ``geofence_pings``. PostgreSQL refuses ``COPY`` into a table under row-level security
(ingestion copies into a temporary stage and moves the rows with ``INSERT … SELECT``), so the
baseline runs as a role that bypasses it: the superuser of ``tests/conftest.py``'s admin URL,
which also owns the test database. It runs on the empty table, which is emptied again before
the HTTP run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import statistics
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest

from geofence import tracking
from geofence.models import MemberRole
from geofence.schemas import GpsCheckIn
from infra.db import Database, utcnow
from tenants import services as tenant_services
from tenants.models import Role
from tests.benchmarks.report import record
from tests.benchmarks.test_permit_list_bench import SERVER_PROCESSES, _plain, _server
from tests.conftest import PostgresDatabase, settings_for
from tests.factories import TenantFactory, issue_token
from tests.geofence_factories import GeofenceWorld, offset

pytestmark = [pytest.mark.benchmark, pytest.mark.postgres]

BATCH = 500
CLIENTS = 8
WARMUP_BATCHES = 2
# One phone alone first, to show how much of the server a single client leaves idle.
SOLO_BATCHES = 10
# Long enough (100k pings, a few seconds) that the rate is not one scheduler's hiccup.
BATCHES_PER_CLIENT = 25
BASELINE_RUNS = 3
TARGET_SHARE = 0.25
PING_EVERY_S = 0.2
# A walk round a 60 m circle about the zone's centre: always inside, clear of the hole.
WALK_RADIUS_M = 60.0
PINGS_PER_LAP = 600


@dataclasses.dataclass
class Phone:
    user_id: uuid.UUID
    token: str
    # Request bodies, encoded ahead of the run, in the order the phone sends them.
    warmup: list[bytes]
    solo: list[bytes]
    measured: list[bytes]
    # The measured batches' pings, for the baseline's rows.
    measured_pings: list[dict[str, Any]]


async def _crew(world: GeofenceWorld, count: int) -> list[uuid.UUID]:
    """The world's crew and more crew logins, all on the job and checked in 55 minutes ago."""
    async with world.session() as session:
        added = []
        for number in range(count - len(world.crew)):
            user = await tenant_services.create_user(
                session,
                email=f"crew{number}.{uuid.uuid4().hex[:6]}@{world.tenant.slug}.example",
                name=f"工人{number}",
                password=None,
            )
            await tenant_services.grant_role(session, user_id=user.id, role=Role.CONTRACTOR_WORKER)
            added.append(user.id)
    crew = [*world.crew.values(), *added]
    people = [
        tracking.Person(user_id, None, f"工人{i}", MemberRole.CREW)
        for i, user_id in enumerate(crew)
    ]
    now = utcnow()
    spec = tracking.WatchSpec(
        id=world.watch_id,
        plant_id=world.plant_id,
        zone_id=world.work_zone,
        label="DH01-20261128-0001",
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=3),
        state=tracking.WatchState.ACTIVE,
        people=people,
    )
    async with world.session() as session:
        await session.run_sync(lambda sync: tracking.sync_watch(sync, spec, now))
    lat, lon = offset(0, 0)
    for user_id in crew:
        async with world.session() as session:
            await tracking.check_in(
                session,
                world.settings,
                user_id,
                world.watch_id,
                GpsCheckIn(latitude=lat, longitude=lon, accuracy_m=5),
                now - timedelta(minutes=55),
            )
    return crew


def _walk(start: datetime, count: int, phase: float) -> list[dict[str, Any]]:
    pings = []
    for step in range(count):
        angle = phase + 2 * math.pi * step / PINGS_PER_LAP
        lat, lon = offset(WALK_RADIUS_M * math.sin(angle), WALK_RADIUS_M * math.cos(angle))
        pings.append(
            {
                "id": str(uuid.uuid4()),
                "device_time": (start + timedelta(seconds=step * PING_EVERY_S)).isoformat(),
                "latitude": lat,
                "longitude": lon,
                "accuracy_m": 5.0 + step % 7,
                "speed_mps": 3.1,
                "heading_deg": float(step % 360),
                "battery": 0.8,
            }
        )
    return pings


def _phones(crew: list[uuid.UUID], tokens: list[str]) -> list[Phone]:
    """Each phone's walk cut into batches; the first phone also sends the solo batches."""
    most = WARMUP_BATCHES + SOLO_BATCHES + BATCHES_PER_CLIENT
    start = utcnow() - timedelta(seconds=most * BATCH * PING_EVERY_S + 60)
    phones = []
    for number, (user_id, token) in enumerate(zip(crew, tokens, strict=True)):
        solo = SOLO_BATCHES if number == 0 else 0
        walk = _walk(start, (WARMUP_BATCHES + solo + BATCHES_PER_CLIENT) * BATCH, phase=number)
        bodies = [
            msgspec.json.encode({"pings": walk[index : index + BATCH]})
            for index in range(0, len(walk), BATCH)
        ]
        phones.append(
            Phone(
                user_id=user_id,
                token=token,
                warmup=bodies[:WARMUP_BATCHES],
                solo=bodies[WARMUP_BATCHES : WARMUP_BATCHES + solo],
                measured=bodies[WARMUP_BATCHES + solo :],
                measured_pings=walk[(WARMUP_BATCHES + solo) * BATCH :],
            )
        )
    return phones


def _copy_rows(
    phones: list[Phone], tenant_id: uuid.UUID, watch_id: uuid.UUID
) -> list[tuple[Any, ...]]:
    """The measured batches' pings as the rows ingestion stores (``inside`` as the engine finds
    it: the walk never leaves the zone)."""
    now = utcnow()
    return [
        (
            tenant_id,
            uuid.UUID(item["id"]),
            datetime.fromisoformat(item["device_time"]),
            now,
            now,
            phone.user_id,
            watch_id,
            item["latitude"],
            item["longitude"],
            item["accuracy_m"],
            item["speed_mps"],
            item["heading_deg"],
            False,
            item["battery"],
            True,
        )
        for phone in phones
        for item in phone.measured_pings
    ]


async def _baseline_copy_s(owner_url: str, rows: list[tuple[Any, ...]]) -> float:
    """The median of BASELINE_RUNS single COPYs of the rows into the empty table, each in its
    own committed transaction; the table is emptied after each."""
    connection = await asyncpg.connect(_plain(owner_url))
    timings = []
    try:
        for _ in range(BASELINE_RUNS):
            started = time.perf_counter()
            async with connection.transaction():
                await connection.copy_records_to_table(
                    "geofence_pings", records=rows, columns=tracking.PING_COLUMNS
                )
            timings.append(time.perf_counter() - started)
            assert await connection.fetchval("SELECT count(*) FROM geofence_pings") == len(rows)
            await connection.execute("TRUNCATE geofence_pings")
    finally:
        await connection.close()
    print(f"[bench] COPY of {len(rows)} rows: " + ", ".join(f"{t:.3f} s" for t in timings))
    return statistics.median(timings)


async def _post_all(base: str, phones: list[Phone]) -> tuple[float, float, list[float]]:
    """Warm up; the first phone posts its solo batches alone; then every phone posts its
    measured batches one after another, all phones at once. Returns the wall seconds of the
    solo batches and of the measured ones, and each measured request's latency."""
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def send(phone: Phone, body: bytes) -> None:
            started = time.perf_counter()
            answer = await client.post(
                "/api/v1/pings",
                content=body,
                headers={
                    "Authorization": f"Bearer {phone.token}",
                    "Content-Type": "application/json",
                },
            )
            latencies.append(time.perf_counter() - started)
            assert answer.status_code == 200, answer.text
            report = answer.json()
            assert (report["accepted"], report["rejected"]) == (BATCH, []), report
            assert report["watches"][0]["inside"] is True

        async def run(phone: Phone, bodies: list[bytes]) -> None:
            for body in bodies:
                await send(phone, body)

        await asyncio.gather(*(run(phone, phone.warmup) for phone in phones))
        started = time.perf_counter()
        await run(phones[0], phones[0].solo)
        solo = time.perf_counter() - started
        latencies.clear()
        started = time.perf_counter()
        await asyncio.gather(*(run(phone, phone.measured) for phone in phones))
        elapsed = time.perf_counter() - started
    return solo, elapsed, latencies


async def _stored(owner_url: str, tenant_id: uuid.UUID) -> int:
    connection = await asyncpg.connect(_plain(owner_url))
    try:
        return int(
            await connection.fetchval(
                "SELECT count(DISTINCT id) FROM geofence_pings WHERE tenant_id = $1", tenant_id
            )
        )
    finally:
        await connection.close()


def test_ingest_pings_per_s(postgres: PostgresDatabase, tmp_path: Path) -> None:
    settings = settings_for(
        postgres.app_url, tmp_path / "var", migration_database_url=postgres.owner_url
    )

    async def prepare() -> tuple[GeofenceWorld, list[Phone]]:
        database = Database.from_settings(settings)
        try:
            world = await GeofenceWorld.create(database, settings, TenantFactory())
            crew = await _crew(world, CLIENTS)
            tokens = [await issue_token(database, world.tenant.id, user) for user in crew]
        finally:
            await database.dispose()
        return world, _phones(crew, tokens)

    world, phones = asyncio.run(prepare())
    rows = _copy_rows(phones, world.tenant.id, world.watch_id)
    measured = len(rows)
    assert measured == CLIENTS * BATCHES_PER_CLIENT * BATCH
    baseline_s = asyncio.run(_baseline_copy_s(postgres.owner_url, rows))

    with _server(postgres, tmp_path / "server-var", workers=SERVER_PROCESSES) as served:
        solo_s, ours_s, latencies = asyncio.run(_post_all(served.base, phones))
    stored = asyncio.run(_stored(postgres.owner_url, world.tenant.id))
    assert stored == (CLIENTS * (WARMUP_BATCHES + BATCHES_PER_CLIENT) + SOLO_BATCHES) * BATCH

    latencies.sort()
    print(
        f"[bench] one client alone: {SOLO_BATCHES * BATCH / solo_s:.0f} pings/s "
        f"({solo_s / SOLO_BATCHES * 1000:.0f} ms per batch)"
    )
    print(
        f"[bench] {measured} pings in {len(latencies)} batches of {BATCH} from {CLIENTS} "
        f"clients at once: {ours_s:.2f} s; per batch median "
        f"{statistics.median(latencies) * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms"
    )
    ours = measured / ours_s
    baseline = measured / baseline_s
    result = record(
        "ingest_pings_per_s",
        unit="pings/s",
        ours=ours,
        baseline=baseline,
        target=f"ours >= {TARGET_SHARE:.0%} of a raw COPY of the same rows "
        f"(HTTP batches of {BATCH}, {CLIENTS} concurrent clients)",
        meets=ours >= TARGET_SHARE * baseline,
    )
    assert result["meets"]
