"""Training over HTTP on PostgreSQL as the application role: EHS authors and publishes, a worker
(or their company administrator, assisted) reads, takes the quiz and signs, the signed record
verifies and prints; roles and plants keep to their own; bad input answers naming the field and
the rule; job briefings are signed by the briefer and the whole crew."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient

from infra.db import Database
from infra.settings import Settings
from onboarding import services as onboarding_services
from onboarding.catalogue import WorkType
from onboarding.schemas import ContractorUserIn
from portal.app import create_app
from portal.guards import BILLING_EXEMPT
from tenants.access import Grant, Principal
from tenants.models import Role
from tests.conftest import PostgresDatabase, settings_for
from tests.factories import SeededTenant, SeededUser, TenantFactory, issue_token
from tests.onboarding_factories import Company, OnboardingFactory, host_viewer, in_tenant
from training.briefings import prepare_briefing
from training.schemas import BriefingSource

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.postgres]

API = "/api/v1"
TRAINING = f"{API}/training"
HOSTS = (
    (Role.TENANT_ADMIN, None),
    (Role.EHS_OFFICER, None),
    (Role.EHS_OFFICER, "P2"),
    (Role.UNIT_SUPERVISOR, "P1"),
)


def _bank(size: int = 5) -> list[dict[str, Any]]:
    return [
        {
            "id": f"q{index}",
            "text": f"第 {index} 题：动火作业前必须办理作业票吗？",
            "options": ["必须", "不必", "视情况"],
            "correct": [index % 2],
        }
        for index in range(size)
    ]


def content(title: str = "厂区通用安全培训", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": title,
        "sections": [
            {"title": "入厂须知", "body": "进入厂区须佩戴**安全帽**。\n\n<script>alert(1)</script>"}
        ],
        "questions": _bank(),
        "draw_count": 3,
        "pass_mark": 100,
    }
    return {**body, **changes}


CORRECT = {question["id"]: question["correct"] for question in _bank()}


def strokes(seed: int) -> dict[str, Any]:
    """A drawing that passes the pad's checks; each seed draws a different one."""
    first = [[20 + i * 20 + seed * 0.3, 40 + (i % 3) * 8, i * 16] for i in range(12)]
    second = [[30 + i * 18, 100 - (i % 4) * 6 + seed * 0.1, 300 + i * 16] for i in range(10)]
    return {"width": 300, "height": 150, "strokes": [first, second]}


def signature(name: str, seed: int) -> dict[str, Any]:
    return {"full_name": name, "consent": True, "strokes": strokes(seed)}


@dataclasses.dataclass
class Stage:
    client: AsyncTestClient[Any]
    database: Database
    settings: Settings
    a: SeededTenant
    b: SeededTenant
    x: Company
    y: Company
    tokens: dict[str, dict[str, str]]

    @property
    def p1(self) -> str:
        return str(self.a.plants["P1"])

    def worker(self, name: str) -> str:
        return str(self.x.workers[name])

    async def published(self, **changes: Any) -> str:
        """A new induction of P1, published by EHS; its id."""
        created = await self.client.post(
            f"{TRAINING}/inductions",
            json={
                "plant_id": self.p1,
                "content": content(f"培训 {uuid.uuid4().hex[:6]}", **changes),
            },
            headers=self.tokens["ehs"],
        )
        assert created.status_code == 201, created.text
        induction_id = created.json()["id"]
        published = await self.client.post(
            f"{TRAINING}/inductions/{induction_id}/publish", headers=self.tokens["ehs"]
        )
        assert published.status_code == 201, published.text
        return str(induction_id)

    async def passed_attempt(self, induction_id: str, who: str, query: str = "") -> str:
        started = await self.client.post(
            f"{TRAINING}/assignments/{induction_id}/attempts{query}", headers=self.tokens[who]
        )
        assert started.status_code == 201, started.text
        attempt = started.json()
        answers = {question["id"]: CORRECT[question["id"]] for question in attempt["questions"]}
        submitted = await self.client.post(
            f"{TRAINING}/attempts/{attempt['id']}/answers{query}",
            json={"answers": answers},
            headers=self.tokens[who],
        )
        assert submitted.status_code == 200, submitted.text
        assert submitted.json()["passed"] is True
        return str(attempt["id"])


