"""The demo tenant: a Chinese chemical group with three plants, a user for every host role, and
contractor companies in every admission state with workers, certificates and scans.

Training (portal/demo_training.py): a published induction per plant with its quiz, logins for
three workers of the approved company, and workers done, failed, pending and expiring on the
EHS board. ``DEMO_INDUCTIONS`` holds each plant's general induction, correct answers included.

Permits (portal/demo_permits.py): zones per plant and about 150 work permits of all eight kinds
in every state over the last 90 days, driven through the permit services by the right people;
three maintenance companies (approved for all special work) supply the crews.

Geofence (portal/demo_geofence.py): a morning of NB01 phone tracks through the real engine with
every kind of alert, and ``DEMO_LIVE_JOB``, a job running now with worker.done on its crew.

Evaluation (portal/demo_scoring.py): ratings, findings, appeals and supplier reviews in every
grade; the plants differ in compliance and approval time, so HQ has something to compare.

Seeding is idempotent: a second run finds everything in place and only repairs what is missing.
Passwords are generated on first run and kept in ``var/demo-logins.json``.
"""

from __future__ import annotations

import io
import json
import secrets
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

from PIL import Image, ImageDraw
from sqlalchemy.ext.asyncio import AsyncSession

from infra.db import Database
from infra.field_encryption import field_cipher
from infra.security import verify_password
from infra.settings import Settings
from infra.storage import ObjectStorage, storage_from_settings
from infra.tenancy import tenant_scope
from infra.uploads import DOCUMENT_KINDS, store_upload
from onboarding import services as onboarding
from onboarding.access import Viewer
from onboarding.catalogue import CertificateKind, DocumentKind, WorkType
from onboarding.clock import plant_today
from onboarding.expiry import watch_expiry
from onboarding.schemas import (
    CertificateIn,
    ContractorAdminIn,
    ContractorRegistration,
    DocumentIn,
    ItemVerdict,
    ReviewIn,
    WorkerIn,
)
from onboarding.states import ContractorState
from onboarding.validators import id_check_char, uscc_check_char
from portal.demo_geofence import seed_geofence
from portal.demo_permits import seed_permits
from portal.demo_scoring import seed_scoring
from portal.demo_training import DEMO_INDUCTIONS as DEMO_INDUCTIONS
from portal.demo_training import DEMO_WORK_TYPE_INDUCTIONS as DEMO_WORK_TYPE_INDUCTIONS
from portal.demo_training import seed_training
from tenants import services
from tenants.models import Plant, Role, TenantStatus

DEMO_SLUG = "donghai-chem"
DEMO_NAME = "东海化工集团"

DEMO_PLANTS = (
    ("NB01", "宁波石化基地", "Asia/Shanghai", 29.9405, 121.8462),
    ("NJ01", "南京化学工业园厂区", "Asia/Shanghai", 32.2489, 118.7716),
    ("HZ01", "惠州大亚湾新材料厂", "Asia/Shanghai", 22.7368, 114.5486),
)

# (role, name, e-mail, phone, plant code or None for group-wide)
DEMO_USERS = (
    (Role.TENANT_ADMIN, "王建国", "wang.jianguo@donghai-chem.example", "13800000001", None),
    (Role.HQ_ANALYST, "周婷", "zhou.ting@donghai-chem.example", "13800000002", None),
    (Role.PLANT_MANAGER, "张伟", "zhang.wei@donghai-chem.example", "13800000003", "NB01"),
    (Role.EHS_OFFICER, "李国强", "li.guoqiang@donghai-chem.example", "13800000004", "NB01"),
    (Role.UNIT_SUPERVISOR, "陈刚", "chen.gang@donghai-chem.example", "13800000005", "NB01"),
    (Role.GUARDIAN, "赵磊", "zhao.lei@donghai-chem.example", "13800000006", "NB01"),
    (Role.EHS_OFFICER, "刘洋", "liu.yang@donghai-chem.example", "13800000007", "NJ01"),
    # Every plant has the approvers of a permit chain (unit, EHS, manager) and a guardian.
    (Role.PLANT_MANAGER, "孙明", "sun.ming@donghai-chem.example", "13800000008", "NJ01"),
    (Role.UNIT_SUPERVISOR, "吴俊", "wu.jun@donghai-chem.example", "13800000009", "NJ01"),
    (Role.GUARDIAN, "何军", "he.jun@donghai-chem.example", "13800000010", "NJ01"),
    (Role.PLANT_MANAGER, "黄志明", "huang.zhiming@donghai-chem.example", "13800000011", "HZ01"),
    (Role.EHS_OFFICER, "林芳", "lin.fang@donghai-chem.example", "13800000012", "HZ01"),
    (Role.UNIT_SUPERVISOR, "梁永强", "liang.yongqiang@donghai-chem.example", "13800000013", "HZ01"),
    (Role.GUARDIAN, "罗伟", "luo.wei@donghai-chem.example", "13800000014", "HZ01"),
)


