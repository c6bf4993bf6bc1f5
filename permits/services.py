"""Work permits (作业票): applying, the approval chain, starting and stopping work, completion
and acceptance, versions, gas analyses, and the lists everyone works from.

Every function runs in the caller's transaction and tenant scope; every change of state is
written to the ledger in that transaction. What the caller may not reach answers ``NotFound``.
Gates (:mod:`permits.gates`) run on submission, on each approval and before work (re)starts;
their failures come back together as :class:`~infra.errors.RulesBroken`, each naming its rule,
clause and the person or item concerned.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import Row, Select, Uuid, bindparam, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from geofence import tracking
from geofence.models import MemberRole, WatchState, Zone
from geofence.services import contains
from infra import audit
from infra.audit import canonical_json
from infra.db import UTCDateTime, dialect_insert, new_id, utcnow
from infra.errors import Conflict, FieldProblem, InvalidInput, NotFound, RulesBroken
from infra.i18n import N_, gettext, locale_scope
from infra.notify import Notification, NotificationKind
from infra.tasks import record_effect
from infra.tenancy import current_tenant_id, filtered_by_tenant, read_rows
from onboarding.catalogue import WorkType
from onboarding.models import ContractorMember, Worker
from permits import chains, gates, holidays
from permits.catalogue import NUMBER_PREFIX, checklist_codes, checklist_label
from permits.models import (
    ApprovalStep,
    CalendarDay,
    ChainPolicy,
    GasAnalysis,
    Permit,
    PermitCounter,
    PermitCrewMember,
)
from permits.rules import (
    ChainStep,
    GasReading,
    PermitChange,
    RecordKind,
    RuleViolation,
    StepKind,
    check_approval_on_site,
    check_change,
    check_monitoring,
    check_purge,
    gas_analysis_verdict,
    standard_chain,
)
from permits.schemas import ConfirmIn, DecisionIn, GasAnalysisIn, PermitIn
from permits.states import (
    EDITABLE_STATES,
    FINAL_STATES,
    PermitAction,
    PermitState,
    permit_transition,
)
from tenants.access import Principal, has_any_role, has_role_for_plant, visible_plant_ids
from tenants.models import Plant, Role, User
from tenants.notifications import enqueue_notification, tenant_url
from tenants.services import ensure_plant_in_service, hold_plant, role_holders
from training import briefings
from training.models import Briefing
from training.schemas import BriefingSource

PERMIT_NOT_FOUND = N_("Permit not found.")
PAGE_SIZE = 50
# A device clock a little ahead of the server's is normal; more is a typing error.
CLOCK_SKEW = timedelta(minutes=2)
SAMPLE_MAX_AGE = timedelta(hours=24)
SUPERVISOR_ROLES = (Role.EHS_OFFICER, Role.UNIT_SUPERVISOR, Role.PLANT_MANAGER)
ACCEPTOR_ROLES = (Role.EHS_OFFICER, Role.UNIT_SUPERVISOR)
HOST_ROLES = tuple(role for role in Role if role.is_host)


# --- who sees and acts -----------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """The signed-in user as the permit rules see them: their grants, and the company and worker
    behind a contractor login."""

    principal: Principal
    contractor_id: uuid.UUID | None
    worker_id: uuid.UUID | None

    @property
    def user_id(self) -> uuid.UUID:
        return self.principal.user_id

    def is_host_for(self, plant_id: uuid.UUID) -> bool:
        return has_role_for_plant(self.principal, HOST_ROLES, plant_id)

    def can_see(self, permit: Permit) -> bool:
        return self.is_host_for(permit.plant_id) or self.contractor_id == permit.contractor_id

    def applies_for(self, contractor_id: uuid.UUID) -> bool:
        return Role.CONTRACTOR_ADMIN in self.principal.roles and self.contractor_id == contractor_id


async def actor_for(session: AsyncSession, principal: Principal) -> Actor:
    """One round trip: every permit request starts here."""
    company = select(ContractorMember.contractor_id).where(
        ContractorMember.user_id == principal.user_id
    )
    worker = select(Worker.id).where(Worker.user_id == principal.user_id)
    contractor_id, worker_id = (
        await session.execute(
            select(company.limit(1).scalar_subquery(), worker.limit(1).scalar_subquery())
        )
    ).one()
    return Actor(principal, contractor_id, worker_id)


async def get_permit(
    session: AsyncSession, actor: Actor, permit_id: uuid.UUID, *, for_update: bool = False
) -> Permit:
    query = select(Permit).where(Permit.id == permit_id)
    permit = await session.scalar(query.with_for_update() if for_update else query)
    if permit is None or not actor.can_see(permit):
        raise NotFound(PERMIT_NOT_FOUND)
    return permit


# --- applying --------------------------------------------------------------------------------


def content_document(permit: Permit, crew: Sequence[PermitCrewMember]) -> dict[str, Any]:
    """What an approved permit's ``content_hash`` covers: everything the approvers approved."""
    return {
        "id": str(permit.id),
        "number": permit.number,
        "version": permit.version,
        "plant_id": str(permit.plant_id),
        "zone_id": str(permit.zone_id),
        "contractor_id": str(permit.contractor_id),
        "work_type": permit.work_type,
        "level": permit.level,
        "location": permit.location,
        "work_content": permit.work_content,
        # In UTC, as stored: a time still carrying the applicant's offset in memory must hash
        # as it will when read back.
        "planned_start": permit.planned_start.astimezone(UTC).isoformat(),
        "planned_end": permit.planned_end.astimezone(UTC).isoformat(),
        "work_leader_id": str(permit.work_leader_id),
        "guardian_worker_id": str(permit.guardian_worker_id or ""),
        "guardian_user_id": str(permit.guardian_user_id or ""),
        "crew": sorted([str(m.worker_id), m.duty or ""] for m in crew),
        "related_numbers": permit.related_numbers,
        "hazards": permit.hazards,
        "emergency_measures": permit.emergency_measures,
        "checklist": [{"code": i["code"], "applies": i["applies"]} for i in permit.checklist],
        "details": permit.details,
    }


def content_hash(permit: Permit, crew: Sequence[PermitCrewMember]) -> str:
    return hashlib.sha256(canonical_json(content_document(permit, crew))).hexdigest()


async def crew_of(session: AsyncSession, permit_id: uuid.UUID) -> list[PermitCrewMember]:
    return list(
        (
            await session.execute(
                select(PermitCrewMember)
                .where(PermitCrewMember.permit_id == permit_id)
                .order_by(PermitCrewMember.id)
            )
        ).scalars()
    )


def _work_type(data: PermitIn) -> WorkType:
    # The type is the details' msgspec tag, which lives on the struct's class, not the instance.
    return WorkType(type(data.details).__struct_config__.tag)


