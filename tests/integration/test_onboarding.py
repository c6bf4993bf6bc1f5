"""Admission services on SQLite and PostgreSQL: registration, item-by-item review with its ledger
entries and notifications, resubmission, suspension, qualification, the expiry watch on frozen
dates, ID numbers encrypted at rest, and roster imports."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import msgspec
import pytest
from sqlalchemy import select, text

from infra.db import Database
from infra.errors import Conflict, DomainError, InvalidInput, NotFound
from infra.field_encryption import FieldCipher
from infra.i18n import locale_scope
from infra.notify import Notification, render_notification
from infra.outbox import OutboxMessage
from infra.settings import Settings
from infra.tasks import TaskEffect
from infra.tenancy import tenant_scope
from onboarding import services
from onboarding.access import Viewer
from onboarding.catalogue import CertificateKind, WorkType
from onboarding.clock import PLANT_TIMEZONE, plant_today
from onboarding.expiry import watch_expiry
from onboarding.models import (
    Certificate,
    Contractor,
    ContractorDocument,
    ContractorMember,
    Worker,
)
from onboarding.qualification import Reason
from onboarding.roster import RosterRefused
from onboarding.schemas import (
    CertificateIn,
    CertificateUpdate,
    ItemVerdict,
    ReviewIn,
    WorkerIn,
    WorkerUpdate,
)
from onboarding.tasks import expiry_fan_out, expiry_watch, reencrypt_id_numbers
from tenants.models import Membership, Role
from tests.factories import SeededTenant, TenantFactory, audit_actions, count_rows
from tests.onboarding_factories import (
    Company,
    OnboardingFactory,
    host_viewer,
    in_tenant,
    make_id_number,
    registration,
    roster_xlsx,
)

HOSTS = ((Role.TENANT_ADMIN, None), (Role.EHS_OFFICER, None))


@dataclasses.dataclass
class World:
    database: Database
    settings: Settings
    tenant: SeededTenant
    ehs: Viewer
    onboarding: OnboardingFactory


@pytest.fixture
async def world(any_db: Database, any_settings: Settings, factory: TenantFactory) -> World:
    tenant = await factory.create(any_db, plants=("P1",), users=HOSTS)
    return World(
        any_db, any_settings, tenant, host_viewer(tenant), OnboardingFactory(any_db, any_settings)
    )


def _rules(error: pytest.ExceptionInfo[DomainError]) -> list[tuple[str, str]]:
    return [(problem.field, problem.rule) for problem in error.value.problems]


async def _notifications(world: World) -> list[dict[str, Any]]:
    """Queued notifications, oldest first, each checked to render in both languages."""
    async with in_tenant(world.database, world.tenant.id) as session:
        rows = await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.topic == "notification")
            .order_by(OutboxMessage.created_at, OutboxMessage.id)
        )
        payloads = [row.payload for row in rows]
    for payload in payloads:
        for locale in ("zh_CN", "en"):
            notification = Notification.from_payload({**payload, "locale": locale})
            assert render_notification(notification).subject
    return payloads


async def _contractor(world: World, company: Company) -> Contractor:
    async with in_tenant(world.database, world.tenant.id) as session:
        return await services.get_contractor(session, world.ehs, company.contractor_id)


# --- registration ----------------------------------------------------------------------------


async def test_registration_by_invitation_or_when_open(world: World) -> None:
    tenant, database = world.tenant, world.database
    closed = registration(tenant)
    async with in_tenant(database, tenant.id) as session:
        with pytest.raises(InvalidInput) as error:
            await services.register_contractor(session, closed)
    assert _rules(error) == [("invitation_token", "required")]

    async with in_tenant(database, tenant.id) as session:
        invitation, token = await services.create_invitation(
            session, email="Boss@Contractor.example", actor_id=world.ehs.user_id
        )
    assert invitation.token_hash != token and token not in invitation.token_hash
    invited = registration(
        tenant,
        invitation_token=token,
        admin=msgspec.structs.replace(closed.admin, email="boss@contractor.example"),
    )
    async with in_tenant(database, tenant.id) as session:
        done = await services.register_contractor(session, invited)
    assert done.contractor.state == "draft"
    async with in_tenant(database, tenant.id) as session:
        member = await session.scalar(select(ContractorMember))
        role = await session.scalar(
            select(Membership.role).where(Membership.user_id == done.admin_user_id)
        )
    assert member is not None and member.contractor_id == done.contractor.id
    assert member.user_id == done.admin_user_id and role == Role.CONTRACTOR_ADMIN

    again = registration(tenant, invitation_token=token, admin=invited.admin)
    async with in_tenant(database, tenant.id) as session:
        with pytest.raises(InvalidInput) as error:
            await services.register_contractor(session, again)
    assert _rules(error) == [("invitation_token", "invalid")]

    async with in_tenant(database, tenant.id) as session:
        _invitation, other_token = await services.create_invitation(
            session, email="someone@contractor.example", actor_id=world.ehs.user_id
        )
        with pytest.raises(InvalidInput) as error:
            await services.register_contractor(
                session, registration(tenant, invitation_token=other_token)
            )
    assert _rules(error) == [("admin.email", "invitation")]

    async with in_tenant(database, tenant.id) as session:
        await services.set_open_registration(session, allowed=True, actor_id=world.ehs.user_id)
    async with in_tenant(database, tenant.id) as session:
        with pytest.raises(Conflict) as conflict:
            await services.register_contractor(
                session, registration(tenant, uscc=done.contractor.uscc.lower())
            )
    assert _rules(conflict) == [("uscc", "unique")]
    async with in_tenant(database, tenant.id) as session:
        with pytest.raises(InvalidInput) as error:
            await services.register_contractor(
                session, registration(tenant, uscc=done.contractor.uscc[:-1] + "0")
            )
    assert error.value.problems[0].field == "uscc"
    async with in_tenant(database, tenant.id) as session:
        with pytest.raises(Conflict) as conflict:
            await services.register_contractor(session, registration(tenant, admin=invited.admin))
    assert _rules(conflict) == [("admin.email", "unique")]
    actions = await audit_actions(database, tenant.id, "contractor")
    assert actions == [
        "contractor_invitation.created",
        "contractor.registered",
        "contractor_invitation.created",
    ]


# --- review ----------------------------------------------------------------------------------


async def test_review_item_by_item_then_resubmission_and_approval(world: World) -> None:
    make = world.onboarding
    company = await make.register(world.tenant)
    await make.add_documents(company)
    for name in ("张三", "李四"):
        await make.add_worker(company, name)
        await make.add_certificate(company, name)

    async with in_tenant(world.database, world.tenant.id) as session:
        with pytest.raises(Conflict) as conflict:
            await services.review_contractor(
                session, world.ehs, company.contractor_id, ReviewIn(decision="approve")
            )
    assert _rules(conflict) == [("state", "transition")]
    await make.submit(company)
    assert (await _contractor(world, company)).state == "submitted"

    documents = [ItemVerdict(id=i, verdict="verified") for i in company.documents.values()]
    changes = ReviewIn(
        decision="request_changes",
        reason="请补充资料",
        documents=documents,
        workers=[
            ItemVerdict(id=company.workers["张三"], verdict="verified"),
            ItemVerdict(id=company.workers["李四"], verdict="rejected", reason="照片不清晰"),
        ],
        certificates=[
            ItemVerdict(id=company.certificates["张三:welding_cutting"], verdict="verified"),
            ItemVerdict(
                id=company.certificates["李四:welding_cutting"],
                verdict="rejected",
                reason="证书扫描件模糊",
            ),
        ],
    )
    async with in_tenant(world.database, world.tenant.id) as session:
        with pytest.raises(InvalidInput) as error:
            bad = msgspec.structs.replace(
                changes, workers=[ItemVerdict(id=company.workers["李四"], verdict="rejected")]
            )
            await services.review_contractor(session, world.ehs, company.contractor_id, bad)
    assert _rules(error) == [("workers[0].reason", "required")]
    async with in_tenant(world.database, world.tenant.id) as session:
        await services.review_contractor(session, world.ehs, company.contractor_id, changes)

    async with in_tenant(world.database, world.tenant.id) as session:
        workers = {
            w.name: w
            for w in await services.list_workers(session, world.ehs, company.contractor_id)
        }
        certificates = await services.list_certificates(session, world.ehs, company.contractor_id)
    assert (workers["张三"].state, workers["李四"].state) == ("verified", "rejected")
    assert workers["李四"].reason == "照片不清晰"
    assert sorted(c.state for c in certificates) == ["rejected", "verified"]
    contractor = await _contractor(world, company)
    assert (contractor.state, contractor.state_reason) == ("changes_requested", "请补充资料")
    assert contractor.state_changed_by == world.ehs.user_id
    review_actions = (await audit_actions(world.database, world.tenant.id))[-8:]
    assert sorted(review_actions) == sorted(
        ["contractor_document.verified"] * 3
        + ["worker.verified", "worker.rejected", "certificate.verified", "certificate.rejected"]
        + ["contractor.changes_requested"]
    )
    [decision] = await _notifications(world)
    assert decision["kind"] == "admission_decided"
    assert decision["recipient"] == str(company.admin.user_id)
    assert decision["context"]["decision"] == "changes_requested"
    assert "照片不清晰" in decision["context"]["reason"]
    assert "证书扫描件模糊" in decision["context"]["reason"]

    # The company fixes what was turned down and submits again.
    async with in_tenant(world.database, world.tenant.id) as session:
        await services.update_worker(
            session,
            company.admin,
            company.contractor_id,
            company.workers["李四"],
            WorkerUpdate(name="李四"),
            cipher=world.onboarding.cipher,
        )
        worker = await services.update_worker(
            session,
            company.admin,
            company.contractor_id,
            company.workers["李四"],
            WorkerUpdate(name="李 四"),
            cipher=world.onboarding.cipher,
        )
        certificate = await services.update_certificate(
            session,
            company.admin,
            company.contractor_id,
            company.certificates["李四:welding_cutting"],
            CertificateUpdate(expires_on=plant_today() + timedelta(days=700)),
            cipher=world.onboarding.cipher,
        )
    assert (worker.state, certificate.state) == ("pending", "pending")
    await make.submit(company)

    async with in_tenant(world.database, world.tenant.id) as session:
        with pytest.raises(InvalidInput) as error:
            await services.review_contractor(
                session, world.ehs, company.contractor_id, ReviewIn(decision="approve")
            )
    assert _rules(error) == [("decision", "items_pending")]
    async with in_tenant(world.database, world.tenant.id) as session:
        with pytest.raises(Conflict) as conflict:
            await services.review_contractor(
                session,
                world.ehs,
                company.contractor_id,
                ReviewIn(decision="approve", documents=documents[:1]),
            )
    assert _rules(conflict) == [("documents[0].state", "transition")]
    async with in_tenant(world.database, world.tenant.id) as session:
        await services.review_contractor(
            session,
            world.ehs,
            company.contractor_id,
            ReviewIn(
                decision="approve",
                workers=[ItemVerdict(id=company.workers["李四"], verdict="verified")],
                certificates=[
                    ItemVerdict(id=company.certificates["李四:welding_cutting"], verdict="verified")
                ],
            ),
        )
    assert (await _contractor(world, company)).state == "approved"
    notifications = await _notifications(world)
    assert [n["context"]["decision"] for n in notifications] == ["changes_requested", "approved"]
    assert (await audit_actions(world.database, world.tenant.id))[-1] == "contractor.approved"


async def test_items_added_after_admission_are_judged_alone(world: World) -> None:
    company = await world.onboarding.admitted(world.tenant, world.ehs)
    newcomer = await world.onboarding.add_worker(company, "王五")
    async with in_tenant(world.database, world.tenant.id) as session:
        [entry] = await services.review_queue(session, world.ehs)
    assert entry.contractor.id == company.contractor_id
    assert (entry.pending_documents, entry.pending_workers, entry.pending_certificates) == (0, 1, 0)

    async with in_tenant(world.database, world.tenant.id) as session:
        await services.review_contractor(
            session,
            world.ehs,
            company.contractor_id,
            ReviewIn(workers=[ItemVerdict(id=newcomer, verdict="rejected", reason="无照片")]),
        )
        assert await services.review_queue(session, world.ehs) == []
    assert (await _contractor(world, company)).state == "approved"
    latest = (await _notifications(world))[-1]
    assert latest["context"] == {
        "contractor_name": latest["context"]["contractor_name"],
        "decision": "changes_requested",
        "reason": "王五: 无照片",
    }
    assert (await audit_actions(world.database, world.tenant.id))[-1] == "worker.rejected"


async def test_suspension_reinstatement_and_blacklist(world: World) -> None:
    company = await world.onboarding.admitted(world.tenant, world.ehs)
    contractor_id = company.contractor_id
    async with in_tenant(world.database, world.tenant.id) as session:
        await services.suspend_contractor(session, world.ehs, contractor_id, reason="现场违章")
    contractor = await _contractor(world, company)
    assert (contractor.state, contractor.state_reason) == ("suspended", "现场违章")
    async with in_tenant(world.database, world.tenant.id) as session:
        with pytest.raises(Conflict) as conflict:
            await services.suspend_contractor(session, world.ehs, contractor_id, reason="again")
    assert _rules(conflict) == [("state", "transition")]
    async with in_tenant(world.database, world.tenant.id) as session:
        await services.reinstate_contractor(session, world.ehs, contractor_id, reason="已整改")
        await services.blacklist_contractor(session, world.ehs, contractor_id, reason="伪造证书")
    async with in_tenant(world.database, world.tenant.id) as session:
        with pytest.raises(Conflict):
            await services.reinstate_contractor(session, world.ehs, contractor_id, reason="x")
        with pytest.raises(Conflict) as conflict:
            await services.add_worker(
                session,
                company.admin,
                contractor_id,
                WorkerIn(
                    name="赵六", id_number=make_id_number(), phone="13700137000", trade="电工"
                ),
                cipher=world.onboarding.cipher,
            )
    assert _rules(conflict) == [("state", "editable")]
    decisions = [n["context"]["decision"] for n in await _notifications(world)]
    assert decisions == ["approved", "suspended", "approved", "blacklisted"]
    actions = await audit_actions(world.database, world.tenant.id, "contractor.")
    assert actions[-3:] == [
        "contractor.suspended",
        "contractor.reinstated",
        "contractor.blacklisted",
    ]
    with pytest.raises(NotFound):
        async with in_tenant(world.database, world.tenant.id) as session:
            await services.suspend_contractor(session, company.admin, contractor_id, reason="x")


# --- qualification ---------------------------------------------------------------------------


def _at(day: date, hour: int = 8) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=PLANT_TIMEZONE).astimezone(UTC)


async def test_qualification_names_the_first_failing_rule(world: World) -> None:
    today = plant_today()
    expiry = today + timedelta(days=10)
    make = world.onboarding
    company = await make.register(world.tenant)
    await make.add_documents(company)
    await make.add_worker(company, "张三")
    await make.add_certificate(company, "张三", expires_on=expiry)
    await make.add_worker(company, "李四")
    await make.submit(company)

    async def reasons(
        work_type: WorkType, start: date, end: date, on: date | None = None
    ) -> dict[str, Reason | None]:
        async with in_tenant(world.database, world.tenant.id) as session:
            results = await services.qualified_workers(
                session, company.contractor_id, work_type, _at(start), _at(end, 17), today=on
            )
        return {result.worker.name: result.verdict.reason for result in results}

    tomorrow = today + timedelta(days=1)
    assert set((await reasons(WorkType.HOT_WORK, tomorrow, tomorrow)).values()) == {
        Reason.CONTRACTOR_NOT_APPROVED
    }
    await make.approve_all(company, world.ehs)
    await make.add_worker(company, "王五")
    assert await reasons(WorkType.HOT_WORK, tomorrow, tomorrow) == {
        "张三": None,
        "李四": Reason.CERTIFICATE_MISSING,
        "王五": Reason.WORKER_NOT_VERIFIED,
    }
    before_expiry = await reasons(WorkType.HOT_WORK, tomorrow, expiry)
    assert before_expiry["张三"] is Reason.CERTIFICATE_EXPIRES_BEFORE_END
    # On the expiry day the certificate no longer counts, though the watch has not marked it.
    on_the_day = await reasons(WorkType.HOT_WORK, expiry, expiry, on=expiry)
    assert on_the_day["张三"] is Reason.CERTIFICATE_EXPIRED
    async with in_tenant(world.database, world.tenant.id) as session:
        state = await session.scalar(
            select(Certificate.state).where(Certificate.worker_id == company.workers["张三"])
        )
    assert state == "verified"
    assert (await reasons(WorkType.HEIGHT, tomorrow, tomorrow))["张三"] is (
        Reason.CERTIFICATE_MISSING
    )
    assert set((await reasons(WorkType.LIFTING, tomorrow, tomorrow)).values()) == {
        Reason.WORK_TYPE_NOT_OFFERED
    }

    async with in_tenant(world.database, world.tenant.id) as session:
        with pytest.raises(InvalidInput) as error:
            await services.qualified_workers(
                session, company.contractor_id, WorkType.HOT_WORK, _at(tomorrow), _at(today)
            )
        assert _rules(error) == [("end", "after_start")]
        results = await services.qualified_workers(
            session,
            company.contractor_id,
            WorkType.HOT_WORK,
            _at(expiry),
            _at(expiry, 17),
            today=expiry,
        )
        [zhang] = [r for r in results if r.worker.name == "张三"]
        with locale_scope("en"):
            assert zhang.verdict.message() == f"The certificate expired on {expiry.isoformat()}."
        with locale_scope("zh_CN"):
            assert zhang.verdict.message() == f"证书已于 {expiry.isoformat()} 过期。"
        await services.suspend_contractor(session, world.ehs, company.contractor_id, reason="整改")
    assert set((await reasons(WorkType.HOT_WORK, tomorrow, tomorrow)).values()) == {
        Reason.CONTRACTOR_SUSPENDED
    }


# --- expiry watch ----------------------------------------------------------------------------


def _watch(world: World, day: date) -> Any:
    with tenant_scope(world.tenant.id), world.database.sync_session() as session:
        report = watch_expiry(session, day)
        session.commit()
    return report


async def test_expiry_watch_reminds_once_per_threshold_and_suspends(world: World) -> None:
    today = plant_today()
    certificate_expiry = today + timedelta(days=35)
    document_expiry = today + timedelta(days=45)
    company = await world.onboarding.admitted(
        world.tenant,
        world.ehs,
        certificate_expires_on=certificate_expiry,
        document_valid_until=document_expiry,
    )
    already = len(await _notifications(world))
    sent_on: dict[date, list[dict[str, Any]]] = {}
    day = today
    while day <= document_expiry + timedelta(days=1):
        before = len(await _notifications(world))
        _watch(world, day)
        _watch(world, day)  # a second pass the same day changes nothing
        sent_on[day] = (await _notifications(world))[before:]
        day += timedelta(days=1)

    def days_with(predicate: Any) -> list[int]:
        return [
            (day - today).days
            for day, sent in sent_on.items()
            for notification in sent
            if predicate(notification)
        ]

    def is_certificate(n: dict[str, Any]) -> bool:
        return n["kind"] == "certificate_expiring" and "worker_name" in n["context"]

    def is_document(n: dict[str, Any]) -> bool:
        return n["kind"] == "certificate_expiring" and "worker_name" not in n["context"]

    assert days_with(is_certificate) == [5, 28, 34]
    assert [
        n["context"]["days_left"] for d in sent_on.values() for n in d if is_certificate(n)
    ] == [
        30,
        7,
        1,
    ]
    assert days_with(is_document) == [15] * 3 + [38] * 3 + [44] * 3
    assert days_with(lambda n: n["kind"] == "admission_decided") == [45]
    suspension = next(n for d in sent_on.values() for n in d if n["kind"] == "admission_decided")
    assert suspension["context"]["decision"] == "suspended"
    assert already == 1  # the approval

    async with in_tenant(world.database, world.tenant.id) as session:
        contractor = await services.get_contractor(session, world.ehs, company.contractor_id)
        certificate_state = await session.scalar(select(Certificate.state))
        document_states = set(await session.scalars(select(ContractorDocument.state)))
    assert contractor.state == "suspended" and contractor.state_changed_by is None
    assert certificate_state == "expired" and document_states == {"expired"}
    actions = await audit_actions(world.database, world.tenant.id)
    assert actions.count("certificate.expired") == 1
    assert actions.count("contractor_document.expired") == 3
    assert actions.count("contractor.suspended") == 1

    # Renewing the document and verifying it lets EHS reinstate the company.
    async with in_tenant(world.database, world.tenant.id) as session:
        with pytest.raises(InvalidInput) as error:
            await services.reinstate_contractor(
                session, world.ehs, company.contractor_id, reason="已更新"
            )
    assert _rules(error) == [("documents", "required_documents")]


async def test_reminder_days_are_checked_and_the_watch_reminds_on_the_tenants_own(
    world: World,
) -> None:
    async with in_tenant(world.database, world.tenant.id) as session:
        assert (await services.onboarding_settings(session)).reminder_days == [30, 7, 1]
        for days, rule in (
            ([], "count"),
            ([60, 30, 14, 7, 3, 1], "count"),
            ([0, 7], "range"),
            ([366], "range"),
            ([7, 3, 7], "distinct"),
        ):
            with pytest.raises(InvalidInput) as error:
                await services.set_reminder_days(session, days, actor_id=None)
            assert _rules(error) == [("reminder_days", rule)], days
        settings_row = await services.set_reminder_days(session, [3, 14], actor_id=None)
        assert settings_row.reminder_days == [14, 3]
        await services.set_open_registration(session, allowed=True, actor_id=None)
    async with in_tenant(world.database, world.tenant.id) as session:
        assert (await services.onboarding_settings(session)).reminder_days == [14, 3]
    assert (await audit_actions(world.database, world.tenant.id, "onboarding_settings.")) == [
        "onboarding_settings.changed"
    ] * 2

    today = plant_today()
    await world.onboarding.admitted(
        world.tenant,
        world.ehs,
        certificate_expires_on=today + timedelta(days=35),
        document_valid_until=today + timedelta(days=3 * 365),
    )
    sent: list[tuple[int, int]] = []
    for offset in range(35):
        before = len(await _notifications(world))
        _watch(world, today + timedelta(days=offset))
        sent += [
            (offset, n["context"]["days_left"])
            for n in (await _notifications(world))[before:]
            if n["kind"] == "certificate_expiring"
        ]
    assert sent == [(21, 14), (32, 3)]  # none at 30 days left (offset 5)


async def test_the_beat_job_sends_the_watch_to_every_tenant(
    sqlite_settings: Settings,
    sqlite_db: Database,
    factory: TenantFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fan-out sends one watch per tenant, carrying its tenant and no date; the watch then
    takes the plant's date. (Both run here as a worker runs them, without a broker: an in-process
    worker would leave Celery's process-wide state changed for later tests.)"""
    tenants = [await factory.create(sqlite_db, plants=(), users=HOSTS) for _ in range(2)]
    make = OnboardingFactory(sqlite_db, sqlite_settings)
    company = await make.register(tenants[0])
    await make.add_worker(company, "张三")
    await make.add_certificate(company, "张三", expires_on=plant_today() + timedelta(days=1))

    sent: list[dict[str, Any]] = []

    class Recorder:
        def apply_async(self, *, kwargs: dict[str, Any]) -> None:
            sent.append(kwargs)

    monkeypatch.setattr("onboarding.tasks.expiry_watch", Recorder())
    monkeypatch.setattr("infra.tasks.worker_database", lambda: sqlite_db)
    assert expiry_fan_out.run() == len(sent)
    assert {str(tenant.id) for tenant in tenants} <= {kwargs["tenant_id"] for kwargs in sent}
    assert all(set(kwargs) == {"tenant_id"} for kwargs in sent)

    with tenant_scope(tenants[0].id), sqlite_db.sync_session() as session:
        report = expiry_watch.run(session)
        session.commit()
    assert report["reminders"] == 1
    with tenant_scope(tenants[0].id), sqlite_db.sync_session() as session:
        keys = session.execute(select(TaskEffect.key)).scalars().all()
    assert [key.split(":")[2] for key in keys] == ["certificate"]


