"""Retiring a plant (a site sold or shut down) through the services, on SQLite and PostgreSQL:
refused while its permits are still open, and afterwards the plant keeps its history but takes
no new permits, zones, inductions or roles, leaves the pickers and the plan's count, and a draft
kept there goes no further. Putting it back in service undoes all of it. Each change is in the
ledger; another tenant's plant is not found."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from geofence import services as zone_services
from geofence.schemas import CircleIn, ZoneIn
from infra.db import Database
from infra.errors import Conflict, InvalidInput, NotFound, RulesBroken
from infra.settings import Settings
from onboarding.catalogue import WorkType
from permits import services as permit_services
from permits.states import EDITABLE_STATES, FINAL_STATES, PermitState
from scoring import reports
from tenants import entitlements
from tenants import services as tenant_services
from tenants.entitlements import BillingPolicy
from tenants.models import Plant, Role
from tests.factories import TenantFactory, audit_actions
from tests.onboarding_factories import in_tenant
from tests.permit_factories import CENTRE, PLANT_TZ, PermitWorld, window
from tests.training_factories import induction_content
from training import services as training_services
from training.schemas import InductionIn


@pytest.fixture
async def world(any_db: Database, any_settings: Settings, factory: TenantFactory) -> PermitWorld:
    return await PermitWorld.create(any_db, any_settings, factory, induct=False)


def _rule(exc: pytest.ExceptionInfo[Exception]) -> tuple[str, str]:
    [problem] = exc.value.problems  # type: ignore[attr-defined]
    return problem.field, problem.rule


async def _retire(world: PermitWorld) -> Plant:
    async with world.session() as session:
        return await tenant_services.retire_plant(
            session, world.plant_id, actor_id=world.hosts[Role.TENANT_ADMIN].user_id
        )


def test_the_open_states_are_those_between_submission_and_an_end() -> None:
    """tenants reads the permit states by name; this keeps its list in step with permits'."""
    expected = {state.value for state in PermitState} - FINAL_STATES - EDITABLE_STATES
    assert expected == tenant_services.OPEN_PERMIT_STATES


async def test_a_plant_with_open_permits_is_kept_until_they_end(world: PermitWorld) -> None:
    at = window()
    now = at.at(-120)
    kept_draft = await world.draft(world.permit_in(WorkType.HEIGHT, at), now=now)
    submitted = await world.draft(world.permit_in(WorkType.HEIGHT, at, zone="Z2"), now=now)
    await world.submit(submitted.id, now=now)

    with pytest.raises(Conflict) as refused:
        await _retire(world)
    assert _rule(refused) == ("plant_id", "plant.open_permits")
    assert refused.value.problems[0].params == {"count": 1}

    await world.decide(submitted.id, now=now, decision="reject", comment="改期")
    retired = await _retire(world)
    assert retired.retired_at is not None
    assert await audit_actions(world.database, world.tenant.id, "plant.") == [
        "plant.created",
        "plant.created",
        "plant.retired",
    ]
    again = await _retire(world)
    assert again.retired_at == retired.retired_at, "retiring twice changes nothing"

    # The draft kept at the plant stays a draft: its submission names the plant's retirement.
    with pytest.raises(RulesBroken) as gated:
        await world.submit(kept_draft.id, now=now)
    assert ("plant_id", "plant.retired") in {(p.field, p.rule) for p in gated.value.problems}
    assert (await world.get(kept_draft.id)).state == PermitState.DRAFT