async def _check_application(
    session: AsyncSession, actor: Actor, data: PermitIn, now: datetime
) -> tuple[Plant, Zone, list[FieldProblem]]:
    """The checks that need no gate: the plant and zone exist, the people belong to the
    applying company, the checklist names the type's items, and the window makes sense."""
    work_type = _work_type(data)
    plant = await session.scalar(select(Plant).where(Plant.id == data.plant_id))
    if plant is None:
        raise InvalidInput("plant_id", "exists", N_("No such plant."))
    ensure_plant_in_service(plant)
    zone = await session.scalar(
        select(Zone).where(Zone.id == data.zone_id, Zone.plant_id == plant.id)
    )
    if zone is None:
        raise InvalidInput("zone_id", "exists", N_("No such zone in this plant."))
    if zone.retired_at is not None:
        raise InvalidInput("zone_id", "retired", N_("The zone is retired; choose a current one."))
    problems: list[FieldProblem] = []
    for name in ("planned_start", "planned_end"):
        if getattr(data, name).tzinfo is None:
            raise InvalidInput(name, "timezone", N_("Give the time with its UTC offset."))
    if data.planned_end <= data.planned_start:
        raise InvalidInput(
            "planned_end", "window.reversed", N_("The permit must end after it starts.")
        )
    if data.planned_end <= now:
        raise InvalidInput(
            "planned_end", "window.elapsed", N_("The permit's window has already ended.")
        )
    named = {member.worker_id for member in data.crew} | {data.work_leader_id}
    if data.guardian_worker_id:
        named.add(data.guardian_worker_id)
    details = msgspec.to_builtins(data.details)
    for key in ("operator_id", "signaller_id"):
        if key in details:
            named.add(uuid.UUID(details[key]))
    named.update(uuid.UUID(rigger) for rigger in details.get("rigger_ids", []))
    own = set(
        (
            await session.execute(
                select(Worker.id).where(
                    Worker.id.in_(named), Worker.contractor_id == actor.contractor_id
                )
            )
        ).scalars()
    )
    for worker_id in sorted(named - own, key=str):
        problems.append(
            FieldProblem(
                "crew",
                "crew.same_company",
                N_("Everyone named on the permit must be a worker of the applying company."),
                subject=str(worker_id),
            )
        )
    crew_ids = {member.worker_id for member in data.crew}
    for key in ("operator_id", "signaller_id"):
        if key in details and uuid.UUID(details[key]) not in crew_ids:
            problems.append(
                FieldProblem(
                    f"details.{key}", "crew.listed", N_("Name this person in the crew too.")
                )
            )
    if (data.guardian_worker_id is None) == (data.guardian_user_id is None):
        problems.append(
            FieldProblem(
                "guardian",
                "guardian.missing",
                N_("Name exactly one guardian: a worker or a host user."),
                clause="§4.10",
            )
        )
    known = set(checklist_codes(work_type))
    for item in data.checklist:
        if item.code not in known:
            problems.append(
                FieldProblem(
                    f"checklist.{item.code}",
                    "checklist.known",
                    N_("Not a control measure of this kind of permit."),
                )
            )
    return plant, zone, problems


async def _apply(
    session: AsyncSession, actor: Actor, permit: Permit, data: PermitIn, now: datetime
) -> None:
    plant, _zone, problems = await _check_application(session, actor, data, now)
    work_type = _work_type(data)
    details = msgspec.to_builtins(data.details)
    details.pop("work_type", None)
    grading = gates.grade(
        work_type,
        details,
        data.planned_start,
        data.planned_end,
        timezone=plant.timezone,
        calendar=await gates.tenant_calendar(session),
    )
    problems += grading.problems
    if problems:
        raise RulesBroken(N_("The application breaks the rules below."), problems)
    permit.plant_id = plant.id
    permit.zone_id = data.zone_id
    permit.work_type = work_type.value
    permit.level = grading.level
    permit.requested_level = grading.requested_level
    permit.level_reasons = grading.reasons
    permit.location = data.location
    permit.work_content = data.work_content
    permit.planned_start = data.planned_start
    permit.planned_end = data.planned_end
    permit.work_leader_id = data.work_leader_id
    permit.guardian_worker_id = data.guardian_worker_id
    permit.guardian_user_id = data.guardian_user_id
    permit.related_numbers = list(data.related_numbers)
    permit.hazards = list(data.hazards)
    permit.emergency_measures = list(data.emergency_measures)
    permit.checklist = [
        {"code": item.code, "applies": item.applies, "confirmed_by": None, "confirmed_at": None}
        for item in data.checklist
    ]
    permit.details = details
    session.add(permit)
    await session.flush()
    await ensure_purgeable(session, permit, now=now)
    for member in await crew_of(session, permit.id):
        await session.delete(member)
    await session.flush()
    session.add_all(
        PermitCrewMember(permit_id=permit.id, worker_id=member.worker_id, duty=member.duty)
        for member in data.crew
    )
    await session.flush()


async def create_permit(
    session: AsyncSession, actor: Actor, data: PermitIn, *, now: datetime | None = None
) -> Permit:
    """A draft application by the company's administrator."""
    if actor.contractor_id is None or not actor.applies_for(actor.contractor_id):
        raise NotFound(N_("Only a contractor's administrator applies for permits."))
    permit = Permit(
        id=new_id(),
        contractor_id=actor.contractor_id,
        applicant_id=actor.user_id,
        state=PermitState.DRAFT.value,
    )
    await _apply(session, actor, permit, data, now or utcnow())
    await _ledger(session, actor, permit, "permit.drafted", {"work_type": permit.work_type})
    return permit


async def update_permit(
    session: AsyncSession,
    actor: Actor,
    permit_id: uuid.UUID,
    data: PermitIn,
    *,
    now: datetime | None = None,
) -> Permit:
    now = now or utcnow()
    permit = await get_permit(session, actor, permit_id, for_update=True)
    if not actor.applies_for(permit.contractor_id):
        raise NotFound(PERMIT_NOT_FOUND)
    frozen = permit.state not in EDITABLE_STATES
    violations = check_change(
        await _changes(session, permit, data, now) if frozen else (), frozen=frozen
    )
    if violations:
        # A state the permit is in, not a field the applicant can put right: hence a conflict.
        refused = Conflict("state", violations[0].code, violations[0].message)
        refused.problems = [gates.from_violation(v, "state") for v in violations]
        raise refused
    await _apply(session, actor, permit, data, now)
    await _ledger(session, actor, permit, "permit.edited", {})
    return permit


async def _changes(
    session: AsyncSession, permit: Permit, data: PermitIn, now: datetime
) -> set[PermitChange]:
    """What an edit would change, in the terms of §4.16: the place; the scope (a longer window
    or more people); anything else the approvers approved; and a window already over."""
    changes: set[PermitChange] = set()
    if data.zone_id != permit.zone_id or data.location != permit.location:
        changes.add(PermitChange.LOCATION)
    crew = {member.worker_id: member.duty for member in await crew_of(session, permit.id)}
    wanted = {member.worker_id: member.duty for member in data.crew}
    if (
        data.planned_start < permit.planned_start
        or data.planned_end > permit.planned_end
        or not wanted.keys() <= crew.keys()
    ):
        changes.add(PermitChange.SCOPE)
    details = msgspec.to_builtins(data.details)
    details.pop("work_type", None)
    if (
        _work_type(data).value != permit.work_type
        or data.work_content != permit.work_content
        or (data.planned_start, data.planned_end) != (permit.planned_start, permit.planned_end)
        or wanted != crew
        or (data.work_leader_id, data.guardian_worker_id, data.guardian_user_id)
        != (permit.work_leader_id, permit.guardian_worker_id, permit.guardian_user_id)
        or list(data.related_numbers) != permit.related_numbers
        or list(data.hazards) != permit.hazards
        or list(data.emergency_measures) != permit.emergency_measures
        or {item.code: item.applies for item in data.checklist}
        != {item["code"]: item["applies"] for item in permit.checklist}
        or details != permit.details
    ):
        changes.add(PermitChange.CONTENT)
    if permit.planned_end <= now:
        changes.add(PermitChange.VALIDITY_LAPSED)
    return changes


