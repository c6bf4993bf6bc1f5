"""Training (培训): authoring and publishing inductions, taking and signing them, the EHS board,
job briefings, and the answers other packages ask for.

Every function runs in the caller's transaction and tenant scope; every change an inspector may
ask about is written to the ledger in that transaction. What the caller may not reach answers
``NotFound``, like what does not exist.

Signing binds evidence in one place (:func:`_signature_evidence`): the checked strokes, the image
rendered from them and stored through the upload pipeline, the device facts, and a record hash
that the ledger entry repeats. The verification page recomputes all of it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from infra import audit
from infra.db import utcnow
from infra.errors import Conflict, InvalidInput, NotFound
from infra.i18n import N_, gettext
from infra.storage import ObjectStorage
from infra.uploads import StoredObject
from onboarding.access import viewer_for
from onboarding.clock import plant_date, plant_today
from onboarding.models import Contractor, Worker
from onboarding.personal_data import register_sealed_records
from onboarding.services import worker_for_user
from onboarding.states import ContractorState, ItemState
from tenants.access import Principal, has_role_for_plant, visible_plant_ids
from tenants.models import Plant, Role
from tenants.services import ensure_plant_in_service
from training import content as induction_content
from training import quiz
from training.evidence import (
    SigningDevice,
    briefing_record_document,
    induction_record_document,
    record_hash,
    seal,
    signature_evidence,
)
from training.models import (
    BriefingSignature,
    Induction,
    InductionSignature,
    InductionVersion,
    QuizAttempt,
)
from training.schemas import (
    AnswersIn,
    DraftIn,
    InductionContent,
    InductionIn,
    SignatureIn,
)
from training.signature import (
    CONSENT_SENTENCE,
)

# Erasing a worker's personal data rewrites the name in their signatures, so it must be able to
# say what the records hash to afterwards.
register_sealed_records(
    InductionSignature, lambda signature: record_hash(induction_record_document(signature))
)
register_sealed_records(
    BriefingSignature, lambda signature: record_hash(briefing_record_document(signature))
)

AUTHOR_ROLES = frozenset({Role.EHS_OFFICER, Role.TENANT_ADMIN})
EXPIRING_WITHIN_DAYS = 30
# Workers of these companies may not work anywhere, so they are neither trained nor listed.
_EXCLUDED_CONTRACTORS = (ContractorState.REJECTED.value, ContractorState.BLACKLISTED.value)
_INDUCTION_NOT_FOUND = N_("Induction not found.")
_ATTEMPT_NOT_FOUND = N_("Quiz attempt not found.")


@dataclass(frozen=True)
class Taker:
    """Who is taking an induction: the worker, and the account holding the phone — the worker's
    own, or their company administrator's in an assisted session on a shared tablet."""

    worker: Worker
    operated_by: uuid.UUID

    @property
    def assisted(self) -> bool:
        return self.worker.user_id != self.operated_by


# --- authoring -------------------------------------------------------------------------------


def _ensure_author(principal: Principal, plant_id: uuid.UUID) -> None:
    if not has_role_for_plant(principal, AUTHOR_ROLES, plant_id):
        raise NotFound(_INDUCTION_NOT_FOUND)


async def _plant(session: AsyncSession, plant_id: uuid.UUID) -> Plant:
    plant = await session.scalar(select(Plant).where(Plant.id == plant_id))
    if plant is None:
        raise InvalidInput("plant_id", "exists", N_("No such plant."))
    ensure_plant_in_service(plant)
    return plant


async def _image_digests(session: AsyncSession, content: InductionContent) -> dict[str, str]:
    wanted = induction_content.image_ids(content)
    if not wanted:
        return {}
    rows = (
        await session.execute(
            select(StoredObject.id, StoredObject.sha256).where(
                StoredObject.id.in_(wanted), StoredObject.kind == "photo"
            )
        )
    ).all()
    found = {row.id: row.sha256 for row in rows}
    for index, section in enumerate(content.sections):
        for image_id in section.image_ids:
            if image_id not in found:
                raise InvalidInput(
                    f"content.sections[{index}].image_ids",
                    "exists",
                    N_("An image must be an uploaded photo."),
                )
    return {str(image_id): found[image_id] for image_id in wanted}


