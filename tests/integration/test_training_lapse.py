"""The lapse watch over induction signatures: reminders 30, 7 and 1 days before the latest
signature lapses, once each, to the worker's own login and the company's administrators; none
for a signature a newer one superseded. The watch runs as a worker runs it, through the task's
eager ``apply`` path (no broker), on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from infra.db import Database
from infra.notify import Notification, render_notification
from infra.outbox import OutboxMessage
from infra.settings import Settings
from infra.storage import ObjectStorage, storage_from_settings
from infra.tasks import TASK_MODULES, TaskEffect, app, periodic_jobs
from infra.tenancy import tenant_scope
from onboarding import services as onboarding_services
from onboarding.clock import plant_today
from onboarding.models import Worker
from onboarding.schemas import ContractorUserIn
from tenants.access import Grant, Principal
from tenants.models import Role
from tests.factories import SeededTenant, TenantFactory
from tests.onboarding_factories import Company, OnboardingFactory, host_viewer, in_tenant
from training import services
from training.evidence import SigningDevice
from training.models import InductionSignature
from training.schemas import (
    AnswersIn,
    DraftIn,
    InductionContent,
    InductionIn,
    Question,
    Section,
    SignatureIn,
    StrokesIn,
)
from training.tasks import lapse_fan_out, lapse_watch

HOSTS = ((Role.TENANT_ADMIN, None), (Role.EHS_OFFICER, None))
DEVICE = SigningDevice(ip_address="203.0.113.7", user_agent="Mozilla/5.0 (test phone)")
TITLE = "入厂安全教育"
_drawings = itertools.count()


def _content(validity_days: int) -> InductionContent:
    return InductionContent(
        title=TITLE,
        sections=[Section(title="厂区安全须知", body="进入厂区必须佩戴安全帽。")],
        questions=[
            Question(
                id="q1", text="进入厂区必须佩戴什么？", options=["安全帽", "耳机"], correct=[0]
            )
        ],
        draw_count=1,
        pass_mark=100,
        validity_days=validity_days,
    )


def _signature(name: str) -> SignatureIn:
    """Two strokes of 15 points each across most of a 400×200 pad, shifted per call so that no
    two drawings are the same."""
    shift = next(_drawings) % 20
    first = [(20.0 + 16 * i + shift, 40.0 + (i % 4) * 20, 10 * i) for i in range(15)]
    second = [(40.0 + 14 * i, 150.0 - (i % 3) * 25 - shift, 200 + 10 * i) for i in range(15)]
    return SignatureIn(
        full_name=name,
        consent=True,
        strokes=StrokesIn(width=400, height=200, strokes=[first, second]),
    )


@dataclasses.dataclass
class World:
    database: Database
    storage: ObjectStorage
    tenant: SeededTenant
    ehs: Principal
    company: Company
    worker_login: uuid.UUID


def _ehs(tenant: SeededTenant) -> Principal:
    user = tenant.user(Role.EHS_OFFICER)
    return Principal(
        tenant_id=tenant.id,
        tenant_slug=tenant.slug,
        tenant_name=tenant.slug,
        user_id=user.id,
        name="EHS",
        email=user.email,
        locale="zh_CN",
        grants=frozenset({Grant(Role.EHS_OFFICER, None)}),
    )


@pytest.fixture
async def world(any_db: Database, any_settings: Settings, factory: TenantFactory) -> World:
    tenant = await factory.create(any_db, plants=("P1",), users=HOSTS)
    company = await OnboardingFactory(any_db, any_settings).admitted(
        tenant, host_viewer(tenant), workers=("张三", "李四")
    )
    async with in_tenant(any_db, tenant.id) as session:
        login = await onboarding_services.add_contractor_user(
            session,
            company.admin,
            company.contractor_id,
            ContractorUserIn(
                email=f"zhangsan-{uuid.uuid4().hex[:6]}@contractor.example",
                name="张三",
                password="worker-pass-12",
                worker_id=company.workers["张三"],
            ),
        )
    return World(
        any_db, storage_from_settings(any_settings), tenant, _ehs(tenant), company, login.id
    )


async def _publish(
    world: World, validity_days: int, induction_id: uuid.UUID | None = None
) -> uuid.UUID:
    async with in_tenant(world.database, world.tenant.id) as session:
        if induction_id is None:
            induction = await services.create_induction(
                session,
                world.ehs,
                InductionIn(plant_id=world.tenant.plants["P1"], content=_content(validity_days)),
            )
        else:
            induction = await services.update_draft(
                session, world.ehs, induction_id, DraftIn(content=_content(validity_days))
            )
        await services.publish(session, world.ehs, induction.id)
        return induction.id


async def _take_and_sign(world: World, induction_id: uuid.UUID, name: str) -> InductionSignature:
    """The worker passes the quiz and signs: on their own phone when they have a login, else
    with their company administrator's help."""
    async with in_tenant(world.database, world.tenant.id) as session:
        worker = (
            await session.execute(select(Worker).where(Worker.id == world.company.workers[name]))
        ).scalar_one()
        taker = services.Taker(worker, worker.user_id or world.company.admin.user_id)
        attempt = await services.start_attempt(session, taker, induction_id)
        await services.submit_answers(session, taker, attempt.id, AnswersIn(answers={"q1": [0]}))
        return await services.sign_induction(
            session, world.storage, taker, attempt.id, _signature(name), DEVICE
        )


