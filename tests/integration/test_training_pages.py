"""The training pages over HTTP: EHS writes and publishes an induction; a worker reads it, fails
and passes the quiz, signs with drawn strokes and sees the record; refused signatures come back
with the problem next to the field; a company administrator runs an assisted session; a briefing
is signed on the briefer's tablet by the briefer and then the crew."""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from PIL import Image
from sqlalchemy import select

from infra.db import Database
from infra.settings import Settings
from onboarding import services as onboarding
from onboarding.catalogue import WorkType
from onboarding.schemas import ContractorUserIn
from portal.app import create_app
from tenants.access import Grant, Principal
from tenants.models import Role
from tests.factories import SeededTenant, SeededUser, TenantFactory, audit_actions
from tests.onboarding_factories import Company, OnboardingFactory, host_viewer, in_tenant
from training import briefings
from training.models import Induction, InductionSignature, QuizAttempt
from training.schemas import BriefingSource

CSRF_FIELD = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')
NO_FILE = {"unused": ("", b"", "application/octet-stream")}
WORKER_PASSWORD = "worker-pass-12345"
QUESTIONS = (
    ("动火作业前必须办理什么？", ["动火作业票", "出门证", "加班单"], "1"),
    ("进入装置区必须佩戴哪些防护用品？", ["安全帽", "拖鞋", "防护眼镜", "耳机"], "1,3"),
    ("发现泄漏时首先应该怎么做？", ["继续作业", "立即报告并撤离", "自行处理"], "2"),
)
RIGHT = {"q_q1": ["0"], "q_q2": ["0", "2"], "q_q3": ["1"]}
WRONG = {"q_q1": ["1"], "q_q2": ["0"], "q_q3": ["1"]}


@pytest.fixture
async def client(sqlite_settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(app=create_app(sqlite_settings)) as test_client:
        test_client.follow_redirects = False
        yield test_client


async def _csrf(client: AsyncTestClient[Any], path: str) -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    match = CSRF_FIELD.search(page.text)
    assert match is not None, page.text
    return match.group(1)


async def _sign_in(client: AsyncTestClient[Any], slug: str, email: str, password: str) -> None:
    csrf = await _csrf(client, f"/t/{slug}/login")
    response = await client.post(
        "/login",
        data={"tenant": slug, "email": email, "password": password, "_csrf_token": csrf},
    )
    assert response.status_code in (302, 303), response.text


async def _post(
    client: AsyncTestClient[Any],
    form_path: str,
    action: str,
    form: dict[str, Any],
    files: dict[str, Any] | None = None,
) -> Any:
    """Send a page's form as a browser would: multipart, with the page's CSRF token."""
    csrf = await _csrf(client, form_path)
    return await client.post(action, data={**form, "_csrf_token": csrf}, files=files or NO_FILE)


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "orange").save(buffer, format="PNG")
    return buffer.getvalue()


def _strokes(seed: int = 0, *, width: int = 340, height: int = 190) -> str:
    """Two strokes across the pad, a little different for each seed (a drawing is never
    accepted twice)."""
    first = [[20 + i * 12 + seed * 0.3, 40 + (i % 5) * 9, i * 16] for i in range(20)]
    second = [[60 + i * 9, 150 - i * 5 + seed * 0.1, 400 + i * 16] for i in range(15)]
    return json.dumps({"width": width, "height": height, "strokes": [first, second]})


def _induction_form(plant_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "plant_id": str(plant_id),
        "work_type": "",
        "title": "东海厂区入厂安全培训",
        "draw_count": "3",
        "pass_mark": "100",
        "attempts_per_day": "2",
        "validity_days": "365",
        "section_0_title": "厂区安全须知",
        "section_0_body": "进入厂区必须：\n\n- 佩戴**安全帽**\n- 限速 <script>alert(1)</script>",
        "section_0_video_url": "https://video.example/induction.mp4",
        "section_1_title": "",
        "section_1_body": "",
        "section_1_video_url": "",
    }
    for index, (text, options, correct) in enumerate(QUESTIONS):
        form[f"question_{index}_text"] = text
        form[f"question_{index}_kind"] = "multiple" if "," in correct else "single"
        form[f"question_{index}_options"] = "\n".join(options)
        form[f"question_{index}_correct"] = correct
    form.update({"question_3_text": "", "question_3_options": "", "question_3_correct": ""})
    form.update(overrides)
    return form


