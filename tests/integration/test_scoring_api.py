"""Evaluation over HTTP on PostgreSQL as the application role: EHS rates completed jobs with
photos, findings deduct from the job's score, the company appeals and EHS decides, the scoring
policy is read and set, and a supplier review approved with a blacklist decision blocks the
company's next permit at the gates. Every refusal names its field and rule; another company's
and another tenant's ids answer like ids that do not exist.

Jobs are driven to completion through the permit services in windows some weeks back, so the
supplier review's period has begun whatever the date.
"""

from __future__ import annotations

import dataclasses
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient
from PIL import Image
from sqlalchemy import select, update

from infra.db import Database
from onboarding.catalogue import WorkType
from onboarding.models import Contractor
from permits import services as permit_services
from portal.app import create_app
from scoring.models import Rating
from tenants import services as tenant_services
from tenants.models import Role
from tests.conftest import PostgresDatabase, settings_for
from tests.factories import TenantFactory, audit_actions, issue_token
from tests.onboarding_factories import Company
from tests.permit_factories import PLANT_TZ, PermitWorld, Window, window, working_day

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.postgres]

API = "/api/v1"
SCORES = {"safety": 90, "quality": 80, "schedule": 70, "housekeeping": 60, "cooperation": 100}
# 90·40 + 80·25 + 70·15 + 60·10 + 100·10, over 100.
WEIGHTED = 82.5


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 40, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def job_windows(count: int) -> list[Window]:
    """Working-day windows in the past, one per job: the same zone never holds two at once."""
    day = date.today() - timedelta(days=40)
    days = []
    for _ in range(count):
        day = working_day(day)
        days.append(day)
    return [window(day) for day in days]


async def completed_job(world: PermitWorld, at: Window, *, accept: bool = False) -> uuid.UUID:
    """A job at height driven through the permit services: approved, briefed, measures
    confirmed, started by the guardian, reported done by the work leader (and accepted)."""
    permit = await world.approved(world.permit_in(WorkType.HEIGHT, at), now=at.now)
    await world.brief(permit.id)
    await world.confirm(permit.id, now=at.at(1))

    async def act(who: Any, call: Any, *args: Any, now: datetime) -> None:
        async with world.session() as session:
            actor = await permit_services.actor_for(session, who)
            await call(session, actor, permit.id, *args, now=now)

    await act(world.guardian, permit_services.start, now=at.at(2))
    await act(world.leader_login, permit_services.complete, now=at.at(120))
    if accept:
        await act(world.ehs, permit_services.accept, "现场已清理", now=at.at(130))
    return permit.id


def problem(response: Any) -> tuple[int, str, str]:
    body = response.json()
    assert body["status_code"] == response.status_code, body
    first = body["errors"][0]
    return response.status_code, first["field"], first["rule"]


