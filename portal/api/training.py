"""Training over the API: EHS authors and publishes inductions and watches the plant's board; a
worker (or their company administrator, in an assisted session on a shared tablet) reads the
current version, takes the quiz and signs; job briefings are signed by the briefer and the crew.

Handlers parse, call ``training.services`` and ``training.briefings`` and shape the answer; who may
reach what is the services' business (what the caller may not reach answers 404, like what does
not exist). The bank's correct answers never leave the server.

Billing: a tenant that is read-only for billing keeps worker training and every signature (quiz
attempts, answers, induction and briefing signatures are safety records); authoring stops.

Importing ``training.records`` here registers the induction record's verifier, which the QR
code's page (``/v/{token}``, ``/api/v1/verify/{token}``) asks.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.datastructures import State
from litestar.params import JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infra.errors import NotFound
from infra.i18n import N_
from infra.i18n import gettext as _
from portal.dependencies import AppSettings, DbSession
from portal.guards import BILLING_EXEMPT, requires_roles, signed_in
from portal.params import IdParam, parse_id
from tenants.access import Principal
from tenants.models import Role
from training import briefings, records, services
from training.content import as_content, render_markdown
from training.evidence import SigningDevice
from training.models import (
    Briefing,
    BriefingSignature,
    Induction,
    InductionSignature,
    InductionVersion,
    QuizAttempt,
)
from training.schemas import (
    AnswersIn,
    AttemptRead,
    BriefingCrewRead,
    BriefingIn,
    BriefingRead,
    CrewSignatureIn,
    DraftIn,
    DrawnQuestion,
    InductionIn,
    InductionRead,
    SignatureIn,
    SignatureRead,
    VersionRead,
    WorkerInductionStatus,
)
from training.signature import CONSENT_SENTENCE

_authors = requires_roles(*sorted(services.AUTHOR_ROLES))
_hosts = requires_roles(*[role for role in Role if role.is_host])
_takers = requires_roles(Role.CONTRACTOR_WORKER, Role.CONTRACTOR_ADMIN)
_briefers = requires_roles(*sorted(briefings.BRIEFER_ROLES))
_workers = requires_roles(Role.CONTRACTOR_WORKER)
# Safety records: they keep working while the tenant is read-only for billing.
_SAFETY_RECORD = {BILLING_EXEMPT: True}

BoardStatus = Annotated[
    Literal["done", "expiring", "pending", "failed", "lapsed"] | None,
    QueryParameter(name="status", description="Only rows with this status"),
]
WorkerQuery = Annotated[
    str | None,
    QueryParameter(
        name="worker_id",
        description="Assisted session: the company administrator names one of the company's "
        "workers. Left out, the caller's own worker login takes the induction.",
        max_length=64,
    ),
]

_ASSISTED = (
    " A worker signs in with their own login; their company's administrator may instead run an "
    "assisted session on a shared tablet by naming `worker_id` (another company's worker "
    "answers 404)."
)
_KEEPS_WORKING = " Keeps working while the tenant is read-only for billing (a safety record)."
_STOPS = " Refused while the tenant is read-only for billing."


# --- shaping answers -------------------------------------------------------------------------


class InductionDetailRead(InductionRead, kw_only=True):
    """An induction with its draft and every published version, oldest first."""

    versions: list[VersionRead]


class AssignmentRead(msgspec.Struct, kw_only=True):
    induction_id: uuid.UUID
    title: str
    plant_id: uuid.UUID
    plant_name: str
    work_type: str | None
    status: Literal["done", "expiring", "pending", "failed", "lapsed"]
    valid_until: date | None
    attempts_left_today: int
    version: int
    content_hash: str


class SectionRead(msgspec.Struct, kw_only=True):
    title: str
    body_html: str
    image_ids: list[uuid.UUID]
    video_url: str | None


class VersionContentRead(msgspec.Struct, kw_only=True):
    """What the worker reads before the quiz: the current version, without the bank."""

    induction_id: uuid.UUID
    version: int
    content_hash: str
    published_at: datetime
    title: str
    sections: list[SectionRead]
    questions_drawn: int
    pass_mark: int
    attempts_per_day: int
    validity_days: int
    consent_sentence: str


def version_read(version: InductionVersion) -> VersionRead:
    return VersionRead(
        id=version.id,
        version=version.version,
        content_hash=version.content_hash,
        published_at=version.published_at,
    )


async def induction_read(session: AsyncSession, induction: Induction) -> InductionRead:
    draft = as_content(induction.draft)
    return InductionRead(
        id=induction.id,
        plant_id=induction.plant_id,
        work_type=induction.work_type,
        title=draft.title,
        current_version=induction.current_version,
        draft_changed=await services.draft_differs(session, induction),
        retired=induction.retired_at is not None,
        draft=draft,
    )


async def _versions(session: AsyncSession, induction: Induction) -> list[InductionVersion]:
    return list(
        (
            await session.execute(
                select(InductionVersion)
                .where(InductionVersion.induction_id == induction.id)
                .order_by(InductionVersion.version)
            )
        ).scalars()
    )


async def attempt_read(session: AsyncSession, attempt: QuizAttempt) -> AttemptRead:
    """The drawn paper, as the worker sees it: the questions and options, never the answers."""
    version = await services.attempt_version(session, attempt)
    content = services.version_content(version)
    bank = {question.id: question for question in content.questions}
    return AttemptRead(
        id=attempt.id,
        induction_id=attempt.induction_id,
        version=version.version,
        worker_id=attempt.worker_id,
        started_at=attempt.started_at,
        questions=[
            DrawnQuestion(
                id=question_id,
                text=bank[question_id].text,
                kind=bank[question_id].kind,
                options=list(bank[question_id].options),
            )
            for question_id in attempt.drawn
        ],
        submitted_at=attempt.submitted_at,
        score=attempt.score,
        passed=attempt.passed,
        wrong=attempt.wrong,
        pass_mark=content.pass_mark,
    )


def signature_read(
    signature: InductionSignature | BriefingSignature, verification_url: str | None = None
) -> SignatureRead:
    return SignatureRead(
        id=signature.id,
        worker_id=signature.worker_id,
        full_name=signature.full_name,
        signed_at=signature.signed_at,
        content_hash=signature.content_hash,
        record_hash=signature.record_hash,
        valid_until=getattr(signature, "valid_until", None),
        verification_url=verification_url,
    )


def induction_signature_read(settings: Any, signature: InductionSignature) -> SignatureRead:
    return signature_read(signature, records.record_url(settings, signature))


async def briefing_read(session: AsyncSession, briefing: Briefing) -> BriefingRead:
    status = await briefings.briefing_status(session, briefing.permit_id)
    live = status.briefing is not None and status.briefing.id == briefing.id
    return BriefingRead(
        id=briefing.id,
        permit_id=briefing.permit_id,
        permit_number=briefing.permit_number,
        content_hash=briefing.content_hash,
        briefer_id=briefing.briefer_id,
        briefer_signed=live and status.briefer_signed,
        complete=live and status.complete,
        crew=[
            BriefingCrewRead(
                worker_id=worker.id,
                worker_name=worker.name,
                signed_at=signature.signed_at if signature else None,
            )
            for worker, signature in (status.crew if live else [])
        ],
        content=dict(briefing.content),
    )


def _device(request: Request[Any, Any, Any]) -> SigningDevice:
    return SigningDevice(
        ip_address=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )


async def _taker(
    session: AsyncSession, principal: Principal, worker_id: str | None
) -> services.Taker:
    return await services.taker_for(
        session, principal, parse_id(worker_id, "worker_id") if worker_id is not None else None
    )


async def _assignment(
    session: AsyncSession, taker: services.Taker, induction_id: uuid.UUID
) -> services.Assignment:
    for assignment in await services.assignments(session, taker):
        if assignment.induction.id == induction_id:
            return assignment
    raise NotFound(N_("Induction not found."))


def _pdf_filename(signature: InductionSignature) -> str:
    return f"induction-record-{signature.id}.pdf"


# --- authoring and the board -----------------------------------------------------------------


class InductionAuthoringController(Controller):
    path = "/api/v1/training"
    tags = ["training"]  # noqa: RUF012

    @get(
        "/inductions",
        summary="Inductions the caller authors",
        description="EHS officers and tenant administrators: the inductions of the plants their "
        "role covers, oldest first.",
        guards=[_authors],
    )
    async def list_inductions(
        self, request: Request[Principal, Any, Any], db_session: DbSession
    ) -> list[InductionRead]:
        inductions = await services.list_inductions(db_session, request.user)
        return [await induction_read(db_session, induction) for induction in inductions]

    @post(
        "/inductions",
        summary="Create an induction",
        description="EHS officers and tenant administrators of the plant. The content (reading "
        "sections in Markdown, the question bank, the draw and the pass mark) is a draft until "
        "published; images are uploads of kind `photo`." + _STOPS,
        guards=[_authors],
    )
    async def create_induction(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        data: JSONBody[InductionIn],
    ) -> InductionRead:
        induction = await services.create_induction(db_session, request.user, data)
        return await induction_read(db_session, induction)

    @get(
        "/inductions/{induction_id:str}",
        summary="One induction, with its draft and published versions",
        description="Other plants' and tenants' ids answer 404.",
        guards=[_authors],
    )
    async def get_induction(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        induction_id: IdParam,
    ) -> InductionDetailRead:
        induction = await services.get_induction(
            db_session, request.user, parse_id(induction_id, "induction_id")
        )
        read = await induction_read(db_session, induction)
        return InductionDetailRead(
            **msgspec.structs.asdict(read),
            versions=[version_read(v) for v in await _versions(db_session, induction)],
        )

    @put(
        "/inductions/{induction_id:str}/draft",
        summary="Replace an induction's draft",
        description="What was published stays as it was until the draft is published." + _STOPS,
        guards=[_authors],
    )
    async def update_draft(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        induction_id: IdParam,
        data: JSONBody[DraftIn],
    ) -> InductionRead:
        induction = await services.update_draft(
            db_session, request.user, parse_id(induction_id, "induction_id"), data
        )
        return await induction_read(db_session, induction)

    @post(
        "/inductions/{induction_id:str}/publish",
        summary="Publish the draft as the next version",
        description="Freezes the draft and its content hash. Earlier signatures stay valid "
        "records and verify as superseded; workers take the new version. 409 when nothing "
        "changed since the last version or the induction is retired." + _STOPS,
        guards=[_authors],
    )
    async def publish(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        induction_id: IdParam,
    ) -> VersionRead:
        version = await services.publish(
            db_session, request.user, parse_id(induction_id, "induction_id")
        )
        return version_read(version)

    @post(
        "/inductions/{induction_id:str}/retire",
        summary="Stop requiring an induction",
        description="Signatures already given stay verifiable." + _STOPS,
        guards=[_authors],
        status_code=HTTP_200_OK,
    )
    async def retire(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        induction_id: IdParam,
    ) -> InductionRead:
        induction = await services.retire(
            db_session, request.user, parse_id(induction_id, "induction_id")
        )
        return await induction_read(db_session, induction)

    @get(
        "/plants/{plant_id:str}/board",
        summary="The plant's induction board",
        description="Host users of the plant: every admissible worker against every current "
        "induction of the plant their company's work types call for, with `status` done, "
        "expiring (within 30 days), lapsed, failed or pending. A plant outside the caller's "
        "scope answers 404.",
        guards=[_hosts],
    )
    async def board(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        plant_id: IdParam,
        board_status: BoardStatus = None,
    ) -> list[WorkerInductionStatus]:
        rows = await services.induction_board(
            db_session, request.user, parse_id(plant_id, "plant_id"), status=board_status
        )
        signed = await _signed_versions(
            db_session, [(row.worker.id, row.induction.id) for row in rows]
        )
        return [
            WorkerInductionStatus(
                worker_id=row.worker.id,
                worker_name=row.worker.name,
                contractor_id=row.contractor.id,
                contractor_name=row.contractor.name,
                induction_id=row.induction.id,
                induction_title=row.title,
                status=row.status,  # type: ignore[arg-type]
                valid_until=row.valid_until,
                signed_version=signed.get((row.worker.id, row.induction.id)),
            )
            for row in rows
        ]


async def _signed_versions(
    session: AsyncSession, pairs: list[tuple[uuid.UUID, uuid.UUID]]
) -> dict[tuple[uuid.UUID, uuid.UUID], int]:
    """The version of each worker's latest signature of each induction, for the board."""
    if not pairs:
        return {}
    rows = (
        await session.execute(
            select(
                InductionSignature.worker_id,
                InductionSignature.induction_id,
                InductionVersion.version,
            )
            .join(InductionVersion, InductionVersion.id == InductionSignature.version_id)
            .where(
                InductionSignature.worker_id.in_({worker for worker, _ in pairs}),
                InductionSignature.induction_id.in_({induction for _, induction in pairs}),
            )
            .order_by(InductionSignature.signed_at)
        )
    ).all()
    return {(worker, induction): version for worker, induction, version in rows}


