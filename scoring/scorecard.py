"""The supplier scorecard (承包商评价记分卡) and the notices of evaluation.

The scorecard is the PDF of an approved review: the company, the period, the score, grade and
decision with its approver, a trend of the company's approved reviews of the same kind, and the
jobs and violations the score was computed from. It prints the review's ``figures`` as they were
when the review was computed, so it shows the numbers the decision was made on even after a
later appeal or violation changes a job's score. Its context is plain text, numbers and an
inline SVG, so the cached PDF (:func:`infra.documents.render_pdf_cached`) is rendered again
exactly when something it prints changes: an earlier period approved late joins the trend,
the company is renamed.

The notices go through the outbox in the transaction of the change: the company's
administrators are told when a job of theirs is rated (with the appeal deadline) and when a
review of theirs is approved (with a link to the scorecard); the plant's EHS officers are told
when an appeal is filed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import anyio
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infra.charts import Series, line_chart
from infra.documents import COMMON_FONT_FAMILY, SYSTEM_CJK_FAMILY, render_pdf_cached
from infra.errors import NotFound
from infra.i18n import N_, gettext, locale_scope
from infra.notify import Notification, NotificationKind
from infra.storage import ObjectStorage
from infra.tenancy import current_tenant_id
from onboarding.catalogue import WORK_TYPE_LABELS, WorkType
from onboarding.changes import contractor_admins
from onboarding.clock import PLANT_TIMEZONE
from onboarding.models import Contractor
from permits.catalogue import level_label
from permits.models import Permit
from scoring import formula
from scoring.models import Appeal, PeriodKind, Rating, Review, ReviewState
from scoring.violations import confirmed_violations
from tenants.models import Plant, Role, Tenant, User
from tenants.notifications import portal_url, queue_notification
from tenants.services import pdf_brand, role_holders

PDF_TEMPLATE = "scorecard.html"
# The scorecard is Chinese, like every printed form; labels that come from the catalogues as
# msgids are translated to it when the context is built.
PDF_LOCALE = "zh_CN"
# Reviews in the trend chart, this one included: two years of quarters, or eight years.
TREND_REVIEWS = 8
_PDF_FONTS = f"{COMMON_FONT_FAMILY}, {SYSTEM_CJK_FAMILY}, sans-serif"
SCORECARD_NOT_FOUND = N_("Scorecard not found.")
APPEAL_ROLES = (Role.EHS_OFFICER,)


def scorecard_path(slug: str, review_id: uuid.UUID) -> str:
    return f"/t/{slug}/reviews/{review_id}/scorecard.pdf"


def _quarter(start: date) -> int:
    return (start.month - 1) // 3 + 1


def _period_name(kind: str, start: date) -> str:
    if kind == PeriodKind.YEAR.value:
        return f"{start.year}年度"
    return f"{start.year}年第{_quarter(start)}季度"


def _short_period(kind: str, start: date) -> str:
    if kind == PeriodKind.YEAR.value:
        return str(start.year)
    return f"{start.year}Q{_quarter(start)}"


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _number(value: float) -> str:
    """Two decimals at most, without trailing zeros: 85, 85.5, 85.25."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _work_type(work_type: str, level: str | None, joined: str = "{}（{}）") -> str:
    label = gettext(WORK_TYPE_LABELS[WorkType(work_type)])
    level_text = level_label(work_type, level)
    return joined.format(label, gettext(level_text)) if level_text else label


async def _trend(session: AsyncSession, review: Review) -> list[Review]:
    """This review and the company's approved reviews of the same kind before it, oldest
    first."""
    earlier = (
        await session.execute(
            select(Review)
            .where(
                Review.contractor_id == review.contractor_id,
                Review.period_kind == review.period_kind,
                Review.state == ReviewState.APPROVED.value,
                Review.period_start < review.period_start,
            )
            .order_by(Review.period_start.desc())
            .limit(TREND_REVIEWS - 1)
        )
    ).scalars()
    return [*reversed(list(earlier)), review]


def _trend_chart(reviews: Sequence[Review]) -> Markup:
    chart = line_chart(
        [_short_period(item.period_kind, item.period_start) for item in reviews],
        [Series("综合得分", [item.score for item in reviews])],
        title="历次评价综合得分",
        unit="分",
        width=680,
        height=220,
        y_max=100.0,
    )
    # Inline SVG takes no CSS from the document, so its "sans-serif" would have fontconfig embed
    # DejaVu and the Japanese cut of Noto CJK besides the document's prepared subset; naming the
    # document's fonts keeps the chart's text in that subset.
    return Markup(  # noqa: S704 - the chart's own markup with one attribute changed
        str(chart).replace('font-family="sans-serif"', f'font-family="{_PDF_FONTS}"', 1)
    )


