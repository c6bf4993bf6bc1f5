"""Work permits end to end through the services: applying (levels computed, never typed), the
gates against admission and training, the approval chain of Table B.1, work on site, revisions,
conflicts in a zone, the beat, tenant isolation and the ledger.

Every refusal is checked by its rule, the clause of GB 30871 it comes from, and the person or
item it concerns. Times are passed to the services, so the tests decide day and night.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime, timedelta
from typing import Any

import msgspec
import pytest
from sqlalchemy import select, text

from geofence.models import Watch, WatchMember
from infra.audit import AuditEntry, verify_chain
from infra.db import Database, utcnow
from infra.errors import Conflict, DomainError, InvalidInput, NotFound, RulesBroken
from infra.outbox import OutboxMessage
from infra.settings import Settings
from infra.tasks import worker_settings
from onboarding import services as onboarding_services
from onboarding.catalogue import WorkType
from permits import rules, services
from permits.catalogue import VIDEO_MEASURE
from permits.models import ChainPolicy, Permit
from permits.rules import GasUnit
from permits.schemas import ChecklistAnswer, DecisionIn, GasAnalysisIn, PositionIn, ReadingIn
from permits.tasks import permits_watch
from tenants import services as tenant_services
from tenants.models import Role
from tests.factories import TenantFactory
from tests.onboarding_factories import in_tenant
from tests.permit_factories import (
    CENTRE,
    CREW_MATE,
    LEADER,
    NOT_INDUCTED,
    PLANT_TZ,
    SHORT_CERT,
    SHORT_CERT_DAYS,
    PermitWorld,
    Window,
    _viewer,
    checklist_for,
    plant_time,
    rest_day,
    window,
    working_day,
)
from tests.training_factories import DEVICE, principal, signature_in
from training import briefings

ON_SITE = PositionIn(latitude=CENTRE[1], longitude=CENTRE[0], accuracy_m=10.0)
OFF_SITE = PositionIn(latitude=CENTRE[1] + 0.05, longitude=CENTRE[0], accuracy_m=10.0)


def _problems(error: pytest.ExceptionInfo[DomainError]) -> set[tuple[str, str | None, str | None]]:
    return {(p.rule, p.clause, p.subject) for p in error.value.problems}


def _rules(error: pytest.ExceptionInfo[DomainError]) -> set[str]:
    return {p.rule for p in error.value.problems}


@pytest.fixture
async def world(any_db: Database, any_settings: Settings, factory: TenantFactory) -> PermitWorld:
    return await PermitWorld.create(any_db, any_settings, factory)


def _today() -> date:
    return datetime.now(PLANT_TZ).date()


def _gas(sampled_at: datetime, *readings: tuple[str, float, str]) -> GasAnalysisIn:
    return GasAnalysisIn(
        sampled_at=sampled_at,
        point="动火点下风向 1 m",
        readings=[ReadingIn(gas=g, value=v, unit=GasUnit(u)) for g, v, u in readings],
        analyst="化验员王芳",
        instrument="MX6 四合一",
    )


CLEAN_AIR = (("methane", 0.1, "percent_vol"), ("oxygen", 20.9, "percent_vol"))


async def _ledger(world: PermitWorld, subject_id: uuid.UUID) -> list[AuditEntry]:
    async with world.session() as session:
        return list(
            (
                await session.execute(
                    select(AuditEntry)
                    .where(AuditEntry.subject_id == str(subject_id))
                    .order_by(AuditEntry.seq)
                )
            ).scalars()
        )


async def _notifications(world: PermitWorld, kind: str = "approval_requested") -> list[dict]:
    async with world.session() as session:
        rows = await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.topic == "notification")
            .order_by(OutboxMessage.created_at, OutboxMessage.id)
        )
        return [row.payload for row in rows if row.payload["kind"] == kind]


# --- applying: levels computed, never typed --------------------------------------------------


async def test_a_draft_of_each_of_the_eight_types_with_its_level(world: PermitWorld) -> None:
    at = window()
    expected = {
        WorkType.HOT_WORK: "level2",
        WorkType.CONFINED_SPACE: None,
        WorkType.BLIND_PLATE: None,
        WorkType.HEIGHT: "grade_2",  # 8 m, no hazards (§8.1.1)
        WorkType.LIFTING: "level2",  # 50 t (§9.1)
        WorkType.TEMP_POWER: None,
        WorkType.EXCAVATION: None,
        WorkType.ROAD_CLOSURE: None,
    }
    for work_type, level in expected.items():
        permit = await world.draft(world.permit_in(work_type, at), now=at.now)
        assert (permit.work_type, permit.level, permit.state) == (work_type.value, level, "draft")
        assert permit.number is None and permit.content_hash is None
        assert [i["code"] for i in permit.checklist] == [c.code for c in checklist_for(work_type)]
        async with world.session() as session:
            crew = await services.crew_of(session, permit.id)
        assert {m.worker_id for m in crew} == {world.worker(LEADER), world.worker(CREW_MATE)}
    hot = await world.draft(world.permit_in(WorkType.HOT_WORK, at), now=at.now)
    assert hot.details["method"] == "electric_welding" and "work_type" not in hot.details
    assert (hot.requested_level, hot.level_reasons) == ("level2", [])


async def test_hot_work_level_is_raised_on_rest_days_at_night_and_in_wind(
    world: PermitWorld,
) -> None:
    """§5.1.1: a rest day or the night raises the requested level by one; §5.2.15: so does
    outdoor wind of force 5 or more. The reasons are kept beside the level."""
    saturday = rest_day(_today() + timedelta(days=1))
    weekday = working_day(_today() + timedelta(days=1))
    cases = [
        (Window(plant_time(saturday, 9), plant_time(saturday, 15)), {}, ["rest_day"]),
        (Window(plant_time(weekday, 23), plant_time(weekday, 23, 59)), {}, ["night"]),
        (window(weekday), {"outdoor": True, "wind_force": 5}, ["wind"]),
        (window(weekday), {"outdoor": False, "wind_force": 6}, []),
    ]
    for at, details, reasons in cases:
        permit = await world.draft(world.permit_in(WorkType.HOT_WORK, at, **details), now=at.now)
        assert permit.requested_level == "level2"
        assert permit.level == ("level1" if reasons else "level2")
        assert permit.level_reasons == reasons
    assert rules.RULES["hot_work.upgrade_rest_day"].clause == "§5.1.1"
    assert rules.RULES["hot_work.upgrade_night"].clause == "§5.1.1"
    assert rules.RULES["hot_work.upgrade_wind"].clause == "§5.2.15"
    # Level 1 on a rest day becomes special (the approval goes to the leader in charge).
    at = Window(plant_time(saturday, 9), plant_time(saturday, 15))
    special = await world.draft(
        world.permit_in(WorkType.HOT_WORK, at, requested_level="level1"), now=at.now
    )
    assert special.level == "special"


async def test_height_lifting_and_excavation_are_graded_or_refused_by_the_rules(
    world: PermitWorld,
) -> None:
    at = window()
    graded = {
        (8.0, ()): "grade_2",
        (8.0, ("slippery",)): "grade_3",  # §8.1.2 hazards: method B, one step up
        (4.0, ()): "grade_1",
        (31.0, ("cold",)): "grade_4",
    }
    for (height, hazards), grade in graded.items():
        data = world.permit_in(
            WorkType.HEIGHT, at, height_m=height, hazards=list(hazards), has_communication=True
        )
        assert (await world.draft(data, now=at.now)).level == grade
    refusals = [
        (WorkType.HEIGHT, {"height_m": 1.5}, ("height.minimum", "§8.1", None)),
        (WorkType.HEIGHT, {"height_m": 35.0}, ("height.communication", "§8.2.1", None)),
        (WorkType.HEIGHT, {"wind_force": 5}, ("height.weather", "§8.2.6", None)),
        (WorkType.LIFTING, {"load_t": 9.5}, ("lifting.small_load", "B.2", None)),
        (WorkType.EXCAVATION, {"depth_m": 0.4}, ("excavation.definition", "§3.11", None)),
    ]
    for work_type, details, expected in refusals:
        with pytest.raises(RulesBroken) as refused:
            await world.draft(world.permit_in(work_type, at, **details), now=at.now)
        assert expected in _problems(refused)
    assert (
        await world.draft(world.permit_in(WorkType.LIFTING, at, load_t=120), now=at.now)
    ).level == "level1"
    assert (
        await world.draft(world.permit_in(WorkType.LIFTING, at, load_t=10), now=at.now)
    ).level == "level3"


# --- bad input -------------------------------------------------------------------------------


async def test_bad_applications_are_refused_naming_field_and_rule(world: PermitWorld) -> None:
    at = window()
    reversed_ = msgspec_replace(
        world.permit_in(WorkType.HEIGHT, at), planned_end=at.start - timedelta(hours=1)
    )
    with pytest.raises(InvalidInput) as refused:
        await world.draft(reversed_, now=at.now)
    assert _rules(refused) == {"window.reversed"}
    past = window(hours=2)
    with pytest.raises(InvalidInput) as refused:
        await world.draft(world.permit_in(WorkType.HEIGHT, past), now=past.end + timedelta(hours=1))
    assert _rules(refused) == {"window.elapsed"}
    naive = msgspec_replace(
        world.permit_in(WorkType.HEIGHT, at), planned_start=at.start.replace(tzinfo=None)
    )
    with pytest.raises(InvalidInput) as refused:
        await world.draft(naive, now=at.now)
    assert _rules(refused) == {"timezone"}

    # Another company's worker on the crew.
    other = await world.onboarding.register(world.tenant)
    stranger = await world.onboarding.add_worker(other, "孙八")
    data = world.permit_in(WorkType.HEIGHT, at)
    data = msgspec_replace(data, crew=[*data.crew, type(data.crew[0])(worker_id=stranger)])
    with pytest.raises(RulesBroken) as refused:
        await world.draft(data, now=at.now)
    assert _problems(refused) == {("crew.same_company", None, str(stranger))}

    unknown = world.permit_in(
        WorkType.HEIGHT, at, checklist=[ChecklistAnswer(code="welding_gear", applies=True)]
    )
    with pytest.raises(RulesBroken) as refused:
        await world.draft(unknown, now=at.now)
    assert [(p.field, p.rule) for p in refused.value.problems] == [
        ("checklist.welding_gear", "checklist.known")
    ]

    # A checklist item left unanswered is allowed in a draft, refused at submission.
    partial = world.permit_in(WorkType.HEIGHT, at, checklist=checklist_for(WorkType.HEIGHT)[:-1])
    draft = await world.draft(partial, now=at.now)
    with pytest.raises(RulesBroken) as refused:
        await world.submit(draft.id, now=at.now)
    assert [(p.field, p.rule) for p in refused.value.problems] == [
        ("checklist.weather", "checklist.answered")
    ]

    # A transition the life cycle does not allow.
    with pytest.raises(Conflict) as refused:
        async with world.session() as session:
            actor = await services.actor_for(session, world.supervisor)
            await services.start(session, actor, draft.id, now=at.start)
    assert _rules(refused) == {"transition"}
    assert refused.value.status_code == 409


async def test_validity_longer_than_the_standard_allows_is_refused_at_submission(
    world: PermitWorld,
) -> None:
    day = working_day(_today() + timedelta(days=1))
    cases = [
        # §5.1.5: level 1 hot work, 8 hours at most.
        (
            WorkType.HOT_WORK,
            Window(plant_time(day, 8), plant_time(day, 17)),
            {"requested_level": "level1"},
            ("validity.hot_work", "§5.1.5", None),
        ),
        (
            WorkType.CONFINED_SPACE,
            window(day, hours=25),
            {},
            ("validity.confined_space", "§6.10", None),
        ),
        (WorkType.HEIGHT, window(day, hours=24 * 7 + 1), {}, ("validity.height", "§8.2.11", None)),
        (
            WorkType.TEMP_POWER,
            window(day, hours=24 * 15 + 1),
            {},
            ("validity.temp_power", "§10.8", None),
        ),
    ]
    for work_type, at, details, expected in cases:
        permit = await world.draft(world.permit_in(work_type, at, **details), now=at.now)
        with pytest.raises(RulesBroken) as refused:
            await world.submit(permit.id, now=at.now)
        assert expected in _problems(refused), work_type
        assert (await world.get(permit.id)).state == "draft"

    # §10.8: power serving a hot work permit stays within that permit's window.
    at = window(day)
    hot = await world.approved(world.permit_in(WorkType.HOT_WORK, at), now=at.now)
    longer = Window(at.start, at.end + timedelta(hours=1))
    cases = [
        (hot.number, longer, ("validity.temp_power_served", "§10.8", None)),
        ("P1-DH-20200101-0001", at, ("temp_power.served_permit", "§10.8", None)),
    ]
    for number, span, expected in cases:
        permit = await world.draft(
            world.permit_in(WorkType.TEMP_POWER, span, served_permit_number=number), now=at.now
        )
        with pytest.raises(RulesBroken) as refused:
            await world.submit(permit.id, now=at.now)
        assert _problems(refused) == {expected}
    served = await world.draft(
        world.permit_in(WorkType.TEMP_POWER, at, served_permit_number=hot.number), now=at.now
    )
    assert (await world.submit(served.id, now=at.now)).state == "submitted"
    # Cancelled by the applicant, its open steps go with it.
    async with world.session() as session:
        actor = await services.actor_for(session, world.contractor_admin)
        cancelled = await services.cancel(session, actor, served.id, "计划变更", now=at.now)
    assert cancelled.state == "cancelled"
    assert {s.status for s in await world.steps(served.id)} == {"cancelled"}


async def test_5_2_11_special_hot_work_is_filmed_from_start_to_end(world: PermitWorld) -> None:
    """§5.2.11: at the special level the camera measure must apply; below it, it may not."""
    day = working_day(_today() + timedelta(days=1))
    at = window(day, hours=4)
    unfilmed = [
        ChecklistAnswer(code=item.code, applies=item.code != VIDEO_MEASURE)
        for item in checklist_for(WorkType.HOT_WORK)
    ]
    special = await world.draft(
        world.permit_in(WorkType.HOT_WORK, at, requested_level="special", checklist=unfilmed),
        now=at.now,
    )
    with pytest.raises(RulesBroken) as refused:
        await world.submit(special.id, now=at.now)
    assert ("closure.video", "§5.2.11", None) in _problems(refused)
    level2 = await world.draft(
        world.permit_in(WorkType.HOT_WORK, at, requested_level="level2", checklist=unfilmed),
        now=at.now,
    )
    assert (await world.submit(level2.id, now=at.now)).state == "submitted"
    filmed = await world.draft(
        world.permit_in(
            WorkType.HOT_WORK,
            Window(at.start + timedelta(hours=5), at.end + timedelta(hours=5)),
            requested_level="special",
        ),
        now=at.now,
    )
    assert (await world.submit(filmed.id, now=at.now)).state == "submitted"


# --- gates against admission and training ----------------------------------------------------


async def test_submission_gates_check_certificates_inductions_guardian_and_company(
    world: PermitWorld,
) -> None:
    # §4.9: the certificate must be valid to the window's end, not only today.
    late = window(working_day(_today() + timedelta(days=SHORT_CERT_DAYS)))
    permit = await world.draft(
        world.permit_in(WorkType.HOT_WORK, late, crew=(LEADER, SHORT_CERT)), now=late.now
    )
    with pytest.raises(RulesBroken) as refused:
        await world.submit(permit.id, now=late.now)
    [certificate] = refused.value.problems
    assert certificate.rule.startswith("worker.certificate")
    assert (certificate.clause, certificate.subject) == ("§4.9", SHORT_CERT)
    # Within the certificate's validity the same crew passes.
    at = window()
    ok = await world.draft(
        world.permit_in(WorkType.HOT_WORK, at, crew=(LEADER, SHORT_CERT)), now=at.now
    )
    assert (await world.submit(ok.id, now=at.now)).state == "submitted"

    # No valid induction for the plant.
    permit = await world.draft(
        world.permit_in(WorkType.HEIGHT, at, crew=(LEADER, NOT_INDUCTED)), now=at.now
    )
    with pytest.raises(RulesBroken) as refused:
        await world.submit(permit.id, now=at.now)
    assert _problems(refused) == {("worker.inducted", None, NOT_INDUCTED)}

    # §4.10: a guardian from the company who was never verified.
    await world.onboarding.add_worker(world.company, "钱七")
    await world.induct("钱七")
    permit = await world.draft(
        world.permit_in(WorkType.HEIGHT, at, guardian_worker="钱七"), now=at.now
    )
    with pytest.raises(RulesBroken) as refused:
        await world.submit(permit.id, now=at.now)
    assert ("guardian.not_certified", "§4.10", "钱七") in _problems(refused)
    # A host user without a guardian's role on the plant is no guardian either.
    data = msgspec_replace(
        world.permit_in(WorkType.HEIGHT, at), guardian_user_id=world.contractor_admin.user_id
    )
    permit = await world.draft(data, now=at.now)
    with pytest.raises(RulesBroken) as refused:
        await world.submit(permit.id, now=at.now)
    assert _problems(refused) == {("guardian.not_certified", "§4.10", None)}

    # A suspended company applies for nothing.
    permit = await world.draft(world.permit_in(WorkType.HEIGHT, at), now=at.now)
    async with world.session() as session:
        await onboarding_services.suspend_contractor(
            session, _viewer(world.ehs), world.company.contractor_id, reason="安全检查不合格"
        )
    with pytest.raises(RulesBroken) as refused:
        await world.submit(permit.id, now=at.now)
    [company] = refused.value.problems
    assert company.rule.startswith("company.") and company.field == "contractor_id"


# --- the approval chain ----------------------------------------------------------------------


async def test_the_chain_notifies_each_step_numbers_and_freezes_the_permit(
    world: PermitWorld,
) -> None:
    at = window()
    data = world.permit_in(WorkType.HOT_WORK, at, requested_level="level1")
    permit = await world.draft(data, now=at.now)
    submitted = await world.submit(permit.id, now=at.now)
    assert (submitted.state, submitted.submitted_at) == ("submitted", at.now)
    steps = await world.steps(permit.id)
    assert [(s.role, s.kind, s.clause, s.status) for s in steps] == [
        ("work_leader", "review", "B.1", "pending"),
        ("local_unit", "review", "B.1", "waiting"),
        ("safety_department", "approve", "B.1", "waiting"),
        ("shift_leader", "check", "B.1", "waiting"),
    ]
    assert steps[0].due_at == at.now + timedelta(minutes=60)
    # The work leader's step is the company's: its administrator and the leader's own login.
    sent = await _notifications(world)
    assert {n["recipient"] for n in sent} == {
        str(world.contractor_admin.user_id),
        str(world.leader_login.user_id),
    }
    # The message links to the permit's page, where the step is decided.
    base = worker_settings().base_url.rstrip("/")
    assert {n["context"]["url"] for n in sent} == {
        f"{base}/t/{world.tenant.slug}/permits/{permit.id}"
    }

    # An approver not on the step is told the permit does not exist.
    with pytest.raises(NotFound):
        await world.decide(permit.id, now=at.now, by=world.ehs)
    # Decide step by step; the safety department approves from elsewhere (§4.11a, flagged).
    minutes = {0: 5, 1: 12, 2: 20, 3: 30}
    positions = {0: None, 1: ON_SITE, 2: OFF_SITE, 3: ON_SITE}
    for index in range(4):
        before = len(await _notifications(world))
        decided = await world.decide(
            permit.id, now=at.now + timedelta(minutes=minutes[index]), position=positions[index]
        )
        fresh = (await _notifications(world))[before:]
        if index < 3:
            nxt = (await world.steps(permit.id))[index + 1]
            holder = world.decider_for(nxt)
            assert {n["recipient"] for n in fresh} == {str(holder.user_id)}
            assert decided.state == "in_approval"
        else:
            assert fresh == []
    steps = await world.steps(permit.id)
    assert [s.status for s in steps] == ["approved"] * 4
    assert [s.minutes for s in steps] == [5.0, 7.0, 8.0, 10.0]
    assert [s.on_site for s in steps] == [None, True, False, True]
    assert steps[2].latitude == OFF_SITE.latitude
    approved = await world.get(permit.id)
    assert approved.state == "approved"
    assert approved.number == f"P1-DH-{at.now:%Y%m%d}-0001"
    assert approved.approved_at == at.now + timedelta(minutes=30)
    async with world.session() as session:
        crew = await services.crew_of(session, permit.id)
    assert approved.content_hash == services.content_hash(approved, crew)
    ledger = await _ledger(world, permit.id)
    decisions = [e.payload for e in ledger if e.action.startswith("permit.approve")]
    assert [d["on_site"] for d in decisions] == [None, True, False, True]
    assert [[(f["rule"], f["clause"]) for f in d["flags"]] for d in decisions] == [
        [],
        [],
        [("approval.off_site", "§4.11a")],
        [],
    ]
    assert decisions[-1]["content_hash"] == approved.content_hash

    # Numbers run per plant, type and day.
    second = await world.approved(world.permit_in(WorkType.HOT_WORK, at, zone="Z3"), now=at.now)
    height = await world.approved(world.permit_in(WorkType.HEIGHT, at, zone="Z3"), now=at.now)
    assert second.number == f"P1-DH-{at.now:%Y%m%d}-0002"
    assert height.number == f"P1-GC-{at.now:%Y%m%d}-0001"

    # An approved permit is never edited (§4.18).
    with pytest.raises(Conflict) as refused:
        async with world.session() as session:
            actor = await services.actor_for(session, world.contractor_admin)
            await services.update_permit(session, actor, permit.id, data, now=at.now)
    assert _problems(refused) == {("permit.immutable", "§4.18", None)}


async def test_double_approval_and_reject_and_return_need_a_comment(world: PermitWorld) -> None:
    at = window()
    permit = await world.draft(world.permit_in(WorkType.CONFINED_SPACE, at), now=at.now)
    await world.submit(permit.id, now=at.now)
    await world.decide(permit.id, now=at.now)  # the work leader's step
    # The unit supervisor holds the next two steps (review and approve, B.1): a second press on
    # the step already decided must not approve the next one.
    async with world.session() as session:
        actor = await services.actor_for(session, world.supervisor)
        await services.decide(
            session, actor, permit.id, DecisionIn(decision="approve", step=1), now=at.now
        )
    with pytest.raises(Conflict) as refused:
        async with world.session() as session:
            actor = await services.actor_for(session, world.supervisor)
            await services.decide(
                session, actor, permit.id, DecisionIn(decision="approve", step=1), now=at.now
            )
    assert _rules(refused) == {"step.pending"}
    assert [s.status for s in await world.steps(permit.id)] == ["approved", "approved", "pending"]

    for decision in ("reject", "return"):
        with pytest.raises(InvalidInput) as refused:
            await world.decide(permit.id, now=at.now, decision=decision, comment="  ")
        assert [(p.field, p.rule) for p in refused.value.problems] == [("comment", "required")]
    returned = await world.decide(
        permit.id, now=at.now, decision="return", comment="补充气体检测点"
    )
    assert returned.state == "draft" and returned.submitted_at is None
    assert await world.steps(permit.id) == []
    # Corrected and submitted again: a fresh chain.
    await world.submit(permit.id, now=at.now)
    assert [s.status for s in await world.steps(permit.id)][:2] == ["pending", "waiting"]
    rejected = await world.decide(permit.id, now=at.now, decision="reject", comment="方案不全")
    assert rejected.state == "rejected"
    assert {s.status for s in await world.steps(permit.id)} == {"rejected", "cancelled"}
    ledger = await _ledger(world, permit.id)
    assert ledger[-1].action == "permit.reject" and ledger[-1].payload["comment"] == "方案不全"
    with pytest.raises(Conflict):
        await world.submit(permit.id, now=at.now)


async def test_a_tenant_chain_policy_adds_its_steps(world: PermitWorld) -> None:
    async with world.session() as session:
        session.add(
            ChainPolicy(
                work_type="blind_plate",
                level="",
                steps=[
                    {"role": "work_leader", "kind": "review", "clause": "B.1"},
                    {"role": "local_unit", "kind": "review", "clause": "B.1"},
                    {"role": "equipment_department", "kind": "review", "label": "设备科"},
                    {"role": "local_unit", "kind": "approve", "clause": "B.1"},
                ],
            )
        )
    at = window()
    permit = await world.approved(world.permit_in(WorkType.BLIND_PLATE, at), now=at.now)
    steps = await world.steps(permit.id)
    assert [(s.role, s.label, s.clause) for s in steps] == [
        ("work_leader", None, "B.1"),
        ("local_unit", None, "B.1"),
        ("equipment_department", "设备科", None),
        ("local_unit", None, "B.1"),
    ]
    assert permit.number == f"P1-MB-{at.now:%Y%m%d}-0001"


@pytest.mark.postgres
async def test_two_approvers_pressing_at_once_decide_the_step_once(
    pg_db: Database, pg_settings: Settings, factory: TenantFactory
) -> None:
    """The permit row is locked FOR UPDATE: of two transactions deciding the same step, one
    approves it and the other finds it decided."""
    world = await PermitWorld.create(pg_db, pg_settings, factory)
    at = window()
    permit = await world.draft(world.permit_in(WorkType.HOT_WORK, at), now=at.now)
    await world.submit(permit.id, now=at.now)
    await world.decide(permit.id, now=at.now)

    async def press() -> str:
        try:
            async with world.session() as session:
                actor = await services.actor_for(session, world.supervisor)
                await services.decide(
                    session, actor, permit.id, DecisionIn(decision="approve", step=1), now=at.now
                )
                await asyncio.sleep(0.2)  # hold the lock while the other one waits
        except Conflict as refused:
            return refused.problems[0].rule
        return "approved"

    outcomes = await asyncio.gather(press(), press())
    assert sorted(outcomes) == ["approved", "step.pending"]
    assert [s.status for s in await world.steps(permit.id)] == [
        "approved",
        "approved",
        "pending",
        "waiting",
    ]


# --- on site: start gates, suspend, resume, complete, accept ---------------------------------


async def test_work_starts_only_after_briefing_gas_and_measures_then_closes(
    world: PermitWorld,
) -> None:
    at = window()
    permit = await world.approved(
        world.permit_in(WorkType.HOT_WORK, at, requested_level="level1"), now=at.now
    )
    assert permit.level == "level1"
    start_at = at.at(5)

    async def act(who, call, *args, now: datetime) -> Permit:  # type: ignore[no-untyped-def]
        async with world.session() as session:
            actor = await services.actor_for(session, who)
            return await call(session, actor, permit.id, *args, now=now)

    async def start_problems(now: datetime = start_at) -> set[tuple[str, str | None, str | None]]:
        with pytest.raises(RulesBroken) as refused:
            await act(world.guardian, services.start, now=now)
        return _problems(refused)

    found = await start_problems()
    assert ("briefing.given", "§4.4", None) in found
    assert ("gas.sample_missing", "§5.3.1c", None) in found
    assert ("checklist.confirmed", None, None) in found

    # The briefer signed, the crew not yet.
    await world.brief(permit.id, crew_signs=False)
    found = await start_problems()
    assert {f for f in found if f[0].startswith("briefing")} == {
        ("briefing.unsigned", "§4.4", LEADER),
        ("briefing.unsigned", "§4.4", CREW_MATE),
    }
    # The crew signs on the briefer's tablet.
    async with world.session() as session:
        briefing = await briefings.live_briefing(session, permit.id)
    for name in (LEADER, CREW_MATE):
        async with world.session() as session:
            await briefings.sign_as_crew(
                session,
                world.storage,
                world.supervisor,
                briefing.id,
                world.worker(name),
                signature_in(name),
                DEVICE,
            )
    async with world.session() as session:
        assert (await briefings.briefing_status(session, permit.id)).complete
    assert not {f for f in await start_problems() if f[0].startswith("briefing")}

    # Readings that cannot be right are refused outright.
    with pytest.raises(RulesBroken) as refused:
        await act(
            world.ehs,
            services.record_gas_analysis,
            _gas(at.at(0), ("methane", 120, "percent_vol")),
            now=start_at,
        )
    assert _problems(refused) == {("gas.out_of_range", "§5.3", "methane")}
    # A sample 40 minutes old is stale (§5.3.1c).
    await act(world.ehs, services.record_gas_analysis, _gas(at.at(-35), *CLEAN_AIR), now=start_at)
    assert ("gas.sample_stale", "§5.3.1c", None) in await start_problems()
    # A failed sample: methane 0.6 % v/v (LEL 5 %, limit 0.5 %, §5.3.2).
    failed = await act(
        world.ehs,
        services.record_gas_analysis,
        _gas(at.at(0), ("methane", 0.6, "percent_vol")),
        now=start_at,
    )
    assert failed.passed is False
    assert failed.violations[0]["rule"] == "gas.flammable"
    assert ("gas.failed", "§5.3.2", None) in await start_problems()
    # Clean air, measures confirmed: work starts.
    await act(world.ehs, services.record_gas_analysis, _gas(at.at(2), *CLEAN_AIR), now=start_at)
    assert await start_problems() == {(p, None, None) for p in ["checklist.confirmed"]}
    confirmed = await world.confirm(permit.id, now=start_at)
    assert all(item["confirmed_by"] == str(world.guardian.user_id) for item in confirmed.checklist)
    started = await act(world.guardian, services.start, now=start_at)
    assert (started.state, started.started_at) == ("active", start_at)
    # From the start, geofence watches the zone: the crew with a login of their own (the work
    # leader) and the guardian.
    assert await _watched(world, permit.id) == (
        "active",
        {(world.leader_login.user_id, "crew"), (world.guardian.user_id, "guardian")},
    )

    # The guardian stops the work; after 45 minutes level 1 needs a new analysis (§5.3.1d).
    suspended = await act(world.guardian, services.suspend, "动火点附近发现泄漏", now=at.at(60))
    assert (suspended.state, suspended.paused_at) == ("suspended", at.at(60))
    assert (await _watched(world, permit.id))[0] == "suspended"
    with pytest.raises(RulesBroken) as refused:
        await act(world.guardian, services.resume, now=at.at(105))
    assert _problems(refused) == {("gas.reanalysis_pause", "§5.3.1d", None)}
    await act(world.ehs, services.record_gas_analysis, _gas(at.at(100), *CLEAN_AIR), now=at.at(105))
    resumed = await act(world.guardian, services.resume, now=at.at(106))
    assert (resumed.state, resumed.paused_at) == ("active", None)

    # The work leader reports the work done; EHS accepts it (完工验收, §4.15) and it closes.
    with pytest.raises(NotFound):
        await act(world.guardian, services.complete, now=at.at(200))
    completed = await act(world.leader_login, services.complete, now=at.at(200))
    assert completed.state == "completed"
    closed = await act(world.ehs, services.accept, "现场清理完毕", now=at.at(220))
    assert (closed.state, closed.closed_at) == ("closed", at.at(220))
    assert (await _watched(world, permit.id))[0] == "closed"
    on_site = {"start", "suspend", "resume", "complete", "accept", "gas_analysed"}
    actions = [e.action for e in await _ledger(world, permit.id) if e.action[7:] in on_site]
    assert actions[-6:] == [
        "permit.start",
        "permit.suspend",
        "permit.gas_analysed",
        "permit.resume",
        "permit.complete",
        "permit.accept",
    ]
    async with world.session() as session:
        report = await session.run_sync(verify_chain)
    assert report.ok and report.entries_checked > 20


async def _watched(
    world: PermitWorld, permit_id: uuid.UUID
) -> tuple[str, set[tuple[uuid.UUID, str]]]:
    async with world.session() as session:
        watch = await session.scalar(select(Watch).where(Watch.id == permit_id))
        assert watch is not None
        members = (
            await session.execute(select(WatchMember).where(WatchMember.watch_id == permit_id))
        ).scalars()
        return watch.state, {(member.user_id, member.role) for member in members}


# --- revisions (§4.16, §4.18) ----------------------------------------------------------------


async def test_a_revision_is_a_new_version_that_supersedes_the_approved_one(
    world: PermitWorld,
) -> None:
    at = window()
    first = await world.approved(world.permit_in(WorkType.HEIGHT, at), now=at.now)
    async with world.session() as session:
        actor = await services.actor_for(session, world.contractor_admin)
        second = await services.revise(session, actor, first.id, now=at.now)
    assert (second.version, second.number, second.state) == (2, first.number, "draft")
    assert second.supersedes_id == first.id and second.content_hash is None
    # Only one open revision at a time; the draft is edited, the approved one is not.
    with pytest.raises(Conflict) as refused:
        async with world.session() as session:
            actor = await services.actor_for(session, world.contractor_admin)
            await services.revise(session, actor, first.id, now=at.now)
    assert _rules(refused) == {"revision.open"}
    changed = msgspec_replace(world.permit_in(WorkType.HEIGHT, at), work_content="更换两只阀门")
    async with world.session() as session:
        actor = await services.actor_for(session, world.contractor_admin)
        await services.update_permit(session, actor, second.id, changed, now=at.now)
    assert (await world.get(first.id)).state == "approved"  # in force until the new one is
    await world.submit(second.id, now=at.now)
    approved = await world.approve_all(second.id, now=at.now)
    assert (approved.state, approved.number, approved.version) == ("approved", first.number, 2)
    old = await world.get(first.id)
    assert old.state == "superseded"
    assert approved.content_hash != old.content_hash
    # A superseded version cannot be revised again (§4.16).
    with pytest.raises(Conflict) as refused:
        async with world.session() as session:
            actor = await services.actor_for(session, world.contractor_admin)
            await services.revise(session, actor, first.id, now=at.now)
    assert _problems(refused) == {("permit.revisable", "§4.16", None)}


# --- simultaneous work in a zone (§4.7, §7.6, §7.10) -----------------------------------------


async def test_conflicts_are_flagged_or_refused(world: PermitWorld) -> None:
    at = window()
    hot = await world.draft(world.permit_in(WorkType.HOT_WORK, at), now=at.now)
    await world.submit(hot.id, now=at.now)
    # Height work in the same zone at the same time: flagged for the approvers, not refused.
    height = await world.draft(world.permit_in(WorkType.HEIGHT, at), now=at.now)
    await world.submit(height.id, now=at.now)
    [submitted] = [e for e in await _ledger(world, height.id) if e.action == "permit.submit"]
    [flag] = submitted.payload["flags"]
    assert (flag["rule"], flag["clause"], flag["params"]["other"]) == (
        "conflict.same_zone",
        "§4.7",
        str(hot.id),
    )
    # A blind plate 19 m from the hot work: refused (§7.6).
    near = await world.draft(world.permit_in(WorkType.BLIND_PLATE, at, zone="Z2"), now=at.now)
    with pytest.raises(RulesBroken) as refused:
        await world.submit(near.id, now=at.now)
    assert _rules(refused) == {"conflict.hot_work_near_blind_plate"}
    assert {p.clause for p in refused.value.problems} == {"§7.6"}
    # Far away it is fine; a second blind plate on the same pipeline is not (§7.10).
    far = await world.draft(world.permit_in(WorkType.BLIND_PLATE, at, zone="Z3"), now=at.now)
    await world.submit(far.id, now=at.now)
    same = await world.draft(
        world.permit_in(WorkType.BLIND_PLATE, at, zone="Z3", blind_id="MB-08"), now=at.now
    )
    with pytest.raises(RulesBroken) as refused:
        await world.submit(same.id, now=at.now)
    assert _rules(refused) == {"conflict.same_pipeline"}
    assert refused.value.problems[0].clause == "§7.10"
    # Another pipeline in the same zone: only flagged.
    other = await world.draft(
        world.permit_in(WorkType.BLIND_PLATE, at, zone="Z3", pipeline_id="P-3001"), now=at.now
    )
    assert (await world.submit(other.id, now=at.now)).state == "submitted"
    # A window that does not overlap conflicts with nothing.
    later = Window(at.end + timedelta(hours=1), at.end + timedelta(hours=3))
    clear = await world.draft(world.permit_in(WorkType.BLIND_PLATE, later, zone="Z2"), now=at.now)
    await world.submit(clear.id, now=at.now)
    [entry] = [e for e in await _ledger(world, clear.id) if e.action == "permit.submit"]
    assert entry.payload["flags"] == []


# --- the beat --------------------------------------------------------------------------------


@pytest.fixture
def eager_worker(any_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tasks take the worker's database from the process; here it is the test's."""
    monkeypatch.setattr("infra.tasks.worker_database", lambda: any_db)


