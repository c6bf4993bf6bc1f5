"""The tenant-scoped permit list over real HTTP: p95 latency at 50 concurrent clients, against the
raw time of the SELECT the same handler issues, on the same PostgreSQL in the same run.

PostgreSQL holds 200,000 permits across two tenants (two plants each, eight work types, the
usual spread of states over two years), bulk-loaded with ``COPY``; the people, plants, zones and
companies they point at are made through the real services. The application runs as in
production — ``portal serve``'s uvicorn, one process per core, connecting as the unprivileged
application role under row-level security — and 50 clients (keep-alive connections of ``wrk``)
each ask, one request after the other, for one page of 50 rows with a plant, work type and
state filter as an EHS officer of either tenant with a bearer token. ``wrk`` is written in C: a
Python client spends more processor time per request than the server does, on the same two
cores, and would measure itself. Every answer is checked (status 200, 50 rows). The baseline
is the list's own SELECT, captured from the service and run directly (asyncpg, as the
application role, in a transaction with the tenant set), one at a time. Beside the latencies it
prints the processor time each request cost the server, PostgreSQL and ``wrk``, and how many
cores were busy: when every core is, a request's latency is mostly its wait behind the others,
and those figures say whose work fills the cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psycopg
import pytest
from sqlalchemy import event

from geofence import services as zone_services
from geofence.schemas import CircleIn, ZoneIn
from infra.db import Database, new_id
from infra.tenancy import tenant_scope
from onboarding.catalogue import WorkType
from permits import services
from permits.catalogue import NUMBER_PREFIX, checklist_codes
from tenants.access import Grant, Principal
from tenants.models import Role
from tests.benchmarks.report import record
from tests.conftest import PostgresDatabase, settings_for
from tests.factories import SeededTenant, TenantFactory, issue_token
from tests.onboarding_factories import OnboardingFactory

pytestmark = [pytest.mark.benchmark, pytest.mark.postgres]

PERMITS_PER_TENANT = 100_000
ZONES_PER_PLANT = 5
CLIENTS = 50
WARMUP_SECONDS = 5
ALONE_SECONDS = 5
MEASURED_SECONDS = 20
SERVER_PROCESSES = os.cpu_count() or 1
BASELINE_RUNS = 400
TARGET_MS = 50.0
ROOT = Path(__file__).resolve().parents[2]
# A realistic spread: most permits of two years are closed; a few are live or in the chain.
STATES = {
    "closed": 60,
    "cancelled": 6,
    "expired": 5,
    "rejected": 2,
    "superseded": 2,
    "draft": 5,
    "submitted": 2,
    "in_approval": 4,
    "approved": 6,
    "active": 5,
    "suspended": 1,
    "completed": 2,
}
# What the clients ask for: a plant, a type and a state that each have well over 50 permits.
QUERY_TYPES = ("hot_work", "height", "confined_space", "lifting")
QUERY_STATES = ("closed", "approved", "active", "in_approval")
COLUMNS = (
    "id",
    "tenant_id",
    "created_at",
    "updated_at",
    "plant_id",
    "zone_id",
    "contractor_id",
    "work_type",
    "level",
    "requested_level",
    "level_reasons",
    "number",
    "version",
    "state",
    "location",
    "work_content",
    "planned_start",
    "planned_end",
    "work_leader_id",
    "guardian_user_id",
    "related_numbers",
    "hazards",
    "emergency_measures",
    "checklist",
    "details",
    "applicant_id",
)
LEVELS = {
    "hot_work": "level2",
    "height": "grade_2",
    "lifting": "level2",
}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _plain(url: str) -> str:
    """A SQLAlchemy URL as libpq and asyncpg take it."""
    return url.replace("postgresql+asyncpg://", "postgresql://").replace(
        "postgresql+psycopg://", "postgresql://"
    )


class Tenant:
    def __init__(self, seeded: SeededTenant) -> None:
        self.seeded = seeded
        self.id = seeded.id
        self.ehs = seeded.user(Role.EHS_OFFICER)
        self.contractor_id: uuid.UUID
        self.worker_id: uuid.UUID
        self.zones: dict[uuid.UUID, list[uuid.UUID]] = {}
        self.token = ""

    @property
    def principal(self) -> Principal:
        return Principal(
            tenant_id=self.id,
            tenant_slug=self.seeded.slug,
            tenant_name="",
            user_id=self.ehs.id,
            name="EHS",
            email=self.ehs.email,
            locale="zh_CN",
            grants=frozenset({Grant(Role.EHS_OFFICER, None)}),
        )


async def _seed_people(database: Database, settings: Any) -> list[Tenant]:
    """Two tenants with their plants, an EHS officer, a company with a worker, and zones."""
    factory = TenantFactory()
    onboarding = OnboardingFactory(database, settings)
    tenants = []
    for _ in range(2):
        seeded = await factory.create(
            database, plants=("P1", "P2"), users=((Role.EHS_OFFICER, None),)
        )
        tenant = Tenant(seeded)
        company = await onboarding.register(seeded)
        tenant.contractor_id = company.contractor_id
        tenant.worker_id = await onboarding.add_worker(company, "张三")
        async with database.session() as session:
            with tenant_scope(tenant.id):
                for code, plant_id in seeded.plants.items():
                    tenant.zones[plant_id] = []
                    for index in range(ZONES_PER_PLANT):
                        zone = await zone_services.create_zone(
                            session,
                            ZoneIn(
                                plant_id=plant_id,
                                name=f"{code}-Z{index}",
                                shape=CircleIn(center=(121.47 + index * 0.001, 31.23), radius_m=30),
                            ),
                            actor_id=tenant.ehs.id,
                        )
                        tenant.zones[plant_id].append(zone.id)
            await session.commit()
        tenant.token = await issue_token(database, tenant.id, tenant.ehs.id)
        tenants.append(tenant)
    return tenants


def _text(value: Any) -> str:
    """One value in COPY's text format (nothing generated here holds a tab, newline or
    backslash: JSON is written without ASCII escapes)."""
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _rows(tenant: Tenant, rng: random.Random) -> Iterator[str]:
    """The tenant's permits as lines of COPY text."""
    states = list(STATES)
    weights = list(STATES.values())
    plants = list(tenant.zones)
    codes = {plant_id: code for code, plant_id in tenant.seeded.plants.items()}
    types = [work_type.value for work_type in WorkType]
    epoch = datetime(2025, 1, 1, tzinfo=UTC)
    span = int(timedelta(days=730).total_seconds())
    created = datetime.now(UTC)
    hazards = json.dumps(["可燃气体泄漏", "灼烫"], ensure_ascii=False)
    measures = json.dumps(["立即停止作业，撤离现场", "拨打厂区应急电话"], ensure_ascii=False)
    for index in range(PERMITS_PER_TENANT):
        plant_id = rng.choice(plants)
        work_type = rng.choice(types)
        state = rng.choices(states, weights)[0]
        start = epoch + timedelta(seconds=rng.randrange(span))
        numbered = state not in ("draft", "submitted", "in_approval", "rejected")
        prefix = NUMBER_PREFIX[WorkType(work_type)]
        checklist = [
            {
                "code": code,
                "applies": True,
                "confirmed_by": str(tenant.ehs.id) if numbered else None,
                "confirmed_at": start.isoformat() if numbered else None,
            }
            for code in checklist_codes(WorkType(work_type))
        ]
        details = {"method": "electric_welding"} if work_type == "hot_work" else {}
        row = (
            new_id(),
            tenant.id,
            created,
            created,
            plant_id,
            rng.choice(tenant.zones[plant_id]),
            tenant.contractor_id,
            work_type,
            LEVELS.get(work_type),
            LEVELS.get(work_type) if work_type == "hot_work" else None,
            "[]",
            f"{codes[plant_id]}-{prefix}-{index:08d}" if numbered else None,
            1,
            state,
            "二号装置区 3 号罐",
            "更换管线阀门及法兰垫片，作业前吹扫置换",
            start,
            start + timedelta(hours=rng.choice((2, 4, 6, 8))),
            tenant.worker_id,
            tenant.ehs.id,
            "[]",
            hazards,
            measures,
            json.dumps(checklist, ensure_ascii=False),
            json.dumps(details, ensure_ascii=False),
            tenant.ehs.id,
        )
        yield "\t".join(_text(value) for value in row) + "\n"


