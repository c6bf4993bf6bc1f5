"""Evaluation: rating completed jobs, appeals, inspection findings, the tenant's scoring policy
and supplier reviews whose approved decisions change the company's admission.

Who may do what: EHS officers rate jobs and record findings on the plants their grants cover,
and decide appeals there; EHS officers and tenant administrators make and approve supplier
reviews; a contractor's administrator sees its company's ratings and appeals them. Anything out
of reach answers like something that does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from infra import audit
from infra.errors import Conflict, InvalidInput, NotFound
from infra.i18n import N_
from infra.uploads import get_stored_object
from onboarding.changes import Wording, change_contractor_state, notify_decision
from onboarding.models import Contractor
from onboarding.states import ContractorAction, ContractorState
from permits.models import Permit
from permits.services import PERMIT_NOT_FOUND, Actor, get_permit
from permits.states import PermitState
from scoring import formula, scorecard
from scoring.formula import Policy, WeightedScore
from scoring.models import (
    Appeal,
    AppealState,
    Decision,
    Finding,
    Grade,
    PeriodKind,
    Rating,
    Review,
    ReviewState,
    ScoringPolicy,
)
from scoring.rollups import local_day, plant_zones, utc_margin
from scoring.schemas import (
    AppealDecisionIn,
    AppealIn,
    FindingIn,
    PolicyIn,
    RatingIn,
    ReviewApprovalIn,
    ReviewIn,
)
from scoring.violations import Violation, confirmed_violations
from tenants.access import has_any_role, has_role_for_plant
from tenants.models import Role

RATER_ROLES = (Role.EHS_OFFICER,)
REVIEWER_ROLES = (Role.EHS_OFFICER, Role.TENANT_ADMIN)
RATED_STATES = (PermitState.COMPLETED.value, PermitState.CLOSED.value)

RATING_NOT_FOUND = N_("Rating not found.")
REVIEW_NOT_FOUND = N_("Review not found.")
CONTRACTOR_NOT_FOUND = N_("Contractor not found.")

# A finding may be dated a little ahead of the server's clock (a phone's clock), no more.
CLOCK_SKEW = timedelta(minutes=5)


# --- Policy ----------------------------------------------------------------------------------


def _policy_from_row(row: ScoringPolicy | None) -> Policy:
    if row is None:
        return Policy()
    return Policy(
        weights=row.weights,
        severity_points=row.severity_points,
        alert_severity=row.alert_severity,
        risk_weights=row.risk_weights,
        grade_thresholds=row.grade_thresholds,
        prior_jobs=row.prior_jobs,
        blacklist_critical=row.blacklist_critical,
        appeal_days=row.appeal_days,
    )


async def policy_row(session: AsyncSession) -> ScoringPolicy | None:
    return await session.scalar(select(ScoringPolicy))


async def get_policy(session: AsyncSession) -> Policy:
    return _policy_from_row(await policy_row(session))


def _as_dict(struct: Any) -> dict[str, Any]:
    return {name: getattr(struct, name) for name in struct.__struct_fields__}


async def save_policy(session: AsyncSession, data: PolicyIn, *, actor_id: uuid.UUID) -> Policy:
    """Replace the tenant's policy. Grades must descend (A above B above C) and some dimension
    must weigh something; a change applies to ratings made from now on."""
    thresholds = data.grade_thresholds
    if not thresholds.A > thresholds.B > thresholds.C:
        raise InvalidInput(
            "grade_thresholds",
            "descending",
            N_("Grade thresholds must descend: A above B above C."),
        )
    weights = _as_dict(data.weights)
    if sum(weights.values()) <= 0:
        raise InvalidInput("weights", "positive_total", N_("At least one weight must be above 0."))
    values: dict[str, Any] = {
        "weights": weights,
        "severity_points": _as_dict(data.severity_points),
        "alert_severity": _as_dict(data.alert_severity),
        "risk_weights": _as_dict(data.risk_weights),
        "grade_thresholds": _as_dict(thresholds),
        "prior_jobs": data.prior_jobs,
        "blacklist_critical": data.blacklist_critical,
        "appeal_days": data.appeal_days,
        "bi_webhook_url": data.bi_webhook_url,
    }
    row = await policy_row(session)
    if row is None:
        row = ScoringPolicy(bi_webhook_secret=data.bi_webhook_secret, **values)
        session.add(row)
    else:
        for name, value in values.items():
            setattr(row, name, value)
        if data.bi_webhook_secret:
            row.bi_webhook_secret = data.bi_webhook_secret
    await session.flush()
    # The secret signs the BI pushes; it stays out of the ledger.
    await audit.record(
        session,
        action="scoring.policy_changed",
        subject_type="scoring_policy",
        subject_id=row.id,
        actor_id=actor_id,
        payload=values,
    )
    return _policy_from_row(row)


# --- Ratings -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoredRating:
    """A rating with what its job's score is made of now."""

    rating: Rating
    weighted: float
    violations: Sequence[Violation]
    appeal: Appeal | None

    @property
    def deductions(self) -> float:
        return sum(violation.points for violation in self.violations)

    @property
    def score(self) -> float:
        return formula.job_score(self.weighted, (v.points for v in self.violations))


