"""Exports of the HQ tables over HTTP on PostgreSQL as the application role: every table as CSV
and XLSX holds the rows :mod:`scoring.tables` reads, under headers in the reader's language,
with instants on the plant's clock; a long export is built by a real Celery worker (Redis
broker) into object storage, its page shows the progress and then a download that matches;
the embedded worker builds one started from the page too. Other tenants, other readers'
exports and roles that read no HQ figures get 404; bad parameters name the field and rule.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import re
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import pytest_asyncio
from celery import Celery
from litestar.testing import AsyncTestClient

from infra.db import Database
from infra.i18n import locale_scope
from infra.settings import Settings
from infra.storage import storage_from_settings
from infra.tasks import start_embedded_worker
from onboarding.catalogue import WorkType
from permits.models import Permit
from permits.states import PermitState
from portal.app import create_app
from scoring import exports
from scoring.models import Export
from scoring.tables import TABLES, Column, Params
from tenants import services as tenant_services
from tenants.models import Role
from tests.conftest import PostgresDatabase
from tests.factories import SeededTenant, TenantFactory
from tests.integration.workers import (
    SHARED_REDIS_URL,
    Worker,
    client_app,
    pg_task_settings,
    prefixed_keys,
)
from tests.permit_factories import LEADER, PermitWorld

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.postgres]

CSRF_FIELD = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')
STATE = re.compile(r'data-testid="export-status"[^>]*data-state="(\w+)"')
SHANGHAI = ZoneInfo("Asia/Shanghai")
PASSWORD = "exports-pass-1"
# A day well inside the default 90 days, and the week around it that the tests ask for.
DAY = datetime.now(SHANGHAI).date() - timedelta(days=20)
FIRST, LAST = DAY - timedelta(days=3), DAY + timedelta(days=3)


def at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), SHANGHAI).astimezone(UTC)


@dataclasses.dataclass
class Stage:
    world: PermitWorld
    settings: Settings
    other: SeededTenant
    clients: dict[str, AsyncTestClient[Any]]
    users: dict[str, uuid.UUID]

    @property
    def slug(self) -> str:
        return self.world.tenant.slug

    def plant(self, code: str) -> uuid.UUID:
        return self.world.tenant.plants[code]

    def url(self, table: str, fmt: str, /, **extra: str) -> str:
        query = {"table": table, "format": fmt, "from": FIRST.isoformat(), "to": LAST.isoformat()}
        query.update(extra)
        return f"/t/{self.slug}/hq/export?" + "&".join(f"{k}={v}" for k, v in query.items())

    async def expected(
        self, table: str, locale: str = "zh_CN", **filters: Any
    ) -> tuple[list[str], list[dict[str, Any]]]:
        """The headers and rows the table reads, in that language."""
        params = Params(FIRST, LAST + timedelta(days=1), None, **filters)

        def read(session: Any) -> tuple[list[str], list[dict[str, Any]]]:
            with locale_scope(locale):
                return TABLES[table].headers(), TABLES[table].rows(session, params)

        async with self.world.session() as session:
            return await session.run_sync(read)


async def signed_in(
    settings: Settings, slug: str, email: str, password: str
) -> AsyncTestClient[Any]:
    # An app per client: each test client runs its requests on an event loop of its own, and
    # a database pool must stay on one loop.
    client = AsyncTestClient(app=create_app(settings))
    await client.__aenter__()
    client.follow_redirects = False
    login = await client.get(f"/t/{slug}/login")
    csrf = CSRF_FIELD.search(login.text)
    assert csrf is not None, login.text
    response = await client.post(
        "/login",
        data={"tenant": slug, "email": email, "password": password, "_csrf_token": csrf.group(1)},
    )
    assert response.status_code in (302, 303), response.text
    return client


async def add_permit(
    world: PermitWorld,
    session: Any,
    plant: str,
    work_type: WorkType,
    state: PermitState,
    start: datetime,
    number: str,
) -> None:
    permit = Permit(
        plant_id=world.tenant.plants[plant],
        zone_id=world.zones["Z1"],
        contractor_id=world.company.contractor_id,
        work_type=work_type.value,
        number=number,
        state=state.value,
        location="一号装置区",
        work_content="检修",
        planned_start=start,
        planned_end=start + timedelta(hours=4),
        work_leader_id=world.worker(LEADER),
        guardian_user_id=world.guardian.user_id,
        applicant_id=world.contractor_admin.user_id,
        submitted_at=start - timedelta(hours=6),
    )
    if state != PermitState.SUBMITTED:
        permit.approved_at = start - timedelta(minutes=75)
        permit.started_at = start
    if state == PermitState.CLOSED:
        permit.completed_at = start + timedelta(hours=3)
        permit.closed_at = start + timedelta(hours=4)
    session.add(permit)
    await session.flush()


@pytest.fixture(scope="module")
def redis_prefix() -> Iterator[str]:
    with prefixed_keys(SHARED_REDIS_URL) as prefix:
        yield prefix


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stage(
    postgres: PostgresDatabase, tmp_path_factory: pytest.TempPathFactory, redis_prefix: str
) -> AsyncIterator[Stage]:
    # The web app and the worker share these settings: the database, the broker and the
    # storage directory the worker writes the file to and the app reads it from.
    settings = pg_task_settings(
        postgres,
        tmp_path_factory.mktemp("exports") / "var",
        SHARED_REDIS_URL,
        celery_key_prefix=redis_prefix,
        login_rate_per_minute=10_000,
    )
    database = Database.from_settings(settings)
    factory = TenantFactory()
    clients: dict[str, AsyncTestClient[Any]] = {}
    try:
        world = await PermitWorld.create(database, settings, factory, induct=False)
        other = await factory.create(database, plants=("P1",), users=((Role.HQ_ANALYST, None),))
        logins = {
            "hq": (Role.HQ_ANALYST, None),
            "hq_en": (Role.HQ_ANALYST, None),
            "admin": (Role.TENANT_ADMIN, None),
            "ehs_p1": (Role.EHS_OFFICER, "P1"),
            "supervisor": (Role.UNIT_SUPERVISOR, "P1"),
        }
        users: dict[str, uuid.UUID] = {}
        async with world.session() as session:
            for name, (role, plant) in logins.items():
                user = await tenant_services.create_user(
                    session,
                    email=f"{name}@{world.tenant.slug}.example",
                    name=name,
                    password=PASSWORD,
                )
                await tenant_services.grant_role(
                    session,
                    user_id=user.id,
                    role=role,
                    plant_id=world.tenant.plants[plant] if plant else None,
                )
                users[name] = user.id
        async with world.session() as session:
            # Early morning in Shanghai is the evening before in UTC: the file must show the
            # plant's clock, not UTC.
            await add_permit(
                world, session, "P1", WorkType.HOT_WORK, PermitState.CLOSED, at(DAY, 7), "DH-1"
            )
            await add_permit(
                world, session, "P1", WorkType.HEIGHT, PermitState.ACTIVE, at(DAY, 10), "GC-1"
            )
            await add_permit(
                world,
                session,
                "P2",
                WorkType.HEIGHT,
                PermitState.SUBMITTED,
                at(DAY + timedelta(days=1), 9),
                "=GC-2",
            )
        for name in logins:
            clients[name] = await signed_in(
                settings, world.tenant.slug, f"{name}@{world.tenant.slug}.example", PASSWORD
            )
        clients["contractor"] = await signed_in(
            settings, world.tenant.slug, world.company.admin_email, world.company.admin_password
        )
        analyst = other.user(Role.HQ_ANALYST)
        clients["other"] = await signed_in(settings, other.slug, analyst.email, analyst.password)
        switched = await clients["hq_en"].get("/lang/en?next=/")
        assert switched.status_code in (302, 303)
        yield Stage(world, settings, other, clients, users)
    finally:
        for client in clients.values():
            await client.__aexit__(None, None, None)
        await database.dispose()


# --- what a file holds ---------------------------------------------------------------------


def csv_rows(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "Excel needs the byte-order mark to read UTF-8"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def xlsx_rows(data: bytes) -> list[list[Any]]:
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def expected_cell(column: Column, row: Mapping[str, Any], fmt: str, locale: str) -> Any:
    """What a cell must hold, written from the rules rather than from the exporter's code."""
    value = row.get(column.key)
    if isinstance(value, bool):
        words = {"zh_CN": ("是", "否"), "en": ("Yes", "No")}[locale]
        return words[0] if value else words[1]
    if isinstance(value, datetime):
        # Every plant of the stage keeps the default clock, Shanghai's.
        local = value.astimezone(SHANGHAI).replace(tzinfo=None)
        return local if fmt == "xlsx" else local.strftime("%Y-%m-%d %H:%M")
    if fmt == "xlsx":
        if isinstance(value, date):
            return datetime.combine(value, time())
        return None if value == "" else value
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and value.startswith("="):
        return "'" + value
    return str(value)