async def _worker_login(
    database: Database, company: Company, worker: str, email: str
) -> SeededUser:
    async with in_tenant(database, company.tenant.id) as session:
        user = await onboarding.add_contractor_user(
            session,
            company.admin,
            company.contractor_id,
            ContractorUserIn(
                email=email,
                name=worker,
                password=WORKER_PASSWORD,
                role="contractor_worker",
                worker_id=company.workers[worker],
            ),
        )
    return SeededUser(user.id, email, WORKER_PASSWORD, Role.CONTRACTOR_WORKER, None)


async def _tenant(factory: TenantFactory, database: Database) -> SeededTenant:
    return await factory.create(
        database,
        users=(
            (Role.TENANT_ADMIN, None),
            (Role.EHS_OFFICER, None),
            (Role.UNIT_SUPERVISOR, "P1"),
        ),
    )


async def _publish(client: AsyncTestClient[Any], tenant: SeededTenant) -> uuid.UUID:
    """EHS writes the induction on the form and publishes it."""
    slug = tenant.slug
    created = await _post(
        client,
        f"/t/{slug}/inductions/new",
        f"/t/{slug}/inductions",
        _induction_form(tenant.plants["P1"]),
        files={"section_0_images": ("site-map.png", _png(), "image/png")},
    )
    assert created.status_code in (302, 303), created.text
    location = created.headers["location"]
    induction_id = uuid.UUID(location.rsplit("/", 1)[-1])
    published = await _post(client, location, f"{location}/publish", {})
    assert published.status_code in (302, 303), published.text
    return induction_id


async def _new_client(app: Any) -> AsyncTestClient[Any]:
    other = AsyncTestClient(app=app)
    await other.__aenter__()
    other.follow_redirects = False
    return other


