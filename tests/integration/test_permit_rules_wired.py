"""The GB 30871 rules of ``permits.rules`` as the product applies them: each test drives the
services the portal calls (submit, approve, resume, accept, edit, the beat) and checks the
refusal by its rule, the clause it cites and the person or item it concerns.

Together with ``test_permits.py`` these show that every check the rules module offers is one the
product runs, at the point of the permit's life where the standard asks for it.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

import msgspec
import pytest
from sqlalchemy import select

from geofence import tracking
from geofence.schemas import GpsCheckIn
from infra.audit import AuditEntry
from infra.db import Database
from infra.errors import Conflict, DomainError, RulesBroken
from infra.outbox import OutboxMessage
from infra.settings import Settings
from infra.tasks import worker_settings
from onboarding.catalogue import WorkType
from permits import services
from permits.catalogue import VIDEO_MEASURE
from permits.models import Permit
from permits.rules import GasUnit, RecordKind, retained_until
from permits.schemas import GasAnalysisIn, PermitIn, ReadingIn
from tenants.access import Principal
from tests.factories import TenantFactory
from tests.permit_factories import (
    CENTRE,
    CREW_MATE,
    PLANT_TZ,
    SHORT_CERT,
    PermitWorld,
    Window,
    window,
)

CLEAN_AIR = (("methane", 0.1, "percent_vol"), ("oxygen", 20.9, "percent_vol"))


@pytest.fixture
async def world(any_db: Database, any_settings: Settings, factory: TenantFactory) -> PermitWorld:
    return await PermitWorld.create(any_db, any_settings, factory)


def _problems(
    error: pytest.ExceptionInfo[DomainError],
) -> set[tuple[str, str, str | None, str | None]]:
    return {(p.field, p.rule, p.clause, p.subject) for p in error.value.problems}


def _gas(sampled_at: datetime) -> GasAnalysisIn:
    return GasAnalysisIn(
        sampled_at=sampled_at,
        point="人孔上、中、下部",
        readings=[ReadingIn(gas=g, value=v, unit=GasUnit(u)) for g, v, u in CLEAN_AIR],
        analyst="化验员王芳",
        instrument="MX6 四合一",
    )


async def _act(
    world: PermitWorld, who: Principal, call: Any, permit_id: uuid.UUID, *args: Any, now: datetime
) -> Permit:
    async with world.session() as session:
        actor = await services.actor_for(session, who)
        return await call(session, actor, permit_id, *args, now=now)


async def _started(world: PermitWorld, data: PermitIn, at: Window) -> Permit:
    """Approved, briefed, measures confirmed, gas analysed where the type asks, started at the
    window's start by the guardian."""
    permit = await world.approved(data, now=at.now)
    await world.brief(permit.id)
    await world.confirm(permit.id, now=at.at(-5))
    if data.details.__struct_config__.tag in ("hot_work", "confined_space"):
        await _act(
            world,
            world.ehs,
            services.record_gas_analysis,
            permit.id,
            _gas(at.at(-2)),
            now=at.at(-1),
        )
    return await _act(world, world.guardian, services.start, permit.id, now=at.at(0))


async def _submit_refused(
    world: PermitWorld, data: PermitIn, at: Window
) -> pytest.ExceptionInfo[RulesBroken]:
    permit = await world.draft(data, now=at.now)
    with pytest.raises(RulesBroken) as refused:
        await world.submit(permit.id, now=at.now)
    return refused


# --- on submission and approval --------------------------------------------------------------


