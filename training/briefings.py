"""Job briefings (安全交底, GB 30871 §4.4): before a permit's work starts, a host user briefs
the crew on the permit's hazards, control measures and emergency measures, signs as the briefer,
and every crew member signs as briefed — on their own phone, or one after another on the
briefer's tablet.

A briefing belongs to one permit and one content: the permit hands its facts down as a
:class:`~training.schemas.BriefingSource` (permits sit above training). Changed content makes a
new briefing that everyone signs again; a crew change asks only the newcomers to sign.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infra import audit
from infra.audit import canonical_json
from infra.db import utcnow
from infra.errors import Conflict, InvalidInput, NotFound
from infra.i18n import N_, gettext
from infra.storage import ObjectStorage
from onboarding.access import viewer_for
from onboarding.models import Worker
from onboarding.services import worker_for_user
from tenants.access import Principal, has_role_for_plant
from tenants.models import Role
from training.evidence import SigningDevice, briefing_record_document, seal, signature_evidence
from training.models import Briefing, BriefingCrewMember, BriefingSignature
from training.schemas import BriefingSource, SignatureIn
from training.signature import BRIEFING_CONSENT_SENTENCE

BRIEFER_ROLES = frozenset(
    {Role.UNIT_SUPERVISOR, Role.EHS_OFFICER, Role.PLANT_MANAGER, Role.GUARDIAN}
)
_BRIEFING_NOT_FOUND = N_("Briefing not found.")
BRIEFING_SECTIONS = (
    ("hazards", N_("Hazards")),
    ("control_measures", N_("Control measures")),
    ("emergency_measures", N_("Emergency measures")),
)


def briefing_document(source: BriefingSource) -> dict[str, Any]:
    """The briefing's content, generated from the permit: what every crew member signs."""
    return {
        "permit_id": str(source.permit_id),
        "permit_number": source.permit_number,
        "work_type": source.work_type.value,
        "location": source.location,
        "work_content": source.work_content,
        "hazards": list(source.hazards),
        "control_measures": list(source.control_measures),
        "emergency_measures": list(source.emergency_measures),
    }


def _ensure_briefer(principal: Principal, plant_id: uuid.UUID) -> None:
    if not has_role_for_plant(principal, BRIEFER_ROLES, plant_id):
        raise NotFound(_BRIEFING_NOT_FOUND)


async def live_briefing(session: AsyncSession, permit_id: uuid.UUID) -> Briefing | None:
    return await session.scalar(
        select(Briefing).where(Briefing.permit_id == permit_id, Briefing.superseded_at.is_(None))
    )


async def prepare_briefing(
    session: AsyncSession, principal: Principal, source: BriefingSource
) -> Briefing:
    """The permit's briefing for its current content and crew. The same content gives back the
    same briefing (with the crew brought up to date); changed content supersedes the old one,
    whose signatures no longer count, since the crew signed something else — unless the content
    changes back, which reinstates the briefing of that content."""
    _ensure_briefer(principal, source.plant_id)
    if not (source.hazards and source.control_measures and source.emergency_measures):
        raise InvalidInput(
            "permit",
            "briefing_content",
            N_("A briefing needs the permit's hazards, control measures and emergency measures."),
        )
    document = briefing_document(source)
    digest = hashlib.sha256(canonical_json(document)).hexdigest()
    briefing = await live_briefing(session, source.permit_id)
    if briefing is not None and briefing.content_hash != digest:
        briefing.superseded_at = utcnow()
        await session.flush()
        await audit.record(
            session,
            action="briefing.superseded",
            subject_type="briefing",
            subject_id=briefing.id,
            actor_id=principal.user_id,
            payload={"permit_id": source.permit_id},
        )
        briefing = None
    if briefing is None:
        # A permit changed back to content it had before finds that content's briefing again:
        # there is one per permit and content, and what was signed on it is exactly this.
        briefing = await session.scalar(
            select(Briefing)
            .where(Briefing.permit_id == source.permit_id, Briefing.content_hash == digest)
            .with_for_update()
        )
        if briefing is not None:
            briefing.superseded_at = None
            await session.flush()
            await audit.record(
                session,
                action="briefing.reinstated",
                subject_type="briefing",
                subject_id=briefing.id,
                actor_id=principal.user_id,
                payload={"permit_id": source.permit_id, "content_hash": digest},
            )
    if briefing is None:
        briefing = Briefing(
            permit_id=source.permit_id,
            permit_number=source.permit_number,
            plant_id=source.plant_id,
            work_type=source.work_type.value,
            content=document,
            content_hash=digest,
            briefer_id=principal.user_id,
        )
        session.add(briefing)
        await session.flush()
        await audit.record(
            session,
            action="briefing.prepared",
            subject_type="briefing",
            subject_id=briefing.id,
            actor_id=principal.user_id,
            payload={"permit_id": source.permit_id, "content_hash": digest},
        )
    await set_crew(session, source.permit_id, source.crew)
    return briefing