def _is_host(actor: Actor) -> bool:
    return any(role.is_host for role in actor.principal.roles)


async def _within_reach(
    session: AsyncSession,
    actor: Actor,
    query: Any,
    model: type[Rating] | type[Finding],
    *,
    contractor_id: uuid.UUID | None,
    plant_id: uuid.UUID | None,
) -> list[Any]:
    """The rows of ``query`` the caller may see: a contractor login its own company's, a host
    those of the plants its grants cover, filtered further by company and plant."""
    if actor.contractor_id is not None:
        query = query.where(model.contractor_id == actor.contractor_id)
    elif not _is_host(actor):
        return []
    if contractor_id is not None:
        query = query.where(model.contractor_id == contractor_id)
    if plant_id is not None:
        query = query.where(model.plant_id == plant_id)
    return [
        row
        for row in (await session.execute(query)).scalars()
        if actor.contractor_id is not None or actor.is_host_for(row.plant_id)
    ]


async def _check_photos(session: AsyncSession, photo_ids: Iterable[uuid.UUID]) -> list[str]:
    kept = []
    for index, photo_id in enumerate(photo_ids):
        try:
            await get_stored_object(session, photo_id)
        except NotFound:
            raise InvalidInput(
                f"photo_ids[{index}]", "uploaded", N_("Upload the photo first.")
            ) from None
        kept.append(str(photo_id))
    return kept


async def rate_job(
    session: AsyncSession, actor: Actor, permit_id: uuid.UUID, data: RatingIn, *, now: datetime
) -> Rating:
    """Rate a completed job once. The tenant's weights at this moment are kept with it."""
    permit = await get_permit(session, actor, permit_id, for_update=True)
    if not has_role_for_plant(actor.principal, RATER_ROLES, permit.plant_id):
        raise NotFound(PERMIT_NOT_FOUND)
    if permit.state not in RATED_STATES:
        raise Conflict(
            "permit_id", "completed", N_("Only a completed job can be rated."), state=permit.state
        )
    if await session.scalar(select(Rating.id).where(Rating.permit_id == permit.id)):
        raise Conflict("permit_id", "once", N_("This job is already rated."))
    policy = await get_policy(session)
    rating = Rating(
        permit_id=permit.id,
        plant_id=permit.plant_id,
        contractor_id=permit.contractor_id,
        scores=_as_dict(data.scores),
        weights=dict(policy.weights),
        comment=data.comment,
        photo_ids=await _check_photos(session, data.photo_ids),
        rated_by=actor.user_id,
        rated_at=now,
        appeal_until=now + timedelta(days=policy.appeal_days),
    )
    try:
        async with session.begin_nested():
            session.add(rating)
            await session.flush()
    except IntegrityError:
        raise Conflict("permit_id", "once", N_("This job is already rated.")) from None
    await audit.record(
        session,
        action="rating.recorded",
        subject_type="rating",
        subject_id=rating.id,
        actor_id=actor.user_id,
        payload={
            "permit_id": permit.id,
            "number": permit.number,
            "contractor_id": permit.contractor_id,
            "scores": rating.scores,
            "weights": rating.weights,
            "comment": rating.comment,
            "photo_ids": rating.photo_ids,
        },
    )
    await scorecard.notify_rating(session, rating, permit, policy)
    return rating