# --- taking an induction ---------------------------------------------------------------------


class InductionTakingController(Controller):
    path = "/api/v1/training"
    tags = ["training"]  # noqa: RUF012
    guards = [_takers]  # noqa: RUF012

    @get(
        "/assignments",
        summary="The inductions a worker is asked to take",
        description="Every plant's current inductions for the company's work types, with where "
        "the worker stands (done, expiring, lapsed, failed, pending), the validity end, the "
        "attempts left today and the version to take." + _ASSISTED,
    )
    async def assignments(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        worker_id: WorkerQuery = None,
    ) -> list[AssignmentRead]:
        taker = await _taker(db_session, request.user, worker_id)
        return [
            AssignmentRead(
                induction_id=item.induction.id,
                title=services.version_content(item.version).title,
                plant_id=item.plant.id,
                plant_name=item.plant.name,
                work_type=item.induction.work_type,
                status=item.status,  # type: ignore[arg-type]
                valid_until=item.valid_until,
                attempts_left_today=item.attempts_left_today,
                version=item.version.version,
                content_hash=item.version.content_hash,
            )
            for item in await services.assignments(db_session, taker)
        ]

    @get(
        "/assignments/{induction_id:str}/content",
        summary="Read the current version of an induction",
        description="The sections with their Markdown rendered to safe HTML (`body_html`), the "
        "quiz's rules and the consent sentence the signature accepts. The question bank is not "
        "part of it; the quiz's questions come with an attempt." + _ASSISTED,
    )
    async def content(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        induction_id: IdParam,
        worker_id: WorkerQuery = None,
    ) -> VersionContentRead:
        taker = await _taker(db_session, request.user, worker_id)
        item = await _assignment(db_session, taker, parse_id(induction_id, "induction_id"))
        content = services.version_content(item.version)
        return VersionContentRead(
            induction_id=item.induction.id,
            version=item.version.version,
            content_hash=item.version.content_hash,
            published_at=item.version.published_at,
            title=content.title,
            sections=[
                SectionRead(
                    title=section.title,
                    body_html=render_markdown(section.body),
                    image_ids=list(section.image_ids),
                    video_url=section.video_url,
                )
                for section in content.sections
            ],
            questions_drawn=content.draw_count,
            pass_mark=content.pass_mark,
            attempts_per_day=content.attempts_per_day,
            validity_days=content.validity_days,
            consent_sentence=_(CONSENT_SENTENCE),
        )

    @post(
        "/assignments/{induction_id:str}/attempts",
        summary="Start a quiz attempt",
        description="Draws the worker's own paper from the current version's bank (questions "
        "and options only). An open attempt on the current version is handed back instead; "
        "otherwise the day's limit applies (422 `attempts_per_day`)." + _ASSISTED + _KEEPS_WORKING,
        opt=_SAFETY_RECORD,
    )
    async def start_attempt(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        induction_id: IdParam,
        worker_id: WorkerQuery = None,
    ) -> AttemptRead:
        taker = await _taker(db_session, request.user, worker_id)
        attempt = await services.start_attempt(
            db_session, taker, parse_id(induction_id, "induction_id")
        )
        return await attempt_read(db_session, attempt)

    @get(
        "/attempts/{attempt_id:str}",
        summary="One quiz attempt",
        description="The drawn paper and, once submitted, the score and the wrong question ids."
        + _ASSISTED,
    )
    async def get_attempt(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        attempt_id: IdParam,
        worker_id: WorkerQuery = None,
    ) -> AttemptRead:
        taker = await _taker(db_session, request.user, worker_id)
        attempt = await services.get_attempt(db_session, taker, parse_id(attempt_id, "attempt_id"))
        return await attempt_read(db_session, attempt)

    @post(
        "/attempts/{attempt_id:str}/answers",
        summary="Submit the answers of an attempt",
        description="`answers` maps each drawn question id to the chosen option indexes; a "
        "question left out counts as wrong, an answer to a question not drawn is refused (422 "
        "`drawn_only`). Scored once: the score, pass or fail and the wrong question ids."
        + _ASSISTED
        + _KEEPS_WORKING,
        opt=_SAFETY_RECORD,
        status_code=HTTP_200_OK,
    )
    async def submit_answers(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        attempt_id: IdParam,
        data: JSONBody[AnswersIn],
        worker_id: WorkerQuery = None,
    ) -> AttemptRead:
        taker = await _taker(db_session, request.user, worker_id)
        attempt = await services.submit_answers(
            db_session, taker, parse_id(attempt_id, "attempt_id"), data
        )
        return await attempt_read(db_session, attempt)

    @post(
        "/attempts/{attempt_id:str}/signature",
        summary="Sign the induction after passing its quiz",
        description="The worker's drawn signature (`strokes`, checked and rendered to an image on "
        "the server), their full name as registered and the consent sentence accepted; once per "
        "passed attempt and only while its version is current (422 `current_version`). A drawing "
        "already given on another record answers 409 `not_replayed`. The answer carries the "
        "record's `verification_url` (the QR code's link)." + _ASSISTED + _KEEPS_WORKING,
        opt=_SAFETY_RECORD,
    )
    async def sign(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        state: State,
        settings: AppSettings,
        attempt_id: IdParam,
        data: JSONBody[SignatureIn],
        worker_id: WorkerQuery = None,
    ) -> SignatureRead:
        taker = await _taker(db_session, request.user, worker_id)
        signature = await services.sign_induction(
            db_session,
            state.storage,
            taker,
            parse_id(attempt_id, "attempt_id"),
            data,
            _device(request),
        )
        return induction_signature_read(settings, signature)


