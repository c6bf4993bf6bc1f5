"""Evaluation over the API: rating completed jobs, appeals and their decisions, inspection
findings, the confirmed violations, supplier reviews and the tenant's scoring policy.

Handlers parse, call ``scoring.services`` and shape the answer; who may reach what is the
services' business (what the caller may not reach answers 404, like what does not exist). A
job's score is read, never stored: its weighted rating less the points of its confirmed
violations at the time of reading, so a violation confirmed after the rating still counts.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post, put
from litestar.di import Provide
from litestar.params import JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from infra.db import utcnow
from infra.errors import InvalidInput, NotFound
from infra.i18n import N_
from portal.api.permits import ActorDep, provide_actor
from portal.dependencies import DbSession
from portal.guards import requires_roles, signed_in
from portal.params import IdParam, parse_id
from scoring import services
from scoring.models import Appeal, Finding, Review, ReviewState
from scoring.schemas import (
    AppealDecisionIn,
    AppealIn,
    FindingIn,
    PolicyIn,
    RatingIn,
    RatingRead,
    ReviewApprovalIn,
    ReviewIn,
    ReviewRead,
    ViolationRead,
)
from scoring.violations import Violation
from tenants.access import Principal
from tenants.models import Role

HOST_ROLES = tuple(role for role in Role if role.is_host)
_raters = requires_roles(*services.RATER_ROLES)
_reviewers = requires_roles(*services.REVIEWER_ROLES)
_hosts = requires_roles(*HOST_ROLES)
_appellants = requires_roles(Role.CONTRACTOR_ADMIN)
_ACTOR = {"actor": Provide(provide_actor)}
_NOT_YOURS = " What the caller may not reach answers 404, like what is not there."

ContractorQuery = Annotated[
    str | None,
    QueryParameter(name="contractor_id", description="Only this company's", max_length=64),
]
PlantQuery = Annotated[
    str | None, QueryParameter(name="plant_id", description="Only this plant's", max_length=64)
]
SinceQuery = Annotated[
    datetime | None,
    QueryParameter(name="since", description="From this instant on (ISO 8601 with offset)"),
]
UntilQuery = Annotated[
    datetime | None,
    QueryParameter(name="until", description="Before this instant (ISO 8601 with offset)"),
]
# ``state`` is a name Litestar reserves for the application state.
ReviewStateQuery = Annotated[
    ReviewState | None, QueryParameter(name="state", description="Only reviews in this state")
]


# --- shaping answers -------------------------------------------------------------------------


class AppealRead(msgspec.Struct, kw_only=True):
    """The appeal and EHS's decision; ``previous_scores`` are the scores an amendment replaced."""

    id: uuid.UUID
    rating_id: uuid.UUID
    reason: str
    filed_by: uuid.UUID
    filed_at: datetime
    state: str
    decision_text: str | None
    previous_scores: dict[str, float] | None
    decided_by: uuid.UUID | None
    decided_at: datetime | None


class RatingDetail(RatingRead, kw_only=True):
    """One rating with the violations that deduct from its job and its appeal."""

    violations: list[ViolationRead]
    appeal: AppealRead | None