async def test_a_retired_plant_takes_no_new_work_and_leaves_the_count(world: PermitWorld) -> None:
    at = window()
    now = at.at(-120)
    await _retire(world)

    with pytest.raises(InvalidInput) as permit:
        await world.draft(world.permit_in(WorkType.HEIGHT, at), now=now)
    assert _rule(permit) == ("plant_id", "plant.retired")
    async with world.session() as session:
        with pytest.raises(InvalidInput) as zone:
            await zone_services.create_zone(
                session,
                ZoneIn(
                    plant_id=world.plant_id,
                    name="新区",
                    shape=CircleIn(center=CENTRE, radius_m=30),
                ),
                actor_id=world.ehs.user_id,
            )
    assert _rule(zone) == ("plant_id", "plant.retired")
    async with world.session() as session:
        with pytest.raises(InvalidInput) as induction:
            await training_services.create_induction(
                session,
                world.ehs,
                InductionIn(plant_id=world.plant_id, content=induction_content()),
            )
    assert _rule(induction) == ("plant_id", "plant.retired")
    async with world.session() as session:
        with pytest.raises(InvalidInput) as grant:
            await tenant_services.grant_role(
                session,
                user_id=world.ehs.user_id,
                role=Role.UNIT_SUPERVISOR,
                plant_id=world.plant_id,
            )
    assert _rule(grant) == ("plant_id", "plant.retired")

    async with world.session() as session:
        every = [plant.code for plant in await tenant_services.list_plants(session)]
        current = [
            plant.code for plant in await tenant_services.list_plants(session, current_only=True)
        ]
        assert (every, current) == (["P1", "P2"], ["P2"])
        assert await entitlements.plant_count(session) == 1

    async with world.session() as session:
        back = await tenant_services.reinstate_plant(
            session,
            world.plant_id,
            BillingPolicy.from_settings(world.settings),
            actor_id=world.hosts[Role.TENANT_ADMIN].user_id,
        )
        assert back.retired_at is None
        assert await entitlements.plant_count(session) == 2
    permit_back = await world.draft(world.permit_in(WorkType.HEIGHT, at), now=now)
    assert permit_back.state == PermitState.DRAFT
    ledger = await audit_actions(world.database, world.tenant.id, "plant.")
    assert ledger[-2:] == ["plant.retired", "plant.reinstated"]


async def test_another_tenants_plant_is_not_found(
    world: PermitWorld, factory: TenantFactory
) -> None:
    other = await factory.create(world.database, plants=("Q1",))
    theirs = other.plants["Q1"]
    async with world.session() as session:
        with pytest.raises(NotFound):
            await tenant_services.retire_plant(session, theirs)
        with pytest.raises(NotFound):
            await tenant_services.reinstate_plant(
                session, theirs, BillingPolicy.from_settings(world.settings)
            )
    async with in_tenant(world.database, other.id) as session:
        plant = await session.get_one(Plant, theirs)
        assert plant.retired_at is None


@pytest.mark.postgres
@pytest.mark.parametrize("first", ["submit", "retire"])
async def test_a_submission_and_a_retirement_at_once_leave_no_open_permit_behind(
    pg_db: Database, pg_settings: Settings, factory: TenantFactory, first: str
) -> None:
    """Submitting share-locks the plant and retiring locks it: whichever holds it first
    finishes, and the other then sees its permit or its retirement."""
    world = await PermitWorld.create(pg_db, pg_settings, factory, induct=False)
    at = window()
    draft = await world.draft(world.permit_in(WorkType.HEIGHT, at), now=at.at(-120))
    started = asyncio.Event()

    async def submit() -> str:
        try:
            async with world.session() as session:
                actor = await permit_services.actor_for(session, world.contractor_admin)
                if first == "submit":
                    await permit_services.submit(session, actor, draft.id, now=at.at(-120))
                    started.set()
                    await asyncio.sleep(0.3)  # hold the plant while the retirement waits
                else:
                    await started.wait()
                    await permit_services.submit(session, actor, draft.id, now=at.at(-120))
        except RulesBroken as refused:
            return next(p.rule for p in refused.problems if p.field == "plant_id")
        return "submitted"

    async def retire() -> str:
        try:
            async with world.session() as session:
                if first == "retire":
                    await tenant_services.retire_plant(session, world.plant_id)
                    started.set()
                    await asyncio.sleep(0.3)  # hold the plant while the submission waits
                else:
                    await started.wait()
                    await tenant_services.retire_plant(session, world.plant_id)
        except Conflict as refused:
            return refused.problems[0].rule
        return "retired"

    outcomes = await asyncio.gather(submit(), retire())
    if first == "submit":
        assert outcomes == ["submitted", "plant.open_permits"]
    else:
        assert outcomes == ["plant.retired", "retired"]
    assert (await world.get(draft.id)).state == (
        PermitState.SUBMITTED if first == "submit" else PermitState.DRAFT
    )


async def test_hq_compares_a_retired_plant_only_over_periods_it_was_in(
    world: PermitWorld,
) -> None:
    async with world.session() as session:
        await tenant_services.retire_plant(session, world.tenant.plants["P2"])
    today = datetime.now(PLANT_TZ).date()

    def codes(start: date, days: int) -> Callable[[Session], list[str]]:
        def compare(sync: Session) -> list[str]:
            rows = reports.compare_plants(sync, start, start + timedelta(days=days))
            return [row.code for row in rows]

        return compare

    async with world.session() as session:
        assert await session.run_sync(codes(today - timedelta(days=30), 31)) == ["P1", "P2"]
        assert await session.run_sync(codes(today + timedelta(days=1), 7)) == ["P1"]
