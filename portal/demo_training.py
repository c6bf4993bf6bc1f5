"""The demo tenant's training: a published 入厂安全教育 per plant, work-type inductions, worker
logins, and workers in every state of the EHS board — done, failed, pending and expiring, one of
them signed in an assisted session on the company administrator's tablet.

Everything goes through the training services, as a phone would: attempts are drawn and scored,
signatures are drawn stroke by stroke (each one different, as the rules require) and sealed into
the ledger, so every demo record verifies. Seeding is idempotent: an induction is matched by its
plant, work type and title, and a worker who has attempted an induction is left as they are.

No demo record is "lapsed": that needs a signature given in the past, and a signature is always
given now; back-dating a stored record would rightly make it fail verification.
"""

from __future__ import annotations

import math
import random
import secrets
from dataclasses import dataclass
from types import MappingProxyType

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from infra.security import verify_password
from infra.settings import Settings
from infra.storage import ObjectStorage, storage_from_settings
from onboarding import services as onboarding
from onboarding.access import Viewer, viewer_for
from onboarding.catalogue import WorkType
from onboarding.models import Contractor, Worker
from onboarding.schemas import ContractorUserIn
from tenants import services
from tenants.access import Principal
from tenants.models import Plant, Role, Tenant
from training import services as training
from training.evidence import SigningDevice
from training.models import Induction, QuizAttempt
from training.schemas import (
    AnswersIn,
    DraftIn,
    InductionContent,
    InductionIn,
    PositionIn,
    Question,
    Section,
    SignatureIn,
    StrokesIn,
)

MEDIA_BASE = "https://media.donghai-chem.example/training"

# --- content ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PlantFacts:
    short: str
    units: str
    toxic: str
    assembly: tuple[str, ...]
    hotline: str
    speed_kmh: int
    extra_hazard: str


_FACTS = {
    "NB01": _PlantFacts(
        "宁波基地",
        "乙烯裂解、芳烃联合、加氢裂化装置及液化烃球罐区",
        "硫化氢（H₂S）",
        ("1 号集合点（东门广场）", "2 号集合点（中控楼北侧停车场）"),
        "8119",
        15,
        "液化烃球罐区泄漏后易形成蒸气云，遇火源可能发生爆炸",
    ),
    "NJ01": _PlantFacts(
        "南京基地",
        "氯碱、环氧乙烷及合成氨装置和液氯储存区",
        "氯气、氨",
        ("A 区集合点（综合楼前广场）", "B 区集合点（南门停车场）"),
        "6119",
        20,
        "环氧乙烷易燃易爆且有毒，储罐区严禁一切火种",
    ),
    "HZ01": _PlantFacts(
        "惠州基地",
        "苯乙烯、聚碳酸酯装置及丙烯、苯储罐区",
        "苯、一氧化碳",
        ("1 号集合点（行政楼广场）", "2 号集合点（西门消防站南侧）"),
        "7119",
        20,
        "每年 6–10 月为台风季，台风预警期间停止一切高处和吊装作业",
    ),
}


def _q(
    question_id: str, text: str, options: list[str], correct: list[int], *, multiple: bool = False
) -> Question:
    return Question(
        id=question_id,
        text=text,
        kind="multiple" if multiple else "single",
        options=options,
        correct=correct,
    )