def _host(tenant: SeededTenant, role: Role, plant: str | None) -> SeededUser:
    return next(user for user in tenant.users if user.role == role and user.plant_code == plant)


async def _worker_login(
    database: Database, company: Company, worker: str
) -> tuple[uuid.UUID, uuid.UUID]:
    async with in_tenant(database, company.tenant.id) as session:
        user = await onboarding_services.add_contractor_user(
            session,
            company.admin,
            company.contractor_id,
            ContractorUserIn(
                email=f"w-{uuid.uuid4().hex[:8]}@contractor.example",
                name=worker,
                password="worker-pass-123",
                role="contractor_worker",
                worker_id=company.workers[worker],
            ),
        )
    return company.tenant.id, user.id


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stage(
    postgres: PostgresDatabase, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stage]:
    directory = tmp_path_factory.mktemp("training-api")
    settings = settings_for(
        postgres.app_url,
        directory / "var",
        migration_database_url=postgres.owner_url,
        login_rate_per_minute=10_000,
    )
    database = Database.from_settings(settings)
    factory = TenantFactory()
    try:
        a = await factory.create(database, plants=("P1", "P2"), users=HOSTS)
        b = await factory.create(database, plants=("P1",), users=((Role.EHS_OFFICER, None),))
        make = OnboardingFactory(database, settings)
        x = await make.admitted(a, host_viewer(a), workers=("张三", "李四"))
        y = await make.register(a)
        pairs = {
            "ehs": (a.id, _host(a, Role.EHS_OFFICER, None).id),
            "admin": (a.id, a.user(Role.TENANT_ADMIN).id),
            "ehs_p2": (a.id, _host(a, Role.EHS_OFFICER, "P2").id),
            "supervisor": (a.id, a.user(Role.UNIT_SUPERVISOR).id),
            "x": (a.id, x.admin.user_id),
            "y": (a.id, y.admin.user_id),
            "zhang": await _worker_login(database, x, "张三"),
            "b_ehs": (b.id, b.user(Role.EHS_OFFICER).id),
        }
        tokens = {
            name: {"Authorization": f"Bearer {await issue_token(database, tenant, user)}"}
            for name, (tenant, user) in pairs.items()
        }
        async with AsyncTestClient(app=create_app(settings)) as client:
            yield Stage(client, database, settings, a, b, x, y, tokens)
    finally:
        await database.dispose()


def _problem(response: Any) -> tuple[int, str, str]:
    body = response.json()
    assert body["status_code"] == response.status_code
    problem = body["errors"][0]
    return response.status_code, problem["field"], problem["rule"]


async def _verify(stage: Stage, verification_url: str) -> str:
    token = verification_url.split("/v/", 1)[1]
    checked = await stage.client.get(f"{API}/verify/{token}")
    assert checked.status_code == 200, checked.text
    return str(checked.json()["status"])


# --- the journey -----------------------------------------------------------------------------