# The reviewer who decides on the demo companies (李国强, EHS at the Ningbo plant).
DEMO_REVIEWER = "li.guoqiang@donghai-chem.example"


@dataclass(frozen=True)
class DemoCertificate:
    kind: CertificateKind
    number: str
    # Days from today; a negative expiry is a certificate that has already lapsed.
    expires_in_days: int
    issuing_authority: str = "宁波市应急管理局"


@dataclass(frozen=True)
class DemoWorker:
    name: str
    # Region code and date of birth; the sequence and check digit are computed.
    region: str
    birth: str
    sequence: str
    phone: str
    trade: str
    certificates: tuple[DemoCertificate, ...] = ()

    @property
    def id_number(self) -> str:
        body = self.region + self.birth + self.sequence
        return body + id_check_char(body)


@dataclass(frozen=True)
class DemoContractor:
    name: str
    # The first 17 characters of the 统一社会信用代码; the check character is computed.
    uscc_body: str
    legal_representative: str
    contact_name: str
    contact_phone: str
    address: str
    work_types: tuple[WorkType, ...]
    state: ContractorState
    admin_name: str
    admin_email: str
    workers: tuple[DemoWorker, ...]
    reason: str | None = None
    # Only these admins get a password in var/demo-logins.json.
    demo_login: bool = False

    @property
    def uscc(self) -> str:
        return self.uscc_body + uscc_check_char(self.uscc_body)


_C = DemoCertificate
_W = DemoWorker
_K = CertificateKind

# The permit crews' names per company, in roster order: two welders (the second also certified
# for work at height), two fitters certified for confined spaces, a crane operator, a signaller,
# an electrician, a scaffolder, the company's safety officer (a guardian) and a labourer.
_ROSTER_NAMES = {
    "330211": (
        "周宏伟",
        "陈立新",
        "李春生",
        "俞海波",
        "邵建军",
        "方志勇",
        "胡金龙",
        "应志刚",
        "施国平",
        "毛建新",
    ),
    "320116": (
        "张德胜",
        "王永福",
        "刘长江",
        "赵宝林",
        "孙大伟",
        "钱进",
        "吴海涛",
        "徐明亮",
        "杨国庆",
        "朱小兵",
    ),
    "441303": (
        "黄志强",
        "林国栋",
        "陈伟雄",
        "李家豪",
        "吴振华",
        "梁文辉",
        "何俊杰",
        "邓志坚",
        "罗建平",
        "曾小龙",
    ),
}
_ROSTER = (
    # (trade, certificates, days valid from today)
    ("焊工", ((_K.WELDING_CUTTING, 620),)),
    ("焊工", ((_K.WELDING_CUTTING, 540), (_K.HIGH_ALTITUDE_INSTALLATION, 480))),
    ("管工", ((_K.CONFINED_SPACE, 430),)),
    ("管工", ((_K.CONFINED_SPACE, 700),)),
    ("起重工", ((_K.CRANE_OPERATOR, 520),)),
    ("司索工", ((_K.CRANE_SIGNALLER, 455),)),
    ("电工", ((_K.LOW_VOLTAGE_ELECTRICIAN, 660),)),
    ("架子工", ((_K.SCAFFOLDING, 390),)),
    ("安全员", ()),
    ("普工", ()),
)
_SPECIAL_EQUIPMENT = frozenset({_K.CRANE_OPERATOR, _K.CRANE_SIGNALLER})