def _general_sections(code: str, facts: _PlantFacts, *, revised: bool) -> list[Section]:
    assembly = "、".join(facts.assembly)
    detector = (
        f"\n\n> **第 2 版新增**：进入装置区的每个作业组须至少携带一台便携式四合一气体检测仪"
        f"（可燃气、氧气、{facts.toxic.split('、')[0]}、一氧化碳），开机自检合格后方可进入。"
        if revised
        else ""
    )
    return [
        Section(
            title="厂区概况与危险源",
            body=(
                f"## {facts.short}概况\n\n"
                f"{facts.short}主要有{facts.units}，属于**重大危险源**单位。\n\n"
                "## 主要危险有害因素\n\n"
                "- 火灾、爆炸：装置和储罐内为易燃易爆介质\n"
                f"- 中毒和窒息：{facts.toxic}、氮气等\n"
                "- 高温、高压、腐蚀介质造成的灼烫\n"
                "- 高处坠落、物体打击、起重伤害、触电\n\n"
                f"特别提示：{facts.extra_hazard}。" + detector
            ),
        ),
        Section(
            title="劳动防护用品",
            body=(
                "进入生产区域必须正确穿戴：\n\n"
                "1. **安全帽**：系紧下颏带，帽壳无裂纹\n"
                "2. **阻燃防静电工作服**：扣好衣扣、袖口，严禁穿化纤衣物\n"
                "3. **劳保鞋**：防砸、防刺穿、防静电\n"
                "4. 按作业要求佩戴护目镜、防护手套、耳塞和安全带\n\n"
                "在可能存在有毒气体的区域，须携带便携式气体检测报警仪，"
                "熟悉正压式空气呼吸器的位置和使用方法。"
            ),
        ),
        Section(
            title="作业许可与禁令",
            body=(
                "依据 GB 30871-2022《危险化学品企业特殊作业安全规范》，**动火、受限空间、"
                "盲板抽堵、高处、吊装、临时用电、动土、断路**八类特殊作业必须办理安全作业票。\n\n"
                "- **动火作业须持票**：气体分析合格、监护人到位后方可动火；"
                "动火分析与动火作业间隔一般不超过 30 分钟\n"
                "- **受限空间**：坚持“先通风、再检测、后作业”，严禁在无监护的情况下进入\n"
                "- 厂区内**严禁吸烟**，火种在门卫处交存\n"
                "- 防爆区域内严禁使用非防爆手机、相机等电子设备\n"
                f"- 厂区主干道机动车限速 {facts.speed_kmh} km/h，行人走人行通道"
            ),
        ),
        Section(
            title="应急疏散与集合点",
            body=(
                "听到紧急疏散警报后：\n\n"
                "1. 立即停止作业，关闭电焊机、切割机等作业设备\n"
                "2. 观察**风向标**，向上风向或侧风向撤离，不要穿越泄漏区\n"
                f"3. 到达指定集合点：{assembly}\n"
                "4. 向作业负责人报到，清点人数，未经允许不得离开集合点\n\n"
                "请观看疏散演练视频，熟悉本厂疏散路线。"
            ),
            video_url=f"{MEDIA_BASE}/{code.lower()}-evacuation.mp4",
        ),
        Section(
            title="事故报告",
            body=(
                f"发现泄漏、着火或有人受伤，立即拨打**厂内应急电话（内线 {facts.hotline}）**，"
                "并报告作业负责人和属地单位。\n\n"
                "报告内容：事故发生的**时间、地点**，**伤亡人数**和初步原因，"
                "**已采取的措施**。\n\n"
                "任何伤害（包括轻微划伤）和未遂事件都应当天报告，不得隐瞒、迟报。"
            ),
        ),
    ]


