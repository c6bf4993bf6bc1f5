"""The HQ pages over HTTP on PostgreSQL as the application role: the plants side by side with
their charts, a plant's work types and companies, one company across the plants, the permits
behind a figure and the plant board. Every figure shown equals what :mod:`scoring.reports`
computes and what the permits were made to be; every drill-down lists exactly the permits a
figure counts. HQ sees every plant of its tenant, a plant's EHS officer only that plant, other
roles and other tenants nothing.

Permits are written as rows with the times and states each case needs (a full loop: approved
before the start, checked in by phone, closed, rated), in the last weeks of the group's
calendar, one of them half a year back and one live today.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient

from geofence.models import Alert, AlertState, CheckIn, Watch, WatchMember, WatchState
from infra.db import Database, utcnow
from onboarding.catalogue import WorkType
from permits.models import Permit
from permits.states import PermitState
from portal.app import create_app
from portal.web.hq import GROUP_ZONE
from scoring import reports
from scoring.models import Rating, Review
from tenants import services as tenant_services
from tenants.models import Role
from tests.conftest import PostgresDatabase, settings_for
from tests.factories import SeededTenant, TenantFactory
from tests.onboarding_factories import Company
from tests.permit_factories import LEADER, PermitWorld

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.postgres]

CSRF_FIELD = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')
SCORES = {"safety": 90, "quality": 80, "schedule": 70, "housekeeping": 60, "cooperation": 100}
WEIGHTS = {"safety": 40, "quality": 25, "schedule": 15, "housekeeping": 10, "cooperation": 10}


# --- reading the pages -------------------------------------------------------------------


@dataclasses.dataclass
class Cell:
    text: str = ""
    href: str | None = None


class Tables(HTMLParser):
    """The rows of every ``data-testid="row-<table>"`` as {data-key: Cell}, with the row's own
    attributes; and every chart mark's data-value."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: dict[str, list[dict[str, Cell]]] = {}
        self.row_attrs: dict[str, list[dict[str, str]]] = {}
        self.marks: list[tuple[str, float]] = []
        self._row: dict[str, Cell] | None = None
        self._cell: Cell | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {key: value or "" for key, value in attrs}
        testid = found.get("data-testid", "")
        if tag == "tr" and testid.startswith("row-"):
            self._row = {}
            self.rows.setdefault(testid[4:], []).append(self._row)
            self.row_attrs.setdefault(testid[4:], []).append(found)
        elif tag == "td" and self._row is not None:
            self._cell = self._row[found.get("data-key", "")] = Cell()
        elif tag == "a" and self._cell is not None:
            self._cell.href = found.get("href")
        elif "data-value" in found and found.get("class") in ("chart-bar", "chart-point"):
            self.marks.append((found["class"], float(found["data-value"])))

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.text += data.strip()