def _watch(world: PermitWorld) -> dict[str, int]:
    return permits_watch.apply(kwargs={"tenant_id": str(world.tenant.id)}).get()


@pytest.mark.usefixtures("eager_worker")
async def test_the_beat_escalates_late_steps_and_expires_lapsed_permits(
    world: PermitWorld,
) -> None:
    real_now = utcnow()
    at = window()
    # Submitted two hours ago: the unit's step has been waiting an hour longer than allowed.
    permit = await world.draft(world.permit_in(WorkType.HEIGHT, at), now=real_now)
    await world.submit(permit.id, now=real_now - timedelta(hours=2))
    await world.decide(permit.id, now=real_now - timedelta(hours=2))
    # A permit whose window ended an hour ago, never approved.
    past = Window(real_now - timedelta(hours=5), real_now - timedelta(hours=1))
    lapsed = await world.draft(world.permit_in(WorkType.HEIGHT, past, zone="Z3"), now=past.now)
    await world.submit(lapsed.id, now=past.now)
    before = len(await _notifications(world))

    # The lapsed permit expires first, so its late step is not chased.
    assert _watch(world) == {"escalated": 1, "expired": 1, "monitoring_overdue": 0}
    steps = await world.steps(permit.id)
    assert (steps[1].status, steps[1].escalations) == ("pending", 1)
    # The unit supervisor's step goes up to EHS, who is told and may now decide it.
    fresh = (await _notifications(world))[before:]
    assert str(world.ehs.user_id) in {n["recipient"] for n in fresh}
    assert all(":escalated:" in n["idempotency_key"] for n in fresh)
    escalations = [
        e for e in await _ledger(world, permit.id) if e.action == "permit.step_escalated"
    ]
    assert escalations[0].payload["to_role"] == "ehs_officer"
    expired = await world.get(lapsed.id)
    assert expired.state == "expired"
    assert {s.status for s in await world.steps(lapsed.id)} == {"cancelled"}
    # Nothing twice: the new due time has not passed, the expired permit is final.
    assert _watch(world) == {"escalated": 0, "expired": 0, "monitoring_overdue": 0}
    decided = await world.decide(permit.id, now=utcnow(), by=world.ehs)
    assert decided.state == "in_approval"