async def test_4_6_related_permit_numbers_name_live_permits_of_their_type(
    world: PermitWorld,
) -> None:
    """§4.6: a related number names a type by its prefix; it must be a live permit of it."""
    at = window()
    missing = f"P1-LD-{at.now:%Y%m%d}-0001"
    data = msgspec.structs.replace(
        world.permit_in(WorkType.HOT_WORK, at), related_numbers=[missing, "见附件"]
    )
    refused = await _submit_refused(world, data, at)
    assert _problems(refused) == {
        ("related_numbers", "permit.related_missing", "§4.6", "temp_power")
    }
    power = await world.approved(world.permit_in(WorkType.TEMP_POWER, at, zone="Z3"), now=at.now)
    assert power.number == missing
    # A hot work number for the power permit's number is the wrong type: still missing.
    wrong = msgspec.structs.replace(data, related_numbers=[missing.replace("-LD-", "-DH-")])
    refused = await _submit_refused(world, wrong, at)
    assert _problems(refused) == {("related_numbers", "permit.related_missing", "§4.6", "hot_work")}
    linked = await world.draft(data, now=at.now)
    assert (await world.submit(linked.id, now=at.now)).state == "submitted"


async def test_7_11_one_blind_and_one_action_per_blind_plate_permit(world: PermitWorld) -> None:
    at = window()
    refused = await _submit_refused(
        world, world.permit_in(WorkType.BLIND_PLATE, at, blind_id="MB-07、MB-08"), at
    )
    assert _problems(refused) == {("details.blind_id", "blind_plate.one_action", "§7.11", None)}
    one = await world.draft(world.permit_in(WorkType.BLIND_PLATE, at, blind_id="MB-07"), now=at.now)
    assert (await world.submit(one.id, now=at.now)).state == "submitted"


async def test_6_8_the_confined_space_guardian_is_not_one_of_the_crew(world: PermitWorld) -> None:
    """§6.8: the guardian stays outside the space, so cannot be on the crew that enters it;
    other work follows §4.10 alone."""
    at = window()
    refused = await _submit_refused(
        world, world.permit_in(WorkType.CONFINED_SPACE, at, guardian_worker=CREW_MATE), at
    )
    assert _problems(refused) == {("guardian", "guardian.inside", "§6.8", CREW_MATE)}
    height = await world.draft(
        world.permit_in(WorkType.HEIGHT, at, guardian_worker=CREW_MATE), now=at.now
    )
    assert (await world.submit(height.id, now=at.now)).state == "submitted"


async def test_8_1_3_the_height_grade_keeps_the_rules_it_rests_on(world: PermitWorld) -> None:
    at = window()
    plain = await world.draft(world.permit_in(WorkType.HEIGHT, at), now=at.now)
    assert (plain.level, plain.level_reasons) == ("grade_2", ["height.grade_method_a"])
    cold = await world.draft(world.permit_in(WorkType.HEIGHT, at, hazards=["cold"]), now=at.now)
    assert (cold.level, cold.level_reasons) == (
        "grade_3",
        ["height.hazards", "height.grade_method_b"],
    )


# --- editing a permit that is no longer a draft -------------------------------------------------


async def test_4_18_a_submitted_permit_is_not_edited_and_4_16_names_what_needs_a_new_one(
    world: PermitWorld,
) -> None:
    at = window()
    data = world.permit_in(WorkType.HEIGHT, at)
    permit = await world.draft(data, now=at.now)
    await world.submit(permit.id, now=at.now)
    moved = msgspec.structs.replace(
        data,
        zone_id=world.zones["Z3"],
        planned_end=at.end + timedelta(hours=1),
        crew=[
            *data.crew,
            msgspec.structs.replace(data.crew[0], worker_id=world.worker(SHORT_CERT)),
        ],
    )
    with pytest.raises(Conflict) as refused:
        await _act(
            world, world.contractor_admin, services.update_permit, permit.id, moved, now=at.now
        )
    assert refused.value.status_code == 409
    assert _problems(refused) == {
        ("state", "permit.immutable", "§4.18", None),
        ("state", "permit.new_required", "§4.16", "location"),
        ("state", "permit.new_required", "§4.16", "scope"),
        ("state", "permit.new_required", "§4.16", "content"),
    }
    # Sending it back unchanged is an edit too.
    with pytest.raises(Conflict) as refused:
        await _act(
            world, world.contractor_admin, services.update_permit, permit.id, data, now=at.now
        )
    assert _problems(refused) == {("state", "permit.immutable", "§4.18", None)}