def shown(value: float | int | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def path_of(href: str) -> str:
    return href.replace("&amp;", "&")


def permit_ids(page: Tables) -> set[uuid.UUID]:
    return {
        uuid.UUID(path_of(row["number"].href or "").rsplit("/", 1)[1])
        for row in page.rows.get("permits", [])
    }


# --- the world --------------------------------------------------------------------------------


def group_day(days_ago: int) -> date:
    return utcnow().astimezone(GROUP_ZONE).date() - timedelta(days=days_ago)


def at(day: date, hour: float) -> datetime:
    return datetime.combine(day, time(0), GROUP_ZONE).astimezone(UTC) + timedelta(hours=hour)


@dataclasses.dataclass
class Stage:
    world: PermitWorld
    y: Company
    other: SeededTenant
    clients: dict[str, AsyncTestClient[Any]]
    permits: dict[str, uuid.UUID]

    @property
    def slug(self) -> str:
        return self.world.tenant.slug

    def plant(self, code: str) -> uuid.UUID:
        return self.world.tenant.plants[code]

    async def get(self, who: str, path: str) -> Any:
        return await self.clients[who].get(path)

    async def page(self, who: str, path: str) -> Tables:
        response = await self.get(who, path)
        assert response.status_code == 200, (path, response.text[:2000])
        return Tables(response.text)

    async def reports(self, read: Any) -> Any:
        async with self.world.session() as session:
            return await session.run_sync(read)


class Builder:
    """Permit rows of the world's companies with exactly the facts a case needs."""

    def __init__(self, world: PermitWorld, session: Any, ehs_id: uuid.UUID) -> None:
        self.world = world
        self.session = session
        self.ehs_id = ehs_id
        self.count = 0

    async def permit(
        self,
        plant: str,
        contractor_id: uuid.UUID,
        work_type: WorkType,
        day: date,
        state: PermitState,
        *,
        approved_first: bool = True,
        started: bool = True,
        start: datetime | None = None,
        hours: float = 4,
        checked_in: bool = False,
        rated: bool = False,
        alert: AlertState | None = None,
        violation: bool = False,
    ) -> uuid.UUID:
        self.count += 1
        start = start or at(day, 9)
        permit = Permit(
            id=uuid.uuid4(),
            plant_id=self.world.tenant.plants[plant],
            zone_id=self.world.zones["Z1"],
            contractor_id=contractor_id,
            work_type=work_type.value,
            number=f"{plant}-HQ-{self.count:04d}",
            state=state.value,
            location="一号装置区",
            work_content="检修",
            planned_start=start,
            planned_end=start + timedelta(hours=hours),
            work_leader_id=self.world.worker(LEADER),
            guardian_user_id=self.world.guardian.user_id,
            applicant_id=self.world.contractor_admin.user_id,
            submitted_at=start - timedelta(hours=6),
        )
        if state not in (PermitState.SUBMITTED, PermitState.DRAFT):
            permit.approved_at = start - timedelta(hours=2 if approved_first else -1)
        if started and permit.approved_at is not None:
            permit.started_at = start
        if state in (PermitState.COMPLETED, PermitState.CLOSED):
            permit.completed_at = start + timedelta(hours=hours - 1)
        if state == PermitState.CLOSED:
            permit.closed_at = start + timedelta(hours=hours)
        self.session.add(permit)
        await self.session.flush()
        if checked_in or alert is not None:
            watch_state = WatchState.ACTIVE if state == PermitState.ACTIVE else WatchState.CLOSED
            self.session.add(
                Watch(
                    id=permit.id,
                    plant_id=permit.plant_id,
                    zone_id=permit.zone_id,
                    label=permit.number,
                    starts_at=permit.planned_start,
                    ends_at=permit.planned_end,
                    state=watch_state.value,
                )
            )
            await self.session.flush()
        if checked_in:
            member = WatchMember(
                watch_id=permit.id,
                user_id=self.world.leader_login.user_id,
                worker_id=self.world.worker(LEADER),
                name=LEADER,
                checked_in_at=start,
            )
            self.session.add(member)
            await self.session.flush()
            self.session.add(
                CheckIn(
                    watch_id=permit.id, member_id=member.id, direction="in", method="gps", at=start
                )
            )
            if state != PermitState.ACTIVE:
                out = start + timedelta(hours=2)
                member.checked_out_at = out
                self.session.add(
                    CheckIn(
                        watch_id=permit.id,
                        member_id=member.id,
                        direction="out",
                        method="gps",
                        at=out,
                    )
                )
        if alert is not None:
            self.session.add(
                Alert(
                    plant_id=permit.plant_id,
                    kind="left_zone",
                    condition=f"left_zone:{permit.id}",
                    watch_id=permit.id,
                    person=LEADER,
                    state=alert.value,
                    opened_at=start + timedelta(minutes=30),
                    last_seen_at=start + timedelta(minutes=30),
                    violation=violation,
                )
            )
        if rated:
            self.session.add(
                Rating(
                    permit_id=permit.id,
                    plant_id=permit.plant_id,
                    contractor_id=contractor_id,
                    scores=SCORES,
                    weights=WEIGHTS,
                    rated_by=self.ehs_id,
                    rated_at=start + timedelta(hours=hours + 1),
                    appeal_until=start + timedelta(days=7),
                )
            )
        await self.session.flush()
        return permit.id


async def signed_in(settings: Any, slug: str, email: str, password: str) -> AsyncTestClient[Any]:
    """A browser of its own: each test client runs its app on its own event loop."""
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


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stage(
    postgres: PostgresDatabase, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stage]:
    directory = tmp_path_factory.mktemp("hq-pages")
    settings = settings_for(
        postgres.app_url,
        directory / "var",
        migration_database_url=postgres.owner_url,
        login_rate_per_minute=10_000,
    )
    database = Database.from_settings(settings)
    factory = TenantFactory()
    clients: dict[str, AsyncTestClient[Any]] = {}
    try:
        world = await PermitWorld.create(database, settings, factory, induct=False)
        y = await world.onboarding.register(world.tenant)
        other = await factory.create(database, plants=("P1",), users=((Role.HQ_ANALYST, None),))
        logins = {
            "hq": (Role.HQ_ANALYST, None),
            "ehs_p1": (Role.EHS_OFFICER, "P1"),
            "guardian": (Role.GUARDIAN, "P1"),
        }
        passwords: dict[str, tuple[str, str]] = {}
        async with world.session() as session:
            for name, (role, plant) in logins.items():
                email = f"{name}@{world.tenant.slug}.example"
                user = await tenant_services.create_user(
                    session, email=email, name=name, password="hq-pages-pass-1"
                )
                await tenant_services.grant_role(
                    session,
                    user_id=user.id,
                    role=role,
                    plant_id=world.tenant.plants[plant] if plant else None,
                )
                passwords[name] = (email, "hq-pages-pass-1")
        x_id, y_id = world.company.contractor_id, y.contractor_id
        async with world.session() as session:
            build = Builder(world, session, world.ehs.user_id)
            permits = {
                # P1: five counted in the last 90 days, three finished, one a full loop.
                "full": await build.permit(
                    "P1",
                    x_id,
                    WorkType.HEIGHT,
                    group_day(10),
                    PermitState.CLOSED,
                    checked_in=True,
                    rated=True,
                ),
                "unrated": await build.permit(
                    "P1",
                    x_id,
                    WorkType.HEIGHT,
                    group_day(11),
                    PermitState.CLOSED,
                    checked_in=True,
                    alert=AlertState.RESOLVED,
                ),
                "late": await build.permit(
                    "P1",
                    y_id,
                    WorkType.HOT_WORK,
                    group_day(12),
                    PermitState.EXPIRED,
                    approved_first=False,
                    started=False,
                ),
                "waiting": await build.permit(
                    "P1", x_id, WorkType.HEIGHT, group_day(5), PermitState.SUBMITTED
                ),
                # Live now, and past its end an hour ago.
                "live": await build.permit(
                    "P1",
                    x_id,
                    WorkType.EXCAVATION,
                    group_day(0),
                    PermitState.ACTIVE,
                    start=utcnow() - timedelta(hours=2),
                    hours=1,
                    checked_in=True,
                    alert=AlertState.OPEN,
                ),
                # Half a year back: only a period that reaches it counts it.
                "old": await build.permit(
                    "P1",
                    x_id,
                    WorkType.HEIGHT,
                    group_day(200),
                    PermitState.CLOSED,
                    checked_in=True,
                    rated=True,
                ),
                # P2: one full loop of the second company, with a confirmed violation.
                "p2": await build.permit(
                    "P2",
                    y_id,
                    WorkType.HEIGHT,
                    group_day(15),
                    PermitState.CLOSED,
                    checked_in=True,
                    rated=True,
                    alert=AlertState.RESOLVED,
                    violation=True,
                ),
                # Drafts are not applications yet.
                "draft": await build.permit(
                    "P2", y_id, WorkType.HEIGHT, group_day(15), PermitState.DRAFT, started=False
                ),
            }
            session.add(
                Review(
                    contractor_id=y_id,
                    period_kind="quarter",
                    period_start=group_day(400),
                    period_end=group_day(300),
                    state="approved",
                    jobs=3,
                    score=91.0,
                    grade="A",
                    violations=0,
                    critical_violations=0,
                    proposed_decision="keep",
                    decision="keep",
                    figures={},
                    created_by=world.ehs.user_id,
                    approved_by=world.ehs.user_id,
                    approved_at=utcnow() - timedelta(days=290),
                )
            )
        for name, (email, password) in passwords.items():
            clients[name] = await signed_in(settings, world.tenant.slug, email, password)
        other_user = other.user(Role.HQ_ANALYST)
        clients["other"] = await signed_in(
            settings, other.slug, other_user.email, other_user.password
        )
        yield Stage(world, y, other, clients, permits)
    finally:
        for client in clients.values():
            await client.__aexit__(None, None, None)
        await database.dispose()


# --- the comparison -------------------------------------------------------------------------


def _start_end(days: int = 90) -> tuple[date, date]:
    today = group_day(0)
    return today - timedelta(days=days - 1), today + timedelta(days=1)


async def test_the_comparison_shows_what_the_reports_compute(stage: Stage) -> None:
    page = await stage.page("hq", f"/t/{stage.slug}/hq")
    start, end = _start_end()
    expected = await stage.reports(
        lambda session: reports.compare_plants(session, start, end, None)
    )
    rows = {row["plant"].text: row for row in page.rows["plants"]}
    assert set(rows) == {f"{plant.code} {plant.name}" for plant in expected}
    for plant in expected:
        row = rows[f"{plant.code} {plant.name}"]
        for key, value in plant.figures.as_row().items():
            assert row[key].text == shown(value), (plant.code, key)
        for grade, count in plant.grades.items():
            assert row[f"grade_{grade}"].text == str(count)
    p1, p2 = rows["P1 P1 厂区"], rows["P2 P2 厂区"]
    # The figures the permits were made to give.
    assert (p1["permits"].text, p1["finished"].text, p1["full_loop"].text) == ("5", "3", "1")
    assert p1["compliance_rate"].text == "33.3"
    # Submitted six hours before the start, approved two hours before (one hour after for the
    # late one); the permit still waiting has no approval time.
    assert p1["approval_mean_minutes"].text == shown((240 + 240 + 420 + 240) / 4)
    assert (p2["permits"].text, p2["compliance_rate"].text, p2["violations"].text) == (
        "1",
        "100.0",
        "1",
    )
    assert p1["grade_A"].text == "1" and p2["grade_A"].text == "1"
    assert p1["phone_share"].text == "100.0"

    # The four charts, the compliance bars carrying the table's rates.
    bars = [value for kind, value in page.marks if kind == "chart-bar"]
    assert sum(1 for kind, _ in page.marks if kind == "chart-point") > 0
    assert 33.3 in [round(value, 1) for value in bars] and 100.0 in bars
    html = (await stage.get("hq", f"/t/{stage.slug}/hq")).text
    assert html.count("<svg") >= 4 and 'role="img"' in html
    # Export links carry the table and the page's own query.
    quarter = await stage.get("hq", f"/t/{stage.slug}/hq?period=quarter")
    assert quarter.status_code == 200
    assert (
        f"/t/{stage.slug}/hq/export?period=quarter&amp;table=plants&amp;format=csv" in quarter.text
    )
    assert (
        f"/t/{stage.slug}/hq/export?period=quarter&amp;table=trend&amp;format=xlsx" in quarter.text
    )


async def test_each_figure_drills_down_to_exactly_the_permits_it_counts(stage: Stage) -> None:
    page = await stage.page("hq", f"/t/{stage.slug}/hq")
    p1 = next(row for row in page.rows["plants"] if row["plant"].text.startswith("P1 "))
    link = path_of(p1["compliance_rate"].href or "")
    assert parse_qs(urlsplit(link).query)["plant_id"] == [str(stage.plant("P1"))]
    drill = await stage.page("hq", link)
    listed = permit_ids(drill)
    assert listed == {
        stage.permits[name] for name in ("full", "unrated", "late", "waiting", "live")
    }
    assert len(listed) == int(p1["permits"].text)
    finished = [row for row in drill.row_attrs["permits"] if row["data-finished"] == "true"]
    assert len(finished) == int(p1["finished"].text)
    full = [
        row
        for row in drill.rows["permits"]
        if row["full_loop"].text == "Yes" or row["full_loop"].text == "是"
    ]
    assert len(full) == int(p1["full_loop"].text)
    # The gaps say why a finished permit is no full loop.
    by_id = {
        uuid.UUID(path_of(row["number"].href or "").rsplit("/", 1)[1]): row
        for row in drill.rows["permits"]
    }
    assert by_id[stage.permits["full"]]["gaps"].text == "—"
    assert by_id[stage.permits["unrated"]]["gaps"].text != "—"
    # The permit's own page opens from the list.
    permit_page = await stage.get("hq", path_of(by_id[stage.permits["full"]]["number"].href or ""))
    assert permit_page.status_code == 200
    assert "P1-HQ-0001" in permit_page.text

    # Every figure cell of the row goes to the same permits.
    for key in ("permits", "finished", "full_loop", "approval_p90_minutes", "violations"):
        assert path_of(p1[key].href or "") == link


async def test_a_plant_breaks_down_by_work_type_and_company(stage: Stage) -> None:
    plant_id = stage.plant("P1")
    page = await stage.page("hq", f"/t/{stage.slug}/hq/plants/{plant_id}")
    start, end = _start_end()
    by_type = await stage.reports(
        lambda session: reports.breakdown(session, start, end, "work_type", plant_ids=[plant_id])
    )
    by_company = await stage.reports(
        lambda session: reports.breakdown(session, start, end, "contractor", plant_ids=[plant_id])
    )
    types = {path_of(row["work_type_label"].href or ""): row for row in page.rows["work_types"]}
    assert len(types) == len(by_type)
    for work_type, figures in by_type.items():
        row = next(
            row
            for link, row in types.items()
            if parse_qs(urlsplit(link).query).get("work_type", [""]) == [work_type]
        )
        assert row["permits"].text == str(figures.measures.permits)
        assert row["compliance_rate"].text == shown(figures.as_row()["compliance_rate"])
        drill = await stage.page("hq", path_of(row["permits"].href or ""))
        assert len(permit_ids(drill)) == figures.measures.permits
    height = next(figures for work_type, figures in by_type.items() if work_type == "height")
    assert height.measures.permits == 3

    companies = {row["contractor"].text: row for row in page.rows["contractors"]}
    assert len(companies) == len(by_company)
    y_name = next(
        name
        for name, row in companies.items()
        if str(stage.y.contractor_id) in (row["contractor"].href or "")
    )
    y_row = companies[y_name]
    assert y_row["permits"].text == "1" and y_row["grade"].text == "A"
    drill = await stage.page("hq", path_of(y_row["finished"].href or ""))
    assert permit_ids(drill) == {stage.permits["late"]}
    assert [row["data-finished"] for row in drill.row_attrs["permits"]] == ["true"]
    # The plant's weekly trend is drawn.
    assert (
        'data-testid="chart-trend"'
        in (await stage.get("hq", f"/t/{stage.slug}/hq/plants/{plant_id}")).text
    )
    assert sum(1 for kind, _ in page.marks if kind == "chart-point") > 0


async def test_a_company_across_the_plants(stage: Stage) -> None:
    company = stage.y.contractor_id
    page = await stage.page("hq", f"/t/{stage.slug}/hq/contractors/{company}")
    rows = {row["plant"].text: row for row in page.rows["contractor_plants"]}
    assert set(rows) == {"P1 P1 厂区", "P2 P2 厂区"}
    start, end = _start_end()
    expected = await stage.reports(
        lambda session: reports.breakdown(session, start, end, "plant", contractor_id=company)
    )
    for row in rows.values():
        plant_id = uuid.UUID(
            parse_qs(urlsplit(path_of(row["permits"].href or "")).query)["plant_id"][0]
        )
        figures = expected[plant_id].as_row()
        assert row["compliance_rate"].text == shown(figures["compliance_rate"])
        drill = await stage.page("hq", path_of(row["permits"].href or ""))
        assert len(permit_ids(drill)) == figures["permits"]
    p2 = next(row for row in rows.values() if row["plant"].text.endswith("P2 厂区"))
    assert (p2["permits"].text, p2["compliance_rate"].text) == ("1", "100.0")
    assert (
        'data-testid="grade"'
        in (await stage.get("hq", f"/t/{stage.slug}/hq/contractors/{company}")).text
    )


async def test_a_period_counts_its_own_days(stage: Stage) -> None:
    first, last = group_day(210), group_day(0)
    page = await stage.page(
        "hq", f"/t/{stage.slug}/hq?from={first.isoformat()}&to={last.isoformat()}"
    )
    p1 = next(row for row in page.rows["plants"] if row["plant"].text.startswith("P1 "))
    assert (p1["permits"].text, p1["full_loop"].text) == ("6", "2")
    drill = await stage.page("hq", path_of(p1["full_loop"].href or ""))
    assert stage.permits["old"] in permit_ids(drill)
    # A week of the trend drills down to that week's days only.
    trend = next(
        row
        for row in page.rows["trend"]
        if row["plant"].text.startswith("P1 ")
        and row["permits"].text == "1"
        and parse_qs(urlsplit(path_of(row["permits"].href or "")).query)["from"][0]
        <= group_day(200).isoformat()
        <= parse_qs(urlsplit(path_of(row["permits"].href or "")).query)["to"][0]
    )
    week = await stage.page("hq", path_of(trend["permits"].href or ""))
    assert permit_ids(week) == {stage.permits["old"]}


@pytest.mark.parametrize(
    ("query", "field", "rule"),
    [
        ("period=decade", "period", "enum"),
        ("from=2026-13-01&to=2026-12-01", "from", "date"),
        ("from=2026-06-01&to=2026-05-01", "to", "order"),
        ("from=2020-01-01&to=2026-01-01", "to", "max_range"),
        ("to=2026-01-01", "from", "required"),
    ],
)
async def test_a_bad_period_is_refused_naming_the_field(
    stage: Stage, query: str, field: str, rule: str
) -> None:
    response = await stage.clients["hq"].get(
        f"/t/{stage.slug}/hq?{query}", headers={"Accept": "application/json"}
    )
    assert response.status_code == 422, response.text
    problem = response.json()["errors"][0]
    assert (problem["field"], problem["rule"]) == (field, rule)


async def test_bad_drill_down_filters_are_refused(stage: Stage) -> None:
    for query, field in (
        ("plant_id=nope", "plant_id"),
        ("contractor_id=x", "contractor_id"),
        ("work_type=flying", "work_type"),
    ):
        response = await stage.clients["hq"].get(
            f"/t/{stage.slug}/hq/permits?{query}", headers={"Accept": "application/json"}
        )
        assert response.status_code == 422, (query, response.text)
        assert response.json()["errors"][0]["field"] == field
    missing = await stage.get("hq", f"/t/{stage.slug}/hq/permits?contractor_id={uuid.uuid4()}")
    assert missing.status_code == 404


# --- who sees what ----------------------------------------------------------------------------


async def test_a_plant_officer_sees_only_the_plants_of_the_grant(stage: Stage) -> None:
    p1, p2 = stage.plant("P1"), stage.plant("P2")
    page = await stage.page("ehs_p1", f"/t/{stage.slug}/hq")
    assert [row["plant"].text for row in page.rows["plants"]] == ["P1 P1 厂区"]
    assert str(p2) not in (await stage.get("ehs_p1", f"/t/{stage.slug}/hq")).text
    for path in (
        f"/t/{stage.slug}/hq/plants/{p2}",
        f"/t/{stage.slug}/hq/permits?plant_id={p2}",
        f"/t/{stage.slug}/board/{p2}",
    ):
        assert (await stage.get("ehs_p1", path)).status_code == 404, path
    assert (await stage.get("ehs_p1", f"/t/{stage.slug}/hq/plants/{p1}")).status_code == 200
    # Across the plants, the company's figures are those of the officer's plant only.
    company = await stage.page("ehs_p1", f"/t/{stage.slug}/hq/contractors/{stage.y.contractor_id}")
    assert [row["plant"].text for row in company.rows["contractor_plants"]] == ["P1 P1 厂区"]
    everything = await stage.page("ehs_p1", f"/t/{stage.slug}/hq/permits")
    assert stage.permits["p2"] not in permit_ids(everything)
    assert stage.permits["full"] in permit_ids(everything)


async def test_other_roles_and_other_tenants_find_nothing(stage: Stage) -> None:
    p1 = stage.plant("P1")
    paths = (
        f"/t/{stage.slug}/hq",
        f"/t/{stage.slug}/hq/plants/{p1}",
        f"/t/{stage.slug}/hq/permits",
        f"/t/{stage.slug}/hq/contractors/{stage.y.contractor_id}",
        f"/t/{stage.slug}/board/{p1}",
    )
    for path in paths:
        assert (await stage.get("guardian", path)).status_code == 404, path
    other = stage.other.slug
    for path in (
        f"/t/{other}/hq/plants/{p1}",
        f"/t/{other}/board/{p1}",
        f"/t/{other}/hq/contractors/{stage.y.contractor_id}",
        f"/t/{other}/hq/permits?plant_id={p1}",
        f"/t/{other}/hq/plants/not-a-uuid",
    ):
        assert (await stage.get("other", path)).status_code == 404, path
    theirs = await stage.get("other", f"/t/{other}/hq")
    assert theirs.status_code == 200 and str(p1) not in theirs.text
    assert (
        str(stage.permits["full"]) not in (await stage.get("other", f"/t/{other}/hq/permits")).text
    )
    # Under another tenant's address the caller is nobody there.
    away = await stage.get("other", f"/t/{stage.slug}/hq")
    assert (away.status_code, away.headers["location"]) == (
        302,
        f"/t/{stage.slug}/login?" + urlencode({"next": f"/t/{stage.slug}/hq"}),
    )


# --- the board --------------------------------------------------------------------------------


async def test_the_board_shows_today(stage: Stage) -> None:
    p1 = stage.plant("P1")
    response = await stage.get("hq", f"/t/{stage.slug}/board/{p1}")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    html = response.text
    assert '<meta http-equiv="refresh" content="15">' in html

    def number(testid: str) -> str:
        found = re.search(rf'data-testid="{testid}">([^<]*)<', html)
        assert found is not None, testid
        return found.group(1)

    board = await stage.reports(lambda session: reports.plant_board(session, p1, utcnow()))
    assert number("board-permits") == str(sum(board.permits_by_state.values())) == "1"
    assert number("board-people") == str(board.people_on_site) == "1"
    assert number("board-alerts") == str(len(board.open_alerts)) == "1"
    assert number("board-overtime") == str(len(board.overtime)) == "1"
    assert f"/t/{stage.slug}/permits/{stage.permits['live']}" in html
    assert "P1-HQ-0005" in html
    # The other plant's board has nothing today.
    quiet = await stage.get("hq", f"/t/{stage.slug}/board/{stage.plant('P2')}")
    assert re.search(r'data-testid="board-permits">0<', quiet.text)