def _general_questions(facts: _PlantFacts, *, revised: bool) -> list[Question]:
    questions = [
        _q(
            "ppe-basic",
            "进入生产装置区必须正确穿戴的劳动防护用品有：",
            ["安全帽", "阻燃防静电工作服", "劳保鞋", "运动拖鞋"],
            [0, 1, 2],
            multiple=True,
        ),
        _q(
            "ex-zone-phone",
            "在防爆区域内，下列哪项行为是禁止的？",
            [
                "使用防爆对讲机联系",
                "使用非防爆手机拍照或接打电话",
                "穿防静电工作服",
                "沿人行通道行走",
            ],
            [1],
        ),
        _q(
            "smoking",
            "关于厂区内吸烟，下列说法正确的是：",
            [
                "通风良好的地方可以吸烟",
                "厂区内严禁吸烟，火种须在门卫处交存",
                "装置区边缘可以吸烟",
                "休息时间可以在装置区吸烟",
            ],
            [1],
        ),
        _q(
            "hot-work-permit",
            "动火作业开始前必须做到：",
            [
                "口头告知班长即可",
                "办理动火安全作业票，气体分析合格、监护人到位后方可动火",
                "先动火，事后补办作业票",
                "现场放一个灭火器即可",
            ],
            [1],
        ),
        _q(
            "hot-work-analysis",
            "动火分析与动火作业的间隔一般不超过多长时间？",
            ["30 分钟", "2 小时", "当天有效", "不需要分析"],
            [0],
        ),
        _q(
            "confined-principle",
            "受限空间作业应遵循的原则是：",
            [
                "先作业、再通风、后检测",
                "先通风、再检测、后作业",
                "先检测、后作业，不需要通风",
                "戴上口罩即可进入",
            ],
            [1],
        ),
        _q(
            "confined-rescue",
            "发现有人在受限空间内晕倒，正确的做法是：",
            [
                "立即进入施救",
                "立即呼救并报告，佩戴正压式空气呼吸器、落实监护后再施救",
                "离开现场",
                "用湿毛巾捂住口鼻进入施救",
            ],
            [1],
        ),
        _q(
            "special-work",
            "下列哪些属于必须办理安全作业票的特殊作业？",
            ["动火作业", "受限空间作业", "高处作业", "办公室日常清扫"],
            [0, 1, 2],
            multiple=True,
        ),
        _q(
            "height-limit",
            "在坠落高度基准面多少米及以上有可能坠落的高处进行的作业称为高处作业？",
            ["1 米", "2 米", "3 米", "5 米"],
            [1],
        ),
        _q(
            "evacuation",
            "听到全厂紧急疏散警报后，应当：",
            [
                "继续作业，等待进一步通知",
                "停止作业、关闭设备，向上风向或侧风向撤离到指定集合点",
                "沿下风向快速跑离",
                "先回更衣室取个人物品",
            ],
            [1],
        ),
        _q(
            "assembly-point",
            f"{facts.short}的紧急集合点是：",
            [facts.assembly[0], "装置区内控制室门口", "最近的储罐区防火堤内", "厂外任意地点"],
            [0],
        ),
        _q(
            "report-hotline",
            "发现泄漏、着火等险情时，应当：",
            [
                f"立即拨打厂内应急电话（内线 {facts.hotline}）并报告作业负责人",
                "完成手头作业后再报告",
                "自行处理，不必报告",
                "只告诉身边的同事",
            ],
            [0],
        ),
        _q(
            "report-content",
            "事故报告应当包括哪些内容？",
            [
                "事故发生的时间、地点",
                "伤亡人数和初步原因",
                "已采取的措施",
                "对同事的个人评价",
            ],
            [0, 1, 2],
            multiple=True,
        ),
        _q(
            "minor-injury",
            "作业中发生轻微划伤，是否需要报告？",
            [
                "不需要报告",
                "需要，任何伤害和未遂事件都应当天报告",
                "下班后有空再说",
                "只有严重伤害才报告",
            ],
            [1],
        ),
        _q(
            "toxic-gas",
            f"在可能存在{facts.toxic}的区域作业，下列做法正确的是：",
            [
                "佩戴便携式气体检测报警仪",
                "熟悉逃生路线和风向标位置",
                "闻到异味后继续作业，查明来源再说",
                "必要时佩戴正压式空气呼吸器",
            ],
            [0, 1, 3],
            multiple=True,
        ),
    ]
    if revised:
        questions.append(
            _q(
                "gas-detector",
                "按第 2 版新增要求，进入装置区的作业组须携带：",
                [
                    "至少一台便携式四合一气体检测仪",
                    "一台手机即可",
                    "不需要携带检测仪",
                    "一瓶饮用水",
                ],
                [0],
            )
        )
    return questions


