"""The demo tenant's zones and work permits (作业票).

Every plant gets its zones — process units, a tank farm, the jetty, the maintenance workshop, a
restricted store and an assembly point — drawn in WGS-84 a few hundred metres around the plant.
Then about two hundred permits of all eight kinds of special work, in every state of their life,
spread over the last 90 days so the HQ metrics have something to chart.

Everything goes through the real services with ``now=`` set to the moment it happened: the
contractor's administrator applies and gives the work leader's opinion, each step is decided by a
holder of its role (mostly standing in the zone, a few from the office), gas is analysed before
hot work and confined space entry, the briefing is given and signed stroke by stroke, the
measures are confirmed on site, and work starts, pauses, resumes, completes and is accepted.
Expiry is the beat's own job (:func:`permits.services.expire_overdue`), run at the moment the
window lapsed. The plants differ as HQ should see it: Ningbo's approvers decide fastest and its
guardians check in by phone on every job reported done, Nanjing's less so, Huizhou's slowest and
seldom (``APPROVAL_PACE``, ``CHECK_IN_SHARE``). Briefing signatures are sealed with the real
clock (the training services take no ``now``): a signature is always given now.

The crews are the maintenance companies' workers (``portal.demo.DEMO_CONTRACTORS``), inducted
for their plant here in assisted sessions on their administrator's tablet, as the training seed
does. Seeding is idempotent: zones are matched by name, a worker who attempted an induction is
left alone, and permits are seeded only into a tenant that has none.

``DEMO_BROWSER_PERMIT`` says what a browser test needs to apply for a level-1 hot work permit
today in NB01 and take it through its chain.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from geofence import services as geofence
from geofence import tracking
from geofence.models import Zone
from geofence.schemas import CircleIn, GpsCheckIn, PolygonIn, ZoneIn
from infra.db import utcnow
from infra.settings import Settings
from infra.storage import ObjectStorage, storage_from_settings
from onboarding.catalogue import WorkType
from onboarding.models import Worker
from permits import chains
from permits import services as permits
from permits.catalogue import checklist_codes
from permits.models import Permit
from permits.rules import ApprovalRole, GasUnit, HeightHazard, HotWorkLevel
from permits.schemas import (
    BlindPlateDetails,
    ChecklistAnswer,
    ConfinedSpaceDetails,
    ConfirmIn,
    CrewIn,
    DecisionIn,
    ExcavationDetails,
    GasAnalysisIn,
    HeightDetails,
    HotWorkDetails,
    LiftingDetails,
    PermitDetails,
    PermitIn,
    PositionIn,
    ReadingIn,
    RoadClosureDetails,
    TempPowerDetails,
)
from permits.states import PermitState
from portal.demo_training import (
    _TABLET,
    TRAINING_CONTRACTOR_ADMIN,
    _principal,
    _Session,
    _take,
    signature_strokes,
)
from tenants import services
from tenants.access import Principal
from tenants.models import Membership, Plant, Role, Tenant, User
from training import briefings
from training.evidence import SigningDevice
from training.models import Induction
from training.schemas import PositionIn as SignPosition
from training.schemas import SignatureIn

# --- zones -----------------------------------------------------------------------------------

_M_PER_DEGREE = 111_320.0


@dataclass(frozen=True)
class _ZoneSpec:
    name: str
    kind: str
    # Centre east and north of the plant's position, size east-west and north-south, rotation
    # (degrees anticlockwise), all in metres; a circle has a radius instead of a size.
    east: float
    north: float
    width: float = 0.0
    depth: float = 0.0
    angle: float = 0.0
    radius: float | None = None
    buffer_m: float = 15.0
    # Where in the zone the permits' equipment is: (category, tag) — see _JOBS.
    sites: tuple[tuple[str, str], ...] = ()


_Z = _ZoneSpec
DEMO_ZONES: MappingProxyType[str, tuple[_ZoneSpec, ...]] = MappingProxyType(
    {
        "NB01": (
            _Z(
                "常减压装置区",
                "work_area",
                -260,
                180,
                320,
                210,
                8,
                sites=(
                    ("unit", "常压塔 T-101"),
                    ("unit", "减压炉 F-102"),
                    ("unit", "初馏塔 T-100"),
                ),
            ),
            _Z(
                "加氢裂化装置区",
                "work_area",
                190,
                240,
                280,
                190,
                8,
                sites=(("unit", "加氢反应器 R-201"), ("unit", "高压分离器 D-203")),
            ),
            _Z(
                "罐区A",
                "work_area",
                -340,
                -290,
                300,
                240,
                0,
                sites=(("tank", "3# 原油储罐 TK-103"), ("tank", "5# 石脑油储罐 TK-105")),
            ),
            _Z(
                "液化烃球罐区",
                "work_area",
                140,
                -340,
                220,
                200,
                0,
                sites=(("tank", "2# 丙烯球罐 V-602"),),
            ),
            _Z("码头", "work_area", 640, -560, 460, 90, 28, sites=(("dock", "2# 泊位输油臂"),)),
            _Z("维修车间", "work_area", 470, 40, 110, 70, 8, sites=(("shop", "机修车间检修平台"),)),
            _Z("液氯库房", "restricted", 560, 210, 45, 30, 8, buffer_m=5),
            _Z("1号集合点", "assembly_point", 60, 420, radius=35, buffer_m=0),
        ),
        "NJ01": (
            _Z(
                "氯碱装置区",
                "work_area",
                -220,
                210,
                300,
                200,
                -6,
                sites=(("unit", "电解槽厂房 E-301"), ("unit", "氯气干燥塔 T-302")),
            ),
            _Z(
                "环氧乙烷装置区",
                "work_area",
                230,
                200,
                260,
                210,
                -6,
                sites=(("unit", "环氧乙烷反应器 R-401"), ("unit", "精制塔 T-405")),
            ),
            _Z(
                "合成氨装置区",
                "work_area",
                20,
                -120,
                240,
                180,
                0,
                sites=(("unit", "合成塔 R-501"), ("unit", "氨冷器 E-507")),
            ),
            _Z(
                "罐区A",
                "work_area",
                -360,
                -300,
                280,
                230,
                0,
                sites=(("tank", "1# 液碱储罐 TK-201"), ("tank", "3# 乙二醇储罐 TK-203")),
            ),
            _Z("码头", "work_area", 520, -520, 420, 80, 15, sites=(("dock", "1# 泊位装卸臂"),)),
            _Z(
                "维修车间", "work_area", 420, -60, 120, 70, 0, sites=(("shop", "维修车间检修平台"),)
            ),
            _Z("液氯库房", "restricted", -460, 120, 60, 40, -6, buffer_m=5),
            _Z("A区集合点", "assembly_point", -80, 430, radius=40, buffer_m=0),
        ),
        "HZ01": (
            _Z(
                "苯乙烯装置区",
                "work_area",
                -240,
                170,
                310,
                220,
                12,
                sites=(("unit", "乙苯脱氢反应器 R-601"), ("unit", "苯乙烯精馏塔 T-603")),
            ),
            _Z(
                "聚碳酸酯装置区",
                "work_area",
                220,
                220,
                270,
                200,
                12,
                sites=(("unit", "聚合釜 R-701"), ("unit", "脱挥器 D-705")),
            ),
            _Z(
                "罐区A",
                "work_area",
                -320,
                -310,
                300,
                250,
                0,
                sites=(("tank", "2# 苯储罐 TK-302"), ("tank", "4# 丙烯储罐 TK-304")),
            ),
            _Z("码头", "work_area", 610, -480, 480, 90, 35, sites=(("dock", "3# 泊位输油臂"),)),
            _Z("维修车间", "work_area", 450, 0, 110, 80, 0, sites=(("shop", "维修车间检修平台"),)),
            _Z("液氯库房", "restricted", 560, 240, 50, 35, 12, buffer_m=5),
            _Z("1号集合点", "assembly_point", 40, 450, radius=35, buffer_m=0),
        ),
    }
)

# Where the group's offices are: the approvals "from the office", away from every zone.
_OFFICE = (-900.0, 650.0)


def _offset(latitude: float, longitude: float, east: float, north: float) -> tuple[float, float]:
    return (
        latitude + north / _M_PER_DEGREE,
        longitude + east / (_M_PER_DEGREE * math.cos(math.radians(latitude))),
    )


def _shape(plant: Plant, spec: _ZoneSpec) -> PolygonIn | CircleIn:
    if spec.radius is not None:
        lat, lon = _offset(plant.latitude, plant.longitude, spec.east, spec.north)
        return CircleIn(center=(round(lon, 7), round(lat, 7)), radius_m=spec.radius)
    # A rectangle with one corner cut (a road or a pipe rack runs past it), turned a little.
    w, d = spec.width / 2, spec.depth / 2
    cut = min(w, d) * 0.35
    corners = [(-w, -d), (w, -d), (w, d - cut), (w - cut, d), (-w, d)]
    angle = math.radians(spec.angle)
    ring = []
    for x, y in corners:
        east = spec.east + x * math.cos(angle) - y * math.sin(angle)
        north = spec.north + x * math.sin(angle) + y * math.cos(angle)
        lat, lon = _offset(plant.latitude, plant.longitude, east, north)
        ring.append((round(lon, 7), round(lat, 7)))
    ring.append(ring[0])
    return PolygonIn(coordinates=[ring])


async def draw_zone(
    session: AsyncSession, plant: Plant, spec: _ZoneSpec, author_id: uuid.UUID
) -> Zone:
    return await geofence.create_zone(
        session,
        ZoneIn(
            plant_id=plant.id,
            name=spec.name,
            kind=spec.kind,
            shape=_shape(plant, spec),
            buffer_m=spec.buffer_m,
        ),
        actor_id=author_id,
    )


async def _ensure_zones(
    session: AsyncSession, plants: dict[str, Plant], author_id: uuid.UUID
) -> dict[tuple[str, str], Zone]:
    zones = {}
    for code, specs in DEMO_ZONES.items():
        plant = plants[code]
        existing = {zone.name: zone for zone in await geofence.list_zones(session, plant.id)}
        for spec in specs:
            zone = existing.get(spec.name)
            if zone is None:
                zone = await draw_zone(session, plant, spec, author_id)
            zones[(code, spec.name)] = zone
    return zones


# --- who applies, who works ------------------------------------------------------------------

# The maintenance company applying at each plant (portal.demo.DEMO_CONTRACTORS), by its
# administrator; 宁波海安机电 (the demo's contractor_admin login) also works at NB01.
PLANT_CONTRACTORS = MappingProxyType(
    {
        "NB01": "yu.xiaofeng@mingzhou-jwx.example",
        "NJ01": "han.lijun@yangzi-jx.example",
        "HZ01": "zhong.weiming@huasheng-pe.example",
    }
)
# Roster positions (see portal.demo._ROSTER): welders, confined-space fitters, crane operator,
# signaller, electrician, scaffolder, safety officer, labourer.
_WELDER, _WELDER_HEIGHT, _FITTER, _FITTER2, _OPERATOR, _SIGNALLER = 0, 1, 2, 3, 4, 5
_ELECTRICIAN, _SCAFFOLDER, _SAFETY, _LABOURER = 6, 7, 8, 9
# Who goes on each kind of permit, and their duty on it; the first is the work leader.
_CREWS: dict[WorkType, tuple[tuple[int, str], ...]] = {
    WorkType.HOT_WORK: ((_WELDER, "焊工"), (_WELDER_HEIGHT, "焊工")),
    WorkType.CONFINED_SPACE: ((_FITTER, "进入作业"), (_FITTER2, "进入作业")),
    WorkType.BLIND_PLATE: ((_FITTER, "管工"), (_LABOURER, "辅助")),
    WorkType.HEIGHT: ((_SCAFFOLDER, "架子工"), (_WELDER_HEIGHT, "高处安装")),
    WorkType.LIFTING: ((_OPERATOR, "司机"), (_SIGNALLER, "指挥/司索")),
    WorkType.TEMP_POWER: ((_ELECTRICIAN, "电工"),),
    WorkType.EXCAVATION: ((_LABOURER, "挖掘"), (_FITTER2, "管线确认")),
    WorkType.ROAD_CLOSURE: ((_LABOURER, "设置围挡"), (_SCAFFOLDER, "交通疏导")),
}
# The work-type inductions a plant publishes (portal.demo_training) and who on the roster takes
# them: everyone who may be on such a permit, the safety officer (a guardian) included.
_TYPE_INDUCTION_TAKERS = {
    ("NB01", WorkType.HOT_WORK): (_WELDER, _WELDER_HEIGHT, _SAFETY),
    ("NB01", WorkType.LIFTING): (_OPERATOR, _SIGNALLER, _SAFETY),
    ("NJ01", WorkType.CONFINED_SPACE): (_FITTER, _FITTER2, _SAFETY),
}


@dataclass(frozen=True)
class DemoBrowserPermit:
    """What the browser test needs to apply for a hot work permit in NB01 today: who applies,
    where, with whom, and who decides each step of the chain. On a rest day, a holiday or at
    night the level-1 request is raised to special (§5.1.1) and the approver is the leader in
    charge instead of the safety department; both are listed."""

    plant_code: str
    zone_name: str
    work_type: str
    requested_level: str
    contractor_name: str
    applicant_email: str
    crew: tuple[str, ...]
    work_leader: str
    guardian_name: str
    guardian_email: str
    approvers: MappingProxyType[str, str]
    window_hours: int = 6


DEMO_BROWSER_PERMIT = DemoBrowserPermit(
    plant_code="NB01",
    zone_name="常减压装置区",
    work_type=WorkType.HOT_WORK.value,
    requested_level=HotWorkLevel.LEVEL1.value,
    contractor_name="宁波海安机电安装工程有限公司",
    applicant_email=TRAINING_CONTRACTOR_ADMIN,
    # 王大力: welding certificate valid 400 days, NB01 入厂安全教育 and 动火作业专项 signed.
    crew=("王大力",),
    work_leader="王大力",
    guardian_name="赵磊",
    guardian_email="zhao.lei@donghai-chem.example",
    approvers=MappingProxyType(
        {
            ApprovalRole.WORK_LEADER.value: TRAINING_CONTRACTOR_ADMIN,
            ApprovalRole.LOCAL_UNIT.value: "chen.gang@donghai-chem.example",
            ApprovalRole.SAFETY_DEPARTMENT.value: "li.guoqiang@donghai-chem.example",
            ApprovalRole.LEADER_IN_CHARGE.value: "zhang.wei@donghai-chem.example",
            ApprovalRole.SHIFT_LEADER.value: "chen.gang@donghai-chem.example",
        }
    ),
)

# --- what the permits say --------------------------------------------------------------------

_HAZARDS = {
    WorkType.HOT_WORK: (
        "易燃易爆介质泄漏遇明火引发火灾爆炸",
        "焊渣飞溅引燃周边可燃物",
        "灼烫、触电",
    ),
    WorkType.CONFINED_SPACE: (
        "缺氧窒息",
        "残留有毒气体中毒",
        "可燃气体积聚爆炸",
        "高处坠落及物体打击",
    ),
    WorkType.BLIND_PLATE: ("管线内残液喷出灼伤", "有毒介质泄漏中毒", "带压拆卸法兰伤人"),
    WorkType.HEIGHT: ("高处坠落", "物体打击", "脚手架失稳坍塌"),
    WorkType.LIFTING: ("吊物坠落伤人", "起重机倾覆", "吊臂碰撞管廊及带电线路"),
    WorkType.TEMP_POWER: ("触电", "电气火花引燃可燃气体", "电缆破损漏电"),
    WorkType.EXCAVATION: ("挖断埋地电缆、管线", "坑壁坍塌", "人员坠坑"),
    WorkType.ROAD_CLOSURE: ("车辆误入作业区撞击伤人", "消防通道受阻", "夜间照明不足"),
}
_EMERGENCY = {
    WorkType.HOT_WORK: (
        "发现泄漏立即停止动火，撤离至上风向",
        "初期火灾用灭火器扑救并拨打内线应急电话",
    ),
    WorkType.CONFINED_SPACE: (
        "监护人发现异常立即组织撤离",
        "佩戴正压式空气呼吸器施救，严禁盲目施救",
    ),
    WorkType.BLIND_PLATE: ("介质喷出立即撤离并关闭上游阀门", "灼伤人员立即用大量清水冲洗并送医"),
    WorkType.HEIGHT: ("坠落悬挂人员 15 分钟内救下", "受伤人员原地固定并拨打急救电话"),
    WorkType.LIFTING: ("异常情况立即停止吊装，吊物落地", "人员受伤立即送医并保护现场"),
    WorkType.TEMP_POWER: ("触电立即切断电源后施救", "电气火灾使用干粉灭火器扑救"),
    WorkType.EXCAVATION: ("挖到不明管线立即停止并报告", "坑壁坍塌立即撤离并组织救援"),
    WorkType.ROAD_CLOSURE: ("应急车辆到达时立即撤除围挡放行", "发生交通事故立即报告并保护现场"),
}
# (location, work content) per kind of work; ``{site}`` is the equipment, ``{zone}`` the zone.
_JOBS = {
    WorkType.HOT_WORK: (
        ("{zone} {site} 二层平台", "{site} 出口管线 DN150 弯头更换，电焊焊接"),
        ("{zone} {site} 旁管廊", "{site} 管托及支架补焊加固"),
        ("{zone} {site} 检修区", "{site} 检修人孔螺栓气割拆除"),
        ("{zone} {site}", "{site} 消防喷淋管线补焊及打磨"),
    ),
    WorkType.CONFINED_SPACE: (
        ("{zone} {site} 内部", "{site} 内部检查、清理结垢"),
        ("{zone} {site} 内部", "{site} 内壁防腐涂层修补"),
    ),
    WorkType.BLIND_PLATE: (
        ("{zone} {site} 进料线法兰", "{site} 进料线{action}盲板"),
        ("{zone} {site} 出料线法兰", "{site} 出料线{action}盲板"),
    ),
    WorkType.HEIGHT: (
        ("{zone} {site} 外部平台", "{site} 保温层拆除及恢复"),
        ("{zone} {site} 顶部", "{site} 顶部安全阀检修，搭设脚手架作业"),
    ),
    WorkType.LIFTING: (
        ("{zone} {site} 吊装区", "{site} 换热器管束抽出及回装吊装"),
        ("{zone} {site} 吊装区", "{site} 更换设备及构件吊装"),
    ),
    WorkType.TEMP_POWER: (
        ("{zone} {site} 临时配电箱", "为 {site} 检修作业接临时照明及电焊机电源"),
    ),
    WorkType.EXCAVATION: (
        ("{zone} {site} 东侧道路旁", "开挖检查埋地消防水管线泄漏点"),
        ("{zone} {site} 南侧", "新建电缆沟开挖"),
    ),
    WorkType.ROAD_CLOSURE: (
        ("{zone} 北侧 3 号路", "{site} 检修吊装期间 3 号路断路"),
        ("{zone} 东侧 5 号路", "{site} 管线穿越道路施工断路"),
    ),
}
# Which sites each kind of work goes to. Blind plates are on the tank farms' lines only, so no
# opened line is within 30 m of the process units' hot work (§7.6).
_SITE_CATEGORIES = {
    WorkType.HOT_WORK: ("unit", "unit", "shop", "dock", "unit"),
    WorkType.CONFINED_SPACE: ("unit", "tank"),
    WorkType.BLIND_PLATE: ("tank",),
    WorkType.HEIGHT: ("unit", "tank", "dock"),
    WorkType.LIFTING: ("unit", "shop", "dock"),
    WorkType.TEMP_POWER: ("unit", "tank", "shop"),
    WorkType.EXCAVATION: ("unit", "tank", "dock"),
    WorkType.ROAD_CLOSURE: ("unit", "tank"),
}
_MEDIA = {"NB01": ("原油", "methane"), "NJ01": ("乙二醇", "ethylene"), "HZ01": ("苯", "benzene")}
_ANALYSTS = ("质检中心 王芳", "质检中心 陈静", "化验室 刘敏", "化验室 张丽")
_INSTRUMENTS = (
    "梅思安 ALTAIR 4XR 四合一检测仪",
    "华瑞 PGM-2400 多气体检测仪",
    "霍尼韦尔 BW MicroClip",
)
_REJECTIONS = (
    "动火点 15 m 内可燃物未清理，现场不具备条件",
    "隔离方案不完善，未加盲板仅关阀",
    "作业人员与现场不符，请核实后重新申请",
    "同一区域已有交叉作业，请协调时间后重新申请",
)
_RETURNS = ("请补充作业示意图及警戒范围", "作业内容描述不清，请细化作业步骤")
_CANCELS = ("检修计划调整，作业取消", "设备厂家到货延期，作业推迟", "工艺条件不具备，取消作业")
_PAUSES = (
    "午休暂停作业",
    "监护人临时离开，作业暂停（§4.10）",
    "便携式检测仪报警，暂停作业通风置换",
    "风力增大，暂停作业观察",
)
_ACCEPTANCES = (
    "现场已清理，无遗留火种，验收合格",
    "作业完成，设施恢复，验收合格",
    "工完料净场地清，同意关闭",
)

# (state, how many per plant): enough permits for the charts, every state more than once.
STATE_PLAN = (
    (PermitState.CLOSED, 22),
    (PermitState.REJECTED, 3),
    (PermitState.CANCELLED, 3),
    (PermitState.EXPIRED, 3),
    (PermitState.SUPERSEDED, 2),
    (PermitState.COMPLETED, 2),
    (PermitState.ACTIVE, 3),
    (PermitState.SUSPENDED, 2),
    (PermitState.APPROVED, 3),
    (PermitState.IN_APPROVAL, 3),
    (PermitState.SUBMITTED, 2),
    (PermitState.DRAFT, 2),
)
# Hot work is the most common special work, then height and confined space.
_TYPE_CYCLE = (
    WorkType.HOT_WORK,
    WorkType.HEIGHT,
    WorkType.CONFINED_SPACE,
    WorkType.HOT_WORK,
    WorkType.TEMP_POWER,
    WorkType.BLIND_PLATE,
    WorkType.HOT_WORK,
    WorkType.LIFTING,
    WorkType.HEIGHT,
    WorkType.EXCAVATION,
    WorkType.HOT_WORK,
    WorkType.CONFINED_SPACE,
    WorkType.ROAD_CLOSURE,
)
_HISTORY_DAYS = 88
LIGHT_VOLUME = "light"
# Of ten finished jobs, how many a plant's guardians check in on by phone: Ningbo tracks every
# job, Nanjing most, Huizhou few — the check-ins missing from its full loops.
CHECK_IN_SHARE = MappingProxyType({"NB01": 10, "NJ01": 8, "HZ01": 6})
_CHECKED_TARGETS = (PermitState.CLOSED, PermitState.SUPERSEDED, PermitState.COMPLETED)
_CHECK_IN_AFTER = timedelta(minutes=3)
_CHECK_OUT_BEFORE = timedelta(minutes=6)


def _state_plan(settings: Settings) -> tuple[tuple[PermitState, int], ...]:
    """``PORTAL_DEMO_PERMITS=light`` seeds one permit per state and plant (36 instead of 150):
    every state and kind of work still shows, in a fraction of the time. Each approval re-runs
    the gates (~30 statements), so the full set costs tens of seconds on SQLite."""
    if settings.demo_permits.strip().lower() == LIGHT_VOLUME:
        return tuple((state, 1) for state, _ in STATE_PLAN)
    return STATE_PLAN


# --- seeding ---------------------------------------------------------------------------------


@dataclass
class _Company:
    admin: permits.Actor
    workers: list[Worker]
    guardian_user: tuple[Principal, permits.Actor] | None


@dataclass
class _World:
    session: AsyncSession
    settings: Settings
    storage: ObjectStorage
    tenant: Tenant
    plants: dict[str, Plant]
    zones: dict[tuple[str, str], Zone]
    # (plant code, role) -> the host users holding it there
    hosts: dict[tuple[str, Role], list[tuple[Principal, permits.Actor]]]
    companies: dict[str, _Company]
    haian: _Company
    real_now: datetime
    rng: random.Random
    volume: tuple[tuple[PermitState, int], ...]
    pipelines: int = 0

    def host(self, code: str, role: Role) -> tuple[Principal, permits.Actor]:
        return self.rng.choice(self.hosts[(code, role)])


async def _host_users(
    session: AsyncSession, tenant: Tenant, plants: dict[str, Plant]
) -> dict[tuple[str, Role], list[tuple[Principal, permits.Actor]]]:
    rows = (
        await session.execute(
            select(Membership.role, Membership.plant_id, User.id)
            .join(User, User.id == Membership.user_id)
            .where(Membership.role.in_([role.value for role in Role if role.is_host]))
            .order_by(User.email)
        )
    ).all()
    by_id = {plant.id: code for code, plant in plants.items()}
    hosts: dict[tuple[str, Role], list[tuple[Principal, permits.Actor]]] = {}
    loaded: dict[uuid.UUID, tuple[Principal, permits.Actor]] = {}
    for role, plant_id, user_id in rows:
        if user_id not in loaded:
            principal = await services.load_principal(session, tenant, user_id)
            assert principal is not None
            loaded[user_id] = (principal, await permits.actor_for(session, principal))
        codes = [by_id[plant_id]] if plant_id else list(plants)
        for code in codes:
            hosts.setdefault((code, Role(role)), []).append(loaded[user_id])
    return hosts


async def _company(session: AsyncSession, tenant: Tenant, email: str) -> _Company:
    principal = await _principal(session, tenant, email)
    actor = await permits.actor_for(session, principal)
    assert actor.contractor_id is not None, email
    workers = list(
        await session.scalars(select(Worker).where(Worker.contractor_id == actor.contractor_id))
    )
    return _Company(actor, workers, None)


def _roster_order(company: _Company, names: Sequence[str]) -> list[Worker]:
    by_name = {worker.name: worker for worker in company.workers}
    return [by_name[name] for name in names]


async def _ensure_crew_inductions(
    session: AsyncSession,
    storage: ObjectStorage,
    tenant: Tenant,
    plants: dict[str, Plant],
    rosters: dict[str, list[Worker]],
) -> None:
    """Each crew member's 入厂安全教育 at their plant and the work-type inductions they need,
    passed and signed in an assisted session on their administrator's tablet."""
    inductions = {
        (i.plant_id, i.work_type): i
        for i in (await session.execute(select(Induction))).scalars()
        if i.current_version
    }
    for code, roster in rosters.items():
        plant = plants[code]
        admin = await _principal(session, tenant, PLANT_CONTRACTORS[code])
        plans: list[tuple[Worker, Induction, WorkType | None]] = [
            (worker, inductions[(plant.id, None)], None) for worker in roster
        ]
        for (plant_code, kind), takers in _TYPE_INDUCTION_TAKERS.items():
            if plant_code == code and (plant.id, kind.value) in inductions:
                plans += [(roster[i], inductions[(plant.id, kind.value)], kind) for i in takers]
        for worker, induction, kind in plans:
            await _take(
                session,
                storage,
                tenant,
                _Session(worker.name, code, kind, passed=True, assisted=True),
                worker,
                induction,
                plant,
                admin,
            )