async def test_author_publish_take_pass_sign_print_and_verify(stage: Stage) -> None:
    client, tokens = stage.client, stage.tokens
    created = await client.post(
        f"{TRAINING}/inductions",
        json={"plant_id": stage.p1, "content": content()},
        headers=tokens["ehs"],
    )
    assert created.status_code == 201, created.text
    induction = created.json()
    assert induction["current_version"] == 0 and induction["draft_changed"] is True
    path = f"{TRAINING}/inductions/{induction['id']}"
    changed = await client.put(
        f"{path}/draft", json={"content": content(pass_mark=60)}, headers=tokens["ehs"]
    )
    assert changed.status_code == 200 and changed.json()["draft"]["pass_mark"] == 60
    published = await client.post(f"{path}/publish", headers=tokens["ehs"])
    assert published.status_code == 201, published.text
    v1 = published.json()
    assert v1["version"] == 1 and len(v1["content_hash"]) == 64
    again = await client.post(f"{path}/publish", headers=tokens["ehs"])
    assert _problem(again) == (409, "draft", "changed")
    listed = await client.get(f"{TRAINING}/inductions", headers=tokens["admin"])
    assert induction["id"] in {item["id"] for item in listed.json()}

    mine = await client.get(f"{TRAINING}/assignments", headers=tokens["zhang"])
    assert mine.status_code == 200, mine.text
    (assignment,) = [item for item in mine.json() if item["induction_id"] == induction["id"]]
    assert assignment["status"] == "pending"
    assert assignment["attempts_left_today"] == 3
    assert (assignment["version"], assignment["content_hash"]) == (1, v1["content_hash"])
    assert assignment["plant_name"] == "P1 厂区"

    reading = await client.get(
        f"{TRAINING}/assignments/{induction['id']}/content", headers=tokens["zhang"]
    )
    assert reading.status_code == 200, reading.text
    section = reading.json()["sections"][0]
    assert "<strong>安全帽</strong>" in section["body_html"]
    assert "<script>" not in section["body_html"]
    assert "correct" not in reading.text and "第 0 题" not in reading.text

    started = await client.post(
        f"{TRAINING}/assignments/{induction['id']}/attempts", headers=tokens["zhang"]
    )
    assert started.status_code == 201, started.text
    attempt = started.json()
    assert len(attempt["questions"]) == 3 and "correct" not in started.text
    assert attempt["passed"] is None and attempt["pass_mark"] == 60
    reloaded = await client.post(
        f"{TRAINING}/assignments/{induction['id']}/attempts", headers=tokens["zhang"]
    )
    assert reloaded.json()["id"] == attempt["id"], "a reload hands back the open attempt"
    answers = {question["id"]: CORRECT[question["id"]] for question in attempt["questions"]}
    submitted = await client.post(
        f"{TRAINING}/attempts/{attempt['id']}/answers",
        json={"answers": answers},
        headers=tokens["zhang"],
    )
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["score"] == 100 and submitted.json()["passed"] is True
    assert submitted.json()["wrong"] == []

    signed = await client.post(
        f"{TRAINING}/attempts/{attempt['id']}/signature",
        json=signature("张三", 1),
        headers={**tokens["zhang"], "User-Agent": "WorkerPhone/1.0"},
    )
    assert signed.status_code == 201, signed.text
    record = signed.json()
    assert record["worker_id"] == stage.worker("张三") and record["valid_until"]
    assert await _verify(stage, record["verification_url"]) == "valid"

    for who in ("zhang", "x", "ehs", "supervisor"):
        seen = await client.get(f"{TRAINING}/signatures/{record['id']}", headers=tokens[who])
        assert seen.status_code == 200, (who, seen.text)
        assert seen.json()["record_hash"] == record["record_hash"]
    for who in ("y", "ehs_p2", "b_ehs"):
        hidden = await client.get(f"{TRAINING}/signatures/{record['id']}", headers=tokens[who])
        assert hidden.status_code == 404, (who, hidden.text)

    pdf = await client.get(f"{TRAINING}/signatures/{record['id']}/record.pdf", headers=tokens["x"])
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == (
        f'inline; filename="induction-record-{record["id"]}.pdf"'
    )
    assert pdf.content.startswith(b"%PDF")

    board = await client.get(f"{TRAINING}/plants/{stage.p1}/board", headers=tokens["ehs"])
    assert board.status_code == 200, board.text
    rows = {
        (row["worker_name"], row["status"], row["signed_version"])
        for row in board.json()
        if row["induction_id"] == induction["id"]
    }
    assert rows == {("张三", "done", 1), ("李四", "pending", None)}
    pending = await client.get(
        f"{TRAINING}/plants/{stage.p1}/board?status=pending", headers=tokens["ehs"]
    )
    assert {row["status"] for row in pending.json()} == {"pending"}

    await client.put(
        f"{path}/draft", json={"content": content(pass_mark=80)}, headers=tokens["ehs"]
    )
    v2 = await client.post(f"{path}/publish", headers=tokens["ehs"])
    assert v2.status_code == 201 and v2.json()["version"] == 2
    assert await _verify(stage, record["verification_url"]) == "superseded"
    detail = await client.get(path, headers=tokens["ehs"])
    assert [version["version"] for version in detail.json()["versions"]] == [1, 2]
    assert detail.json()["draft_changed"] is False
    retired = await client.post(f"{path}/retire", headers=tokens["ehs"])
    assert retired.status_code == 200 and retired.json()["retired"] is True
    mine = await client.get(f"{TRAINING}/assignments", headers=tokens["zhang"])
    assert induction["id"] not in {item["induction_id"] for item in mine.json()}