async def set_crew(
    session: AsyncSession, permit_id: uuid.UUID, crew: Iterable[uuid.UUID]
) -> list[uuid.UUID]:
    """Bring the live briefing's crew to the permit's: a new member must sign before work
    starts; one who left no longer holds the briefing up. Returns who joined."""
    briefing = await live_briefing(session, permit_id)
    if briefing is None:
        raise NotFound(_BRIEFING_NOT_FOUND)
    wanted = list(dict.fromkeys(crew))
    members = {
        member.worker_id: member
        for member in (
            await session.execute(
                select(BriefingCrewMember).where(BriefingCrewMember.briefing_id == briefing.id)
            )
        ).scalars()
    }
    known = set((await session.execute(select(Worker.id).where(Worker.id.in_(wanted)))).scalars())
    joined = []
    now = utcnow()
    for worker_id in wanted:
        if worker_id not in known:
            raise InvalidInput("crew", "exists", N_("A crew member is not a registered worker."))
        member = members.get(worker_id)
        if member is None:
            session.add(
                BriefingCrewMember(briefing_id=briefing.id, worker_id=worker_id, added_at=now)
            )
            joined.append(worker_id)
        elif member.removed_at is not None:
            member.removed_at = None
            joined.append(worker_id)
    for worker_id, member in members.items():
        if worker_id not in wanted and member.removed_at is None:
            member.removed_at = now
    await session.flush()
    if joined or any(m.removed_at == now for m in members.values()):
        await audit.record(
            session,
            action="briefing.crew_changed",
            subject_type="briefing",
            subject_id=briefing.id,
            actor_id=None,
            payload={"crew": wanted, "joined": joined},
        )
    return joined


async def get_briefing(session: AsyncSession, briefing_id: uuid.UUID) -> Briefing:
    briefing = await session.scalar(select(Briefing).where(Briefing.id == briefing_id))
    if briefing is None:
        raise NotFound(_BRIEFING_NOT_FOUND)
    return briefing


async def visible_briefing(
    session: AsyncSession, principal: Principal, briefing_id: uuid.UUID
) -> Briefing:
    """A briefing as the plant's host users, its crew members, and the administrators of the
    crew's companies see it; anyone else is told it does not exist."""
    briefing = await get_briefing(session, briefing_id)
    if has_role_for_plant(principal, [role for role in Role if role.is_host], briefing.plant_id):
        return briefing
    crew = select(BriefingCrewMember.worker_id).where(BriefingCrewMember.briefing_id == briefing.id)
    own_login = await session.scalar(
        select(Worker.id).where(Worker.id.in_(crew), Worker.user_id == principal.user_id)
    )
    if own_login is not None:
        return briefing
    if Role.CONTRACTOR_ADMIN in principal.roles:
        viewer = await viewer_for(session, principal)
        company_crew = await session.scalar(
            select(Worker.id).where(
                Worker.id.in_(crew), Worker.contractor_id == viewer.contractor_id
            )
        )
        if company_crew is not None:
            return briefing
    raise NotFound(_BRIEFING_NOT_FOUND)


async def _sign_briefing(
    session: AsyncSession,
    storage: ObjectStorage,
    briefing: Briefing,
    *,
    worker: Worker | None,
    expected_name: str,
    signer_user_id: uuid.UUID,
    on_device: str,
    data: SignatureIn,
    device: SigningDevice,
) -> BriefingSignature:
    await session.refresh(briefing, with_for_update=True)
    if briefing.superseded_at is not None:
        raise InvalidInput(
            "briefing",
            "current_content",
            N_("The permit changed since this briefing; sign the new briefing."),
        )
    if worker is not None and not await session.scalar(
        select(BriefingSignature.id).where(
            BriefingSignature.briefing_id == briefing.id, BriefingSignature.worker_id.is_(None)
        )
    ):
        # The crew sign that they were briefed (接受交底); before the briefer has signed that the
        # briefing was given (安全交底), there is nothing to acknowledge.
        raise InvalidInput(
            "briefing",
            "briefer_first",
            N_("The briefer signs first, then the crew."),
        )
    existing = await session.scalar(
        select(BriefingSignature.id).where(
            BriefingSignature.briefing_id == briefing.id,
            BriefingSignature.worker_id == worker.id
            if worker
            else BriefingSignature.worker_id.is_(None),
        )
    )
    if existing is not None:
        raise Conflict("briefing", "signed_once", N_("This briefing was already signed by them."))
    evidence = await signature_evidence(
        session,
        storage,
        data=data,
        expected_name=expected_name,
        content_hash=briefing.content_hash,
        signer_user_id=signer_user_id,
        device=device,
    )
    signature = BriefingSignature(
        tenant_id=briefing.tenant_id,
        briefing_id=briefing.id,
        worker_id=worker.id if worker else None,
        device=on_device,
        consent=gettext(BRIEFING_CONSENT_SENTENCE),
        **evidence,
    )
    signature.id = uuid.uuid4()
    await seal(
        session,
        signature,
        briefing_record_document(signature),
        action="briefing.signed",
        subject_type="briefing_signature",
        payload={
            "briefing_id": briefing.id,
            "permit_id": briefing.permit_id,
            "worker_id": signature.worker_id,
            "role": "crew" if worker else "briefer",
            "content_hash": briefing.content_hash,
            "device": on_device,
        },
    )
    return signature


