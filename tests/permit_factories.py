"""Building permit scenarios for tests through the real services: a plant with zones, an
admitted contractor whose verified workers hold the certificates every work type asks for,
workers inducted for the plant, host users per role as principals, and a valid ``PermitIn`` per
work type.

Typical use in an integration test::

    world = await PermitWorld.create(any_db, any_settings, factory)
    at = world.window()                                  # a working day, 09:00 plant time
    permit = await world.draft(permit_in(world, WorkType.HOT_WORK, at), now=at.now)
    await world.submit(permit.id, now=at.now)
    await world.approve_all(permit.id, now=at.now)

Times are passed to the services explicitly (``now=``), so a test decides whether it is day or
night, a working day or a rest day, whatever the machine's clock says. Only the contractor's two
logins get a password hash, which keeps a world quick to build.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from geofence import services as zone_services
from geofence.schemas import CircleIn, ZoneIn
from infra.db import Database
from infra.settings import Settings
from infra.storage import LocalStorage
from onboarding import services as onboarding_services
from onboarding.access import Viewer
from onboarding.catalogue import CertificateKind, WorkType
from onboarding.schemas import ContractorUserIn
from permits import chains, services
from permits.catalogue import checklist_codes
from permits.holidays import HolidayCalendar
from permits.models import ApprovalStep, Permit
from permits.rules import ApprovalRole
from permits.schemas import (
    BlindPlateDetails,
    ChecklistAnswer,
    ConfinedSpaceDetails,
    ConfirmIn,
    CrewIn,
    DecisionIn,
    ExcavationDetails,
    HeightDetails,
    HotWorkDetails,
    LiftingDetails,
    PermitDetails,
    PermitIn,
    PositionIn,
    RoadClosureDetails,
    TempPowerDetails,
)
from tenants import services as tenant_services
from tenants.access import Principal
from tenants.models import Role
from tests.factories import SeededTenant, SeededUser, TenantFactory
from tests.onboarding_factories import Company, OnboardingFactory, in_tenant
from tests.training_factories import (
    DEVICE,
    induction_content,
    local_storage,
    principal,
    signature_in,
)
from training import briefings
from training import services as training_services
from training.models import Induction
from training.schemas import AnswersIn, InductionIn

PLANT_TZ = ZoneInfo("Asia/Shanghai")
# Zone Z1 is a 40 m circle; Z2 lies about 19 m east of its centre (inside the 30 m of §7.6);
# Z3 is some 1.1 km away.
CENTRE = (121.4737, 31.2304)
ZONES = {
    "Z1": (CENTRE, 40.0),
    "Z2": ((CENTRE[0] + 0.0002, CENTRE[1]), 15.0),
    "Z3": ((CENTRE[0] + 0.012, CENTRE[1]), 30.0),
}
HOSTS = (
    (Role.TENANT_ADMIN, None),
    (Role.EHS_OFFICER, None),
    (Role.UNIT_SUPERVISOR, "P1"),
    (Role.PLANT_MANAGER, "P1"),
    (Role.GUARDIAN, "P1"),
)
LEADER = "张三"  # the work leader, with his own login
CREW_MATE = "李四"
SHORT_CERT = "王五"  # welding certificate expiring in a few days (§4.9)
NOT_INDUCTED = "赵六"  # qualified, but never inducted for the plant
ALL_CERTIFICATES = (
    CertificateKind.WELDING_CUTTING,
    CertificateKind.CONFINED_SPACE,
    CertificateKind.SCAFFOLDING,
    CertificateKind.CRANE_OPERATOR,
    CertificateKind.CRANE_SIGNALLER,
    CertificateKind.LOW_VOLTAGE_ELECTRICIAN,
)
SHORT_CERT_DAYS = 3


@dataclasses.dataclass(frozen=True)
class Window:
    """A permit window and the moment the test acts at (an hour before it starts)."""

    start: datetime
    end: datetime

    @property
    def now(self) -> datetime:
        return self.start - timedelta(hours=1)

    def at(self, minutes: float) -> datetime:
        """``minutes`` after the window's start."""
        return self.start + timedelta(minutes=minutes)


def working_day(after: date, calendar: HolidayCalendar | None = None) -> date:
    """The first day after ``after`` that is neither a holiday nor a rest day."""
    calendar = calendar or HolidayCalendar()
    day = after + timedelta(days=1)
    while calendar.is_holiday(day) or calendar.is_rest_day(day):
        day += timedelta(days=1)
    return day


def rest_day(after: date, calendar: HolidayCalendar | None = None) -> date:
    calendar = calendar or HolidayCalendar()
    day = after + timedelta(days=1)
    while not calendar.is_rest_day(day) or calendar.is_holiday(day):
        day += timedelta(days=1)
    return day