class FindingRead(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    plant_id: uuid.UUID
    contractor_id: uuid.UUID
    permit_id: uuid.UUID | None
    severity: str
    description: str
    photo_ids: list[str]
    observed_at: datetime
    recorded_by: uuid.UUID


class ReviewDetail(ReviewRead, kw_only=True):
    """A review with what its score was computed from: the jobs with their scores and risk
    weights, the violations, the tenant mean and the policy's shrinkage and thresholds."""

    period: str
    figures: dict[str, Any]


class PolicyRead(msgspec.Struct, kw_only=True):
    """The policy in force (the defaults until one is saved). The BI webhook's secret is never
    shown, only whether one is set."""

    weights: dict[str, float]
    severity_points: dict[str, float]
    alert_severity: dict[str, str]
    risk_weights: dict[str, float]
    grade_thresholds: dict[str, float]
    prior_jobs: float
    blacklist_critical: int
    appeal_days: int
    bi_webhook_url: str | None
    bi_webhook_secret_set: bool
    saved: bool


def appeal_read(appeal: Appeal) -> AppealRead:
    return AppealRead(
        id=appeal.id,
        rating_id=appeal.rating_id,
        reason=appeal.reason,
        filed_by=appeal.filed_by,
        filed_at=appeal.filed_at,
        state=appeal.state,
        decision_text=appeal.decision_text,
        previous_scores=appeal.previous_scores,
        decided_by=appeal.decided_by,
        decided_at=appeal.decided_at,
    )


def violation_read(violation: Violation) -> ViolationRead:
    return ViolationRead(
        id=violation.id,
        source=violation.source,  # type: ignore[arg-type]
        plant_id=violation.plant_id,
        contractor_id=violation.contractor_id,
        permit_id=violation.permit_id,
        severity=violation.severity,
        points=violation.points,
        at=violation.at,
        description=violation.description,
    )


def rating_read(scored: services.ScoredRating) -> RatingRead:
    rating = scored.rating
    return RatingRead(
        id=rating.id,
        permit_id=rating.permit_id,
        plant_id=rating.plant_id,
        contractor_id=rating.contractor_id,
        scores=rating.scores,
        weights=rating.weights,
        rating=round(scored.weighted, 2),
        deductions=scored.deductions,
        score=round(scored.score, 2),
        comment=rating.comment,
        photo_ids=rating.photo_ids,
        rated_at=rating.rated_at,
        appeal_until=rating.appeal_until,
        appeal_state=scored.appeal.state if scored.appeal else None,
    )


def rating_detail(scored: services.ScoredRating) -> RatingDetail:
    return RatingDetail(
        **msgspec.structs.asdict(rating_read(scored)),
        violations=[violation_read(violation) for violation in scored.violations],
        appeal=appeal_read(scored.appeal) if scored.appeal else None,
    )


def finding_read(finding: Finding) -> FindingRead:
    return FindingRead(
        id=finding.id,
        plant_id=finding.plant_id,
        contractor_id=finding.contractor_id,
        permit_id=finding.permit_id,
        severity=finding.severity,
        description=finding.description,
        photo_ids=finding.photo_ids,
        observed_at=finding.observed_at,
        recorded_by=finding.recorded_by,
    )


def review_read(review: Review) -> ReviewRead:
    return ReviewRead(
        id=review.id,
        contractor_id=review.contractor_id,
        period_kind=review.period_kind,
        period_start=review.period_start,
        period_end=review.period_end,
        state=review.state,
        jobs=review.jobs,
        score=review.score,
        grade=review.grade,
        violations=review.violations,
        critical_violations=review.critical_violations,
        proposed_decision=review.proposed_decision,
        decision=review.decision,
        decision_reason=review.decision_reason,
        approved_at=review.approved_at,
    )


def review_detail(review: Review) -> ReviewDetail:
    return ReviewDetail(
        **msgspec.structs.asdict(review_read(review)),
        period=services.period_label(review.period_kind, review.period_start),
        figures=review.figures,
    )


async def policy_read(session: AsyncSession) -> PolicyRead:
    row = await services.policy_row(session)
    policy = await services.get_policy(session)
    return PolicyRead(
        weights=dict(policy.weights),
        severity_points=dict(policy.severity_points),
        alert_severity=dict(policy.alert_severity),
        risk_weights=dict(policy.risk_weights),
        grade_thresholds=dict(policy.grade_thresholds),
        prior_jobs=policy.prior_jobs,
        blacklist_critical=policy.blacklist_critical,
        appeal_days=policy.appeal_days,
        bi_webhook_url=row.bi_webhook_url if row else None,
        bi_webhook_secret_set=bool(row and row.bi_webhook_secret),
        saved=row is not None,
    )


def _maybe(value: str | None, field_name: str) -> uuid.UUID | None:
    return parse_id(value, field_name) if value is not None else None


def _aware(value: datetime | None, field_name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidInput(field_name, "timezone", N_("Give the time with its UTC offset."))
    return value


# --- routes ----------------------------------------------------------------------------------


class RatingController(Controller):
    path = "/api/v1"
    tags = ["scoring"]  # noqa: RUF012
    guards = [signed_in]  # noqa: RUF012
    dependencies = _ACTOR

    @post(
        "/permits/{permit_id:str}/rating",
        summary="Rate a completed job",
        description="An EHS officer of the permit's plant scores the job 0–100 on each "
        "dimension (safety, quality, schedule, housekeeping, cooperation), with a comment and "
        "photos uploaded before (`POST /api/v1/uploads`, kind `photo`). The tenant's weights "
        "in force are kept with the rating; confirmed violations of the job deduct from its "
        "score automatically. A score out of range answers 422; a job not completed or closed "
        "409 `completed`; a job already rated 409 `once`; a photo not uploaded 422 `uploaded`; "
        "a permit of a plant the officer has no grant for 404.",
        guards=[_raters],
    )
    async def rate(
        self,
        db_session: DbSession,
        actor: ActorDep,
        permit_id: IdParam,
        data: JSONBody[RatingIn],
    ) -> RatingDetail:
        rating = await services.rate_job(
            db_session, actor, parse_id(permit_id, "permit_id"), data, now=utcnow()
        )
        return rating_detail(await services.get_rating(db_session, actor, rating.id))

    @get(
        "/permits/{permit_id:str}/rating",
        summary="A job's rating",
        description="The rating of the permit's job with its score now, the violations that "
        "deduct and the appeal; 404 while the job is not rated." + _NOT_YOURS,
    )
    async def permit_rating(
        self, db_session: DbSession, actor: ActorDep, permit_id: IdParam
    ) -> RatingDetail:
        scored = await services.rating_of_permit(
            db_session, actor, parse_id(permit_id, "permit_id")
        )
        if scored is None:
            raise NotFound(services.RATING_NOT_FOUND)
        return rating_detail(scored)

    @get(
        "/ratings",
        summary="Ratings the caller may see",
        description="Newest first, at most 200. Host users see the ratings of their plants; a "
        "contractor login sees its own company's only (another company's id lists nothing).",
    )
    async def list_ratings(
        self,
        db_session: DbSession,
        actor: ActorDep,
        contractor: ContractorQuery = None,
        plant: PlantQuery = None,
    ) -> list[RatingRead]:
        found = await services.list_ratings(
            db_session,
            actor,
            contractor_id=_maybe(contractor, "contractor_id"),
            plant_id=_maybe(plant, "plant_id"),
        )
        return [rating_read(scored) for scored in found]

    @get(
        "/ratings/{rating_id:str}",
        summary="One rating",
        description="With its violations and appeal." + _NOT_YOURS,
    )
    async def get_rating(
        self, db_session: DbSession, actor: ActorDep, rating_id: IdParam
    ) -> RatingDetail:
        scored = await services.get_rating(db_session, actor, parse_id(rating_id, "rating_id"))
        return rating_detail(scored)

    @post(
        "/ratings/{rating_id:str}/appeal",
        summary="Appeal a rating",
        description="The rated company's administrator, once, with the reason, within the "
        "tenant's appeal period from the rating (409 `appeal_deadline` after it; 409 `once` "
        "for a second appeal)." + _NOT_YOURS,
        guards=[_appellants],
    )
    async def appeal(
        self,
        db_session: DbSession,
        actor: ActorDep,
        rating_id: IdParam,
        data: JSONBody[AppealIn],
    ) -> AppealRead:
        appeal = await services.file_appeal(
            db_session, actor, parse_id(rating_id, "rating_id"), data, now=utcnow()
        )
        return appeal_read(appeal)

    @post(
        "/ratings/{rating_id:str}/appeal/decision",
        summary="Decide an appeal",
        description="An EHS officer of the plant upholds the rating or amends its scores "
        "(`outcome: amended` with `scores`), with the decision's text. The replaced scores, the "
        "reason and the decision stay on the appeal and in the ledger. No appeal: 409 "
        "`appealed`; decided already: 409 `once`." + _NOT_YOURS,
        guards=[_raters],
        status_code=HTTP_200_OK,
    )
    async def decide_appeal(
        self,
        db_session: DbSession,
        actor: ActorDep,
        rating_id: IdParam,
        data: JSONBody[AppealDecisionIn],
    ) -> AppealRead:
        appeal = await services.decide_appeal(
            db_session, actor, parse_id(rating_id, "rating_id"), data, now=utcnow()
        )
        return appeal_read(appeal)


class FindingController(Controller):
    path = "/api/v1"
    tags = ["scoring"]  # noqa: RUF012
    guards = [signed_in]  # noqa: RUF012
    dependencies = _ACTOR

    @post(
        "/findings",
        summary="Record an inspection finding",
        description="An EHS officer of the plant records a violation found on inspection: the "
        "company, optionally its job (the permit must be that company's at that plant, 422 "
        "`same_job`), severity, description, when it was seen (not in the future) and photos "
        "uploaded before (kind `photo`). It is confirmed at once and deducts by its severity. "
        "A plant outside the officer's grants answers 422 `own_plant`.",
        guards=[_raters],
    )
    async def record(
        self, db_session: DbSession, actor: ActorDep, data: JSONBody[FindingIn]
    ) -> FindingRead:
        return finding_read(await services.record_finding(db_session, actor, data, now=utcnow()))

    @get(
        "/findings",
        summary="Inspection findings",
        description="Newest first, at most 200: host users see their plants', a contractor "
        "login its own company's.",
    )
    async def list_findings(
        self,
        db_session: DbSession,
        actor: ActorDep,
        contractor: ContractorQuery = None,
        plant: PlantQuery = None,
    ) -> list[FindingRead]:
        found = await services.list_findings(
            db_session,
            actor,
            contractor_id=_maybe(contractor, "contractor_id"),
            plant_id=_maybe(plant, "plant_id"),
        )
        return [finding_read(finding) for finding in found]

    @get(
        "/violations",
        summary="Confirmed violations",
        description="Alerts EHS confirmed as violations and inspection findings, as one list, "
        "oldest first, each with the severity and the points it costs under the tenant's "
        "policy. `since` and `until` bound the time it happened (ISO 8601 with offset; 422 "
        "`order` when reversed). Host users see their plants', a contractor login its own "
        "company's.",
    )
    async def list_violations(
        self,
        db_session: DbSession,
        actor: ActorDep,
        contractor: ContractorQuery = None,
        plant: PlantQuery = None,
        since: SinceQuery = None,
        until: UntilQuery = None,
    ) -> list[ViolationRead]:
        since, until = _aware(since, "since"), _aware(until, "until")
        if since is not None and until is not None and since >= until:
            raise InvalidInput("until", "order", N_("Must be after the start."))
        found = await services.list_violations(
            db_session,
            actor,
            contractor_id=_maybe(contractor, "contractor_id"),
            plant_id=_maybe(plant, "plant_id"),
            since=since,
            until=until,
        )
        return [violation_read(violation) for violation in found]


class ReviewController(Controller):
    path = "/api/v1/reviews"
    tags = ["scoring"]  # noqa: RUF012
    guards = [signed_in]  # noqa: RUF012
    dependencies = _ACTOR

    @post(
        "/",
        summary="Compute a supplier review (draft)",
        description="EHS officers and tenant administrators: a company's review for a quarter "
        "(`quarter` 1–4) or a year that has begun — the risk-weighted score of its rated jobs, "
        "shrunk toward the tenant mean, less violations outside jobs; the grade by the "
        "tenant's thresholds and the proposed decision. A draft of the same period is computed "
        "again. A period overlapping an approved review of the same kind answers 409 "
        "`overlap`; a period not begun 422 `begun`.",
        guards=[_reviewers],
    )
    async def create(
        self, db_session: DbSession, actor: ActorDep, data: JSONBody[ReviewIn]
    ) -> ReviewDetail:
        now = utcnow()
        review = await services.create_review(db_session, actor, data, now=now, today=now.date())
        return review_detail(review)

    @get(
        "/",
        summary="Supplier reviews",
        description="Newest period first. Host users see every review of the tenant; a "
        "contractor login its own company's approved ones.",
    )
    async def list_reviews(
        self,
        db_session: DbSession,
        actor: ActorDep,
        contractor: ContractorQuery = None,
        in_state: ReviewStateQuery = None,
    ) -> list[ReviewRead]:
        found = await services.list_reviews(
            db_session,
            actor,
            contractor_id=_maybe(contractor, "contractor_id"),
            state=in_state.value if in_state is not None else None,
        )
        return [review_read(review) for review in found]

    @get(
        "/{review_id:str}",
        summary="One supplier review with its figures",
        description="The jobs with their scores and risk weights, the violations, the tenant "
        "mean, the shrinkage weight and the thresholds the score and grade came from." + _NOT_YOURS,
    )
    async def get_review(
        self, db_session: DbSession, actor: ActorDep, review_id: IdParam
    ) -> ReviewDetail:
        review = await services.get_review(db_session, actor, parse_id(review_id, "review_id"))
        return review_detail(review)

    @post(
        "/{review_id:str}/approval",
        summary="Approve a supplier review",
        description="EHS officers and tenant administrators approve a draft with the proposed "
        "decision, or with another (`decision`) and the reason for it (422 `reason.required` "
        "without). An approved `suspend` or `blacklist` changes the company's admission at "
        "once, which the permit gates then obey. Not a draft: 409 `draft`; overlapping an "
        "approved review: 409 `overlap`.",
        guards=[_reviewers],
        status_code=HTTP_200_OK,
    )
    async def approve(
        self,
        db_session: DbSession,
        actor: ActorDep,
        review_id: IdParam,
        data: JSONBody[ReviewApprovalIn],
    ) -> ReviewDetail:
        review = await services.approve_review(
            db_session, actor, parse_id(review_id, "review_id"), data, now=utcnow()
        )
        return review_detail(review)


class ScoringPolicyController(Controller):
    path = "/api/v1/scoring-policy"
    tags = ["scoring"]  # noqa: RUF012
    guards = [_hosts]  # noqa: RUF012

    @get(
        "/",
        summary="The tenant's scoring policy",
        description="Dimension weights, points per violation severity, the severity of each "
        "alert kind confirmed as a violation, risk weights, grade thresholds, the shrinkage "
        "weight (in jobs), critical violations that propose a blacklist, appeal days and the "
        "BI webhook. The defaults until a policy is saved (`saved: false`).",
    )
    async def get_policy(self, db_session: DbSession) -> PolicyRead:
        return await policy_read(db_session)

    @put(
        "/",
        summary="Set the tenant's scoring policy",
        description="Tenant administrators and EHS officers. Grade thresholds must descend "
        "(422 `grade_thresholds.descending`) and some weight must be above 0 (422 "
        "`weights.positive_total`). An empty `bi_webhook_secret` keeps the one set. Applies to "
        "ratings made from now on; the change is ledgered (without the secret).",
        guards=[_reviewers],
    )
    async def put_policy(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        data: JSONBody[PolicyIn],
    ) -> PolicyRead:
        await services.save_policy(db_session, data, actor_id=request.user.user_id)
        return await policy_read(db_session)