async def sign_as_briefer(
    session: AsyncSession,
    storage: ObjectStorage,
    principal: Principal,
    briefing_id: uuid.UUID,
    data: SignatureIn,
    device: SigningDevice,
) -> BriefingSignature:
    """The briefer's own signature (安全交底人): the briefing was given."""
    briefing = await get_briefing(session, briefing_id)
    _ensure_briefer(principal, briefing.plant_id)
    return await _sign_briefing(
        session,
        storage,
        briefing,
        worker=None,
        expected_name=principal.name,
        signer_user_id=principal.user_id,
        on_device="briefer_tablet",
        data=data,
        device=device,
    )


async def sign_as_crew(
    session: AsyncSession,
    storage: ObjectStorage,
    principal: Principal,
    briefing_id: uuid.UUID,
    worker_id: uuid.UUID | None,
    data: SignatureIn,
    device: SigningDevice,
) -> BriefingSignature:
    """A crew member's signature (接受交底人): on their own phone (no ``worker_id``: the login's
    worker), or on the briefer's tablet, one after another (the briefer names the worker)."""
    briefing = await get_briefing(session, briefing_id)
    if worker_id is None:
        worker = await worker_for_user(session, principal.user_id)
        on_device = "own_phone"
    else:
        _ensure_briefer(principal, briefing.plant_id)
        worker = await session.scalar(select(Worker).where(Worker.id == worker_id))
        on_device = "briefer_tablet"
    member = None
    if worker is not None:
        member = await session.scalar(
            select(BriefingCrewMember).where(
                BriefingCrewMember.briefing_id == briefing.id,
                BriefingCrewMember.worker_id == worker.id,
                BriefingCrewMember.removed_at.is_(None),
            )
        )
    if worker is None or member is None:
        raise NotFound(_BRIEFING_NOT_FOUND)
    return await _sign_briefing(
        session,
        storage,
        briefing,
        worker=worker,
        expected_name=worker.name,
        signer_user_id=principal.user_id,
        on_device=on_device,
        data=data,
        device=device,
    )


@dataclass(frozen=True)
class BriefingStatus:
    briefing: Briefing | None
    briefer_signed: bool
    crew: list[tuple[Worker, BriefingSignature | None]]

    @property
    def unsigned(self) -> list[Worker]:
        return [worker for worker, signature in self.crew if signature is None]

    @property
    def complete(self) -> bool:
        """Given by the briefer and signed by every current crew member."""
        return (
            self.briefing is not None
            and self.briefer_signed
            and bool(self.crew)
            and not self.unsigned
        )


async def briefing_status(session: AsyncSession, permit_id: uuid.UUID) -> BriefingStatus:
    """Where the permit's live briefing stands; what the start gate asks."""
    briefing = await live_briefing(session, permit_id)
    if briefing is None:
        return BriefingStatus(None, False, [])
    signatures = list(
        (
            await session.execute(
                select(BriefingSignature).where(BriefingSignature.briefing_id == briefing.id)
            )
        ).scalars()
    )
    by_worker = {s.worker_id: s for s in signatures}
    crew = (
        await session.execute(
            select(Worker)
            .join(BriefingCrewMember, BriefingCrewMember.worker_id == Worker.id)
            .where(
                BriefingCrewMember.briefing_id == briefing.id,
                BriefingCrewMember.removed_at.is_(None),
            )
            .order_by(BriefingCrewMember.added_at, Worker.name)
        )
    ).scalars()
    return BriefingStatus(
        briefing,
        None in by_worker,
        [(worker, by_worker.get(worker.id)) for worker in crew],
    )


async def briefing_complete(session: AsyncSession, permit_id: uuid.UUID) -> bool:
    return (await briefing_status(session, permit_id)).complete


async def briefings_to_sign(session: AsyncSession, principal: Principal) -> list[Briefing]:
    """The live briefings the worker behind this login is on the crew of and has not signed."""
    worker = await worker_for_user(session, principal.user_id)
    if worker is None:
        return []
    signed = select(BriefingSignature.briefing_id).where(BriefingSignature.worker_id == worker.id)
    return list(
        (
            await session.execute(
                select(Briefing)
                .join(BriefingCrewMember, BriefingCrewMember.briefing_id == Briefing.id)
                .where(
                    BriefingCrewMember.worker_id == worker.id,
                    BriefingCrewMember.removed_at.is_(None),
                    Briefing.superseded_at.is_(None),
                    Briefing.id.not_in(signed),
                )
                .order_by(Briefing.created_at)
            )
        ).scalars()
    )