def read_file(data: bytes, fmt: str) -> list[list[Any]]:
    return csv_rows(data) if fmt == "csv" else xlsx_rows(data)


def assert_matches(
    data: bytes,
    fmt: str,
    headers: list[str],
    rows: list[dict[str, Any]],
    table: str,
    locale: str = "zh_CN",
) -> None:
    content = read_file(data, fmt)
    assert content[0] == headers
    columns = TABLES[table].columns
    expected = [[expected_cell(column, row, fmt, locale) for column in columns] for row in rows]
    assert content[1:] == expected


# --- the tables ---------------------------------------------------------------------------


FILTERS: dict[str, dict[str, str]] = {
    "plants": {},
    "work_types": {},
    "contractors": {},
    "contractor_plants": {"contractor_id": "company"},
    "trend": {},
    "permits": {},
}


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("table", list(TABLES))
async def test_every_table_exports_the_rows_the_page_reads(
    stage: Stage, table: str, fmt: str
) -> None:
    query = {
        key: str(stage.world.company.contractor_id) if value == "company" else value
        for key, value in FILTERS[table].items()
    }
    response = await stage.clients["hq"].get(stage.url(table, fmt, **query))
    assert response.status_code == 200, response.text[:2000]
    assert response.headers["content-type"].startswith(exports.CONTENT_TYPES[fmt].split(";")[0])
    disposition = response.headers["content-disposition"]
    assert f'filename="{table}_{FIRST.isoformat()}_{LAST.isoformat()}.{fmt}"' in disposition
    filters = {key: uuid.UUID(value) for key, value in query.items()}
    headers, rows = await stage.expected(table, **filters)
    assert rows, f"the stage should give the {table} table rows"
    assert_matches(response.content, fmt, headers, rows, table)


