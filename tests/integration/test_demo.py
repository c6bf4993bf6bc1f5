"""`portal demo` seeds a realistic Chinese tenant once, however often it runs."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
from sqlalchemy import func, select

from geofence import services as geofence
from geofence.models import (
    Alert,
    AlertKind,
    AlertState,
    MemberRole,
    Ping,
    Watch,
    WatchMember,
    WatchState,
    Zone,
)
from geofence.services import reference_point
from infra.audit import verify_chain
from infra.db import Database
from infra.security import verify_password
from infra.settings import Settings
from infra.storage import storage_from_settings
from infra.tenancy import tenant_scope
from infra.uploads import StoredObject
from infra.verification import VerificationStatus
from onboarding.catalogue import WorkType
from onboarding.models import Certificate, Contractor, ContractorDocument, Worker
from onboarding.states import ContractorState, ItemState
from onboarding.validators import validate_id_number, validate_uscc
from permits import gates
from permits import services as permit_services
from permits.catalogue import NUMBER_PREFIX, checklist_codes
from permits.models import ApprovalStep, GasAnalysis, Permit
from permits.rules import ApprovalRole, HotWorkLevel
from permits.schemas import ChecklistAnswer, CrewIn, DecisionIn, HotWorkDetails, PermitIn
from permits.services import Actor, actor_for
from permits.states import PermitState
from portal.demo import (
    DEMO_CONTRACTORS,
    DEMO_INDUCTIONS,
    DEMO_PLANTS,
    DEMO_SLUG,
    DEMO_USERS,
    DEMO_WORK_TYPE_INDUCTIONS,
    seed_demo,
)
from portal.demo_geofence import DEMO_LIVE_JOB, DEMO_TRACKED_WORK
from portal.demo_permits import DEMO_BROWSER_PERMIT, LIGHT_VOLUME, STATE_PLAN
from portal.demo_scoring import SCORING_FIRMS, SUSPENDED_FIRM, last_completed_quarter, quarter_of
from portal.demo_training import DEMO_WORKER_LOGINS, signature_strokes
from scoring.models import Appeal, Finding, Rating, Review
from scoring.reports import compare_plants
from tenants import services
from tenants.models import Membership, Plant, Role, User
from tests.conftest import settings_for
from training import services as training
from training.models import (
    Briefing,
    BriefingSignature,
    Induction,
    InductionSignature,
    InductionVersion,
    QuizAttempt,
)
from training.records import verify_signature
from training.signature import check_strokes


@pytest.fixture(scope="module")
def seeded_light_demo(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Path:
    """The demo seeded once for this module, with one permit per state and plant: every state
    shows, without the full set's cost (the command-line test below seeds the full set)."""
    root = tmp_path_factory.mktemp("demo-seed")
    shutil.copyfile(sqlite_template, root / "portal.db")
    settings = settings_for(f"sqlite+aiosqlite:///{root / 'portal.db'}", root / "var")
    asyncio.run(seed_demo(dataclasses.replace(settings, demo_permits=LIGHT_VOLUME)))
    return root


@pytest.fixture
def sqlite_settings(sqlite_settings: Settings, seeded_light_demo: Path) -> Settings:
    """A copy of the seeded demo: each test seeds it again, which must change nothing, and
    checks what is there."""
    database_file = Path(sqlite_settings.database_url.removeprefix("sqlite+aiosqlite:///"))
    for seeded in seeded_light_demo.glob("portal.db*"):
        shutil.copyfile(seeded, database_file.with_name(seeded.name))
    shutil.copytree(seeded_light_demo / "var", sqlite_settings.var_dir, dirs_exist_ok=True)
    return dataclasses.replace(sqlite_settings, demo_permits=LIGHT_VOLUME)