def _jobs(figures: Mapping[str, Any], plants: Mapping[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "number": job["number"] or "",
            "plant": plants.get(job["plant_id"], ""),
            "work_type": _work_type(job["work_type"], job["level"]),
            "day": job["day"],
            "weight": _number(job["weight"]),
            "rating": _number(job["rating"]),
            "deductions": _number(job["deductions"]),
            "score": _number(job["score"]),
        }
        for job in figures["jobs"]
    ]


def _violations(
    figures: Mapping[str, Any],
    zones: Mapping[str, ZoneInfo],
    default_zone: ZoneInfo,
) -> list[dict[str, Any]]:
    numbers = {job["permit_id"]: job["number"] or "" for job in figures["jobs"]}
    return [
        {
            "at": _local(
                datetime.fromisoformat(violation["at"]),
                zones.get(violation["plant_id"], default_zone),
            ),
            "source": violation["source"],
            "permit_number": numbers.get(violation["permit_id"] or "", ""),
            "severity": violation["severity"],
            "points": _number(violation["points"]),
            "description": violation["description"],
        }
        for violation in figures["violations"]
    ]


async def scorecard_context(session: AsyncSession, review: Review) -> dict[str, Any]:
    """What the scorecard prints; everything is text, numbers or inline SVG."""
    if review.state != ReviewState.APPROVED.value or review.approved_at is None:
        raise NotFound(SCORECARD_NOT_FOUND)
    tenant = (
        await session.execute(select(Tenant).where(Tenant.id == review.tenant_id))
    ).scalar_one()
    contractor = (
        await session.execute(select(Contractor).where(Contractor.id == review.contractor_id))
    ).scalar_one()
    approver = await session.scalar(select(User.name).where(User.id == review.approved_by))
    plants = {
        str(row.id): row
        for row in (await session.execute(select(Plant.id, Plant.name, Plant.timezone))).all()
    }
    # A review spans the company's work at every plant; its approval changes the company's
    # admission, which runs on the group's clock.
    group_zone = PLANT_TIMEZONE
    figures = review.figures
    jobs = figures["jobs"]
    with locale_scope(PDF_LOCALE):
        job_rows = _jobs(figures, {key: row.name for key, row in plants.items()})
    weight = sum(job["weight"] for job in jobs)
    weighted = sum(job["weight"] * job["score"] for job in jobs)
    thresholds = figures["grade_thresholds"]
    return {
        "company_name": tenant.name,
        "contractor_name": contractor.name,
        "uscc": contractor.uscc,
        "period": _period_name(review.period_kind, review.period_start),
        "period_kind": review.period_kind,
        "period_first_day": review.period_start.isoformat(),
        "period_last_day": (review.period_end - timedelta(days=1)).isoformat(),
        "score": _number(review.score),
        "grade": review.grade,
        "job_count": review.jobs,
        "violation_count": review.violations,
        "critical_count": review.critical_violations,
        "proposed_decision": review.proposed_decision,
        "decision": review.decision or review.proposed_decision,
        "decision_reason": review.decision_reason or "",
        "approver": approver or "",
        "approved_at": _local(review.approved_at, group_zone),
        "timezone": group_zone.key,
        "trend_chart": _trend_chart(await _trend(session, review)),
        "jobs": job_rows,
        "violations": _violations(
            figures,
            {key: ZoneInfo(row.timezone) for key, row in plants.items()},
            group_zone,
        ),
        "formula": {
            "weight_total": _number(weight),
            "weighted_total": _number(weighted),
            "tenant_mean": _number(figures["tenant_mean"]),
            "prior_jobs": _number(figures["prior_jobs"]),
            "general_deductions": _number(figures["general_deductions"]),
            "threshold_a": _number(thresholds["A"]),
            "threshold_b": _number(thresholds["B"]),
            "threshold_c": _number(thresholds["C"]),
            "blacklist_critical": figures["blacklist_critical"],
        },
        "review_id": str(review.id),
    }


async def scorecard_pdf(session: AsyncSession, storage: ObjectStorage, review: Review) -> bytes:
    """The approved review's scorecard, rendered once per content and kept in object storage;
    the review names the stored copy it was last printed as."""
    context = {**await scorecard_context(session, review), **await pdf_brand(session, storage)}
    key, pdf = await anyio.to_thread.run_sync(
        render_pdf_cached, storage, review.tenant_id, PDF_TEMPLATE, context
    )
    if review.scorecard_key != key:
        review.scorecard_key = key
        await session.flush()
    return pdf


# --- notices ---------------------------------------------------------------------------------


