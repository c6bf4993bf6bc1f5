"""The demo tenant's geofence supervision (作业定位): a morning of phone tracks on the board and a
job running now for the browser tests.

Only people with a login carry a phone the engine can hear: of the crews that is 宁波海安机电's
welder 王大力 (worker.done), of the host staff the guardians. So two NB01 hot work permits of his
are applied for and driven through the permit services as ``portal.demo_permits`` does:

- the morning job in 加氢裂化装置区, finished an hour and three quarters ago. 王大力 checks in by
  the permit's QR code; the guardian 赵磊 comes 25 minutes late (guardian absent); 王大力 fetches
  welding rods from the workshop through the liquid chlorine store (left the zone, restricted
  zone); inside the reactor's steel frame his phone loses signal for 40 minutes (no signal) and
  hands over the queued positions in one late batch; once a location-faking app jumps him 3 km
  (implausible movement). He checks out and reports the work done; 赵磊 forgets to check out
  and is still inside (overstay).
- the live job (:data:`DEMO_LIVE_JOB`) in 维修车间, started an hour ago and running for six more
  hours: its guardian 陈刚 is checked in and reporting; 王大力 has not checked in yet, which is
  the browser tests' part.

Phones sample every 30 s and upload every 5 minutes (10 in the light volume, which browser tests
seed), each time followed by the beat's sweep.
Every alert is raised by the real engine (``tracking.ingest``, ``tracking.sweep``) at the moment
it would have been; EHS (李国强) then acknowledges one, resolves one with a note and marks one as a
violation, so the board shows every state. Seeding is idempotent: once the live job exists,
nothing is added.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from geofence import alerts, tracking
from geofence import services as geofence
from geofence.models import Alert, AlertKind, Zone, ZoneKind
from geofence.schemas import GpsCheckIn, QrCheckIn
from infra.db import utcnow
from infra.qr import VerificationRef, verification_url
from infra.settings import Settings
from infra.storage import storage_from_settings
from onboarding.catalogue import WorkType
from permits import services as permits
from permits.models import Permit
from permits.states import PermitState
from portal.demo_permits import (
    _M_PER_DEGREE,
    _OFFICE,
    DEMO_ZONES,
    LIGHT_VOLUME,
    _application,
    _chain,
    _company,
    _host_users,
    _offset,
    _Plan,
    _start,
    _World,
    _ZoneSpec,
    draw_zone,
)
from portal.demo_training import TRAINING_CONTRACTOR_ADMIN, _principal
from tenants.access import Principal
from tenants.models import Plant, Tenant

_PLANT = "NB01"
_WORKER_EMAIL = "worker.done@haian-mep.example"
_WORKER_NAME = "王大力"
_GUARDIAN_EMAIL = "zhao.lei@donghai-chem.example"  # 赵磊, the plant's guardian
_SUPERVISOR_EMAIL = "chen.gang@donghai-chem.example"  # 陈刚, unit supervisor
_EHS_EMAIL = "li.guoqiang@donghai-chem.example"  # 李国强, who handles the alerts
_MORNING_ZONE = "加氢裂化装置区"
_WORKSHOP = "维修车间"
# Where a restricted zone goes on a plant that has none, metres east and north of the plant.
_FALLBACK_RESTRICTED = _ZoneSpec(
    "危险化学品仓库", ZoneKind.RESTRICTED.value, 560, 210, 45, 30, 8, buffer_m=5
)


@dataclass(frozen=True)
class DemoLiveJob:
    """The job running now with worker.done on its crew, not checked in, for browser tests.

    Its number is given at approval and carries the day, so it is not known in advance: look the
    permit up by ``work_content`` (unique among the demo's permits), e.g.
    ``SELECT id, number FROM permits WHERE work_content = ?``. Positions are WGS-84 (lat, lon).
    """

    plant_code: str
    zone_name: str
    location: str
    work_content: str
    work_type: str
    worker_email: str
    worker_name: str
    guardian_email: str

    def _point(self, east: float, north: float) -> tuple[float, float]:
        # Imported here: portal.demo imports this module to seed it.
        from portal.demo import DEMO_PLANTS

        _code, _name, _tz, latitude, longitude = next(
            plant for plant in DEMO_PLANTS if plant[0] == self.plant_code
        )
        lat, lon = _offset(latitude, longitude, east, north)
        return round(lat, 7), round(lon, 7)

    @property
    def inside(self) -> tuple[float, float]:
        """The middle of the job's zone, some 35 m from its nearest edge."""
        spec = next(z for z in DEMO_ZONES[self.plant_code] if z.name == self.zone_name)
        return self._point(spec.east, spec.north)

    @property
    def outside(self) -> tuple[float, float]:
        """The group's offices, about 1.5 km from the zone and outside every zone."""
        return self._point(*_OFFICE)


DEMO_LIVE_JOB = DemoLiveJob(
    plant_code=_PLANT,
    zone_name=_WORKSHOP,
    location="维修车间 机修车间检修平台 东侧",
    work_content="P-1105A 循环水泵出口短节更换，法兰对接电焊焊接",
    work_type=WorkType.HOT_WORK.value,
    worker_email=_WORKER_EMAIL,
    worker_name=_WORKER_NAME,
    guardian_email=_SUPERVISOR_EMAIL,
)
_MORNING_LOCATION = "加氢裂化装置区 加氢反应器 R-201 二层平台"
_MORNING_CONTENT = "加氢反应器 R-201 出口管线 DN200 弯头更换及焊口打磨"
# The work contents of the permits seeded here (the morning job, the live job): unique among the
# demo's permits, so tests counting ``portal.demo_permits``' own can tell these apart.
DEMO_TRACKED_WORK = (_MORNING_CONTENT, DEMO_LIVE_JOB.work_content)

_SHANGHAI = ZoneInfo("Asia/Shanghai")
_SAMPLE = timedelta(seconds=30)
# Phones upload and the beat sweeps on one grid, so a sweep always hears a present guardian
# within the 5 minutes the policy allows; the light volume uploads half as often.
_TICK = timedelta(minutes=5)
_LIGHT_TICK = timedelta(minutes=10)
_WALK_MPS = 1.2

_NO_SIGNAL_NOTE = (
    "作业点在加氢反应器 R-201 钢结构框架内，手机信号被屏蔽；恢复信号后 40 分钟的定位已补传，"
    "核实人员始终在作业区内，监护人在场。"
)
_VIOLATION_NOTE = (
    "手机开启虚拟定位软件，定位瞬间跳至 3 km 外。已约谈王大力并卸载该软件，"
    "按承包商安全违章记录一次，通报宁波海安机电。"
)


# --- tracks ----------------------------------------------------------------------------------


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    north = (b[0] - a[0]) * _M_PER_DEGREE
    east = (b[1] - a[1]) * _M_PER_DEGREE * math.cos(math.radians(a[0]))
    return math.hypot(east, north)


@dataclass
class _Route:
    """Where a person is over time: stays and walks between places, as (time, lat, lon) keys."""

    keys: list[tuple[datetime, tuple[float, float]]]

    @property
    def end(self) -> datetime:
        return self.keys[-1][0]

    def stay(self, minutes: float) -> _Route:
        at, point = self.keys[-1]
        self.keys.append((at + timedelta(minutes=minutes), point))
        return self

    def walk(self, to: tuple[float, float]) -> _Route:
        at, point = self.keys[-1]
        self.keys.append((at + timedelta(seconds=_metres(point, to) / _WALK_MPS), to))
        return self

    def until(self, moment: datetime) -> _Route:
        self.keys.append((moment, self.keys[-1][1]))
        return self

    def at(self, moment: datetime) -> tuple[float, float]:
        for (t0, p0), (t1, p1) in zip(self.keys, self.keys[1:], strict=False):
            if t0 <= moment <= t1:
                share = (moment - t0) / (t1 - t0) if t1 > t0 else 0.0
                return p0[0] + (p1[0] - p0[0]) * share, p0[1] + (p1[1] - p0[1]) * share
        return self.keys[-1][1]


@dataclass
class _Phone:
    """One person's phone on one job: what it sampled, and when it could not upload."""

    user_id: uuid.UUID
    watch_id: uuid.UUID
    seed: str
    pings: list[dict[str, object]] = field(default_factory=list)
    offline: list[tuple[datetime, datetime]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # noqa: S311 - demo data, not a secret

    def record(self, route: _Route, start: datetime, *, spoofed: datetime | None = None) -> None:
        moment, battery = start, self.rng.uniform(0.8, 0.95)
        while moment <= route.end:
            lat, lon = route.at(moment)
            # Standing still, a fix wanders a few metres; a faked one is suspiciously exact.
            lat, lon = _offset(lat, lon, self.rng.gauss(0, 2.5), self.rng.gauss(0, 2.5))
            accuracy, mock = round(self.rng.uniform(4, 9), 1), False
            if spoofed is not None and spoofed <= moment < spoofed + _SAMPLE:
                lat, lon = _offset(lat, lon, 2_600, -1_500)
                accuracy, mock = 3.0, True
            battery -= 0.0004
            self.pings.append(
                {
                    "id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
                    "device_time": moment.astimezone(_SHANGHAI).isoformat(timespec="seconds"),
                    "latitude": round(lat, 7),
                    "longitude": round(lon, 7),
                    "accuracy_m": accuracy,
                    "speed_mps": round(self.rng.uniform(0, 0.6), 2),
                    "mock": mock,
                    "battery": round(battery, 3),
                    "watch_id": str(self.watch_id),
                }
            )
            moment += _SAMPLE

    def batches(self, ticks: list[datetime]) -> list[tuple[datetime, list[dict[str, object]]]]:
        """The uploads: at each tick what was sampled since the last one, held back while the
        phone has no signal and sent in one batch the moment it is back; the rest when the
        phone stops tracking."""
        times = [datetime.fromisoformat(str(ping["device_time"])) for ping in self.pings]
        moments = {tick for tick in ticks if tick < times[-1]}
        moments |= {back for _lost, back in self.offline} | {times[-1]}
        uploads: list[tuple[datetime, list[dict[str, object]]]] = []
        sent = 0
        for moment in sorted(moments):
            if any(lost <= moment < back for lost, back in self.offline):
                continue
            due = sent
            while due < len(times) and times[due] <= moment:
                due += 1
            if due > sent:
                uploads.append((moment, self.pings[sent:due]))
                sent = due
        return uploads


# --- permits ---------------------------------------------------------------------------------


async def _drive(
    world: _World, plan: _Plan, location: str, content: str, applied: datetime
) -> tuple[Permit, datetime]:
    """Apply the afternoon before, take the permit through its chain and start the work; returns
    the permit and the moment work started."""
    session, admin = world.session, plan.company.admin
    data = msgspec.structs.replace(
        _application(world, plan, 0), location=location, work_content=content
    )
    permit = await permits.create_permit(session, admin, data, now=applied - timedelta(minutes=25))
    await permits.submit(session, admin, permit.id, now=applied)
    approved = await _chain(world, plan, permit, applied, plan.start - timedelta(minutes=20))
    started = await _start(world, plan, permit, approved)
    return permit, started


async def _restricted_zone(session: AsyncSession, plant: Plant, author_id: uuid.UUID) -> Zone:
    for zone in await geofence.list_zones(session, plant.id):
        if zone.kind == ZoneKind.RESTRICTED.value:
            return zone
    spec = _FALLBACK_RESTRICTED
    return await draw_zone(session, plant, spec, author_id)


# --- seeding ---------------------------------------------------------------------------------

_Step = Callable[[], Awaitable[object]]


async def seed_geofence(
    session: AsyncSession, settings: Settings, tenant: Tenant, plants: dict[str, Plant]
) -> None:
    """The two jobs, the morning's tracks replayed through the engine, and the alerts handled."""
    if await session.scalar(select(Permit.id).where(Permit.work_content.in_(DEMO_TRACKED_WORK))):
        return
    plant = plants[_PLANT]
    zones = {zone.name: zone for zone in await geofence.list_zones(session, plant.id)}
    hosts = await _host_users(session, tenant, plants)
    people: dict[str, Principal] = {
        email: await _principal(session, tenant, email)
        for email in (_WORKER_EMAIL, _GUARDIAN_EMAIL, _SUPERVISOR_EMAIL, _EHS_EMAIL)
    }
    haian = await _company(session, tenant, TRAINING_CONTRACTOR_ADMIN)
    welder = next(worker for worker in haian.workers if worker.name == _WORKER_NAME)
    restricted = await _restricted_zone(session, plant, people[_EHS_EMAIL].user_id)
    now = utcnow().replace(second=0, microsecond=0)
    world = _World(
        session=session,
        settings=settings,
        storage=storage_from_settings(settings),
        tenant=tenant,
        plants=plants,
        zones={},
        hosts=hosts,
        companies={},
        haian=haian,
        real_now=now,
        rng=random.Random("donghai-geofence"),  # noqa: S311 - demo data, not a secret
        volume=(),
    )

    def host(email: str) -> tuple[Principal, permits.Actor]:
        return next(pair for pairs in hosts.values() for pair in pairs if pair[0].email == email)

    def plan(zone: Zone, start: datetime, hours: float, guardian: str, site: str) -> _Plan:
        return _Plan(
            code=_PLANT,
            work_type=WorkType.HOT_WORK,
            target=PermitState.ACTIVE,
            start=start,
            end=start + timedelta(hours=hours),
            company=haian,
            crew=[(welder, "焊工")],
            guardian_worker=None,
            guardian_user=host(guardian),
            zone=zone,
            site=site,
        )

    morning_plan = plan(
        zones[_MORNING_ZONE], now - timedelta(hours=5, minutes=30), 3.75, _GUARDIAN_EMAIL, "R-201"
    )
    morning, begun = await _drive(
        world,
        morning_plan,
        _MORNING_LOCATION,
        _MORNING_CONTENT,
        morning_plan.start - timedelta(hours=17),
    )
    live_plan = plan(
        zones[_WORKSHOP], now - timedelta(minutes=70), 7, _SUPERVISOR_EMAIL, "机修车间检修平台"
    )
    live, live_begun = await _drive(
        world,
        live_plan,
        DEMO_LIVE_JOB.location,
        DEMO_LIVE_JOB.work_content,
        live_plan.start - timedelta(hours=16),
    )

    work = geofence.reference_point(zones[_MORNING_ZONE])
    guard_post = _offset(*work, 18, 12)
    store = geofence.reference_point(restricted)
    workshop = geofence.reference_point(zones[_WORKSHOP])
    steps: list[tuple[datetime, int, _Step]] = []

    # 王大力 on the morning job: checks in by the QR code at the reactor, works, fetches rods
    # through the chlorine store, loses signal in the frame, and leaves before the end.
    checked_in = begun + timedelta(minutes=3)
    errand = checked_in + timedelta(minutes=67)
    route = _Route([(checked_in, work)]).until(errand).walk(store).stay(1.5).walk(workshop)
    at_store = route.keys[2][0]
    route = route.stay(3).walk(work)
    signal_lost = route.end
    signal_back = signal_lost + timedelta(minutes=40)
    spoofed = signal_back + timedelta(minutes=20)
    checked_out = morning_plan.end - timedelta(minutes=20)
    route.until(checked_out - timedelta(seconds=1))
    welder_phone = _Phone(people[_WORKER_EMAIL].user_id, morning.id, "wang.dali")
    welder_phone.record(route, checked_in + timedelta(seconds=20), spoofed=spoofed)
    welder_phone.offline.append((signal_lost, signal_back))
    qr = QrCheckIn(
        token=verification_url(
            settings, VerificationRef(tenant.id, "permit", morning.id, morning.version)
        )
    )
    steps.append((checked_in, 0, _checking_in(session, settings, welder_phone, qr, checked_in)))
    steps.append(
        (
            checked_out,
            3,
            lambda: tracking.check_out(session, welder_phone.user_id, morning.id, checked_out),
        )
    )
    worker_actor = await permits.actor_for(session, people[_WORKER_EMAIL])
    done = morning_plan.end - timedelta(minutes=15)
    steps.append((done, 3, lambda: permits.complete(session, worker_actor, morning.id, now=done)))

    # 赵磊, the morning's guardian: 25 minutes late, then at the reactor until now, never
    # checking out.
    arrived = checked_in + timedelta(minutes=25)
    guardian_phone = _Phone(people[_GUARDIAN_EMAIL].user_id, morning.id, "zhao.lei")
    guardian_phone.record(_Route([(arrived, guard_post)]).until(now), arrived + _SAMPLE)
    steps.append(
        (arrived, 0, _checking_in(session, settings, guardian_phone, _gps(guard_post), arrived))
    )

    # 陈刚, guardian of the live job, on the workshop platform since work started.
    platform = _offset(*workshop, -6, 4)
    supervisor_phone = _Phone(people[_SUPERVISOR_EMAIL].user_id, live.id, "chen.gang")
    post = live_begun + timedelta(minutes=4)
    supervisor_phone.record(_Route([(post, platform)]).until(now), post + _SAMPLE)
    steps.append((post, 0, _checking_in(session, settings, supervisor_phone, _gps(platform), post)))

    tick = _LIGHT_TICK if settings.demo_permits.strip().lower() == LIGHT_VOLUME else _TICK
    ticks = [begun + n * tick for n in range(int((now - begun) / tick) + 1)]
    ticks.append(now)
    for phone in (welder_phone, guardian_phone, supervisor_phone):
        for sent, batch in phone.batches(ticks):
            steps.append((sent, 1, _uploading(session, settings, phone, batch, sent)))
    steps += [(moment, 2, _sweeping(session, moment)) for moment in ticks]

    ehs = people[_EHS_EMAIL].user_id
    handling = (
        (at_store + tick + timedelta(minutes=4), AlertKind.RESTRICTED_ZONE, "acknowledge", None),
        (signal_back + timedelta(minutes=6), AlertKind.NO_SIGNAL, "resolve", _NO_SIGNAL_NOTE),
        (
            spoofed + tick + timedelta(minutes=4),
            AlertKind.IMPLAUSIBLE_MOVEMENT,
            "violation",
            _VIOLATION_NOTE,
        ),
    )
    for moment, kind, how, note in handling:
        steps.append(
            (moment, 4, _handling(session, kind, welder_phone.user_id, how, note, ehs, moment))
        )

    for _moment, _order, step in sorted(steps, key=lambda item: (item[0], item[1])):
        await step()
    # The last sweep only counted alerts seen again; the commit comes after the tenant scope.
    await session.flush()


def _gps(point: tuple[float, float]) -> GpsCheckIn:
    return GpsCheckIn(latitude=round(point[0], 7), longitude=round(point[1], 7), accuracy_m=6.0)


def _checking_in(
    session: AsyncSession,
    settings: Settings,
    phone: _Phone,
    how: GpsCheckIn | QrCheckIn,
    at: datetime,
) -> _Step:
    return lambda: tracking.check_in(session, settings, phone.user_id, phone.watch_id, how, at)


def _uploading(
    session: AsyncSession,
    settings: Settings,
    phone: _Phone,
    batch: list[dict[str, object]],
    sent: datetime,
) -> _Step:
    return lambda: tracking.ingest(session, settings, phone.user_id, batch, sent)


def _sweeping(session: AsyncSession, moment: datetime) -> _Step:
    return lambda: session.run_sync(lambda sync_session: tracking.sweep(sync_session, moment))


def _handling(
    session: AsyncSession,
    kind: AlertKind,
    user_id: uuid.UUID,
    how: str,
    note: str | None,
    actor_id: uuid.UUID,
    moment: datetime,
) -> _Step:
    async def handle() -> None:
        alert = await session.scalar(
            select(Alert).where(Alert.kind == kind.value, Alert.user_id == user_id)
        )
        assert alert is not None, kind
        if how == "acknowledge":
            await alerts.acknowledge(session, alert.id, actor_id=actor_id, now=moment)
        elif how == "resolve":
            await alerts.resolve(session, alert.id, note or "", actor_id=actor_id, now=moment)
        else:
            await alerts.mark_violation(
                session, alert.id, note or "", actor_id=actor_id, now=moment
            )

    return handle