async def test_seed_is_idempotent_and_writes_logins(sqlite_settings: Settings) -> None:
    first_logins, path = await seed_demo(sqlite_settings)
    second_logins, _ = await seed_demo(sqlite_settings)
    assert first_logins == second_logins, "a re-run keeps the passwords"

    stored = json.loads(path.read_text())
    assert {tuple(sorted(item)) for item in stored} == {("email", "password", "role", "tenant")}
    host_roles = {role.value for role in Role if role.is_host}
    assert host_roles <= {item["role"] for item in stored}
    assert {item["tenant"] for item in stored} == {DEMO_SLUG}

    database = Database.from_settings(sqlite_settings)
    try:
        async with database.session() as session:
            tenant = await services.tenant_by_slug(session, DEMO_SLUG)
            assert tenant is not None and tenant.name == "东海化工集团"
            with tenant_scope(tenant.id):
                plants = (await session.execute(select(func.count()).select_from(Plant))).scalar()
                users = (await session.execute(select(func.count()).select_from(User))).scalar()
                grants = (
                    await session.execute(select(func.count()).select_from(Membership))
                ).scalar()
                report = await session.run_sync(verify_chain)
        assert plants == len(DEMO_PLANTS) == 3
        # Every host user, one administrator per demo company, and the workers' own logins.
        assert users == len(DEMO_USERS) + len(DEMO_CONTRACTORS) + len(DEMO_WORKER_LOGINS)
        assert grants == users
        assert report.ok
    finally:
        await database.dispose()


async def test_seed_has_contractors_in_every_state_once(sqlite_settings: Settings) -> None:
    await seed_demo(sqlite_settings)
    logins, _ = await seed_demo(sqlite_settings)
    contractor_logins = [login for login in logins if login.role == "contractor_admin"]
    assert len(contractor_logins) == 2

    database = Database.from_settings(sqlite_settings)
    try:
        async with database.session() as session:
            tenant = await services.tenant_by_slug(session, DEMO_SLUG)
            assert tenant is not None
            with tenant_scope(tenant.id):
                contractors = list(await session.scalars(select(Contractor)))
                workers = list(await session.scalars(select(Worker)))
                certificates = list(await session.scalars(select(Certificate)))
                documents = (
                    await session.execute(select(func.count()).select_from(ContractorDocument))
                ).scalar()
                scans = (
                    await session.execute(select(func.count()).select_from(StoredObject))
                ).scalar()
                signatures = (
                    await session.execute(select(func.count()).select_from(InductionSignature))
                ).scalar()
                briefing_signatures = (
                    await session.execute(select(func.count()).select_from(BriefingSignature))
                ).scalar()
                photo_lists = [
                    *await session.scalars(select(Rating.photo_ids)),
                    *await session.scalars(select(Finding.photo_ids)),
                ]
        photos = sum(len(ids) for ids in photo_lists)
        assert {c.state for c in contractors} == {state.value for state in ContractorState}
        assert len(contractors) == len(DEMO_CONTRACTORS)
        for contractor in contractors:
            assert validate_uscc(contractor.uscc) == contractor.uscc
        assert len(workers) == sum(len(c.workers) for c in DEMO_CONTRACTORS)
        for demo in DEMO_CONTRACTORS:
            for person in demo.workers:
                validate_id_number(person.id_number, today=date.today())
        assert len(certificates) == sum(
            len(w.certificates) for c in DEMO_CONTRACTORS for w in c.workers
        )
        assert len({c.kind for c in certificates}) >= 5
        assert any(c.state == ItemState.EXPIRED for c in certificates)
        soon = date.today() + timedelta(days=7)
        assert any(c.state != ItemState.EXPIRED and c.expires_on <= soon for c in certificates)
        assert documents == 3 * len(DEMO_CONTRACTORS)
        assert scans == (
            documents + len(certificates) + signatures + briefing_signatures + photos
        ), "each scan stored once"
    finally:
        await database.dispose()


async def test_seed_repairs_a_lost_logins_file(sqlite_settings: Settings) -> None:
    _, path = await seed_demo(sqlite_settings)
    path.unlink()
    logins, _ = await seed_demo(sqlite_settings)
    database = Database.from_settings(sqlite_settings)
    try:
        async with database.session() as session:
            tenant = await services.tenant_by_slug(session, DEMO_SLUG)
            assert tenant is not None
            with tenant_scope(tenant.id):
                for login in logins:
                    user = await services.user_by_email(session, login.email)
                    assert user is not None
                    assert verify_password(user.password_hash, login.password)
    finally:
        await database.dispose()