async def test_ehs_writes_publishes_and_the_worker_fails_passes_and_signs(
    client: AsyncTestClient[Any],
    sqlite_db: Database,
    sqlite_settings: Settings,
    factory: TenantFactory,
) -> None:
    tenant = await _tenant(factory, sqlite_db)
    slug = tenant.slug
    companies = OnboardingFactory(sqlite_db, sqlite_settings)
    company = await companies.admitted(tenant, host_viewer(tenant), workers=("张三",))
    worker_user = await _worker_login(sqlite_db, company, "张三", "zhangsan@worker.example")

    # EHS: a refused form names the row's field and keeps what was typed.
    ehs = tenant.user(Role.EHS_OFFICER)
    await _sign_in(client, slug, ehs.email, ehs.password)
    refused = await _post(
        client,
        f"/t/{slug}/inductions/new",
        f"/t/{slug}/inductions",
        _induction_form(tenant.plants["P1"], question_1_correct="1,5", draw_count="3"),
    )
    assert refused.status_code == 422, refused.text
    assert 'data-field="question_1_correct"' in refused.text
    assert "东海厂区入厂安全培训" in refused.text
    bad_number = await _post(
        client,
        f"/t/{slug}/inductions/new",
        f"/t/{slug}/inductions",
        _induction_form(tenant.plants["P1"], question_2_correct="两"),
    )
    assert bad_number.status_code == 400
    assert 'data-field="question_2_correct"' in bad_number.text
    too_many = await _post(
        client,
        f"/t/{slug}/inductions/new",
        f"/t/{slug}/inductions",
        _induction_form(tenant.plants["P1"], draw_count="9"),
    )
    assert too_many.status_code == 422
    assert 'data-field="draw_count"' in too_many.text

    induction_id = await _publish(client, tenant)
    edit = await client.get(f"/t/{slug}/inductions/{induction_id}")
    assert 'data-testid="current-version"' in edit.text and "v1" in edit.text
    assert 'data-testid="section-images"' in edit.text
    # Saving the draft again keeps the photo and leaves nothing to publish.
    form = _induction_form(tenant.plants["P1"])
    image_id = re.search(r'name="section_0_remove_images" value="([^"]+)"', edit.text)
    assert image_id is not None
    form["section_0_image_ids"] = image_id.group(1)
    path = f"/t/{slug}/inductions/{induction_id}"
    saved = await _post(client, path, path, form)
    assert saved.status_code in (302, 303), saved.text
    assert 'data-testid="publish"' not in (await client.get(path)).text
    changed = await _post(client, path, path, {**form, "title": "东海厂区入厂安全培训（修订）"})
    assert changed.status_code in (302, 303), changed.text
    assert 'data-testid="publish"' in (await client.get(path)).text
    listing = await client.get(f"/t/{slug}/inductions")
    assert 'data-status="changed"' in listing.text
    board = await client.get(f"/t/{slug}/induction-board?plant={tenant.plants['P1']}")
    assert board.status_code == 200, board.text
    assert 'data-testid="board-row" data-status="pending"' in board.text
    dashboard = await client.get(f"/t/{slug}/")
    assert f'href="/t/{slug}/inductions"' in dashboard.text

    # The worker, on their own login.
    async with AsyncTestClient(app=client.app) as phone:
        phone.follow_redirects = False
        await _sign_in(phone, slug, worker_user.email, worker_user.password)
        home = await phone.get(f"/t/{slug}/")
        assert f'href="/t/{slug}/training"' in home.text
        listed = await phone.get(f"/t/{slug}/training")
        assert listed.status_code == 200, listed.text
        assert 'data-status="pending"' in listed.text
        reading = await phone.get(f"/t/{slug}/training/read/{induction_id}")
        assert reading.status_code == 200
        assert "<strong>安全帽</strong>" in reading.text
        assert "<script>alert(1)</script>" not in reading.text
        assert 'href="https://video.example/induction.mp4"' in reading.text
        image = re.search(r'<img class="reading-image" src="([^"]+)"', reading.text)
        assert image is not None
        assert (await phone.get(image.group(1))).headers["content-type"] == "image/png"

        async def attempt() -> tuple[str, str]:
            started = await _post(
                phone,
                f"/t/{slug}/training/read/{induction_id}",
                f"/t/{slug}/training/read/{induction_id}/start",
                {},
            )
            assert started.status_code in (302, 303), started.text
            quiz_path = started.headers["location"]
            quiz = await phone.get(quiz_path)
            assert quiz.status_code == 200
            return quiz_path, quiz.text

        quiz_path, quiz = await attempt()
        assert quiz.count('data-testid="question"') == 3
        assert 'type="checkbox" name="q_q2"' in quiz and 'type="radio" name="q_q1"' in quiz
        # Nothing on the page gives the answer away.
        form = quiz.split('data-testid="quiz"')[1]
        assert " checked" not in form and "correct" not in form.split("</p>", 1)[1].lower()

        failed = await _post(phone, quiz_path, quiz_path, WRONG)
        assert failed.status_code in (302, 303), failed.text
        result = await phone.get(quiz_path)
        assert 'data-passed="false"' in result.text
        assert QUESTIONS[0][0] in result.text and QUESTIONS[1][0] in result.text
        assert QUESTIONS[2][0] not in result.text.split('data-testid="wrong"')[1]
        assert "33%" in result.text
        listed = await phone.get(f"/t/{slug}/training")
        assert 'data-status="failed"' in listed.text

        quiz_path, _quiz = await attempt()
        passed = await _post(phone, quiz_path, quiz_path, RIGHT)
        assert passed.status_code in (302, 303)
        result = await phone.get(quiz_path)
        assert 'data-passed="true"' in result.text
        assert "100%" in result.text
        sign_path = quiz_path.replace("/quiz/", "/sign/")
        assert f'href="{sign_path}"' in result.text

        # No attempts left today (2 per day): the reading page says so next to the button.
        exhausted = await _post(
            phone,
            f"/t/{slug}/training/read/{induction_id}",
            f"/t/{slug}/training/read/{induction_id}/start",
            {},
        )
        assert exhausted.status_code == 422
        assert 'role="alert"' in exhausted.text

        sign_page = await phone.get(sign_path)
        assert sign_page.status_code == 200
        assert 'data-testid="signature-pad"' in sign_page.text
        assert "/static/signature-pad.js" in sign_page.text

        # A trivial drawing, a wrong name, no consent: each refused next to its field.
        dot = json.dumps({"width": 340, "height": 190, "strokes": [[[10, 10, 0]]]})
        trivial = await _post(
            phone, sign_path, sign_path, {"strokes": dot, "full_name": "张三", "consent": "yes"}
        )
        assert trivial.status_code == 422, trivial.text
        assert 'data-field="strokes"' in trivial.text
        assert 'value="张三"' in trivial.text
        mismatch = await _post(
            phone,
            sign_path,
            sign_path,
            {"strokes": _strokes(1), "full_name": "李四", "consent": "yes"},
        )
        assert mismatch.status_code == 422
        assert 'data-field="full_name"' in mismatch.text
        # The refused name keeps the drawing for the pad to show again.
        assert "&#34;strokes&#34;" in mismatch.text or "&quot;strokes&quot;" in mismatch.text
        no_consent = await _post(
            phone, sign_path, sign_path, {"strokes": _strokes(1), "full_name": "张三"}
        )
        assert no_consent.status_code == 422
        assert 'data-field="consent"' in no_consent.text
        nothing = await _post(phone, sign_path, sign_path, {"strokes": "", "full_name": "张三"})
        assert nothing.status_code == 400 and 'data-field="strokes"' in nothing.text

        signed = await _post(
            phone,
            sign_path,
            sign_path,
            {
                "strokes": _strokes(1),
                "full_name": "张 三",
                "consent": "yes",
                "latitude": "29.87",
                "longitude": "121.55",
                "accuracy": "12",
            },
        )
        assert signed.status_code in (302, 303), signed.text
        record_path = signed.headers["location"]
        record = await phone.get(record_path)
        assert record.status_code == 200, record.text
        assert 'data-testid="record-worker">张三' in record.text
        assert 'data-testid="signature-image"' in record.text
        assert "/record.pdf" in record.text
        verification = re.search(r'href="([^"]+)"[^>]*data-testid="verification-link"', record.text)
        assert verification is not None
        verify_path = "/v/" + verification.group(1).split("/v/", 1)[1]
        verified = await phone.get(verify_path)
        assert 'data-status="valid"' in verified.text
        listed = await phone.get(f"/t/{slug}/training")
        assert 'data-status="done"' in listed.text
        # Signing again is refused; the sign page now leads to the record.
        again = await phone.get(sign_path)
        assert again.status_code in (302, 303)
        assert again.headers["location"] == record_path

    async with in_tenant(sqlite_db, tenant.id) as session:
        signature = (await session.execute(select(InductionSignature))).scalar_one()
        assert signature.latitude == pytest.approx(29.87)
        assert signature.full_name == "张 三"
    assert "induction.signed" in await audit_actions(sqlite_db, tenant.id, "induction.")