async def test_numbers_stay_numbers_and_times_are_on_the_plants_clock(stage: Stage) -> None:
    response = await stage.clients["hq"].get(stage.url("permits", "xlsx"))
    header, *rows = xlsx_rows(response.content)
    by_number = {row[header.index(TABLES["permits"].headers()[0])]: row for row in rows}
    early = by_number["DH-1"]
    # 07:00 in Shanghai, 23:00 the day before in UTC.
    assert datetime.combine(DAY, time(7)) in early
    approval = TABLES["permits"].columns.index(
        next(c for c in TABLES["permits"].columns if c.key == "approval_minutes")
    )
    assert early[approval] == pytest.approx(6 * 60 - 75)
    # A number a company typed that looks like a formula stays text.
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    assert sheet is not None
    cells = [cell for row in sheet.iter_rows() for cell in row if cell.value == "=GC-2"]
    assert cells and all(cell.data_type == "s" for cell in cells)


async def test_headers_are_in_the_readers_language(stage: Stage) -> None:
    for fmt in ("csv", "xlsx"):
        response = await stage.clients["hq_en"].get(stage.url("plants", fmt))
        assert response.status_code == 200
        headers, rows = await stage.expected("plants", locale="en")
        assert headers[0] == "Plant"
        assert_matches(response.content, fmt, headers, rows, "plants", locale="en")
        chinese = await stage.clients["hq"].get(stage.url("plants", fmt))
        assert read_file(chinese.content, fmt)[0][0] == "厂区"