async def _ledger(
    session: AsyncSession,
    actor: Actor | None,
    permit: Permit,
    action: str,
    payload: dict[str, Any],
) -> None:
    await audit.record(
        session,
        action=action,
        subject_type="permit",
        subject_id=permit.id,
        actor_id=actor.user_id if actor else None,
        payload={"state": permit.state, "number": permit.number, **payload},
    )


def _conflict(field_name: str, rule: str, message: str, *, clause: str) -> Conflict:
    # Conflict's keywords are message parameters; the clause belongs on the problem itself.
    error = Conflict(field_name, rule, message)
    error.problems[0].clause = clause
    return error


def _refuse(result: gates.GateResult) -> None:
    if result.problems:
        raise RulesBroken(N_("The permit does not pass its gates."), result.problems)


def _flags(result: gates.GateResult) -> list[dict[str, Any]]:
    return [
        {"rule": f.rule, "clause": f.clause, "subject": f.subject, "params": f.params}
        for f in result.flags
    ]


async def _move(
    session: AsyncSession,
    actor: Actor | None,
    permit: Permit,
    action: PermitAction,
    now: datetime,
    payload: dict[str, Any] | None = None,
) -> None:
    before = permit.state
    permit.state = permit_transition(permit.state, action).value
    permit.state_changed_at = now
    await session.flush()
    await _ledger(
        session, actor, permit, f"permit.{action.value}", {"from": before, **(payload or {})}
    )
    await session.run_sync(lambda sync_session: supervise(sync_session, permit, now))


_WATCH_STATES = {
    PermitState.ACTIVE.value: WatchState.ACTIVE,
    PermitState.SUSPENDED.value: WatchState.SUSPENDED,
}


def supervise(session: Session, permit: Permit, now: datetime) -> None:
    """Tell geofence whom to watch in which zone while the work runs: the crew and the work
    leader, and the guardian, each by the login their phone sends positions with. From the start
    on, every change of the permit reaches the watch; a finished permit closes it."""
    if permit.started_at is None:
        return
    crew_ids = set(
        session.scalars(
            select(PermitCrewMember.worker_id).where(PermitCrewMember.permit_id == permit.id)
        )
    )
    crew_ids.add(permit.work_leader_id)
    worker_ids = crew_ids | ({permit.guardian_worker_id} if permit.guardian_worker_id else set())
    workers = {
        worker.id: worker
        for worker in session.scalars(select(Worker).where(Worker.id.in_(worker_ids)))
    }
    people = [
        tracking.Person(worker.user_id, worker.id, worker.name, MemberRole.CREW)
        for worker_id in sorted(crew_ids)
        if (worker := workers.get(worker_id)) is not None and worker.user_id is not None
    ]
    guardian = workers.get(permit.guardian_worker_id) if permit.guardian_worker_id else None
    if guardian is not None and guardian.user_id is not None:
        people.append(
            tracking.Person(guardian.user_id, guardian.id, guardian.name, MemberRole.GUARDIAN)
        )
    elif permit.guardian_user_id is not None:
        name = session.scalar(select(User.name).where(User.id == permit.guardian_user_id))
        people.append(
            tracking.Person(permit.guardian_user_id, None, name or "", MemberRole.GUARDIAN)
        )
    tracking.sync_watch(
        session,
        tracking.WatchSpec(
            id=permit.id,
            plant_id=permit.plant_id,
            zone_id=permit.zone_id,
            label=permit.number or "",
            starts_at=permit.planned_start,
            ends_at=permit.planned_end,
            state=_WATCH_STATES.get(permit.state, WatchState.CLOSED),
            people=people,
        ),
        now,
    )


async def submit(
    session: AsyncSession, actor: Actor, permit_id: uuid.UUID, *, now: datetime | None = None
) -> Permit:
    """Run the submission gates and start the approval chain."""
    now = now or utcnow()
    permit = await get_permit(session, actor, permit_id, for_update=True)
    if not actor.applies_for(permit.contractor_id):
        raise NotFound(PERMIT_NOT_FOUND)
    permit_transition(permit.state, PermitAction.SUBMIT)
    await hold_plant(session, permit.plant_id)
    result = await gates.check(session, permit, gates.Stage.SUBMIT, now=now)
    _refuse(result)
    permit.submitted_at = now
    await _move(session, actor, permit, PermitAction.SUBMIT, now, {"flags": _flags(result)})
    await session.run_sync(lambda sync: chains.create_steps(sync, permit, now))
    return permit


async def current_step(session: AsyncSession, permit: Permit) -> ApprovalStep | None:
    return await session.scalar(
        select(ApprovalStep)
        .where(ApprovalStep.permit_id == permit.id, ApprovalStep.status == "pending")
        .order_by(ApprovalStep.position)
    )


async def steps_of(session: AsyncSession, permit_id: uuid.UUID) -> list[ApprovalStep]:
    return list(
        (
            await session.execute(
                select(ApprovalStep)
                .where(ApprovalStep.permit_id == permit_id)
                .order_by(ApprovalStep.position)
            )
        ).scalars()
    )