# --- on site -----------------------------------------------------------------------------------


async def test_6_5_confined_space_resumes_only_with_monitoring_recorded_in_the_last_2_hours(
    world: PermitWorld,
) -> None:
    at = window()
    permit = await _started(world, world.permit_in(WorkType.CONFINED_SPACE, at), at)
    await _act(world, world.guardian, services.suspend, permit.id, "换班", now=at.at(150))
    # A 10-minute pause needs no retest (§6.3f), but the last record is 2.5 h old (§6.5).
    with pytest.raises(RulesBroken) as refused:
        await _act(world, world.guardian, services.resume, permit.id, now=at.at(160))
    assert _problems(refused) == {("gas_analysis", "gas.monitoring_confined", "§6.5", None)}
    await _act(
        world, world.ehs, services.record_gas_analysis, permit.id, _gas(at.at(155)), now=at.at(158)
    )
    resumed = await _act(world, world.guardian, services.resume, permit.id, now=at.at(160))
    assert resumed.state == "active"


async def _alerts(world: PermitWorld) -> list[dict[str, Any]]:
    async with world.session() as session:
        rows = await session.scalars(
            select(OutboxMessage).where(OutboxMessage.topic == "notification")
        )
        return [row.payload for row in rows if row.payload["kind"] == "alert_raised"]


async def _ledger(world: PermitWorld, permit_id: uuid.UUID, action: str) -> list[AuditEntry]:
    async with world.session() as session:
        return list(
            (
                await session.scalars(
                    select(AuditEntry).where(
                        AuditEntry.subject_id == str(permit_id), AuditEntry.action == action
                    )
                )
            ).all()
        )


async def test_6_5_the_beat_tells_the_guardian_and_ehs_when_monitoring_is_overdue(
    world: PermitWorld,
) -> None:
    at = window()
    permit = await _started(world, world.permit_in(WorkType.CONFINED_SPACE, at), at)

    async def beat(minutes: float) -> int:
        async with world.session() as session:
            return await session.run_sync(
                lambda sync: services.watch_monitoring(sync, at.at(minutes))
            )

    assert await beat(110) == 0
    assert await _alerts(world) == []
    # The last record (2 minutes before the start) is more than 2 hours old.
    assert await beat(125) == 1
    alerts = await _alerts(world)
    assert {a["recipient"] for a in alerts} == {str(world.guardian.user_id), str(world.ehs.user_id)}
    assert {a["context"]["permit_number"] for a in alerts} == {permit.number}
    base = worker_settings().base_url.rstrip("/")
    assert {a["context"]["url"] for a in alerts} == {
        f"{base}/t/{world.tenant.slug}/permits/{permit.id}"
    }
    [entry] = await _ledger(world, permit.id, "permit.monitoring_overdue")
    assert [(f["rule"], f["clause"]) for f in entry.payload["flags"]] == [
        ("gas.monitoring_confined", "§6.5")
    ]
    # Still overdue five minutes later: found again, told once.
    assert await beat(130) == 1
    assert len(await _alerts(world)) == len(alerts)
    assert len(await _ledger(world, permit.id, "permit.monitoring_overdue")) == 1
    # A new record puts it right.
    await _act(
        world, world.ehs, services.record_gas_analysis, permit.id, _gas(at.at(131)), now=at.at(132)
    )
    assert await beat(135) == 0