# --- signed records --------------------------------------------------------------------------


class InductionSignatureController(Controller):
    path = "/api/v1/training/signatures"
    tags = ["training"]  # noqa: RUF012
    guards = [signed_in]  # noqa: RUF012

    @get(
        "/{signature_id:str}",
        summary="One induction signature",
        description="Its worker, their company's administrators and the plant's host users; "
        "anyone else answers 404.",
    )
    async def get_signature(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        signature_id: IdParam,
    ) -> SignatureRead:
        signature = await services.get_signature(
            db_session, request.user, parse_id(signature_id, "signature_id")
        )
        return induction_signature_read(settings, signature)

    @get(
        "/{signature_id:str}/record.pdf",
        summary="The signed induction record as PDF",
        description="The record with the signature image and the QR code of its verification "
        "page; the same people as the signature itself.",
        media_type="application/pdf",
    )
    async def record_pdf(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        state: State,
        settings: AppSettings,
        signature_id: IdParam,
    ) -> Response[bytes]:
        signature = await services.get_signature(
            db_session, request.user, parse_id(signature_id, "signature_id")
        )
        pdf = await records.record_pdf(db_session, state.storage, settings, signature)
        return Response(
            pdf,
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'inline; filename="{_pdf_filename(signature)}"',
                "Cache-Control": "private, no-store",
            },
        )


