"""The supplier scorecard on PostgreSQL: a job completed, rated and marked down for a finding,
the company's reviews approved through the real services, and the scorecard PDF of the approved
review — its text, its trend over the earlier review, its cache in object storage — and who may
download it over HTTP."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from pypdf import PdfReader
from sqlalchemy import select, update

from infra import documents
from infra.db import Database
from infra.errors import NotFound
from infra.settings import Settings
from onboarding import services as onboarding_services
from onboarding.catalogue import WorkType
from onboarding.models import Contractor
from onboarding.schemas import ContractorUserIn
from permits.models import Permit
from permits.services import actor_for
from permits.states import PermitState
from portal.app import create_app
from scoring import scorecard, services
from scoring.models import Rating, Review, ReviewState
from scoring.schemas import DimensionScores, FindingIn, RatingIn, ReviewApprovalIn, ReviewIn
from tenants import services as tenant_services
from tenants.models import User
from tests.factories import TenantFactory
from tests.permit_factories import PermitWorld, window

CSRF_FIELD = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')
FINDING = "动火点未配置灭火器"
SCORES = DimensionScores(safety=90, quality=80, schedule=85, housekeeping=70, cooperation=95)
HOST_PASSWORD = "host-pass-12345"
SECOND_ADMIN_PASSWORD = "second-admin-1"


@dataclass(frozen=True)
class RatedJob:
    permit: Permit
    rating: Rating
    rated_at: datetime


def quarter_of(day: date) -> tuple[int, int]:
    return day.year, (day.month - 1) // 3 + 1


def previous_quarter(day: date) -> tuple[int, int]:
    year, quarter = quarter_of(day)
    return (year - 1, 4) if quarter == 1 else (year, quarter - 1)


async def rated_job(world: PermitWorld, *, finding: bool = True) -> RatedJob:
    """A hot-work job approved through the chain, completed, rated by EHS, and (by default)
    marked down for an inspection finding of major severity."""
    at = window()
    permit = await world.approved(world.permit_in(WorkType.HOT_WORK, at), now=at.now)
    async with world.session() as session:
        await session.execute(
            update(Permit)
            .where(Permit.id == permit.id)
            .values(state=PermitState.COMPLETED.value, completed_at=at.end)
        )
    rated_at = at.end + timedelta(hours=1)
    async with world.session() as session:
        actor = await actor_for(session, world.ehs)
        rating = await services.rate_job(
            session, actor, permit.id, RatingIn(scores=SCORES, comment="焊口整洁"), now=rated_at
        )
    if finding:
        async with world.session() as session:
            actor = await actor_for(session, world.ehs)
            await services.record_finding(
                session,
                actor,
                FindingIn(
                    plant_id=world.plant_id,
                    contractor_id=world.company.contractor_id,
                    permit_id=permit.id,
                    severity="major",
                    description=FINDING,
                    observed_at=at.start + timedelta(hours=1),
                ),
                now=rated_at,
            )
    return RatedJob(await world.get(permit.id), rating, rated_at)


async def approved_review(
    world: PermitWorld,
    year: int,
    quarter: int,
    *,
    today: date,
    now: datetime,
    approve: bool = True,
) -> Review:
    async with world.session() as session:
        actor = await actor_for(session, world.ehs)
        review = await services.create_review(
            session,
            actor,
            ReviewIn(
                contractor_id=world.company.contractor_id,
                period_kind="quarter",
                year=year,
                quarter=quarter,
            ),
            now=now,
            today=today,
        )
        if approve:
            review = await services.approve_review(
                session, actor, review.id, ReviewApprovalIn(), now=now
            )
        return review


async def reviews_with_history(world: PermitWorld) -> tuple[RatedJob, Review, Review]:
    """The job's quarter approved, after the quarter before it."""
    job = await rated_job(world)
    day = job.permit.planned_start.date()
    earlier = await approved_review(
        world, *previous_quarter(day), today=day, now=job.rated_at + timedelta(minutes=5)
    )
    review = await approved_review(
        world, *quarter_of(day), today=day, now=job.rated_at + timedelta(minutes=10)
    )
    return job, earlier, review


@pytest.fixture
async def world(pg_db: Database, pg_settings: Settings, factory: TenantFactory) -> PermitWorld:
    return await PermitWorld.create(pg_db, pg_settings, factory)


def _compact(text: str) -> str:
    return "".join(text.split())


def _text(pdf: bytes) -> str:
    return _compact("".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages))


# --- the PDF ---------------------------------------------------------------------------------


async def test_the_scorecard_prints_company_grade_jobs_violations_and_trend(
    world: PermitWorld,
) -> None:
    job, earlier, review = await reviews_with_history(world)
    assert review.state == ReviewState.APPROVED.value and review.jobs == 1
    async with world.session() as session:
        fresh = await session.get_one(Review, review.id)
        contractor_name, uscc = (
            await session.execute(
                select(Contractor.name, Contractor.uscc).where(
                    Contractor.id == world.company.contractor_id
                )
            )
        ).one()
        context = await scorecard.scorecard_context(session, fresh)
        pdf = await scorecard.scorecard_pdf(session, world.storage, fresh)

    assert pdf.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(pdf))
    assert 1 <= len(reader.pages) <= 2
    text = _text(pdf)
    number = job.permit.number
    assert number
    for printed in (
        "承包商评价记分卡",
        _compact(contractor_name),
        uscc,
        f"{review.grade}（",
        number,
        FINDING,
        "现场检查",
        "较重",
        "用户1",  # the EHS officer who approved
    ):
        assert printed in text, printed
    # The job's score is its weighted rating less the finding's 8 points.
    (printed_job,) = context["jobs"]
    assert printed_job["number"] == number
    assert printed_job["deductions"] == "8"
    assert float(printed_job["score"]) == pytest.approx(float(printed_job["rating"]) - 8)
    # The trend runs over the earlier review and this one, oldest first.
    values = re.findall(r'class="chart-point" data-value="([0-9.]+)"', context["trend_chart"])
    assert [float(value) for value in values] == [earlier.score, review.score]
    # Approved an hour after the plant's 09:00 + 6 h window: 16:10 on the group's clock.
    assert context["approved_at"].endswith("16:10")