async def test_record_pdf_is_served_inline(
    client: AsyncTestClient[Any],
    sqlite_db: Database,
    sqlite_settings: Settings,
    factory: TenantFactory,
) -> None:
    from pathlib import Path

    import infra

    template = Path(infra.__file__).parent / "templates" / "pdf" / "induction_record.html"
    if not template.exists():
        pytest.skip("the induction record PDF template is not there yet")
    tenant = await _tenant(factory, sqlite_db)
    slug = tenant.slug
    company = await OnboardingFactory(sqlite_db, sqlite_settings).admitted(
        tenant, host_viewer(tenant), workers=("王五",)
    )
    user = await _worker_login(sqlite_db, company, "王五", "wangwu@worker.example")
    ehs = tenant.user(Role.EHS_OFFICER)
    await _sign_in(client, slug, ehs.email, ehs.password)
    induction_id = await _publish(client, tenant)
    async with AsyncTestClient(app=client.app) as phone:
        phone.follow_redirects = False
        await _sign_in(phone, slug, user.email, user.password)
        record_path = await _take_and_sign(phone, slug, induction_id, "", "王五", 7)
        pdf = await phone.get(f"{record_path.split('?')[0]}/record.pdf")
        assert pdf.status_code == 200, pdf.text
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.headers["content-disposition"].startswith("inline")
        assert pdf.content.startswith(b"%PDF")


async def _take_and_sign(
    client: AsyncTestClient[Any],
    slug: str,
    induction_id: uuid.UUID,
    query: str,
    name: str,
    seed: int,
) -> str:
    read = f"/t/{slug}/training/read/{induction_id}{query}"
    started = await _post(client, read, f"/t/{slug}/training/read/{induction_id}/start{query}", {})
    assert started.status_code in (302, 303), started.text
    quiz_path = started.headers["location"]
    answered = await _post(client, quiz_path, quiz_path, RIGHT)
    assert answered.status_code in (302, 303), answered.text
    sign_path = quiz_path.replace("/quiz/", "/sign/")
    signed = await _post(
        client,
        sign_path,
        sign_path,
        {"strokes": _strokes(seed), "full_name": name, "consent": "yes"},
    )
    assert signed.status_code in (302, 303), signed.text
    return signed.headers["location"]