async def decide(
    session: AsyncSession,
    actor: Actor,
    permit_id: uuid.UUID,
    data: DecisionIn,
    *,
    now: datetime | None = None,
) -> Permit:
    """Decide the pending step. The permit row is locked first, so two approvers pressing at
    once decide it once: the second finds the step already decided. An approval records where
    the approver stood; one away from the work zone is flagged (§4.11a), not refused."""
    now = now or utcnow()
    query = select(Permit).where(Permit.id == permit_id).with_for_update()
    permit = await session.scalar(query)
    if permit is None:
        raise NotFound(PERMIT_NOT_FOUND)
    step = await current_step(session, permit)
    if data.step is not None and (step is None or step.position != data.step):
        # The step the approver saw was decided meanwhile (a double press, or a colleague):
        # answer as for that step, never decide the one that followed it.
        seen = await session.scalar(
            select(ApprovalStep).where(
                ApprovalStep.permit_id == permit.id, ApprovalStep.position == data.step
            )
        )
        if seen is None or not await session.run_sync(
            lambda sync: chains.may_decide(sync, permit, seen, actor.user_id)
        ):
            raise NotFound(PERMIT_NOT_FOUND)
        step = None
    if step is None or permit.state not in (
        PermitState.SUBMITTED.value,
        PermitState.IN_APPROVAL.value,
    ):
        raise Conflict("step", "step.pending", N_("No approval step is waiting on this permit."))
    allowed = await session.run_sync(
        lambda sync: chains.may_decide(sync, permit, step, actor.user_id)
    )
    if not allowed:
        raise NotFound(PERMIT_NOT_FOUND)
    if data.decision != "approve" and not data.comment.strip():
        raise InvalidInput("comment", "required", N_("Say why the permit is rejected or returned."))
    zone = (await session.execute(select(Zone).where(Zone.id == permit.zone_id))).scalar_one()
    if data.position is not None:
        step.latitude = data.position.latitude
        step.longitude = data.position.longitude
        step.accuracy_m = data.position.accuracy_m
        step.on_site = contains(
            zone, data.position.latitude, data.position.longitude, data.position.accuracy_m
        )
    step.decided_by = actor.user_id
    step.decided_at = now
    step.comment = data.comment or None
    step.minutes = (now - (step.activated_at or now)).total_seconds() / 60
    payload = {
        "step": step.position,
        "role": step.role,
        "decision": data.decision,
        "on_site": step.on_site,
        "minutes": round(step.minutes, 1),
    }
    if data.decision == "approve":
        result = await gates.check(session, permit, gates.Stage.APPROVE, now=now)
        _refuse(result)
        step.status = "approved"
        # §4.11a: an approval away from the zone, or an approver's without a position to show
        # where it was given, is flagged in the ledger beside the gate's own flags, not refused.
        off_site = step.on_site is False or (
            step.kind == StepKind.APPROVE.value and step.on_site is None
        )
        payload["flags"] = _flags(result) + [
            {"rule": v.code, "clause": v.clause, "subject": v.subject, "params": dict(v.params)}
            for v in (check_approval_on_site(False) if off_site else [])
        ]
        await session.flush()
        following = await session.scalar(
            select(ApprovalStep)
            .where(ApprovalStep.permit_id == permit.id, ApprovalStep.status == "waiting")
            .order_by(ApprovalStep.position)
        )
        if following is not None:
            await _move(session, actor, permit, PermitAction.APPROVE_STEP, now, payload)
            await session.run_sync(lambda sync: chains.activate(sync, permit, following, now))
        else:
            await _approve(session, actor, permit, now, payload)
        return permit
    step.status = "rejected" if data.decision == "reject" else "returned"
    await session.flush()
    for waiting in await steps_of(session, permit.id):
        if waiting.status == "waiting":
            waiting.status = "cancelled"
    action = PermitAction.REJECT if data.decision == "reject" else PermitAction.RETURN
    if action is PermitAction.RETURN:
        permit.submitted_at = None
    await _move(session, actor, permit, action, now, {**payload, "comment": data.comment})
    if action is PermitAction.RETURN:
        await ensure_purgeable(session, permit, now=now)
        for old in await steps_of(session, permit.id):
            await session.delete(old)
        await session.flush()
    return permit


async def _next_number(session: AsyncSession, permit: Permit, plant: Plant, now: datetime) -> str:
    day = now.astimezone(ZoneInfo(plant.timezone)).date()
    await session.execute(
        dialect_insert(session, PermitCounter)
        .values(
            id=new_id(),
            tenant_id=permit.tenant_id,
            plant_id=plant.id,
            work_type=permit.work_type,
            day=day,
            last=0,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "plant_id", "work_type", "day"])
    )
    counter = (
        await session.execute(
            select(PermitCounter)
            .where(
                PermitCounter.plant_id == plant.id,
                PermitCounter.work_type == permit.work_type,
                PermitCounter.day == day,
            )
            .with_for_update()
        )
    ).scalar_one()
    counter.last += 1
    await session.flush()
    prefix = NUMBER_PREFIX[WorkType(permit.work_type)]
    return f"{plant.code}-{prefix}-{day:%Y%m%d}-{counter.last:04d}"


async def _approve(
    session: AsyncSession, actor: Actor, permit: Permit, now: datetime, payload: dict[str, Any]
) -> None:
    """The last step approved: the permit gets its number (a revision keeps its predecessor's)
    and its content is frozen; the version it replaces is superseded."""
    plant = (await session.execute(select(Plant).where(Plant.id == permit.plant_id))).scalar_one()
    if permit.number is None:
        permit.number = await _next_number(session, permit, plant, now)
    permit.approved_at = now
    permit.content_hash = content_hash(permit, await crew_of(session, permit.id))
    await _move(
        session,
        actor,
        permit,
        PermitAction.APPROVE_LAST,
        now,
        {**payload, "content_hash": permit.content_hash},
    )
    if permit.supersedes_id is not None:
        old = (
            await session.execute(
                select(Permit).where(Permit.id == permit.supersedes_id).with_for_update()
            )
        ).scalar_one()
        if old.state not in FINAL_STATES:
            await _move(session, actor, old, PermitAction.SUPERSEDE, now, {"by": permit.id})


async def revise(
    session: AsyncSession, actor: Actor, permit_id: uuid.UUID, *, now: datetime | None = None
) -> Permit:
    """A new draft version of an approved (or suspended) permit, for a change of content, crew,
    scope, place or time (§4.16); the approved one stays in force until the new one is."""
    now = now or utcnow()
    old = await get_permit(session, actor, permit_id, for_update=True)
    if not actor.applies_for(old.contractor_id):
        raise NotFound(PERMIT_NOT_FOUND)
    if old.state not in (PermitState.APPROVED.value, PermitState.SUSPENDED.value):
        raise _conflict(
            "state",
            "permit.revisable",
            N_("Only an approved or suspended permit is revised as a new version."),
            clause="§4.16",
        )
    pending = await session.scalar(
        select(Permit.id).where(
            Permit.supersedes_id == old.id, Permit.state.not_in(list(FINAL_STATES))
        )
    )
    if pending is not None:
        raise Conflict("permit", "revision.open", N_("A revision of this permit is already open."))
    copied = {
        column: getattr(old, column)
        for column in (
            "plant_id",
            "zone_id",
            "contractor_id",
            "work_type",
            "level",
            "requested_level",
            "level_reasons",
            "number",
            "location",
            "work_content",
            "planned_start",
            "planned_end",
            "work_leader_id",
            "guardian_worker_id",
            "guardian_user_id",
            "related_numbers",
            "hazards",
            "emergency_measures",
            "details",
        )
    }
    new = Permit(
        id=new_id(),
        **copied,
        version=old.version + 1,
        supersedes_id=old.id,
        applicant_id=actor.user_id,
        state=PermitState.DRAFT.value,
        checklist=[{**item, "confirmed_by": None, "confirmed_at": None} for item in old.checklist],
    )
    session.add(new)
    await session.flush()
    session.add_all(
        PermitCrewMember(permit_id=new.id, worker_id=m.worker_id, duty=m.duty)
        for m in await crew_of(session, old.id)
    )
    await session.flush()
    await _ledger(session, actor, new, "permit.revised", {"supersedes": old.id})
    return new


# --- on site ---------------------------------------------------------------------------------


def _ensure_supervises(actor: Actor, permit: Permit) -> None:
    if not has_role_for_plant(actor.principal, (*SUPERVISOR_ROLES, Role.GUARDIAN), permit.plant_id):
        raise NotFound(PERMIT_NOT_FOUND)