async def test_seed_trains_workers_in_every_state(sqlite_settings: Settings) -> None:
    await seed_demo(sqlite_settings)
    logins, _ = await seed_demo(sqlite_settings)
    worker_logins = [login for login in logins if login.role == "contractor_worker"]
    assert {login.email for login in worker_logins} == {w.email for w in DEMO_WORKER_LOGINS}
    pending_logins = [login for login in logins if login.email.startswith("worker.pending")]
    assert len(pending_logins) == 1 and pending_logins[0].role == "contractor_worker"

    database = Database.from_settings(sqlite_settings)
    storage = storage_from_settings(sqlite_settings)
    try:
        async with database.session() as session:
            tenant = await services.tenant_by_slug(session, DEMO_SLUG)
            assert tenant is not None
            with tenant_scope(tenant.id):
                admin_user = await services.user_by_email(session, DEMO_USERS[0][2])
                assert admin_user is not None
                admin = await services.load_principal(session, tenant, admin_user.id)
                assert admin is not None
                plants = {p.code: p for p in await services.list_plants(session)}
                inductions = list(await session.scalars(select(Induction)))
                versions = list(await session.scalars(select(InductionVersion)))
                attempts = list(await session.scalars(select(QuizAttempt)))
                signatures = list(await session.scalars(select(InductionSignature)))
                statuses = set()
                boards = {}
                for code, plant in plants.items():
                    boards[code] = await training.induction_board(session, admin, plant.id)
                    statuses |= {row.status for row in boards[code]}
                verdicts = [
                    await verify_signature(session, storage, signature.id, 1)
                    for signature in signatures
                ]
                pending_user = await services.user_by_email(session, pending_logins[0].email)
                assert pending_user is not None
                pending_worker = await session.scalar(
                    select(Worker).where(Worker.user_id == pending_user.id)
                )
                assert pending_worker is not None
                pending_attempts = (
                    await session.execute(
                        select(func.count())
                        .select_from(QuizAttempt)
                        .where(QuizAttempt.worker_id == pending_worker.id)
                    )
                ).scalar()
    finally:
        await database.dispose()

    # Once each, however often seeded: a general induction per plant and the work-type ones.
    assert len(inductions) == len(DEMO_INDUCTIONS) + len(DEMO_WORK_TYPE_INDUCTIONS)
    by_key = {(i.plant_id, i.work_type): i for i in inductions}
    assert len(by_key) == len(inductions)
    for code, content in DEMO_INDUCTIONS.items():
        induction = by_key[(plants[code].id, None)]
        assert induction.current_version >= 1
        current = next(
            v
            for v in versions
            if v.induction_id == induction.id and v.version == induction.current_version
        )
        # The browser tests answer the quiz from DEMO_INDUCTIONS: it must be what is published.
        assert current.content["content"] == msgspec.to_builtins(content)
        assert content.pass_mark == 80 and 8 <= content.draw_count <= 10
        assert len(content.questions) >= 12
        assert {q.kind for q in content.questions} == {"single", "multiple"}
        assert any(section.video_url for section in content.sections)
    assert by_key[(plants["NB01"].id, None)].current_version == 2, "NB01 shows two versions"
    assert len(versions) == len(inductions) + 1

    assert {"done", "failed", "pending", "expiring"} <= statuses
    assert {row.status for row in boards["NB01"]} >= {"done", "failed", "pending", "expiring"}
    nb01_general = by_key[(plants["NB01"].id, None)]
    assert [
        row.status
        for row in boards["NB01"]
        if row.worker.id == pending_worker.id and row.induction.id == nb01_general.id
    ] == ["pending"]
    assert pending_worker.name == next(
        w.worker_name for w in DEMO_WORKER_LOGINS if w.email == pending_logins[0].email
    )
    assert pending_attempts == 0

    # The workers with logins; the permit crews' inductions (portal/demo_permits.py) come on top.
    login_workers = set(
        await _login_worker_ids(sqlite_settings, [w.email for w in DEMO_WORKER_LOGINS])
    )
    own_attempts = [a for a in attempts if a.worker_id in login_workers]
    own_signatures = [s for s in signatures if s.worker_id in login_workers]
    assert len(own_attempts) == 5 and len(own_signatures) == 4
    assert any(not attempt.passed for attempt in attempts)
    assert any(signature.assisted_by is not None for signature in signatures)
    assert len({signature.strokes_sha256 for signature in signatures}) == len(signatures)
    assert all(v is not None and v.status is VerificationStatus.VALID for v in verdicts)