async def _rating(session: AsyncSession, actor: Actor, rating_id: uuid.UUID) -> Rating:
    rating = await session.scalar(select(Rating).where(Rating.id == rating_id))
    if rating is None or not (
        actor.is_host_for(rating.plant_id) or actor.contractor_id == rating.contractor_id
    ):
        raise NotFound(RATING_NOT_FOUND)
    return rating


async def scored_ratings(
    session: AsyncSession, ratings: Sequence[Rating], policy: Policy | None = None
) -> list[ScoredRating]:
    policy = policy or await get_policy(session)
    permit_ids = [rating.permit_id for rating in ratings]
    by_permit: dict[uuid.UUID, list[Violation]] = {}
    if permit_ids:
        for violation in await confirmed_violations(session, policy, permit_ids=permit_ids):
            by_permit.setdefault(violation.permit_id, []).append(violation)  # type: ignore[arg-type]
    appeals = {
        appeal.rating_id: appeal
        for appeal in (
            await session.execute(
                select(Appeal).where(Appeal.rating_id.in_([rating.id for rating in ratings]))
            )
        ).scalars()
    }
    return [
        ScoredRating(
            rating=rating,
            weighted=formula.weighted_rating(rating.scores, rating.weights),
            violations=by_permit.get(rating.permit_id, []),
            appeal=appeals.get(rating.id),
        )
        for rating in ratings
    ]


async def get_rating(session: AsyncSession, actor: Actor, rating_id: uuid.UUID) -> ScoredRating:
    return (await scored_ratings(session, [await _rating(session, actor, rating_id)]))[0]


async def rating_of_permit(
    session: AsyncSession, actor: Actor, permit_id: uuid.UUID
) -> ScoredRating | None:
    permit = await get_permit(session, actor, permit_id)
    rating = await session.scalar(select(Rating).where(Rating.permit_id == permit.id))
    return None if rating is None else (await scored_ratings(session, [rating]))[0]


async def unrated_jobs(session: AsyncSession, actor: Actor, *, limit: int = 100) -> list[Permit]:
    """Completed or closed jobs on the caller's rating plants still waiting for a rating,
    most recently finished first."""
    if not has_any_role(actor.principal, RATER_ROLES):
        return []
    query = (
        select(Permit)
        .outerjoin(Rating, Rating.permit_id == Permit.id)
        .where(Permit.state.in_(RATED_STATES), Rating.id.is_(None))
        .order_by(Permit.planned_end.desc(), Permit.id.desc())
        .limit(limit)
    )
    return [
        permit
        for permit in (await session.execute(query)).scalars()
        if has_role_for_plant(actor.principal, RATER_ROLES, permit.plant_id)
    ]


async def list_ratings(
    session: AsyncSession,
    actor: Actor,
    *,
    contractor_id: uuid.UUID | None = None,
    plant_id: uuid.UUID | None = None,
    limit: int = 200,
) -> list[ScoredRating]:
    """Newest first; a contractor login sees its own company's only."""
    query = select(Rating).order_by(Rating.rated_at.desc(), Rating.id.desc()).limit(limit)
    ratings = await _within_reach(
        session, actor, query, Rating, contractor_id=contractor_id, plant_id=plant_id
    )
    return await scored_ratings(session, ratings)


# --- Appeals -----------------------------------------------------------------------------------