async def record_gas_analysis(
    session: AsyncSession,
    actor: Actor,
    permit_id: uuid.UUID,
    data: GasAnalysisIn,
    *,
    now: datetime | None = None,
) -> GasAnalysis:
    """Record a sample; pass or fail is decided from the readings (§5.3.2, §6.4)."""
    now = now or utcnow()
    permit = await get_permit(session, actor, permit_id)
    _ensure_supervises(actor, permit)
    if permit.state not in (
        PermitState.APPROVED.value,
        PermitState.ACTIVE.value,
        PermitState.SUSPENDED.value,
    ):
        raise Conflict(
            "state",
            "gas.state",
            N_("Gas is analysed for an approved permit, before or during work."),
        )
    if data.sampled_at.tzinfo is None:
        raise InvalidInput("sampled_at", "timezone", N_("Give the time with its UTC offset."))
    if data.sampled_at > now + CLOCK_SKEW or data.sampled_at < now - SAMPLE_MAX_AGE:
        raise InvalidInput(
            "sampled_at", "recent", N_("The sample time must be within the last 24 hours.")
        )
    facts = await gates.load_facts(session, permit)
    work_type = (
        WorkType.CONFINED_SPACE if facts.work_type is WorkType.EXCAVATION else facts.work_type
    )
    readings = [GasReading(r.gas, r.value, r.unit) for r in data.readings]
    violations = gas_analysis_verdict(
        readings,
        work_type,
        oxygen_rich=permit.details.get("oxygen_rich", False),
        oxygen_equipment=permit.details.get("oxygen_equipment", False),
    )
    impossible = [
        v for v in violations if v.code in ("gas.out_of_range", "gas.wrong_unit", "gas.unknown")
    ]
    if impossible:
        raise RulesBroken(
            N_("The readings cannot be right."),
            [gates.from_violation(v, "readings") for v in impossible],
        )
    analysis = GasAnalysis(
        permit_id=permit.id,
        sampled_at=data.sampled_at,
        point=data.point,
        readings=[msgspec.to_builtins(r) for r in data.readings],
        analyst=data.analyst,
        instrument=data.instrument,
        passed=not violations,
        violations=[
            {"rule": v.code, "clause": v.clause, "params": dict(v.params)} for v in violations
        ],
        recorded_by=actor.user_id,
    )
    session.add(analysis)
    await session.flush()
    await audit.record(
        session,
        action="permit.gas_analysed",
        subject_type="permit",
        subject_id=permit.id,
        actor_id=actor.user_id,
        payload={
            "analysis_id": analysis.id,
            "sampled_at": analysis.sampled_at,
            "passed": analysis.passed,
            "readings": analysis.readings,
        },
    )
    return analysis


async def confirm_checklist(
    session: AsyncSession,
    actor: Actor,
    permit_id: uuid.UUID,
    data: ConfirmIn,
    *,
    now: datetime | None = None,
) -> Permit:
    """Control measures confirmed on site, each by whom and when."""
    now = now or utcnow()
    permit = await get_permit(session, actor, permit_id, for_update=True)
    _ensure_supervises(actor, permit)
    if permit.state not in (PermitState.APPROVED.value, PermitState.SUSPENDED.value):
        raise Conflict(
            "state", "checklist.state", N_("Measures are confirmed before work starts or resumes.")
        )
    items = {item["code"]: dict(item) for item in permit.checklist}
    for code in data.codes:
        item = items.get(code)
        if item is None or not item["applies"]:
            raise InvalidInput(
                f"checklist.{code}",
                "checklist.applies",
                N_("Only a measure that applies to this permit can be confirmed."),
            )
        item["confirmed_by"] = str(actor.user_id)
        item["confirmed_at"] = now.isoformat()
    permit.checklist = [items[item["code"]] for item in permit.checklist]
    await session.flush()
    await _ledger(session, actor, permit, "permit.measures_confirmed", {"codes": data.codes})
    return permit


def _is_guardian(actor: Actor, permit: Permit) -> bool:
    return actor.user_id == permit.guardian_user_id or (
        actor.worker_id is not None and actor.worker_id == permit.guardian_worker_id
    )


def _is_work_leader(actor: Actor, permit: Permit) -> bool:
    return actor.worker_id is not None and actor.worker_id == permit.work_leader_id


async def start(
    session: AsyncSession, actor: Actor, permit_id: uuid.UUID, *, now: datetime | None = None
) -> Permit:
    """Work starts: the guardian, the work leader or a supervisor of the plant, once the start
    gates pass (briefing signed, gas analysed in time, measures confirmed)."""
    now = now or utcnow()
    permit = await get_permit(session, actor, permit_id, for_update=True)
    _ensure_on_site_role(actor, permit)
    permit_transition(permit.state, PermitAction.START)
    _refuse(await gates.check(session, permit, gates.Stage.START, now=now))
    permit.started_at = now
    await _move(session, actor, permit, PermitAction.START, now)
    return permit


def _ensure_on_site_role(actor: Actor, permit: Permit) -> None:
    if not (
        _is_guardian(actor, permit)
        or _is_work_leader(actor, permit)
        or has_role_for_plant(actor.principal, SUPERVISOR_ROLES, permit.plant_id)
    ):
        raise NotFound(PERMIT_NOT_FOUND)


async def suspend(
    session: AsyncSession,
    actor: Actor,
    permit_id: uuid.UUID,
    reason: str,
    *,
    now: datetime | None = None,
) -> Permit:
    """Stop the work: the guardian (who must when leaving, §4.10) or a supervisor."""
    now = now or utcnow()
    permit = await get_permit(session, actor, permit_id, for_update=True)
    if not (
        _is_guardian(actor, permit)
        or has_role_for_plant(actor.principal, SUPERVISOR_ROLES, permit.plant_id)
    ):
        raise NotFound(PERMIT_NOT_FOUND)
    permit.paused_at = now
    permit.state_reason = reason
    await _move(session, actor, permit, PermitAction.SUSPEND, now, {"reason": reason})
    return permit


async def resume(
    session: AsyncSession, actor: Actor, permit_id: uuid.UUID, *, now: datetime | None = None
) -> Permit:
    """Resume after a pause, once the gates pass again (gas re-analysed after a long pause,
    §5.3.1d, §6.3f)."""
    now = now or utcnow()
    permit = await get_permit(session, actor, permit_id, for_update=True)
    _ensure_on_site_role(actor, permit)
    permit_transition(permit.state, PermitAction.RESUME)
    _refuse(await gates.check(session, permit, gates.Stage.RESUME, now=now, by=actor.user_id))
    permit.paused_at = None
    permit.state_reason = None
    await _move(session, actor, permit, PermitAction.RESUME, now)
    return permit


async def complete(
    session: AsyncSession, actor: Actor, permit_id: uuid.UUID, *, now: datetime | None = None
) -> Permit:
    """The work leader (or the company's administrator) reports the work done."""
    now = now or utcnow()
    permit = await get_permit(session, actor, permit_id, for_update=True)
    if not (_is_work_leader(actor, permit) or actor.applies_for(permit.contractor_id)):
        raise NotFound(PERMIT_NOT_FOUND)
    permit.completed_at = now
    await _move(session, actor, permit, PermitAction.COMPLETE, now)
    return permit