# --- ID numbers ------------------------------------------------------------------------------


async def test_id_numbers_are_encrypted_at_rest_and_found_by_digest(world: World) -> None:
    number = make_id_number(date(1988, 8, 8))
    company = await world.onboarding.register(world.tenant)
    worker_id = await world.onboarding.add_worker(company, "张三", id_number=number.lower())
    other = await world.onboarding.register(world.tenant)

    async with in_tenant(world.database, world.tenant.id) as session:
        raw = (await session.execute(text("SELECT * FROM workers"))).mappings().one()
    stored = " ".join(str(value) for value in raw.values())
    assert number not in stored and number[6:14] + number[14:] not in stored
    assert raw["id_number_encrypted"].startswith("0:")
    assert raw["id_number_masked"] == number[:6] + "********" + number[-4:]
    assert raw["birth_date"] in (date(1988, 8, 8), "1988-08-08")

    async with in_tenant(world.database, world.tenant.id) as session:
        found = await services.find_workers_by_id_number(
            session, world.ehs, f" {number} ", cipher=world.onboarding.cipher
        )
        hidden = await services.find_workers_by_id_number(
            session, other.admin, number, cipher=world.onboarding.cipher
        )
        with pytest.raises(Conflict) as conflict:
            await services.add_worker(
                session,
                company.admin,
                company.contractor_id,
                WorkerIn(name="张三", id_number=number, phone="13700137000", trade="电工"),
                cipher=world.onboarding.cipher,
            )
    assert [worker.id for worker in found] == [worker_id] and hidden == []
    assert _rules(conflict) == [("id_number", "unique")]
    # Another company may employ the same person.
    await world.onboarding.add_worker(other, "张三", id_number=number)


