"""Zones and work permits over HTTP on PostgreSQL as the application role: a hot work permit of
level 1 from the application through every approval step (each approver with their own token)
to work on site and acceptance; gate failures naming rule, clause and subject; bad input; who
may see and do what; the list's filters and pages; the tenant's approval chains; the API's
description.

The journey runs on the machine's clock (HTTP has no ``now``), so plant P1's time zone is set
where it is mid-morning now and its local day is made a working day: hot work stays level 1
whatever the hour and weekday (a national holiday would still raise it, as the standard says).
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient
from sqlalchemy import update

from geofence import services as zone_services
from geofence.schemas import CircleIn, ZoneIn
from infra.db import Database
from infra.settings import Settings
from onboarding.catalogue import WorkType
from permits.models import CalendarDay, Permit
from portal.app import create_app
from portal.guards import BILLING_EXEMPT
from tenants import services as tenant_services
from tenants.models import Plant, Role
from tests.conftest import PostgresDatabase, settings_for
from tests.factories import SeededTenant, TenantFactory, audit_actions, issue_token
from tests.onboarding_factories import Company
from tests.permit_factories import CREW_MATE, LEADER, SHORT_CERT, PermitWorld, window
from tests.training_factories import DEVICE, signature_in
from training import briefings

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.postgres]

API = "/api/v1"
PERMITS = f"{API}/permits"
ZONES = f"{API}/zones"
CHAINS = f"{API}/permit-chains"
# Who decides each role's step at P1 in this test (chains.HOLDERS; the work leader's step is
# the contractor's).
DECIDERS = {
    "work_leader": "x",
    "local_unit": "supervisor",
    "specialist_department": "supervisor",
    "safety_department": "ehs",
    "leader_in_charge": "manager",
    "plant_manager": "manager",
    "shift_leader": "supervisor",
}
OTHER_WORKER = "孙七"


def _mid_morning_zone(now: datetime) -> str:
    """A fixed-offset zone where ``now`` is about 10:00."""
    offset = ((10 - now.hour + 12) % 24) - 12
    if offset == 0:
        return "UTC"
    # The Etc zones' signs are POSIX's: Etc/GMT-8 is UTC+8.
    return f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


@dataclasses.dataclass
class Stage:
    client: AsyncTestClient[Any]
    database: Database
    settings: Settings
    world: PermitWorld
    y: Company
    b: SeededTenant
    tokens: dict[str, dict[str, str]]
    zone_name: str

    @property
    def p1(self) -> str:
        return str(self.world.plant_id)

    @property
    def p2(self) -> str:
        return str(self.world.tenant.plants["P2"])

    def body(self, work_type: WorkType = WorkType.HOT_WORK, **changes: Any) -> dict[str, Any]:
        """A valid application as JSON, working now: from 5 minutes ahead for 3 hours."""
        now = datetime.now(UTC)
        at = window(now.date())
        at = dataclasses.replace(at, start=now + timedelta(minutes=5), end=now + timedelta(hours=3))
        details = {"requested_level": "level1"} if work_type is WorkType.HOT_WORK else {}
        data = msgspec.to_builtins(self.world.permit_in(work_type, at, **details))
        data.update(changes)
        return data

    async def created(self, body: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = await self.client.post(PERMITS, json=body or self.body(), headers=self.tokens["x"])
        assert answer.status_code == 201, answer.text
        return answer.json()

    async def get(self, permit_id: str, who: str = "ehs") -> dict[str, Any]:
        answer = await self.client.get(f"{PERMITS}/{permit_id}", headers=self.tokens[who])
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def act(
        self, permit_id: str, action: str, who: str, body: dict[str, Any] | None = None
    ) -> Any:
        return await self.client.post(
            f"{PERMITS}/{permit_id}/{action}", json=body, headers=self.tokens[who]
        )


def _problem(response: Any) -> tuple[int, str, str]:
    body = response.json()
    assert body["status_code"] == response.status_code
    problem = body["errors"][0]
    return response.status_code, problem["field"], problem["rule"]


def _rules(response: Any) -> set[str]:
    return {problem["rule"] for problem in response.json()["errors"]}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stage(
    postgres: PostgresDatabase, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stage]:
    directory = tmp_path_factory.mktemp("permits-api")
    settings = settings_for(
        postgres.app_url,
        directory / "var",
        migration_database_url=postgres.owner_url,
        login_rate_per_minute=10_000,
    )
    database = Database.from_settings(settings)
    factory = TenantFactory()
    try:
        world = await PermitWorld.create(database, settings, factory, induct=False)
        zone = _mid_morning_zone(datetime.now(UTC))
        async with world.session() as session:
            await session.execute(
                update(Plant).where(Plant.id == world.plant_id).values(timezone=zone)
            )
            local_today = datetime.now(ZoneInfo(zone)).date()
            session.add(CalendarDay(day=local_today, kind="workday", note="test"))
            session.add(
                CalendarDay(day=local_today + timedelta(days=1), kind="workday", note="test")
            )
            ehs_p2 = await tenant_services.create_user(
                session,
                email=f"ehs-p2@{world.tenant.slug}.example",
                name="二厂安全员",
                password=None,
            )
            await tenant_services.grant_role(
                session,
                user_id=ehs_p2.id,
                role=Role.EHS_OFFICER,
                plant_id=world.tenant.plants["P2"],
            )
        await world.induct(LEADER, CREW_MATE, SHORT_CERT)
        y = await world.onboarding.register(world.tenant)
        await world.onboarding.add_worker(y, OTHER_WORKER)
        b = await factory.create(database, plants=("P1",), users=((Role.EHS_OFFICER, None),))
        hosts = world.hosts
        pairs = {
            "admin": hosts[Role.TENANT_ADMIN].user_id,
            "ehs": hosts[Role.EHS_OFFICER].user_id,
            "supervisor": hosts[Role.UNIT_SUPERVISOR].user_id,
            "manager": hosts[Role.PLANT_MANAGER].user_id,
            "guardian": hosts[Role.GUARDIAN].user_id,
            "ehs_p2": ehs_p2.id,
            "x": world.contractor_admin.user_id,
            "leader": world.leader_login.user_id,
            "y": y.admin.user_id,
        }
        tokens = {
            name: {"Authorization": f"Bearer {await issue_token(database, world.tenant.id, user)}"}
            for name, user in pairs.items()
        }
        b_token = await issue_token(database, b.id, b.user(Role.EHS_OFFICER).id)
        tokens["b_ehs"] = {"Authorization": f"Bearer {b_token}"}
        async with AsyncTestClient(app=create_app(settings)) as client:
            yield Stage(client, database, settings, world, y, b, tokens, zone)
    finally:
        await database.dispose()


async def _brief(stage: Stage, permit_id: str, *, crew: tuple[str, ...]) -> None:
    """The unit supervisor briefs the crew (training.briefings) and signs; ``crew`` sign on
    his tablet."""
    world = stage.world
    if not await _has_briefing(stage, permit_id):
        await world.brief(uuid.UUID(permit_id), crew_signs=False)
    async with world.session() as session:
        briefing = await briefings.live_briefing(session, uuid.UUID(permit_id))
        assert briefing is not None
    for name in crew:
        async with world.session() as session:
            await briefings.sign_as_crew(
                session,
                world.storage,
                world.supervisor,
                briefing.id,
                world.worker(name),
                signature_in(name),
                DEVICE,
            )


async def _has_briefing(stage: Stage, permit_id: str) -> bool:
    async with stage.world.session() as session:
        return await briefings.live_briefing(session, uuid.UUID(permit_id)) is not None


# --- the journey -----------------------------------------------------------------------------


async def test_hot_work_level_1_from_application_to_acceptance(stage: Stage) -> None:
    client, tokens = stage.client, stage.tokens

    # EHS draws a zone; everyone of the tenant who works at P1 sees the plant's zones.
    centre = [121.48, 31.24]
    drawn = await client.post(
        ZONES,
        json={
            "plant_id": stage.p1,
            "name": "二号罐区动火点",
            "shape": {"type": "Circle", "center": centre, "radius_m": 30},
            "buffer_m": 5,
        },
        headers=tokens["ehs"],
    )
    assert drawn.status_code == 201, drawn.text
    zone = drawn.json()
    assert zone["geometry"] == {"type": "Point", "coordinates": centre}
    assert zone["radius_m"] == 30
    for who in ("ehs", "x", "supervisor"):
        listed = await client.get(ZONES, params={"plant_id": stage.p1}, headers=tokens[who])
        assert listed.status_code == 200, (who, listed.text)
        assert zone["id"] in {item["id"] for item in listed.json()}
    one = await client.get(f"{ZONES}/{zone['id']}", headers=tokens["x"])
    assert one.status_code == 200 and one.json()["name"] == "二号罐区动火点"

    # The company's administrator applies; the draft can still change.
    body = stage.body(zone_id=zone["id"])
    permit = await stage.created(body)
    pid = permit["id"]
    assert (permit["state"], permit["version"], permit["number"]) == ("draft", 1, None)
    assert (permit["work_type"], permit["level"]) == ("hot_work", "level1"), permit["level_reasons"]
    assert {member["name"] for member in permit["crew"]} == {LEADER, CREW_MATE}
    assert permit["planned_start"].endswith("Z") or "+00:00" in permit["planned_start"]
    assert "update" in permit["allowed_actions"] and permit["verification_url"] is None
    changed = await client.put(
        f"{PERMITS}/{pid}", json={**body, "work_content": "更换 DN100 法兰"}, headers=tokens["x"]
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["work_content"] == "更换 DN100 法兰"

    submitted = await stage.act(pid, "submit", "x")
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["state"] == "submitted"
    steps = submitted.json()["steps"]
    assert [step["role"] for step in steps] == [
        "work_leader",
        "local_unit",
        "safety_department",
        "shift_leader",
    ]
    assert [step["status"] for step in steps] == ["pending", "waiting", "waiting", "waiting"]
    assert steps[0]["due_at"] and steps[0]["label"]
    again = await client.put(f"{PERMITS}/{pid}", json=body, headers=tokens["x"])
    assert _problem(again) == (409, "state", "permit.immutable")

    # The chain, step by step, each approver with their own token, standing in the zone.
    position = {"latitude": centre[1], "longitude": centre[0], "accuracy_m": 8}
    decided: list[str] = []
    while True:
        current = await stage.get(pid)
        if current["state"] not in ("submitted", "in_approval"):
            break
        step = next(step for step in current["steps"] if step["status"] == "pending")
        decider = DECIDERS[step["role"]]
        if not decided:
            # The work leader's step is the company's: not another company's, not a host's.
            for outsider in ("y", "guardian", "ehs_p2"):
                refused = await stage.act(
                    pid, "decisions", outsider, {"decision": "approve", "position": position}
                )
                assert refused.status_code == 404, (outsider, refused.text)
        answer = await stage.act(
            pid, "decisions", decider, {"decision": "approve", "position": position}
        )
        assert answer.status_code == 200, (step["role"], answer.text)
        decided.append(decider)
    assert decided == ["x", "supervisor", "ehs", "supervisor"]
    twice = await stage.act(pid, "decisions", "supervisor", {"decision": "approve"})
    assert _problem(twice) == (409, "step", "step.pending")

    approved = await stage.get(pid)
    assert approved["state"] == "approved"
    assert re.fullmatch(r"P1-DH-\d{8}-\d{4}", approved["number"]), approved["number"]
    assert len(approved["content_hash"]) == 64
    assert all(step["status"] == "approved" for step in approved["steps"])
    assert all(step["on_site"] is True for step in approved["steps"])
    assert all(step["decided_by"] and step["minutes"] is not None for step in approved["steps"])
    assert approved["verification_url"], "an approved permit carries its QR code's link"
    token = approved["verification_url"].split("/v/", 1)[1]
    checked = await client.get(f"{API}/verify/{token}")
    assert checked.status_code == 200, checked.text
    pdf = await client.get(f"{PERMITS}/{pid}/permit.pdf", headers=tokens["x"])
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")

    # Nothing done on site yet: starting answers every missing piece, each with its clause.
    early = await stage.act(pid, "start", "leader")
    assert early.status_code == 422, early.text
    problems = early.json()["errors"]
    assert {"checklist.confirmed", "briefing.given", "gas.sample_missing"} <= _rules(early)
    briefing_problem = next(p for p in problems if p["rule"] == "briefing.given")
    assert briefing_problem["clause"] == "§4.4"
    gas_problem = next(p for p in problems if p["rule"] == "gas.sample_missing")
    assert gas_problem["clause"] == "§5.3.1c"

    # Gas analysis by the guardian: impossible readings are refused, good ones recorded.
    sample = {
        "sampled_at": datetime.now(UTC).isoformat(),
        "point": "动火点下风向 1 m",
        "readings": [
            {"gas": "oxygen", "value": 150, "unit": "percent_vol"},
            {"gas": "methane", "value": 0.05, "unit": "percent_vol"},
        ],
        "analyst": "王分析",
        "instrument": "MX6 #12",
    }
    impossible = await stage.act(pid, "gas-analyses", "guardian", sample)
    assert impossible.status_code == 422, impossible.text
    (bad_reading,) = impossible.json()["errors"]
    assert (bad_reading["rule"], bad_reading["clause"], bad_reading["subject"]) == (
        "gas.out_of_range",
        "§5.3",
        "oxygen",
    )
    sample["readings"][0]["value"] = 20.9
    analysed = await stage.act(pid, "gas-analyses", "guardian", sample)
    assert analysed.status_code == 201, analysed.text
    assert analysed.json()["passed"] is True

    # Measures confirmed on site by the guardian; one that is not on the list is refused.
    unknown = await stage.act(
        pid, "checklist/confirmations", "guardian", {"codes": ["no_such_measure"]}
    )
    assert _problem(unknown) == (422, "checklist.no_such_measure", "checklist.applies")
    codes = [item["code"] for item in approved["checklist"] if item["applies"]]
    confirmed = await stage.act(pid, "checklist/confirmations", "guardian", {"codes": codes})
    assert confirmed.status_code == 200, confirmed.text
    assert all(
        item["confirmed_by"] and item["confirmed_at"] for item in confirmed.json()["checklist"]
    )

    # The briefing: given and signed by the briefer and 张三, not yet by 李四.
    await _brief(stage, pid, crew=(LEADER,))
    unsigned = await stage.act(pid, "start", "leader")
    assert unsigned.status_code == 422, unsigned.text
    (missing,) = unsigned.json()["errors"]
    assert (missing["rule"], missing["clause"], missing["subject"]) == (
        "briefing.unsigned",
        "§4.4",
        CREW_MATE,
    )
    await _brief(stage, pid, crew=(CREW_MATE,))

    started = await stage.act(pid, "start", "leader")
    assert started.status_code == 200, started.text
    assert started.json()["state"] == "active" and started.json()["started_at"]
    not_suspended = await stage.act(pid, "resume", "guardian")
    assert _problem(not_suspended) == (409, "state", "transition")
    paused = await stage.act(pid, "suspend", "guardian", {"reason": "可燃气体报警"})
    assert paused.status_code == 200, paused.text
    assert paused.json()["state"] == "suspended"
    assert paused.json()["state_reason"] == "可燃气体报警"
    resumed = await stage.act(pid, "resume", "guardian")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["state"] == "active"
    not_done = await stage.act(pid, "accept", "ehs", {})
    assert _problem(not_done) == (409, "state", "transition")
    completed = await stage.act(pid, "complete", "leader")
    assert completed.status_code == 200, completed.text
    assert completed.json()["state"] == "completed"
    accepted = await stage.act(pid, "accept", "ehs", {"comment": "现场已清理"})
    assert accepted.status_code == 200, accepted.text
    closed = accepted.json()
    assert closed["state"] == "closed" and closed["closed_at"]
    assert closed["allowed_actions"] == []
    assert [analysis["passed"] for analysis in closed["gas_analyses"]] == [True]

    ledger = await audit_actions(stage.database, stage.world.tenant.id, "permit.")
    for action in (
        "permit.drafted",
        "permit.edited",
        "permit.submit",
        "permit.approve_step",
        "permit.approve_last",
        "permit.gas_analysed",
        "permit.measures_confirmed",
        "permit.start",
        "permit.suspend",
        "permit.resume",
        "permit.complete",
        "permit.accept",
    ):
        assert action in ledger, action


async def test_submission_gates_name_rule_clause_and_subject(stage: Stage) -> None:
    """王五's welding certificate runs out in a few days, and he holds none for work at height:
    the permit is refused at submission, the failure naming §4.9 and him."""
    at = window()
    data = msgspec.to_builtins(
        stage.world.permit_in(WorkType.HEIGHT, at, crew=(LEADER, SHORT_CERT), height_m=8.0)
    )
    permit = await stage.created(data)
    refused = await stage.act(permit["id"], "submit", "x")
    assert refused.status_code == 422, refused.text
    failures = [
        problem
        for problem in refused.json()["errors"]
        if problem["rule"].startswith("worker.certificate")
    ]
    assert failures, refused.text
    assert {(p["clause"], p["subject"]) for p in failures} == {("§4.9", SHORT_CERT)}
    assert (await stage.get(permit["id"]))["state"] == "draft", "nothing half-done"


# --- bad input -------------------------------------------------------------------------------


async def test_bad_input_names_the_field_and_the_rule(stage: Stage) -> None:
    client, tokens = stage.client, stage.tokens
    body = stage.body()

    reversed_window = {
        **body,
        "planned_end": body["planned_start"],
        "planned_start": body["planned_end"],
    }
    answer = await client.post(PERMITS, json=reversed_window, headers=tokens["x"])
    assert _problem(answer) == (422, "planned_end", "window.reversed")
    naive = {**body, "planned_start": "2030-01-01T09:00:00"}
    assert _problem(await client.post(PERMITS, json=naive, headers=tokens["x"])) == (
        422,
        "planned_start",
        "timezone",
    )

    stranger = stage.y.workers[OTHER_WORKER]
    foreign_crew = {**body, "crew": [*body["crew"], {"worker_id": str(stranger), "duty": "焊工"}]}
    answer = await client.post(PERMITS, json=foreign_crew, headers=tokens["x"])
    assert answer.status_code == 422, answer.text
    (problem,) = answer.json()["errors"]
    assert (problem["rule"], problem["subject"]) == ("crew.same_company", str(stranger))

    unknown_item = {**body, "checklist": [*body["checklist"], {"code": "nope", "applies": True}]}
    answer = await client.post(PERMITS, json=unknown_item, headers=tokens["x"])
    assert _problem(answer) == (422, "checklist.nope", "checklist.known")

    # A checklist item left unanswered: the draft is kept, submission names the item.
    short = {**body, "checklist": [i for i in body["checklist"] if i["code"] != "gas_tested"]}
    draft = await stage.created(short)
    refused = await stage.act(draft["id"], "submit", "x")
    assert refused.status_code == 422, refused.text
    fields = {(p["field"], p["rule"]) for p in refused.json()["errors"]}
    assert ("checklist.gas_tested", "checklist.answered") in fields

    assert _problem(await client.get(f"{PERMITS}/not-a-uuid", headers=tokens["x"])) == (
        422,
        "permit_id",
        "uuid",
    )
    assert _problem(
        await client.post(PERMITS, json={**body, "colour": "red"}, headers=tokens["x"])
    ) == (400, "colour", "unknown_field")
    assert _problem(
        await client.get(
            PERMITS,
            params={"before": "2030-01-01T00:00:00", "before_id": str(uuid.uuid4())},
            headers=tokens["x"],
        )
    ) == (422, "before", "timezone")
    assert _problem(
        await client.get(
            PERMITS, params={"before": "2030-01-01T00:00:00+08:00"}, headers=tokens["x"]
        )
    ) == (422, "before_id", "together")
    assert (
        await client.get(PERMITS, params={"state": "sleeping"}, headers=tokens["x"])
    ).status_code == 400
    no_reason = await stage.act(draft["id"], "cancel", "x", {"reason": ""})
    assert _problem(no_reason) == (400, "reason", "min_length")
    gone = await stage.act(draft["id"], "cancel", "x", {"reason": "计划取消"})
    assert gone.status_code == 200 and gone.json()["state"] == "cancelled"
    assert _problem(await stage.act(draft["id"], "submit", "x")) == (409, "state", "transition")
    bad_zone = await client.post(
        ZONES,
        json={
            "plant_id": stage.p1,
            "name": "交叉",
            "shape": {
                "type": "Polygon",
                "coordinates": [
                    [[121.0, 31.0], [121.1, 31.1], [121.1, 31.0], [121.0, 31.1], [121.0, 31.0]]
                ],
            },
        },
        headers=tokens["ehs"],
    )
    assert _problem(bad_zone) == (422, "shape.coordinates", "simple")


# --- who sees and does what ------------------------------------------------------------------


async def test_roles_plants_and_companies_keep_to_their_own(stage: Stage) -> None:
    client, tokens = stage.client, stage.tokens
    body = stage.body()
    for who in ("leader", "supervisor", "ehs"):
        refused = await client.post(PERMITS, json=body, headers=tokens[who])
        assert refused.status_code == 403, (who, refused.text)
    permit = await stage.created(body)
    pid = permit["id"]
    for who in ("x", "ehs", "supervisor", "manager", "admin"):
        assert (await client.get(f"{PERMITS}/{pid}", headers=tokens[who])).status_code == 200, who
    for who in ("ehs_p2", "y", "b_ehs"):
        hidden = await client.get(f"{PERMITS}/{pid}", headers=tokens[who])
        assert hidden.status_code == 404, (who, hidden.text)
        listed = await client.get(PERMITS, headers=tokens[who])
        assert listed.status_code == 200 and pid not in {row["id"] for row in listed.json()}
        cancel = await stage.act(pid, "cancel", who, {"reason": "不是我的"})
        assert cancel.status_code == 404, (who, cancel.text)
    assert (await stage.act(pid, "submit", "y")).status_code == 404, "not an admin of x"
    other_admin = await client.put(f"{PERMITS}/{pid}", json=body, headers=tokens["y"])
    assert other_admin.status_code == 404
    zone_body = {
        "plant_id": stage.p1,
        "name": "越权",
        "shape": {"type": "Circle", "center": [121.4, 31.2], "radius_m": 10},
    }
    assert (await client.post(ZONES, json=zone_body, headers=tokens["x"])).status_code == 403
    assert (await client.post(ZONES, json=zone_body, headers=tokens["ehs_p2"])).status_code == 404
    p1_zones = await client.get(ZONES, params={"plant_id": stage.p1}, headers=tokens["ehs_p2"])
    assert p1_zones.status_code == 404
    foreign = await client.get(ZONES, params={"plant_id": stage.p1}, headers=tokens["b_ehs"])
    assert foreign.status_code == 200 and foreign.json() == []
    chain = await client.get(
        CHAINS, params={"work_type": "height", "level": "grade_1"}, headers=tokens["ehs"]
    )
    assert chain.status_code == 403


# --- lists -----------------------------------------------------------------------------------


async def test_list_filters_and_pages(stage: Stage) -> None:
    """60 permits at P2 (inserted directly), listed 50 at a time, newest planned start first."""
    client, tokens, world = stage.client, stage.tokens, stage.world
    p2 = world.tenant.plants["P2"]
    async with world.session() as session:
        zone = await zone_services.create_zone(
            session,
            ZoneIn(plant_id=p2, name="P2-A", shape=CircleIn(center=(121.5, 31.3), radius_m=20)),
            actor_id=world.ehs.user_id,
        )
        base = datetime(2031, 3, 2, 1, 0, tzinfo=UTC)
        for index in range(60):
            start = base + timedelta(hours=index)
            session.add(
                Permit(
                    plant_id=p2,
                    zone_id=zone.id,
                    contractor_id=world.company.contractor_id,
                    work_type="hot_work" if index % 3 else "height",
                    level="level2" if index % 3 else "grade_1",
                    state="approved" if index % 2 else "draft",
                    location="P2",
                    work_content="列表",
                    planned_start=start,
                    planned_end=start + timedelta(hours=2),
                    work_leader_id=world.worker(LEADER),
                    guardian_user_id=world.guardian.user_id,
                    applicant_id=world.contractor_admin.user_id,
                    checklist=[],
                    details={},
                )
            )
    first = await client.get(PERMITS, params={"plant_id": stage.p2}, headers=tokens["ehs"])
    assert first.status_code == 200, first.text
    rows = first.json()
    assert len(rows) == 50
    starts = [row["planned_start"] for row in rows]
    assert starts == sorted(starts, reverse=True)
    assert set(rows[0]) == {
        "id",
        "number",
        "version",
        "work_type",
        "level",
        "state",
        "plant_id",
        "zone_id",
        "contractor_id",
        "planned_start",
        "planned_end",
    }
    second = await client.get(
        PERMITS,
        params={
            "plant_id": stage.p2,
            "before": rows[-1]["planned_start"],
            "before_id": rows[-1]["id"],
        },
        headers=tokens["ehs"],
    )
    assert len(second.json()) == 10
    assert not {row["id"] for row in rows} & {row["id"] for row in second.json()}

    filtered = await client.get(
        PERMITS,
        params={"plant_id": stage.p2, "work_type": "hot_work", "state": "approved"},
        headers=tokens["ehs_p2"],
    )
    assert filtered.status_code == 200
    expected = sum(1 for index in range(60) if index % 3 and index % 2)
    assert len(filtered.json()) == expected
    assert {(row["work_type"], row["state"]) for row in filtered.json()} == {
        ("hot_work", "approved")
    }
    mine = await client.get(PERMITS, params={"plant_id": stage.p2}, headers=tokens["x"])
    assert len(mine.json()) == 50
    assert (
        await client.get(PERMITS, params={"plant_id": stage.p2}, headers=tokens["y"])
    ).json() == []
    outside = await client.get(PERMITS, params={"plant_id": stage.p2}, headers=tokens["supervisor"])
    assert outside.status_code == 200 and outside.json() == []


# --- approval chains -------------------------------------------------------------------------


async def test_the_tenant_adds_steps_but_never_drops_the_standards(stage: Stage) -> None:
    client, tokens = stage.client, stage.tokens
    standard = await client.get(
        CHAINS, params={"work_type": "height", "level": "grade_1"}, headers=tokens["admin"]
    )
    assert standard.status_code == 200, standard.text
    assert standard.json()["custom"] is False
    steps = standard.json()["steps"]
    assert all(step["standard"] for step in steps)
    dropped = {
        "work_type": "height",
        "level": "grade_1",
        "steps": [{"role": step["role"], "kind": step["kind"]} for step in steps[:-1]],
    }
    refused = await client.put(CHAINS, json=dropped, headers=tokens["admin"])
    assert refused.status_code == 422, refused.text
    problem = refused.json()["errors"][0]
    assert (problem["rule"], problem["clause"], problem["subject"]) == (
        "approval.chain",
        "B.1",
        steps[-1]["role"],
    )
    added = (
        [{"role": step["role"], "kind": step["kind"]} for step in steps[:1]]
        + [{"role": "equipment_department", "kind": "review", "label": "设备科会签"}]
        + [{"role": step["role"], "kind": step["kind"]} for step in steps[1:]]
    )
    saved = await client.put(
        CHAINS,
        json={"work_type": "height", "level": "grade_1", "steps": added},
        headers=tokens["admin"],
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["custom"] is True
    assert [step["standard"] for step in saved.json()["steps"]] == [True, False] + [True] * (
        len(steps) - 1
    )
    read = await client.get(
        CHAINS, params={"work_type": "height", "level": "grade_1"}, headers=tokens["admin"]
    )
    assert read.json()["steps"][1]["label"] == "设备科会签"
    bad_level = await client.get(
        CHAINS, params={"work_type": "height", "level": "level9"}, headers=tokens["admin"]
    )
    assert _problem(bad_level) == (422, "level", "level")
    assert (await client.put(CHAINS, json=dropped, headers=tokens["ehs"])).status_code == 403


# --- the API's description -------------------------------------------------------------------


async def test_openapi_lists_the_permit_routes_and_which_keep_working_unpaid(
    stage: Stage,
) -> None:
    schema = await stage.client.get("/schema/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in (
        "/api/v1/zones",
        "/api/v1/zones/{zone_id}",
        "/api/v1/permits",
        "/api/v1/permits/{permit_id}",
        "/api/v1/permits/{permit_id}/submit",
        "/api/v1/permits/{permit_id}/decisions",
        "/api/v1/permits/{permit_id}/revisions",
        "/api/v1/permits/{permit_id}/gas-analyses",
        "/api/v1/permits/{permit_id}/checklist/confirmations",
        "/api/v1/permits/{permit_id}/start",
        "/api/v1/permits/{permit_id}/suspend",
        "/api/v1/permits/{permit_id}/resume",
        "/api/v1/permits/{permit_id}/complete",
        "/api/v1/permits/{permit_id}/accept",
        "/api/v1/permits/{permit_id}/cancel",
        "/api/v1/permits/{permit_id}/permit.pdf",
        "/api/v1/permit-chains",
    ):
        assert path in paths, path
        for operation in paths[path].values():
            assert operation.get("summary"), path

    exempt = {
        (method, route.path)
        for route in stage.client.app.routes
        for handler in getattr(route, "route_handlers", [])
        if handler.opt.get(BILLING_EXEMPT) and route.path.startswith((PERMITS, ZONES, CHAINS))
        for method in handler.http_methods
    }
    assert exempt == {
        ("POST", "/api/v1/permits/{permit_id:str}/gas-analyses"),
        ("POST", "/api/v1/permits/{permit_id:str}/suspend"),
        ("POST", "/api/v1/permits/{permit_id:str}/complete"),
        ("POST", "/api/v1/permits/{permit_id:str}/accept"),
        ("POST", "/api/v1/permits/{permit_id:str}/cancel"),
    }