async def _login_worker_ids(settings: Settings, emails: list[str]) -> list[object]:
    database = Database.from_settings(settings)
    try:
        async with database.session() as session:
            tenant = await services.tenant_by_slug(session, DEMO_SLUG)
            assert tenant is not None
            with tenant_scope(tenant.id):
                return list(
                    await session.scalars(
                        select(Worker.id)
                        .join(User, User.id == Worker.user_id)
                        .where(User.email.in_(emails))
                    )
                )
    finally:
        await database.dispose()


def test_demo_signatures_are_distinct_and_pass_the_stroke_rules() -> None:
    drawings = [signature_strokes(f"seed-{n}", 3) for n in range(20)]
    for drawing in drawings:
        check_strokes(drawing)
    assert len({msgspec.json.encode(d) for d in drawings}) == len(drawings)


# --- zones and permits (portal/demo_permits.py) ----------------------------------------------

PERMIT_NUMBER = re.compile(r"^(NB01|NJ01|HZ01)-(DH|SX|MB|GC|DZ|LD|DT|DL)-(\d{8})-(\d{4})$")


async def _permit_world(settings: Settings) -> dict[str, object]:
    database = Database.from_settings(settings)
    try:
        async with database.session() as session:
            tenant = await services.tenant_by_slug(session, DEMO_SLUG)
            assert tenant is not None
            with tenant_scope(tenant.id):
                return {
                    "plants": {p.code: p for p in await services.list_plants(session)},
                    "permits": list(await session.scalars(select(Permit))),
                    "firms": set(
                        await session.scalars(
                            select(Contractor.id).where(Contractor.name.in_(_firm_names()))
                        )
                    ),
                    "steps": list(await session.scalars(select(ApprovalStep))),
                    "zones": list(await session.scalars(select(Zone))),
                    "gas": list(await session.scalars(select(GasAnalysis))),
                    "briefings": (
                        await session.execute(select(func.count()).select_from(Briefing))
                    ).scalar(),
                    "briefing_signatures": (
                        await session.execute(select(func.count()).select_from(BriefingSignature))
                    ).scalar(),
                    "ledger": await session.run_sync(verify_chain),
                }
    finally:
        await database.dispose()