async def create_induction(
    session: AsyncSession, principal: Principal, data: InductionIn
) -> Induction:
    await _plant(session, data.plant_id)
    _ensure_author(principal, data.plant_id)
    induction_content.check_content(data.content)
    await _image_digests(session, data.content)
    induction = Induction(
        plant_id=data.plant_id,
        work_type=data.work_type.value if data.work_type else None,
        draft=induction_content.as_document(data.content),
        created_by=principal.user_id,
    )
    session.add(induction)
    await session.flush()
    await audit.record(
        session,
        action="induction.created",
        subject_type="induction",
        subject_id=induction.id,
        actor_id=principal.user_id,
        payload={"plant_id": induction.plant_id, "title": data.content.title},
    )
    return induction


async def get_induction(
    session: AsyncSession,
    principal: Principal,
    induction_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> Induction:
    query = select(Induction).where(Induction.id == induction_id)
    induction = await session.scalar(query.with_for_update() if for_update else query)
    if induction is None:
        raise NotFound(_INDUCTION_NOT_FOUND)
    _ensure_author(principal, induction.plant_id)
    return induction


async def list_inductions(session: AsyncSession, principal: Principal) -> list[Induction]:
    """The inductions of the plants the principal authors for."""
    query = select(Induction).order_by(Induction.created_at)
    plants = visible_plant_ids(principal)
    if plants is not None:
        query = query.where(Induction.plant_id.in_(plants))
    inductions = (await session.execute(query)).scalars()
    return [i for i in inductions if has_role_for_plant(principal, AUTHOR_ROLES, i.plant_id)]


async def update_draft(
    session: AsyncSession, principal: Principal, induction_id: uuid.UUID, data: DraftIn
) -> Induction:
    """Change the draft; what was published stays as it was until the draft is published."""
    induction = await get_induction(session, principal, induction_id, for_update=True)
    induction_content.check_content(data.content)
    await _image_digests(session, data.content)
    induction.draft = induction_content.as_document(data.content)
    await session.flush()
    await audit.record(
        session,
        action="induction.draft_changed",
        subject_type="induction",
        subject_id=induction.id,
        actor_id=principal.user_id,
        payload={"title": data.content.title},
    )
    return induction


async def current_version(session: AsyncSession, induction: Induction) -> InductionVersion | None:
    if induction.current_version == 0:
        return None
    return await session.scalar(
        select(InductionVersion).where(
            InductionVersion.induction_id == induction.id,
            InductionVersion.version == induction.current_version,
        )
    )


async def draft_differs(session: AsyncSession, induction: Induction) -> bool:
    version = await current_version(session, induction)
    # A version's content is the frozen document (ids, number, image digests around it); the
    # draft is what that document holds under "content".
    return version is None or version.content["content"] != induction.draft


async def publish(
    session: AsyncSession, principal: Principal, induction_id: uuid.UUID
) -> InductionVersion:
    """Freeze the draft as the next version. Signatures of earlier versions stay what they were:
    the verification page calls them superseded."""
    induction = await get_induction(session, principal, induction_id, for_update=True)
    if induction.retired_at is not None:
        raise Conflict("induction", "retired", N_("A retired induction cannot be published."))
    if not await draft_differs(session, induction):
        raise Conflict("draft", "changed", N_("Nothing changed since the last published version."))
    draft = induction_content.as_content(induction.draft)
    images = await _image_digests(session, draft)
    number = induction.current_version + 1
    document = induction_content.frozen_document(
        induction_id=induction.id,
        plant_id=induction.plant_id,
        work_type=induction.work_type,
        version=number,
        content=induction.draft,
        image_digests=images,
    )
    version = InductionVersion(
        induction_id=induction.id,
        version=number,
        content=document,
        content_hash=induction_content.content_hash(document),
        published_at=utcnow(),
        published_by=principal.user_id,
    )
    session.add(version)
    induction.current_version = number
    await session.flush()
    await audit.record(
        session,
        action="induction.published",
        subject_type="induction",
        subject_id=induction.id,
        actor_id=principal.user_id,
        payload={"version": number, "content_hash": version.content_hash},
    )
    return version


async def retire(session: AsyncSession, principal: Principal, induction_id: uuid.UUID) -> Induction:
    """Stop requiring an induction; signatures already given stay verifiable."""
    induction = await get_induction(session, principal, induction_id, for_update=True)
    if induction.retired_at is None:
        induction.retired_at = utcnow()
        await session.flush()
        await audit.record(
            session,
            action="induction.retired",
            subject_type="induction",
            subject_id=induction.id,
            actor_id=principal.user_id,
            payload={},
        )
    return induction


def version_content(version: InductionVersion) -> InductionContent:
    return induction_content.as_content(version.content["content"])


# --- who takes an induction ------------------------------------------------------------------


async def taker_for(
    session: AsyncSession, principal: Principal, worker_id: uuid.UUID | None = None
) -> Taker:
    """The worker signing in with their own login, or — for a company administrator running an
    assisted session — one of the company's workers."""
    if worker_id is None:
        worker = await worker_for_user(session, principal.user_id)
        if worker is None or Role.CONTRACTOR_WORKER not in principal.roles:
            raise NotFound(N_("This login belongs to no worker."))
        return Taker(worker, principal.user_id)
    worker = await session.scalar(select(Worker).where(Worker.id == worker_id))
    if worker is None or Role.CONTRACTOR_ADMIN not in principal.roles:
        raise NotFound(N_("Worker not found."))
    viewer = await viewer_for(session, principal)
    if not viewer.can_edit(worker.contractor_id):
        raise NotFound(N_("Worker not found."))
    return Taker(worker, principal.user_id)


async def _contractor_of(session: AsyncSession, worker: Worker) -> Contractor:
    return (
        await session.execute(select(Contractor).where(Contractor.id == worker.contractor_id))
    ).scalar_one()


def _required_query(plant_id: uuid.UUID | None, work_types: Iterable[str] | None) -> Any:
    """Published, current inductions: of one plant or all, for everyone or the given types."""
    query = select(Induction).where(Induction.current_version > 0, Induction.retired_at.is_(None))
    if plant_id is not None:
        query = query.where(Induction.plant_id == plant_id)
    if work_types is not None:
        query = query.where(
            Induction.work_type.is_(None) | Induction.work_type.in_(list(work_types))
        )
    return query.order_by(Induction.plant_id, Induction.created_at)


@dataclass(frozen=True)
class Assignment:
    """An induction a worker is asked to take, and where they stand with it."""

    induction: Induction
    version: InductionVersion
    plant: Plant
    status: str
    valid_until: date | None
    attempts_left_today: int


async def assignments(session: AsyncSession, taker: Taker) -> list[Assignment]:
    """What the worker's phone lists: every plant's inductions for the company's work types."""
    contractor = await _contractor_of(session, taker.worker)
    inductions = list(
        (await session.execute(_required_query(None, contractor.work_types))).scalars()
    )
    plants = {plant.id: plant for plant in (await session.execute(select(Plant))).scalars()}
    standing = await _standing(session, [taker.worker.id], [i.id for i in inductions])
    versions = await _current_versions(session, inductions)
    today = plant_today()
    result = []
    for induction in inductions:
        version = versions[induction.id]
        used = await _attempts_on(session, taker.worker.id, induction.id, today)
        status, valid_until = standing.get((taker.worker.id, induction.id), ("pending", None))
        result.append(
            Assignment(
                induction,
                version,
                plants[induction.plant_id],
                status,
                valid_until,
                max(0, version_content(version).attempts_per_day - used),
            )
        )
    return result


async def _valid_until(
    session: AsyncSession, worker_ids: Sequence[uuid.UUID], induction_ids: Sequence[uuid.UUID]
) -> dict[tuple[uuid.UUID, uuid.UUID], date]:
    """The latest validity end per worker and induction they signed: what counts for them."""
    rows = await session.execute(
        select(
            InductionSignature.worker_id,
            InductionSignature.induction_id,
            func.max(InductionSignature.valid_until),
        )
        .where(
            InductionSignature.worker_id.in_(worker_ids),
            InductionSignature.induction_id.in_(induction_ids),
        )
        .group_by(InductionSignature.worker_id, InductionSignature.induction_id)
    )
    return {(worker_id, induction_id): day for worker_id, induction_id, day in rows}


async def _current_versions(
    session: AsyncSession, inductions: Sequence[Induction]
) -> dict[uuid.UUID, InductionVersion]:
    """The current version of each published induction, in one query."""
    if not inductions:
        return {}
    current = [(induction.id, induction.current_version) for induction in inductions]
    rows = await session.execute(
        select(InductionVersion).where(
            tuple_(InductionVersion.induction_id, InductionVersion.version).in_(current)
        )
    )
    return {version.induction_id: version for version in rows.scalars()}


async def _standing(
    session: AsyncSession, worker_ids: Sequence[uuid.UUID], induction_ids: Sequence[uuid.UUID]
) -> dict[tuple[uuid.UUID, uuid.UUID], tuple[str, date | None]]:
    """Per worker and induction: done, expiring, lapsed or failed, with the validity end; pairs
    with neither a signature nor an attempt are absent (pending)."""
    if not worker_ids or not induction_ids:
        return {}
    today = plant_today()
    latest = await _valid_until(session, worker_ids, induction_ids)
    standing: dict[tuple[uuid.UUID, uuid.UUID], tuple[str, date | None]] = {}
    for (worker_id, induction_id), valid_until in latest.items():
        if valid_until < today:
            status = "lapsed"
        elif valid_until <= today + timedelta(days=EXPIRING_WITHIN_DAYS):
            status = "expiring"
        else:
            status = "done"
        standing[(worker_id, induction_id)] = (status, valid_until)
    failed = (
        await session.execute(
            select(QuizAttempt.worker_id, QuizAttempt.induction_id)
            .where(
                QuizAttempt.worker_id.in_(worker_ids),
                QuizAttempt.induction_id.in_(induction_ids),
                QuizAttempt.passed.is_(False),
            )
            .distinct()
        )
    ).all()
    for worker_id, induction_id in failed:
        key = (worker_id, induction_id)
        if key not in standing or standing[key][0] == "lapsed":
            standing[key] = ("failed", standing.get(key, ("", None))[1])
    return standing


# --- the quiz --------------------------------------------------------------------------------


async def _attempts_on(
    session: AsyncSession, worker_id: uuid.UUID, induction_id: uuid.UUID, day: date
) -> int:
    return (
        await session.scalar(
            select(func.count())
            .select_from(QuizAttempt)
            .where(
                QuizAttempt.worker_id == worker_id,
                QuizAttempt.induction_id == induction_id,
                QuizAttempt.plant_day == day,
            )
        )
    ) or 0


def _ensure_may_train(worker: Worker, contractor: Contractor) -> None:
    if worker.state == ItemState.REJECTED.value or contractor.state in _EXCLUDED_CONTRACTORS:
        raise InvalidInput(
            "worker_id",
            "admissible",
            N_("This worker's company or record was refused admission; training is closed."),
        )


async def _published(
    session: AsyncSession, induction_id: uuid.UUID
) -> tuple[Induction, InductionVersion]:
    induction = await session.scalar(
        select(Induction).where(Induction.id == induction_id).with_for_update()
    )
    if induction is None or induction.retired_at is not None:
        raise NotFound(_INDUCTION_NOT_FOUND)
    version = await current_version(session, induction)
    if version is None:
        raise NotFound(_INDUCTION_NOT_FOUND)
    return induction, version


async def start_attempt(
    session: AsyncSession, taker: Taker, induction_id: uuid.UUID
) -> QuizAttempt:
    """Draw a paper for the worker. An open attempt on the current version is handed back
    instead (a reloaded page must not burn an attempt); otherwise the day's limit applies, on
    the plant's calendar."""
    induction, version = await _published(session, induction_id)
    contractor = await _contractor_of(session, taker.worker)
    _ensure_may_train(taker.worker, contractor)
    if induction.work_type is not None and induction.work_type not in contractor.work_types:
        raise NotFound(_INDUCTION_NOT_FOUND)
    open_attempt = await session.scalar(
        select(QuizAttempt).where(
            QuizAttempt.worker_id == taker.worker.id,
            QuizAttempt.version_id == version.id,
            QuizAttempt.submitted_at.is_(None),
        )
    )
    if open_attempt is not None:
        return open_attempt
    content = version_content(version)
    today = plant_today()
    if (
        await _attempts_on(session, taker.worker.id, induction.id, today)
        >= content.attempts_per_day
    ):
        raise InvalidInput(
            "induction_id",
            "attempts_per_day",
            N_("No attempts left today: %(limit)s per day. Try again tomorrow."),
            limit=content.attempts_per_day,
        )
    attempt = QuizAttempt(
        version_id=version.id,
        induction_id=induction.id,
        worker_id=taker.worker.id,
        operated_by=taker.operated_by,
        plant_day=today,
        started_at=utcnow(),
    )
    attempt.id = uuid.uuid4()
    attempt.drawn = quiz.draw(content.questions, content.draw_count, attempt.id)
    session.add(attempt)
    await session.flush()
    return attempt


async def get_attempt(session: AsyncSession, taker: Taker, attempt_id: uuid.UUID) -> QuizAttempt:
    attempt = await session.scalar(
        select(QuizAttempt).where(
            QuizAttempt.id == attempt_id, QuizAttempt.worker_id == taker.worker.id
        )
    )
    if attempt is None:
        raise NotFound(_ATTEMPT_NOT_FOUND)
    return attempt


async def attempt_version(session: AsyncSession, attempt: QuizAttempt) -> InductionVersion:
    return (
        await session.execute(
            select(InductionVersion).where(InductionVersion.id == attempt.version_id)
        )
    ).scalar_one()


async def submit_answers(
    session: AsyncSession, taker: Taker, attempt_id: uuid.UUID, data: AnswersIn
) -> QuizAttempt:
    """Score the attempt once: the score, pass or fail, and which drawn questions were wrong."""
    attempt = await get_attempt(session, taker, attempt_id)
    await session.refresh(attempt, with_for_update=True)
    if attempt.submitted_at is not None:
        raise Conflict("attempt", "submitted_once", N_("This attempt was already submitted."))
    version = await attempt_version(session, attempt)
    content = version_content(version)
    result = quiz.score(content.questions, attempt.drawn, data.answers, content.pass_mark)
    attempt.answers = {key: sorted(set(value)) for key, value in data.answers.items()}
    attempt.submitted_at = utcnow()
    attempt.score = result.percent
    attempt.passed = result.passed
    attempt.wrong = result.wrong
    await session.flush()
    await audit.record(
        session,
        action="induction.attempted",
        subject_type="quiz_attempt",
        subject_id=attempt.id,
        actor_id=taker.operated_by,
        payload={
            "worker_id": taker.worker.id,
            "induction_id": attempt.induction_id,
            "version": version.version,
            "score": result.percent,
            "passed": result.passed,
            "assisted": taker.assisted,
        },
    )
    return attempt


# --- signing ---------------------------------------------------------------------------------


async def sign_induction(
    session: AsyncSession,
    storage: ObjectStorage,
    taker: Taker,
    attempt_id: uuid.UUID,
    data: SignatureIn,
    device: SigningDevice,
) -> InductionSignature:
    """Sign the version the worker just passed: once per passing attempt, only while that
    version is the current one."""
    attempt = await get_attempt(session, taker, attempt_id)
    await session.refresh(attempt, with_for_update=True)
    if not attempt.passed:
        raise InvalidInput(
            "attempt", "passed", N_("Only a passed quiz can be signed; take the quiz again.")
        )
    if await session.scalar(
        select(InductionSignature.id).where(InductionSignature.attempt_id == attempt.id)
    ):
        raise Conflict("attempt", "signed_once", N_("This attempt was already signed."))
    induction, current = await _published(session, attempt.induction_id)
    if current.id != attempt.version_id:
        raise InvalidInput(
            "attempt",
            "current_version",
            N_("A newer version of this induction was published; please take it again."),
        )
    content = version_content(current)
    evidence = await signature_evidence(
        session,
        storage,
        data=data,
        expected_name=taker.worker.name,
        content_hash=current.content_hash,
        signer_user_id=taker.operated_by,
        device=device,
    )
    signed_on = plant_date(evidence["signed_at"])
    signature = InductionSignature(
        tenant_id=current.tenant_id,
        version_id=current.id,
        induction_id=induction.id,
        worker_id=taker.worker.id,
        attempt_id=attempt.id,
        assisted_by=taker.operated_by if taker.assisted else None,
        valid_until=signed_on + timedelta(days=content.validity_days - 1),
        consent=gettext(CONSENT_SENTENCE),
        **evidence,
    )
    signature.id = uuid.uuid4()
    await seal(
        session,
        signature,
        induction_record_document(signature),
        action="induction.signed",
        subject_type="induction_signature",
        payload={
            "worker_id": taker.worker.id,
            "induction_id": induction.id,
            "version": current.version,
            "content_hash": current.content_hash,
            "attempt_id": attempt.id,
            "score": attempt.score,
            "image_sha256": signature.image_sha256,
            "valid_until": signature.valid_until.isoformat(),
        },
    )
    return signature


async def get_signature(
    session: AsyncSession, principal: Principal, signature_id: uuid.UUID
) -> InductionSignature:
    """A signature as its worker, their company's administrators, or the plant's host users see
    it."""
    signature = await session.scalar(
        select(InductionSignature).where(InductionSignature.id == signature_id)
    )
    if signature is None:
        raise NotFound(N_("Signature not found."))
    induction = (
        await session.execute(select(Induction).where(Induction.id == signature.induction_id))
    ).scalar_one()
    host_roles = [role for role in Role if role.is_host]
    if has_role_for_plant(principal, host_roles, induction.plant_id):
        return signature
    worker = (
        await session.execute(select(Worker).where(Worker.id == signature.worker_id))
    ).scalar_one()
    viewer = await viewer_for(session, principal)
    own = worker.user_id == principal.user_id
    if own or (Role.CONTRACTOR_ADMIN in principal.roles and viewer.can_edit(worker.contractor_id)):
        return signature
    raise NotFound(N_("Signature not found."))


# --- what EHS sees, and what other packages ask ----------------------------------------------


@dataclass(frozen=True)
class BoardRow:
    worker: Worker
    contractor: Contractor
    induction: Induction
    title: str
    status: str
    valid_until: date | None


async def induction_board(
    session: AsyncSession, principal: Principal, plant_id: uuid.UUID, *, status: str | None = None
) -> list[BoardRow]:
    """Every admissible worker against every current induction of the plant their company's
    work types call for: done, expiring (within 30 days), lapsed, failed or pending."""
    plant_exists = await session.scalar(select(Plant.id).where(Plant.id == plant_id))
    if plant_exists is None or not has_role_for_plant(
        principal, [role for role in Role if role.is_host], plant_id
    ):
        raise NotFound(N_("Plant not found."))
    inductions = list((await session.execute(_required_query(plant_id, None))).scalars())
    rows = (
        await session.execute(
            select(Worker, Contractor)
            .join(Contractor, Contractor.id == Worker.contractor_id)
            .where(
                Worker.state != ItemState.REJECTED.value,
                Contractor.state.not_in(_EXCLUDED_CONTRACTORS),
            )
            .order_by(Contractor.name, Worker.name)
        )
    ).all()
    standing = await _standing(session, [w.id for w, _ in rows], [i.id for i in inductions])
    versions = await _current_versions(session, inductions)
    board = []
    for induction in inductions:
        title = version_content(versions[induction.id]).title
        for worker, contractor in rows:
            if induction.work_type is not None and induction.work_type not in contractor.work_types:
                continue
            state, valid_until = standing.get((worker.id, induction.id), ("pending", None))
            if status is None or status == state:
                board.append(BoardRow(worker, contractor, induction, title, state, valid_until))
    return board


@dataclass(frozen=True)
class InductionGap:
    """Why a worker is not inducted for a window: the induction missing or lapsing in it."""

    worker_id: uuid.UUID
    induction_id: uuid.UUID
    title: str
    valid_until: date | None


async def induction_gaps(
    session: AsyncSession,
    worker_ids: Sequence[uuid.UUID],
    plant_id: uuid.UUID,
    first_day: date,
    last_day: date,
    work_type: str | None = None,
) -> list[InductionGap]:
    """For the permit gates: each required induction of the plant (for everyone, and for the
    work type when given) that a worker has not signed, or whose validity ends before
    ``last_day``. No gaps means the workers are inducted for every day of the window."""
    if last_day < first_day:
        raise ValueError("the window ends before it starts")
    inductions = list(
        (
            await session.execute(_required_query(plant_id, [work_type] if work_type else []))
        ).scalars()
    )
    if not inductions or not worker_ids:
        return []
    until = await _valid_until(session, worker_ids, [i.id for i in inductions])
    versions = await _current_versions(session, inductions)
    gaps = []
    for worker_id in worker_ids:
        for induction in inductions:
            valid_until = until.get((worker_id, induction.id))
            if valid_until is None or valid_until < last_day:
                title = version_content(versions[induction.id]).title
                gaps.append(InductionGap(worker_id, induction.id, title, valid_until))
    return gaps


async def is_inducted(
    session: AsyncSession,
    worker_id: uuid.UUID,
    plant_id: uuid.UUID,
    first_day: date,
    last_day: date,
    work_type: str | None = None,
) -> bool:
    return not await induction_gaps(session, [worker_id], plant_id, first_day, last_day, work_type)
