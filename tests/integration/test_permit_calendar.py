"""The tenant's permit calendar over HTTP and through the services, on PostgreSQL as the
application role: the national holidays and make-up working days listed with the tenant's own;
a site holiday raising hot work one level (GB 30871 §5.1.1) and its removal lowering it again;
a working day on a national public holiday refused (a tenant tightens, never loosens); who may
read and change it; and one tenant's days never reaching another's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from infra.db import Database
from infra.errors import NotFound
from onboarding.catalogue import WorkType
from permits import gates, services
from permits.holidays import HolidayCalendar
from permits.models import CalendarDay
from portal.app import create_app
from portal.guards import BILLING_EXEMPT
from tenants.models import Plant, Role
from tests.conftest import PostgresDatabase, settings_for
from tests.factories import SeededTenant, TenantFactory, audit_actions, issue_token
from tests.permit_factories import PLANT_TZ, PermitWorld, window, working_day

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.postgres]

CALENDAR = "/api/v1/permit-calendar"


def _wednesday(after: date, *, skip: int = 0) -> date:
    """A Wednesday after ``after`` that the national calendar leaves an ordinary working day
    (``skip`` of them passed over first, so tests do not share a day)."""
    calendar = HolidayCalendar()
    day = working_day(after)
    while True:
        if day.weekday() == 2 and not calendar.is_rest_day(day):
            if skip == 0:
                return day
            skip -= 1
        day += timedelta(days=1)


@dataclasses.dataclass
class Stage:
    client: AsyncTestClient[Any]
    database: Database
    world: PermitWorld
    b: SeededTenant
    tokens: dict[str, dict[str, str]]

    async def put(self, day: date | str, body: dict[str, Any], who: str = "admin") -> Any:
        return await self.client.put(f"{CALENDAR}/{day}", json=body, headers=self.tokens[who])

    async def delete(self, day: date | str, who: str = "admin") -> Any:
        return await self.client.delete(f"{CALENDAR}/{day}", headers=self.tokens[who])

    async def year(self, year: int, who: str = "ehs") -> list[dict[str, Any]]:
        answer = await self.client.get(CALENDAR, params={"year": year}, headers=self.tokens[who])
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def hot_work_level(self, day: date) -> str | None:
        """The level of a hot work permit asked for as level 2, drafted for 09:00–15:00 on
        ``day``, through the services as the company's administrator."""
        at = window(day)
        data = self.world.permit_in(WorkType.HOT_WORK, at, requested_level="level2")
        permit = await self.world.draft(data, now=at.now)
        return permit.level

    async def graded(self, day: date) -> str | None:
        """The same, asked of ``gates.grade`` with the tenant's calendar directly."""
        at = window(day)
        async with self.world.session() as session:
            plant = await session.get_one(Plant, self.world.plant_id)
            grading = gates.grade(
                WorkType.HOT_WORK,
                {"requested_level": "level2", "method": "electric_welding"},
                at.start,
                at.end,
                timezone=plant.timezone,
                calendar=await gates.tenant_calendar(session),
            )
        return grading.level


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stage(
    postgres: PostgresDatabase, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stage]:
    directory = tmp_path_factory.mktemp("permit-calendar")
    settings = settings_for(
        postgres.app_url,
        directory / "var",
        migration_database_url=postgres.owner_url,
        login_rate_per_minute=10_000,
    )
    database = Database.from_settings(settings)
    factory = TenantFactory()
    try:
        world = await PermitWorld.create(database, settings, factory)
        b = await factory.create(
            database, plants=("P1",), users=((Role.TENANT_ADMIN, None), (Role.EHS_OFFICER, None))
        )
        hosts = world.hosts
        pairs = {
            "admin": hosts[Role.TENANT_ADMIN].user_id,
            "ehs": hosts[Role.EHS_OFFICER].user_id,
            "guardian": hosts[Role.GUARDIAN].user_id,
            "x": world.contractor_admin.user_id,
        }
        tokens = {
            name: {"Authorization": f"Bearer {await issue_token(database, world.tenant.id, user)}"}
            for name, user in pairs.items()
        }
        for name, role in (("b_admin", Role.TENANT_ADMIN), ("b_ehs", Role.EHS_OFFICER)):
            token = await issue_token(database, b.id, b.user(role).id)
            tokens[name] = {"Authorization": f"Bearer {token}"}
        async with AsyncTestClient(app=create_app(settings)) as client:
            yield Stage(client, database, world, b, tokens)
    finally:
        await database.dispose()