# --- isolation -------------------------------------------------------------------------------


async def test_another_tenant_cannot_see_decide_or_list_the_permits(
    world: PermitWorld, any_db: Database, factory: TenantFactory
) -> None:
    at = window()
    permit = await world.draft(world.permit_in(WorkType.HOT_WORK, at), now=at.now)
    await world.submit(permit.id, now=at.now)
    other = await factory.create(any_db, plants=("P1",), users=())
    async with in_tenant(any_db, other.id) as session:
        user = await tenant_services.create_user(
            session, email=f"ehs@{other.slug}.example", name="他人", password=None
        )
        await tenant_services.grant_role(session, user_id=user.id, role=Role.EHS_OFFICER)
    stranger = principal(other, user.id, Role.EHS_OFFICER, name="他人")
    async with in_tenant(any_db, other.id) as session:
        actor = await services.actor_for(session, stranger)
        with pytest.raises(NotFound):
            await services.get_permit(session, actor, permit.id)
        with pytest.raises(NotFound):
            await services.decide(session, actor, permit.id, DecisionIn(decision="approve"))
        with pytest.raises(NotFound):
            await services.accept(session, actor, permit.id, "", now=at.now)
        assert await services.list_permits(session, actor, services.PermitFilter()) == []
        assert await services.steps_of(session, permit.id) == []
    # In its own tenant the EHS officer lists it.
    async with world.session() as session:
        actor = await services.actor_for(session, world.ehs)
        assert [
            p.id for p in await services.list_permits(session, actor, services.PermitFilter())
        ] == [permit.id]
    if any_db.async_engine.dialect.name == "postgresql":
        # Row-level security alone, without the ORM's tenant filter, hides every permit row.
        async with in_tenant(any_db, other.id) as session:
            for table in ("permits", "permit_crew", "approval_steps", "permit_counters"):
                assert await session.scalar(text(f"SELECT count(*) FROM {table}")) == 0, table
        async with world.session() as session:
            assert await session.scalar(text("SELECT count(*) FROM permits")) == 1


def msgspec_replace(data: Any, **changes: Any) -> Any:
    return msgspec.structs.replace(data, **changes)