def _at(plant: Plant, day: date, clock: time) -> datetime:
    return datetime.combine(day, clock, ZoneInfo(plant.timezone))


def _minutes(value: float) -> timedelta:
    return timedelta(minutes=value)


@dataclass
class _Plan:
    code: str
    work_type: WorkType
    target: PermitState
    start: datetime
    end: datetime
    company: _Company
    crew: list[tuple[Worker, str]]
    guardian_worker: Worker | None
    guardian_user: tuple[Principal, permits.Actor] | None
    zone: Zone
    site: str
    # How far the life goes and how: the variant picks among the ways into the target state.
    variant: int = 0
    # The guardian (a host user with a phone) checks in on site once work starts and out before
    # it is reported done.
    checks_in: bool = False


def _details(world: _World, plan: _Plan, index: int) -> PermitDetails:
    rng = world.rng
    medium, _ = _MEDIA[plan.code]
    kind = plan.work_type
    if kind is WorkType.HOT_WORK:
        levels = (
            HotWorkLevel.LEVEL2,
            HotWorkLevel.LEVEL1,
            HotWorkLevel.LEVEL2,
            HotWorkLevel.SPECIAL,
            HotWorkLevel.LEVEL1,
        )
        return HotWorkDetails(
            requested_level=levels[index % len(levels)],
            method=rng.choice(
                ("electric_welding", "electric_welding", "gas_welding", "cutting", "grinding")
            ),
            outdoor=plan.site != "机修车间检修平台",
            wind_force=rng.randint(1, 3),
        )
    if kind is WorkType.CONFINED_SPACE:
        return ConfinedSpaceDetails(space_name=plan.site, medium=medium)
    if kind is WorkType.BLIND_PLATE:
        world.pipelines += 1
        return BlindPlateDetails(
            pipeline_id=f"{plan.code}-P{1100 + world.pipelines}-150-A1",
            blind_id=f"MB-{plan.code}-{world.pipelines:03d}",
            action="insert" if index % 2 == 0 else "remove",
            medium=medium,
            temperature_c=round(rng.uniform(25, 45), 1),
            pressure_mpa=round(rng.uniform(0.1, 0.6), 2),
            blind_material="20# 钢",
            blind_size=rng.choice(("DN100 PN2.5", "DN150 PN2.5", "DN200 PN4.0")),
        )
    if kind is WorkType.HEIGHT:
        height = (3.5, 6.0, 8.5, 12.0, 18.0, 24.0, 32.0, 45.0)[index % 8]
        hazards = [HeightHazard.SLIPPERY] if index % 5 == 1 else []
        if index % 7 == 3:
            hazards.append(HeightHazard.POOR_LIGHT)
        return HeightDetails(
            height_m=height,
            hazards=hazards,
            has_communication=height > 30,
            wind_force=rng.randint(1, 3),
        )
    if kind is WorkType.LIFTING:
        operator, signaller = plan.crew[0][0], plan.crew[1][0]
        load = (12.0, 18.5, 26.0, 38.0, 55.0, 86.0, 120.0)[index % 7]
        crane = "LTM1300 全地面起重机" if load > 60 else "QY50 汽车起重机"
        return LiftingDetails(
            load_t=load, crane=crane, operator_id=operator.id, signaller_id=signaller.id
        )
    if kind is WorkType.TEMP_POWER:
        return TempPowerDetails(
            source=f"{plan.zone.name} 2# 变电所低压配电柜 3AA{index % 8 + 1} 回路",
            voltage_v=380 if index % 4 else 220,
            load_kw=float(rng.choice((8, 15, 22, 30, 45))),
        )
    if kind is WorkType.EXCAVATION:
        return ExcavationDetails(
            depth_m=rng.choice((0.8, 1.2, 1.5, 2.0)),
            extent=f"长 {rng.randint(4, 12)} m × 宽 {rng.choice((1.0, 1.5, 2.0))} m",
        )
    return RoadClosureDetails(
        road_section=f"厂区道路（{plan.zone.name} 旁，长约 {rng.randint(5, 12) * 10} m）",
        traffic_plan=(
            "在路口设置断路标志和围挡，车辆经 2 号路绕行，保留一条消防通道，夜间设置警示灯。"
        ),
    )