async def test_assisted_session_by_the_company_administrator(stage: Stage) -> None:
    client, tokens = stage.client, stage.tokens
    induction_id = await stage.published()
    li = f"?worker_id={stage.worker('李四')}"
    listed = await client.get(f"{TRAINING}/assignments{li}", headers=tokens["x"])
    assert listed.status_code == 200, listed.text
    assert induction_id in {item["induction_id"] for item in listed.json()}
    attempt_id = await stage.passed_attempt(induction_id, "x", li)
    signed = await client.post(
        f"{TRAINING}/attempts/{attempt_id}/signature{li}",
        json=signature("李四", 2),
        headers=tokens["x"],
    )
    assert signed.status_code == 201, signed.text
    assert signed.json()["worker_id"] == stage.worker("李四")

    # Another company's administrator, and a worker naming someone else, reach nothing.
    for who in ("y", "zhang"):
        for method, url in (
            ("GET", f"{TRAINING}/assignments{li}"),
            ("GET", f"{TRAINING}/attempts/{attempt_id}{li}"),
            ("POST", f"{TRAINING}/assignments/{induction_id}/attempts{li}"),
        ):
            response = await client.request(method, url, headers=tokens[who])
            assert response.status_code == 404, (who, url, response.text)
    # The worker's own login does not reach the attempt taken for a colleague either.
    own = await client.get(f"{TRAINING}/attempts/{attempt_id}", headers=tokens["zhang"])
    assert own.status_code == 404
    no_worker = await client.get(f"{TRAINING}/assignments", headers=tokens["x"])
    assert no_worker.status_code == 404, "an administrator's login belongs to no worker"


async def test_roles_and_plants_keep_to_their_own(stage: Stage) -> None:
    client, tokens = stage.client, stage.tokens
    induction_id = await stage.published()
    body = {"plant_id": stage.p1, "content": content()}
    for who in ("zhang", "x"):
        refused = await client.post(f"{TRAINING}/inductions", json=body, headers=tokens[who])
        assert refused.status_code == 403, refused.text
        listing = await client.get(f"{TRAINING}/inductions", headers=tokens[who])
        assert listing.status_code == 403
    board = f"{TRAINING}/plants/{stage.p1}/board"
    assert (await client.get(board, headers=tokens["zhang"])).status_code == 403
    assert (await client.get(board, headers=tokens["supervisor"])).status_code == 200
    assert (await client.get(board, headers=tokens["ehs_p2"])).status_code == 404
    # Another tenant's plant shows nothing of it (row-level security; the service does not
    # look the plant up, so the answer is an empty board rather than 404).
    foreign_board = await client.get(board, headers=tokens["b_ehs"])
    assert foreign_board.status_code in (200, 404) and "张三" not in foreign_board.text
    for who in ("ehs_p2", "b_ehs"):
        detail = await client.get(f"{TRAINING}/inductions/{induction_id}", headers=tokens[who])
        assert detail.status_code == 404, who
        publish = await client.post(
            f"{TRAINING}/inductions/{induction_id}/publish", headers=tokens[who]
        )
        assert publish.status_code == 404, who
    p2_list = await client.get(f"{TRAINING}/inductions", headers=tokens["ehs_p2"])
    assert p2_list.status_code == 200 and p2_list.json() == []
    created = await client.post(f"{TRAINING}/inductions", json=body, headers=tokens["ehs_p2"])
    assert created.status_code == 404, "authoring for a plant outside the role's scope"
    foreign = await client.get(
        f"{TRAINING}/assignments/{induction_id}/content", headers=tokens["b_ehs"]
    )
    assert foreign.status_code == 403


# --- bad input -------------------------------------------------------------------------------