def _entry(days: list[dict[str, Any]], day: date | str, kind: str) -> dict[str, Any] | None:
    return next((d for d in days if d["day"] == str(day) and d["kind"] == kind), None)


async def test_the_list_shows_national_holidays_and_make_up_working_days(stage: Stage) -> None:
    days = await stage.year(2026)
    assert _entry(days, "2026-10-01", "national_holiday") == {
        "day": "2026-10-01",
        "kind": "national_holiday",
        "note": None,
        "rest_day": True,
    }
    # Saturday 10 October 2026 is worked to make up for the National Day week.
    assert _entry(days, "2026-10-10", "national_workday") == {
        "day": "2026-10-10",
        "kind": "national_workday",
        "note": None,
        "rest_day": False,
    }
    assert all(d["day"].startswith("2026-") for d in days)
    assert [d["day"] for d in days] == sorted(d["day"] for d in days)
    # Any host user reads it; 2027 has its statutory holidays.
    assert _entry(await stage.year(2027, who="guardian"), "2027-10-01", "national_holiday")


async def test_a_tenant_holiday_raises_hot_work_and_removing_it_restores_the_level(
    stage: Stage,
) -> None:
    wednesday = _wednesday(datetime.now(PLANT_TZ).date() + timedelta(days=2))
    assert await stage.hot_work_level(wednesday) == "level2"
    assert await stage.graded(wednesday) == "level2"

    saved = await stage.put(wednesday, {"kind": "holiday", "note": "厂庆日"})
    assert saved.status_code == 200, saved.text
    assert saved.json() == {
        "day": str(wednesday),
        "kind": "tenant_holiday",
        "note": "厂庆日",
        "rest_day": True,
    }
    listed = _entry(await stage.year(wednesday.year), wednesday, "tenant_holiday")
    assert listed is not None and listed["note"] == "厂庆日" and listed["rest_day"] is True
    # §5.1.1: hot work on a holiday is managed one level up.
    assert await stage.hot_work_level(wednesday) == "level1"
    assert await stage.graded(wednesday) == "level1"

    # Saving the day again replaces it (one row per day).
    again = await stage.put(wednesday, {"kind": "holiday", "note": "厂庆日（调整）"})
    assert again.status_code == 200, again.text
    async with stage.world.session() as session:
        rows = (
            await session.execute(select(CalendarDay.note).where(CalendarDay.day == wednesday))
        ).all()
    assert [row.note for row in rows] == ["厂庆日（调整）"]

    removed = await stage.delete(wednesday)
    assert removed.status_code == 204, removed.text
    assert _entry(await stage.year(wednesday.year), wednesday, "tenant_holiday") is None
    assert await stage.hot_work_level(wednesday) == "level2"
    assert await stage.graded(wednesday) == "level2"
    missing = await stage.delete(wednesday)
    assert missing.status_code == 404, missing.text

    actions = await audit_actions(stage.database, stage.world.tenant.id, "permit.calendar_")
    assert actions[-3:] == [
        "permit.calendar_day_set",
        "permit.calendar_day_set",
        "permit.calendar_day_deleted",
    ]