async def file_appeal(
    session: AsyncSession, actor: Actor, rating_id: uuid.UUID, data: AppealIn, *, now: datetime
) -> Appeal:
    """The company's administrator appeals a rating once, within the policy's days."""
    rating = await _rating(session, actor, rating_id)
    if not actor.applies_for(rating.contractor_id):
        raise NotFound(RATING_NOT_FOUND)
    if now > rating.appeal_until:
        raise Conflict(
            "rating_id",
            "appeal_deadline",
            N_("The appeal period ended at %(deadline)s."),
            deadline=rating.appeal_until.isoformat(timespec="minutes"),
        )
    if await session.scalar(select(Appeal.id).where(Appeal.rating_id == rating.id)):
        raise Conflict("rating_id", "once", N_("This rating has already been appealed."))
    appeal = Appeal(rating_id=rating.id, reason=data.reason, filed_by=actor.user_id, filed_at=now)
    try:
        async with session.begin_nested():
            session.add(appeal)
            await session.flush()
    except IntegrityError:
        raise Conflict("rating_id", "once", N_("This rating has already been appealed.")) from None
    await audit.record(
        session,
        action="rating.appealed",
        subject_type="rating",
        subject_id=rating.id,
        actor_id=actor.user_id,
        payload={"appeal_id": appeal.id, "reason": appeal.reason},
    )
    await scorecard.notify_appeal(session, rating, appeal)
    return appeal


async def decide_appeal(
    session: AsyncSession,
    actor: Actor,
    rating_id: uuid.UUID,
    data: AppealDecisionIn,
    *,
    now: datetime,
) -> Appeal:
    """EHS upholds the rating or amends its scores; the old scores and both texts are kept."""
    rating = await _rating(session, actor, rating_id)
    if not has_role_for_plant(actor.principal, RATER_ROLES, rating.plant_id):
        raise NotFound(RATING_NOT_FOUND)
    appeal = await session.scalar(
        select(Appeal).where(Appeal.rating_id == rating.id).with_for_update()
    )
    if appeal is None:
        raise Conflict("rating_id", "appealed", N_("This rating has not been appealed."))
    if appeal.state != AppealState.OPEN.value:
        raise Conflict("outcome", "once", N_("The appeal has already been decided."))
    if data.outcome == AppealState.AMENDED.value:
        if data.scores is None:
            raise InvalidInput("scores", "required", N_("Give the amended scores."))
        appeal.previous_scores = dict(rating.scores)
        rating.scores = _as_dict(data.scores)
    elif data.scores is not None:
        raise InvalidInput("scores", "not_allowed", N_("Upholding a rating keeps its scores."))
    appeal.state = data.outcome
    appeal.decision_text = data.text
    appeal.decided_by = actor.user_id
    appeal.decided_at = now
    await session.flush()
    await audit.record(
        session,
        action="rating.appeal_decided",
        subject_type="rating",
        subject_id=rating.id,
        actor_id=actor.user_id,
        payload={
            "appeal_id": appeal.id,
            "outcome": appeal.state,
            "reason": appeal.reason,
            "decision": appeal.decision_text,
            "previous_scores": appeal.previous_scores,
            "scores": rating.scores,
        },
    )
    return appeal


# --- Findings ----------------------------------------------------------------------------------


async def record_finding(
    session: AsyncSession, actor: Actor, data: FindingIn, *, now: datetime
) -> Finding:
    """An inspection finding, confirmed as a violation by the EHS officer who records it."""
    if not has_role_for_plant(actor.principal, RATER_ROLES, data.plant_id):
        raise InvalidInput("plant_id", "own_plant", N_("Record findings on your own plants only."))
    contractor = await session.scalar(select(Contractor).where(Contractor.id == data.contractor_id))
    if contractor is None:
        raise InvalidInput("contractor_id", "exists", CONTRACTOR_NOT_FOUND)
    if data.permit_id is not None:
        permit = await session.scalar(select(Permit).where(Permit.id == data.permit_id))
        if permit is None:
            raise InvalidInput("permit_id", "exists", PERMIT_NOT_FOUND)
        if permit.plant_id != data.plant_id or permit.contractor_id != data.contractor_id:
            raise InvalidInput(
                "permit_id",
                "same_job",
                N_("The permit must be this company's job at this plant."),
            )
    if data.observed_at > now + CLOCK_SKEW:
        raise InvalidInput("observed_at", "not_future", N_("Cannot be in the future."))
    finding = Finding(
        plant_id=data.plant_id,
        contractor_id=data.contractor_id,
        permit_id=data.permit_id,
        severity=data.severity,
        description=data.description,
        photo_ids=await _check_photos(session, data.photo_ids),
        observed_at=data.observed_at,
        recorded_by=actor.user_id,
    )
    session.add(finding)
    await session.flush()
    await audit.record(
        session,
        action="violation.recorded",
        subject_type="finding",
        subject_id=finding.id,
        actor_id=actor.user_id,
        payload={
            "plant_id": finding.plant_id,
            "contractor_id": finding.contractor_id,
            "permit_id": finding.permit_id,
            "severity": finding.severity,
            "description": finding.description,
            "photo_ids": finding.photo_ids,
            "observed_at": finding.observed_at,
        },
    )
    return finding