def _application(world: _World, plan: _Plan, index: int) -> PermitIn:
    plant = world.plants[plan.code]
    details = _details(world, plan, index)
    action = "加" if getattr(details, "action", "insert") == "insert" else "抽"
    location, content = world.rng.choice(_JOBS[plan.work_type])
    fill = {"zone": plan.zone.name, "site": plan.site, "action": action}
    codes = checklist_codes(plan.work_type)
    # One measure does not apply now and then (no cylinders for electric welding, no night).
    skipped = codes[-1] if index % 4 == 2 else None
    return PermitIn(
        plant_id=plant.id,
        zone_id=plan.zone.id,
        location=location.format(**fill),
        work_content=content.format(**fill),
        planned_start=plan.start,
        planned_end=plan.end,
        crew=[CrewIn(worker_id=worker.id, duty=duty) for worker, duty in plan.crew],
        work_leader_id=plan.crew[0][0].id,
        guardian_worker_id=plan.guardian_worker.id if plan.guardian_worker else None,
        guardian_user_id=plan.guardian_user[0].user_id if plan.guardian_user else None,
        hazards=list(_HAZARDS[plan.work_type]),
        emergency_measures=list(_EMERGENCY[plan.work_type]),
        checklist=[ChecklistAnswer(code=code, applies=code != skipped) for code in codes],
        details=details,
    )