async def test_4_10_a_guardian_who_checked_out_is_back_before_work_resumes(
    world: PermitWorld,
) -> None:
    """§4.10: when the guardian leaves, work stops; it resumes once the guardian is back."""
    at = window()
    permit = await _started(world, world.permit_in(WorkType.HEIGHT, at), at)
    here = GpsCheckIn(latitude=CENTRE[1], longitude=CENTRE[0], accuracy_m=10.0)
    async with world.session() as session:
        await tracking.check_in(
            session, world.settings, world.guardian.user_id, permit.id, here, at.at(1)
        )
    async with world.session() as session:
        await tracking.check_out(session, world.guardian.user_id, permit.id, at.at(30))
    await _act(world, world.supervisor, services.suspend, permit.id, "监护人离开", now=at.at(31))
    with pytest.raises(RulesBroken) as refused:
        await _act(world, world.supervisor, services.resume, permit.id, now=at.at(40))
    assert _problems(refused) == {("guardian", "guardian.left", "§4.10", None)}
    # The guardian resuming the work in person is back.
    resumed = await _act(world, world.guardian, services.resume, permit.id, now=at.at(41))
    assert resumed.state == "active"


async def test_4_15_and_5_2_11_special_hot_work_closes_only_with_its_video_kept(
    world: PermitWorld,
) -> None:
    at = window(hours=4)
    permit = await _started(
        world, world.permit_in(WorkType.HOT_WORK, at, requested_level="special"), at
    )
    assert permit.level == "special"
    await _act(world, world.leader_login, services.complete, permit.id, now=at.at(200))
    # The camera measure lost its confirmation: the film cannot be shown to exist.
    async with world.session() as session:
        stored = await session.get_one(Permit, permit.id)
        stored.checklist = [
            {**item, "confirmed_by": None} if item["code"] == VIDEO_MEASURE else item
            for item in stored.checklist
        ]
    with pytest.raises(RulesBroken) as refused:
        await _act(world, world.ehs, services.accept, permit.id, "现场清理完毕", now=at.at(220))
    assert _problems(refused) == {(f"checklist.{VIDEO_MEASURE}", "closure.video", "§5.2.11", None)}
    async with world.session() as session:
        stored = await session.get_one(Permit, permit.id)
        stored.checklist = [
            {**item, "confirmed_by": str(world.guardian.user_id)} for item in stored.checklist
        ]
    closed = await _act(
        world, world.ehs, services.accept, permit.id, "现场清理完毕", now=at.at(221)
    )
    assert closed.state == "closed"


# --- keeping records -----------------------------------------------------------------------------


async def test_B_3_a_permit_is_kept_a_year_after_it_closes(world: PermitWorld) -> None:
    """B.3: whatever deletes a permit or its records asks ``ensure_purgeable`` first (today
    only a draft's crew, on an edit, and a returned permit's steps are ever deleted)."""
    at = window()
    draft = await world.draft(world.permit_in(WorkType.HEIGHT, at, zone="Z2"), now=at.now)
    permit = await _started(world, world.permit_in(WorkType.HEIGHT, at), at)
    day = at.start.date()

    async def purge(target: uuid.UUID, today: date) -> None:
        async with world.session() as session:
            stored = await session.get_one(Permit, target)
            noon = datetime.combine(today, time(12), PLANT_TZ)
            await services.ensure_purgeable(session, stored, now=noon)

    # A draft was never issued.
    await purge(draft.id, day)
    # Work under way is kept a year from its end at least.
    with pytest.raises(RulesBroken) as refused:
        await purge(permit.id, day + timedelta(days=300))
    assert _problems(refused) == {("state", "retention.too_early", "B.3", None)}
    await _act(world, world.leader_login, services.complete, permit.id, now=at.at(200))
    await _act(world, world.ehs, services.accept, permit.id, "现场清理完毕", now=at.at(220))
    kept_until = retained_until(RecordKind.PERMIT, day)
    with pytest.raises(RulesBroken) as refused:
        await purge(permit.id, kept_until - timedelta(days=1))
    [problem] = refused.value.problems
    assert (problem.rule, problem.clause) == ("retention.too_early", "B.3")
    assert problem.params == {"until": kept_until.isoformat()}
    await purge(permit.id, kept_until)
