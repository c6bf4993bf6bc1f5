"""The notices of evaluation on PostgreSQL: rating a job tells the company's administrators
with the appeal deadline, an appeal tells the EHS officers of the job's plant, approving a
review tells the administrators with the scorecard's link — one outbox message per person, once,
in the transaction of the change — and each renders in Chinese and English."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from infra.db import Database
from infra.errors import Conflict
from infra.notify import Notification, NotificationKind, render_notification
from infra.outbox import OutboxMessage
from infra.settings import Settings
from onboarding import services as onboarding_services
from onboarding.schemas import ContractorUserIn
from permits.services import actor_for
from scoring import scorecard, services
from scoring.models import Review
from scoring.schemas import AppealIn, RatingIn
from tenants import services as tenant_services
from tenants.models import Role, User
from tenants.notifications import NOTIFICATION_TOPIC
from tests.factories import TenantFactory
from tests.integration.test_scorecard import SCORES, approved_review, quarter_of, rated_job
from tests.permit_factories import PermitWorld

APPEAL_REASON = "焊口质量已复检合格，评分偏低"


@pytest.fixture
async def world(pg_db: Database, pg_settings: Settings, factory: TenantFactory) -> PermitWorld:
    return await PermitWorld.create(pg_db, pg_settings, factory)


async def _second_admin(world: PermitWorld) -> uuid.UUID:
    """Another administrator of the company, who reads English."""
    async with world.session() as session:
        user = await onboarding_services.add_contractor_user(
            session,
            world.company.admin,
            world.company.contractor_id,
            ContractorUserIn(
                email=f"admin2-{uuid.uuid4().hex[:8]}@contractor.example",
                name="第二管理员",
                password="second-admin-1",
                role="contractor_admin",
            ),
        )
        await session.execute(update(User).where(User.id == user.id).values(locale="en"))
        return user.id


async def _ehs_officer(world: PermitWorld, plant: str) -> uuid.UUID:
    async with world.session() as session:
        user = await tenant_services.create_user(
            session,
            email=f"ehs-{plant.lower()}-{uuid.uuid4().hex[:6]}@{world.tenant.slug}.example",
            name=f"{plant} 安全员",
            password=None,
        )
        await tenant_services.grant_role(
            session, user_id=user.id, role=Role.EHS_OFFICER, plant_id=world.tenant.plants[plant]
        )
        return user.id


async def _notifications(world: PermitWorld, kind: NotificationKind) -> list[dict[str, Any]]:
    async with world.session() as session:
        rows = (
            await session.execute(
                select(OutboxMessage.payload).where(OutboxMessage.topic == NOTIFICATION_TOPIC)
            )
        ).scalars()
        return [payload for payload in rows if payload["kind"] == kind.value]


def _recipients(payloads: Sequence[dict[str, Any]]) -> list[uuid.UUID]:
    return sorted(uuid.UUID(payload["recipient"]) for payload in payloads)


def _subject(payload: dict[str, Any], locale: str) -> str:
    """The queued notification written out in ``locale``, the language its labels were put in
    when it was queued (the recipient's)."""
    rendered = render_notification(Notification.from_payload({**payload, "locale": locale}))
    for part in (rendered.text, rendered.html, rendered.markdown, rendered.sms):
        assert part.strip()
    return rendered.subject


def _for(payloads: Sequence[dict[str, Any]], user_id: uuid.UUID) -> dict[str, Any]:
    (found,) = [payload for payload in payloads if payload["recipient"] == str(user_id)]
    return found


async def test_rating_and_appeal_notify_the_company_and_the_plants_ehs(
    world: PermitWorld,
) -> None:
    second_admin = await _second_admin(world)
    ehs_p1 = await _ehs_officer(world, "P1")
    ehs_p2 = await _ehs_officer(world, "P2")
    job = await rated_job(world, finding=False)
    number = job.permit.number
    assert number

    rated = await _notifications(world, NotificationKind.RATING_RECORDED)
    admins = sorted([world.company.admin.user_id, second_admin])
    assert _recipients(rated) == admins
    assert {payload["idempotency_key"] for payload in rated} == {
        f"scoring:rating:{job.rating.id}:{user_id}" for user_id in admins
    }
    context = rated[0]["context"]
    assert context["permit_number"] == number
    assert context["appeal_until"] == job.rating.appeal_until.isoformat()
    # 90·40 + 80·25 + 85·15 + 70·10 + 95·10, over 100; no violation yet.
    assert context["rating"] == context["score"] == "85.25"
    assert context["url"].endswith(f"/t/{world.tenant.slug}/permits/{job.permit.id}")
    chinese = _subject(_for(rated, world.company.admin.user_id), "zh_CN")
    assert chinese == f"【作业评分】{number} 动火作业 · 二级：85.25 分"
    english = _subject(_for(rated, second_admin), "en")
    assert english == f"[Job rated] {number} Hot work · Level 2: 85.25"

    # A second rating is refused and queues nothing.
    with pytest.raises(Conflict):
        async with world.session() as session:
            actor = await actor_for(session, world.ehs)
            await services.rate_job(
                session, actor, job.permit.id, RatingIn(scores=SCORES), now=job.rated_at
            )
    assert len(await _notifications(world, NotificationKind.RATING_RECORDED)) == 2

    filed_at = job.rated_at + timedelta(days=1)
    async with world.session() as session:
        actor = await actor_for(session, world.contractor_admin)
        appeal = await services.file_appeal(
            session, actor, job.rating.id, AppealIn(reason=APPEAL_REASON), now=filed_at
        )
    appealed = await _notifications(world, NotificationKind.APPEAL_FILED)
    # Every plant's EHS officer and P1's are told; P2's officer and the tenant admin are not.
    assert _recipients(appealed) == sorted([world.ehs.user_id, ehs_p1])
    assert ehs_p2 not in _recipients(appealed)
    assert {payload["idempotency_key"] for payload in appealed} == {
        f"scoring:appeal:{appeal.id}:{user_id}" for user_id in (world.ehs.user_id, ehs_p1)
    }
    assert appealed[0]["context"]["reason"] == APPEAL_REASON
    for payload in appealed:
        chinese = _subject(payload, "zh_CN")
        assert chinese.startswith("【评分申诉】") and number in chinese
        english = _subject(payload, "en")
        assert english.startswith("[Rating appealed]") and number in english


async def test_approving_a_review_tells_each_company_admin_once(world: PermitWorld) -> None:
    second_admin = await _second_admin(world)
    job = await rated_job(world)
    day = job.permit.planned_start.date()
    year, quarter = quarter_of(day)
    assert await _notifications(world, NotificationKind.SCORECARD_ISSUED) == []
    review = await approved_review(
        world, year, quarter, today=day, now=job.rated_at + timedelta(minutes=5)
    )

    issued = await _notifications(world, NotificationKind.SCORECARD_ISSUED)
    admins = sorted([world.company.admin.user_id, second_admin])
    assert _recipients(issued) == admins
    assert {payload["idempotency_key"] for payload in issued} == {
        f"scoring:scorecard:{review.id}:{user_id}" for user_id in admins
    }
    context = issued[0]["context"]
    assert context["grade"] == review.grade
    assert context["decision"] == review.decision
    assert (context["period_kind"], context["year"], context["quarter"]) == (
        "quarter",
        year,
        quarter,
    )
    assert context["url"] == world.settings.base_url.rstrip("/") + scorecard.scorecard_path(
        world.tenant.slug, review.id
    )
    chinese = _subject(_for(issued, world.company.admin.user_id), "zh_CN")
    english = _subject(_for(issued, second_admin), "en")
    assert chinese.startswith("【供应商评价结果】")
    assert f"{year} 年第 {quarter} 季度" in chinese and f"{review.grade} 级" in chinese
    assert english.startswith("[Supplier review]")
    assert f"Q{quarter} {year}" in english and f"grade {review.grade}" in english

    # Queued again (a retried request, say), the same keys add nothing.
    async with world.session() as session:
        told = await scorecard.notify_scorecard(session, await session.get_one(Review, review.id))
    assert told == 2
    assert len(await _notifications(world, NotificationKind.SCORECARD_ISSUED)) == 2