async def test_assisted_session_on_the_company_tablet(
    client: AsyncTestClient[Any],
    sqlite_db: Database,
    sqlite_settings: Settings,
    factory: TenantFactory,
) -> None:
    tenant = await _tenant(factory, sqlite_db)
    slug = tenant.slug
    company = await OnboardingFactory(sqlite_db, sqlite_settings).admitted(
        tenant, host_viewer(tenant), workers=("赵六", "孙七")
    )
    other = await OnboardingFactory(sqlite_db, sqlite_settings).admitted(
        tenant, host_viewer(tenant), workers=("周八",)
    )
    ehs = tenant.user(Role.EHS_OFFICER)
    await _sign_in(client, slug, ehs.email, ehs.password)
    induction_id = await _publish(client, tenant)

    async with AsyncTestClient(app=client.app) as tablet:
        tablet.follow_redirects = False
        await _sign_in(tablet, slug, company.admin_email, company.admin_password)
        home = await tablet.get(f"/t/{slug}/")
        assert f'href="/t/{slug}/training"' in home.text
        picker = await tablet.get(f"/t/{slug}/training")
        assert picker.status_code == 200
        worker_id = company.workers["赵六"]
        assert f"?worker={worker_id}" in picker.text
        assert "周八" not in picker.text
        # Another company's worker is not found.
        foreign = await tablet.get(f"/t/{slug}/training?worker={other.workers['周八']}")
        assert foreign.status_code == 404

        query = f"?worker={worker_id}"
        listed = await tablet.get(f"/t/{slug}/training{query}")
        assert 'data-testid="assisted"' in listed.text
        assert f"/training/read/{induction_id}{query}" in listed.text
        record_path = await _take_and_sign(tablet, slug, induction_id, query, "赵六", 3)
        assert record_path.endswith(query)
        record = await tablet.get(record_path)
        assert record.status_code == 200
        assert 'data-testid="record-worker">赵六' in record.text

        # A version published between passing and signing: the signature is refused.
        second = f"?worker={company.workers['孙七']}"
        read = f"/t/{slug}/training/read/{induction_id}{second}"
        started = await _post(
            tablet, read, f"/t/{slug}/training/read/{induction_id}/start{second}", {}
        )
        quiz_path = started.headers["location"]
        assert (await _post(tablet, quiz_path, quiz_path, RIGHT)).status_code in (302, 303)
        path = f"/t/{slug}/inductions/{induction_id}"
        revised = {**_induction_form(tenant.plants["P1"]), "title": "入厂安全培训（第二版）"}
        assert (await _post(client, path, path, revised)).status_code in (302, 303)
        assert (await _post(client, path, f"{path}/publish", {})).status_code in (302, 303)
        sign_path = quiz_path.replace("/quiz/", "/sign/")
        superseded = await _post(
            tablet,
            sign_path,
            sign_path,
            {"strokes": _strokes(5), "full_name": "孙七", "consent": "yes"},
        )
        assert superseded.status_code == 422, superseded.text
        assert 'role="alert"' in superseded.text

    async with in_tenant(sqlite_db, tenant.id) as session:
        signature = (await session.execute(select(InductionSignature))).scalar_one()
        assert signature.assisted_by == company.admin.user_id
        assert signature.worker_id == worker_id
        attempts = (await session.execute(select(QuizAttempt))).scalars().all()
        assert {attempt.operated_by for attempt in attempts} == {company.admin.user_id}
        assert (await session.execute(select(Induction))).scalar_one().current_version == 2


