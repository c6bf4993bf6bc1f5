"""The HQ rollups against the naive computation (:mod:`scoring.naive`) on random data.

Random permits of three plants (Shanghai, New York, Berlin: two zones with daylight saving and
plant-local midnights far from Shanghai's), random types, companies, states and windows (many
starting close to plant-local midnight), with approvals, gas analyses, crews and briefing
signatures, check-ins and check-outs by GPS and QR, alerts with and without a job, resolved or
not, findings with and without a permit, and ratings — all made through the ORM in ordinary
sessions, so the flush hook marks their days stale. ``reports.compare_plants`` (which rebuilds
the stale days) must then equal the raw tables exactly, counts and histograms, minutes within
float tolerance; and still after events that arrive twice or late.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import random
import secrets
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from geofence import services as zone_services
from geofence.models import Alert, AlertKind, AlertState, CheckIn, Watch, WatchMember
from geofence.schemas import CircleIn, ZoneIn
from infra.db import Database
from infra.settings import Settings
from infra.uploads import StoredObject
from onboarding.catalogue import WorkType
from permits.catalogue import GAS_ANALYSED
from permits.models import GasAnalysis, Permit, PermitCrewMember
from permits.states import PermitState
from scoring import naive, reports, rollups, sketch
from scoring.models import (
    DailyRollup,
    Finding,
    PlantDailyRollup,
    PlantMonthlyRollup,
    Rating,
    StaleDay,
)
from scoring.rollups import MEASURE_NAMES, rebuild_range
from tenants import services as tenant_services
from tenants.models import Plant, Role
from tests.factories import SeededTenant, TenantFactory
from tests.onboarding_factories import OnboardingFactory, in_tenant
from training.models import Briefing, BriefingSignature

pytestmark = pytest.mark.postgres

ZONES = {"P1": "Asia/Shanghai", "P2": "America/New_York", "P3": "Europe/Berlin"}
# Forty plant-local days across the end of daylight saving time in Europe and America, with
# November whole (read from the monthly rollups) and days of October and December around it.
FIRST_DAY = date(2026, 10, 24)
DAYS = 40
PERMITS = 240
NOVEMBER = (date(2026, 11, 1), date(2026, 12, 1))
# Closed jobs are most of what HQ looks at; every state occurs.
STATES = {state.value: 3 for state in PermitState} | {"closed": 30, "completed": 6}
TYPES = [work_type.value for work_type in WorkType]
# Started permits have all been approved; the others stop somewhere before.
STARTED = {"active", "suspended", "completed", "closed", "expired", "cancelled"}
APPROVED = STARTED | {"approved"}
SUBMITTED = APPROVED | {"submitted", "in_approval", "rejected", "superseded"}


TIERS = {
    PermitCrewMember: 1,
    Briefing: 1,
    GasAnalysis: 1,
    Watch: 1,
    Rating: 1,
    Finding: 1,
    BriefingSignature: 2,
    WatchMember: 2,
    Alert: 2,
    CheckIn: 3,
}


@dataclasses.dataclass
class World:
    database: Database
    tenant: SeededTenant
    ehs_id: uuid.UUID
    zones: dict[uuid.UUID, ZoneInfo]
    zone_of_plant: dict[uuid.UUID, uuid.UUID]
    contractors: dict[uuid.UUID, list[uuid.UUID]]
    users: list[uuid.UUID]
    image_id: uuid.UUID

    def session(self):  # type: ignore[no-untyped-def]
        return in_tenant(self.database, self.tenant.id)


async def _world(database: Database, settings: Settings, factory: TenantFactory) -> World:
    tenant = await factory.create(database, plants=tuple(ZONES), users=((Role.EHS_OFFICER, None),))
    ehs_id = tenant.user(Role.EHS_OFFICER).id
    onboarding = OnboardingFactory(database, settings)
    contractors = {}
    for _ in range(2):
        company = await onboarding.register(tenant)
        contractors[company.contractor_id] = [
            await onboarding.add_worker(company, name) for name in ("张三", "李四", "王五")
        ]
    zone_of_plant = {}
    async with in_tenant(database, tenant.id) as session:
        for code, plant_id in tenant.plants.items():
            plant = await session.get_one(Plant, plant_id)
            plant.timezone = ZONES[code]
            zone = await zone_services.create_zone(
                session,
                ZoneIn(
                    plant_id=plant_id,
                    name=f"{code}-Z",
                    shape=CircleIn(center=(121.47, 31.23), radius_m=50),
                ),
                actor_id=ehs_id,
            )
            zone_of_plant[plant_id] = zone.id
        users = []
        for index in range(3):
            user = await tenant_services.create_user(
                session,
                email=f"crew{index}.{secrets.token_hex(3)}@{tenant.slug}.example",
                name=f"工人{index}",
                password=None,
            )
            users.append(user.id)
        image = StoredObject(
            kind="signature",
            key=f"signatures/{uuid.uuid4()}.png",
            content_type="image/png",
            size=10,
            sha256="0" * 64,
        )
        session.add(image)
        await session.flush()
        image_id = image.id
    return World(
        database=database,
        tenant=tenant,
        ehs_id=ehs_id,
        zones={plant_id: ZoneInfo(ZONES[code]) for code, plant_id in tenant.plants.items()},
        zone_of_plant=zone_of_plant,
        contractors=contractors,
        users=users,
        image_id=image_id,
    )


def _local(day: date, zone: ZoneInfo, minutes: float) -> datetime:
    return (datetime.combine(day, time.min, zone) + timedelta(minutes=minutes)).astimezone(UTC)


def _minutes(rng: random.Random) -> float:
    """Minutes into a plant-local day; a third of them within half an hour of midnight."""
    if rng.random() < 1 / 3:
        return rng.choice((rng.uniform(0, 30), rng.uniform(1410, 1440)))
    return rng.uniform(0, 1440)


def _signature(world: World, briefing: Briefing, worker_id: uuid.UUID, at: datetime) -> Any:
    return BriefingSignature(
        briefing_id=briefing.id,
        worker_id=worker_id,
        device="briefer_tablet",
        signer_user_id=None,
        full_name="工人",
        consent="我已接受安全交底",
        content_hash=briefing.content_hash,
        signed_at=at,
        strokes={"strokes": []},
        strokes_sha256=secrets.token_hex(32),
        image_id=world.image_id,
        image_sha256="0" * 64,
        record_hash=secrets.token_hex(32),
        ledger_seq=0,
    )


def _permit(world: World, rng: random.Random, index: int) -> tuple[Permit, list[Any]]:
    """A random permit and what hangs from it: crew, briefing, gas, watch, people, check-ins,
    alerts, findings and a rating."""
    plant_id = rng.choice(list(world.zones))
    contractor_id = rng.choice(list(world.contractors))
    workers = world.contractors[contractor_id]
    work_type = rng.choice(TYPES)
    state = rng.choices(list(STATES), list(STATES.values()))[0]
    start = _local(FIRST_DAY + timedelta(days=rng.randrange(DAYS)), world.zones[plant_id], 0)
    start += timedelta(minutes=_minutes(rng))
    end = start + timedelta(hours=rng.choice((2, 4, 8)))
    submitted = start - timedelta(hours=rng.uniform(1, 72)) if state in SUBMITTED else None
    approved = None
    if state in APPROVED and submitted is not None:
        # Mostly minutes to hours; now and then beyond two days, the sketch's open bucket.
        wait = rng.choice((rng.uniform(0, 30), rng.uniform(0, 600), rng.uniform(0, 4000)))
        approved = submitted + timedelta(minutes=wait)
    started = completed = closed = None
    if state in STARTED and rng.random() < 0.9:
        started = start + timedelta(minutes=rng.uniform(-20, 40))
        if approved is not None and rng.random() < 0.9:
            started = max(started, approved + timedelta(minutes=1))
    if state in ("completed", "closed") and started is not None:
        completed = started + timedelta(hours=rng.uniform(0.5, 6))
    if state == "closed" and completed is not None:
        closed = completed + timedelta(minutes=rng.uniform(5, 120))
    permit = Permit(
        plant_id=plant_id,
        zone_id=world.zone_of_plant[plant_id],
        contractor_id=contractor_id,
        work_type=work_type,
        number=f"R-{index:05d}",
        state=state,
        location="装置区",
        work_content="检修",
        planned_start=start,
        planned_end=end,
        work_leader_id=workers[0],
        guardian_user_id=world.ehs_id,
        applicant_id=world.ehs_id,
        submitted_at=submitted,
        approved_at=approved,
        started_at=started,
        completed_at=completed,
        closed_at=closed,
    )
    permit.id = uuid.uuid4()
    related: list[Any] = []
    crew = rng.sample(workers, rng.randrange(len(workers) + 1))
    related += [PermitCrewMember(permit_id=permit.id, worker_id=w) for w in crew]
    if crew and rng.random() < 0.8:
        briefing = Briefing(
            permit_id=permit.id,
            permit_number=permit.number,
            plant_id=plant_id,
            work_type=work_type,
            content={},
            content_hash=secrets.token_hex(32),
            briefer_id=world.ehs_id,
        )
        briefing.id = uuid.uuid4()
        related.append(briefing)
        signers = crew if rng.random() < 0.7 else crew[1:]
        related += [_signature(world, briefing, w, start) for w in signers]
    if work_type in GAS_ANALYSED and rng.random() < 0.8:
        base = started or start
        for _ in range(rng.randrange(1, 3)):
            related.append(
                GasAnalysis(
                    permit_id=permit.id,
                    sampled_at=base - timedelta(minutes=rng.uniform(-10, 50)),
                    point="罐内",
                    readings=[],
                    analyst="分析员",
                    instrument="四合一",
                    passed=rng.random() < 0.85,
                    recorded_by=world.ehs_id,
                )
            )
    related += _watch(world, rng, permit)
    for _ in range(rng.choice((0, 0, 1, 2))):
        related.append(_alert(rng, plant_id, permit.id, start))
    if rng.random() < 0.15:
        related.append(_finding(world, rng, plant_id, contractor_id, permit.id, start))
    if state in ("closed", "completed", "expired") and rng.random() < 0.75:
        related.append(
            Rating(
                permit_id=permit.id,
                plant_id=plant_id,
                contractor_id=contractor_id,
                scores={"safety": 90},
                weights={"safety": 100},
                rated_by=world.ehs_id,
                rated_at=end,
                appeal_until=end + timedelta(days=7),
            )
        )
    return permit, related


def _watch(world: World, rng: random.Random, permit: Permit) -> list[Any]:
    watch = Watch(
        plant_id=permit.plant_id,
        zone_id=permit.zone_id,
        label=permit.number or "",
        starts_at=permit.planned_start,
        ends_at=permit.planned_end,
    )
    watch.id = permit.id
    rows: list[Any] = [watch]
    for user_id in rng.sample(world.users, rng.randrange(len(world.users) + 1)):
        member = WatchMember(watch_id=watch.id, user_id=user_id, name="工人")
        member.id = uuid.uuid4()
        rows.append(member)
        at = permit.planned_start + timedelta(minutes=rng.uniform(-30, 30))
        for _ in range(rng.randrange(6)):
            rows.append(
                CheckIn(
                    watch_id=watch.id,
                    member_id=member.id,
                    direction=rng.choice(("in", "in", "out")),
                    method=rng.choice(("gps", "qr")),
                    at=at,
                )
            )
            # Sometimes two events in the same second: the pairing must not depend on luck.
            at += timedelta(minutes=rng.choice((0, rng.uniform(1, 180))))
    return rows


def _alert(rng: random.Random, plant_id: uuid.UUID, watch_id: uuid.UUID | None, near: datetime):
    opened = near + timedelta(minutes=rng.uniform(-90, 300))
    state = rng.choice([state.value for state in AlertState])
    responded = state != AlertState.OPEN.value and rng.random() < 0.9
    return Alert(
        plant_id=plant_id,
        kind=rng.choice([kind.value for kind in AlertKind]),
        condition=f"test:{uuid.uuid4()}",
        watch_id=watch_id,
        state=state,
        opened_at=opened,
        last_seen_at=opened,
        resolved_at=opened + timedelta(minutes=5) if state == "resolved" else None,
        violation=rng.random() < 0.3,
        response_seconds=rng.uniform(10, 3000) if responded else None,
    )


def _finding(
    world: World,
    rng: random.Random,
    plant_id: uuid.UUID,
    contractor_id: uuid.UUID,
    permit_id: uuid.UUID | None,
    near: datetime,
) -> Finding:
    return Finding(
        plant_id=plant_id,
        contractor_id=contractor_id,
        permit_id=permit_id,
        severity=rng.choice(("minor", "major", "critical")),
        description="未系安全带",
        observed_at=near + timedelta(minutes=rng.uniform(-60, 600)),
        recorded_by=world.ehs_id,
    )


async def _populate(world: World, seed: int) -> None:
    rng = random.Random(seed)
    for batch in range(4):
        async with world.session() as session:
            tiers: dict[int, list[Any]] = defaultdict(list)
            for index in range(batch * PERMITS // 4, (batch + 1) * PERMITS // 4):
                permit, related = _permit(world, rng, index)
                tiers[0].append(permit)
                for row in related:
                    tiers[TIERS[type(row)]].append(row)
            # No relationships are mapped, so the rows go in after the rows they point at.
            for tier in sorted(tiers):
                session.add_all(tiers[tier])
                await session.flush()
            # What belongs to no job counts on its own day.
            for _ in range(15):
                plant_id = rng.choice(list(world.zones))
                near = _local(
                    FIRST_DAY + timedelta(days=rng.randrange(-1, DAYS + 1)),
                    world.zones[plant_id],
                    _minutes(rng),
                )
                session.add(_alert(rng, plant_id, None, near))
                if rng.random() < 0.5:
                    contractor_id = rng.choice(list(world.contractors))
                    session.add(_finding(world, rng, plant_id, contractor_id, None, near))


async def _run(world: World, action: Callable[[Session], Any]) -> Any:
    async with world.session() as session:
        return await session.run_sync(action)


async def _assert_equal(
    world: World,
    start: date = FIRST_DAY,
    end: date = FIRST_DAY + timedelta(days=DAYS),
    plant_ids: list[uuid.UUID] | None = None,
) -> dict[uuid.UUID, naive.NaiveFigures]:
    def both(session: Session) -> tuple[list[reports.PlantRow], dict[Any, naive.NaiveFigures]]:
        return (
            reports.compare_plants(session, start, end, plant_ids),
            naive.plant_figures(session, start, end, plant_ids),
        )

    rows, raw = await _run(world, both)
    assert not await _run(world, lambda session: rollups.month_mismatches(session, start, end))
    assert {row.plant_id for row in rows} == set(raw) == set(plant_ids or world.zones)
    for row in rows:
        expected = raw[row.plant_id]
        found = naive.differences(row.figures.measures, expected)
        assert not found, f"{row.code}: " + "; ".join(found)
        assert row.figures.approval_p90_minutes == expected.approval_p90_sketch
    return raw


async def _approval_minutes(world: World) -> dict[uuid.UUID, list[float]]:
    """Each plant's approval times over the days, read permit by permit."""
    end = FIRST_DAY + timedelta(days=DAYS)

    async def read(session: AsyncSession) -> dict[uuid.UUID, list[float]]:
        found: dict[uuid.UUID, list[float]] = defaultdict(list)
        permits = await session.scalars(
            select(Permit).where(
                Permit.approved_at.is_not(None),
                Permit.state.not_in(("draft", "superseded")),
            )
        )
        for permit in permits:
            assert permit.approved_at is not None and permit.submitted_at is not None
            day = permit.planned_start.astimezone(world.zones[permit.plant_id]).date()
            if FIRST_DAY <= day < end:
                minutes = (permit.approved_at - permit.submitted_at).total_seconds() / 60
                found[permit.plant_id].append(minutes)
        return found

    async with world.session() as session:
        return await read(session)