def _roster(region: str, phone_base: str, authorities: tuple[str, str]) -> tuple[DemoWorker, ...]:
    workers = []
    for index, (name, (trade, certificates)) in enumerate(
        zip(_ROSTER_NAMES[region], _ROSTER, strict=True)
    ):
        birth = f"19{76 + 2 * index:02d}{(index * 5) % 12 + 1:02d}{(index * 7) % 27 + 1:02d}"
        sequence = f"{(index * 37 + int(region[-2:])) % 900 + 100:03d}"
        body = region + birth + sequence
        workers.append(
            _W(
                name,
                region,
                birth,
                sequence,
                f"{phone_base}{11 + index:02d}",
                trade,
                tuple(
                    _C(
                        kind,
                        f"T{body}{number}",
                        days,
                        authorities[1] if kind in _SPECIAL_EQUIPMENT else authorities[0],
                    )
                    for number, (kind, days) in enumerate(certificates)
                ),
            )
        )
    return tuple(workers)


DEMO_CONTRACTORS = (
    DemoContractor(
        "宁波海安机电安装工程有限公司",
        "91330206MA2GQ5X1N",
        "陈海安",
        "林晓东",
        "13900000101",
        "浙江省宁波市北仑区新碶街道明州路 88 号",
        (WorkType.HOT_WORK, WorkType.HEIGHT, WorkType.LIFTING),
        ContractorState.APPROVED,
        "林晓东",
        "lin.xiaodong@haian-mep.example",
        (
            _W(
                "王大力",
                "330206",
                "19850312",
                "031",
                "13900000111",
                "焊工",
                (
                    _C(_K.WELDING_CUTTING, "T330206198503120312", 400),
                    _C(_K.HIGH_ALTITUDE_INSTALLATION, "T330206198503120313", 5),
                ),
            ),
            _W(
                "刘建华",
                "330206",
                "19900718",
                "052",
                "13900000112",
                "起重工",
                (
                    _C(_K.CRANE_OPERATOR, "TS-NB-2023-0815", 3, "宁波市市场监督管理局"),
                    _C(_K.CRANE_SIGNALLER, "TS-NB-2021-0311", -12, "宁波市市场监督管理局"),
                ),
            ),
            _W(
                "孙志强",
                "330203",
                "19780204",
                "017",
                "13900000113",
                "电工",
                (_C(_K.LOW_VOLTAGE_ELECTRICIAN, "T330203197802040171", 700),),
            ),
        ),
        demo_login=True,
    ),
    DemoContractor(
        "浙江甬诚防腐保温有限公司",
        "91330211MA2H0T7Y3",
        "郑国华",
        "郑国华",
        "13900000201",
        "浙江省宁波市镇海区蛟川街道俞范东路 16 号",
        (WorkType.HEIGHT, WorkType.CONFINED_SPACE),
        ContractorState.DRAFT,
        "郑国华",
        "zheng.guohua@yongcheng-fb.example",
        (
            _W(
                "何小军",
                "330211",
                "19921105",
                "036",
                "13900000211",
                "保温工",
                (_C(_K.SCAFFOLDING, "T330211199211050365", 500),),
            ),
        ),
        demo_login=True,
    ),
    DemoContractor(
        "江苏金陵石化检修有限公司",
        "91320116MA1MX8K27",
        "徐金陵",
        "高峰",
        "13900000301",
        "江苏省南京市六合区葛塘街道化工园路 6 号",
        (WorkType.CONFINED_SPACE, WorkType.BLIND_PLATE),
        ContractorState.SUBMITTED,
        "高峰",
        "gao.feng@jinling-jx.example",
        (
            _W(
                "马超",
                "320116",
                "19880620",
                "011",
                "13900000311",
                "管工",
                (_C(_K.CONFINED_SPACE, "T320116198806200110", 300),),
            ),
        ),
    ),
    DemoContractor(
        "宁波北仑永安脚手架工程有限公司",
        "91330206MA2AB3C48",
        "周永安",
        "周永安",
        "13900000401",
        "浙江省宁波市北仑区小港街道渡口路 21 号",
        (WorkType.HEIGHT,),
        ContractorState.CHANGES_REQUESTED,
        "周永安",
        "zhou.yongan@yongan-jsj.example",
        (
            _W(
                "吴刚",
                "330206",
                "19830909",
                "075",
                "13900000411",
                "架子工",
                (_C(_K.SCAFFOLDING, "T330206198309090751", 250),),
            ),
        ),
        reason="高处作业证照片模糊，请重新上传清晰照片",
    ),
    DemoContractor(
        "舟山宏达劳务派遣有限公司",
        "91330900MA28D9E1K",
        "黄宏达",
        "黄宏达",
        "13900000501",
        "浙江省舟山市定海区临城街道海天大道 300 号",
        (WorkType.EXCAVATION,),
        ContractorState.REJECTED,
        "黄宏达",
        "huang.hongda@hongda-lw.example",
        (_W("钱多多", "330902", "19951201", "044", "13900000511", "普工"),),
        reason="经营范围不含化工装置检修，不符合准入条件",
    ),
    DemoContractor(
        "宁波东港电气安装有限公司",
        "91330206MA2CD5F62",
        "袁东港",
        "冯丽",
        "13900000601",
        "浙江省宁波市北仑区大碶街道松花江路 9 号",
        (WorkType.TEMP_POWER,),
        ContractorState.SUSPENDED,
        "冯丽",
        "feng.li@donggang-dq.example",
        (
            _W(
                "蒋涛",
                "330206",
                "19870415",
                "093",
                "13900000611",
                "电工",
                (_C(_K.HIGH_VOLTAGE_ELECTRICIAN, "T330206198704150932", 60),),
            ),
        ),
        reason="安全生产许可证换证期间暂停准入",
    ),
    DemoContractor(
        "上海申达吊装运输有限公司",
        "91310115MA1K4G7H5",
        "沈达",
        "沈达",
        "13900000701",
        "上海市浦东新区高桥镇港城路 1200 号",
        (WorkType.LIFTING,),
        ContractorState.BLACKLISTED,
        "沈达",
        "shen.da@shenda-dz.example",
        (
            _W(
                "韩冰",
                "310115",
                "19910623",
                "058",
                "13900000711",
                "司索工",
                (_C(_K.CRANE_SIGNALLER, "TS-SH-2022-1207", 200, "上海市市场监督管理局"),),
            ),
        ),
        reason="提供伪造的特种作业操作证",
    ),
    # The companies doing the plants' maintenance: admitted for every kind of special work, the
    # crews of the demo permits (portal/demo_permits.py). No demo login of their own.
    *(
        DemoContractor(
            name,
            uscc_body,
            legal,
            admin,
            phone,
            address,
            tuple(WorkType),
            ContractorState.APPROVED,
            admin,
            email,
            _roster(region, phone_base, authorities),
        )
        for (
            name,
            uscc_body,
            legal,
            admin,
            phone,
            email,
            address,
            region,
            phone_base,
            authorities,
        ) in (
            (
                "浙江明州石化检维修工程有限公司",
                "91330211MA2J7K8P4",
                "俞建明",
                "俞晓峰",
                "13900000801",
                "yu.xiaofeng@mingzhou-jwx.example",
                "浙江省宁波市镇海区招宝山街道平海路 1188 号",
                "330211",
                "139000008",
                ("宁波市应急管理局", "宁波市市场监督管理局"),
            ),
            (
                "南京扬子石化检修安装工程有限公司",
                "91320191MA1R2D6L3",
                "韩德明",
                "韩立军",
                "13900000901",
                "han.lijun@yangzi-jx.example",
                "江苏省南京市江北新区长芦街道宁六路 606 号",
                "320116",
                "139000009",
                ("南京市应急管理局", "南京市市场监督管理局"),
            ),
            (
                "惠州大亚湾华晟石化工程有限公司",
                "91441300MA4W8N5T2",
                "钟华晟",
                "钟伟明",
                "13900001001",
                "zhong.weiming@huasheng-pe.example",
                "广东省惠州市大亚湾西区石化大道中 88 号",
                "441303",
                "139000010",
                ("惠州市应急管理局", "惠州市市场监督管理局"),
            ),
        )
    ),
    # Scaffolding firms with a few jobs each, whose supplier reviews span the grades A to D
    # (portal/demo_scoring.py); the last one is suspended by its review. One scaffolder each.
    *(
        DemoContractor(
            name,
            uscc_body,
            admin,
            admin,
            phone,
            address,
            (WorkType.HEIGHT,),
            ContractorState.APPROVED,
            admin,
            email,
            (
                _W(
                    worker,
                    region,
                    birth,
                    sequence,
                    f"{phone[:-2]}11",
                    "架子工",
                    (_C(_K.SCAFFOLDING, f"T{region}{birth}{sequence}", 480, authority),),
                ),
            ),
        )
        for (
            name,
            uscc_body,
            admin,
            phone,
            email,
            address,
            worker,
            region,
            birth,
            sequence,
            authority,
        ) in (
            (
                "宁波恒泰工业设备安装有限公司",
                "91330206MA2K3L5Q7",
                "郑海峰",
                "13900001101",
                "zheng.haifeng@hengtai-az.example",
                "浙江省宁波市北仑区霞浦街道浦前路 58 号",
                "蒋永康",
                "330206",
                "19840517",
                "063",
                "宁波市应急管理局",
            ),
            (
                "南京宁化建设工程有限公司",
                "91320116MA1P4R8T2",
                "王建平",
                "13900001201",
                "wang.jianping@ninghua-js.example",
                "江苏省南京市六合区大厂街道新华路 210 号",
                "许德龙",
                "320116",
                "19860922",
                "035",
                "南京市应急管理局",
            ),
            (
                "惠州惠阳通达安装工程有限公司",
                "91441303MA4X2Y7U5",
                "叶国良",
                "13900001301",
                "ye.guoliang@tongda-az.example",
                "广东省惠州市惠阳区淡水街道开城大道 36 号",
                "谢文彬",
                "441303",
                "19810310",
                "077",
                "惠州市应急管理局",
            ),
            (
                "惠州鹏达建筑劳务有限公司",
                "91441303MA4Y5K9P1",
                "邱鹏达",
                "13900001401",
                "qiu.pengda@pengda-lw.example",
                "广东省惠州市大亚湾澳头街道前进路 12 号",
                "古志华",
                "441303",
                "19900206",
                "051",
                "惠州市应急管理局",
            ),
        )
    ),
)