@dataclasses.dataclass
class Stage:
    client: AsyncTestClient[Any]
    world: PermitWorld
    y: Company
    tokens: dict[str, dict[str, str]]
    jobs: list[uuid.UUID]
    windows: list[Window]
    draft_id: uuid.UUID

    @property
    def x_id(self) -> str:
        return str(self.world.company.contractor_id)

    async def call(self, method: str, path: str, who: str, **kwargs: Any) -> Any:
        return await self.client.request(method, f"{API}{path}", headers=self.tokens[who], **kwargs)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stage(
    postgres: PostgresDatabase, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stage]:
    directory = tmp_path_factory.mktemp("scoring-api")
    settings = settings_for(
        postgres.app_url, directory / "var", migration_database_url=postgres.owner_url
    )
    database = Database.from_settings(settings)
    factory = TenantFactory()
    try:
        world = await PermitWorld.create(database, settings, factory)
        windows = job_windows(3)
        jobs = [
            await completed_job(world, windows[0]),
            await completed_job(world, windows[1], accept=True),
        ]
        draft = await world.draft(world.permit_in(WorkType.HEIGHT, windows[2]), now=windows[2].now)
        async with world.session() as session:
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
        y = await world.onboarding.register(world.tenant)
        b = await factory.create(database, plants=("P1",), users=((Role.EHS_OFFICER, None),))
        pairs = {
            "admin": world.hosts[Role.TENANT_ADMIN].user_id,
            "ehs": world.ehs.user_id,
            "ehs_p2": ehs_p2.id,
            "supervisor": world.supervisor.user_id,
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
            yield Stage(client, world, y, tokens, jobs, windows, draft.id)
    finally:
        await database.dispose()


# --- ratings ---------------------------------------------------------------------------------


async def test_ehs_rates_a_completed_job_once_with_photos(stage: Stage) -> None:
    job = stage.jobs[0]
    path = f"/permits/{job}/rating"
    upload = await stage.client.post(
        f"{API}/uploads/photo",
        files={"file": ("site.png", png(), "image/png")},
        headers=stage.tokens["ehs"],
    )
    assert upload.status_code == 201, upload.text
    photo_id = upload.json()["id"]

    out_of_range = await stage.call("POST", path, "ehs", json={"scores": {**SCORES, "safety": 101}})
    # Malformed bodies answer 400, as everywhere in the API, naming the field and the rule.
    assert problem(out_of_range) == (400, "scores.safety", "maximum")
    missing = await stage.call("POST", path, "ehs", json={"scores": {"safety": 90}})
    assert problem(missing)[::2] == (400, "required")
    not_uploaded = await stage.call(
        "POST", path, "ehs", json={"scores": SCORES, "photo_ids": [str(uuid.uuid4())]}
    )
    assert problem(not_uploaded) == (422, "photo_ids[0]", "uploaded")
    not_completed = await stage.call(
        "POST", f"/permits/{stage.draft_id}/rating", "ehs", json={"scores": SCORES}
    )
    assert problem(not_completed) == (409, "permit_id", "completed")
    # An officer of another plant, another tenant, or the company itself cannot rate it.
    for who, status in (("ehs_p2", 404), ("b_ehs", 404), ("x", 403), ("supervisor", 403)):
        refused = await stage.call("POST", path, who, json={"scores": SCORES})
        assert refused.status_code == status, (who, refused.text)
    malformed = await stage.call(
        "POST", "/permits/not-a-uuid/rating", "ehs", json={"scores": SCORES}
    )
    assert problem(malformed) == (422, "permit_id", "uuid")

    rated = await stage.call(
        "POST", path, "ehs", json={"scores": SCORES, "comment": "作业规范", "photo_ids": [photo_id]}
    )
    assert rated.status_code == 201, rated.text
    body = rated.json()
    assert body["weights"] == {
        "safety": 40.0,
        "quality": 25.0,
        "schedule": 15.0,
        "housekeeping": 10.0,
        "cooperation": 10.0,
    }
    assert (body["rating"], body["deductions"], body["score"]) == (WEIGHTED, 0, WEIGHTED)
    assert body["photo_ids"] == [photo_id] and body["comment"] == "作业规范"
    assert body["appeal_state"] is None and body["violations"] == []
    appeal_until = datetime.fromisoformat(body["appeal_until"])
    assert appeal_until - datetime.fromisoformat(body["rated_at"]) == timedelta(days=7)

    again = await stage.call("POST", path, "ehs", json={"scores": SCORES})
    assert problem(again) == (409, "permit_id", "once")
    assert "rating.recorded" in await audit_actions(
        stage.world.database, stage.world.tenant.id, "rating."
    )


async def test_who_sees_which_ratings(stage: Stage) -> None:
    job = stage.jobs[0]
    mine = await stage.call("GET", f"/permits/{job}/rating", "x")
    assert mine.status_code == 200, mine.text
    rating_id = mine.json()["id"]
    assert mine.json()["score"] == WEIGHTED
    unrated = await stage.call("GET", f"/permits/{stage.jobs[1]}/rating", "ehs")
    assert unrated.status_code == 404
    for who in ("y", "b_ehs", "ehs_p2"):
        assert (await stage.call("GET", f"/permits/{job}/rating", who)).status_code == 404, who
        assert (await stage.call("GET", f"/ratings/{rating_id}", who)).status_code == 404, who

    listed = await stage.call("GET", "/ratings", "x")
    assert [r["id"] for r in listed.json()] == [rating_id]
    # Another company sees none of it, even when it asks for that company by id.
    assert (await stage.call("GET", "/ratings", "y")).json() == []
    asked = await stage.call("GET", "/ratings", "y", params={"contractor_id": stage.x_id})
    assert asked.json() == []
    assert (await stage.call("GET", "/ratings", "ehs_p2")).json() == []
    assert (await stage.call("GET", "/ratings", "b_ehs")).json() == []
    by_plant = await stage.call(
        "GET", "/ratings", "ehs", params={"plant_id": str(stage.world.plant_id)}
    )
    assert [r["id"] for r in by_plant.json()] == [rating_id]
    other_plant = await stage.call(
        "GET", "/ratings", "ehs", params={"plant_id": str(stage.world.tenant.plants["P2"])}
    )
    assert other_plant.json() == []
    bad = await stage.call("GET", "/ratings", "ehs", params={"contractor_id": "nope"})
    assert problem(bad) == (422, "contractor_id", "uuid")


# --- findings and violations -----------------------------------------------------------------


async def test_findings_deduct_from_the_jobs_score(stage: Stage) -> None:
    world, job = stage.world, stage.jobs[0]
    at = stage.windows[0].at(30)
    finding = {
        "plant_id": str(world.plant_id),
        "contractor_id": stage.x_id,
        "permit_id": str(job),
        "severity": "major",
        "description": "高处作业未系安全带",
        "observed_at": at.isoformat(),
    }
    recorded = await stage.call("POST", "/findings", "ehs", json=finding)
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["severity"] == "major"

    future = datetime.now(UTC) + timedelta(hours=2)
    refusals = [
        ("ehs", {**finding, "observed_at": future.isoformat()}, (422, "observed_at", "not_future")),
        ("ehs", {**finding, "severity": "fatal"}, None),
        ("ehs_p2", finding, (422, "plant_id", "own_plant")),
        (
            "ehs",
            {**finding, "contractor_id": str(stage.y.contractor_id)},
            (422, "permit_id", "same_job"),
        ),
        ("ehs", {**finding, "contractor_id": str(uuid.uuid4())}, (422, "contractor_id", "exists")),
    ]
    for who, body, expected in refusals:
        refused = await stage.call("POST", "/findings", who, json=body)
        if expected is None:
            assert problem(refused) == (400, "severity", "enum"), refused.text
        else:
            assert problem(refused) == expected, refused.text
    assert (await stage.call("POST", "/findings", "x", json=finding)).status_code == 403

    rating = (await stage.call("GET", f"/permits/{job}/rating", "x")).json()
    assert (rating["deductions"], rating["score"]) == (8.0, WEIGHTED - 8)
    [violation] = rating["violations"]
    assert (violation["source"], violation["severity"], violation["points"]) == (
        "inspection",
        "major",
        8.0,
    )

    assert len((await stage.call("GET", "/findings", "x")).json()) == 1
    assert (await stage.call("GET", "/findings", "y")).json() == []
    assert (await stage.call("GET", "/findings", "ehs_p2")).json() == []
    assert (await stage.call("GET", "/findings", "b_ehs")).json() == []

    since, until = stage.windows[0].start, stage.windows[0].end
    window_query = {"since": since.isoformat(), "until": until.isoformat()}
    listed = await stage.call("GET", "/violations", "ehs", params=window_query)
    assert [v["description"] for v in listed.json()] == ["高处作业未系安全带"]
    later = await stage.call("GET", "/violations", "ehs", params={"since": until.isoformat()})
    assert later.json() == []
    assert (await stage.call("GET", "/violations", "y")).json() == []
    assert (await stage.call("GET", "/violations", "b_ehs")).json() == []
    reversed_window = {"since": until.isoformat(), "until": since.isoformat()}
    assert problem(await stage.call("GET", "/violations", "ehs", params=reversed_window)) == (
        422,
        "until",
        "order",
    )
    naive = await stage.call("GET", "/violations", "ehs", params={"since": "2026-01-01T00:00:00"})
    assert problem(naive) == (422, "since", "timezone")


# --- appeals ---------------------------------------------------------------------------------


async def test_the_company_appeals_once_and_ehs_decides(stage: Stage) -> None:
    rating_id = (await stage.call("GET", f"/permits/{stage.jobs[0]}/rating", "x")).json()["id"]
    path = f"/ratings/{rating_id}/appeal"
    assert (await stage.call("POST", path, "y", json={"reason": "不是我们"})).status_code == 404
    assert (await stage.call("POST", path, "leader", json={"reason": "x"})).status_code == 403
    empty = await stage.call("POST", path, "x", json={"reason": ""})
    assert problem(empty) == (400, "reason", "min_length")
    no_appeal = await stage.call(
        "POST", f"{path}/decision", "ehs", json={"outcome": "upheld", "text": "维持"}
    )
    assert problem(no_appeal) == (409, "rating_id", "appealed")

    filed = await stage.call("POST", path, "x", json={"reason": "安全带已系，照片角度问题"})
    assert filed.status_code == 201, filed.text
    assert filed.json()["state"] == "open"
    second = await stage.call("POST", path, "x", json={"reason": "再次申诉"})
    assert problem(second) == (409, "rating_id", "once")

    decision = f"{path}/decision"
    assert (
        await stage.call("POST", decision, "x", json={"outcome": "upheld", "text": "维持"})
    ).status_code == 403
    assert (
        await stage.call("POST", decision, "ehs_p2", json={"outcome": "upheld", "text": "维持"})
    ).status_code == 404
    no_scores = await stage.call("POST", decision, "ehs", json={"outcome": "amended", "text": "改"})
    assert problem(no_scores) == (422, "scores", "required")
    amended_scores = {**SCORES, "safety": 100}
    decided = await stage.call(
        "POST",
        decision,
        "ehs",
        json={"outcome": "amended", "text": "复核照片后上调安全分", "scores": amended_scores},
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["previous_scores"] == {k: float(v) for k, v in SCORES.items()}
    again = await stage.call("POST", decision, "ehs", json={"outcome": "upheld", "text": "维持"})
    assert problem(again) == (409, "outcome", "once")

    rating = (await stage.call("GET", f"/ratings/{rating_id}", "x")).json()
    assert rating["appeal_state"] == "amended"
    assert rating["appeal"]["reason"] == "安全带已系，照片角度问题"
    assert rating["appeal"]["decision_text"] == "复核照片后上调安全分"
    assert rating["rating"] == WEIGHTED + 4


async def test_an_appeal_after_the_deadline_is_refused(stage: Stage) -> None:
    job = stage.jobs[1]
    rated = await stage.call("POST", f"/permits/{job}/rating", "ehs", json={"scores": SCORES})
    assert rated.status_code == 201, rated.text
    rating_id = uuid.UUID(rated.json()["id"])
    async with stage.world.session() as session:
        await session.execute(
            update(Rating)
            .where(Rating.id == rating_id)
            .values(appeal_until=datetime.now(UTC) - timedelta(minutes=1))
        )
    late = await stage.call("POST", f"/ratings/{rating_id}/appeal", "x", json={"reason": "晚了"})
    assert problem(late) == (409, "rating_id", "appeal_deadline")


# --- the policy ------------------------------------------------------------------------------


def _policy_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "weights": {
            "safety": 40,
            "quality": 25,
            "schedule": 15,
            "housekeeping": 10,
            "cooperation": 10,
        },
        "severity_points": {"minor": 3, "major": 8, "critical": 20},
        "alert_severity": {
            "left_zone": "minor",
            "restricted_zone": "major",
            "no_signal": "minor",
            "overstay": "minor",
            "guardian_absent": "major",
            "implausible_movement": "major",
        },
        "risk_weights": {"low": 1, "medium": 1.5, "high": 2},
        "grade_thresholds": {"A": 90, "B": 80, "C": 70},
        "prior_jobs": 5,
        "blacklist_critical": 2,
        "appeal_days": 10,
        "bi_webhook_url": "https://bi.example/hook",
        "bi_webhook_secret": "s3cret-signing-key",
    }
    body.update(changes)
    return body


async def test_the_policy_shows_defaults_and_never_its_secret(stage: Stage) -> None:
    defaults = await stage.call("GET", "/scoring-policy", "ehs")
    assert defaults.status_code == 200, defaults.text
    assert defaults.json()["saved"] is False
    assert defaults.json()["weights"]["safety"] == 40
    assert defaults.json()["appeal_days"] == 7
    assert (await stage.call("GET", "/scoring-policy", "x")).status_code == 403
    assert (await stage.call("PUT", "/scoring-policy", "x", json=_policy_body())).status_code == (
        403
    )
    assert (
        await stage.call("PUT", "/scoring-policy", "supervisor", json=_policy_body())
    ).status_code == 403
    upside_down = _policy_body(grade_thresholds={"A": 70, "B": 80, "C": 90})
    assert problem(await stage.call("PUT", "/scoring-policy", "ehs", json=upside_down)) == (
        422,
        "grade_thresholds",
        "descending",
    )
    no_weight = _policy_body(
        weights={"safety": 0, "quality": 0, "schedule": 0, "housekeeping": 0, "cooperation": 0}
    )
    assert problem(await stage.call("PUT", "/scoring-policy", "admin", json=no_weight)) == (
        422,
        "weights",
        "positive_total",
    )
    bad_url = await stage.call(
        "PUT", "/scoring-policy", "ehs", json=_policy_body(bi_webhook_url="x")
    )
    assert problem(bad_url) == (400, "bi_webhook_url", "pattern")

    saved = await stage.call("PUT", "/scoring-policy", "ehs", json=_policy_body())
    assert saved.status_code == 200, saved.text
    for answer in (saved, await stage.call("GET", "/scoring-policy", "admin")):
        body = answer.json()
        assert (body["saved"], body["appeal_days"], body["bi_webhook_secret_set"]) == (
            True,
            10,
            True,
        )
        assert "s3cret-signing-key" not in answer.text
    # An empty secret keeps the one set.
    kept = await stage.call(
        "PUT", "/scoring-policy", "admin", json=_policy_body(bi_webhook_secret="")
    )
    assert kept.json()["bi_webhook_secret_set"] is True
    other = await stage.call("GET", "/scoring-policy", "b_ehs")
    assert other.json()["saved"] is False


# --- supplier reviews and their consequence --------------------------------------------------


def _period(day: date) -> dict[str, Any]:
    return {"period_kind": "quarter", "year": day.year, "quarter": (day.month - 1) // 3 + 1}


async def test_an_approved_blacklist_blocks_the_next_permit(stage: Stage) -> None:
    world = stage.world
    job_day = stage.windows[0].start.astimezone(PLANT_TZ).date()
    review_in = {"contractor_id": stage.x_id, **_period(job_day)}

    assert (await stage.call("POST", "/reviews", "x", json=review_in)).status_code == 403
    no_quarter = {**review_in, "quarter": None}
    assert problem(await stage.call("POST", "/reviews", "ehs", json=no_quarter)) == (
        422,
        "quarter",
        "required",
    )
    future = {"contractor_id": stage.x_id, "period_kind": "year", "year": date.today().year + 1}
    assert problem(await stage.call("POST", "/reviews", "ehs", json=future)) == (
        422,
        "year",
        "begun",
    )
    unknown = {**review_in, "contractor_id": str(uuid.uuid4())}
    assert problem(await stage.call("POST", "/reviews", "ehs", json=unknown)) == (
        422,
        "contractor_id",
        "exists",
    )

    created = await stage.call("POST", "/reviews", "ehs", json=review_in)
    assert created.status_code == 201, created.text
    review = created.json()
    assert (review["state"], review["jobs"], review["violations"]) == ("draft", 2, 1)
    assert {job["permit_id"] for job in review["figures"]["jobs"]} == {
        str(job) for job in stage.jobs
    }
    assert all(job["weight"] > 0 for job in review["figures"]["jobs"])
    assert review["figures"]["prior_jobs"] == 5
    review_id = review["id"]
    # Computing again updates the same draft.
    again = await stage.call("POST", "/reviews", "admin", json=review_in)
    assert again.json()["id"] == review_id

    detail = await stage.call("GET", f"/reviews/{review_id}", "ehs")
    assert detail.json()["period"] == f"{job_day.year}Q{(job_day.month - 1) // 3 + 1}"
    assert (await stage.call("GET", f"/reviews/{review_id}", "b_ehs")).status_code == 404
    # A draft stays with the host; the company sees its review once approved.
    assert (await stage.call("GET", f"/reviews/{review_id}", "x")).status_code == 404
    assert (await stage.call("GET", "/reviews", "x")).json() == []
    drafts = await stage.call("GET", "/reviews", "ehs", params={"state": "draft"})
    assert [r["id"] for r in drafts.json()] == [review_id]

    approval = f"/reviews/{review_id}/approval"
    assert (await stage.call("POST", approval, "x", json={"decision": "keep"})).status_code == 403
    no_reason = await stage.call("POST", approval, "ehs", json={"decision": "blacklist"})
    assert problem(no_reason) == (422, "reason", "required")
    approved = await stage.call(
        "POST",
        approval,
        "ehs",
        json={"decision": "blacklist", "reason": "高处作业未系安全带，屡教不改"},
    )
    assert approved.status_code == 200, approved.text
    assert (approved.json()["state"], approved.json()["decision"]) == ("approved", "blacklist")
    twice = await stage.call("POST", approval, "ehs", json={})
    assert problem(twice) == (409, "state", "draft")
    overlap = await stage.call("POST", "/reviews", "ehs", json=review_in)
    assert problem(overlap) == (409, "period", "overlap")
    assert [r["id"] for r in (await stage.call("GET", "/reviews", "x")).json()] == [review_id]

    async with world.session() as session:
        state = await session.scalar(
            select(Contractor.state).where(Contractor.id == world.company.contractor_id)
        )
    assert state == "blacklisted"

    # The company's next application stops at the admission gate.
    now = datetime.now(UTC)
    at = dataclasses.replace(
        window(), start=now + timedelta(minutes=10), end=now + timedelta(hours=2)
    )
    body = msgspec.to_builtins(world.permit_in(WorkType.HEIGHT, at, zone="Z3"))
    drafted = await stage.call("POST", "/permits", "x", json=body)
    assert drafted.status_code == 201, drafted.text
    submitted = await stage.call("POST", f"/permits/{drafted.json()['id']}/submit", "x")
    assert submitted.status_code == 422, submitted.text
    refusals = {(p["field"], p["rule"]) for p in submitted.json()["errors"]}
    assert ("contractor_id", "company.contractor_blacklisted") in refusals


async def test_the_api_describes_every_scoring_operation(stage: Stage) -> None:
    schema = (await stage.client.get("/schema/openapi.json")).json()
    expected = {
        ("/permits/{permit_id}/rating", "post"),
        ("/permits/{permit_id}/rating", "get"),
        ("/ratings", "get"),
        ("/ratings/{rating_id}", "get"),
        ("/ratings/{rating_id}/appeal", "post"),
        ("/ratings/{rating_id}/appeal/decision", "post"),
        ("/findings", "post"),
        ("/findings", "get"),
        ("/violations", "get"),
        ("/reviews", "post"),
        ("/reviews", "get"),
        ("/reviews/{review_id}", "get"),
        ("/reviews/{review_id}/approval", "post"),
        ("/scoring-policy", "get"),
        ("/scoring-policy", "put"),
    }
    operations = [
        (path, method, schema["paths"][f"{API}{path}"][method]) for path, method in expected
    ]
    for path, method, operation in operations:
        assert operation.get("summary") and operation.get("description"), (path, method)