async def accept(
    session: AsyncSession,
    actor: Actor,
    permit_id: uuid.UUID,
    comment: str,
    *,
    now: datetime | None = None,
) -> Permit:
    """Completion acceptance (完工验收, §4.15) by EHS or the unit closes the permit."""
    now = now or utcnow()
    permit = await get_permit(session, actor, permit_id, for_update=True)
    if not has_role_for_plant(actor.principal, ACCEPTOR_ROLES, permit.plant_id):
        raise NotFound(PERMIT_NOT_FOUND)
    permit_transition(permit.state, PermitAction.ACCEPT)
    _refuse(gates.GateResult(gates.closure(permit, accepted_by=str(actor.user_id)), []))
    permit.closed_at = now
    await _move(session, actor, permit, PermitAction.ACCEPT, now, {"comment": comment})
    return permit


async def cancel(
    session: AsyncSession,
    actor: Actor,
    permit_id: uuid.UUID,
    reason: str,
    *,
    now: datetime | None = None,
) -> Permit:
    now = now or utcnow()
    permit = await get_permit(session, actor, permit_id, for_update=True)
    if not (
        actor.applies_for(permit.contractor_id)
        or has_role_for_plant(actor.principal, (Role.EHS_OFFICER,), permit.plant_id)
    ):
        raise NotFound(PERMIT_NOT_FOUND)
    permit.state_reason = reason
    await _move(session, actor, permit, PermitAction.CANCEL, now, {"reason": reason})
    for step in await steps_of(session, permit.id):
        if step.status in ("waiting", "pending"):
            step.status = "cancelled"
    await session.flush()
    return permit


async def ensure_purgeable(session: AsyncSession, permit: Permit, *, now: datetime) -> None:
    """B.3: a permit is kept at least a year after it ends. Whatever deletes a permit or any of
    its records (crew, gas analyses, approval steps) calls this first, and it refuses as the
    gates do. A draft was never issued (an approved version never becomes one again; a revision
    is a version of its own) and goes freely; a permit not yet ended is kept a year from the
    later of its planned end and today at least. Days are the plant's."""
    if permit.state == PermitState.DRAFT.value:
        return
    timezone = (
        await session.execute(select(Plant.timezone).where(Plant.id == permit.plant_id))
    ).scalar_one()
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    if permit.state in FINAL_STATES:
        ended = permit.closed_at or permit.state_changed_at or permit.planned_end
        closed_on = ended.astimezone(zone).date()
    else:
        closed_on = max(permit.planned_end.astimezone(zone).date(), today)
    _refuse(
        gates.GateResult(
            [
                gates.from_violation(v, "state")
                for v in check_purge(RecordKind.PERMIT, closed_on, today)
            ],
            [],
        )
    )


# --- lists -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PermitFilter:
    """Which permits a list shows. ``after`` is the last row of the previous page, as
    (planned start, id): pages follow each other without gaps even when many permits share a
    start time."""

    plant_id: uuid.UUID | None = None
    work_type: str | None = None
    state: str | None = None
    after: tuple[datetime, uuid.UUID] | None = None


# What a list row shows; selecting these alone keeps the JSON columns out of a list.
# In this order: portal.api.permits.summary_rows unpacks the rows by position.
SUMMARY_COLUMNS = (
    Permit.id,
    Permit.number,
    Permit.version,
    Permit.work_type,
    Permit.level,
    Permit.state,
    Permit.plant_id,
    Permit.zone_id,
    Permit.contractor_id,
    Permit.location,
    Permit.planned_start,
    Permit.planned_end,
)


@functools.cache
def _list_statement(
    summaries: bool,
    scope: str,
    plant: bool,
    work_type: bool,
    state: bool,
    after: bool,
    limit: int,
) -> Select[Any]:
    """The list's SELECT for one combination of filters, with its values left as parameters:
    built once, as building it costs more than running it. ``scope`` is ``company`` (a
    contractor sees its own), ``plants`` (a host limited to some plants) or ``tenant``."""
    query = select(*SUMMARY_COLUMNS) if summaries else select(Permit)
    if scope == "company":
        query = query.where(Permit.contractor_id == bindparam("contractor_id"))
    elif scope == "plants":
        query = query.where(Permit.plant_id.in_(bindparam("visible_plants", expanding=True)))
    if plant:
        query = query.where(Permit.plant_id == bindparam("plant_id"))
    if work_type:
        query = query.where(Permit.work_type == bindparam("work_type"))
    if state:
        query = query.where(Permit.state == bindparam("state"))
    if after:
        query = query.where(
            tuple_(Permit.planned_start, Permit.id)
            < tuple_(
                bindparam("after_start", type_=UTCDateTime()),
                bindparam("after_id", type_=Uuid()),
            )
        )
    query = query.order_by(Permit.planned_start.desc(), Permit.id.desc()).limit(limit)
    return filtered_by_tenant(query) if summaries else query


def _listed(
    actor: Actor, filters: PermitFilter, limit: int, *, summaries: bool
) -> tuple[Select[Any], dict[str, Any]]:
    """Newest planned start first, ``limit`` at a time, as far as the actor may see: the
    statement and its parameters."""
    parameters: dict[str, Any] = {}
    plants = visible_plant_ids(actor.principal)
    if not has_any_role(actor.principal, HOST_ROLES):
        scope = "company"
        parameters["contractor_id"] = actor.contractor_id
    elif plants is not None:
        scope = "plants"
        parameters["visible_plants"] = sorted(plants)
    else:
        scope = "tenant"
    if filters.plant_id is not None:
        parameters["plant_id"] = filters.plant_id
    if filters.work_type is not None:
        parameters["work_type"] = filters.work_type
    if filters.state is not None:
        parameters["state"] = filters.state
    if filters.after is not None:
        parameters["after_start"], parameters["after_id"] = filters.after
    statement = _list_statement(
        summaries,
        scope,
        filters.plant_id is not None,
        filters.work_type is not None,
        filters.state is not None,
        filters.after is not None,
        limit,
    )
    return statement, parameters


async def list_permits(
    session: AsyncSession, actor: Actor, filters: PermitFilter, *, limit: int = PAGE_SIZE
) -> list[Permit]:
    statement, parameters = _listed(actor, filters, limit, summaries=False)
    return list((await session.execute(statement, parameters)).scalars())


async def list_permit_summaries(
    session: AsyncSession, actor: Actor, filters: PermitFilter, *, limit: int = PAGE_SIZE
) -> list[Row[Any]]:
    """The same list as :func:`list_permits`, as rows of :data:`SUMMARY_COLUMNS`, read through
    Core: the busiest list of the product, where the ORM's loading would cost more than the
    query."""
    statement, parameters = _listed(actor, filters, limit, summaries=True)
    return list(await read_rows(session, statement, parameters))


async def gas_analyses_of(session: AsyncSession, permit_id: uuid.UUID) -> list[GasAnalysis]:
    return list(
        (
            await session.execute(
                select(GasAnalysis)
                .where(GasAnalysis.permit_id == permit_id)
                .order_by(GasAnalysis.sampled_at)
            )
        ).scalars()
    )


# --- the job briefing --------------------------------------------------------------------------