def plant_time(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), PLANT_TZ)


def window(day: date | None = None, *, hour: int = 9, hours: float = 6, minute: int = 0) -> Window:
    """A window on ``day`` (by default the first working day after tomorrow) at plant time."""
    day = day or working_day(datetime.now(PLANT_TZ).date() + timedelta(days=1))
    start = plant_time(day, hour, minute)
    return Window(start, start + timedelta(hours=hours))


# --- permit applications ---------------------------------------------------------------------


def details_for(work_type: WorkType, crew: Sequence[uuid.UUID], **changes: object) -> PermitDetails:
    """Details of a permit that passes every rule: hot work level 2 by day, 8 m at height, a 50 t
    lift, an excavation of 1 m …"""
    values: dict[str, object]
    match work_type:
        case WorkType.HOT_WORK:
            values = {"requested_level": "level2", "method": "electric_welding"}
            return HotWorkDetails(**{**values, **changes})  # type: ignore[arg-type]
        case WorkType.CONFINED_SPACE:
            values = {"space_name": "T-101 储罐", "medium": "苯"}
            return ConfinedSpaceDetails(**{**values, **changes})  # type: ignore[arg-type]
        case WorkType.BLIND_PLATE:
            values = {
                "pipeline_id": "P-2001",
                "blind_id": "MB-07",
                "action": "insert",
                "medium": "蒸汽",
                "temperature_c": 40.0,
                "pressure_mpa": 0.1,
                "blind_material": "20#",
                "blind_size": "DN100",
            }
            return BlindPlateDetails(**{**values, **changes})  # type: ignore[arg-type]
        case WorkType.HEIGHT:
            values = {"height_m": 8.0}
            return HeightDetails(**{**values, **changes})  # type: ignore[arg-type]
        case WorkType.LIFTING:
            values = {
                "load_t": 50.0,
                "crane": "QY50 汽车吊",
                "operator_id": crew[0],
                "signaller_id": crew[-1],
            }
            return LiftingDetails(**{**values, **changes})  # type: ignore[arg-type]
        case WorkType.TEMP_POWER:
            values = {"source": "2# 配电室 3 号柜", "voltage_v": 380, "load_kw": 15.0}
            return TempPowerDetails(**{**values, **changes})  # type: ignore[arg-type]
        case WorkType.EXCAVATION:
            values = {"depth_m": 1.0, "extent": "3 m × 2 m"}
            return ExcavationDetails(**{**values, **changes})  # type: ignore[arg-type]
        case WorkType.ROAD_CLOSURE:
            values = {"road_section": "厂区三号路东段", "traffic_plan": "经四号路绕行"}
            return RoadClosureDetails(**{**values, **changes})  # type: ignore[arg-type]
    raise AssertionError(work_type)


def checklist_for(work_type: WorkType, *, applies: bool = True) -> list[ChecklistAnswer]:
    return [ChecklistAnswer(code=code, applies=applies) for code in checklist_codes(work_type)]


# --- the world -------------------------------------------------------------------------------