async def test_bad_input_names_the_field_and_the_rule(stage: Stage) -> None:
    client, tokens = stage.client, stage.tokens
    bad_bank = content(draw_count=9)
    refused = await client.post(
        f"{TRAINING}/inductions",
        json={"plant_id": stage.p1, "content": bad_bank},
        headers=tokens["ehs"],
    )
    assert _problem(refused) == (422, "content.draw_count", "max_bank")
    malformed = await client.get(f"{TRAINING}/inductions/not-a-uuid", headers=tokens["ehs"])
    assert _problem(malformed) == (422, "induction_id", "uuid")
    unknown = await client.post(
        f"{TRAINING}/inductions",
        json={"plant_id": stage.p1, "content": content(), "extra": 1},
        headers=tokens["ehs"],
    )
    assert _problem(unknown) == (400, "extra", "unknown_field")

    # One attempt a day: an answer to a question not drawn is refused and burns nothing; a
    # failed paper does, and the next start is refused.
    once = await stage.published(attempts_per_day=1)
    started = await client.post(f"{TRAINING}/assignments/{once}/attempts", headers=tokens["zhang"])
    attempt = started.json()
    drawn = {question["id"] for question in attempt["questions"]}
    undrawn = next(question_id for question_id in CORRECT if question_id not in drawn)
    answers_url = f"{TRAINING}/attempts/{attempt['id']}/answers"
    extra = await client.post(
        answers_url, json={"answers": {undrawn: [0]}}, headers=tokens["zhang"]
    )
    assert _problem(extra) == (422, "answers", "drawn_only")
    wrong = {question_id: [2] for question_id in drawn}
    failed = await client.post(answers_url, json={"answers": wrong}, headers=tokens["zhang"])
    assert failed.status_code == 200 and failed.json()["passed"] is False
    assert sorted(failed.json()["wrong"]) == sorted(drawn)
    twice = await client.post(answers_url, json={"answers": wrong}, headers=tokens["zhang"])
    assert _problem(twice) == (409, "attempt", "submitted_once")
    limit = await client.post(f"{TRAINING}/assignments/{once}/attempts", headers=tokens["zhang"])
    assert _problem(limit) == (422, "induction_id", "attempts_per_day")
    unsigned = await client.post(
        f"{TRAINING}/attempts/{attempt['id']}/signature",
        json=signature("张三", 10),
        headers=tokens["zhang"],
    )
    assert _problem(unsigned) == (422, "attempt", "passed")

    # Signing: a trivial drawing, someone else's name, a replayed drawing, a superseded version.
    induction_id = await stage.published()
    attempt_id = await stage.passed_attempt(induction_id, "zhang")
    sign_url = f"{TRAINING}/attempts/{attempt_id}/signature"
    trivial = signature("张三", 11)
    trivial["strokes"]["strokes"] = trivial["strokes"]["strokes"][:1]
    assert _problem(await client.post(sign_url, json=trivial, headers=tokens["zhang"])) == (
        422,
        "signature.strokes",
        "min_strokes",
    )
    other_name = await client.post(sign_url, json=signature("李四", 12), headers=tokens["zhang"])
    assert _problem(other_name) == (422, "full_name", "matches_signer")
    first = await client.post(sign_url, json=signature("张三", 13), headers=tokens["zhang"])
    assert first.status_code == 201, first.text

    second_id = await stage.published()
    replay_attempt = await stage.passed_attempt(second_id, "zhang")
    replay_url = f"{TRAINING}/attempts/{replay_attempt}/signature"
    replayed = await client.post(replay_url, json=signature("张三", 13), headers=tokens["zhang"])
    assert _problem(replayed) == (409, "signature.strokes", "not_replayed")

    await client.put(
        f"{TRAINING}/inductions/{second_id}/draft",
        json={"content": content("改过的培训")},
        headers=tokens["ehs"],
    )
    republished = await client.post(
        f"{TRAINING}/inductions/{second_id}/publish", headers=tokens["ehs"]
    )
    assert republished.status_code == 201
    stale = await client.post(replay_url, json=signature("张三", 14), headers=tokens["zhang"])
    assert _problem(stale) == (422, "attempt", "current_version")


# --- briefings -------------------------------------------------------------------------------