# The briefing's text is what the crew signs and what its hash covers, so it is written in one
# language whoever prepares it: the plants' own.
BRIEFING_LOCALE = "zh_CN"


def briefing_source(permit: Permit, crew: Sequence[PermitCrewMember]) -> BriefingSource:
    """What the crew is briefed on (§4.4): the permit's hazards, the control measures that
    apply, and its emergency measures."""
    work_type = WorkType(permit.work_type)
    with locale_scope(BRIEFING_LOCALE):
        measures = tuple(
            gettext(checklist_label(work_type, item["code"]))
            for item in permit.checklist
            if item["applies"]
        )
    return BriefingSource(
        permit_id=permit.id,
        permit_number=permit.number or str(permit.id)[:8],
        plant_id=permit.plant_id,
        work_type=work_type,
        location=permit.location,
        work_content=permit.work_content,
        hazards=tuple(permit.hazards),
        control_measures=measures,
        emergency_measures=tuple(permit.emergency_measures),
        crew=tuple(member.worker_id for member in crew),
    )


async def prepare_briefing(session: AsyncSession, actor: Actor, permit_id: uuid.UUID) -> Briefing:
    """The permit's job briefing for its current content and crew, by a host user who may
    brief at its plant."""
    permit = await get_permit(session, actor, permit_id)
    source = briefing_source(permit, await crew_of(session, permit.id))
    return await briefings.prepare_briefing(session, actor.principal, source)


# --- the tenant's approval chains ------------------------------------------------------------


@dataclass(frozen=True)
class PolicyStep:
    role: str
    kind: str
    label: str | None
    standard: bool


def _standard_steps(work_type: WorkType, level: str) -> tuple[ChainStep, ...]:
    try:
        return standard_chain(work_type, level or None)
    except ValueError as exc:
        raise InvalidInput("level", "level", N_("Not a level of this kind of permit.")) from exc


def _marked(standard: Sequence[ChainStep], steps: Sequence[dict[str, Any]]) -> list[PolicyStep]:
    """The steps with the standard's own marked, matched in order as the chain check does."""
    position = 0
    marked = []
    for step in steps:
        matches = (
            position < len(standard)
            and standard[position].role.value == step["role"]
            and standard[position].kind.value == step["kind"]
        )
        position += matches
        marked.append(PolicyStep(step["role"], step["kind"], step.get("label"), matches))
    return marked


async def _policy(session: AsyncSession, work_type: WorkType, level: str) -> ChainPolicy | None:
    return await session.scalar(
        select(ChainPolicy).where(
            ChainPolicy.work_type == work_type.value, ChainPolicy.level == level
        )
    )


async def chain_policy(
    session: AsyncSession, work_type: WorkType, level: str
) -> tuple[bool, list[PolicyStep]]:
    """The chain of a type and level: the tenant's (``True``) or Table B.1's."""
    standard = _standard_steps(work_type, level)
    policy = await _policy(session, work_type, level)
    if policy is None:
        return False, _marked(standard, [_step_document(step) for step in standard])
    return True, _marked(standard, policy.steps)


def _step_document(step: ChainStep) -> dict[str, Any]:
    return {"role": step.role.value, "kind": step.kind.value}


async def save_chain_policy(
    session: AsyncSession,
    principal: Principal,
    work_type: WorkType,
    level: str,
    steps: Sequence[dict[str, Any]],
) -> list[PolicyStep]:
    """The tenant's chain for a type and level: its own steps anywhere, every standard step of
    Table B.1 kept in order (refused otherwise, naming the step)."""
    if Role.TENANT_ADMIN not in principal.roles:
        raise NotFound(N_("Only tenant administrators set approval chains."))
    standard = _standard_steps(work_type, level)
    chains.check_policy(work_type, level or None, steps)
    marked = _marked(standard, steps)
    stored = [
        {
            "role": step.role,
            "kind": step.kind,
            "label": step.label,
            # Standard steps keep their clause, so a permit's chain shows where each comes from.
            "clause": "B.1" if step.standard else None,
        }
        for step in marked
    ]
    policy = await _policy(session, work_type, level)
    if policy is None:
        policy = ChainPolicy(work_type=work_type.value, level=level, steps=stored)
        session.add(policy)
    else:
        policy.steps = stored
    await session.flush()
    await audit.record(
        session,
        action="permit.chain_policy_set",
        subject_type="chain_policy",
        subject_id=policy.id,
        actor_id=principal.user_id,
        payload={"work_type": work_type.value, "level": level, "steps": stored},
    )
    return marked


# --- the tenant's calendar -------------------------------------------------------------------

CALENDAR_KINDS = ("holiday", "workday")
CALENDAR_DAY_NOT_FOUND = N_("The tenant's calendar has no such day.")


@dataclass(frozen=True)
class CalendarEntry:
    """One day of the calendar the level rules use. ``kind`` is ``national_holiday``,
    ``national_workday`` (a make-up working day), ``tenant_holiday`` or ``tenant_workday``; a day
    the tenant marked on top of a national one is listed twice. ``rest_day`` is the day as the
    rules see it, everything merged: hot work on it is raised one level (§5.1.1)."""

    day: date
    kind: str
    note: str | None
    rest_day: bool


async def list_calendar(session: AsyncSession, year: int) -> list[CalendarEntry]:
    """The national holidays and make-up working days of ``year`` with the tenant's own days,
    by date (national before tenant on the same day)."""
    first, last = date(year, 1, 1), date(year, 12, 31)
    rows = (
        await session.execute(
            select(CalendarDay.day, CalendarDay.kind, CalendarDay.note).where(
                CalendarDay.day >= first, CalendarDay.day <= last
            )
        )
    ).all()
    calendar = await gates.tenant_calendar(session)
    found: list[tuple[date, str, str | None]]
    found = [(day, "national_holiday", None) for day in holidays.PUBLIC_HOLIDAYS]
    found += [(day, "national_workday", None) for day in holidays.MAKE_UP_WORKDAYS]
    found = [entry for entry in found if first <= entry[0] <= last]
    found += [(day, f"tenant_{kind}", note) for day, kind, note in rows]
    order = ("national_holiday", "national_workday", "tenant_holiday", "tenant_workday")
    found.sort(key=lambda entry: (entry[0], order.index(entry[1])))
    return [CalendarEntry(day, kind, note, calendar.is_rest_day(day)) for day, kind, note in found]


def _ensure_calendar_admin(principal: Principal) -> None:
    if Role.TENANT_ADMIN not in principal.roles:
        raise NotFound(N_("Only tenant administrators change the permit calendar."))


async def _calendar_day(
    session: AsyncSession, day: date, *, for_update: bool = False
) -> CalendarDay | None:
    query = select(CalendarDay).where(CalendarDay.day == day)
    return await session.scalar(query.with_for_update() if for_update else query)