async def test_the_default_period_is_the_last_90_days(stage: Stage) -> None:
    response = await stage.clients["hq"].get(f"/t/{stage.slug}/hq/export?table=permits&format=csv")
    assert response.status_code == 200
    today = datetime.now(SHANGHAI).date()
    first = today - timedelta(days=89)
    disposition = response.headers["content-disposition"]
    assert f"permits_{first.isoformat()}_{today.isoformat()}.csv" in disposition
    numbers = [row[0] for row in csv_rows(response.content)[1:]]
    assert sorted(numbers) == ["'=GC-2", "DH-1", "GC-1"]


# --- who may export what -----------------------------------------------------------------


async def test_a_plant_reader_exports_only_its_plants(stage: Stage) -> None:
    client = stage.clients["ehs_p1"]
    response = await client.get(stage.url("plants", "csv"))
    assert response.status_code == 200
    plants = [row[0] for row in csv_rows(response.content)[1:]]
    assert plants == ["P1 P1 厂区"]
    permits = await client.get(stage.url("permits", "csv"))
    assert sorted(row[0] for row in csv_rows(permits.content)[1:]) == ["DH-1", "GC-1"]
    outside = await client.get(stage.url("permits", "csv", plant_id=str(stage.plant("P2"))))
    assert outside.status_code == 404


@pytest.mark.parametrize("who", ["supervisor", "contractor"])
async def test_roles_that_read_no_hq_figures_get_404(stage: Stage, who: str) -> None:
    assert (await stage.clients[who].get(stage.url("plants", "csv"))).status_code == 404


async def test_another_tenant_exports_only_its_own_plants(stage: Stage) -> None:
    client = stage.clients["other"]
    # Under this tenant's address the other tenant's analyst is nobody.
    assert (await client.get(stage.url("plants", "csv"))).status_code in (302, 303, 401, 404)
    own = stage.url("plants", "csv").replace(stage.slug, stage.other.slug)
    answer = await client.get(own)
    assert answer.status_code == 200
    assert [row[0] for row in csv_rows(answer.content)[1:]] == ["P1 P1 厂区"]
    foreign_plant = await client.get(f"{own}&plant_id={stage.plant('P1')}")
    assert foreign_plant.status_code == 200
    assert csv_rows(foreign_plant.content)[1:] == [], "another tenant's plant holds nothing"


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"format": "pdf"}, "format", "one_of"),
        ({"table": "salaries"}, "table", "one_of"),
        ({"from": "2026-13-01"}, "from", "date"),
        ({"from": LAST.isoformat(), "to": FIRST.isoformat()}, "to", "order"),
        ({"contractor_id": "not-an-id"}, "contractor_id", "uuid"),
        ({"work_type": "juggling"}, "work_type", "enum"),
    ],
)
async def test_bad_parameters_name_the_field_and_rule(
    stage: Stage, change: dict[str, str], field: str, rule: str
) -> None:
    response = await stage.clients["hq"].get(
        stage.url("plants", "csv", **change), headers={"Accept": "application/json"}
    )
    assert response.status_code == 422, response.text[:500]
    [problem] = response.json()["errors"]
    assert (problem["field"], problem["rule"]) == (field, rule)


# --- long exports ----------------------------------------------------------------------------


async def export_state(client: AsyncTestClient[Any], path: str) -> str:
    response = await client.get(path, headers={"HX-Request": "true"})
    assert response.status_code == 200, response.text[:500]
    found = STATE.search(response.text)
    assert found is not None, response.text
    # HTMX gets the panel alone, not a whole page to swap in.
    assert "<html" not in response.text
    return found.group(1)