async def list_findings(
    session: AsyncSession,
    actor: Actor,
    *,
    contractor_id: uuid.UUID | None = None,
    plant_id: uuid.UUID | None = None,
    limit: int = 200,
) -> list[Finding]:
    """Newest first: a host sees its plants' findings, a contractor login its company's."""
    query = select(Finding).order_by(Finding.observed_at.desc(), Finding.id.desc()).limit(limit)
    return await _within_reach(
        session, actor, query, Finding, contractor_id=contractor_id, plant_id=plant_id
    )


async def list_violations(
    session: AsyncSession,
    actor: Actor,
    *,
    contractor_id: uuid.UUID | None = None,
    plant_id: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Violation]:
    """Confirmed violations under the tenant's policy, oldest first, within the caller's reach:
    a host's plants, or a contractor login's own company."""
    if actor.contractor_id is not None:
        if contractor_id not in (None, actor.contractor_id):
            return []
        contractor_id = actor.contractor_id
    found = await confirmed_violations(
        session,
        await get_policy(session),
        contractor_id=contractor_id,
        plant_id=plant_id,
        since=since,
        until=until,
    )
    if actor.contractor_id is not None:
        return found
    return [violation for violation in found if actor.is_host_for(violation.plant_id)]


# --- Supplier reviews ------------------------------------------------------------------------


def period_bounds(kind: str, year: int, quarter: int | None) -> tuple[date, date]:
    """The first day of the period and the first day after it."""
    if kind == PeriodKind.YEAR.value:
        return date(year, 1, 1), date(year + 1, 1, 1)
    assert quarter is not None
    start = date(year, 3 * (quarter - 1) + 1, 1)
    end = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
    return start, end


def period_label(kind: str, start: date) -> str:
    if kind == PeriodKind.YEAR.value:
        return str(start.year)
    return f"{start.year}Q{(start.month - 1) // 3 + 1}"


@dataclass(frozen=True)
class JobFigure:
    permit_id: uuid.UUID
    number: str | None
    plant_id: uuid.UUID
    contractor_id: uuid.UUID
    day: date
    work_type: str
    level: str | None
    weight: float
    rating: float
    deductions: float
    score: float

    def as_json(self) -> dict[str, Any]:
        return {
            "permit_id": str(self.permit_id),
            "number": self.number,
            "plant_id": str(self.plant_id),
            "day": self.day.isoformat(),
            "work_type": self.work_type,
            "level": self.level,
            "weight": self.weight,
            "rating": round(self.rating, 2),
            "deductions": self.deductions,
            "score": round(self.score, 2),
        }


@dataclass(frozen=True)
class PeriodFigures:
    contractor_id: uuid.UUID
    start: date
    end: date
    jobs: list[JobFigure]
    general: list[Violation]
    job_violations: list[Violation]
    tenant_mean: float
    score: float
    grade: Grade
    critical: int
    proposed: Decision

    @property
    def violations(self) -> list[Violation]:
        return sorted([*self.job_violations, *self.general], key=lambda v: (v.at, v.id))


def _in_period(moment: datetime, zone: ZoneInfo, start: date, end: date) -> bool:
    return start <= local_day(moment, zone) < end