async def set_calendar_day(
    session: AsyncSession, principal: Principal, day: date, kind: str, note: str | None = None
) -> CalendarEntry:
    """The tenant's own holiday or working day (replacing what it set for that day before).
    A tenant may tighten the national calendar but never loosen it (§5.1.1): a working day on a
    national public holiday is refused, the holiday is kept."""
    _ensure_calendar_admin(principal)
    if kind not in CALENDAR_KINDS:
        raise InvalidInput("kind", "enum", N_("Not one of the allowed values."))
    if kind == "workday" and day in holidays.PUBLIC_HOLIDAYS:
        raise InvalidInput(
            "kind",
            "calendar.holiday_kept",
            N_(
                "A national public holiday stays a holiday: hot work on it is upgraded whatever "
                "the plant's own calendar says."
            ),
            clause="§5.1.1",
            subject=day.isoformat(),
        )
    entry = await _calendar_day(session, day, for_update=True)
    previous = entry.kind if entry is not None else None
    if entry is None:
        # Two administrators saving the same day at once: the second overwrites the first.
        await session.execute(
            dialect_insert(session, CalendarDay)
            .values(id=new_id(), tenant_id=principal.tenant_id, day=day, kind=kind, note=note)
            .on_conflict_do_nothing(index_elements=["tenant_id", "day"])
        )
        entry = await _calendar_day(session, day, for_update=True)
        assert entry is not None
    entry.kind = kind
    entry.note = note
    await session.flush()
    await audit.record(
        session,
        action="permit.calendar_day_set",
        subject_type="calendar_day",
        subject_id=entry.id,
        actor_id=principal.user_id,
        payload={"day": day.isoformat(), "kind": kind, "note": note, "previous": previous},
    )
    calendar = await gates.tenant_calendar(session)
    return CalendarEntry(day, f"tenant_{kind}", note, calendar.is_rest_day(day))


async def delete_calendar_day(session: AsyncSession, principal: Principal, day: date) -> None:
    """Remove the tenant's own day; the national calendar applies to it again."""
    _ensure_calendar_admin(principal)
    entry = await _calendar_day(session, day, for_update=True)
    if entry is None:
        raise NotFound(CALENDAR_DAY_NOT_FOUND)
    await audit.record(
        session,
        action="permit.calendar_day_deleted",
        subject_type="calendar_day",
        subject_id=entry.id,
        actor_id=principal.user_id,
        payload={"day": day.isoformat(), "kind": entry.kind, "note": entry.note},
    )
    await session.delete(entry)
    await session.flush()


# --- the beat --------------------------------------------------------------------------------


def expire_overdue(session: Session, now: datetime) -> int:
    """Permits past their window that never finished lapse (and their open steps with them)."""
    overdue = list(
        session.execute(
            select(Permit)
            .where(
                Permit.planned_end < now,
                Permit.state.in_(
                    [
                        PermitState.SUBMITTED.value,
                        PermitState.IN_APPROVAL.value,
                        PermitState.APPROVED.value,
                        PermitState.ACTIVE.value,
                        PermitState.SUSPENDED.value,
                    ]
                ),
            )
            .with_for_update()
        ).scalars()
    )
    for permit in overdue:
        before = permit.state
        permit.state = permit_transition(permit.state, PermitAction.EXPIRE).value
        permit.state_changed_at = now
        for step in session.execute(
            select(ApprovalStep).where(
                ApprovalStep.permit_id == permit.id,
                ApprovalStep.status.in_(["waiting", "pending"]),
            )
        ).scalars():
            step.status = "cancelled"
        session.flush()
        supervise(session, permit, now)
        audit.append_entry(
            session,
            action="permit.expire",
            subject_type="permit",
            subject_id=permit.id,
            payload={"from": before, "number": permit.number},
        )
    return len(overdue)


MONITORING_TASK = "permits.monitoring"


def watch_monitoring(session: Session, now: datetime) -> int:
    """§6.5: a confined space (or an excavation treated as one, §11.10) under way has its gas
    monitoring recorded every 2 hours. Each active permit whose last record is older is written
    to the ledger and told to its guardian and the plant's EHS officers, once for each record
    it is overdue from; resuming is refused by the gate until a new record is in. Returns how
    many permits were found overdue this time.

    Special hot work is monitored continuously (§5.3.1), but the product sees no monitor, only
    the analyses recorded, so nothing here can find it stopped."""
    latest = (
        select(GasAnalysis.permit_id, func.max(GasAnalysis.sampled_at).label("last"))
        .group_by(GasAnalysis.permit_id)
        .subquery()
    )
    rows = session.execute(
        select(Permit, latest.c.last)
        .outerjoin(latest, latest.c.permit_id == Permit.id)
        .where(
            Permit.state == PermitState.ACTIVE.value,
            Permit.work_type.in_([WorkType.CONFINED_SPACE.value, WorkType.EXCAVATION.value]),
        )
    ).all()
    overdue = 0
    for permit, last in rows:
        work_type = WorkType(permit.work_type)
        if work_type is WorkType.EXCAVATION and not gates.follows_confined_space(
            work_type, permit.details
        ):
            continue
        found = check_monitoring(WorkType.CONFINED_SPACE, now=now, last_record_at=last)
        if not found:
            continue
        overdue += 1
        since = last or permit.started_at or now
        key = f"permits:monitoring:{permit.id}:{since.isoformat()}"
        if not record_effect(session, key=key, task=MONITORING_TASK):
            continue
        audit.append_entry(
            session,
            action="permit.monitoring_overdue",
            subject_type="permit",
            subject_id=permit.id,
            payload={
                "number": permit.number,
                "state": permit.state,
                "last_record_at": last,
                "flags": [
                    {"rule": v.code, "clause": v.clause, "subject": v.subject, "params": v.params}
                    for v in found
                ],
            },
        )
        _notify_monitoring(session, permit, found[0], key, now)
    return overdue


def _notify_monitoring(
    session: Session, permit: Permit, overdue: RuleViolation, key: str, now: datetime
) -> None:
    """The permit's guardian and the plant's EHS officers, through the outbox as alerts are."""
    plant_name = session.scalar(select(Plant.name).where(Plant.id == permit.plant_id)) or ""
    zone_name = session.scalar(select(Zone.name).where(Zone.id == permit.zone_id)) or ""
    guardian_id = permit.guardian_user_id
    guardian_name = None
    if permit.guardian_worker_id is not None:
        worker = session.get(Worker, permit.guardian_worker_id)
        guardian_id = worker.user_id if worker else None
        guardian_name = worker.name if worker else None
    recipients = {
        user.id: user for user in session.scalars(role_holders([Role.EHS_OFFICER], permit.plant_id))
    }
    if guardian_id is not None:
        guardian = session.get(User, guardian_id)
        if guardian is not None and guardian.is_active:
            recipients[guardian.id] = guardian
            guardian_name = guardian_name or guardian.name
    # The permit's page, where the next record is entered.
    url = tenant_url(session, f"/permits/{permit.id}")
    for user in recipients.values():
        with locale_scope(user.locale):
            context = {
                "alert": overdue.text(),
                "plant_name": plant_name,
                "raised_at": now,
                "zone_name": zone_name,
                "permit_number": permit.number or "",
                "person": guardian_name or "",
                "url": url,
            }
        enqueue_notification(
            session,
            Notification(
                tenant_id=current_tenant_id(),
                kind=NotificationKind.ALERT_RAISED,
                context=context,
                idempotency_key=f"{key}:{user.id}",
                recipient=user.id,
            ),
        )
