"""The gates a permit passes on submission, on each approval, and before work starts or resumes.

Each gate collects every failure at once — the rule, the clause it comes from, and the person or
item concerned — so the applicant can put everything right in one go. The facts come from the
other steps of the journey: admission (company standing, worker and certificate verification),
training (inductions, the job briefing) and the permit's own records (gas analyses, checklist).

Conflicts with other permits in the same zone (§4.7) are flags, shown and recorded but not
refused: coordinating simultaneous work is the approvers' job. Hot work near an opened blind
plate (§7.6) and two blind plates on one pipeline (§7.10) are prohibitions, and refused.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from geofence.models import Zone
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
from permits.catalogue import GAS_ANALYSED, VIDEO_MEASURE, checklist_codes
from permits.holidays import HolidayCalendar
from permits.models import CalendarDay, GasAnalysis, Permit, PermitCrewMember
from permits.rules import RuleViolation
from permits.states import PermitState
from tenants.models import Membership, Plant, Role
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


async def _people(session: AsyncSession, facts: Facts, now: datetime) -> list[FieldProblem]:
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
                clause="§4.9" if verdict.reason in _CERTIFICATE_REASONS else None,
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
    found.extend(await _guardian(session, facts))
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


async def _guardian(session: AsyncSession, facts: Facts) -> list[FieldProblem]:
    permit = facts.permit
    if permit.guardian_worker_id:
        guardian = facts.workers.get(permit.guardian_worker_id)
        if guardian is None or guardian.state != ItemState.VERIFIED.value:
            name = guardian.name if guardian else None
            return [from_violation(rules.violation("guardian.not_certified", name), "guardian")]
        return []
    if permit.guardian_user_id is None:
        return [from_violation(rules.violation("guardian.missing"), "guardian")]
    holds = await session.scalar(
        select(Membership.id).where(
            Membership.user_id == permit.guardian_user_id,
            Membership.role.in_([role.value for role in GUARDIAN_ROLES]),
            (Membership.plant_id.is_(None)) | (Membership.plant_id == permit.plant_id),
        )
    )
    if holds is None:
        return [from_violation(rules.violation("guardian.not_certified"), "guardian")]
    return []


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
        return Grading(height_grade.value if height_grade else None, None, [], found)
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


def needs_gas_analysis(facts: Facts) -> bool:
    details = facts.permit.details
    return facts.work_type in GAS_ANALYSED or (
        facts.work_type is WorkType.EXCAVATION
        and rules.excavation_as_confined_space(
            details["depth_m"],
            hazardous_area=details.get("hazardous_area", False),
            near_buried_hazardous_line=details.get("near_buried_hazardous_line", False),
        )
    )


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


def _video_kept(facts: Facts) -> list[FieldProblem]:
    """§5.2.11: special hot work is filmed from start to end, so the measure must apply."""
    permit = facts.permit
    if facts.work_type is not WorkType.HOT_WORK or permit.level != rules.HotWorkLevel.SPECIAL:
        return []
    applies = {item["code"]: item["applies"] for item in permit.checklist}
    if applies.get(VIDEO_MEASURE):
        return []
    return [from_violation(rules.violation("closure.video"), f"checklist.{VIDEO_MEASURE}")]


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
    level = rules.HotWorkLevel(permit.level) if facts.work_type is WorkType.HOT_WORK else None
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
    work_type = (
        WorkType.CONFINED_SPACE if facts.work_type is WorkType.EXCAVATION else facts.work_type
    )
    level = rules.HotWorkLevel(permit.level) if work_type is WorkType.HOT_WORK else None
    return [
        from_violation(v, "gas_analysis")
        for v in rules.analysis_due(
            work_type,
            at=now,
            last_sample_at=latest.sampled_at if latest else None,
            level=level,
            paused_since=permit.paused_at,
            timezone=facts.plant.timezone,
        )
    ]


async def _briefing(session: AsyncSession, facts: Facts) -> list[FieldProblem]:
    status = await briefings.briefing_status(session, facts.permit.id)
    if status.briefing is None or not status.briefer_signed:
        return [
            problem(
                "briefing",
                "briefing.given",
                N_("The safety briefing has not been given and signed by the briefer."),
                clause="§4.4",
            )
        ]
    return [
        from_violation(
            rules.violation("briefing.unsigned", worker.name, worker=worker.name), "briefing"
        )
        for worker in status.unsigned
    ]


async def check(
    session: AsyncSession, permit: Permit, stage: Stage, *, now: datetime
) -> GateResult:
    """Run the gates of ``stage``; ``flags`` are recorded, ``problems`` refuse."""
    facts = await load_facts(session, permit)
    found = _company(facts)
    found += await _people(session, facts, now)
    flags: list[FieldProblem] = []
    if stage in (Stage.SUBMIT, Stage.APPROVE):
        found += _checklist_answered(facts)
        found += _video_kept(facts)
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