async def test_seed_permits_every_state_and_type_with_history(sqlite_settings: Settings) -> None:
    await seed_demo(sqlite_settings)
    first = await _permit_world(sqlite_settings)
    await seed_demo(sqlite_settings)
    second = await _permit_world(sqlite_settings)

    for key in ("permits", "steps", "zones", "gas"):
        assert len(first[key]) == len(second[key]), f"a second seed adds no {key}"  # type: ignore[arg-type]
    assert first["briefing_signatures"] == second["briefing_signatures"]
    assert first["ledger"].ok and second["ledger"].ok  # type: ignore[union-attr]

    permits: list[Permit] = first["permits"]  # type: ignore[assignment]
    plants: dict[str, Plant] = first["plants"]  # type: ignore[assignment]
    assert {p.state for p in permits} == {state.value for state in PermitState}
    assert {p.work_type for p in permits} == {kind.value for kind in WorkType}
    for code in plants:
        assert {p.state for p in permits if p.plant_id == plants[code].id} == {
            state.value for state in PermitState
        }, code

    code_of = {plant.id: code for code, plant in plants.items()}
    numbered = [p for p in permits if p.number is not None]
    assert numbered
    for permit in numbered:
        match = PERMIT_NUMBER.match(permit.number)  # type: ignore[arg-type]
        assert match, permit.number
        assert match.group(1) == code_of[permit.plant_id]
        assert match.group(2) == NUMBER_PREFIX[WorkType(permit.work_type)]
    # A revision keeps its number; versions differ.
    assert len({(p.number, p.version) for p in numbered}) == len(numbered)
    superseded = [p for p in permits if p.state == PermitState.SUPERSEDED]
    assert all(any(q.supersedes_id == p.id for q in permits) for p in superseded)

    steps: list[ApprovalStep] = first["steps"]  # type: ignore[assignment]
    decided = [s for s in steps if s.decided_at is not None]
    assert decided and all(s.minutes is not None and s.minutes > 0 for s in decided)
    assert all(s.decided_by is not None for s in decided)
    assert any(s.on_site is False for s in decided) and any(s.on_site for s in decided)
    assert {s.status for s in steps} >= {"approved", "rejected", "pending"}
    # The approvals spread over the last 90 days, for the HQ metrics; the scaffolding firms work
    # in the last completed quarter, which may lie further back.
    firms: set[uuid.UUID] = first["firms"]  # type: ignore[assignment]
    own = {p.id for p in permits if p.contractor_id not in firms}
    now = datetime.now(UTC)
    ages = [now - _aware(s.decided_at) for s in decided if s.permit_id in own]  # type: ignore[arg-type]
    assert max(ages) > timedelta(days=60) and min(ages) < timedelta(days=1)
    assert max(ages) < timedelta(days=91)

    hot = [p for p in permits if p.work_type == WorkType.HOT_WORK.value]
    assert {p.requested_level for p in hot} >= {"level1", "level2"}
    started = [p for p in permits if p.started_at is not None]
    gas: list[GasAnalysis] = first["gas"]  # type: ignore[assignment]
    analysed = {g.permit_id for g in gas if g.passed}
    assert all(
        p.id in analysed
        for p in started
        if p.work_type in (WorkType.HOT_WORK.value, WorkType.CONFINED_SPACE.value)
    )
    assert first["briefings"] == len(started)

    zones: list[Zone] = first["zones"]  # type: ignore[assignment]
    for code in plants:
        kinds = {z.kind for z in zones if z.plant_id == plants[code].id}
        assert kinds == {"work_area", "restricted", "assembly_point"}, code
    assert any(z.geometry["type"] == "Point" and z.radius_m for z in zones)
    nb01 = {z.name for z in zones if z.plant_id == plants["NB01"].id}
    assert {"常减压装置区", "罐区A", "码头", "维修车间", "液氯库房", "1号集合点"} <= nb01
    for zone in zones:
        plant = next(p for p in plants.values() if p.id == zone.plant_id)
        lat, lon = reference_point(zone)
        assert abs(lat - plant.latitude) < 0.01 and abs(lon - plant.longitude) < 0.01


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def test_browser_permit_passes_its_gates_and_chain_now(sqlite_settings: Settings) -> None:
    await seed_demo(sqlite_settings)
    spec = DEMO_BROWSER_PERMIT
    logins = {
        item["email"]: item["role"]
        for item in json.loads((sqlite_settings.var_dir / "demo-logins.json").read_text())
    }
    assert logins[spec.applicant_email] == Role.CONTRACTOR_ADMIN.value
    holders = {
        ApprovalRole.LOCAL_UNIT.value: Role.UNIT_SUPERVISOR,
        ApprovalRole.SAFETY_DEPARTMENT.value: Role.EHS_OFFICER,
        ApprovalRole.LEADER_IN_CHARGE.value: Role.PLANT_MANAGER,
        ApprovalRole.SHIFT_LEADER.value: Role.UNIT_SUPERVISOR,
    }
    for step_role, email in spec.approvers.items():
        assert email in logins, email
        if step_role in holders:
            assert logins[email] == holders[step_role].value
    assert any(
        role is Role.GUARDIAN and email == spec.guardian_email and plant == spec.plant_code
        for role, _, email, _, plant in DEMO_USERS
    )

    database = Database.from_settings(sqlite_settings)
    try:
        async with database.session() as session:
            tenant = await services.tenant_by_slug(session, DEMO_SLUG)
            assert tenant is not None
            with tenant_scope(tenant.id):
                plant = next(
                    p for p in await services.list_plants(session) if p.code == spec.plant_code
                )
                zone = next(
                    z
                    for z in await geofence.list_zones(session, plant.id)
                    if z.name == spec.zone_name
                )

                async def actor(email: str) -> Actor:
                    user = await services.user_by_email(session, email)
                    assert user is not None, email
                    principal = await services.load_principal(session, tenant, user.id)
                    assert principal is not None
                    return await actor_for(session, principal)

                applicant = await actor(spec.applicant_email)
                workers = {
                    w.name: w
                    for w in await session.scalars(
                        select(Worker).where(Worker.contractor_id == applicant.contractor_id)
                    )
                }
                guardian = await services.user_by_email(session, spec.guardian_email)
                assert guardian is not None
                now = datetime.now(UTC)
                # Applied now for the next 8 hours: everyone passes the gates all along.
                start = now + timedelta(minutes=5)
                permit = await permit_services.create_permit(
                    session,
                    applicant,
                    PermitIn(
                        plant_id=plant.id,
                        zone_id=zone.id,
                        location=f"{spec.zone_name} 常压塔 T-101 二层平台",
                        work_content="常压塔顶回流线弯头更换焊接",
                        planned_start=start,
                        planned_end=start + timedelta(hours=8),
                        crew=[CrewIn(worker_id=workers[name].id) for name in spec.crew],
                        work_leader_id=workers[spec.work_leader].id,
                        guardian_user_id=guardian.id,
                        hazards=["火灾爆炸"],
                        emergency_measures=["立即停止动火，撤离至上风向"],
                        checklist=[
                            ChecklistAnswer(code=code, applies=True)
                            for code in checklist_codes(WorkType.HOT_WORK)
                        ],
                        details=HotWorkDetails(
                            requested_level=HotWorkLevel(spec.requested_level),
                            method="electric_welding",
                            outdoor=True,
                        ),
                    ),
                    now=now,
                )
                result = await gates.check(session, permit, gates.Stage.SUBMIT, now=now)
                assert result.problems == []
                await permit_services.submit(session, applicant, permit.id, now=now)
                while permit.state != PermitState.APPROVED.value:
                    step = await permit_services.current_step(session, permit)
                    assert step is not None
                    decider = await actor(spec.approvers[step.role])
                    await permit_services.decide(
                        session, decider, permit.id, DecisionIn(decision="approve"), now=now
                    )
                assert permit.number and PERMIT_NUMBER.match(permit.number)
            await session.rollback()
    finally:
        await database.dispose()