async def wait_for_state(client: AsyncTestClient[Any], path: str, seconds: float = 30) -> str:
    for _ in range(int(seconds * 5)):
        state = await export_state(client, path)
        if state != "running":
            return state
        await asyncio.sleep(0.2)
    raise AssertionError(f"the export at {path} is still running after {seconds} s")


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
async def test_a_long_export_is_built_by_the_worker_and_downloaded(
    stage: Stage, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    client = stage.clients["hq"]
    direct = await client.get(stage.url("permits", fmt))
    assert direct.status_code == 200
    monkeypatch.setattr(exports, "DIRECT_ROW_LIMIT", 1)

    started = await client.get(stage.url("permits", fmt))
    assert started.status_code == 303, started.text[:500]
    page_path = started.headers["location"]
    export_id = uuid.UUID(page_path.rsplit("/", 1)[1])
    page = await client.get(page_path)
    assert page.status_code == 200
    assert 'data-state="running"' in page.text and f'hx-get="{page_path}"' in page.text
    assert 'data-testid="export-download"' not in page.text

    # The request sent the task to the test process's own broker; the worker of this test
    # listens on Redis, so the task is sent there by name, as another service would.
    sender: Celery = client_app(stage.settings)
    # Generous: a worker imports every task module first, which takes a while on a busy machine.
    worker = Worker(stage.settings, stage.settings.var_dir / f"worker-{fmt}.log")
    try:
        worker.start(timeout=180)
        sender.send_task(
            "scoring.build_export",
            kwargs={"tenant_id": str(stage.world.tenant.id), "export_id": str(export_id)},
        )
        assert await wait_for_state(client, page_path, seconds=120) == "done", worker.log()
    finally:
        worker.kill()
        sender.close()

    done = await client.get(page_path)
    assert 'data-testid="export-download"' in done.text
    assert "hx-trigger" not in done.text, "a finished export stops polling"
    download = await client.get(f"{page_path}/download")
    assert download.status_code == 200
    assert download.headers["content-disposition"] == direct.headers["content-disposition"]
    if fmt == "csv":
        assert download.content == direct.content
    else:
        assert xlsx_rows(download.content) == xlsx_rows(direct.content)

    async with stage.world.session() as session:
        export = await session.get_one(Export, export_id)
        assert (export.state, export.progress, export.rows) == ("done", 100, 3)
        key = export.object_key
    assert key == f"tenants/{stage.world.tenant.id}/exports/{export_id}.{fmt}"
    assert storage_from_settings(stage.settings).get(key) == download.content

    # Another reader of the same tenant, and another tenant, do not see it.
    for who, slug in (("admin", stage.slug), ("other", stage.other.slug)):
        path = page_path.replace(stage.slug, slug)
        assert (await stage.clients[who].get(path)).status_code == 404
        assert (await stage.clients[who].get(f"{path}/download")).status_code == 404


async def test_a_download_before_the_export_is_done_is_404(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exports, "DIRECT_ROW_LIMIT", 1)
    client = stage.clients["admin"]
    started = await client.get(stage.url("trend", "csv"))
    assert started.status_code == 303
    assert (await client.get(started.headers["location"] + "/download")).status_code == 404
    malformed = f"/t/{stage.slug}/hq/exports/not-a-uuid"
    assert (await client.get(malformed)).status_code == 404


@pytest.mark.asyncio(loop_scope="function")
async def test_the_embedded_worker_builds_an_export_started_from_the_page(
    sqlite_settings: Settings, sqlite_db: Database, factory: TenantFactory
) -> None:
    """Without a broker (the embedded default) the task the request sends runs in-process."""
    settings = dataclasses.replace(sqlite_settings, login_rate_per_minute=10_000)
    tenant = await factory.create(sqlite_db, plants=("P1", "P2"), users=((Role.HQ_ANALYST, None),))
    analyst = tenant.user(Role.HQ_ANALYST)
    embedded = start_embedded_worker(settings)
    assert embedded is not None
    client = await signed_in(settings, tenant.slug, analyst.email, analyst.password)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(exports, "DIRECT_ROW_LIMIT", 0)
            started = await client.get(f"/t/{tenant.slug}/hq/export?table=plants&format=xlsx")
        assert started.status_code == 303
        page_path = started.headers["location"]
        assert await wait_for_state(client, page_path) == "done"
        download = await client.get(f"{page_path}/download")
        header, *rows = xlsx_rows(download.content)
        assert header[0] == "厂区"
        assert [row[0] for row in rows] == ["P1 P1 厂区", "P2 P2 厂区"]
        permits = [column.key for column in TABLES["plants"].columns].index("permits")
        assert [row[permits] for row in rows] == [0, 0]
    finally:
        await client.__aexit__(None, None, None)
        embedded.stop()