def _general(code: str, *, revised: bool = True) -> InductionContent:
    facts = _FACTS[code]
    return InductionContent(
        title=f"{facts.short}入厂安全教育",
        sections=_general_sections(code, facts, revised=revised),
        questions=_general_questions(facts, revised=revised),
        draw_count=10 if revised else 8,
        pass_mark=80,
        attempts_per_day=3,
        validity_days=365,
    )


_HOT_WORK = InductionContent(
    title="动火作业专项安全培训",
    sections=[
        Section(
            title="动火作业分级",
            body=(
                "依据 GB 30871-2022，动火作业分为**特级、一级、二级**。"
                "在生产运行状态下的易燃易爆装置、输送管道、储罐、容器等部位上动火为特级动火。\n\n"
                "- 特级、一级动火作业票有效期不超过 **8 小时**\n"
                "- 二级动火作业票有效期不超过 **72 小时**"
            ),
        ),
        Section(
            title="动火前的安全措施",
            body=(
                "1. 与动火点相连的管道、设备可靠隔离（加盲板或拆除管段），不得以关闭阀门代替\n"
                "2. 清除动火点周围 **15 米** 范围内的可燃物，封堵地漏、排水井\n"
                "3. 动火分析合格：可燃气体浓度符合 GB 30871 要求，分析后 **30 分钟** 内动火\n"
                "4. 配备灭火器材，监护人全程在场，不得擅离"
            ),
            video_url=f"{MEDIA_BASE}/hot-work-precautions.mp4",
        ),
        Section(
            title="作业中与作业后",
            body=(
                "作业中断超过 **60 分钟**须重新进行气体分析。作业结束后清理现场，"
                "确认无残留火种后方可离开，并在作业票上签字关闭。"
            ),
        ),
    ],
    questions=[
        _q(
            "hw-levels",
            "GB 30871-2022 将动火作业分为哪几级？",
            ["特级、一级、二级", "甲级、乙级", "一级、二级、三级、四级", "不分级"],
            [0],
        ),
        _q(
            "hw-isolation",
            "与动火点相连的管道应如何隔离？",
            [
                "关闭阀门即可",
                "加盲板或拆除一段管道，不得以关阀代替",
                "挂上警示牌",
                "通知操作工不要开阀",
            ],
            [1],
        ),
        _q(
            "hw-clearance",
            "动火点周围多大范围内的可燃物应清除？",
            ["3 米", "5 米", "15 米", "不需要清除"],
            [2],
        ),
        _q(
            "hw-permit-validity",
            "一级动火作业票的有效期不超过：",
            ["2 小时", "8 小时", "24 小时", "72 小时"],
            [1],
        ),
        _q(
            "hw-interrupt",
            "动火作业中断超过多长时间须重新进行气体分析？",
            ["10 分钟", "30 分钟", "60 分钟", "不需要重新分析"],
            [2],
        ),
        _q(
            "hw-guardian",
            "关于动火监护人，下列说法正确的有：",
            [
                "监护人应全程在场",
                "监护人可以同时从事其他工作",
                "发现异常应立即停止动火",
                "监护人应熟悉灭火器材的使用",
            ],
            [0, 2, 3],
            multiple=True,
        ),
        _q(
            "hw-after",
            "动火作业结束后应当：",
            [
                "立即离开现场",
                "清理现场、确认无残留火种，并关闭作业票",
                "把作业票交给下一班继续使用",
                "只需关掉焊机",
            ],
            [1],
        ),
    ],
    draw_count=5,
    pass_mark=80,
    attempts_per_day=3,
    validity_days=180,
)