async def test_key_rotation_rewrites_old_values(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = make_id_number()
    company = await world.onboarding.register(world.tenant)
    await world.onboarding.add_worker(company, "张三", id_number=number)
    rotated = dataclasses.replace(
        world.settings,
        field_encryption_key=f"1:{'n' * 40},0:{world.settings.secret_key}",
    )
    monkeypatch.setattr("onboarding.tasks.worker_settings", lambda: rotated)
    with tenant_scope(world.tenant.id), world.database.sync_session() as session:
        assert reencrypt_id_numbers.run(session) == 1
        assert reencrypt_id_numbers.run(session) == 0
        session.commit()
    cipher = FieldCipher.from_settings(rotated)
    async with in_tenant(world.database, world.tenant.id) as session:
        worker = await session.scalar(select(Worker))
        assert worker is not None and worker.id_number_encrypted.startswith("1:")
        context = services.id_number_context()
        assert cipher.decrypt(worker.id_number_encrypted, context=context) == number
        found = await services.find_workers_by_id_number(session, world.ehs, number, cipher=cipher)
    assert [w.id for w in found] == [worker.id]
    assert (await audit_actions(world.database, world.tenant.id))[-1] == "workers.reencrypted"


# --- certificates ----------------------------------------------------------------------------


async def test_certificate_rules(world: World) -> None:
    make = world.onboarding
    first = await make.register(world.tenant)
    second = await make.register(world.tenant)
    await make.add_worker(first, "张三")
    await make.add_worker(second, "李四")
    await make.add_certificate(first, "张三", number="T-0001")
    with pytest.raises(Conflict) as conflict:
        await make.add_certificate(second, "李四", number="t-0001 ")
    assert _rules(conflict) == [("number", "unique")]
    with pytest.raises(InvalidInput) as error:
        await make.add_certificate(second, "李四", expires_on=plant_today() - timedelta(days=200))
    assert _rules(error) == [("expires_on", "after_issue")]
    with pytest.raises(InvalidInput) as error:
        await make.add_certificate(second, "李四", expires_on=plant_today())
    assert _rules(error) == [("expires_on", "expired")]
    foreign_scan = await make.upload(first, "certificate_scan")
    photo = await make.upload(second, "photo")
    own_scan = await make.upload(second, "certificate_scan")
    today = plant_today()
    cases = (
        (second.workers["李四"], foreign_scan, ("scan_id", "exists")),
        (second.workers["李四"], photo, ("scan_id", "kind")),
        (first.workers["张三"], own_scan, ("worker_id", "exists")),
    )
    for worker_id, scan_id, rule in cases:
        async with in_tenant(world.database, world.tenant.id) as session:
            with pytest.raises(InvalidInput) as error:
                await services.add_certificate(
                    session,
                    second.admin,
                    second.contractor_id,
                    CertificateIn(
                        worker_id=worker_id,
                        kind=CertificateKind.CRANE_OPERATOR,
                        number="T-0002",
                        issuing_authority="上海市市场监督管理局",
                        issued_on=today - timedelta(days=10),
                        expires_on=today + timedelta(days=10),
                        scan_id=scan_id,
                    ),
                    cipher=make.cipher,
                )
        assert _rules(error) == [rule]
    async with in_tenant(world.database, world.tenant.id) as session:
        assert len(await services.list_certificates(session, world.ehs, second.contractor_id)) == 0


# --- rosters ---------------------------------------------------------------------------------


async def _import(
    world: World, company: Company, content: bytes, *, import_valid_rows: bool = False
) -> services.ImportReport:
    async with in_tenant(world.database, world.tenant.id) as session:
        return await services.import_workers(
            session,
            company.admin,
            company.contractor_id,
            content,
            cipher=world.onboarding.cipher,
            import_valid_rows=import_valid_rows,
        )


async def test_a_good_roster_imports_every_worker(world: World) -> None:
    company = await world.onboarding.register(world.tenant)
    numbers = [make_id_number(date(1980 + i, 3, 1)) for i in range(3)]
    content = roster_xlsx(
        [[f"工人{i}", number, f"1380013800{i}", "电焊工"] for i, number in enumerate(numbers)]
    )
    report = await _import(world, company, content)
    assert [worker.name for worker in report.imported] == ["工人0", "工人1", "工人2"]
    assert report.skipped == []
    assert [worker.birth_date.year for worker in report.imported] == [1980, 1981, 1982]
    assert all(worker.state == "pending" for worker in report.imported)
    actions = await audit_actions(world.database, world.tenant.id)
    assert actions[-1] == "workers.imported"


async def test_rosters_with_wrong_columns_or_formulas_import_nothing(world: World) -> None:
    company = await world.onboarding.register(world.tenant)
    wrong = roster_xlsx(
        [["张三", make_id_number(), "13800138000"]], header=["姓名", "身份证号", "手机", "工种"]
    )
    with pytest.raises(RosterRefused) as error:
        await _import(world, company, wrong)
    assert _rules(error) == [("columns.C", "unknown_column"), ("columns.手机号", "missing_column")]
    formula = roster_xlsx([["张三", make_id_number(), "=13800138000", "电工"]])
    with pytest.raises(InvalidInput) as error:
        await _import(world, company, formula)
    assert _rules(error) == [("file", "formula")]
    assert (await count_rows(world.database, world.tenant.id, Worker))["workers"] == 0


async def test_bad_rows_import_nothing_unless_asked_for_the_valid_ones(world: World) -> None:
    company = await world.onboarding.register(world.tenant)
    registered = make_id_number(date(1970, 1, 1))
    await world.onboarding.add_worker(company, "老王", id_number=registered)
    good, repeated = make_id_number(date(1991, 1, 1)), make_id_number(date(1992, 1, 1))
    broken = good[:-1] + ("1" if good[-1] != "1" else "2")
    content = roster_xlsx(
        [
            ["张三", good, "13800138000", "电焊工"],
            ["李四", broken, "13800138001", "电工"],
            ["王五", repeated, "13800138002", "架子工"],
            ["王五", repeated, "13800138002", "架子工"],
            ["老王", registered, "13800138003", "电工"],
            ["赵六", make_id_number(), "", "电工"],
        ]
    )
    with pytest.raises(RosterRefused) as error:
        await _import(world, company, content)
    assert _rules(error) == [
        ("rows[3].身份证号", "checksum"),
        ("rows[5].身份证号", "duplicate"),
        ("rows[6].身份证号", "unique"),
        ("rows[7].手机号", "required"),
    ]
    assert (await count_rows(world.database, world.tenant.id, Worker))["workers"] == 1

    report = await _import(world, company, content, import_valid_rows=True)
    assert [worker.name for worker in report.imported] == ["张三", "王五"]
    assert [(p.row, p.column, p.rule) for p in report.skipped] == [
        (3, "身份证号", "checksum"),
        (5, "身份证号", "duplicate"),
        (6, "身份证号", "unique"),
        (7, "手机号", "required"),
    ]
    assert (await count_rows(world.database, world.tenant.id, Worker))["workers"] == 3