# --- job briefings ---------------------------------------------------------------------------


class BriefingController(Controller):
    path = "/api/v1/training/briefings"
    tags = ["training"]  # noqa: RUF012
    guards = [signed_in]  # noqa: RUF012

    @get(
        "/mine",
        summary="Briefings the caller's worker has to sign",
        description="The live briefings whose crew the worker behind this login is on and has "
        "not signed yet; empty for a login that belongs to no worker.",
    )
    async def mine(
        self, request: Request[Principal, Any, Any], db_session: DbSession
    ) -> list[BriefingRead]:
        return [
            await briefing_read(db_session, briefing)
            for briefing in await briefings.briefings_to_sign(db_session, request.user)
        ]

    @get(
        "/{briefing_id:str}",
        summary="One job briefing and who has signed it",
        description="The content generated from the permit (hazards, control measures, "
        "emergency measures), whether the briefer signed, each current crew member's signing "
        "time and whether the briefing is complete. A briefing superseded by a change of its "
        "permit shows no crew and is never complete.",
    )
    async def get_briefing(
        self, request: Request[Principal, Any, Any], db_session: DbSession, briefing_id: IdParam
    ) -> BriefingRead:
        briefing = await briefings.visible_briefing(
            db_session, request.user, parse_id(briefing_id, "briefing_id")
        )
        return await briefing_read(db_session, briefing)

    @post(
        "/{briefing_id:str}/briefer-signature",
        summary="Sign as the briefer",
        description="A host user who may brief at the permit's plant (unit supervisor, EHS "
        "officer, plant manager, guardian) signs that the briefing was given (安全交底人), with "
        "their own name." + _KEEPS_WORKING,
        guards=[_briefers],
        opt=_SAFETY_RECORD,
    )
    async def sign_as_briefer(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        state: State,
        briefing_id: IdParam,
        data: JSONBody[BriefingIn],
    ) -> SignatureRead:
        signature = await briefings.sign_as_briefer(
            db_session,
            state.storage,
            request.user,
            parse_id(briefing_id, "briefing_id"),
            data.signature,
            _device(request),
        )
        return signature_read(signature)

    @post(
        "/{briefing_id:str}/crew-signatures",
        summary="A crew member signs on the briefer's tablet",
        description="The briefer hands the tablet to each crew member in turn and names them "
        "(`worker_id`); the crew member draws and types their own name (接受交底人). A crew "
        "member with their own login signs on their phone at `.../my-signature` instead."
        + _KEEPS_WORKING,
        guards=[_briefers],
        opt=_SAFETY_RECORD,
    )
    async def sign_on_tablet(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        state: State,
        briefing_id: IdParam,
        data: JSONBody[CrewSignatureIn],
    ) -> SignatureRead:
        signature = await briefings.sign_as_crew(
            db_session,
            state.storage,
            request.user,
            parse_id(briefing_id, "briefing_id"),
            data.worker_id,
            data.signature,
            _device(request),
        )
        return signature_read(signature)

    @post(
        "/{briefing_id:str}/my-signature",
        summary="A crew member signs on their own phone",
        description="The worker behind this login, on the briefing's current crew, signs as "
        "briefed (接受交底人)." + _KEEPS_WORKING,
        guards=[_workers],
        opt=_SAFETY_RECORD,
    )
    async def sign_on_own_phone(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        state: State,
        briefing_id: IdParam,
        data: JSONBody[SignatureIn],
    ) -> SignatureRead:
        signature = await briefings.sign_as_crew(
            db_session,
            state.storage,
            request.user,
            parse_id(briefing_id, "briefing_id"),
            None,
            data,
            _device(request),
        )
        return signature_read(signature)