async def test_a_working_day_on_a_national_holiday_is_refused_with_its_clause(
    stage: Stage,
) -> None:
    refused = await stage.put("2026-10-01", {"kind": "workday", "note": "检修"})
    assert refused.status_code == 422, refused.text
    problem = refused.json()["errors"][0]
    assert (problem["field"], problem["rule"], problem["clause"], problem["subject"]) == (
        "kind",
        "calendar.holiday_kept",
        "§5.1.1",
        "2026-10-01",
    )
    assert _entry(await stage.year(2026), "2026-10-01", "tenant_workday") is None
    async with stage.world.session() as session:
        assert (await gates.tenant_calendar(session)).is_holiday(date(2026, 10, 1))

    # Tightening is allowed: a holiday on a national one, a make-up working day made a holiday.
    doubled = await stage.put("2026-10-02", {"kind": "holiday"})
    assert doubled.status_code == 200, doubled.text
    made_up = await stage.put("2026-10-10", {"kind": "holiday", "note": "不调休"})
    assert made_up.status_code == 200, made_up.text
    assert made_up.json()["rest_day"] is True
    days = await stage.year(2026)
    assert _entry(days, "2026-10-10", "national_workday")["rest_day"] is True  # type: ignore[index]
    # A weekend worked through is a working day.
    saturday = date(2026, 11, 7)
    worked = await stage.put(saturday, {"kind": "workday", "note": "大修连续作业"})
    assert worked.status_code == 200, worked.text
    assert worked.json()["rest_day"] is False
    for day in ("2026-10-02", "2026-10-10", saturday):
        assert (await stage.delete(day)).status_code == 204

    # Bad input names the field and the rule.
    bad_day = await stage.put("2026-13-01", {"kind": "holiday"})
    assert bad_day.status_code == 422 and bad_day.json()["errors"][0]["rule"] == "date"
    bad_kind = await stage.put("2026-12-02", {"kind": "rest"})
    assert bad_kind.status_code == 400, bad_kind.text
    too_long = await stage.put("2026-12-02", {"kind": "holiday", "note": "x" * 201})
    assert too_long.status_code == 400, too_long.text
    bad_year = await stage.client.get(CALENDAR, params={"year": 1999}, headers=stage.tokens["ehs"])
    assert bad_year.status_code == 400, bad_year.text


async def test_only_tenant_administrators_change_it_and_only_host_users_read_it(
    stage: Stage,
) -> None:
    day = _wednesday(datetime.now(PLANT_TZ).date() + timedelta(days=2), skip=1)
    assert (await stage.put(day, {"kind": "holiday"}, who="ehs")).status_code == 403
    assert (await stage.delete(day, who="ehs")).status_code == 403
    assert (await stage.put(day, {"kind": "holiday"}, who="x")).status_code == 403
    listed = await stage.client.get(CALENDAR, params={"year": 2026}, headers=stage.tokens["x"])
    assert listed.status_code == 403
    anonymous = await stage.client.get(CALENDAR, params={"year": 2026})
    assert anonymous.status_code == 401

    # The services refuse too, whatever calls them.
    async with stage.world.session() as session:
        with pytest.raises(NotFound):
            await services.set_calendar_day(session, stage.world.ehs, day, "holiday")
        with pytest.raises(NotFound):
            await services.delete_calendar_day(session, stage.world.ehs, day)
    async with stage.world.session() as session:
        assert await session.scalar(select(CalendarDay).where(CalendarDay.day == day)) is None

    # Changing the calendar is not a safety action: it waits for a payment like other writes.
    handlers = [
        handler
        for route in stage.client.app.routes
        if route.path.startswith(CALENDAR)
        for handler in getattr(route, "route_handlers", [])
    ]
    assert {method for h in handlers for method in h.http_methods} >= {"GET", "PUT", "DELETE"}
    assert not any(h.opt.get(BILLING_EXEMPT) for h in handlers)


async def test_one_tenants_days_never_reach_another(stage: Stage) -> None:
    day = _wednesday(datetime.now(PLANT_TZ).date() + timedelta(days=2), skip=2)
    theirs = await stage.put(day, {"kind": "holiday", "note": "B 厂庆"}, who="b_admin")
    assert theirs.status_code == 200, theirs.text
    assert _entry(await stage.year(day.year, who="b_ehs"), day, "tenant_holiday")

    assert _entry(await stage.year(day.year), day, "tenant_holiday") is None
    assert await stage.hot_work_level(day) == "level2"
    # Neither can remove the other's day: it is not there for them.
    assert (await stage.delete(day)).status_code == 404
    ours = await stage.put(day, {"kind": "holiday", "note": "A 检修"})
    assert ours.status_code == 200, ours.text
    assert (await stage.delete(day, who="b_admin")).status_code == 204
    assert (await stage.delete(day, who="b_admin")).status_code == 404
    mine = _entry(await stage.year(day.year), day, "tenant_holiday")
    assert mine is not None and mine["note"] == "A 检修"
    assert (await stage.delete(day)).status_code == 204
    assert "permit.calendar_day_set" in await audit_actions(stage.database, stage.b.id)