def _position(world: _World, zone: Zone, *, on_site: bool) -> PositionIn:
    rng = world.rng
    if on_site:
        lat, lon = geofence.reference_point(zone)
        lat, lon = _offset(lat, lon, rng.uniform(-15, 15), rng.uniform(-15, 15))
        accuracy = rng.uniform(4, 20)
    else:
        plant = world.plants[next(c for c, p in world.plants.items() if p.id == zone.plant_id)]
        lat, lon = _offset(plant.latitude, plant.longitude, *_OFFICE)
        lat, lon = _offset(lat, lon, rng.uniform(-30, 30), rng.uniform(-30, 30))
        accuracy = rng.uniform(8, 30)
    return PositionIn(
        latitude=round(lat, 6), longitude=round(lon, 6), accuracy_m=round(accuracy, 1)
    )


# How quickly each plant's approvers decide, as a factor on the minutes a step takes: Ningbo
# decides on the spot (about 45 minutes a permit), Nanjing within a couple of hours, Huizhou's
# approvers let permits wait for hours — what HQ sees side by side.
APPROVAL_PACE = MappingProxyType({"NB01": 0.22, "NJ01": 0.8, "HZ01": 2.4})


def _step_minutes(rng: random.Random, code: str) -> float:
    roll = rng.random()
    if roll < 0.55:
        minutes = rng.uniform(4, 35)
    elif roll < 0.9:
        minutes = rng.uniform(35, 120)
    else:
        minutes = rng.uniform(120, 260)
    return max(minutes * APPROVAL_PACE.get(code, 1.0), 2.0)