async def _rated_jobs(
    session: AsyncSession,
    policy: Policy,
    zones: Mapping[uuid.UUID, ZoneInfo],
    start: date,
    end: date,
) -> tuple[list[JobFigure], list[Violation]]:
    """Every rated job of the tenant whose plant-local start day falls in the period, scored,
    and the violations of those jobs."""
    since, until = utc_margin(start, end)
    rows = (
        await session.execute(
            select(Permit, Rating)
            .join(Rating, Rating.permit_id == Permit.id)
            .where(Permit.planned_start >= since, Permit.planned_start < until)
        )
    ).all()
    rows = [
        (permit, rating)
        for permit, rating in rows
        if _in_period(permit.planned_start, zones[permit.plant_id], start, end)
    ]
    permit_ids = [permit.id for permit, _ in rows]
    violations = (
        await confirmed_violations(session, policy, permit_ids=permit_ids) if permit_ids else []
    )
    points: dict[uuid.UUID, float] = {}
    for violation in violations:
        assert violation.permit_id is not None
        points[violation.permit_id] = points.get(violation.permit_id, 0.0) + violation.points
    jobs = []
    for permit, rating in rows:
        weighted = formula.weighted_rating(rating.scores, rating.weights)
        deductions = points.get(permit.id, 0.0)
        jobs.append(
            JobFigure(
                permit_id=permit.id,
                number=permit.number,
                plant_id=permit.plant_id,
                contractor_id=permit.contractor_id,
                day=local_day(permit.planned_start, zones[permit.plant_id]),
                work_type=permit.work_type,
                level=permit.level,
                weight=policy.risk_weight(permit.work_type, permit.level),
                rating=weighted,
                deductions=deductions,
                score=formula.job_score(weighted, [deductions]),
            )
        )
    return jobs, violations


async def period_figures(
    session: AsyncSession, contractor_id: uuid.UUID, start: date, end: date, policy: Policy
) -> PeriodFigures:
    zones = await session.run_sync(plant_zones)
    jobs, job_violations = await _rated_jobs(session, policy, zones, start, end)
    tenant_mean = formula.weighted_mean(WeightedScore(job.score, job.weight) for job in jobs)
    if tenant_mean is None:
        # No rated job anywhere yet: start from the bottom of grade B, neither praise nor blame.
        tenant_mean = policy.grade_thresholds[Grade.B.value]
    own_jobs = [job for job in jobs if job.contractor_id == contractor_id]
    own_ids = {job.permit_id for job in own_jobs}
    since, until = utc_margin(start, end)
    general = [
        violation
        for violation in await confirmed_violations(
            session, policy, contractor_id=contractor_id, since=since, until=until
        )
        if violation.permit_id not in own_ids
        and _in_period(violation.at, zones[violation.plant_id], start, end)
    ]
    own_violations = [v for v in job_violations if v.permit_id in own_ids]
    score = formula.period_score(
        (WeightedScore(job.score, job.weight) for job in own_jobs),
        tenant_mean=tenant_mean,
        prior_jobs=policy.prior_jobs,
        general_deductions=(violation.points for violation in general),
    )
    grade = formula.grade_for(score, policy.grade_thresholds)
    critical = sum(
        1 for violation in [*own_violations, *general] if violation.severity == "critical"
    )
    return PeriodFigures(
        contractor_id=contractor_id,
        start=start,
        end=end,
        jobs=own_jobs,
        general=general,
        job_violations=own_violations,
        tenant_mean=tenant_mean,
        score=score,
        grade=grade,
        critical=critical,
        proposed=formula.proposed_decision(grade, critical, policy),
    )


def _violation_json(violation: Violation) -> dict[str, Any]:
    return {
        "id": str(violation.id),
        "source": violation.source,
        "permit_id": str(violation.permit_id) if violation.permit_id else None,
        "plant_id": str(violation.plant_id),
        "severity": violation.severity,
        "points": violation.points,
        "at": violation.at.isoformat(),
        "description": violation.description,
    }


