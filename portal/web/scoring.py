"""Evaluation pages (评价): EHS rates completed jobs with photos and records inspection
findings; the contractor's administrator sees its ratings with what was deducted and appeals
within the period; EHS decides the appeal; supplier reviews are computed, read with their
figures and approved; the tenant's scoring policy is set.

The pages parse forms, call ``scoring.services`` and render; every rule lives there. A refused
form comes back with what was typed and each problem next to its field. Photos go through the
upload pipeline (kind ``photo``); a refused form keeps none of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, get, post
from litestar.datastructures import State, UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from geofence.alerts import KIND_LABELS
from infra.db import utcnow
from infra.errors import DomainError, FieldProblem, NotFound
from infra.i18n import N_
from infra.settings import Settings
from infra.storage import ObjectStorage
from infra.uploads import DOCUMENT_KINDS, get_stored_object, store_upload
from onboarding.catalogue import WORK_TYPE_LABELS
from onboarding.models import Contractor
from permits import services as permits
from permits.models import Permit
from portal.dependencies import AppSettings, DbSession
from portal.guards import requires_roles, signed_in
from portal.web.forms import INVALID_FORM, close_files, convert, ensure_own_tenant, field_text
from portal.web.onboarding import FormErrors, _download_link
from portal.web.permits import STATE_LABELS
from scoring import services
from scoring.formula import DEFAULT_ALERT_SEVERITY
from scoring.models import Dimension, Review, Severity
from scoring.schemas import (
    AppealDecisionIn,
    AppealIn,
    FindingIn,
    PolicyIn,
    RatingIn,
    ReviewApprovalIn,
    ReviewIn,
)
from tenants import services as tenants
from tenants.access import Principal, has_any_role, has_role_for_plant, visible_plant_ids
from tenants.models import Plant, Role

MultipartForm = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]
MAX_PHOTOS = 10
# Room for the form fields around the photos.
_FORM_OVERHEAD = 64 * 1024
_PHOTO_BODY = MAX_PHOTOS * DOCUMENT_KINDS["photo"].max_bytes + _FORM_OVERHEAD
_REQUIRED = N_("This field is required.")
_BAD_NUMBER = N_("Must be a number.")
_BAD_TIME = N_("Give a date and time.")
_TOO_MANY_PHOTOS = N_("At most %(count)s photos.")

_raters = requires_roles(*services.RATER_ROLES)
_reviewers = requires_roles(*services.REVIEWER_ROLES)
_appellants = requires_roles(Role.CONTRACTOR_ADMIN)

DIMENSION_LABELS = {
    Dimension.SAFETY.value: N_("Safety"),
    Dimension.QUALITY.value: N_("Quality"),
    Dimension.SCHEDULE.value: N_("Schedule"),
    Dimension.HOUSEKEEPING.value: N_("Housekeeping"),
    Dimension.COOPERATION.value: N_("Cooperation"),
}
SEVERITY_LABELS = {
    Severity.MINOR.value: N_("Minor"),
    Severity.MAJOR.value: N_("Major"),
    Severity.CRITICAL.value: N_("Critical"),
}
SOURCE_LABELS = {"alert": N_("Geofence alert"), "inspection": N_("Inspection finding")}
APPEAL_LABELS = {
    "open": N_("Appeal open"),
    "upheld": N_("Rating upheld"),
    "amended": N_("Rating amended"),
}
DECISION_LABELS = {
    "keep": N_("Keep"),
    "probation": N_("Probation"),
    "suspend": N_("Suspend"),
    "blacklist": N_("Blacklist"),
}
REVIEW_STATE_LABELS = {"draft": N_("Draft review"), "approved": N_("Review approved")}
ALERT_KIND_LABELS = {kind.value: label for kind, label in KIND_LABELS.items()}
RISK_LABELS = {"low": N_("Low risk"), "medium": N_("Medium risk"), "high": N_("High risk")}
FINDING_FIELDS = ("plant_id", "contractor_id", "permit_id", "severity", "description")
POLICY_NUMBERS = ("prior_jobs", "blacklist_critical", "appeal_days")
# A form naming no plant of the caller reads its times on China Standard Time, the zone of every
# plant served today, as the lists spanning plants show them (portal.plugin.GROUP_TIMEZONE).
GROUP_TIMEZONE = "Asia/Shanghai"


def _labels() -> dict[str, Any]:
    return {
        "dimension_labels": DIMENSION_LABELS,
        "severity_labels": SEVERITY_LABELS,
        "source_labels": SOURCE_LABELS,
        "appeal_labels": APPEAL_LABELS,
        "decision_labels": DECISION_LABELS,
        "review_state_labels": REVIEW_STATE_LABELS,
        "permit_state_labels": STATE_LABELS,
        "work_type_labels": {wt.value: label for wt, label in WORK_TYPE_LABELS.items()},
        "alert_kind_labels": ALERT_KIND_LABELS,
        "risk_labels": RISK_LABELS,
    }


# --- reading forms ---------------------------------------------------------------------------


def _uploads(data: dict[str, Any], name: str) -> list[UploadFile]:
    """The files chosen in a ``multiple`` file input; an empty input still sends a part."""
    value = data.get(name)
    values = value if isinstance(value, list) else [value]
    return [item for item in values if isinstance(item, UploadFile) and item.filename]


def _number(data: dict[str, Any], name: str, problems: list[FieldProblem]) -> float | None:
    text = field_text(data, name)
    if not text:
        problems.append(FieldProblem(name, "required", _REQUIRED))
        return None
    try:
        return float(text)
    except ValueError:
        problems.append(FieldProblem(name, "number", _BAD_NUMBER))
        return None


def _scores(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    problems: list[FieldProblem] = []
    scores = {name: _number(data, f"{prefix}{name}", problems) for name in DIMENSION_LABELS}
    if problems:
        raise DomainError(INVALID_FORM, problems)
    return scores


def _local_time(text: str, timezone: str) -> datetime | None:
    for pattern in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=ZoneInfo(timezone))
        except ValueError:
            continue
    return None


def _policy_payload(data: dict[str, Any]) -> dict[str, Any]:
    problems: list[FieldProblem] = []

    def group(prefix: str, names: Any) -> dict[str, Any]:
        return {name: _number(data, f"{prefix}_{name}", problems) for name in names}

    payload: dict[str, Any] = {
        "weights": group("weights", DIMENSION_LABELS),
        "severity_points": group("severity_points", SEVERITY_LABELS),
        "risk_weights": group("risk_weights", RISK_LABELS),
        "grade_thresholds": group("grade_thresholds", ("A", "B", "C")),
        "alert_severity": {
            kind: field_text(data, f"alert_severity_{kind}") for kind in DEFAULT_ALERT_SEVERITY
        },
        "bi_webhook_url": field_text(data, "bi_webhook_url", 1_000) or None,
        "bi_webhook_secret": field_text(data, "bi_webhook_secret", 200),
    }
    for name in POLICY_NUMBERS:
        value = _number(data, name, problems)
        payload[name] = int(value) if value is not None and name != "prior_jobs" else value
    if problems:
        raise DomainError(INVALID_FORM, problems)
    return payload


# --- shaping pages ---------------------------------------------------------------------------


async def _plants(session: AsyncSession, principal: Principal) -> dict[uuid.UUID, Plant]:
    return {p.id: p for p in await tenants.list_plants(session, visible_plant_ids(principal))}


async def _contractor_names(session: AsyncSession) -> dict[uuid.UUID, str]:
    rows = await session.execute(select(Contractor.id, Contractor.name).order_by(Contractor.name))
    return {row.id: row.name for row in rows}


async def _permits_by_id(session: AsyncSession, ids: Any) -> dict[uuid.UUID, Permit]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await session.execute(select(Permit).where(Permit.id.in_(wanted)))
    return {permit.id: permit for permit in rows.scalars()}


async def _photos(
    session: AsyncSession, storage: ObjectStorage, settings: Settings, ids: list[str]
) -> list[str]:
    links = []
    for photo_id in ids:
        try:
            record = await get_stored_object(session, uuid.UUID(photo_id))
        except (NotFound, ValueError):
            continue
        links.append(_download_link(storage, settings, record.key))
    return links


def _can_appeal(actor: permits.Actor, scored: services.ScoredRating, now: datetime) -> bool:
    return (
        actor.applies_for(scored.rating.contractor_id)
        and scored.appeal is None
        and now <= scored.rating.appeal_until
    )


async def _store_photos(
    session: AsyncSession,
    storage: ObjectStorage,
    principal: Principal,
    data: dict[str, Any],
    stored: list[str],
) -> list[uuid.UUID]:
    files = _uploads(data, "photos")
    if len(files) > MAX_PHOTOS:
        raise DomainError(
            INVALID_FORM,
            [FieldProblem("photos", "max_items", _TOO_MANY_PHOTOS, {"count": MAX_PHOTOS})],
        )
    ids = []
    for upload in files:
        try:
            record = await store_upload(
                session,
                storage,
                DOCUMENT_KINDS["photo"],
                upload.file,
                filename=upload.filename,
                created_by=principal.user_id,
            )
        except DomainError as exc:
            for problem in exc.problems:
                problem.field = "photos"
            raise
        stored.append(record.key)
        ids.append(record.id)
    return ids


async def _undo(session: AsyncSession, storage: ObjectStorage, keys: list[str]) -> None:
    """A refused form stores nothing: not the rows flushed so far, nor the photos uploaded."""
    await session.rollback()
    for key in keys:
        storage.delete(key)


# --- routes ----------------------------------------------------------------------------------


class ScoringPages(Controller):
    include_in_schema = False

    async def _actor(self, session: AsyncSession, principal: Principal, slug: str) -> Any:
        ensure_own_tenant(principal, slug)
        return await permits.actor_for(session, principal)

    # --- ratings ---------------------------------------------------------------------------

    @get("/t/{slug:str}/ratings", guards=[signed_in])
    async def ratings(
        self, request: Request[Principal, Any, Any], db_session: DbSession, slug: FromPath[str]
    ) -> Template:
        actor = await self._actor(db_session, request.user, slug)
        if actor.contractor_id is None and not has_any_role(
            request.user, (role for role in Role if role.is_host)
        ):
            raise NotFoundException()
        scored = await services.list_ratings(db_session, actor)
        unrated = await services.unrated_jobs(db_session, actor)
        permits_by_id = await _permits_by_id(
            db_session, [s.rating.permit_id for s in scored] + [p.id for p in unrated]
        )
        now = utcnow()
        return Template(
            "scoring/ratings.html",
            context={
                "tenant_slug": slug,
                "is_contractor": actor.contractor_id is not None,
                "ratings": [
                    {"scored": s, "can_appeal": _can_appeal(actor, s, now)} for s in scored
                ],
                "unrated": unrated,
                "permits": permits_by_id,
                "plants": await _plants(db_session, request.user),
                "contractors": await _contractor_names(db_session),
                **_labels(),
            },
        )

    async def _rating_page(
        self,
        session: AsyncSession,
        state: State,
        settings: Settings,
        actor: Any,
        slug: str,
        rating_id: uuid.UUID,
        *,
        errors: FormErrors | None = None,
        values: dict[str, Any] | None = None,
        status_code: int = 200,
    ) -> Template:
        scored = await services.get_rating(session, actor, rating_id)
        rating = scored.rating
        permit = await permits.get_permit(session, actor, rating.permit_id)
        plant = await tenants.get_plant(session, rating.plant_id)
        contractor = await session.scalar(
            select(Contractor.name).where(Contractor.id == rating.contractor_id)
        )
        can_decide = (
            scored.appeal is not None
            and scored.appeal.state == "open"
            and has_any_role(actor.principal, services.RATER_ROLES)
            and actor.is_host_for(rating.plant_id)
        )
        return Template(
            "scoring/rating.html",
            context={
                "tenant_slug": slug,
                "scored": scored,
                "rating": rating,
                "permit": permit,
                "plant": plant,
                "contractor_name": contractor or "",
                "photos": await _photos(session, state.storage, settings, rating.photo_ids),
                "can_appeal": _can_appeal(actor, scored, utcnow()),
                "can_decide": can_decide,
                "errors": errors or FormErrors(),
                "values": values or {name: rating.scores[name] for name in DIMENSION_LABELS},
                **_labels(),
            },
            status_code=status_code,
        )

    @get("/t/{slug:str}/ratings/{rating_id:uuid}", guards=[signed_in])
    async def rating(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        state: State,
        settings: AppSettings,
        slug: FromPath[str],
        rating_id: FromPath[uuid.UUID],
    ) -> Template:
        actor = await self._actor(db_session, request.user, slug)
        return await self._rating_page(db_session, state, settings, actor, slug, rating_id)

    async def _rating_change(
        self,
        request: Request[Principal, Any, Any],
        session: AsyncSession,
        state: State,
        settings: Settings,
        slug: str,
        rating_id: uuid.UUID,
        data: dict[str, Any],
        change: Callable[[Any], Awaitable[Any]],
        known: set[str],
    ) -> Template | Redirect:
        actor = await self._actor(session, request.user, slug)
        try:
            await change(actor)
        except DomainError as exc:
            if isinstance(exc, NotFound):
                raise
            await session.rollback()
            return await self._rating_page(
                session,
                state,
                settings,
                actor,
                slug,
                rating_id,
                errors=FormErrors.of(exc, known),
                values={key: field_text(data, key, 4_000) for key in data},
                status_code=exc.status_code,
            )
        return Redirect(path=f"/t/{slug}/ratings/{rating_id}")

    @post("/t/{slug:str}/ratings/{rating_id:uuid}/appeal", guards=[_appellants])
    async def appeal(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        state: State,
        settings: AppSettings,
        slug: FromPath[str],
        rating_id: FromPath[uuid.UUID],
        data: MultipartForm,
    ) -> Template | Redirect:
        async def change(actor: Any) -> Any:
            appeal = convert({"reason": field_text(data, "reason", 4_000)}, AppealIn)
            return await services.file_appeal(db_session, actor, rating_id, appeal, now=utcnow())

        return await self._rating_change(
            request, db_session, state, settings, slug, rating_id, data, change, {"reason"}
        )

    @post("/t/{slug:str}/ratings/{rating_id:uuid}/decision", guards=[_raters])
    async def decide(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        state: State,
        settings: AppSettings,
        slug: FromPath[str],
        rating_id: FromPath[uuid.UUID],
        data: MultipartForm,
    ) -> Template | Redirect:
        async def change(actor: Any) -> Any:
            outcome = field_text(data, "outcome")
            payload: dict[str, Any] = {
                "outcome": outcome,
                "text": field_text(data, "text", 4_000),
            }
            if outcome == "amended":
                payload["scores"] = _scores(data)
            decision = convert(payload, AppealDecisionIn)
            return await services.decide_appeal(
                db_session, actor, rating_id, decision, now=utcnow()
            )

        known = {"outcome", "text", *DIMENSION_LABELS}
        return await self._rating_change(
            request, db_session, state, settings, slug, rating_id, data, change, known
        )

    @get("/t/{slug:str}/permits/{permit_id:uuid}/rating", guards=[signed_in])
    async def permit_rating(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        permit_id: FromPath[uuid.UUID],
    ) -> Redirect:
        """From the permit page: its rating, or the rating form for EHS while unrated."""
        actor = await self._actor(db_session, request.user, slug)
        scored = await services.rating_of_permit(db_session, actor, permit_id)
        if scored is not None:
            return Redirect(path=f"/t/{slug}/ratings/{scored.rating.id}")
        permit = await permits.get_permit(db_session, actor, permit_id)
        if not has_role_for_plant(request.user, services.RATER_ROLES, permit.plant_id):
            raise NotFound(services.RATING_NOT_FOUND)
        return Redirect(path=f"/t/{slug}/permits/{permit_id}/rate")

    async def _rate_page(
        self,
        session: AsyncSession,
        actor: Any,
        slug: str,
        permit_id: uuid.UUID,
        *,
        errors: FormErrors | None = None,
        values: dict[str, Any] | None = None,
        status_code: int = 200,
    ) -> Template:
        permit = await permits.get_permit(session, actor, permit_id)
        if not actor.is_host_for(permit.plant_id) or not has_any_role(
            actor.principal, services.RATER_ROLES
        ):
            raise NotFoundException()
        scored = await services.rating_of_permit(session, actor, permit_id)
        policy = await services.get_policy(session)
        contractor = await session.scalar(
            select(Contractor.name).where(Contractor.id == permit.contractor_id)
        )
        return Template(
            "scoring/rate.html",
            context={
                "tenant_slug": slug,
                "permit": permit,
                "plant": await tenants.get_plant(session, permit.plant_id),
                "contractor_name": contractor or "",
                "rated": scored,
                "weights": policy.weights,
                "total_weight": sum(policy.weights.values()),
                "errors": errors or FormErrors(),
                "values": values or {},
                "max_photos": MAX_PHOTOS,
                **_labels(),
            },
            status_code=status_code,
        )

    @get("/t/{slug:str}/permits/{permit_id:uuid}/rate", guards=[_raters])
    async def rate_form(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        permit_id: FromPath[uuid.UUID],
    ) -> Template:
        actor = await self._actor(db_session, request.user, slug)
        return await self._rate_page(db_session, actor, slug, permit_id)

    @post(
        "/t/{slug:str}/permits/{permit_id:uuid}/rate",
        guards=[_raters],
        request_max_body_size=_PHOTO_BODY,
    )
    async def rate(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        state: State,
        slug: FromPath[str],
        permit_id: FromPath[uuid.UUID],
        data: MultipartForm,
    ) -> Template | Redirect:
        actor = await self._actor(db_session, request.user, slug)
        stored: list[str] = []
        try:
            scores = _scores(data)
            photo_ids = await _store_photos(db_session, state.storage, request.user, data, stored)
            payload = {
                "scores": scores,
                "comment": field_text(data, "comment", 4_000),
                "photo_ids": [str(i) for i in photo_ids],
            }
            rating = await services.rate_job(
                db_session, actor, permit_id, convert(payload, RatingIn), now=utcnow()
            )
        except DomainError as exc:
            if isinstance(exc, NotFound):
                raise
            await _undo(db_session, state.storage, stored)
            return await self._rate_page(
                db_session,
                actor,
                slug,
                permit_id,
                errors=FormErrors.of(exc, {"comment", "photos", "permit_id", *DIMENSION_LABELS}),
                values={key: field_text(data, key, 4_000) for key in data if key != "photos"},
                status_code=exc.status_code,
            )
        finally:
            await close_files(data)
        return Redirect(path=f"/t/{slug}/ratings/{rating.id}")

    # --- findings --------------------------------------------------------------------------

    async def _findings_page(
        self,
        session: AsyncSession,
        principal: Principal,
        actor: Any,
        slug: str,
        *,
        errors: FormErrors | None = None,
        values: dict[str, Any] | None = None,
        status_code: int = 200,
    ) -> Template:
        plants = await _plants(session, principal)
        rating_plants = [
            plant
            for plant in plants.values()
            if any(
                grant.role in services.RATER_ROLES and grant.plant_id in (None, plant.id)
                for grant in principal.grants
            )
        ]
        findings = await services.list_findings(session, actor)
        permits_by_id = await _permits_by_id(session, [f.permit_id for f in findings])
        first = rating_plants[0] if rating_plants else None
        return Template(
            "scoring/findings.html",
            context={
                "tenant_slug": slug,
                "plants": plants,
                "rating_plants": rating_plants,
                "contractors": await _contractor_names(session),
                "findings": findings,
                "permits": permits_by_id,
                "errors": errors or FormErrors(),
                "values": values
                or {
                    "observed_at": utcnow()
                    .astimezone(ZoneInfo(first.timezone if first else GROUP_TIMEZONE))
                    .strftime("%Y-%m-%dT%H:%M")
                },
                "max_photos": MAX_PHOTOS,
                **_labels(),
            },
            status_code=status_code,
        )

    @get("/t/{slug:str}/findings", guards=[_raters])
    async def findings(
        self, request: Request[Principal, Any, Any], db_session: DbSession, slug: FromPath[str]
    ) -> Template:
        actor = await self._actor(db_session, request.user, slug)
        return await self._findings_page(db_session, request.user, actor, slug)

    @post("/t/{slug:str}/findings", guards=[_raters], request_max_body_size=_PHOTO_BODY)
    async def record_finding(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        state: State,
        slug: FromPath[str],
        data: MultipartForm,
    ) -> Template | Redirect:
        actor = await self._actor(db_session, request.user, slug)
        stored: list[str] = []
        try:
            payload = await self._finding_payload(db_session, request.user, data)
            payload["photo_ids"] = [
                str(i)
                for i in await _store_photos(db_session, state.storage, request.user, data, stored)
            ]
            await services.record_finding(
                db_session, actor, convert(payload, FindingIn), now=utcnow()
            )
        except DomainError as exc:
            await _undo(db_session, state.storage, stored)
            return await self._findings_page(
                db_session,
                request.user,
                await self._actor(db_session, request.user, slug),
                slug,
                errors=FormErrors.of(exc, {*FINDING_FIELDS, "observed_at", "photos", "permit"}),
                values={key: field_text(data, key, 4_000) for key in data if key != "photos"},
                status_code=exc.status_code,
            )
        finally:
            await close_files(data)
        return Redirect(path=f"/t/{slug}/findings")

    async def _finding_payload(
        self, session: AsyncSession, principal: Principal, data: dict[str, Any]
    ) -> dict[str, Any]:
        """The permit is given by id or by its number, as it stands on the paper on site."""
        problems = [
            FieldProblem(name, "required", _REQUIRED)
            for name in ("plant_id", "contractor_id", "severity", "description", "observed_at")
            if not field_text(data, name)
        ]
        plants = await _plants(session, principal)
        plant_id = _uuid_or_none(field_text(data, "plant_id"))
        plant = plants.get(plant_id) if plant_id else None
        observed = _local_time(
            field_text(data, "observed_at"), plant.timezone if plant else GROUP_TIMEZONE
        )
        if field_text(data, "observed_at") and observed is None:
            problems.append(FieldProblem("observed_at", "datetime", _BAD_TIME))
        if problems:
            raise DomainError(INVALID_FORM, problems)
        permit = field_text(data, "permit")
        permit_id = _uuid_or_none(permit)
        if permit and permit_id is None:
            permit_id = await session.scalar(
                select(Permit.id).where(Permit.number == permit).order_by(Permit.version.desc())
            )
            if permit_id is None:
                raise DomainError(
                    INVALID_FORM,
                    [FieldProblem("permit", "exists", permits.PERMIT_NOT_FOUND)],
                )
        return {
            "plant_id": field_text(data, "plant_id"),
            "contractor_id": field_text(data, "contractor_id"),
            "permit_id": str(permit_id) if permit_id else None,
            "severity": field_text(data, "severity"),
            "description": field_text(data, "description", 4_000),
            "observed_at": observed.isoformat() if observed else None,
        }

    # --- reviews ---------------------------------------------------------------------------

    async def _reviews_page(
        self,
        session: AsyncSession,
        actor: Any,
        slug: str,
        *,
        errors: FormErrors | None = None,
        values: dict[str, Any] | None = None,
        status_code: int = 200,
    ) -> Template:
        today = utcnow().date()
        return Template(
            "scoring/reviews.html",
            context={
                "tenant_slug": slug,
                "reviews": await services.list_reviews(session, actor),
                "contractors": await _contractor_names(session),
                "period_label": services.period_label,
                "can_review": has_any_role(actor.principal, services.REVIEWER_ROLES),
                "errors": errors or FormErrors(),
                "values": values
                or {
                    "period_kind": "quarter",
                    "year": str(today.year),
                    "quarter": str((today.month - 1) // 3 + 1),
                },
                "years": range(today.year, today.year - 6, -1),
                **_labels(),
            },
            status_code=status_code,
        )

    @get("/t/{slug:str}/reviews", guards=[signed_in])
    async def reviews(
        self, request: Request[Principal, Any, Any], db_session: DbSession, slug: FromPath[str]
    ) -> Template:
        actor = await self._actor(db_session, request.user, slug)
        if actor.contractor_id is None and not has_any_role(
            request.user, (role for role in Role if role.is_host)
        ):
            raise NotFoundException()
        return await self._reviews_page(db_session, actor, slug)

    @post("/t/{slug:str}/reviews", guards=[_reviewers])
    async def create_review(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        data: MultipartForm,
    ) -> Template | Redirect:
        actor = await self._actor(db_session, request.user, slug)
        kind = field_text(data, "period_kind")
        payload: dict[str, Any] = {
            "contractor_id": field_text(data, "contractor_id"),
            "period_kind": kind,
            "year": _int_or_text(field_text(data, "year")),
            "quarter": _int_or_text(field_text(data, "quarter")) if kind == "quarter" else None,
        }
        try:
            now = utcnow()
            review = await services.create_review(
                db_session, actor, convert(payload, ReviewIn), now=now, today=now.date()
            )
        except DomainError as exc:
            await db_session.rollback()
            return await self._reviews_page(
                db_session,
                await self._actor(db_session, request.user, slug),
                slug,
                errors=FormErrors.of(
                    exc, {"contractor_id", "period_kind", "year", "quarter", "period"}
                ),
                values={key: field_text(data, key) for key in data},
                status_code=exc.status_code,
            )
        return Redirect(path=f"/t/{slug}/reviews/{review.id}")

    async def _review_page(
        self,
        session: AsyncSession,
        actor: Any,
        slug: str,
        review_id: uuid.UUID,
        *,
        errors: FormErrors | None = None,
        values: dict[str, Any] | None = None,
        status_code: int = 200,
    ) -> Template:
        review: Review = await services.get_review(session, actor, review_id)
        figures = review.figures
        return Template(
            "scoring/review.html",
            context={
                "tenant_slug": slug,
                "review": review,
                "period": services.period_label(review.period_kind, review.period_start),
                "contractor_name": await session.scalar(
                    select(Contractor.name).where(Contractor.id == review.contractor_id)
                ),
                "figures": figures,
                "plants": await _plants(session, actor.principal),
                "can_approve": review.state == "draft"
                and has_any_role(actor.principal, services.REVIEWER_ROLES),
                "errors": errors or FormErrors(),
                "values": values or {"decision": review.proposed_decision},
                **_labels(),
            },
            status_code=status_code,
        )

    @get("/t/{slug:str}/reviews/{review_id:uuid}", guards=[signed_in])
    async def review(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        review_id: FromPath[uuid.UUID],
    ) -> Template:
        actor = await self._actor(db_session, request.user, slug)
        return await self._review_page(db_session, actor, slug, review_id)

    @post("/t/{slug:str}/reviews/{review_id:uuid}/approve", guards=[_reviewers])
    async def approve(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        review_id: FromPath[uuid.UUID],
        data: MultipartForm,
    ) -> Template | Redirect:
        actor = await self._actor(db_session, request.user, slug)
        payload = {
            "decision": field_text(data, "decision") or None,
            "reason": field_text(data, "reason", 2_000),
        }
        try:
            await services.approve_review(
                db_session, actor, review_id, convert(payload, ReviewApprovalIn), now=utcnow()
            )
        except DomainError as exc:
            if isinstance(exc, NotFound):
                raise
            await db_session.rollback()
            return await self._review_page(
                db_session,
                await self._actor(db_session, request.user, slug),
                slug,
                review_id,
                errors=FormErrors.of(exc, {"decision", "reason"}),
                values=payload,
                status_code=exc.status_code,
            )
        return Redirect(path=f"/t/{slug}/reviews/{review_id}")

    # --- the policy ------------------------------------------------------------------------

    async def _policy_page(
        self,
        session: AsyncSession,
        slug: str,
        *,
        errors: FormErrors | None = None,
        values: dict[str, Any] | None = None,
        saved: bool = False,
        status_code: int = 200,
    ) -> Template:
        policy = await services.get_policy(session)
        row = await services.policy_row(session)
        current: dict[str, Any] = {
            **{f"weights_{k}": v for k, v in policy.weights.items()},
            **{f"severity_points_{k}": v for k, v in policy.severity_points.items()},
            **{f"risk_weights_{k}": v for k, v in policy.risk_weights.items()},
            **{f"grade_thresholds_{k}": v for k, v in policy.grade_thresholds.items()},
            **{f"alert_severity_{k}": v for k, v in policy.alert_severity.items()},
            "prior_jobs": policy.prior_jobs,
            "blacklist_critical": policy.blacklist_critical,
            "appeal_days": policy.appeal_days,
            "bi_webhook_url": (row.bi_webhook_url if row else None) or "",
        }
        return Template(
            "scoring/policy.html",
            context={
                "tenant_slug": slug,
                "values": values or current,
                "secret_set": bool(row and row.bi_webhook_secret),
                "saved": saved,
                "errors": errors or FormErrors(),
                **_labels(),
            },
            status_code=status_code,
        )

    @get("/t/{slug:str}/scoring-policy", guards=[_reviewers])
    async def policy(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
    ) -> Template:
        ensure_own_tenant(request.user, slug)
        return await self._policy_page(db_session, slug)

    @post("/t/{slug:str}/scoring-policy", guards=[_reviewers])
    async def save_policy(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        data: MultipartForm,
    ) -> Template:
        ensure_own_tenant(request.user, slug)
        try:
            policy = convert(_policy_payload(data), PolicyIn)
            await services.save_policy(db_session, policy, actor_id=request.user.user_id)
        except DomainError as exc:
            await db_session.rollback()
            known = {
                *(f"{group}_{name}" for group in ("weights",) for name in DIMENSION_LABELS),
                *(f"severity_points_{name}" for name in SEVERITY_LABELS),
                *(f"risk_weights_{name}" for name in RISK_LABELS),
                *(f"grade_thresholds_{name}" for name in ("A", "B", "C")),
                *(f"alert_severity_{kind}" for kind in DEFAULT_ALERT_SEVERITY),
                *POLICY_NUMBERS,
                "bi_webhook_url",
                "grade_thresholds",
                "weights",
            }
            return await self._policy_page(
                db_session,
                slug,
                errors=FormErrors.of(exc, known),
                values={k: field_text(data, k, 1_000) for k in data if k != "bi_webhook_secret"},
                status_code=exc.status_code,
            )
        return await self._policy_page(db_session, slug, saved=True)


def _uuid_or_none(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID((value or "")[:64]) if value else None
    except ValueError:
        return None


def _int_or_text(value: str) -> int | str:
    """A number as a number; anything else goes on to the schema, which names the field."""
    return int(value) if value.isdigit() else value