@dataclasses.dataclass
class PermitWorld:
    """A tenant with plants P1 and P2, zones Z1–Z3 on P1, host users (:data:`HOSTS`), and an
    admitted company for all eight work types whose workers hold every certificate:
    张三 (work leader, own login) and 李四 inducted; 王五 inducted but with a welding certificate
    that runs out in a few days; 赵六 not inducted. One induction for everyone at P1 is published.
    """

    database: Database
    settings: Settings
    storage: LocalStorage
    tenant: SeededTenant
    company: Company
    onboarding: OnboardingFactory
    hosts: dict[Role, Principal]
    contractor_admin: Principal
    leader_login: Principal
    zones: dict[str, uuid.UUID]

    @classmethod
    async def create(
        cls, database: Database, settings: Settings, factory: TenantFactory, *, induct: bool = True
    ) -> PermitWorld:
        tenant = await factory.create(database, plants=("P1", "P2"), users=())
        hosts: dict[Role, Principal] = {}
        async with in_tenant(database, tenant.id) as session:
            for index, (role, plant_code) in enumerate(HOSTS):
                # Host users never sign in here: no password, so no Argon2 hash to wait for.
                user = await tenant_services.create_user(
                    session,
                    email=f"{role.value}.{index}@{tenant.slug}.example",
                    name=f"用户{index}",
                    password=None,
                )
                plant_id = tenant.plants[plant_code] if plant_code else None
                await tenant_services.grant_role(
                    session, user_id=user.id, role=role, plant_id=plant_id
                )
                tenant.users.append(SeededUser(user.id, user.email, "", role, plant_code))
                hosts[role] = principal(
                    tenant, user.id, role, name=f"用户{index}", plant_id=plant_id
                )
        onboarding = OnboardingFactory(database, settings)
        company = await onboarding.register(tenant, work_types=list(WorkType))
        await onboarding.add_documents(company)
        today = datetime.now(PLANT_TZ).date()
        for name in (LEADER, CREW_MATE, NOT_INDUCTED):
            await onboarding.add_worker(company, name)
            for kind in ALL_CERTIFICATES:
                await onboarding.add_certificate(company, name, kind=kind)
        await onboarding.add_worker(company, SHORT_CERT)
        await onboarding.add_certificate(
            company, SHORT_CERT, expires_on=today + timedelta(days=SHORT_CERT_DAYS)
        )
        await onboarding.submit(company)
        await onboarding.approve_all(company, _viewer(hosts[Role.EHS_OFFICER]))
        async with in_tenant(database, tenant.id) as session:
            login = await onboarding_services.add_contractor_user(
                session,
                company.admin,
                company.contractor_id,
                ContractorUserIn(
                    email=f"leader-{uuid.uuid4().hex[:8]}@contractor.example",
                    name=LEADER,
                    password="worker-pass-1",
                    role="contractor_worker",
                    worker_id=company.workers[LEADER],
                ),
            )
        zones = {}
        async with in_tenant(database, tenant.id) as session:
            for name, (centre, radius) in ZONES.items():
                zone = await zone_services.create_zone(
                    session,
                    ZoneIn(
                        plant_id=tenant.plants["P1"],
                        name=name,
                        shape=CircleIn(center=centre, radius_m=radius),
                    ),
                    actor_id=hosts[Role.EHS_OFFICER].user_id,
                )
                zones[name] = zone.id
        world = cls(
            database=database,
            settings=settings,
            storage=local_storage(settings),
            tenant=tenant,
            company=company,
            onboarding=onboarding,
            hosts=hosts,
            contractor_admin=principal(
                tenant, company.admin.user_id, Role.CONTRACTOR_ADMIN, name="承包商管理员"
            ),
            leader_login=principal(tenant, login.id, Role.CONTRACTOR_WORKER, name=LEADER),
            zones=zones,
        )
        if induct:
            await world.induct(LEADER, CREW_MATE, SHORT_CERT)
        return world

    # --- people --------------------------------------------------------------------------

    @property
    def plant_id(self) -> uuid.UUID:
        return self.tenant.plants["P1"]

    @property
    def ehs(self) -> Principal:
        return self.hosts[Role.EHS_OFFICER]

    @property
    def supervisor(self) -> Principal:
        return self.hosts[Role.UNIT_SUPERVISOR]

    @property
    def manager(self) -> Principal:
        return self.hosts[Role.PLANT_MANAGER]

    @property
    def guardian(self) -> Principal:
        return self.hosts[Role.GUARDIAN]

    def worker(self, name: str) -> uuid.UUID:
        return self.company.workers[name]

    def session(self):  # type: ignore[no-untyped-def]
        """A session in the world's tenant, committed when the block ends without error."""
        return in_tenant(self.database, self.tenant.id)

    async def actor(self, who: Principal) -> services.Actor:
        async with self.session() as session:
            return await services.actor_for(session, who)

    async def induct(self, *names: str) -> None:
        """Publish the plant's induction (once) and have each named worker pass and sign it, in
        an assisted session run by the company's administrator."""
        async with self.session() as session:
            existing = await session.scalar(
                select(Induction.id).where(Induction.plant_id == self.plant_id)
            )
            if existing is None:
                induction = await training_services.create_induction(
                    session,
                    self.ehs,
                    InductionIn(
                        plant_id=self.plant_id, work_type=None, content=induction_content()
                    ),
                )
                await training_services.publish(session, self.ehs, induction.id)
                existing = induction.id
        for name in names:
            async with self.session() as session:
                taker = await training_services.taker_for(
                    session, self.contractor_admin, self.worker(name)
                )
                attempt = await training_services.start_attempt(session, taker, existing)
                version = await training_services.attempt_version(session, attempt)
                content = training_services.version_content(version)
                by_id = {q.id: q for q in content.questions}
                answers = {qid: list(by_id[qid].correct) for qid in attempt.drawn}
                attempt = await training_services.submit_answers(
                    session, taker, attempt.id, AnswersIn(answers=answers)
                )
                assert attempt.passed
                await training_services.sign_induction(
                    session, self.storage, taker, attempt.id, signature_in(name), DEVICE
                )

    # --- permits -------------------------------------------------------------------------

    def permit_in(
        self,
        work_type: WorkType,
        at: Window,
        *,
        zone: str = "Z1",
        crew: Sequence[str] = (LEADER, CREW_MATE),
        leader: str = LEADER,
        guardian_worker: str | None = None,
        checklist: list[ChecklistAnswer] | None = None,
        **details: object,
    ) -> PermitIn:
        crew_ids = [self.worker(name) for name in crew]
        return PermitIn(
            plant_id=self.plant_id,
            zone_id=self.zones[zone],
            location=f"{zone} 区 1 号装置",
            work_content="更换管线阀门",
            planned_start=at.start,
            planned_end=at.end,
            crew=[CrewIn(worker_id=worker_id, duty="作业人员") for worker_id in crew_ids],
            work_leader_id=self.worker(leader),
            guardian_worker_id=self.worker(guardian_worker) if guardian_worker else None,
            guardian_user_id=None if guardian_worker else self.guardian.user_id,
            hazards=["可燃气体泄漏", "灼烫"],
            emergency_measures=["立即停止作业，撤离现场", "拨打厂区应急电话"],
            checklist=checklist_for(work_type) if checklist is None else checklist,
            details=details_for(work_type, crew_ids, **details),
        )

    async def draft(self, data: PermitIn, *, now: datetime, by: Principal | None = None) -> Permit:
        async with self.session() as session:
            actor = await services.actor_for(session, by or self.contractor_admin)
            return await services.create_permit(session, actor, data, now=now)

    async def submit(self, permit_id: uuid.UUID, *, now: datetime) -> Permit:
        async with self.session() as session:
            actor = await services.actor_for(session, self.contractor_admin)
            return await services.submit(session, actor, permit_id, now=now)

    async def get(self, permit_id: uuid.UUID) -> Permit:
        async with self.session() as session:
            return await session.get_one(Permit, permit_id)

    async def steps(self, permit_id: uuid.UUID) -> list[ApprovalStep]:
        async with self.session() as session:
            return await services.steps_of(session, permit_id)

    def decider_for(self, step: ApprovalStep) -> Principal:
        """A principal who holds the step's role on P1."""
        role = ApprovalRole(step.role)
        if role is ApprovalRole.WORK_LEADER:
            return self.contractor_admin
        return self.hosts[chains.HOLDERS[role]]

    async def decide(
        self,
        permit_id: uuid.UUID,
        *,
        now: datetime,
        by: Principal | None = None,
        decision: str = "approve",
        comment: str = "",
        position: PositionIn | None = None,
    ) -> Permit:
        async with self.session() as session:
            permit = await session.get_one(Permit, permit_id)
            step = await services.current_step(session, permit)
            assert step is not None
            actor = await services.actor_for(session, by or self.decider_for(step))
            return await services.decide(
                session,
                actor,
                permit_id,
                DecisionIn(decision=decision, comment=comment, position=position),  # type: ignore[arg-type]
                now=now,
            )

    async def approve_all(self, permit_id: uuid.UUID, *, now: datetime) -> Permit:
        """Approve every step in turn, each by a holder of its role."""
        while True:
            permit = await self.decide(permit_id, now=now)
            if permit.state != "in_approval":
                return permit

    async def approved(self, data: PermitIn, *, now: datetime) -> Permit:
        permit = await self.draft(data, now=now)
        await self.submit(permit.id, now=now)
        return await self.approve_all(permit.id, now=now)

    async def brief(self, permit_id: uuid.UUID, *, crew_signs: bool = True) -> None:
        """The unit supervisor briefs the crew (§4.4) and signs; the crew sign on his tablet."""
        briefer = self.supervisor
        async with self.session() as session:
            crew = [m.worker_id for m in await services.crew_of(session, permit_id)]
            briefing = await services.prepare_briefing(
                session, await services.actor_for(session, briefer), permit_id
            )
            await briefings.sign_as_briefer(
                session, self.storage, briefer, briefing.id, signature_in(briefer.name), DEVICE
            )
        if not crew_signs:
            return
        for worker_id in crew:
            async with self.session() as session:
                name = next(n for n, w in self.company.workers.items() if w == worker_id)
                await briefings.sign_as_crew(
                    session,
                    self.storage,
                    briefer,
                    briefing.id,
                    worker_id,
                    signature_in(name),
                    DEVICE,
                )

    async def confirm(self, permit_id: uuid.UUID, *, now: datetime) -> Permit:
        """The guardian confirms every measure that applies."""
        async with self.session() as session:
            permit = await session.get_one(Permit, permit_id)
            codes = [item["code"] for item in permit.checklist if item["applies"]]
            actor = await services.actor_for(session, self.guardian)
            return await services.confirm_checklist(
                session, actor, permit_id, ConfirmIn(codes=codes), now=now
            )


def _viewer(host: Principal) -> Viewer:
    return Viewer(host.user_id, host.roles, None)