def _figures_json(figures: PeriodFigures, policy: Policy) -> dict[str, Any]:
    return {
        "jobs": [job.as_json() for job in figures.jobs],
        "violations": [_violation_json(violation) for violation in figures.violations],
        "general_deductions": sum(violation.points for violation in figures.general),
        "tenant_mean": round(figures.tenant_mean, 2),
        "prior_jobs": policy.prior_jobs,
        "grade_thresholds": dict(policy.grade_thresholds),
        "blacklist_critical": policy.blacklist_critical,
    }


async def _overlapping_approved(
    session: AsyncSession, contractor_id: uuid.UUID, kind: str, start: date, end: date
) -> Review | None:
    return await session.scalar(
        select(Review).where(
            Review.contractor_id == contractor_id,
            Review.period_kind == kind,
            Review.state == ReviewState.APPROVED.value,
            Review.period_start < end,
            Review.period_end > start,
        )
    )


def _overlap_refused(existing: Review) -> Conflict:
    return Conflict(
        "period",
        "overlap",
        N_("Overlaps the approved review for %(period)s."),
        period=period_label(existing.period_kind, existing.period_start),
    )


async def _reviewable_contractor(session: AsyncSession, contractor_id: uuid.UUID) -> Contractor:
    contractor = await session.scalar(
        select(Contractor).where(Contractor.id == contractor_id).with_for_update()
    )
    if contractor is None:
        raise InvalidInput("contractor_id", "exists", CONTRACTOR_NOT_FOUND)
    return contractor


def _ensure_reviewer(actor: Actor) -> None:
    if not has_any_role(actor.principal, REVIEWER_ROLES):
        raise NotFound(REVIEW_NOT_FOUND)


async def create_review(
    session: AsyncSession, actor: Actor, data: ReviewIn, *, now: datetime, today: date
) -> Review:
    """Compute the company's review for a period that has begun. A draft for the same period is
    computed again; a period overlapping an approved review of the same kind is refused (a
    quarterly and a yearly review may cover the same months)."""
    _ensure_reviewer(actor)
    if (data.period_kind == PeriodKind.QUARTER.value) != (data.quarter is not None):
        rule = "required" if data.period_kind == PeriodKind.QUARTER.value else "not_allowed"
        raise InvalidInput(
            "quarter", rule, N_("A quarter is given for quarterly reviews, and only for them.")
        )
    start, end = period_bounds(data.period_kind, data.year, data.quarter)
    if start > today:
        raise InvalidInput("year", "begun", N_("The period has not begun yet."))
    await _reviewable_contractor(session, data.contractor_id)
    existing = await _overlapping_approved(
        session, data.contractor_id, data.period_kind, start, end
    )
    if existing is not None:
        raise _overlap_refused(existing)
    policy = await get_policy(session)
    figures = await period_figures(session, data.contractor_id, start, end, policy)
    review = await session.scalar(
        select(Review).where(
            Review.contractor_id == data.contractor_id,
            Review.period_kind == data.period_kind,
            Review.period_start == start,
            Review.state == ReviewState.DRAFT.value,
        )
    )
    if review is None:
        review = Review(
            contractor_id=data.contractor_id,
            period_kind=data.period_kind,
            period_start=start,
            period_end=end,
            created_by=actor.user_id,
        )
        session.add(review)
    review.jobs = len(figures.jobs)
    review.score = round(figures.score, 2)
    review.grade = figures.grade.value
    review.violations = len(figures.violations)
    review.critical_violations = figures.critical
    review.proposed_decision = figures.proposed.value
    review.figures = _figures_json(figures, policy)
    await session.flush()
    await audit.record(
        session,
        action="review.computed",
        subject_type="review",
        subject_id=review.id,
        actor_id=actor.user_id,
        payload={
            "contractor_id": review.contractor_id,
            "period": period_label(review.period_kind, review.period_start),
            "score": review.score,
            "grade": review.grade,
            "proposed_decision": review.proposed_decision,
        },
    )
    return review