async def test_a_briefing_is_signed_by_the_briefer_and_the_whole_crew(stage: Stage) -> None:
    client, tokens = stage.client, stage.tokens
    supervisor = stage.a.user(Role.UNIT_SUPERVISOR)
    principal = Principal(
        tenant_id=stage.a.id,
        tenant_slug=stage.a.slug,
        tenant_name="",
        user_id=supervisor.id,
        name="用户3",
        email=supervisor.email,
        locale="zh_CN",
        grants=frozenset({Grant(Role.UNIT_SUPERVISOR, stage.a.plants["P1"])}),
    )
    source = BriefingSource(
        permit_id=uuid.uuid4(),
        permit_number="DH-20261128-001",
        plant_id=stage.a.plants["P1"],
        work_type=WorkType.HOT_WORK,
        location="二号罐区",
        work_content="管线焊接",
        hazards=("可燃气体",),
        control_measures=("动火分析合格",),
        emergency_measures=("配备灭火器",),
        crew=(stage.x.workers["张三"], stage.x.workers["李四"]),
    )
    async with in_tenant(stage.database, stage.a.id) as session:
        briefing_id = str((await prepare_briefing(session, principal, source)).id)
    path = f"{TRAINING}/briefings/{briefing_id}"

    to_sign = await client.get(f"{TRAINING}/briefings/mine", headers=tokens["zhang"])
    assert to_sign.status_code == 200, to_sign.text
    assert [item["id"] for item in to_sign.json()] == [briefing_id]
    opened = await client.get(path, headers=tokens["supervisor"])
    assert opened.status_code == 200, opened.text
    assert opened.json()["complete"] is False and opened.json()["briefer_signed"] is False
    assert opened.json()["content"]["hazards"] == ["可燃气体"]

    briefer = await client.post(
        f"{path}/briefer-signature",
        json={"signature": signature("用户3", 20)},
        headers=tokens["supervisor"],
    )
    assert briefer.status_code == 201, briefer.text
    assert briefer.json()["worker_id"] is None
    own_phone = await client.post(
        f"{path}/my-signature", json=signature("张三", 21), headers=tokens["zhang"]
    )
    assert own_phone.status_code == 201, own_phone.text
    again = await client.post(
        f"{path}/my-signature", json=signature("张三", 22), headers=tokens["zhang"]
    )
    assert _problem(again) == (409, "briefing", "signed_once")
    tablet_body = {"worker_id": stage.worker("李四"), "signature": signature("李四", 23)}
    refused = await client.post(f"{path}/crew-signatures", json=tablet_body, headers=tokens["x"])
    assert refused.status_code == 403
    tablet = await client.post(
        f"{path}/crew-signatures", json=tablet_body, headers=tokens["supervisor"]
    )
    assert tablet.status_code == 201, tablet.text
    assert tablet.json()["worker_id"] == stage.worker("李四")

    done = await client.get(path, headers=tokens["supervisor"])
    assert done.json()["complete"] is True and done.json()["briefer_signed"] is True
    assert {member["worker_name"] for member in done.json()["crew"]} == {"张三", "李四"}
    assert all(member["signed_at"] for member in done.json()["crew"])
    remaining = await client.get(f"{TRAINING}/briefings/mine", headers=tokens["zhang"])
    assert remaining.json() == []


# --- the API's description -------------------------------------------------------------------


async def test_openapi_lists_the_training_routes_and_which_keep_working_unpaid(
    stage: Stage,
) -> None:
    schema = await stage.client.get("/schema/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in (
        "/api/v1/training/inductions",
        "/api/v1/training/inductions/{induction_id}/publish",
        "/api/v1/training/plants/{plant_id}/board",
        "/api/v1/training/assignments/{induction_id}/attempts",
        "/api/v1/training/attempts/{attempt_id}/signature",
        "/api/v1/training/signatures/{signature_id}/record.pdf",
        "/api/v1/training/briefings/{briefing_id}/crew-signatures",
    ):
        assert path in paths, path
        for operation in paths[path].values():
            assert operation.get("summary"), path

    exempt = {
        (method, route.path)
        for route in stage.client.app.routes
        for handler in getattr(route, "route_handlers", [])
        if handler.opt.get(BILLING_EXEMPT) and route.path.startswith(TRAINING)
        for method in handler.http_methods
    }
    assert exempt == {
        ("POST", "/api/v1/training/assignments/{induction_id:str}/attempts"),
        ("POST", "/api/v1/training/attempts/{attempt_id:str}/answers"),
        ("POST", "/api/v1/training/attempts/{attempt_id:str}/signature"),
        ("POST", "/api/v1/training/briefings/{briefing_id:str}/briefer-signature"),
        ("POST", "/api/v1/training/briefings/{briefing_id:str}/crew-signatures"),
        ("POST", "/api/v1/training/briefings/{briefing_id:str}/my-signature"),
    }