def _watch(world: World, day: date) -> dict[str, int]:
    """One pass of the real task, run eagerly as a worker would run it: in the tenant's scope,
    with the worker's database (the test's), committed when the body returns."""
    result = lapse_watch.apply(kwargs={"tenant_id": str(world.tenant.id), "today": day.isoformat()})
    return result.get()


async def _reminders(world: World) -> list[dict[str, Any]]:
    """Queued lapse reminders, oldest first, each checked to render in both languages."""
    async with in_tenant(world.database, world.tenant.id) as session:
        rows = await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.topic == "notification")
            .order_by(OutboxMessage.created_at, OutboxMessage.id)
        )
        payloads = [row.payload for row in rows if row.payload["kind"] == "induction_lapsing"]
    for payload in payloads:
        for locale in ("zh_CN", "en"):
            notification = Notification.from_payload({**payload, "locale": locale})
            assert render_notification(notification).subject
    return payloads


@pytest.fixture
def eager_worker(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tasks take the worker's database from the process; here it is the test's."""
    monkeypatch.setattr("infra.tasks.worker_database", lambda: world.database)


@pytest.mark.usefixtures("eager_worker")
async def test_reminders_at_30_7_and_1_days_once_each_and_none_once_superseded(
    world: World,
) -> None:
    today = plant_today()
    induction_id = await _publish(world, validity_days=40)
    zhang = await _take_and_sign(world, induction_id, "张三")
    li_first = await _take_and_sign(world, induction_id, "李四")
    assert zhang.valid_until == li_first.valid_until == today + timedelta(days=39)
    # A new version, valid longer, which 李四 takes again: his first signature is superseded.
    await _publish(world, validity_days=60, induction_id=induction_id)
    li_again = await _take_and_sign(world, induction_id, "李四")
    assert li_again.valid_until == today + timedelta(days=59)

    sent_on: dict[int, list[dict[str, Any]]] = {}
    reports = []
    for offset in range(61):
        day = today + timedelta(days=offset)
        before = len(await _reminders(world))
        reports.append(_watch(world, day))
        assert _watch(world, day) == {"reminders": 0, "notifications": 0}  # nothing twice
        sent_on[offset] = (await _reminders(world))[before:]

    def days_for(worker: str) -> list[int]:
        return [
            offset
            for offset, sent in sent_on.items()
            for n in sent
            if n["context"]["worker_name"] == worker
        ]

    def sent_for(worker: str) -> list[dict[str, Any]]:
        return [
            n for sent in sent_on.values() for n in sent if n["context"]["worker_name"] == worker
        ]

    admin = str(world.company.admin.user_id)
    own = str(world.worker_login)
    # 张三 (own login): the worker and the administrator, at 30, 7 and 1 days left.
    assert days_for("张三") == [9, 9, 32, 32, 38, 38]
    zhang_sent = [
        n for sent in sent_on.values() for n in sent if n["context"]["worker_name"] == "张三"
    ]
    assert [n["context"]["days_left"] for n in zhang_sent] == [30, 30, 7, 7, 1, 1]
    assert {n["recipient"] for n in zhang_sent} == {own, admin}
    assert all(n["recipient_is_user"] for n in zhang_sent)
    # 李四 (no login): the administrator only, and only about the newer signature.
    assert days_for("李四") == [29, 52, 58]
    li_sent = [
        n for sent in sent_on.values() for n in sent if n["context"]["worker_name"] == "李四"
    ]
    assert [n["recipient"] for n in li_sent] == [admin] * 3
    assert [n["context"]["days_left"] for n in li_sent] == [30, 7, 1]
    assert all(str(li_again.id) in n["idempotency_key"] for n in li_sent)
    assert not any(str(li_first.id) in n["idempotency_key"] for n in li_sent)

    first = zhang_sent[0]["context"]
    contractor_name = first["contractor_name"]
    assert first == {
        "worker_name": "张三",
        "contractor_name": contractor_name,
        "induction": TITLE,
        "plant_name": "P1 厂区",
        "valid_until": zhang.valid_until.isoformat(),
        "days_left": 30,
    }
    assert contractor_name.startswith("华东安装工程有限公司")
    assert sum(report["reminders"] for report in reports) == 6
    assert sum(report["notifications"] for report in reports) == 9

    with tenant_scope(world.tenant.id), world.database.sync_session() as session:
        keys = session.execute(select(TaskEffect.key)).scalars().all()
    lapse_keys = sorted(key for key in keys if key.startswith("training:lapsing:"))
    assert len(lapse_keys) == 6
    assert f"training:lapsing:{zhang.id}:{zhang.valid_until.isoformat()}:30" in lapse_keys


@pytest.mark.usefixtures("eager_worker")
async def test_a_retired_induction_is_not_reminded_about(world: World) -> None:
    today = plant_today()
    induction_id = await _publish(world, validity_days=10)
    await _take_and_sign(world, induction_id, "张三")
    async with in_tenant(world.database, world.tenant.id) as session:
        await services.retire(session, world.ehs, induction_id)
    assert _watch(world, today + timedelta(days=2)) == {"reminders": 0, "notifications": 0}
    assert await _reminders(world) == []


@pytest.mark.usefixtures("eager_worker")
async def test_a_tenants_own_reminder_days_replace_30_7_and_1(world: World) -> None:
    today = plant_today()
    async with in_tenant(world.database, world.tenant.id) as session:
        await onboarding_services.set_reminder_days(session, [3, 14], actor_id=world.ehs.user_id)
    induction_id = await _publish(world, validity_days=40)
    zhang = await _take_and_sign(world, induction_id, "张三")
    assert zhang.valid_until == today + timedelta(days=39)

    sent_on: dict[int, list[dict[str, Any]]] = {}
    for offset in range(40):
        before = len(await _reminders(world))
        _watch(world, today + timedelta(days=offset))
        sent_on[offset] = (await _reminders(world))[before:]
    to_admin = [
        (offset, n["context"]["days_left"])
        for offset, sent in sent_on.items()
        for n in sent
        if n["recipient"] == str(world.company.admin.user_id)
    ]
    assert to_admin == [(25, 14), (36, 3)]  # none at 30 days left (offset 9)
    with tenant_scope(world.tenant.id), world.database.sync_session() as session:
        keys = session.execute(select(TaskEffect.key)).scalars().all()
    assert sorted(key.rsplit(":", 1)[1] for key in keys if key.startswith("training:lapsing:")) == [
        "14",
        "3",
    ]


async def test_the_beat_job_sends_the_watch_to_every_tenant(
    sqlite_db: Database, factory: TenantFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenants = [await factory.create(sqlite_db, plants=(), users=HOSTS) for _ in range(2)]
    sent: list[dict[str, Any]] = []

    class Recorder:
        def apply_async(self, *, kwargs: dict[str, Any]) -> None:
            sent.append(kwargs)

    monkeypatch.setattr("training.tasks.lapse_watch", Recorder())
    monkeypatch.setattr("infra.tasks.worker_database", lambda: sqlite_db)
    assert lapse_fan_out.run() == len(sent)
    assert {str(tenant.id) for tenant in tenants} <= {kwargs["tenant_id"] for kwargs in sent}
    assert all(set(kwargs) == {"tenant_id"} for kwargs in sent)


def test_the_watch_is_registered_and_scheduled(any_settings: Settings) -> None:
    assert "training.tasks" in TASK_MODULES
    jobs = periodic_jobs(any_settings)
    assert jobs["training-lapse-watch"] == ("training.lapse_fan_out", 3600.0)
    app.loader.import_default_modules()
    assert {"training.lapse_watch", "training.lapse_fan_out"} <= set(app.tasks)
