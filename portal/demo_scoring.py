"""The demo tenant's evaluation (评价): job ratings, confirmed violations, an appeal of each outcome
and supplier reviews in every grade, so the HQ pages have something to compare.

The three plants differ the way the seed's customer did before and after: Ningbo (NB01) tracks
every job, rates nearly all of them and approves in about 45 minutes; Nanjing (NJ01) sits in the
middle; Huizhou (HZ01) checks in on few jobs, leaves more unrated and lets permits wait for hours
(the approval pace and check-ins are ``portal.demo_permits``' part). The quality of the work
follows the company: each maintenance company and scaffolding firm has its own level.

Four scaffolding firms (``portal.demo.DEMO_CONTRACTORS``) do a few jobs at 18 m or more in the
last completed quarter and one in the current one, so their quarterly reviews land in grades A,
B, C and D whatever the volume: 惠州鹏达 is caught without a harness at height and working without
a permit, and its approved review suspends it (it does no later work). Every other company keeps
its admission; a review proposing more puts it on probation.

Everything goes through the real services at the moment it happened: the plant's EHS officer
rates a job a few hours after it was reported done, records findings with a photo through the
upload pipeline and marks an alert as a violation; two companies' administrators appeal a
rating each, one upheld and one amended; 李国强 computes and approves the last quarter's reviews
and leaves the current quarter's as drafts. Seeding is idempotent: once a rating exists, nothing
is added.
"""

from __future__ import annotations

import io
import random
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

from PIL import Image, ImageDraw
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from geofence import alerts
from geofence import services as geofence
from geofence.models import Alert, AlertKind
from infra.db import utcnow
from infra.settings import Settings
from infra.storage import ObjectStorage, storage_from_settings
from infra.uploads import DOCUMENT_KINDS, store_upload
from onboarding.catalogue import WorkType
from onboarding.clock import plant_date
from onboarding.models import Contractor
from onboarding.states import ContractorState
from permits import services as permits
from permits.models import Permit
from permits.states import PermitState
from portal.demo_permits import (
    DEMO_ZONES,
    PLANT_CONTRACTORS,
    _Company,
    _company,
    _host_users,
    _live,
    _Plan,
    _World,
    checks_in_on,
)
from portal.demo_training import TRAINING_CONTRACTOR_ADMIN, _principal, _Session, _take
from scoring import services as scoring
from scoring.models import Decision, Rating
from scoring.rollups import refresh_stale
from scoring.schemas import (
    AppealDecisionIn,
    AppealIn,
    DimensionScores,
    FindingIn,
    RatingIn,
    ReviewApprovalIn,
    ReviewIn,
)
from tenants.access import Principal
from tenants.models import Plant, Role, Tenant
from training.models import Induction

# --- who works how well ----------------------------------------------------------------------


@dataclass(frozen=True)
class ScoringFirm:
    """A scaffolding firm whose jobs are seeded here: where it works, how well, and how many
    jobs it does in the last completed quarter (above 30 m when ``tall``)."""

    admin_email: str
    plant: str
    quality: float
    jobs: int
    tall: bool
    expected_grade: str


SCORING_FIRMS = (
    ScoringFirm("zheng.haifeng@hengtai-az.example", "NB01", 99.0, 5, True, "A"),
    ScoringFirm("wang.jianping@ninghua-js.example", "NJ01", 85.0, 4, False, "B"),
    ScoringFirm("ye.guoliang@tongda-az.example", "HZ01", 72.0, 4, False, "C"),
    ScoringFirm("qiu.pengda@pengda-lw.example", "HZ01", 60.0, 3, True, "D"),
)
# The firm whose review suspends it: it does no work in the current quarter.
SUSPENDED_FIRM = SCORING_FIRMS[-1].admin_email

# The mean dimension score of each maintenance company's work, by its administrator.
_QUALITY = MappingProxyType(
    {
        PLANT_CONTRACTORS["NB01"]: 93.0,
        PLANT_CONTRACTORS["NJ01"]: 85.0,
        PLANT_CONTRACTORS["HZ01"]: 77.0,
        TRAINING_CONTRACTOR_ADMIN: 91.0,
        **{firm.admin_email: firm.quality for firm in SCORING_FIRMS},
    }
)
# Each plant's EHS officer leaves one in so many finished jobs unrated (the scaffolding firms'
# jobs are always rated).
UNRATED_EVERY = MappingProxyType({"NB01": 12, "NJ01": 6, "HZ01": 3})