async def _decider(world: _World, plan: _Plan, step_role: str) -> permits.Actor:
    role = ApprovalRole(step_role)
    if role is ApprovalRole.WORK_LEADER:
        return plan.company.admin
    return world.host(plan.code, chains.HOLDERS[role])[1]


async def _chain(
    world: _World,
    plan: _Plan,
    permit: Permit,
    submitted: datetime,
    deadline: datetime,
    *,
    stop_after: int | None = None,
    refuse_at: int | None = None,
    refusal: str = "reject",
) -> datetime:
    """Decide the steps one after another from ``submitted``, each in a few minutes to a few
    hours, all before ``deadline``; stop after ``stop_after`` decisions, or reject (return) at
    ``refuse_at``. Returns the moment of the last decision."""
    session, rng = world.session, world.rng
    steps = await permits.steps_of(session, permit.id)
    count = len(steps) if stop_after is None else stop_after
    if refuse_at is not None:
        count = refuse_at + 1
    durations = [_step_minutes(rng, plan.code) for _ in range(count)]
    room = (deadline - submitted).total_seconds() / 60
    if sum(durations) > room * 0.9:
        scale = room * 0.9 / sum(durations)
        durations = [max(d * scale, 0.5) for d in durations]
    moment = submitted
    for position, minutes in enumerate(durations):
        moment = moment + _minutes(minutes)
        step = await permits.current_step(session, permit)
        assert step is not None
        actor = await _decider(world, plan, step.role)
        refusing = position == refuse_at
        on_site = rng.random() > 0.12
        decision = DecisionIn(
            decision=refusal if refusing else "approve",
            comment=rng.choice(_REJECTIONS if refusal == "reject" else _RETURNS)
            if refusing
            else rng.choice(("", "", "同意", "同意作业，落实各项安全措施", "已现场确认")),
            position=_position(world, plan.zone, on_site=on_site),
        )
        await permits.decide(session, actor, permit.id, decision, now=moment)
    return moment