def _bulk_load(owner_url: str, tenants: list[Tenant]) -> float:
    """COPY every tenant's permits in; returns the seconds it took (VACUUM ANALYZE included). The
    rows are generated consistent with the seeded plants, zones, companies and users, so the load
    skips the per-row foreign key triggers, as a restore does."""
    started = time.perf_counter()
    rng = random.Random(20261128)
    with psycopg.connect(_plain(owner_url)) as connection:
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
            statement = f"COPY permits ({', '.join(COLUMNS)}) FROM STDIN"
            with cursor.copy(statement) as copy:
                for tenant in tenants:
                    chunk: list[str] = []
                    for line in _rows(tenant, rng):
                        chunk.append(line)
                        if len(chunk) == 5_000:
                            copy.write("".join(chunk))
                            chunk.clear()
                    copy.write("".join(chunk))
            cursor.execute("SET session_replication_role = DEFAULT")
        connection.commit()
        # As after any bulk load: the table vacuumed and analysed now rather than by autovacuum
        # in the middle of the measurement, and the loaded pages written out by a checkpoint
        # rather than during it.
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE permits")
        connection.execute("CHECKPOINT")
    return time.perf_counter() - started


async def _captured_select(
    database: Database, tenant: Tenant, filters: services.PermitFilter
) -> tuple[str, tuple[Any, ...]]:
    """The SQL the list service sends for these filters, and its parameters."""
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM permits" in statement:
            seen.append((statement, parameters))

    engine = database.async_engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        async with database.session() as session:
            with tenant_scope(tenant.id):
                actor = await services.actor_for(session, tenant.principal)
                rows = await services.list_permit_summaries(session, actor, filters)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert len(rows) == services.PAGE_SIZE
    statement, parameters = seen[-1]
    return statement, tuple(parameters)