@pytest.fixture
async def world(pg_db: Database, pg_settings: Settings, factory: TenantFactory) -> World:
    world = await _world(pg_db, pg_settings, factory)
    await _populate(world, seed=20261128)
    return world


async def test_rollups_equal_the_raw_tables(world: World) -> None:
    async with world.session() as session:
        stale = await session.scalar(select(func.count()).select_from(StaleDay))
        built = await session.scalar(select(func.count()).select_from(PlantDailyRollup))
    # The flush hook marked the days (most of them hold a job); nothing was built yet.
    assert stale and stale >= len(world.zones) * DAYS // 2 and built == 0

    raw = await _assert_equal(world)
    # The report built every marked day, and only marked days.
    async with world.session() as session:
        left = await session.scalar(select(func.count()).select_from(StaleDay))
        built = await session.scalar(select(func.count()).select_from(PlantDailyRollup))
    assert left == 0 and built and built <= stale
    assert sum(figures.permits for figures in raw.values()) > PERMITS // 2
    assert all(figures.full_loop for figures in raw.values())
    assert all(figures.finished > figures.full_loop for figures in raw.values())
    assert all(figures.work_minutes > 0 for figures in raw.values())
    assert all(0 < figures.phone_checkins < figures.checkins for figures in raw.values())

    # The sketch's p90 lies in the bucket of the exact nearest-rank p90; PostgreSQL's
    # interpolated p90 lies between that value's neighbours.
    minutes = await _approval_minutes(world)
    for plant_id, figures in raw.items():
        values = sorted(minutes[plant_id])
        assert len(values) == figures.approvals
        rank = values[max(0, -(-9 * len(values) // 10) - 1)]
        bucket = sketch.bucket_of(rank)
        low = sketch.EDGES[bucket - 1] if bucket else 0.0
        high = sketch.EDGES[bucket] if bucket < len(sketch.EDGES) else 2 * sketch.EDGES[-1]
        assert figures.approval_p90_sketch is not None
        assert low <= rank < high or bucket == len(sketch.EDGES)
        if bucket < len(sketch.EDGES):
            assert low < figures.approval_p90_sketch <= high
        position = 0.9 * (len(values) - 1)
        assert figures.approval_p90_exact is not None
        assert values[int(position)] - 1e-6 <= figures.approval_p90_exact
        assert figures.approval_p90_exact <= values[math.ceil(position)] + 1e-6

    # Parts of the range and of the plants: the days at the edges and the plant filter.
    plants = list(world.zones)
    await _assert_equal(world, FIRST_DAY + timedelta(days=3), FIRST_DAY + timedelta(days=4))
    await _assert_equal(world, FIRST_DAY + timedelta(days=2), FIRST_DAY + timedelta(days=7))
    await _assert_equal(world, FIRST_DAY - timedelta(days=2), FIRST_DAY, plants[1:])
    await _assert_equal(world, *NOVEMBER)
    await _assert_equal(world, NOVEMBER[0] - timedelta(days=1), NOVEMBER[1] + timedelta(days=2))
    await _assert_equal(world, NOVEMBER[0], NOVEMBER[1] + timedelta(days=1), plants[:1])


async def test_events_twice_or_late_keep_rollups_equal(world: World) -> None:
    await _assert_equal(world)
    rng = random.Random(7)

    # The same alerts updated again: acknowledged, then resolved as a violation.
    for change in (
        {"state": "acknowledged", "response_seconds": 120.0},
        {"state": "resolved", "violation": True, "response_seconds": 180.0},
    ):
        async with world.session() as session:
            alerts = (await session.scalars(select(Alert).order_by(Alert.id).limit(8))).all()
            for alert in alerts:
                for name, value in change.items():
                    setattr(alert, name, value)
        await _assert_equal(world)

    # The same rating flushed again, another withdrawn, a new one for an unrated closed job.
    async with world.session() as session:
        ratings = (await session.scalars(select(Rating).order_by(Rating.id).limit(2))).all()
        ratings[0].comment = "复核后维持"
        ratings[0].scores = {"safety": 80}
        await session.delete(ratings[1])
        rated = select(Rating.permit_id)
        unrated = await session.scalar(
            select(Permit).where(Permit.state == "closed", Permit.id.not_in(rated)).limit(1)
        )
        assert unrated is not None
        session.add(
            Rating(
                permit_id=unrated.id,
                plant_id=unrated.plant_id,
                contractor_id=unrated.contractor_id,
                scores={"safety": 95},
                weights={"safety": 100},
                rated_by=world.ehs_id,
                rated_at=unrated.planned_end,
                appeal_until=unrated.planned_end + timedelta(days=7),
            )
        )
    await _assert_equal(world)

    # A check-in (and its check-out) arriving days after the job, as a phone's queue delivers.
    async with world.session() as session:
        member = await session.scalar(select(WatchMember).order_by(WatchMember.id).limit(1))
        assert member is not None
        watch = await session.get_one(Watch, member.watch_id)
        session.add_all(
            CheckIn(
                watch_id=watch.id, member_id=member.id, direction=direction, method=method, at=at
            )
            for direction, method, at in (
                ("in", "gps", watch.starts_at + timedelta(minutes=1)),
                ("out", "qr", watch.starts_at + timedelta(minutes=95)),
            )
        )
    await _assert_equal(world)

    # Windows moved to other days, across plant-local midnight and by days.
    async with world.session() as session:
        permits = (
            await session.scalars(
                select(Permit).where(Permit.state.not_in(("draft",))).order_by(Permit.id).limit(6)
            )
        ).all()
        for permit in permits:
            shift = timedelta(days=rng.choice((-2, 1, 3)), minutes=rng.uniform(-600, 600))
            permit.planned_start += shift
            permit.planned_end += shift
    await _assert_equal(world)

    # A finding without a permit attached to one later, and a permit withdrawn to a draft.
    async with world.session() as session:
        finding = await session.scalar(select(Finding).where(Finding.permit_id.is_(None)).limit(1))
        permit = await session.scalar(select(Permit).where(Permit.state == "closed").limit(1))
        assert finding is not None and permit is not None
        finding.permit_id = permit.id
        other = await session.scalar(select(Permit).where(Permit.state == "approved").limit(1))
        assert other is not None
        other.state = PermitState.SUPERSEDED.value
    await _assert_equal(world)

    # Everything rebuilt from scratch gives the very same rows.
    def snapshot(session: Session) -> list[tuple[Any, ...]]:
        rows = []
        for model in (DailyRollup, PlantDailyRollup, PlantMonthlyRollup):
            for row in session.scalars(select(model)):
                day = row.month if model is PlantMonthlyRollup else row.day
                key = (model.__tablename__, day, row.plant_id)
                key += (row.work_type, row.contractor_id) if model is DailyRollup else ("", None)
                values = tuple(
                    round(value, 6) if isinstance(value, float) else value
                    for value in (getattr(row, name) for name in MEASURE_NAMES)
                )
                rows.append((*key, *values))
        return sorted(rows, key=repr)

    before = await _run(world, snapshot)
    rebuilt = await _run(
        world,
        lambda session: rebuild_range(
            session, FIRST_DAY - timedelta(days=5), FIRST_DAY + timedelta(days=DAYS + 5)
        ),
    )
    assert rebuilt == (DAYS + 10) * len(world.zones)
    assert await _run(world, snapshot) == before
    await _assert_equal(world)


def _portal(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PORTAL_DATABASE_URL": settings.database_url,
        "PORTAL_MIGRATION_DATABASE_URL": settings.migration_database_url,
        "PORTAL_VAR_DIR": str(settings.var_dir),
    }
    portal = Path(sys.executable).with_name("portal")
    return subprocess.run(
        [str(portal), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


async def test_cli_verify_names_a_difference(world: World, pg_settings: Settings) -> None:
    days = ("--from", FIRST_DAY.isoformat(), "--to", (FIRST_DAY + timedelta(days=DAYS)).isoformat())
    ok = await asyncio.to_thread(_portal, pg_settings, "scoring", "verify", *days)
    assert ok.returncode == 0, ok.stderr
    assert f"{world.tenant.slug}: ok, {len(world.zones)} plants" in ok.stdout

    # A rollup row that no longer says what the raw tables say (nothing marks it stale).
    async with world.session() as session:
        row = await session.scalar(
            select(PlantDailyRollup)
            .where(
                PlantDailyRollup.plant_id == world.tenant.plants["P2"],
                PlantDailyRollup.day >= FIRST_DAY,
            )
            .order_by(PlantDailyRollup.day)
            .limit(1)
        )
        assert row is not None
        row.permits += 1
        row.work_minutes += 30
    wrong = await asyncio.to_thread(_portal, pg_settings, "scoring", "verify", *days)
    assert wrong.returncode == 1
    assert f"{world.tenant.slug} P2: permits: rollups" in wrong.stderr
    assert f"{world.tenant.slug} P2: work_minutes: rollups" in wrong.stderr
    assert f"{world.tenant.slug}: ok" not in wrong.stdout

    # A day inside a whole month: the comparison reads the month's row, which the check of the
    # months against their days catches.
    async with world.session() as session:
        row = await session.scalar(
            select(PlantDailyRollup)
            .where(
                PlantDailyRollup.plant_id == world.tenant.plants["P3"],
                PlantDailyRollup.day > NOVEMBER[0],
                PlantDailyRollup.day < NOVEMBER[1],
            )
            .order_by(PlantDailyRollup.day)
            .limit(1)
        )
        assert row is not None
        row.violations += 2
    wrong = await asyncio.to_thread(_portal, pg_settings, "scoring", "verify", *days)
    assert wrong.returncode == 1
    assert f"{world.tenant.slug} P3: violations: rollups of the days of 2026-11" in wrong.stderr

    backwards = await asyncio.to_thread(
        _portal, pg_settings, "scoring", "verify", "--from", "2026-02-01", "--to", "2026-01-01"
    )
    assert backwards.returncode == 2 and "--to" in backwards.stderr


async def test_cli_verify_says_it_needs_postgresql(sqlite_settings: Settings) -> None:
    answer = await asyncio.to_thread(
        _portal, sqlite_settings, "scoring", "verify", "--from", "2026-01-01", "--to", "2026-01-31"
    )
    assert answer.returncode == 2
    assert "PostgreSQL" in answer.stderr