_LIFTING = InductionContent(
    title="装置大检修吊装作业专项交底",
    sections=[
        Section(
            title="本次检修的吊装作业",
            body=(
                "本交底仅适用于宁波基地本次装置大检修期间（共 **20 天**）的吊装作业，"
                "检修结束即失效。\n\n"
                "- 吊装质量大于 **100 t** 或吊物质量虽小但形状复杂的为一级吊装，须编制专项方案\n"
                "- 作业前检查吊索具、确认地基承载力，划定警戒区"
            ),
        ),
        Section(
            title="“十不吊”",
            body=(
                "指挥信号不明不吊；超载不吊；工件捆绑不牢不吊；吊物上站人不吊；"
                "安全装置失灵不吊；工件埋在地下不吊；光线阴暗看不清不吊；"
                "斜拉工件不吊；棱角物件无防护措施不吊；**六级以上大风不吊**。"
            ),
        ),
    ],
    questions=[
        _q(
            "lf-wind",
            "风力达到几级及以上时应停止露天吊装作业？",
            ["三级", "四级", "六级", "八级"],
            [2],
        ),
        _q(
            "lf-under-load",
            "吊物下方是否允许人员停留或通过？",
            ["允许快速通过", "严禁停留或通过", "戴好安全帽即可", "指挥人员可以"],
            [1],
        ),
        _q(
            "lf-signal",
            "指挥信号不明确时，司机应当：",
            ["按经验操作", "停止操作，确认信号后再作业", "鸣笛后继续", "由司索工代为指挥"],
            [1],
        ),
        _q(
            "lf-ten-rules",
            "下列哪些情况属于“十不吊”？",
            ["超载", "吊物上站人", "斜拉工件", "吊索具经检查完好"],
            [0, 1, 2],
            multiple=True,
        ),
        _q(
            "lf-scope",
            "本交底的适用期限是：",
            ["长期有效", "本次大检修期间", "一年", "三个月"],
            [1],
        ),
    ],
    draw_count=5,
    pass_mark=80,
    attempts_per_day=3,
    validity_days=20,
)

_CONFINED = InductionContent(
    title="受限空间作业专项培训",
    sections=[
        Section(
            title="受限空间的辨识",
            body=(
                "受限空间指进出受限、通风不良，可能存在易燃易爆、有毒有害物质或缺氧的"
                "反应器、塔、釜、罐、槽车、管道、地下室、窨井等。"
            ),
        ),
        Section(
            title="作业要求",
            body=(
                "- 坚持“**先通风、再检测、后作业**”\n"
                "- 氧含量 **19.5%–21%**（富氧环境不超过 23.5%）\n"
                "- 作业中每 **2 小时**至少检测一次，并持续通风\n"
                "- 出入口设专人监护，清点进出人员和工具"
            ),
        ),
    ],
    questions=[
        _q(
            "cs-principle",
            "受限空间作业应遵循的原则是：",
            ["先作业、后检测", "先通风、再检测、后作业", "只需通风", "只需检测"],
            [1],
        ),
        _q(
            "cs-oxygen",
            "受限空间内氧含量的合格范围是：",
            ["15%–19%", "19.5%–21%", "25%–30%", "只要有氧即可"],
            [1],
        ),
        _q(
            "cs-interval",
            "受限空间作业中至少每隔多长时间检测一次？",
            ["30 分钟", "2 小时", "4 小时", "只在开工前检测"],
            [1],
        ),
        _q(
            "cs-guardian",
            "受限空间出入口监护人的职责有：",
            [
                "清点进出人员和工具",
                "与作业人员保持联络",
                "发现异常立即组织撤离",
                "进入空间协助作业",
            ],
            [0, 1, 2],
            multiple=True,
        ),
        _q(
            "cs-examples",
            "下列属于受限空间的有：",
            ["反应釜", "地下窨井", "储罐", "中控室"],
            [0, 1, 2],
            multiple=True,
        ),
    ],
    draw_count=4,
    pass_mark=80,
    attempts_per_day=3,
    validity_days=180,
)

DEMO_INDUCTIONS: MappingProxyType[str, InductionContent] = MappingProxyType(
    {code: _general(code) for code in _FACTS}
)
"""Each plant's general 入厂安全教育 as currently published, questions with their ``correct``
option indexes; NB01's was published twice, this is its version 2."""