async def get_review(session: AsyncSession, actor: Actor, review_id: uuid.UUID) -> Review:
    review = await session.scalar(select(Review).where(Review.id == review_id))
    if review is None or not (
        _is_host(actor)
        or (
            actor.contractor_id == review.contractor_id
            and review.state == ReviewState.APPROVED.value
        )
    ):
        raise NotFound(REVIEW_NOT_FOUND)
    return review


async def list_reviews(
    session: AsyncSession,
    actor: Actor,
    *,
    contractor_id: uuid.UUID | None = None,
    state: str | None = None,
) -> list[Review]:
    query = select(Review).order_by(Review.period_start.desc(), Review.created_at.desc())
    if actor.contractor_id is not None:
        query = query.where(
            Review.contractor_id == actor.contractor_id,
            Review.state == ReviewState.APPROVED.value,
        )
    elif not _is_host(actor):
        return []
    if contractor_id is not None:
        query = query.where(Review.contractor_id == contractor_id)
    if state is not None:
        query = query.where(Review.state == state)
    return list((await session.execute(query)).scalars())


# The admission change an approved decision makes, from the states it applies to.
_ADMISSION_CHANGES: Mapping[Decision, tuple[ContractorAction, frozenset[str]]] = {
    Decision.SUSPEND: (ContractorAction.SUSPEND, frozenset({ContractorState.APPROVED.value})),
    Decision.BLACKLIST: (
        ContractorAction.BLACKLIST,
        frozenset({ContractorState.APPROVED.value, ContractorState.SUSPENDED.value}),
    ),
}


def _apply_decision(
    session: Session, review: Review, contractor: Contractor, decision: Decision, actor: Actor
) -> None:
    change = _ADMISSION_CHANGES.get(decision)
    if change is None or contractor.state not in change[1]:
        return
    reason = Wording(
        N_("Supplier review %(period)s: grade %(grade)s, score %(score)s."),
        {
            "period": period_label(review.period_kind, review.period_start),
            "grade": review.grade,
            "score": review.score,
        },
    )
    entry = change_contractor_state(
        session,
        contractor,
        change[0],
        reason=reason,
        actor_id=actor.user_id,
        details={"review_id": review.id},
    )
    notify_decision(
        session, contractor, decision=contractor.state, reason=reason, decision_id=entry.id
    )


async def approve_review(
    session: AsyncSession,
    actor: Actor,
    review_id: uuid.UUID,
    data: ReviewApprovalIn,
    *,
    now: datetime,
) -> Review:
    """Approve with the proposed decision or another one with its reason. Suspend and blacklist
    change the company's admission at once, which the permit gates then obey."""
    _ensure_reviewer(actor)
    review = await session.scalar(select(Review).where(Review.id == review_id).with_for_update())
    if review is None:
        raise NotFound(REVIEW_NOT_FOUND)
    if review.state != ReviewState.DRAFT.value:
        raise Conflict("state", "draft", N_("Only a draft review can be approved."))
    decision = Decision(data.decision or review.proposed_decision)
    reason = data.reason.strip()
    if decision.value != review.proposed_decision and not reason:
        raise InvalidInput(
            "reason", "required", N_("Give the reason for a decision other than the proposed one.")
        )
    contractor = await _reviewable_contractor(session, review.contractor_id)
    existing = await _overlapping_approved(
        session, review.contractor_id, review.period_kind, review.period_start, review.period_end
    )
    if existing is not None:
        raise _overlap_refused(existing)
    review.state = ReviewState.APPROVED.value
    review.decision = decision.value
    review.decision_reason = reason or None
    review.approved_by = actor.user_id
    review.approved_at = now
    await session.flush()
    await session.run_sync(lambda sync: _apply_decision(sync, review, contractor, decision, actor))
    await audit.record(
        session,
        action="review.approved",
        subject_type="review",
        subject_id=review.id,
        actor_id=actor.user_id,
        payload={
            "contractor_id": review.contractor_id,
            "period": period_label(review.period_kind, review.period_start),
            "score": review.score,
            "grade": review.grade,
            "proposed_decision": review.proposed_decision,
            "decision": review.decision,
            "reason": review.decision_reason,
        },
    )
    await scorecard.notify_scorecard(session, review)
    return review