_COMMENTS = (
    (92.0, ("安全措施落实到位，作业规范，工完料净场地清。", "作业组织有序，监护到位，按期完成。")),
    (84.0, ("作业基本规范，个别工具摆放不整齐。", "按计划完成，现场清理稍有滞后。")),
    (74.0, ("安全带挂点选择不当，已现场纠正。", "作业进度拖延，现场遗留废料较多。")),
    (0.0, ("多次提醒仍未规范佩戴防护用品，整改不及时。", "作业现场混乱，安全交底流于形式。")),
)

# Inspection findings: (firm or maintenance company admin, plant, severity, on a job?, text).
_FINDINGS = (
    (
        SUSPENDED_FIRM,
        "HZ01",
        "critical",
        True,
        "32 m 以上高处作业人员未系挂安全带，监护人未制止，立即停止作业。",
    ),
    (
        SUSPENDED_FIRM,
        "HZ01",
        "major",
        False,
        "未办理作业票在罐区擅自搭设脚手架，已责令拆除并通报。",
    ),
    (
        SCORING_FIRMS[2].admin_email,
        "HZ01",
        "major",
        True,
        "脚手架未经验收挂牌即投入使用，扣件缺失两处。",
    ),
    (
        PLANT_CONTRACTORS["HZ01"],
        "HZ01",
        "minor",
        True,
        "作业结束后现场遗留焊条头和废弃保温材料。",
    ),
    (PLANT_CONTRACTORS["NJ01"], "NJ01", "minor", True, "警戒区围挡缺失一段，已现场补设。"),
)
_ALERT_VIOLATION_NOTE = (
    "核实为作业人员未经监护人同意离开作业区并穿越液氯库房，按承包商安全违章记录一次。"
)

_APPEALS = (
    # (company admin, reason, outcome, decision text, points added per dimension when amended)
    (
        PLANT_CONTRACTORS["HZ01"],
        "现场清理已于次日上午完成，并有照片为证，请求复核文明施工得分。",
        "upheld",
        "复核现场记录：验收时现场未清理，次日补做不改变验收结论，维持原评分。",
        0.0,
    ),
    (
        PLANT_CONTRACTORS["NJ01"],
        "工期延误系装置停车推迟所致，非我方原因，请求调整进度得分。",
        "amended",
        "经核实，开工推迟由生产调度调整造成，进度得分予以调整。",
        8.0,
    ),
)


# --- photos ----------------------------------------------------------------------------------