DEMO_WORK_TYPE_INDUCTIONS: MappingProxyType[tuple[str, WorkType], InductionContent] = (
    MappingProxyType(
        {
            ("NB01", WorkType.HOT_WORK): _HOT_WORK,
            ("NB01", WorkType.LIFTING): _LIFTING,
            ("NJ01", WorkType.CONFINED_SPACE): _CONFINED,
        }
    )
)

# (plant code, work type or None, the versions published in order)
_PUBLISHED: tuple[tuple[str, WorkType | None, tuple[InductionContent, ...]], ...] = (
    ("NB01", None, (_general("NB01", revised=False), DEMO_INDUCTIONS["NB01"])),
    ("NJ01", None, (DEMO_INDUCTIONS["NJ01"],)),
    ("HZ01", None, (DEMO_INDUCTIONS["HZ01"],)),
    *((code, kind, (content,)) for (code, kind), content in DEMO_WORK_TYPE_INDUCTIONS.items()),
)

# Who publishes each plant's inductions: its EHS officer, else the group's tenant admin.
_AUTHORS = {
    "NB01": "li.guoqiang@donghai-chem.example",
    "NJ01": "liu.yang@donghai-chem.example",
    "HZ01": "wang.jianguo@donghai-chem.example",
}

# --- workers ---------------------------------------------------------------------------------

# The company whose workers get logins and training (宁波海安机电, approved).
TRAINING_CONTRACTOR_ADMIN = "lin.xiaodong@haian-mep.example"


@dataclass(frozen=True)
class DemoWorkerLogin:
    worker_name: str
    email: str


DEMO_WORKER_LOGINS = (
    DemoWorkerLogin("王大力", "worker.done@haian-mep.example"),
    DemoWorkerLogin("刘建华", "worker.failed@haian-mep.example"),
    # Never attempted anything: the NB01 入厂安全教育 is pending for the browser tests.
    DemoWorkerLogin("孙志强", "worker.pending@haian-mep.example"),
)


@dataclass(frozen=True)
class _Session:
    """One worker at one induction: passed and signed, or failed; ``assisted`` when the
    company administrator holds the tablet."""

    worker_name: str
    plant: str
    work_type: WorkType | None
    passed: bool
    assisted: bool = False


_SESSIONS = (
    _Session("王大力", "NB01", None, passed=True),
    _Session("王大力", "NB01", WorkType.HOT_WORK, passed=True),
    _Session("王大力", "NJ01", None, passed=True, assisted=True),
    _Session("刘建华", "NB01", None, passed=False),
    # Twenty days of validity: "expiring" on the board from the day it is signed.
    _Session("刘建华", "NB01", WorkType.LIFTING, passed=True, assisted=True),
)

_PHONE = (
    "Mozilla/5.0 (Linux; Android 13; V2238A Build/TP1A.220624.014) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36"
)
_TABLET = (
    "Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1"
)

# --- seeding ---------------------------------------------------------------------------------


async def _principal(session: AsyncSession, tenant: Tenant, email: str) -> Principal:
    user = await services.user_by_email(session, email)
    assert user is not None, email
    principal = await services.load_principal(session, tenant, user.id)
    assert principal is not None, email
    return principal


async def _ensure_inductions(
    session: AsyncSession, tenant: Tenant, plants: dict[str, Plant]
) -> dict[tuple[str, str | None], Induction]:
    admin = await _principal(session, tenant, _AUTHORS["HZ01"])
    existing = {
        (i.plant_id, i.work_type, i.draft.get("title")): i
        for i in await training.list_inductions(session, admin)
    }
    result = {}
    for code, kind, versions in _PUBLISHED:
        plant = plants[code]
        work_type = kind.value if kind else None
        induction = existing.get((plant.id, work_type, versions[-1].title))
        if induction is None:
            author = await _principal(session, tenant, _AUTHORS[code])
            induction = await training.create_induction(
                session,
                author,
                InductionIn(plant_id=plant.id, work_type=kind, content=versions[0]),
            )
            await training.publish(session, author, induction.id)
            for content in versions[1:]:
                await training.update_draft(session, author, induction.id, DraftIn(content=content))
                await training.publish(session, author, induction.id)
        result[(code, work_type)] = induction
    return result