async def _raw_select_ms(
    app_url: str, tenant_id: uuid.UUID, queries: list[tuple[str, tuple[Any, ...]]]
) -> list[float]:
    """Each query run directly, one at a time, as the application role with the tenant set."""
    connection = await asyncpg.connect(_plain(app_url))
    timings = []
    try:
        async with connection.transaction():
            await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_id))
            statement, parameters = queries[0]
            plan = await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", *parameters)
        print("[bench] its plan:\n" + "\n".join(row[0] for row in plan))
        for index in range(BASELINE_RUNS + 20):
            statement, parameters = queries[index % len(queries)]
            async with connection.transaction():
                await connection.execute(
                    "SELECT set_config('app.tenant_id', $1, true)", str(tenant_id)
                )
                started = time.perf_counter()
                rows = await connection.fetch(statement, *parameters)
                elapsed = (time.perf_counter() - started) * 1000
            assert len(rows) == services.PAGE_SIZE
            if index >= 20:
                timings.append(elapsed)
    finally:
        await connection.close()
    return timings


@dataclasses.dataclass(frozen=True)
class Served:
    base: str
    pid: int


@contextlib.contextmanager
def _server(postgres: PostgresDatabase, var_dir: Path, *, workers: int = 1) -> Iterator[Served]:
    """The application in its own processes, as ``portal serve`` runs it (without access
    logs)."""
    port = _free_port()
    env = {
        **os.environ,
        "PORTAL_DATABASE_URL": postgres.app_url,
        "PORTAL_MIGRATION_DATABASE_URL": postgres.owner_url,
        "PORTAL_VAR_DIR": str(var_dir),
        "PORTAL_REDIS_URL": "",
        "PORTAL_CELERY_BROKER_URL": "",
    }
    code = (
        "from portal.server import run_server\n"
        f"run_server(host='127.0.0.1', port={port}, workers={workers}, log_level='warning', "
        "access_log=False)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the application server did not start")
            time.sleep(0.2)
        yield Served(base, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


# Each wrk connection sends one request after the other, each for a random one of the pages;
# the answers are checked (rows counted with a plain find: a pattern substitution over every
# body costs wrk five times as much, processor time the server then lacks), and the latency
# percentiles come from wrk's own histogram.
WRK_SCRIPT = """
local pages = {%s}
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  math.randomseed(7)
  failed = 0
end
function request()
  local page = pages[math.random(#pages)]
  return wrk.format("GET", page[1], {["Authorization"] = "Bearer " .. page[2]})
end
local find = string.find
function response(status, headers, body)
  local rows, at = 0, 1
  while true do
    at = find(body, '"work_type":', at, true)
    if not at then
      break
    end
    rows = rows + 1
    at = at + 1
  end
  if status ~= 200 or rows ~= %d then
    failed = failed + 1
  end
end
function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("failed")
  end
  local errors = summary.errors
  io.write(string.format("RESULT %%d %%d %%d %%d %%d %%d\\n", summary.requests,
    latency:percentile(50), latency:percentile(95), latency.max,
    failed, errors.connect + errors.read + errors.write + errors.timeout))
end
"""


def _wrk_script(tenants: list[Tenant], path: Path) -> Path:
    pages = [
        "{"
        + json.dumps(f"/api/v1/permits?plant_id={plant_id}&work_type={work_type}&state={state}")
        + f", {json.dumps(tenant.token)}}}"
        for tenant in tenants
        for plant_id in tenant.zones
        for work_type in QUERY_TYPES
        for state in QUERY_STATES
    ]
    path.write_text(WRK_SCRIPT % (", ".join(pages), services.PAGE_SIZE))
    return path


@dataclasses.dataclass(frozen=True)
class LoadRun:
    requests: int
    median_ms: float
    p95_ms: float
    max_ms: float
    client_cpu_s: float


def _process_table() -> list[tuple[int, int, str, float]]:
    """Every process as (pid, parent pid, name, processor seconds so far), from ``/proc``."""
    ticks = os.sysconf("SC_CLK_TCK")
    table = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The name is in parentheses and may hold spaces; the fields after it are fixed.
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / ticks
        table.append((int(entry.name), int(fields[1]), name, seconds))
    return table


def _processor_seconds(server_pid: int) -> dict[str, float]:
    """Processor time used so far by the application server (the process and its children)
    and by PostgreSQL (every ``postgres`` process)."""
    table = _process_table()
    server = {server_pid} | {pid for pid, parent, _, _ in table if parent == server_pid}
    return {
        "server": sum(seconds for pid, _, _, seconds in table if pid in server),
        "PostgreSQL": sum(seconds for _, _, name, seconds in table if name == "postgres"),
    }


def _wrk(base: str, script: Path, *, connections: int, seconds: int) -> LoadRun:
    """``connections`` clients for ``seconds``; every answer must have been a full page."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    finished = subprocess.run(
        [
            "wrk",
            "--threads",
            "1",
            "--connections",
            str(connections),
            "--duration",
            f"{seconds}s",
            "--timeout",
            "30s",
            "--script",
            str(script),
            base,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(row for row in finished.stdout.splitlines() if row.startswith("RESULT "))
    requests, median_us, p95_us, max_us, failed, errors = (int(x) for x in line.split()[1:])
    assert failed == 0 and errors == 0, finished.stdout
    assert requests > 0, finished.stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return LoadRun(requests, median_us / 1000, p95_us / 1000, max_us / 1000, client_cpu_s)


def _load(served: Served, script: Path) -> LoadRun:
    _wrk(served.base, script, connections=CLIENTS, seconds=WARMUP_SECONDS)
    # One client alone first: the service time every queued request pays.
    alone = _wrk(served.base, script, connections=1, seconds=ALONE_SECONDS)
    print(
        f"[bench] one client alone: median {alone.median_ms:.1f} ms, "
        f"p95 {alone.p95_ms:.1f} ms per request ({alone.requests / ALONE_SECONDS:.0f}/s)"
    )
    before = _processor_seconds(served.pid)
    run = _wrk(served.base, script, connections=CLIENTS, seconds=MEASURED_SECONDS)
    after = _processor_seconds(served.pid)
    spent = {name: after[name] - before[name] for name in after} | {"wrk": run.client_cpu_s}
    cores = os.cpu_count() or 1
    print(
        "[bench] processor time per request: "
        + ", ".join(
            f"{name} {seconds / run.requests * 1000:.2f} ms" for name, seconds in spent.items()
        )
        + f"; {sum(spent.values()) / MEASURED_SECONDS:.1f} of {cores} cores busy"
    )
    return run


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[94]


def test_api_permit_list_p95_ms(postgres: PostgresDatabase, tmp_path: Path) -> None:
    settings = settings_for(
        postgres.app_url, tmp_path / "var", migration_database_url=postgres.owner_url
    )

    async def prepare() -> tuple[list[Tenant], list[tuple[str, tuple[Any, ...]]]]:
        database = Database.from_settings(settings)
        try:
            tenants = await _seed_people(database, settings)
            seconds = await asyncio.to_thread(_bulk_load, postgres.owner_url, tenants)
            print(f"\n[bench] seeded {2 * PERMITS_PER_TENANT} permits in {seconds:.1f} s")
            tenant = tenants[0]
            queries = [
                await _captured_select(
                    database,
                    tenant,
                    services.PermitFilter(plant_id=plant_id, work_type=work_type, state=state),
                )
                for plant_id in tenant.zones
                for work_type in QUERY_TYPES
                for state in QUERY_STATES
            ]
        finally:
            await database.dispose()
        return tenants, queries

    tenants, queries = asyncio.run(prepare())
    print(f"[bench] the list's SELECT:\n{queries[0][0]}")
    raw = asyncio.run(_raw_select_ms(postgres.app_url, tenants[0].id, queries))
    script = _wrk_script(tenants, tmp_path / "permit-list.lua")
    with _server(postgres, tmp_path / "server-var", workers=SERVER_PROCESSES) as served:
        run = _load(served, script)

    ours = run.p95_ms
    baseline = _p95(raw)
    print(
        f"[bench] {run.requests} requests in {MEASURED_SECONDS} s at {CLIENTS} clients on "
        f"{SERVER_PROCESSES} server processes: median {run.median_ms:.1f} ms, p95 {ours:.1f} ms, "
        f"max {run.max_ms:.1f} ms; raw SELECT median {statistics.median(raw):.2f} ms, "
        f"p95 {baseline:.2f} ms"
    )
    result = record(
        "api_permit_list_p95_ms",
        unit="ms",
        ours=ours,
        baseline=baseline,
        target=f"ours <= {TARGET_MS:g} ms p95 at {CLIENTS} concurrent clients",
        meets=ours <= TARGET_MS,
    )
    assert result["meets"]