async def _brief(world: _World, plan: _Plan, permit: Permit, briefer: Principal) -> None:
    session, rng = world.session, world.rng
    assert permit.number is not None
    crew = [worker for worker, _ in plan.crew]
    briefing = await permits.prepare_briefing(
        session, await permits.actor_for(session, briefer), permit.id
    )
    lat, lon = geofence.reference_point(plan.zone)
    device = SigningDevice(
        ip_address=f"10.{rng.randint(16, 31)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}",
        user_agent=_TABLET,
    )

    def signature(name: str, seed: str) -> SignatureIn:
        return SignatureIn(
            full_name=name,
            consent=True,
            strokes=signature_strokes(seed, len(name)),
            position=SignPosition(
                latitude=round(lat + rng.uniform(-0.0001, 0.0001), 6),
                longitude=round(lon + rng.uniform(-0.0001, 0.0001), 6),
                accuracy_m=round(rng.uniform(5, 20), 1),
            ),
        )

    await briefings.sign_as_briefer(
        session,
        world.storage,
        briefer,
        briefing.id,
        signature(briefer.name, f"briefer:{briefing.id}"),
        device,
    )
    for worker in crew:
        await briefings.sign_as_crew(
            session,
            world.storage,
            briefer,
            briefing.id,
            worker.id,
            signature(worker.name, f"crew:{briefing.id}:{worker.id}"),
            device,
        )


def _readings(world: _World, plan: _Plan, *, passing: bool = True) -> list[ReadingIn]:
    rng = world.rng
    _, flammable = _MEDIA[plan.code]
    value = rng.uniform(0.02, 0.12) if passing else rng.uniform(0.6, 1.1)
    if flammable in ("benzene", "ethylene"):
        # Low-LEL gases: the 0.2 % limit of §5.3.2.
        value = rng.uniform(0.01, 0.08) if passing else rng.uniform(0.3, 0.5)
    if flammable == "benzene" and passing:
        # Benzene is toxic long before it burns: read in ppm (GBZ 2.1 limit 10 mg/m³).
        reading = ReadingIn(gas=flammable, value=round(rng.uniform(0.2, 1.5), 1), unit=GasUnit.PPM)
    else:
        reading = ReadingIn(gas=flammable, value=round(value, 3), unit=GasUnit.PERCENT_VOL)
    readings = [
        ReadingIn(gas="oxygen", value=round(rng.uniform(20.5, 20.9), 1), unit=GasUnit.PERCENT_VOL),
        reading,
    ]
    if plan.work_type is WorkType.CONFINED_SPACE:
        readings += [
            ReadingIn(gas="hydrogen_sulfide", value=round(rng.uniform(0, 2), 1), unit=GasUnit.PPM),
            ReadingIn(gas="carbon_monoxide", value=round(rng.uniform(0, 6), 1), unit=GasUnit.PPM),
        ]
        if plan.code == "NJ01":
            readings.append(
                ReadingIn(gas="chlorine", value=round(rng.uniform(0, 0.2), 2), unit=GasUnit.PPM)
            )
    return readings


async def _sample(
    world: _World,
    plan: _Plan,
    permit: Permit,
    actor: permits.Actor,
    at: datetime,
    *,
    passing: bool = True,
) -> None:
    rng = world.rng
    await permits.record_gas_analysis(
        world.session,
        actor,
        permit.id,
        GasAnalysisIn(
            sampled_at=at,
            point=f"{plan.site} 作业点"
            if plan.work_type is WorkType.HOT_WORK
            else f"{plan.site} 人孔上、中、下部",
            readings=_readings(world, plan, passing=passing),
            analyst=rng.choice(_ANALYSTS),
            instrument=f"{rng.choice(_INSTRUMENTS)} SN{rng.randint(210000, 249999)}",
        ),
        now=at + _minutes(rng.uniform(0.2, 1)),
    )


def _gas_analysed(plan: _Plan) -> bool:
    return plan.work_type in (WorkType.HOT_WORK, WorkType.CONFINED_SPACE)


async def _start(world: _World, plan: _Plan, permit: Permit, approved: datetime) -> datetime:
    """Briefing, measures confirmed, gas analysed, work started; returns the start."""
    session, rng = world.session, world.rng
    site_host = plan.guardian_user or world.host(plan.code, Role.UNIT_SUPERVISOR)
    start = max(plan.start + _minutes(rng.uniform(0, 12)), approved + _minutes(rng.uniform(8, 15)))
    await _brief(world, plan, permit, site_host[0])
    await permits.confirm_checklist(
        session,
        site_host[1],
        permit.id,
        ConfirmIn(codes=[item["code"] for item in permit.checklist if item["applies"]]),
        now=start - _minutes(rng.uniform(3, 6)),
    )
    if _gas_analysed(plan):
        # Each plant day needs its own analysis (§5.3.1d): a start just after midnight is
        # sampled after midnight too, and starts once the sample is in.
        plant_zone = ZoneInfo(world.plants[plan.code].timezone)
        midnight = datetime.combine(start.astimezone(plant_zone).date(), time(), plant_zone)
        earliest = max(approved + _minutes(1), midnight)
        sampled = max(start - _minutes(rng.uniform(5, 15)), earliest)
        if plan.variant % 5 == 4:
            # The first sample fails: ventilate, purge and analyse again.
            failed = max(start - _minutes(26), earliest)
            await _sample(world, plan, permit, site_host[1], failed, passing=False)
            sampled = max(sampled, failed + _minutes(5))
        await _sample(world, plan, permit, site_host[1], sampled)
        start = max(start, sampled + _minutes(2))
    await permits.start(session, site_host[1], permit.id, now=start)
    if plan.checks_in and plan.guardian_user is not None:
        lat, lon = geofence.reference_point(plan.zone)
        await tracking.check_in(
            session,
            world.settings,
            plan.guardian_user[0].user_id,
            permit.id,
            GpsCheckIn(latitude=round(lat, 7), longitude=round(lon, 7), accuracy_m=6.0),
            start + _CHECK_IN_AFTER,
        )
    return start


async def _pause(
    world: _World, plan: _Plan, permit: Permit, at: datetime, *, resume_after: float | None
) -> datetime:
    session, rng = world.session, world.rng
    site_host = plan.guardian_user or world.host(plan.code, Role.UNIT_SUPERVISOR)
    await permits.suspend(session, site_host[1], permit.id, rng.choice(_PAUSES), now=at)
    if resume_after is None:
        return at
    back = at + _minutes(resume_after)
    if _gas_analysed(plan):
        plant_zone = ZoneInfo(world.plants[plan.code].timezone)
        midnight = datetime.combine(back.astimezone(plant_zone).date(), time(), plant_zone)
        sampled = max(back - _minutes(rng.uniform(4, 10)), midnight, at)
        await _sample(world, plan, permit, site_host[1], sampled)
        back = max(back, sampled + _minutes(2))
    await permits.resume(session, site_host[1], permit.id, now=back)
    return back