async def _tenant_slug(session: AsyncSession) -> str:
    return (
        await session.execute(select(Tenant.slug).where(Tenant.id == current_tenant_id()))
    ).scalar_one()


async def _company_admins(session: AsyncSession, contractor_id: uuid.UUID) -> list[User]:
    return await session.run_sync(lambda sync: contractor_admins(sync, contractor_id))


async def _queue(
    session: AsyncSession,
    kind: NotificationKind,
    users: Sequence[User],
    key: str,
    context_for: Callable[[], dict[str, Any]],
) -> int:
    """One notification per user, its context built in the user's language."""
    for user in users:
        with locale_scope(user.locale):
            context = context_for()
        await queue_notification(
            session,
            Notification(
                tenant_id=current_tenant_id(),
                kind=kind,
                context=context,
                idempotency_key=f"{key}:{user.id}",
                recipient=user.id,
            ),
        )
    return len(users)


async def notify_scorecard(session: AsyncSession, review: Review) -> int:
    """Tell the company's administrators that its review was approved, with the scorecard's
    link; how many were told."""
    contractor_name = await session.scalar(
        select(Contractor.name).where(Contractor.id == review.contractor_id)
    )
    url = portal_url(scorecard_path(await _tenant_slug(session), review.id))

    def context() -> dict[str, Any]:
        values: dict[str, Any] = {
            "contractor_name": contractor_name or "",
            "period_kind": review.period_kind,
            "year": review.period_start.year,
            "score": _number(review.score),
            "grade": review.grade,
            "decision": review.decision or review.proposed_decision,
            "url": url,
        }
        if review.period_kind == PeriodKind.QUARTER.value:
            values["quarter"] = _quarter(review.period_start)
        if review.decision_reason:
            values["reason"] = review.decision_reason
        return values

    return await _queue(
        session,
        NotificationKind.SCORECARD_ISSUED,
        await _company_admins(session, review.contractor_id),
        f"scoring:scorecard:{review.id}",
        context,
    )


async def _job_facts(session: AsyncSession, permit: Permit) -> tuple[Plant, str]:
    plant = (await session.execute(select(Plant).where(Plant.id == permit.plant_id))).scalar_one()
    contractor_name = await session.scalar(
        select(Contractor.name).where(Contractor.id == permit.contractor_id)
    )
    return plant, contractor_name or ""


async def notify_rating(
    session: AsyncSession, rating: Rating, permit: Permit, policy: formula.Policy
) -> int:
    """Tell the company's administrators their job was rated, what it scores now (after the
    deductions of the violations already confirmed) and until when they may appeal."""
    plant, contractor_name = await _job_facts(session, permit)
    points = [
        violation.points
        for violation in await confirmed_violations(session, policy, permit_ids=[permit.id])
    ]
    rated = formula.weighted_rating(rating.scores, rating.weights)
    url = portal_url(f"/t/{await _tenant_slug(session)}/permits/{permit.id}")

    def context() -> dict[str, Any]:
        return {
            "contractor_name": contractor_name,
            "permit_number": permit.number or str(permit.id)[:8],
            "work_type": _work_type(permit.work_type, permit.level, "{} · {}"),
            "plant_name": plant.name,
            "rating": _number(rated),
            "deductions": _number(sum(points)),
            "score": _number(formula.job_score(rated, points)),
            "appeal_until": rating.appeal_until,
            "url": url,
            "timezone": plant.timezone,
        }

    return await _queue(
        session,
        NotificationKind.RATING_RECORDED,
        await _company_admins(session, rating.contractor_id),
        f"scoring:rating:{rating.id}",
        context,
    )


async def notify_appeal(session: AsyncSession, rating: Rating, appeal: Appeal) -> int:
    """Tell the EHS officers of the job's plant that the company appealed its rating."""
    permit = (
        await session.execute(select(Permit).where(Permit.id == rating.permit_id))
    ).scalar_one()
    plant, contractor_name = await _job_facts(session, permit)
    users = list(await session.scalars(role_holders(APPEAL_ROLES, rating.plant_id)))
    url = portal_url(f"/t/{await _tenant_slug(session)}/permits/{permit.id}")

    def context() -> dict[str, Any]:
        return {
            "contractor_name": contractor_name,
            "permit_number": permit.number or str(permit.id)[:8],
            "work_type": _work_type(permit.work_type, permit.level, "{} · {}"),
            "plant_name": plant.name,
            "reason": appeal.reason,
            "filed_at": appeal.filed_at,
            "url": url,
            "timezone": plant.timezone,
        }

    return await _queue(
        session, NotificationKind.APPEAL_FILED, users, f"scoring:appeal:{appeal.id}", context
    )