async def _ensure_worker_logins(
    session: AsyncSession, tenant: Tenant, known: dict[str, str]
) -> tuple[list[tuple[str, str]], Contractor]:
    admin = await _principal(session, tenant, TRAINING_CONTRACTOR_ADMIN)
    contractor = await _admin_contractor(session, admin)
    viewer = Viewer(admin.user_id, admin.roles, contractor.id)
    workers = await _workers(session, contractor)
    logins = []
    for spec in DEMO_WORKER_LOGINS:
        password = known.get(spec.email) or secrets.token_urlsafe(12)
        worker = workers[spec.worker_name]
        user = await services.user_by_email(session, spec.email)
        if user is None:
            user = await onboarding.add_contractor_user(
                session,
                viewer,
                contractor.id,
                ContractorUserIn(
                    email=spec.email,
                    name=worker.name,
                    password=password,
                    phone=worker.phone,
                    role=Role.CONTRACTOR_WORKER.value,
                    worker_id=worker.id,
                ),
            )
        elif not verify_password(user.password_hash, password):
            await services.set_password(session, user, password)
        logins.append((spec.email, password))
    return logins, contractor


async def _admin_contractor(session: AsyncSession, admin: Principal) -> Contractor:
    viewer = await viewer_for(session, admin)
    assert viewer.contractor_id is not None
    return (
        await session.execute(select(Contractor).where(Contractor.id == viewer.contractor_id))
    ).scalar_one()


async def _workers(session: AsyncSession, contractor: Contractor) -> dict[str, Worker]:
    rows = await session.scalars(select(Worker).where(Worker.contractor_id == contractor.id))
    return {worker.name: worker for worker in rows}


def signature_strokes(seed: str, characters: int, width: int = 360, height: int = 180) -> StrokesIn:
    """A hand-drawn looking signature of ``characters`` Chinese characters: four to six
    strokes each (横, 竖, 撇, 捺, 点), with a little tremor, sampled every 8–16 ms. The seed
    makes it reproducible; different seeds give different drawings."""
    rng = random.Random(seed)  # noqa: S311 - a drawing, not a secret
    strokes: list[list[tuple[float, float, int]]] = []
    clock = rng.randint(300, 900)
    left = width * rng.uniform(0.08, 0.14)
    cell = width * rng.uniform(0.68, 0.8) / characters
    slant = rng.uniform(-0.12, 0.05)
    for index in range(characters):
        x0 = left + index * cell + rng.uniform(-4, 4)
        y0 = height * rng.uniform(0.2, 0.3)
        size = min(cell * 0.9, height * 0.6)
        for _ in range(rng.randint(4, 6)):
            shape = rng.choice(("heng", "shu", "pie", "na", "dian"))
            start_x = x0 + rng.uniform(0.05, 0.5) * size
            start_y = y0 + rng.uniform(0.05, 0.5) * size
            if shape == "heng":
                dx, dy = rng.uniform(0.4, 0.8) * size, rng.uniform(-0.08, 0.04) * size
            elif shape == "shu":
                dx, dy = rng.uniform(-0.05, 0.05) * size, rng.uniform(0.4, 0.8) * size
            elif shape == "pie":
                dx, dy = -rng.uniform(0.25, 0.45) * size, rng.uniform(0.35, 0.6) * size
            elif shape == "na":
                dx, dy = rng.uniform(0.3, 0.5) * size, rng.uniform(0.3, 0.5) * size
            else:
                dx, dy = rng.uniform(0.05, 0.1) * size, rng.uniform(0.06, 0.12) * size
            bend = rng.uniform(-0.12, 0.12) * size
            count = rng.randint(6, 9) if shape == "dian" else rng.randint(9, 16)
            stroke = []
            for step in range(count):
                t = step / (count - 1)
                x = start_x + dx * t + bend * math.sin(math.pi * t) * 0.5 + slant * dy * t
                y = start_y + dy * t + bend * math.sin(math.pi * t) * 0.3
                x = min(max(x + rng.gauss(0, 0.35), 2.0), width - 2.0)
                y = min(max(y + rng.gauss(0, 0.35), 2.0), height - 2.0)
                stroke.append((round(x, 1), round(y, 1), clock))
                clock += rng.randint(8, 16)
            strokes.append(stroke)
            clock += rng.randint(90, 260)
        clock += rng.randint(150, 400)
    return StrokesIn(width=width, height=height, strokes=strokes)