async def _finish(
    world: _World, plan: _Plan, permit: Permit, after: datetime, *, accept: bool
) -> None:
    session, rng = world.session, world.rng
    done = max(plan.end - _minutes(rng.uniform(0, 50)), after + _minutes(20))
    if plan.checks_in and plan.guardian_user is not None:
        await tracking.check_out(
            session, plan.guardian_user[0].user_id, permit.id, done - _CHECK_OUT_BEFORE
        )
    await permits.complete(session, plan.company.admin, permit.id, now=done)
    if accept:
        acceptor = world.host(plan.code, rng.choice((Role.EHS_OFFICER, Role.UNIT_SUPERVISOR)))
        await permits.accept(
            session,
            acceptor[1],
            permit.id,
            rng.choice(_ACCEPTANCES),
            now=done + _minutes(rng.uniform(15, 150)),
        )


async def _live(world: _World, plan: _Plan, index: int) -> Permit:
    """One permit's life up to its target state."""
    session, rng, target = world.session, world.rng, plan.target
    admin = plan.company.admin
    data = _application(world, plan, index)
    horizon = world.real_now - _minutes(1)
    # Applied in the afternoon of the day before the work; a few hours ago for those still in
    # approval.
    plant = world.plants[plan.code]
    if target in (PermitState.SUBMITTED, PermitState.IN_APPROVAL, PermitState.DRAFT):
        submitted = world.real_now - _minutes(rng.uniform(30, 300))
    else:
        eve = plan.start.astimezone(ZoneInfo(plant.timezone)).date() - timedelta(days=1)
        submitted = _at(plant, eve, time(13, 30)) + _minutes(rng.uniform(0, 210))
    submitted = min(submitted, world.real_now - _minutes(rng.uniform(20, 300)))
    created = submitted - _minutes(rng.uniform(8, 90))
    returned = target is PermitState.DRAFT and plan.variant % 2 == 1
    if target is PermitState.DRAFT and not returned:
        return await permits.create_permit(session, admin, data, now=submitted)
    permit = await permits.create_permit(session, admin, data, now=created)
    if target is PermitState.CANCELLED and plan.variant % 3 == 0:
        await permits.cancel(session, admin, permit.id, rng.choice(_CANCELS), now=submitted)
        return permit
    await permits.submit(session, admin, permit.id, now=submitted)
    deadline = min(plan.start + _minutes(5), horizon)
    if returned:
        await _chain(world, plan, permit, submitted, horizon, refuse_at=1, refusal="return")
        return permit
    if target is PermitState.SUBMITTED:
        return permit
    steps = len(await permits.steps_of(session, permit.id))
    if target is PermitState.IN_APPROVAL:
        await _chain(world, plan, permit, submitted, horizon, stop_after=rng.randint(1, steps - 1))
        return permit
    if target is PermitState.REJECTED:
        await _chain(world, plan, permit, submitted, deadline, refuse_at=rng.randint(1, steps - 1))
        return permit
    if target is PermitState.CANCELLED and plan.variant % 3 == 1:
        moment = await _chain(world, plan, permit, submitted, deadline, stop_after=1)
        await permits.cancel(
            session, admin, permit.id, rng.choice(_CANCELS), now=moment + _minutes(40)
        )
        return permit
    if target is PermitState.EXPIRED and plan.variant % 3 == 2:
        await _chain(world, plan, permit, submitted, deadline, stop_after=rng.randint(1, steps - 1))
        await _expire(world, plan)
        return permit
    first_deadline = plan.start - _minutes(360) if target is PermitState.SUPERSEDED else deadline
    approved = await _chain(world, plan, permit, submitted, first_deadline)
    if target is PermitState.APPROVED:
        return permit
    if target is PermitState.CANCELLED:
        ehs = world.host(plan.code, Role.EHS_OFFICER)[1]
        await permits.cancel(
            session, ehs, permit.id, rng.choice(_CANCELS), now=approved + _minutes(30)
        )
        return permit
    if target is PermitState.EXPIRED and plan.variant % 3 == 0:
        await _expire(world, plan)
        return permit
    if target is PermitState.SUPERSEDED:
        # The crew changes after approval: a new version goes through the chain again (§4.16).
        revised_at = approved + _minutes(rng.uniform(10, 40))
        new = await permits.revise(session, admin, permit.id, now=revised_at)
        revision = _revision(plan, permit)
        await permits.update_permit(session, admin, new.id, revision, now=revised_at + _minutes(5))
        resubmitted = revised_at + _minutes(rng.uniform(6, 15))
        await permits.submit(session, admin, new.id, now=resubmitted)
        approved = await _chain(world, plan, new, resubmitted, deadline)
        plan.end -= timedelta(hours=1)
        permit = new
        target = PermitState.CLOSED
    started = await _start(world, plan, permit, approved)
    moment = started
    if target is PermitState.SUSPENDED:
        await _pause(
            world,
            plan,
            permit,
            min(horizon, started + _minutes(rng.uniform(30, 90))),
            resume_after=None,
        )
        return permit
    pause_at = min(started + _minutes(rng.uniform(90, 180)), plan.end - _minutes(120))
    if (
        plan.variant % 6 == 1
        and target is not PermitState.ACTIVE
        and pause_at > started + _minutes(20)
    ):
        moment = await _pause(
            world,
            plan,
            permit,
            pause_at,
            resume_after=rng.uniform(25, 75),
        )
    if target is PermitState.ACTIVE:
        return permit
    if target is PermitState.EXPIRED:
        # Work stopped without being reported done: the beat lets the permit lapse.
        await _expire(world, plan)
        return permit
    await _finish(world, plan, permit, moment, accept=target is PermitState.CLOSED)
    return permit


def _revision(plan: _Plan, permit: Permit) -> PermitIn:
    """The approved permit as applied for, finishing an hour earlier: the unit moved the work
    to fit the shift change, so a new version is approved (§4.16)."""
    return PermitIn(
        plant_id=permit.plant_id,
        zone_id=permit.zone_id,
        location=permit.location,
        work_content=permit.work_content + "（作业时间调整）",
        planned_start=plan.start,
        planned_end=plan.end - timedelta(hours=1),
        crew=[CrewIn(worker_id=worker.id, duty=duty) for worker, duty in plan.crew],
        work_leader_id=permit.work_leader_id,
        guardian_worker_id=permit.guardian_worker_id,
        guardian_user_id=permit.guardian_user_id,
        hazards=list(permit.hazards),
        emergency_measures=list(permit.emergency_measures),
        checklist=[
            ChecklistAnswer(code=item["code"], applies=item["applies"]) for item in permit.checklist
        ],
        details=msgspec.convert(
            {**permit.details, "work_type": plan.work_type.value}, PermitDetails
        ),
    )


async def _expire(world: _World, plan: _Plan) -> None:
    moment = plan.end + _minutes(world.rng.uniform(1, 14))
    await world.session.run_sync(lambda sync: permits.expire_overdue(sync, moment))