async def test_the_scorecard_is_cached_in_object_storage(
    world: PermitWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = await rated_job(world, finding=False)
    day = job.permit.planned_start.date()
    review = await approved_review(world, *quarter_of(day), today=day, now=job.rated_at)
    renders: list[str] = []
    real_render = documents.render_pdf

    def counting(template_name: str, context: Any, **kwargs: Any) -> bytes:
        renders.append(template_name)
        return real_render(template_name, context, **kwargs)

    monkeypatch.setattr(documents, "render_pdf", counting)
    async with world.session() as session:
        first = await scorecard.scorecard_pdf(
            session, world.storage, await session.get_one(Review, review.id)
        )
    async with world.session() as session:
        stored = await session.get_one(Review, review.id)
        again = await scorecard.scorecard_pdf(session, world.storage, stored)
    assert renders == [scorecard.PDF_TEMPLATE]
    assert again == first
    assert stored.scorecard_key is not None
    assert stored.scorecard_key.startswith(f"tenants/{world.tenant.id}/")
    assert world.storage.get(stored.scorecard_key) == first


async def test_a_draft_review_has_no_scorecard(world: PermitWorld) -> None:
    job = await rated_job(world, finding=False)
    day = job.permit.planned_start.date()
    draft = await approved_review(
        world, *quarter_of(day), today=day, now=job.rated_at, approve=False
    )
    async with world.session() as session:
        with pytest.raises(NotFound):
            await scorecard.scorecard_pdf(
                session, world.storage, await session.get_one(Review, draft.id)
            )


# --- the route -------------------------------------------------------------------------------


async def _sign_in(client: AsyncTestClient[Any], slug: str, email: str, password: str) -> None:
    page = await client.get(f"/t/{slug}/login")
    match = CSRF_FIELD.search(page.text)
    assert match is not None, page.text
    response = await client.post(
        "/login",
        data={"tenant": slug, "email": email, "password": password, "_csrf_token": match[1]},
    )
    assert response.status_code in (302, 303), response.text


async def _host_login(world: PermitWorld, user_id: uuid.UUID) -> str:
    async with world.session() as session:
        user = (await session.execute(select(User).where(User.id == user_id))).scalar_one()
        await tenant_services.set_password(session, user, HOST_PASSWORD)
        return user.email


async def test_who_may_download_the_scorecard(world: PermitWorld) -> None:
    job = await rated_job(world, finding=False)
    day = job.permit.planned_start.date()
    year, quarter = quarter_of(day)
    review = await approved_review(world, year, quarter, today=day, now=job.rated_at)
    draft = await approved_review(
        world, *previous_quarter(day), today=day, now=job.rated_at, approve=False
    )
    other = await world.onboarding.register(world.tenant)
    async with world.session() as session:
        second_admin = await onboarding_services.add_contractor_user(
            session,
            world.company.admin,
            world.company.contractor_id,
            ContractorUserIn(
                email=f"admin2-{uuid.uuid4().hex[:8]}@contractor.example",
                name="第二管理员",
                password=SECOND_ADMIN_PASSWORD,
                role="contractor_admin",
            ),
        )
    logins = {
        "ehs": (await _host_login(world, world.ehs.user_id), HOST_PASSWORD),
        "guardian": (await _host_login(world, world.guardian.user_id), HOST_PASSWORD),
        "admin": (world.company.admin_email, world.company.admin_password),
        "second_admin": (second_admin.email, SECOND_ADMIN_PASSWORD),
        "other_company": (other.admin_email, other.admin_password),
    }
    slug = world.tenant.slug

    def path(review_id: object) -> str:
        return f"/t/{slug}/reviews/{review_id}/scorecard.pdf"

    app = create_app(world.settings)
    statuses: dict[tuple[str, str], int] = {}
    bodies: dict[str, bytes] = {}
    targets: dict[str, Callable[[], str]] = {
        "approved": lambda: path(review.id),
        "draft": lambda: path(draft.id),
        "unknown": lambda: path(uuid.uuid4()),
        "malformed": lambda: path("not-a-uuid"),
    }
    for who, (email, password) in logins.items():
        async with AsyncTestClient(app=app) as client:
            client.follow_redirects = False
            await _sign_in(client, slug, email, password)
            for target, url in targets.items():
                response = await client.get(url())
                statuses[(who, target)] = response.status_code
                if response.status_code == 200:
                    assert response.headers["content-type"] == "application/pdf"
                    bodies[who] = response.content
    async with AsyncTestClient(app=app) as anonymous:
        anonymous.follow_redirects = False
        signed_out = await anonymous.get(path(review.id))

    assert {who for (who, target), status in statuses.items() if status == 200} == {
        "ehs",
        "guardian",
        "admin",
        "second_admin",
    }
    assert all(target == "approved" for (_, target), status in statuses.items() if status == 200)
    assert all(status == 404 for status in statuses.values() if status != 200), statuses
    assert len(set(bodies.values())) == 1 and next(iter(bodies.values())).startswith(b"%PDF")
    assert signed_out.status_code != 200 and not signed_out.content.startswith(b"%PDF")