def _site_photo(caption: str, colour: tuple[int, int, int]) -> bytes:
    """A small stand-in for a photo taken on site; ASCII only, since Pillow's built-in font has
    no Chinese glyphs."""
    image = Image.new("RGB", (480, 360), (188, 196, 204))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 250, 479, 359), fill=(120, 118, 110))
    for x in range(40, 440, 60):
        draw.line((x, 60, x, 250), fill=(90, 90, 96), width=4)
    for y in range(80, 250, 40):
        draw.line((40, y, 400, y), fill=(90, 90, 96), width=3)
    draw.rectangle((8, 8, 471, 40), fill=colour)
    draw.text((16, 18), caption, fill=(255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


async def _photo(
    session: AsyncSession,
    storage: ObjectStorage,
    caption: str,
    colour: tuple[int, int, int],
    user_id: uuid.UUID,
) -> uuid.UUID:
    record = await store_upload(
        session,
        storage,
        DOCUMENT_KINDS["photo"],
        io.BytesIO(_site_photo(caption, colour)),
        filename="site.jpg",
        created_by=user_id,
    )
    return record.id


# --- periods ---------------------------------------------------------------------------------


def quarter_of(day: date) -> tuple[int, int]:
    return day.year, (day.month - 1) // 3 + 1


def last_completed_quarter(today: date) -> tuple[int, int]:
    year, quarter = quarter_of(today)
    return (year - 1, 4) if quarter == 1 else (year, quarter - 1)


def _quarter_start(year: int, quarter: int) -> date:
    return date(year, 3 * (quarter - 1) + 1, 1)


# --- the firms' jobs -------------------------------------------------------------------------


@dataclass
class _Seeding:
    world: _World
    today: date
    ehs: dict[str, tuple[Principal, permits.Actor]]
    reviewer: permits.Actor


def _job_days(firm: ScoringFirm, today: date) -> list[date]:
    """The firm's days: spread over the last weeks of the last completed quarter, and one in the
    current quarter (none for the firm about to be suspended, nor on a quarter's first day)."""
    year, quarter = last_completed_quarter(today)
    start = _quarter_start(year, quarter)
    end = _quarter_start(*quarter_of(today))
    shift = SCORING_FIRMS.index(firm)
    days = [max(end - timedelta(days=4 + 6 * n + shift), start) for n in range(firm.jobs)]
    if firm.admin_email != SUSPENDED_FIRM and (today - end).days >= 2 + shift:
        days.append(today - timedelta(days=1 + shift))
    return days


async def _induct(seeding: _Seeding, company: _Company, plant: Plant, admin: Principal) -> None:
    world = seeding.world
    induction = await world.session.scalar(
        select(Induction).where(Induction.plant_id == plant.id, Induction.work_type.is_(None))
    )
    assert induction is not None and induction.current_version, plant.code
    for worker in company.workers:
        await _take(
            world.session,
            seeding.world.storage,
            world.tenant,
            _Session(worker.name, plant.code, None, passed=True, assisted=True),
            worker,
            induction,
            plant,
            admin,
        )


async def _firm_jobs(seeding: _Seeding, firm: ScoringFirm) -> None:
    """The firm's height work, each job driven through the permit services like the other demo
    permits, guarded by the plant's guardian."""
    world = seeding.world
    plant = world.plants[firm.plant]
    company = await _company(world.session, world.tenant, firm.admin_email)
    admin = await _principal(world.session, world.tenant, firm.admin_email)
    await _induct(seeding, company, plant, admin)
    zones = {zone.name: zone for zone in await geofence.list_zones(world.session, plant.id)}
    sites = [
        (zones[spec.name], tag)
        for spec in DEMO_ZONES[firm.plant]
        for category, tag in spec.sites
        if category == "unit"
    ]
    guardians = world.hosts[(firm.plant, Role.GUARDIAN)]
    zone_of_plant = ZoneInfo(plant.timezone)
    for n, day in enumerate(_job_days(firm, seeding.today)):
        zone, site = sites[(n + SCORING_FIRMS.index(firm)) % len(sites)]
        start = datetime.combine(day, time(8, 0), zone_of_plant)
        # _details picks the height by index: 32 and 45 m (grade IV) or 18 and 24 m (grade III).
        index = 8 * n + (6 if firm.tall else 4) + n % 2
        plan = _Plan(
            code=firm.plant,
            work_type=WorkType.HEIGHT,
            target=PermitState.CLOSED,
            start=start,
            end=start + timedelta(hours=9),
            company=company,
            crew=[(company.workers[0], "架子工")],
            guardian_worker=None,
            guardian_user=guardians[n % len(guardians)],
            zone=zone,
            site=site,
            checks_in=checks_in_on(firm.plant, PermitState.CLOSED, index),
        )
        await _live(world, plan, index)


# --- ratings, appeals, findings, alerts ------------------------------------------------------


def _scores(rng: random.Random, quality: float) -> DimensionScores:
    def score(spread: float) -> float:
        return float(round(min(100.0, max(40.0, rng.gauss(quality, spread)))))

    return DimensionScores(
        safety=score(4.0),
        quality=score(3.0),
        schedule=score(5.0),
        housekeeping=score(5.0),
        cooperation=score(3.0),
    )


def _comment(rng: random.Random, scores: DimensionScores) -> str:
    mean = (scores.safety + scores.quality + scores.schedule) / 3
    return rng.choice(next(texts for floor, texts in _COMMENTS if mean >= floor))


async def _rate(seeding: _Seeding, quality: dict[uuid.UUID, float], firms: set[uuid.UUID]) -> None:
    """The plant's EHS officer rates most jobs reported done a few hours after the fact; the
    scaffolding firms' jobs are always rated (their reviews need them)."""
    world = seeding.world
    session, rng = world.session, world.rng
    code_of = {plant.id: code for code, plant in world.plants.items()}
    done = await session.scalars(
        select(Permit)
        .where(Permit.state.in_(scoring.RATED_STATES))
        .order_by(Permit.planned_start, Permit.id)
    )
    seen: dict[str, int] = {}
    for position, permit in enumerate(list(done)):
        code = code_of[permit.plant_id]
        if permit.contractor_id not in firms:
            seen[code] = seen.get(code, 0) + 1
            if seen[code] % UNRATED_EVERY[code] == 0:
                continue
        finished = permit.closed_at or permit.completed_at
        assert finished is not None
        rated_at = min(finished + timedelta(hours=rng.uniform(1, 20)), world.real_now)
        scores = _scores(rng, quality.get(permit.contractor_id, 85.0))
        ehs = seeding.ehs[code]
        photos = []
        if position % 5 == 0:
            photos.append(
                await _photo(session, seeding.world.storage, "RATING", (6, 118, 71), ehs[0].user_id)
            )
        await scoring.rate_job(
            session,
            ehs[1],
            permit.id,
            RatingIn(scores=scores, comment=_comment(rng, scores), photo_ids=photos),
            now=rated_at,
        )


async def _appeals(seeding: _Seeding) -> None:
    """Two companies appeal a rating each, two days after it; EHS decides two days later."""
    world = seeding.world
    session = world.session
    code_of = {plant.id: code for code, plant in world.plants.items()}
    latest = world.real_now - timedelta(days=5)
    for email, reason, outcome, text, added in _APPEALS:
        company = await _company(session, world.tenant, email)
        rating = await session.scalar(
            select(Rating)
            .where(Rating.contractor_id == company.admin.contractor_id, Rating.rated_at < latest)
            .order_by(Rating.rated_at.desc())
        )
        if rating is None:
            continue
        filed = rating.rated_at + timedelta(days=2)
        await scoring.file_appeal(
            session, company.admin, rating.id, AppealIn(reason=reason), now=filed
        )
        amended = None
        if outcome == "amended":
            raised = {**rating.scores, "schedule": min(100.0, rating.scores["schedule"] + added)}
            amended = DimensionScores(**raised)
        await scoring.decide_appeal(
            session,
            seeding.ehs[code_of[rating.plant_id]][1],
            rating.id,
            AppealDecisionIn(outcome=outcome, text=text, scores=amended),
            now=filed + timedelta(days=2),
        )


async def _findings(seeding: _Seeding) -> None:
    """Inspection findings with a photo each: on one of the company's jobs, or on its own when
    the work had no permit."""
    world = seeding.world
    session = world.session
    for email, code, severity, on_job, text in _FINDINGS:
        plant = world.plants[code]
        company = await _company(session, world.tenant, email)
        contractor_id = company.admin.contractor_id
        assert contractor_id is not None
        job = await session.scalar(
            select(Permit)
            .where(
                Permit.contractor_id == contractor_id,
                Permit.plant_id == plant.id,
                Permit.state == PermitState.CLOSED.value,
            )
            .order_by(Permit.planned_start, Permit.id)
        )
        if job is None or job.started_at is None:
            continue
        observed = job.started_at + timedelta(hours=2, minutes=10)
        if not on_job:
            # The day before the job: found working without a permit.
            observed -= timedelta(days=1)
        ehs = seeding.ehs[code]
        photo = await _photo(
            session, seeding.world.storage, severity.upper(), (200, 30, 30), ehs[0].user_id
        )
        await scoring.record_finding(
            session,
            ehs[1],
            FindingIn(
                plant_id=plant.id,
                contractor_id=contractor_id,
                permit_id=job.id if on_job else None,
                severity=severity,
                description=text,
                observed_at=observed,
                photo_ids=[photo],
            ),
            now=observed + timedelta(minutes=25),
        )


async def _alert_violations(seeding: _Seeding) -> None:
    """EHS confirms the morning's first alert of someone leaving the zone (王大力 fetching rods
    through the chlorine store) as a violation; the other open alerts stay on the board."""
    world = seeding.world
    alert = await world.session.scalar(
        select(Alert)
        .where(Alert.kind == AlertKind.LEFT_ZONE.value, Alert.violation.is_(False))
        .order_by(Alert.opened_at)
    )
    if alert is None:
        return
    code_of = {plant.id: code for code, plant in world.plants.items()}
    ehs = seeding.ehs[code_of[alert.plant_id]]
    await alerts.mark_violation(
        world.session,
        alert.id,
        _ALERT_VIOLATION_NOTE,
        actor_id=ehs[0].user_id,
        now=min(alert.opened_at + timedelta(minutes=20), world.real_now),
    )


# --- reviews ---------------------------------------------------------------------------------


async def _reviews(seeding: _Seeding) -> None:
    """The last quarter's reviews of every company that worked, approved a week into this
    quarter with the proposed decision; a decision to suspend or blacklist is left to the firm
    meant for it, the others go on probation. This quarter's stay drafts."""
    world = seeding.world
    session = world.session
    suspended = (await _company(session, world.tenant, SUSPENDED_FIRM)).admin.contractor_id
    worked = set(await session.scalars(select(Permit.contractor_id).distinct()))
    contractors = list(
        await session.scalars(
            select(Contractor)
            .where(Contractor.id.in_(worked), Contractor.state == ContractorState.APPROVED.value)
            .order_by(Contractor.name)
        )
    )
    year, quarter = last_completed_quarter(seeding.today)
    current_year, current_quarter = quarter_of(seeding.today)
    week_in = datetime.combine(
        _quarter_start(current_year, current_quarter) + timedelta(days=7),
        time(10, 0),
        ZoneInfo(world.plants["NB01"].timezone),
    )
    approved_at = min(week_in, world.real_now)
    for contractor in contractors:
        review = await scoring.create_review(
            session,
            seeding.reviewer,
            ReviewIn(
                contractor_id=contractor.id, period_kind="quarter", year=year, quarter=quarter
            ),
            now=approved_at,
            today=seeding.today,
        )
        approval = ReviewApprovalIn()
        severe = review.proposed_decision in (Decision.SUSPEND.value, Decision.BLACKLIST.value)
        if severe and contractor.id != suspended:
            approval = ReviewApprovalIn(
                decision=Decision.PROBATION.value,
                reason="主力检维修单位，限期整改并加强监督检查，暂不停止准入。",
            )
        await scoring.approve_review(
            session, seeding.reviewer, review.id, approval, now=approved_at
        )
    for contractor in contractors:
        await scoring.create_review(
            session,
            seeding.reviewer,
            ReviewIn(
                contractor_id=contractor.id,
                period_kind="quarter",
                year=current_year,
                quarter=current_quarter,
            ),
            now=world.real_now,
            today=seeding.today,
        )


# --- seeding ---------------------------------------------------------------------------------


async def seed_scoring(
    session: AsyncSession, settings: Settings, tenant: Tenant, plants: dict[str, Plant]
) -> None:
    """The firms' jobs, ratings, appeals, findings, violations and reviews, once."""
    from portal.demo import DEMO_REVIEWER

    if await session.scalar(select(func.count()).select_from(Rating)):
        return
    hosts = await _host_users(session, tenant, plants)
    real_now = utcnow().replace(second=0, microsecond=0)
    storage = storage_from_settings(settings)
    world = _World(
        session=session,
        settings=settings,
        storage=storage,
        tenant=tenant,
        plants=plants,
        zones={},
        hosts=hosts,
        companies={},
        haian=await _company(session, tenant, TRAINING_CONTRACTOR_ADMIN),
        real_now=real_now,
        rng=random.Random("donghai-scoring"),  # noqa: S311 - demo data, not a secret
        volume=(),
    )
    reviewer = await _principal(session, tenant, DEMO_REVIEWER)
    seeding = _Seeding(
        world=world,
        today=plant_date(real_now),
        ehs={code: hosts[(code, Role.EHS_OFFICER)][0] for code in plants},
        reviewer=await permits.actor_for(session, reviewer),
    )
    for firm in SCORING_FIRMS:
        await _firm_jobs(seeding, firm)
    quality: dict[uuid.UUID, float] = {}
    firms: set[uuid.UUID] = set()
    firm_emails = {firm.admin_email for firm in SCORING_FIRMS}
    for email, level in _QUALITY.items():
        contractor_id = (await _company(session, tenant, email)).admin.contractor_id
        assert contractor_id is not None
        quality[contractor_id] = level
        if email in firm_emails:
            firms.add(contractor_id)
    await _rate(seeding, quality, firms)
    await _appeals(seeding)
    await _findings(seeding)
    await _alert_violations(seeding)
    await _reviews(seeding)
    # The HQ pages read the rollups; build them now rather than on the first page view.
    await session.run_sync(lambda sync: refresh_stale(sync))