def _window(
    world: _World, plan_code: str, kind: WorkType, target: PermitState, day_offset: int
) -> tuple[datetime, datetime]:
    """The planned window: a day shift ``day_offset`` days from today for the permits of the
    past; around now for active and suspended work; later today or tomorrow for the rest."""
    rng, plant = world.rng, world.plants[plan_code]
    hours = {
        WorkType.HOT_WORK: 7.5,
        WorkType.CONFINED_SPACE: 8.0,
        WorkType.BLIND_PLATE: 3.0,
        WorkType.HEIGHT: 9.0,
        WorkType.LIFTING: 6.0,
        WorkType.TEMP_POWER: 24.0 * 4 + 9,
        WorkType.EXCAVATION: 9.0,
        WorkType.ROAD_CLOSURE: 8.0,
    }[kind]
    if kind is WorkType.HEIGHT and rng.random() < 0.3:
        hours += 24
    if target in (PermitState.ACTIVE, PermitState.SUSPENDED):
        start = world.real_now - _minutes(rng.uniform(100, 200))
        if kind is WorkType.HOT_WORK:
            return start, start + timedelta(hours=7)
        return start, start + timedelta(hours=max(hours, 7.0))
    today = world.real_now.astimezone(ZoneInfo(plant.timezone)).date()
    day = today + timedelta(days=day_offset)
    clock = time(8, rng.choice((0, 0, 30))) if hours < 24 * 4 else time(8, 0)
    if kind is WorkType.BLIND_PLATE or kind is WorkType.LIFTING:
        clock = time(rng.choice((8, 9, 13)), rng.choice((0, 30)))
    start = _at(plant, day, clock)
    return start, start + timedelta(hours=hours)


def checks_in_on(code: str, target: PermitState, index: int) -> bool:
    """Whether the guardian of a plant's ``index``-th job checks in on site: only on jobs that
    are reported done (the live ones are the geofence seed's), by the plant's share."""
    return target in _CHECKED_TARGETS and (index * 3) % 10 < CHECK_IN_SHARE.get(code, 0)


def _plans(world: _World, code: str, roster: list[Worker]) -> list[_Plan]:
    rng = world.rng
    company = world.companies[code]
    sites: dict[str, list[tuple[Zone, str]]] = {}
    for spec in DEMO_ZONES[code]:
        for category, tag in spec.sites:
            sites.setdefault(category, []).append((world.zones[(code, spec.name)], tag))
    guardians = world.hosts.get((code, Role.GUARDIAN), [])
    plans = []
    index = 0
    offset = {"NB01": 0, "NJ01": 5, "HZ01": 9}[code]
    for target, count in world.volume:
        for n in range(count):
            kind = _TYPE_CYCLE[(index + offset) % len(_TYPE_CYCLE)]
            index += 1
            if target is PermitState.CLOSED:
                day_offset = -(_HISTORY_DAYS - (n * (_HISTORY_DAYS - 3)) // count)
            elif target in (
                PermitState.REJECTED,
                PermitState.CANCELLED,
                PermitState.EXPIRED,
                PermitState.SUPERSEDED,
            ):
                day_offset = -rng.randint(3, _HISTORY_DAYS)
            elif target is PermitState.COMPLETED:
                day_offset = -rng.randint(0, 2) if kind is not WorkType.TEMP_POWER else -5
            elif target in (PermitState.ACTIVE, PermitState.SUSPENDED):
                day_offset = 0
            else:
                day_offset = rng.randint(1, 3)
            if target is PermitState.COMPLETED and kind is WorkType.TEMP_POWER:
                kind = WorkType.HEIGHT
            start, end = _window(world, code, kind, target, day_offset)
            past = (
                PermitState.CLOSED,
                PermitState.REJECTED,
                PermitState.CANCELLED,
                PermitState.EXPIRED,
                PermitState.SUPERSEDED,
            )
            if target in past and end > world.real_now - timedelta(hours=6):
                shift = end - world.real_now + timedelta(days=1)
                start, end = start - shift, end - shift
            if target is PermitState.COMPLETED and end > world.real_now:
                shift = end - world.real_now + timedelta(hours=rng.uniform(2, 20))
                start, end = start - shift, end - shift
            category = rng.choice(_SITE_CATEGORIES[kind])
            zone, site = rng.choice(sites[category])
            use_haian = (
                code == "NB01"
                and kind is WorkType.HOT_WORK
                and index % 4 == 0
                and target not in (PermitState.ACTIVE, PermitState.SUSPENDED)
            )
            owner = world.haian if use_haian else company
            if use_haian:
                crew = [(next(w for w in world.haian.workers if w.name == "王大力"), "焊工")]
            else:
                members = _CREWS[kind]
                # Most jobs are one tradesman and the guardian; lifting needs both hands.
                if kind is not WorkType.LIFTING and index % 3 != 0:
                    members = members[:1]
                crew = [(roster[i], duty) for i, duty in members]
            by_user = use_haian or (bool(guardians) and index % 3 == 0)
            guardian_user = rng.choice(guardians) if by_user and guardians else None
            checks_in = bool(guardians) and checks_in_on(code, target, index)
            if checks_in and guardian_user is None:
                guardian_user = guardians[index % len(guardians)]
            plans.append(
                _Plan(
                    code=code,
                    work_type=kind,
                    target=target,
                    start=start,
                    end=end,
                    company=owner,
                    crew=crew,
                    guardian_worker=None if guardian_user else roster[_SAFETY],
                    guardian_user=guardian_user,
                    zone=zone,
                    site=site,
                    variant=n + index,
                    checks_in=checks_in,
                )
            )
    return plans


async def seed_permits(
    session: AsyncSession, settings: Settings, tenant: Tenant, plants: dict[str, Plant]
) -> dict[str, int]:
    """Zones, the crews' inductions and the permits; returns how many permits were made per
    state (nothing when the tenant already has permits)."""
    from portal.demo import _ROSTER_NAMES, DEMO_CONTRACTORS, DEMO_REVIEWER

    storage = storage_from_settings(settings)
    author = await services.user_by_email(session, DEMO_REVIEWER)
    assert author is not None
    zones = await _ensure_zones(session, plants, author.id)
    companies = {
        code: await _company(session, tenant, email) for code, email in PLANT_CONTRACTORS.items()
    }
    regions = {demo.admin_email: demo.workers[0].region for demo in DEMO_CONTRACTORS}
    rosters = {
        code: _roster_order(companies[code], _ROSTER_NAMES[regions[email]])
        for code, email in PLANT_CONTRACTORS.items()
    }
    await _ensure_crew_inductions(session, storage, tenant, plants, rosters)
    if await session.scalar(select(func.count()).select_from(Permit)):
        return {}
    world = _World(
        volume=_state_plan(settings),
        session=session,
        settings=settings,
        storage=storage,
        tenant=tenant,
        plants=plants,
        zones=zones,
        hosts=await _host_users(session, tenant, plants),
        companies=companies,
        haian=await _company(session, tenant, TRAINING_CONTRACTOR_ADMIN),
        real_now=utcnow().replace(second=0, microsecond=0),
        rng=random.Random("donghai-permits"),  # noqa: S311 - demo data, not a secret
    )
    plans = [
        plan for code in plants if code in rosters for plan in _plans(world, code, rosters[code])
    ]
    # The past first, in the order it happened, then what is still open: an expiry run by the
    # beat then finds only the permit meant to lapse.
    live = (
        PermitState.ACTIVE,
        PermitState.SUSPENDED,
        PermitState.APPROVED,
        PermitState.IN_APPROVAL,
        PermitState.SUBMITTED,
        PermitState.DRAFT,
        PermitState.COMPLETED,
    )
    plans.sort(key=lambda plan: (plan.target in live, plan.start))
    for index, plan in enumerate(plans):
        await _live(world, plan, index)
    rows = await session.execute(select(Permit.state, func.count()).group_by(Permit.state))
    return {state: count for state, count in rows.all()}