async def test_briefing_signed_on_the_tablet_and_on_a_phone(
    client: AsyncTestClient[Any],
    sqlite_db: Database,
    sqlite_settings: Settings,
    factory: TenantFactory,
) -> None:
    tenant = await _tenant(factory, sqlite_db)
    slug = tenant.slug
    company = await OnboardingFactory(sqlite_db, sqlite_settings).admitted(
        tenant, host_viewer(tenant), workers=("钱一", "吴二", "郑三")
    )
    phone_user = await _worker_login(sqlite_db, company, "郑三", "zhengsan@worker.example")
    supervisor = tenant.user(Role.UNIT_SUPERVISOR)
    permit_id = uuid.uuid4()
    source = BriefingSource(
        permit_id=permit_id,
        permit_number="DH-P1-2026-0001",
        plant_id=tenant.plants["P1"],
        work_type=WorkType.HOT_WORK,
        location="P1 厂区 3 号罐区",
        work_content="更换法兰",
        hazards=("可燃气体", "高温"),
        control_measures=("动火前气体检测", "配备灭火器"),
        emergency_measures=("立即停止作业并撤离",),
        crew=tuple(company.workers[name] for name in ("钱一", "吴二", "郑三")),
    )
    principal = Principal(
        tenant_id=tenant.id,
        tenant_slug=slug,
        tenant_name="",
        user_id=supervisor.id,
        name="用户2",
        email=supervisor.email,
        locale="zh_CN",
        grants=frozenset({Grant(Role.UNIT_SUPERVISOR, tenant.plants["P1"])}),
    )
    async with in_tenant(sqlite_db, tenant.id) as session:
        briefing = await briefings.prepare_briefing(session, principal, source)
    base = f"/t/{slug}/briefings/{briefing.id}"

    await _sign_in(client, slug, supervisor.email, supervisor.password)
    page = await client.get(base)
    assert page.status_code == 200, page.text
    assert "可燃气体" in page.text and "立即停止作业并撤离" in page.text
    assert 'data-testid="crew-sign"' not in page.text
    dashboard = await client.get(f"/t/{slug}/")
    assert dashboard.status_code == 200
    worker_id = company.workers["钱一"]
    # The crew wait for the briefer.
    early = await _post(
        client,
        base,
        f"{base}/crew/{worker_id}",
        {"strokes": _strokes(20), "full_name": "钱一", "consent": "yes"},
    )
    assert early.status_code in (302, 303)
    assert early.headers["location"] == base
    assert (await client.get(f"{base}/crew/{worker_id}")).headers["location"] == base
    briefer_wrong = await _post(
        client,
        base,
        f"{base}/briefer",
        {"strokes": _strokes(21), "full_name": "别人", "consent": "yes"},
    )
    assert briefer_wrong.status_code == 422
    assert 'data-field="full_name"' in briefer_wrong.text
    briefer = await _post(
        client,
        base,
        f"{base}/briefer",
        {"strokes": _strokes(21), "full_name": "用户2", "consent": "yes"},
    )
    assert briefer.status_code in (302, 303), briefer.text
    page = await client.get(base)
    assert 'data-testid="briefer-signed"' in page.text
    assert f'href="{base}/crew/{company.workers["吴二"]}"' in page.text

    for index, name in enumerate(("钱一", "吴二")):
        crew_path = f"{base}/crew/{company.workers[name]}"
        form = await client.get(crew_path)
        assert form.status_code == 200
        assert 'data-testid="signer">' + name in form.text
        done = await _post(
            client,
            crew_path,
            crew_path,
            {"strokes": _strokes(30 + index), "full_name": name, "consent": "yes"},
        )
        assert done.status_code in (302, 303), done.text
        assert done.headers["location"] == base

    page = await client.get(base)
    assert 'data-testid="briefing-complete"' not in page.text
    assert page.text.count('data-signed="true"') == 2

    # The last crew member signs on their own phone.
    async with AsyncTestClient(app=client.app) as phone:
        phone.follow_redirects = False
        await _sign_in(phone, slug, phone_user.email, phone_user.password)
        mine = await phone.get(f"/t/{slug}/my-briefings")
        assert "DH-P1-2026-0001" in mine.text
        path = f"/t/{slug}/my-briefings/{briefing.id}"
        trivial = await _post(
            phone,
            path,
            path,
            {
                "strokes": json.dumps({"width": 300, "height": 150, "strokes": [[[5, 5, 0]]]}),
                "full_name": "郑三",
                "consent": "yes",
            },
        )
        assert trivial.status_code == 422 and 'data-field="strokes"' in trivial.text
        signed = await _post(
            phone, path, path, {"strokes": _strokes(40), "full_name": "郑三", "consent": "yes"}
        )
        assert signed.status_code in (302, 303), signed.text
        assert "DH-P1-2026-0001" not in (await phone.get(f"/t/{slug}/my-briefings")).text
        # A briefer's page is not a worker's.
        assert (await phone.get(base)).status_code == 403

    page = await client.get(base)
    assert 'data-testid="briefing-complete"' in page.text
    async with in_tenant(sqlite_db, tenant.id) as session:
        assert await briefings.briefing_complete(session, permit_id)