def _answers(bank: list[Question], drawn: list[str], *, passed: bool) -> dict[str, list[int]]:
    """The correct options for every drawn question; a failing paper gets a third of them
    wrong (a single-choice question one option off, a multiple-choice one only half-chosen)."""
    by_id = {question.id: question for question in bank}
    answers = {}
    for index, question_id in enumerate(drawn):
        question = by_id[question_id]
        choice = list(question.correct)
        if not passed and index % 3 == 0:
            if len(choice) > 1:
                choice = choice[:1]
            else:
                choice = [(choice[0] + 1) % len(question.options)]
        answers[question_id] = choice
    return answers


async def _take(
    session: AsyncSession,
    storage: ObjectStorage,
    tenant: Tenant,
    plan: _Session,
    worker: Worker,
    induction: Induction,
    plant: Plant,
    admin: Principal,
) -> None:
    attempted = await session.scalar(
        select(func.count())
        .select_from(QuizAttempt)
        .where(QuizAttempt.worker_id == worker.id, QuizAttempt.induction_id == induction.id)
    )
    if attempted:
        return
    if plan.assisted:
        taker = await training.taker_for(session, admin, worker.id)
    else:
        assert worker.user_id is not None, worker.name
        own = await services.load_principal(session, tenant, worker.user_id)
        assert own is not None
        taker = await training.taker_for(session, own)
    attempt = await training.start_attempt(session, taker, induction.id)
    content = training.version_content(await training.attempt_version(session, attempt))
    answers = _answers(content.questions, attempt.drawn, passed=plan.passed)
    attempt = await training.submit_answers(session, taker, attempt.id, AnswersIn(answers=answers))
    if not plan.passed:
        return
    assert attempt.passed, (worker.name, attempt.score)
    rng = random.Random(f"{worker.id}:{induction.id}")  # noqa: S311
    await training.sign_induction(
        session,
        storage,
        taker,
        attempt.id,
        SignatureIn(
            full_name=worker.name,
            consent=True,
            strokes=signature_strokes(f"{worker.id}:{attempt.id}", len(worker.name)),
            position=PositionIn(
                latitude=round(plant.latitude + rng.uniform(-0.002, 0.002), 6),
                longitude=round(plant.longitude + rng.uniform(-0.002, 0.002), 6),
                accuracy_m=round(rng.uniform(6, 35), 1),
            ),
        ),
        SigningDevice(
            ip_address=f"10.{rng.randint(16, 31)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}",
            user_agent=_TABLET if plan.assisted else _PHONE,
        ),
    )


async def seed_training(
    session: AsyncSession,
    settings: Settings,
    tenant: Tenant,
    plants: dict[str, Plant],
    known: dict[str, str],
) -> list[tuple[str, str]]:
    """Inductions, worker logins and training sessions; returns the worker logins (e-mail,
    password)."""
    inductions = await _ensure_inductions(session, tenant, plants)
    logins, contractor = await _ensure_worker_logins(session, tenant, known)
    workers = await _workers(session, contractor)
    admin = await _principal(session, tenant, TRAINING_CONTRACTOR_ADMIN)
    storage = storage_from_settings(settings)
    for plan in _SESSIONS:
        key = (plan.plant, plan.work_type.value if plan.work_type else None)
        await _take(
            session,
            storage,
            tenant,
            plan,
            workers[plan.worker_name],
            inductions[key],
            plants[plan.plant],
            admin,
        )
    return logins