def test_portal_demo_runs_twice_from_the_command_line(tmp_path: Path) -> None:
    """`portal demo --no-serve` into a fresh var directory, twice: the second run adds nothing."""
    env = {**os.environ, "PORTAL_VAR_DIR": str(tmp_path / "var"), "PORTAL_DEMO_PERMITS": "full"}
    env.pop("PORTAL_DATABASE_URL", None)
    env.pop("PORTAL_MIGRATION_DATABASE_URL", None)
    portal = Path(sys.executable).with_name("portal")
    runs = [
        subprocess.run(
            [str(portal), "demo", "--no-serve"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        for _ in range(2)
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr
        assert "demo tenant ready" in run.stdout
    database = tmp_path / "var" / "portal.db"
    with sqlite3.connect(database) as connection:
        companies = [
            row[0]
            for row in connection.execute(
                "select c.name from permits p join contractors c on c.id = p.contractor_id"
                " where p.supersedes_id is null"
            )
        ]
        states = {row[0] for row in connection.execute("select distinct state from permits")}
    firm_jobs = sum(1 for name in companies if name in _firm_names())
    permits = len(companies) - firm_jobs
    assert permits == 3 * sum(count for _, count in STATE_PLAN) + len(DEMO_TRACKED_WORK)
    assert firm_jobs >= sum(firm.jobs for firm in SCORING_FIRMS)
    assert states == {state.value for state in PermitState}


async def test_seed_supervises_the_demo_jobs_with_every_alert(sqlite_settings: Settings) -> None:
    """Every kind of alert raised by the engine from the seeded tracks, in every state of its
    handling; the live job running with worker.done on it, not yet checked in; the ledger whole;
    and a second seed adds nothing."""

    async def seeded() -> dict[str, Any]:
        await seed_demo(sqlite_settings)
        database = Database.from_settings(sqlite_settings)
        try:
            async with database.session() as session:
                tenant = await services.tenant_by_slug(session, DEMO_SLUG)
                assert tenant is not None
                with tenant_scope(tenant.id):
                    [live] = list(
                        await session.scalars(
                            select(Permit).where(Permit.work_content == DEMO_LIVE_JOB.work_content)
                        )
                    )
                    return {
                        "alerts": list(await session.scalars(select(Alert))),
                        "pings": (
                            await session.execute(select(func.count()).select_from(Ping))
                        ).scalar(),
                        "live": live,
                        "watch": await session.scalar(select(Watch).where(Watch.id == live.id)),
                        "zone": await session.scalar(select(Zone).where(Zone.id == live.zone_id)),
                        "worker": await services.user_by_email(session, DEMO_LIVE_JOB.worker_email),
                        "members": list(
                            await session.scalars(
                                select(WatchMember).where(WatchMember.watch_id == live.id)
                            )
                        ),
                        "ledger": await session.run_sync(verify_chain),
                    }
        finally:
            await database.dispose()

    first = await seeded()
    second = await seeded()
    assert len(second["alerts"]) == len(first["alerts"]) and second["pings"] == first["pings"]
    alerts: list[Alert] = second["alerts"]
    assert {alert.kind for alert in alerts} == {kind.value for kind in AlertKind}
    assert {alert.state for alert in alerts} == {state.value for state in AlertState}
    assert any(alert.violation and alert.resolution_note for alert in alerts)
    assert second["pings"] > 500

    live: Permit = second["live"]
    now = datetime.now(UTC)
    assert live.state == PermitState.ACTIVE.value and live.number
    assert _aware(live.planned_start) < now and _aware(live.planned_end) > now + timedelta(hours=4)
    assert second["watch"].state == WatchState.ACTIVE.value
    [welder] = [m for m in second["members"] if m.user_id == second["worker"].id]
    assert welder.role == MemberRole.CREW.value and welder.removed_at is None
    assert welder.checked_in_at is None, "the browser tests check in themselves"
    zone: Zone = second["zone"]
    assert zone.name == DEMO_LIVE_JOB.zone_name
    assert geofence.contains(zone, *DEMO_LIVE_JOB.inside)
    assert not geofence.contains(zone, *DEMO_LIVE_JOB.outside, 100)
    assert first["ledger"].ok and second["ledger"].ok


# --- evaluation (portal/demo_scoring.py) -----------------------------------------------------


def _firm_names() -> list[str]:
    emails = {firm.admin_email for firm in SCORING_FIRMS}
    return [demo.name for demo in DEMO_CONTRACTORS if demo.admin_email in emails]


async def _evaluation(settings: Settings) -> dict[str, Any]:
    database = Database.from_settings(settings)
    try:
        async with database.session() as session:
            tenant = await services.tenant_by_slug(session, DEMO_SLUG)
            assert tenant is not None
            with tenant_scope(tenant.id):
                today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
                # HQ's default period, and one from the start of the last completed quarter,
                # whose reviews give the grades.
                year, quarter = last_completed_quarter(today)
                rows = await session.run_sync(
                    lambda sync: compare_plants(
                        sync, today - timedelta(days=89), today + timedelta(days=1)
                    )
                )
                since = await session.run_sync(
                    lambda sync: compare_plants(
                        sync, date(year, 3 * quarter - 2, 1), today + timedelta(days=1)
                    )
                )
                rated_by = {
                    (user_id, plant_id)
                    for user_id, plant_id in await session.execute(
                        select(Membership.user_id, Membership.plant_id).where(
                            Membership.role == Role.EHS_OFFICER.value
                        )
                    )
                }
                return {
                    "plants": {row.code: row for row in rows},
                    "since": since,
                    "ratings": list(await session.scalars(select(Rating))),
                    "finished": list(
                        await session.scalars(
                            select(Permit).where(
                                Permit.state.in_(
                                    [PermitState.CLOSED.value, PermitState.COMPLETED.value]
                                )
                            )
                        )
                    ),
                    "ehs": rated_by,
                    "appeals": list(await session.scalars(select(Appeal))),
                    "findings": list(await session.scalars(select(Finding))),
                    "violations": (
                        await session.execute(
                            select(func.count()).select_from(Alert).where(Alert.violation)
                        )
                    ).scalar(),
                    "reviews": list(await session.scalars(select(Review))),
                    "contractors": {c.id: c for c in await session.scalars(select(Contractor))},
                    "photos": {o.id for o in await session.scalars(select(StoredObject))},
                    "ledger": await session.run_sync(verify_chain),
                }
    finally:
        await database.dispose()


async def test_seed_evaluates_jobs_and_gives_hq_three_different_plants(
    sqlite_settings: Settings,
) -> None:
    """Ratings by each plant's EHS officer, an appeal of each outcome, findings with photos,
    alerts confirmed as violations, last quarter's reviews approved in every grade with one
    company suspended, this quarter's as drafts; NB01, NJ01 and HZ01 far apart in compliance
    and approval time; and a second seed changes none of it."""
    await seed_demo(sqlite_settings)
    first = await _evaluation(sqlite_settings)
    await seed_demo(sqlite_settings)
    second = await _evaluation(sqlite_settings)
    for key in ("ratings", "appeals", "findings", "reviews", "photos"):
        assert len(first[key]) == len(second[key]), f"a second seed adds no {key}"
    assert first["violations"] == second["violations"]
    assert {r.id: r.scores for r in first["ratings"]} == {r.id: r.scores for r in second["ratings"]}
    assert second["ledger"].ok

    ratings: list[Rating] = second["ratings"]
    finished: list[Permit] = second["finished"]
    rated = {rating.permit_id for rating in ratings}
    assert rated <= {permit.id for permit in finished}
    assert len(rated) > len(finished) / 2 and len(rated) < len(finished), "most, not all"
    for rating in ratings:
        assert (rating.rated_by, rating.plant_id) in second["ehs"], "the plant's EHS officer"
    assert any(rating.photo_ids for rating in ratings)

    appeals: list[Appeal] = second["appeals"]
    assert sorted(appeal.state for appeal in appeals) == ["amended", "upheld"]
    for appeal in appeals:
        assert appeal.reason and appeal.decision_text and appeal.decided_at
    [amended] = [appeal for appeal in appeals if appeal.state == "amended"]
    [appealed] = [rating for rating in ratings if rating.id == amended.rating_id]
    assert amended.previous_scores and amended.previous_scores != appealed.scores

    findings: list[Finding] = second["findings"]
    assert {finding.severity for finding in findings} == {"minor", "major", "critical"}
    assert any(finding.permit_id is None for finding in findings)
    for finding in findings:
        assert finding.photo_ids
        assert {uuid.UUID(photo) for photo in finding.photo_ids} <= second["photos"]
    assert second["violations"] >= 2, "alerts confirmed as violations"

    contractors: dict[uuid.UUID, Contractor] = second["contractors"]
    by_email = {demo.name: demo.admin_email for demo in DEMO_CONTRACTORS}
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    last = last_completed_quarter(today)
    reviews: list[Review] = second["reviews"]
    approved = [
        r
        for r in reviews
        if r.state == "approved" and (r.period_start.year, r.period_start.month // 3 + 1) == last
    ]
    assert {review.grade for review in approved} == {"A", "B", "C", "D"}
    for firm in SCORING_FIRMS:
        [review] = [
            r for r in approved if by_email[contractors[r.contractor_id].name] == firm.admin_email
        ]
        assert review.grade == firm.expected_grade, (firm.admin_email, review.score)
    for review in approved:
        contractor = contractors[review.contractor_id]
        if by_email[contractor.name] == SUSPENDED_FIRM:
            assert review.decision == "suspend"
            assert contractor.state == ContractorState.SUSPENDED.value
        else:
            assert review.decision in ("keep", "probation")
            assert contractor.state == ContractorState.APPROVED.value
    current = quarter_of(today)
    drafts = [
        r
        for r in reviews
        if r.state == "draft" and (r.period_start.year, r.period_start.month // 3 + 1) == current
    ]
    assert {r.contractor_id for r in drafts} == {r.contractor_id for r in approved}

    plants = second["plants"]
    compliance = {code: row.figures.compliance_rate for code, row in plants.items()}
    approval = {code: row.figures.approval_mean_minutes for code, row in plants.items()}
    assert compliance["NB01"] >= compliance["NJ01"] + 10, compliance
    assert compliance["NJ01"] >= compliance["HZ01"] + 10, compliance
    assert approval["NB01"] <= 60, approval
    assert 2 * approval["NB01"] <= approval["NJ01"] and 1.5 * approval["NJ01"] <= approval["HZ01"]
    grades = {grade for row in second["since"] for grade, n in row.grades.items() if n}
    assert grades == {"A", "B", "C", "D"}, "HQ sees contractors in every grade"
