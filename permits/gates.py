"""The gates a permit passes on submission, on each approval, before work starts or resumes, and
when it closes.

Each gate collects every failure at once — the rule, the clause it comes from, and the person or
item concerned — so the applicant can put everything right in one go. The facts come from the
other steps of the journey: admission (company standing, worker and certificate verification),
training (inductions, the job briefing) and the permit's own records (gas analyses, checklist).

Conflicts with other permits in the same zone (§4.7) are flags, shown and recorded but not
refused: coordinating simultaneous work is the approvers' job. Hot work near an opened blind
plate (§7.6) and two blind plates on one pipeline (§7.10) are prohibitions, and refused.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from geofence import tracking
from geofence.models import MemberRole, WatchMember, Zone
from geofence.services import reference_point
from infra.errors import FieldProblem
from infra.i18n import N_
from onboarding.catalogue import WorkType
from onboarding.models import Contractor, Worker
from onboarding.qualification import MESSAGES as QUALIFICATION_MESSAGES
from onboarding.qualification import Reason, contractor_verdict
from onboarding.services import qualified_workers
from onboarding.states import ItemState
from permits import rules
from permits.catalogue import GAS_ANALYSED, NUMBER_PREFIX, VIDEO_MEASURE, checklist_codes
from permits.holidays import HolidayCalendar
from permits.models import CalendarDay, GasAnalysis, Permit, PermitCrewMember
from permits.rules import RuleViolation
from permits.states import PermitState
from tenants.models import Membership, Plant, Role
from tenants.services import PLANT_RETIRED, PLANT_RETIRED_RULE
from training import briefings
from training.services import induction_gaps

# Permits that hold their zone: what a new one may conflict with.
HOLDING_STATES = (
    PermitState.SUBMITTED.value,
    PermitState.IN_APPROVAL.value,
    PermitState.APPROVED.value,
    PermitState.ACTIVE.value,
    PermitState.SUSPENDED.value,
)
# A permit may start this much before its planned start (the crew is on site, the analyst done).
START_GRACE = timedelta(minutes=15)
GUARDIAN_ROLES = (Role.GUARDIAN, Role.EHS_OFFICER, Role.UNIT_SUPERVISOR)
_CERTIFICATE_REASONS = frozenset(
    {
        Reason.CERTIFICATE_MISSING,
        Reason.CERTIFICATE_NOT_VERIFIED,
        Reason.CERTIFICATE_EXPIRED,
        Reason.CERTIFICATE_NOT_YET_VALID,
        Reason.CERTIFICATE_EXPIRES_BEFORE_END,
    }
)


# Admission's verdict judges the certificate (see permits.rules); the clause is the registry's.
CERTIFICATE_CLAUSE = rules.RULES["worker.certificate"].clause


_COMPANY_REASONS = frozenset(
    {
        Reason.CONTRACTOR_NOT_APPROVED,
        Reason.CONTRACTOR_SUSPENDED,
        Reason.CONTRACTOR_BLACKLISTED,
        Reason.WORK_TYPE_NOT_OFFERED,
    }
)


class Stage(enum.StrEnum):
    SUBMIT = "submit"
    APPROVE = "approve"
    START = "start"
    RESUME = "resume"


@dataclass
class GateResult:
    problems: list[FieldProblem]
    flags: list[FieldProblem]

    @property
    def passed(self) -> bool:
        return not self.problems


def from_violation(violation: RuleViolation, field: str) -> FieldProblem:
    return FieldProblem(
        field,
        violation.code,
        violation.message,
        dict(violation.params),
        clause=violation.clause,
        subject=violation.subject,
    )


def problem(
    field: str,
    rule: str,
    message: str,
    *,
    clause: str | None = None,
    subject: str | None = None,
    **params: object,
) -> FieldProblem:
    return FieldProblem(field, rule, message, dict(params), clause=clause, subject=subject)


@dataclass(frozen=True)
class Facts:
    """What the gates read, loaded once."""

    permit: Permit
    work_type: WorkType
    plant: Plant
    zone: Zone
    contractor: Contractor
    crew: list[PermitCrewMember]
    workers: dict[uuid.UUID, Worker]


async def load_facts(session: AsyncSession, permit: Permit) -> Facts:
    plant = (await session.execute(select(Plant).where(Plant.id == permit.plant_id))).scalar_one()
    zone = (await session.execute(select(Zone).where(Zone.id == permit.zone_id))).scalar_one()
    contractor = (
        await session.execute(select(Contractor).where(Contractor.id == permit.contractor_id))
    ).scalar_one()
    crew = list(
        (
            await session.execute(
                select(PermitCrewMember).where(PermitCrewMember.permit_id == permit.id)
            )
        ).scalars()
    )
    named = {member.worker_id for member in crew} | {permit.work_leader_id}
    if permit.guardian_worker_id:
        named.add(permit.guardian_worker_id)
    workers = {
        worker.id: worker
        for worker in (await session.execute(select(Worker).where(Worker.id.in_(named)))).scalars()
    }
    return Facts(permit, WorkType(permit.work_type), plant, zone, contractor, crew, workers)


def _plant_in_service(facts: Facts) -> list[FieldProblem]:
    """A draft kept at a plant retired since goes no further."""
    if facts.plant.retired_at is None:
        return []
    return [
        problem(
            "plant_id",
            PLANT_RETIRED_RULE,
            PLANT_RETIRED,
            subject=facts.plant.name,
            plant=facts.plant.name,
        )
    ]


def _company(facts: Facts) -> list[FieldProblem]:
    verdict = contractor_verdict(
        facts.contractor.state, facts.contractor.work_types, facts.work_type
    )
    if verdict.qualified:
        return []
    assert verdict.reason is not None
    return [
        problem(
            "contractor_id",
            f"company.{verdict.reason.value}",
            QUALIFICATION_MESSAGES[verdict.reason],
            subject=facts.contractor.name,
            **verdict.params,
        )
    ]


async def _people(
    session: AsyncSession, facts: Facts, stage: Stage, now: datetime, by: uuid.UUID | None
) -> list[FieldProblem]:
    """Every crew member qualified for the type over the whole window (§4.9) and inducted for
    the plant on every day of it; the guardian trained and, when a contractor's worker,
    verified (§4.10)."""
    permit = facts.permit
    found: list[FieldProblem] = []
    verdicts = {
        entry.worker.id: entry.verdict
        for entry in await qualified_workers(
            session,
            permit.contractor_id,
            facts.work_type,
            permit.planned_start,
            permit.planned_end,
            today=now.astimezone(ZoneInfo(facts.plant.timezone)).date(),
        )
    }
    for member in facts.crew:
        verdict = verdicts.get(member.worker_id)
        if verdict is None or verdict.qualified or verdict.reason is None:
            continue
        if verdict.reason in _COMPANY_REASONS:
            # Said once, of the company, by the company gate.
            continue
        worker = facts.workers[member.worker_id]
        found.append(
            problem(
                "crew",
                f"worker.{verdict.reason.value}",
                QUALIFICATION_MESSAGES[verdict.reason],
                clause=CERTIFICATE_CLAUSE if verdict.reason in _CERTIFICATE_REASONS else None,
                subject=worker.name,
                **verdict.params,
            )
        )
    leader = facts.workers[permit.work_leader_id]
    if leader.state != ItemState.VERIFIED.value:
        found.append(
            problem(
                "work_leader_id",
                f"worker.{Reason.WORKER_NOT_VERIFIED.value}",
                QUALIFICATION_MESSAGES[Reason.WORKER_NOT_VERIFIED],
                subject=leader.name,
            )
        )
    found.extend(await _guardian(session, facts, stage, by))
    tz = ZoneInfo(facts.plant.timezone)
    # The work leader is on site too, whether or not the crew list names them: inducted like
    # the crew, though the special-operation certificate is the crew's (§4.9).
    trained = [member.worker_id for member in facts.crew] + [permit.work_leader_id]
    if permit.guardian_worker_id:
        trained.append(permit.guardian_worker_id)
    for gap in await induction_gaps(
        session,
        list(dict.fromkeys(trained)),
        permit.plant_id,
        permit.planned_start.astimezone(tz).date(),
        permit.planned_end.astimezone(tz).date(),
        facts.work_type.value,
    ):
        found.append(
            problem(
                "crew",
                "worker.inducted",
                N_("%(worker)s has no valid induction %(induction)s for every day of the work."),
                subject=facts.workers[gap.worker_id].name,
                worker=facts.workers[gap.worker_id].name,
                induction=gap.title,
            )
        )
    return found


async def _guardian(
    session: AsyncSession, facts: Facts, stage: Stage, by: uuid.UUID | None
) -> list[FieldProblem]:
    """§4.10 and §6.8 from what the permit, admission and the site watch know of the guardian.
    A worker is certified when verified, a host user when holding a guardian, EHS or unit
    supervisor role at the plant (shown unnamed, as the applicant may not know host users).
    The guardian has left when checked out of the job's watch, which exists from the start on,
    so only resuming asks it; the watch takes no check-in while the work is suspended, so the
    guardian's own login resuming the work shows them back. A guardian named in the crew
    enters the space with it."""
    permit = facts.permit
    guardian: rules.Guardian | None = None
    if permit.guardian_worker_id:
        worker = facts.workers.get(permit.guardian_worker_id)
        guardian = rules.Guardian(
            worker.name if worker else None,
            certified=worker is not None and worker.state == ItemState.VERIFIED.value,
            outside_space=all(m.worker_id != permit.guardian_worker_id for m in facts.crew),
        )
    elif permit.guardian_user_id is not None:
        holds = await session.scalar(
            select(Membership.id).where(
                Membership.user_id == permit.guardian_user_id,
                Membership.role.in_([role.value for role in GUARDIAN_ROLES]),
                (Membership.plant_id.is_(None)) | (Membership.plant_id == permit.plant_id),
            )
        )
        guardian = rules.Guardian(None, certified=holds is not None)
    if guardian is not None and stage is Stage.RESUME:
        guardian = dataclasses.replace(
            guardian, on_site=not await _guardian_checked_out(session, permit, by)
        )
    return [
        from_violation(v, "guardian") for v in rules.check_guardian(rules_type(facts), guardian)
    ]


async def _guardian_checked_out(
    session: AsyncSession, permit: Permit, by: uuid.UUID | None
) -> bool:
    member = await session.scalar(
        select(WatchMember).where(
            WatchMember.watch_id == permit.id,
            WatchMember.role == MemberRole.GUARDIAN.value,
            WatchMember.removed_at.is_(None),
        )
    )
    return (
        member is not None
        and member.user_id != by
        and member.checked_out_at is not None
        and not tracking.is_checked_in(member)
    )


# --- levels and the permit's own facts -------------------------------------------------------


async def tenant_calendar(session: AsyncSession) -> HolidayCalendar:
    days = (await session.execute(select(CalendarDay.day, CalendarDay.kind))).all()
    return HolidayCalendar(
        extra_holidays=[day for day, kind in days if kind == "holiday"],
        extra_workdays=[day for day, kind in days if kind == "workday"],
    )


@dataclass(frozen=True)
class Grading:
    """The level a permit is managed at, decided by the rules from its facts."""

    level: str | None
    requested_level: str | None
    reasons: list[str]
    problems: list[FieldProblem]


def grade(
    work_type: WorkType,
    details: dict[str, Any],
    start: datetime,
    end: datetime,
    *,
    timezone: str,
    calendar: HolidayCalendar,
) -> Grading:
    """Hot work: the requested level, raised one level on holidays, rest days, at night or in
    strong wind outdoors (§5.1.1, §5.2.15). Height: the grade from the height and the §8.1.2
    hazards. Lifting: the level from the load (§9.1); under 10 t no permit at all (B.2)."""
    if work_type is WorkType.HOT_WORK:
        decision = rules.hot_work_level(
            rules.HotWorkLevel(details["requested_level"]),
            start,
            end,
            timezone=timezone,
            calendar=calendar,
            outdoor=details.get("outdoor", False),
            wind_force=details.get("wind_force"),
        )
        # The upgrade notices explain the level (kept as its reasons); they refuse nothing:
        # §5.1.1 and §5.2.15 allow the work at the higher level.
        return Grading(
            decision.effective.value,
            decision.requested.value,
            [reason.value for reason in decision.reasons],
            [],
        )
    if work_type is WorkType.HEIGHT:
        height = details["height_m"]
        hazards = [rules.HeightHazard(h) for h in details.get("hazards", [])]
        height_grade = rules.height_grade(height, hazards)
        found = [
            from_violation(v, "details")
            for v in rules.check_height_conditions(
                height,
                has_communication=details.get("has_communication", False),
                wind_force=details.get("wind_force", 0),
                dense_fog=details.get("dense_fog", False),
            )
        ]
        if height_grade is None:
            found.append(
                problem(
                    "details.height_m",
                    "height.minimum",
                    N_("Below %(metres)s m this is not work at height and needs no permit."),
                    clause="§8.1",
                    metres=rules.HEIGHT_WORK_MIN_M,
                )
            )
        # The rules the grade rests on are kept beside it, as a hot work upgrade's reasons are.
        basis = [rule.code for rule in rules.height_grade_basis(hazards)] if height_grade else []
        return Grading(height_grade.value if height_grade else None, None, basis, found)
    if work_type is WorkType.LIFTING:
        assessment = rules.lifting_grade(details["load_t"])
        found = []
        if not assessment.permit_required:
            found.append(from_violation(rules.violation("lifting.small_load"), "details.load_t"))
        return Grading(assessment.level.value, None, [], found)
    if work_type is WorkType.EXCAVATION and not rules.is_excavation(details["depth_m"]):
        return Grading(
            None,
            None,
            [],
            [from_violation(rules.violation("excavation.definition"), "details.depth_m")],
        )
    return Grading(None, None, [], [])


def follows_confined_space(work_type: WorkType, details: dict[str, Any]) -> bool:
    """§11.10: a deep excavation near buried hazardous lines is a confined space."""
    return work_type is WorkType.EXCAVATION and rules.excavation_as_confined_space(
        details["depth_m"],
        hazardous_area=details.get("hazardous_area", False),
        near_buried_hazardous_line=details.get("near_buried_hazardous_line", False),
    )


def rules_type(facts: Facts) -> WorkType:
    """The type whose rules the work follows: its own, or confined space for §11.10."""
    if follows_confined_space(facts.work_type, facts.permit.details):
        return WorkType.CONFINED_SPACE
    return facts.work_type


def needs_gas_analysis(facts: Facts) -> bool:
    return rules_type(facts) in GAS_ANALYSED


def _checklist_answered(facts: Facts) -> list[FieldProblem]:
    answered = {item["code"] for item in facts.permit.checklist}
    return [
        problem(
            f"checklist.{code}",
            "checklist.answered",
            N_("Say whether this control measure applies."),
        )
        for code in checklist_codes(facts.work_type)
        if code not in answered
    ]


def _hot_work_level(permit: Permit) -> rules.HotWorkLevel | None:
    return rules.HotWorkLevel(permit.level) if permit.work_type == WorkType.HOT_WORK else None


def _video_planned(facts: Facts) -> list[FieldProblem]:
    """§5.2.11: special hot work is filmed from start to end, so the camera measure applies."""
    measure = next((i for i in facts.permit.checklist if i["code"] == VIDEO_MEASURE), None)
    return [
        from_violation(v, f"checklist.{VIDEO_MEASURE}")
        for v in rules.check_video(
            facts.work_type,
            _hot_work_level(facts.permit),
            filmed=measure is not None and measure["applies"],
        )
    ]


def closure(permit: Permit, *, accepted_by: str) -> list[FieldProblem]:
    """Completion acceptance closes the permit (§4.15); special hot work only with the camera
    measure confirmed on site, so the whole job was filmed (§5.2.11)."""
    measure = next((i for i in permit.checklist if i["code"] == VIDEO_MEASURE), None)
    return [
        from_violation(
            v, "comment" if v.code == "closure.acceptance" else f"checklist.{VIDEO_MEASURE}"
        )
        for v in rules.check_closure(
            WorkType(permit.work_type),
            accepted_by=accepted_by,
            level=_hot_work_level(permit),
            video_kept=measure is not None and bool(measure.get("confirmed_by")),
        )
    ]


# What separates blind ids typed into one field: spaces, commas, 、, semicolons, slashes.
_SEPARATORS = re.compile(r"[\s,，、;；/]+")
_PREFIX_TYPES = {prefix: work_type for work_type, prefix in NUMBER_PREFIX.items()}


def _scope(facts: Facts) -> list[FieldProblem]:
    """§7.11: one blind and one action per blind plate permit. The form has one field for the
    blind; several blinds typed into it are told apart by the separators people use."""
    if facts.work_type is not WorkType.BLIND_PLATE:
        return []
    details = facts.permit.details
    blinds = [blind for blind in _SEPARATORS.split(details["blind_id"]) if blind]
    return [
        from_violation(v, "details.blind_id")
        for v in rules.check_blind_plate_scope(blinds, [rules.BlindAction(details["action"])])
    ]


async def _related(session: AsyncSession, facts: Facts) -> list[FieldProblem]:
    """§4.6: each type of special work a job involves has its own permit, linked by number. A
    related number names its type (``{plant}-{DH|SX|…}-{day}-{seq}``); it must be the number of
    a live permit of that type. A number in no such form names no type and is not checked."""
    permit = facts.permit
    wanted: dict[str, WorkType] = {}
    for number in permit.related_numbers:
        parts = number.split("-")
        work_type = _PREFIX_TYPES.get(parts[-3]) if len(parts) >= 4 else None
        if work_type is not None and number != permit.number:
            wanted[number] = work_type
    if not wanted:
        return []
    live = {
        (number, work_type)
        for number, work_type in (
            await session.execute(
                select(Permit.number, Permit.work_type).where(
                    Permit.number.in_(list(wanted)), Permit.state.in_(HOLDING_STATES)
                )
            )
        ).all()
    }
    linked: dict[WorkType, str | None] = {}
    for number, work_type in wanted.items():
        # One missing permit of a type is enough for that type to be missing.
        found = (number, work_type.value) in live
        linked[work_type] = linked.get(work_type, number) if found else None
    return [
        from_violation(v, "related_numbers")
        for v in rules.check_permit_types(set(wanted.values()), linked)
    ]


def _checklist_confirmed(facts: Facts) -> list[FieldProblem]:
    return [
        problem(
            f"checklist.{item['code']}",
            "checklist.confirmed",
            N_("Confirm this control measure on site before work starts."),
        )
        for item in facts.permit.checklist
        if item["applies"] and not item.get("confirmed_by")
    ]


async def _window(session: AsyncSession, facts: Facts, now: datetime) -> list[FieldProblem]:
    permit = facts.permit
    serving = None
    served_number = permit.details.get("served_permit_number")
    if facts.work_type is WorkType.TEMP_POWER and served_number:
        served = await session.scalar(
            select(Permit)
            .where(Permit.number == served_number, Permit.state.in_(HOLDING_STATES))
            .order_by(Permit.version.desc())
        )
        if served is None or served.work_type not in (
            WorkType.HOT_WORK.value,
            WorkType.CONFINED_SPACE.value,
        ):
            return [
                problem(
                    "details.served_permit_number",
                    "temp_power.served_permit",
                    N_("No live hot work or confined space permit has the number %(number)s."),
                    clause="§10.8",
                    number=served_number,
                )
            ]
        serving = rules.ServedPermit(served_number, served.planned_start, served.planned_end)
    level = _hot_work_level(permit)
    return [
        from_violation(v, "planned_end" if v.code.startswith("validity") else "planned_start")
        for v in rules.check_window(
            facts.work_type,
            permit.planned_start,
            permit.planned_end,
            now=now,
            level=level,
            special_case=permit.details.get("special_case", False),
            serving=serving,
            grace=START_GRACE,
        )
    ]


async def _conflicts(session: AsyncSession, facts: Facts) -> GateResult:
    permit = facts.permit
    others = (
        await session.execute(
            select(Permit, Zone)
            .join(Zone, Zone.id == Permit.zone_id)
            .where(
                Permit.plant_id == permit.plant_id,
                Permit.id != permit.id,
                Permit.state.in_(HOLDING_STATES),
                Permit.planned_start < permit.planned_end,
                Permit.planned_end > permit.planned_start,
            )
        )
    ).all()

    def planned(item: Permit, zone: Zone) -> rules.PlannedWork:
        return rules.PlannedWork(
            item.number or str(item.id),
            str(item.zone_id),
            WorkType(item.work_type),
            item.planned_start,
            item.planned_end,
            pipeline_id=item.details.get("pipeline_id"),
            point=reference_point(zone),
        )

    found = rules.find_conflicts(
        planned(permit, facts.zone), [planned(other, zone) for other, zone in others]
    )
    flags = [from_violation(v, "zone_id") for v in found if v.code == "conflict.same_zone"]
    problems = [from_violation(v, "zone_id") for v in found if v.code != "conflict.same_zone"]
    return GateResult(problems, flags)


async def _gas(session: AsyncSession, facts: Facts, now: datetime) -> list[FieldProblem]:
    """The latest sample passed and is recent enough for (re)starting now (§5.3.1, §6.3)."""
    permit = facts.permit
    latest = await session.scalar(
        select(GasAnalysis)
        .where(GasAnalysis.permit_id == permit.id)
        .order_by(GasAnalysis.sampled_at.desc())
        .limit(1)
    )
    if latest is not None and not latest.passed:
        return [
            problem(
                "gas_analysis",
                "gas.failed",
                N_("The latest gas analysis failed; ventilate and analyse again."),
                clause="§5.3.2" if facts.work_type is WorkType.HOT_WORK else "§6.4",
            )
        ]
    # Excavation treated as a confined space follows its rules (§11.10).
    work_type = rules_type(facts)
    level = _hot_work_level(permit)
    found = rules.analysis_due(
        work_type,
        at=now,
        last_sample_at=latest.sampled_at if latest else None,
        level=level,
        paused_since=permit.paused_at,
        timezone=facts.plant.timezone,
    )
    if permit.started_at is not None:
        # Work that ran is resumed only while its monitoring is up to date (§6.5): the last
        # record is the latest analysis, as the beat reads it.
        found += rules.check_monitoring(
            work_type,
            now=now,
            last_record_at=latest.sampled_at if latest else None,
            level=level,
        )
    return [from_violation(v, "gas_analysis") for v in found]


async def _briefing(session: AsyncSession, facts: Facts) -> list[FieldProblem]:
    status = await briefings.briefing_status(session, facts.permit.id)
    return [
        from_violation(v, "briefing")
        for v in rules.check_briefing(
            {worker.id: worker.name for worker, _signature in status.crew},
            {worker.id for worker, signature in status.crew if signature is not None},
            given=status.briefing is not None and status.briefer_signed,
        )
    ]


async def check(
    session: AsyncSession,
    permit: Permit,
    stage: Stage,
    *,
    now: datetime,
    by: uuid.UUID | None = None,
) -> GateResult:
    """Run the gates of ``stage``; ``flags`` are recorded, ``problems`` refuse. ``by`` is the
    user passing the gate, when who it is matters (the guardian back on site to resume)."""
    facts = await load_facts(session, permit)
    found = _plant_in_service(facts)
    found += _company(facts)
    found += await _people(session, facts, stage, now, by)
    flags: list[FieldProblem] = []
    if stage in (Stage.SUBMIT, Stage.APPROVE):
        found += _checklist_answered(facts)
        found += _video_planned(facts)
        found += _scope(facts)
        found += await _related(session, facts)
        found += await _window(session, facts, now)
        calendar = await tenant_calendar(session)
        found += grade(
            facts.work_type,
            permit.details,
            permit.planned_start,
            permit.planned_end,
            timezone=facts.plant.timezone,
            calendar=calendar,
        ).problems
        conflicts = await _conflicts(session, facts)
        found += conflicts.problems
        flags += conflicts.flags
    if stage in (Stage.START, Stage.RESUME):
        if not (permit.planned_start - START_GRACE <= now < permit.planned_end):
            found.append(
                problem(
                    "planned_start",
                    "window.now",
                    N_("Work may start only within the permit's window."),
                )
            )
        found += _checklist_confirmed(facts)
        found += await _briefing(session, facts)
        if needs_gas_analysis(facts):
            found += await _gas(session, facts, now)
    return GateResult(found, flags)