@dataclass(frozen=True)
class DemoLogin:
    role: str
    tenant: str
    email: str
    password: str


def _known_passwords(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        return {item["email"]: item["password"] for item in json.loads(path.read_text())}
    except (ValueError, KeyError, TypeError):
        return {}


async def _ensure_plants(session: AsyncSession) -> dict[str, Plant]:
    existing = {plant.code: plant for plant in await services.list_plants(session)}
    for code, name, timezone, latitude, longitude in DEMO_PLANTS:
        if code not in existing:
            existing[code] = await services.add_plant(
                session,
                code=code,
                name=name,
                timezone=timezone,
                latitude=latitude,
                longitude=longitude,
            )
    return existing


async def _ensure_users(
    session: AsyncSession, plants: dict[str, Plant], known: dict[str, str]
) -> list[DemoLogin]:
    logins = []
    for role, name, email, phone, plant_code in DEMO_USERS:
        password = known.get(email) or secrets.token_urlsafe(9)
        user = await services.user_by_email(session, email)
        if user is None:
            user = await services.create_user(
                session, email=email, name=name, password=password, phone=phone
            )
        elif not verify_password(user.password_hash, password):
            await services.set_password(session, user, password)
        plant_id = plants[plant_code].id if plant_code else None
        await services.grant_role(session, user_id=user.id, role=role, plant_id=plant_id)
        logins.append(DemoLogin(role.value, DEMO_SLUG, email, password))
    return logins


def _scan_png(title: str, number: str, colour: tuple[int, int, int]) -> bytes:
    """A small stand-in for a photographed certificate; ASCII only, since Pillow's built-in font
    has no Chinese glyphs."""
    image = Image.new("RGB", (480, 320), (250, 248, 240))
    draw = ImageDraw.Draw(image)
    draw.rectangle((8, 8, 471, 311), outline=colour, width=6)
    draw.rectangle((24, 24, 120, 150), fill=(215, 222, 230))
    draw.text((140, 40), title, fill=colour)
    draw.text((140, 80), f"No. {number}", fill=(30, 30, 30))
    draw.ellipse((360, 200, 450, 290), outline=(200, 30, 30), width=4)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


async def _upload(
    session: AsyncSession,
    storage: ObjectStorage,
    kind: str,
    content: bytes,
    *,
    filename: str,
    owner: DemoContractor,
    admin_id: object,
) -> object:
    record = await store_upload(
        session,
        storage,
        DOCUMENT_KINDS[kind],
        io.BytesIO(content),
        filename=filename,
        created_by=admin_id,  # type: ignore[arg-type]
    )
    return record.id


_DOCUMENTS = (
    # (kind, issuer, years valid or None for 长期, number prefix)
    (DocumentKind.BUSINESS_LICENCE, "市场监督管理局", None, "YYZZ"),
    (DocumentKind.SAFETY_PRODUCTION_LICENCE, "应急管理厅", 3, "AQSC"),
    (DocumentKind.INSURANCE, "中国人民财产保险股份有限公司", 1, "PICC"),
)


async def _add_records(
    session: AsyncSession,
    settings: Settings,
    storage: ObjectStorage,
    demo: DemoContractor,
    contractor_id: object,
    admin: Viewer,
    today: date,
) -> list[object]:
    """Documents, workers and certificates as the company's admin enters them; returns the
    certificates that must look lapsed."""
    for index, (kind, issuer, years, prefix) in enumerate(_DOCUMENTS):
        number = f"{prefix}{demo.uscc[-8:]}"
        scan = await _upload(
            session,
            storage,
            "company_document",
            _scan_png(kind.value.upper(), number, (11, 107, 203)),
            filename=f"{kind.value}.png",
            owner=demo,
            admin_id=admin.user_id,
        )
        valid_from = today - timedelta(days=200 + 30 * index)
        await onboarding.add_document(
            session,
            admin,
            contractor_id,  # type: ignore[arg-type]
            DocumentIn(
                kind=kind,
                number=number,
                issuer=issuer,
                valid_from=valid_from,
                valid_until=None
                if years is None
                else valid_from + timedelta(days=365 * years + 20),
                scan_id=scan,  # type: ignore[arg-type]
            ),
        )
    lapsed = []
    cipher = field_cipher(settings)
    for person in demo.workers:
        worker = await onboarding.add_worker(
            session,
            admin,
            contractor_id,  # type: ignore[arg-type]
            WorkerIn(
                name=person.name, id_number=person.id_number, phone=person.phone, trade=person.trade
            ),
            cipher=cipher,
        )
        for cert in person.certificates:
            scan = await _upload(
                session,
                storage,
                "certificate_scan",
                _scan_png(cert.kind.value.upper(), cert.number, (6, 118, 71)),
                filename=f"{cert.number}.png",
                owner=demo,
                admin_id=admin.user_id,
            )
            certificate = await onboarding.add_certificate(
                session,
                admin,
                contractor_id,  # type: ignore[arg-type]
                CertificateIn(
                    worker_id=worker.id,
                    kind=cert.kind,
                    number=cert.number,
                    issuing_authority=cert.issuing_authority,
                    issued_on=today - timedelta(days=3 * 365),
                    expires_on=today + timedelta(days=max(cert.expires_in_days, 1)),
                    scan_id=scan,  # type: ignore[arg-type]
                ),
                cipher=cipher,
            )
            if cert.expires_in_days < 1:
                lapsed.append((certificate, cert.expires_in_days))
    for certificate, days in lapsed:
        # The service refuses a certificate that has already expired, as it should for real
        # entries; the demo wants one entered long ago that has since lapsed.
        certificate.expires_on = today + timedelta(days=days)
    await session.flush()
    return [certificate for certificate, _ in lapsed]


async def _everything_verified(
    session: AsyncSession, reviewer: Viewer, contractor_id: object
) -> ReviewIn:
    ids = contractor_id  # type: ignore[assignment]
    documents = await onboarding.list_documents(session, reviewer, ids)  # type: ignore[arg-type]
    workers = await onboarding.list_workers(session, reviewer, ids)  # type: ignore[arg-type]
    certificates = await onboarding.list_certificates(session, reviewer, ids)  # type: ignore[arg-type]
    verified = [
        [ItemVerdict(id=item.id, verdict="verified") for item in items if item.state == "pending"]
        for items in (documents, workers, certificates)
    ]
    return ReviewIn(
        decision="approve", documents=verified[0], workers=verified[1], certificates=verified[2]
    )


async def _ensure_contractors(
    session: AsyncSession, settings: Settings, known: dict[str, str]
) -> list[DemoLogin]:
    if not (await onboarding.onboarding_settings(session)).open_registration:
        await onboarding.set_open_registration(session, allowed=True, actor_id=None)
    reviewer_user = await services.user_by_email(session, DEMO_REVIEWER)
    assert reviewer_user is not None
    reviewer = Viewer(reviewer_user.id, frozenset({Role.EHS_OFFICER}), None)
    existing = {c.uscc for c in await onboarding.list_contractors(session, reviewer)}
    storage = storage_from_settings(settings)
    today = plant_today()
    logins = []
    lapsed_any = False
    for demo in DEMO_CONTRACTORS:
        password = known.get(demo.admin_email) or secrets.token_urlsafe(12)
        if demo.uscc not in existing:
            registration = await onboarding.register_contractor(
                session,
                ContractorRegistration(
                    tenant=DEMO_SLUG,
                    name=demo.name,
                    uscc=demo.uscc,
                    legal_representative=demo.legal_representative,
                    contact_name=demo.contact_name,
                    contact_phone=demo.contact_phone,
                    address=demo.address,
                    work_types=list(demo.work_types),
                    admin=ContractorAdminIn(
                        email=demo.admin_email, name=demo.admin_name, password=password
                    ),
                ),
            )
            contractor_id = registration.contractor.id
            admin = Viewer(
                registration.admin_user_id, frozenset({Role.CONTRACTOR_ADMIN}), contractor_id
            )
            lapsed = await _add_records(
                session, settings, storage, demo, contractor_id, admin, today
            )
            lapsed_any = lapsed_any or bool(lapsed)
            await _drive_to_state(session, demo, contractor_id, admin, reviewer)
        if demo.demo_login:
            user = await services.user_by_email(session, demo.admin_email)
            assert user is not None
            if not verify_password(user.password_hash, password):
                await services.set_password(session, user, password)
            logins.append(
                DemoLogin(Role.CONTRACTOR_ADMIN.value, DEMO_SLUG, demo.admin_email, password)
            )
    if lapsed_any:
        # The daily watch marks the lapsed certificates expired, as it would overnight.
        await session.run_sync(lambda sync: watch_expiry(sync, today))
    return logins


async def _drive_to_state(
    session: AsyncSession,
    demo: DemoContractor,
    contractor_id: object,
    admin: Viewer,
    reviewer: Viewer,
) -> None:
    target = demo.state
    cid = contractor_id  # type: ignore[assignment]
    if target is ContractorState.DRAFT:
        return
    await onboarding.submit_contractor(session, admin, cid)  # type: ignore[arg-type]
    if target is ContractorState.SUBMITTED:
        return
    if target is ContractorState.CHANGES_REQUESTED:
        certificates = await onboarding.list_certificates(session, reviewer, cid)  # type: ignore[arg-type]
        review = await _everything_verified(session, reviewer, cid)
        review.decision = "request_changes"
        review.reason = "请按审核意见补正后重新提交"
        review.certificates = [
            ItemVerdict(id=c.id, verdict="rejected", reason=demo.reason) for c in certificates
        ]
    elif target is ContractorState.REJECTED:
        review = ReviewIn(decision="reject", reason=demo.reason)
    else:
        review = await _everything_verified(session, reviewer, cid)
    await onboarding.review_contractor(session, reviewer, cid, review)  # type: ignore[arg-type]
    if target is ContractorState.SUSPENDED:
        await onboarding.suspend_contractor(session, reviewer, cid, reason=demo.reason or "")  # type: ignore[arg-type]
    elif target is ContractorState.BLACKLISTED:
        await onboarding.blacklist_contractor(session, reviewer, cid, reason=demo.reason or "")  # type: ignore[arg-type]


async def seed_demo(settings: Settings) -> tuple[list[DemoLogin], Path]:
    logins_path = settings.var_dir / "demo-logins.json"
    database = Database.from_settings(settings)
    try:
        async with database.session() as session:
            tenant = await services.tenant_by_slug(session, DEMO_SLUG)
            if tenant is None:
                tenant = await services.create_tenant(
                    session, slug=DEMO_SLUG, name=DEMO_NAME, status=TenantStatus.ACTIVE
                )
            with tenant_scope(tenant.id):
                plants = await _ensure_plants(session)
                known = _known_passwords(logins_path)
                logins = await _ensure_users(session, plants, known)
                logins += await _ensure_contractors(session, settings, known)
                workers = await seed_training(session, settings, tenant, plants, known)
                await seed_permits(session, settings, tenant, plants)
                await seed_geofence(session, settings, tenant, plants)
                await seed_scoring(session, settings, tenant, plants)
                logins += [
                    DemoLogin(Role.CONTRACTOR_WORKER.value, DEMO_SLUG, email, password)
                    for email, password in workers
                ]
            await session.commit()
    finally:
        await database.dispose()
    logins_path.parent.mkdir(parents=True, exist_ok=True)
    logins_path.write_text(
        json.dumps([asdict(login) for login in logins], ensure_ascii=False, indent=2) + "\n"
    )
    logins_path.chmod(0o600)
    return logins, logins_path
