"""The ledger keeps no worker's personal data: adding, changing and importing workers writes
keyed digests of the name, ID number and phone, and certificates the digest of their number,
which an inspector holding the key can check against a value, and the chain still verifies.

A worker's whole life (admission, certificates, induction, permit crew, briefing, check-in with
their own login, reminders sent and queued) leaves none of it in the ledger; erasing their
personal data then leaves it in no row and no stored object of the tenant (certificate numbers
aside, kept on purpose), not even in the outbox, whose messages to the worker not yet sent are
withdrawn; the ledger and the induction record still verify, and the worker's login no longer
works."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from geofence import tracking
from geofence.models import Alert, AlertKind
from geofence.schemas import GpsCheckIn
from infra.audit import AuditEntry, verify_chain
from infra.db import Database, utcnow
from infra.documents import cached_documents_prefix
from infra.errors import AuthenticationFailed, Conflict
from infra.notify import Notification, NotificationKind, channels_for
from infra.notify.sms import mask_phone
from infra.outbox import (
    OutboxMessage,
    OutboxStatus,
    deliver_outbox_message,
    failed_messages,
    retry_failed,
)
from infra.settings import Settings
from infra.tasks import worker_settings
from infra.tenancy import tenant_scope
from infra.verification import VerificationStatus
from onboarding import personal_data, services
from onboarding.catalogue import WorkType
from onboarding.models import Certificate, Worker
from onboarding.schemas import WorkerIn, WorkerUpdate
from onboarding.tasks import reencrypt_id_numbers
from permits import services as permit_services
from tenants import export, notifications
from tenants import services as tenant_services
from tenants.models import Role, Tenant, User
from tenants.services import LoginPolicy
from tests.factories import TenantFactory
from tests.onboarding_factories import (
    OnboardingFactory,
    host_viewer,
    in_tenant,
    make_id_number,
    roster_xlsx,
)
from tests.permit_factories import CENTRE, CREW_MATE, LEADER, PermitWorld, Window
from training import records
from training.models import BriefingSignature, InductionSignature


def _masked(number: str) -> str:
    return number[:6] + "********" + number[-4:]


async def _entries(database: Database, tenant_id: Any) -> list[AuditEntry]:
    async with in_tenant(database, tenant_id) as session:
        return list(await session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))


async def test_worker_entries_hold_digests_not_personal_data(
    any_db: Database, any_settings: Settings, factory: TenantFactory
) -> None:
    tenant = await factory.create(any_db, plants=("P1",), users=())
    make = OnboardingFactory(any_db, any_settings)
    cipher = make.cipher
    company = await make.register(tenant)
    number = make_id_number(date(1985, 5, 5))
    async with in_tenant(any_db, tenant.id) as session:
        worker = await services.add_worker(
            session,
            company.admin,
            company.contractor_id,
            WorkerIn(name="欧阳明远", id_number=number, phone="13712345678", trade="电焊工"),
            cipher=cipher,
        )
        await services.update_worker(
            session,
            company.admin,
            company.contractor_id,
            worker.id,
            WorkerUpdate(name="欧阳明达", phone="13787654321", trade="电工"),
            cipher=cipher,
        )
        name_context = services.field_context(services.NAME_FIELD)
        phone_context = services.field_context(services.PHONE_FIELD)
        number_context = services.id_number_context()
    number_digest = cipher.digest(number, context=number_context)
    imported = [make_id_number(date(1990 + i, 2, 2)) for i in range(2)]
    rows = [
        ["司马青云", imported[0], "13611112222", "架子工"],
        ["上官白露", imported[1], "13633334444", "电工"],
    ]
    async with in_tenant(any_db, tenant.id) as session:
        await services.import_workers(
            session,
            company.admin,
            company.contractor_id,
            roster_xlsx(rows),
            cipher=cipher,
        )

    entries = await _entries(any_db, tenant.id)
    by_action = {entry.action: dict(entry.payload or {}) for entry in entries}
    ledger_text = json.dumps([entry.payload for entry in entries], ensure_ascii=False)
    personal = ["欧阳明远", "欧阳明达", "13712345678", "13787654321", number, _masked(number)]
    for name, id_number, phone, _trade in rows:
        personal += [name, id_number, _masked(id_number), phone]
    assert [value for value in personal if value in ledger_text] == []

    added = by_action["worker.added"]
    assert added["name_digest"] == cipher.digest("欧阳明远", context=name_context)
    assert added["id_number_digest"] == number_digest
    assert added["name_digest"] != cipher.digest("欧阳明达", context=name_context)
    changes = by_action["worker.updated"]["changes"]
    assert changes == {
        "name_digest": cipher.digest("欧阳明达", context=name_context),
        "phone_digest": cipher.digest("13787654321", context=phone_context),
        "trade": "电工",
    }
    listed = by_action["workers.imported"]["workers"]
    assert [item["name_digest"] for item in listed] == [
        cipher.digest(name, context=name_context) for name, *_rest in rows
    ]
    assert [item["id_number_digest"] for item in listed] == [
        cipher.digest(id_number, context=number_context) for id_number in imported
    ]

    with tenant_scope(tenant.id), any_db.sync_session() as session:
        report = verify_chain(session)
    assert report.ok and report.entries_checked == len(entries)


# --- a worker's whole life, then the erasure --------------------------------------------------


async def _started_work(world: PermitWorld) -> None:
    """Work at height under way since an hour ago, the crew briefed, the work leader checked in
    with his own login."""
    now = utcnow().replace(microsecond=0)
    at = Window(now - timedelta(hours=1), now + timedelta(hours=4))
    permit = await world.approved(world.permit_in(WorkType.HEIGHT, at), now=at.now)
    await world.brief(permit.id)
    await world.confirm(permit.id, now=at.start)
    async with world.session() as session:
        actor = await permit_services.actor_for(session, world.guardian)
        await permit_services.start(session, actor, permit.id, now=at.start)
    async with world.session() as session:
        await tracking.check_in(
            session,
            world.settings,
            world.leader_login.user_id,
            permit.id,
            GpsCheckIn(latitude=CENTRE[1], longitude=CENTRE[0], accuracy_m=5),
            at.start + timedelta(minutes=5),
        )
    async with world.session() as session:
        session.add(
            Alert(
                plant_id=permit.plant_id,
                kind=AlertKind.LEFT_ZONE.value,
                condition=f"left_zone:{permit.id}:{world.leader_login.user_id}",
                user_id=world.leader_login.user_id,
                person=LEADER,
                opened_at=at.start + timedelta(minutes=30),
                last_seen_at=at.start + timedelta(minutes=31),
            )
        )


def _reminder(
    world: PermitWorld, worker: str, key: str, recipient: uuid.UUID | str
) -> Notification:
    """A reminder of a worker's expiring certificate, in the words of the daily watch."""
    return Notification(
        tenant_id=world.tenant.id,
        kind=NotificationKind.CERTIFICATE_EXPIRING,
        context={
            "contractor_name": "承包商",
            "certificate": "焊接与热切割作业",
            "certificate_number": "T000000000000",
            "expires_on": date(2030, 1, 31),
            "days_left": 7,
            "worker_name": worker,
        },
        idempotency_key=key,
        recipient=recipient,
    )


def _deliver(world: PermitWorld, message_id: uuid.UUID) -> None:
    with tenant_scope(world.tenant.id), world.database.sync_session() as session:
        deliver_outbox_message.run(session, message_id=str(message_id), attempt=0)
        session.commit()


def _outbox(world: PermitWorld) -> dict[uuid.UUID, OutboxMessage]:
    with tenant_scope(world.tenant.id), world.database.sync_session() as session:
        messages = session.scalars(select(OutboxMessage)).all()
        session.expunge_all()
    return {message.id: message for message in messages}


def _children(world: PermitWorld, parent: Notification) -> list[OutboxMessage]:
    """The per-channel messages the notification was fanned out to."""
    return [
        message
        for message in _outbox(world).values()
        if message.topic == notifications.DELIVERY_TOPIC
        and message.payload["notification"]["idempotency_key"] == parent.idempotency_key
    ]


@dataclasses.dataclass(frozen=True)
class QueuedMessages:
    sent_to_worker: list[uuid.UUID]
    about_worker: uuid.UUID
    pending_to_worker: list[uuid.UUID]
    others: list[uuid.UUID]


async def _queue_messages(world: PermitWorld, phone: str) -> QueuedMessages:
    """Reminders about the worker, to his company's administrator and to himself (one text
    sent to his phone, one waiting to be sent, one queued to his number), and one about a crew
    mate."""
    login, admin = world.leader_login.user_id, world.company.admin.user_id
    async with world.session() as session:
        await session.execute(update(User).where(User.id == login).values(phone=phone))
    sent, waiting = (_reminder(world, LEADER, f"sent-{n}", login) for n in (1, 2))
    about = _reminder(world, LEADER, "about", admin)
    by_phone = _reminder(world, LEADER, "by-phone", phone)
    other = _reminder(world, CREW_MATE, "other", admin)
    async with world.session() as session:
        queued = {
            notification.idempotency_key: await notifications.queue_notification(
                session, notification
            )
            for notification in (sent, waiting, about, by_phone, other)
        }
    for key in ("sent-1", "sent-2", "about"):
        _deliver(world, queued[key].id)
    sms = [child for child in _children(world, sent) if child.payload["channel"] == "sms"]
    (waiting_sms,) = [
        child for child in _children(world, waiting) if child.payload["channel"] == "sms"
    ]
    assert [child.payload["destination"] for child in sms] == [phone]
    _deliver(world, sms[0].id)
    return QueuedMessages(
        sent_to_worker=[queued["sent-1"].id, sms[0].id, queued["sent-2"].id],
        about_worker=queued["about"].id,
        pending_to_worker=[waiting_sms.id, queued["by-phone"].id],
        others=[queued["other"].id],
    )


def _personal_values(world: PermitWorld, worker_id: uuid.UUID) -> dict[str, str]:
    """What identifies the worker, read before the erasure: name, ID number (and its masked
    form), phone (and its masked form), certificate numbers and the login's e-mail address."""
    with tenant_scope(world.tenant.id), world.database.sync_session() as session:
        worker = session.get_one(Worker, worker_id)
        number = world.onboarding.cipher.decrypt(
            worker.id_number_encrypted, context=f"{world.tenant.id}/workers.id_number"
        )
        login = session.get_one(User, worker.user_id)
        certificates = session.scalars(
            select(Certificate.number).where(Certificate.worker_id == worker_id)
        ).all()
        values = {
            "name": worker.name,
            "id_number": number,
            "id_number_masked": worker.id_number_masked,
            "phone": worker.phone,
            "phone_masked": mask_phone(worker.phone),
            "email": login.email,
        }
    return values | {f"certificate {n}": n for n in certificates}


def _tenant_text(world: PermitWorld) -> dict[str, str]:
    """Every row of every tenant table as text, by table and row id."""
    found = {}
    with tenant_scope(world.tenant.id), world.database.sync_session() as session:
        for table in export.tenant_owned_tables():
            for row in session.execute(select(table)).mappings():
                found[f"{table.name}/{row['id']}"] = json.dumps(
                    dict(row), ensure_ascii=False, default=str
                )
    return found


def _found(texts: dict[str, str], values: dict[str, str]) -> list[tuple[str, str]]:
    return sorted(
        (where, what)
        for where, text in texts.items()
        for what, value in values.items()
        if value and value in text
    )


async def test_erasure_reaches_signatures_logins_copies_and_cached_pdfs(
    sqlite_db: Database, sqlite_settings: Settings, factory: TenantFactory
) -> None:
    world = await PermitWorld.create(sqlite_db, sqlite_settings, factory)
    worker_id = world.worker(LEADER)
    # The factory gives every worker the same phone; this one's is his own.
    async with world.session() as session:
        await services.update_worker(
            session,
            world.company.admin,
            world.company.contractor_id,
            worker_id,
            WorkerUpdate(phone="13512345678"),
            cipher=world.onboarding.cipher,
        )
    await _started_work(world)
    assert worker_settings().smtp_host == "", "this test expects e-mail off in the environment"
    queued = await _queue_messages(world, "13512345678")
    personal = _personal_values(world, worker_id)
    assert personal["name"] == LEADER and personal["phone"] and len(personal["id_number"]) == 18
    outbox_before = _outbox(world)
    naming = {
        message_id
        for message_id, message in outbox_before.items()
        if any(
            value in json.dumps(message.payload, ensure_ascii=False)
            for what, value in personal.items()
            if not what.startswith("certificate")
        )
    }
    assert {*queued.sent_to_worker, queued.about_worker, *queued.pending_to_worker} <= naming
    assert [outbox_before[id_].status for id_ in queued.sent_to_worker] == ["delivered"] * 3
    assert [outbox_before[id_].status for id_ in queued.pending_to_worker] == ["pending"] * 2
    # With those queued here, the request of the permit's approval from him as work leader.
    his_addresses = {str(world.leader_login.user_id), personal["phone"]}
    pending_to_worker = [
        message_id
        for message_id, message in outbox_before.items()
        if message.status == OutboxStatus.PENDING
        and {message.payload.get("recipient"), message.payload.get("destination")} & his_addresses
    ]
    assert len(pending_to_worker) == len(queued.pending_to_worker) + 1
    assert set(queued.pending_to_worker) < set(pending_to_worker)

    # The ledger of the whole life, from registration to the check-in, holds none of it.
    ledger = {
        where: text
        for where, text in _tenant_text(world).items()
        if where.startswith("audit_entries/")
    }
    assert _found(ledger, personal) == []

    async with world.session() as session:
        signature_ids = {
            table: list(await session.scalars(select(model.id).where(model.worker_id == worker_id)))
            for table, model in (
                ("induction_signatures", InductionSignature),
                ("briefing_signatures", BriefingSignature),
            )
        }
    assert all(len(ids) == 1 for ids in signature_ids.values())
    cached = cached_documents_prefix(world.tenant.id) + "permit.pdf"
    world.storage.put(cached, LEADER.encode(), content_type="application/pdf")

    async with world.session() as session:
        keys = await personal_data.erase_personal_data(
            session,
            host_viewer(world.tenant),
            world.company.contractor_id,
            worker_id,
            cipher=world.onboarding.cipher,
        )
    deleted = personal_data.delete_erased_objects(world.storage, world.tenant.id, keys)
    assert deleted == len(keys) + 1 and not world.storage.exists(cached)

    # No row of the tenant names the worker any more, except the certificate numbers, kept
    # on purpose (docs/tenant-data.md).
    kept = {what: value for what, value in personal.items() if not what.startswith("certificate")}
    assert _found(_tenant_text(world), kept) == []
    certificate_rows = {
        where: text
        for where, text in _tenant_text(world).items()
        if not where.startswith("certificates/")
    }
    assert _found(certificate_rows, personal) == []
    for key in world.storage.keys(f"tenants/{world.tenant.id}/"):
        content = world.storage.get(key)
        assert not any(value.encode() in content for value in personal.values()), key

    # The ledger verifies, and the erasure's entry says what it did, without the values.
    with tenant_scope(world.tenant.id), world.database.sync_session() as session:
        assert verify_chain(session).ok
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == personal_data.ERASED_ACTION)
        ).one()
    assert entry.payload["login_disabled"] is True
    assert entry.payload["named_in"] == ["geofence_watch_members", "geofence_alerts"]
    attested = {
        (item["table"], item["id"], item["intact"]) for item in entry.payload["sealed_records"]
    }
    assert attested == {
        (table, str(record_id), True) for table, ids in signature_ids.items() for record_id in ids
    }

    # The outbox keeps its history without the worker: what was sent stays delivered, at the
    # same times; what was to go to him is withdrawn and goes nowhere, not even when retried;
    # messages not his are untouched.
    erased_name = f"W-{worker_id.hex[:8].upper()}"
    sms_provider = channels_for(worker_settings()).sms.provider
    texts_before = len(sms_provider.sent)  # type: ignore[attr-defined]
    for message_id in queued.pending_to_worker:
        _deliver(world, message_id)
    outbox_after = _outbox(world)
    assert len(sms_provider.sent) == texts_before  # type: ignore[attr-defined]
    assert outbox_after.keys() == outbox_before.keys()
    for message_id in [*queued.sent_to_worker, queued.about_worker]:
        before, after = outbox_before[message_id], outbox_after[message_id]
        assert (after.status, after.topic, after.updated_at, after.delivered_at) == (
            before.status,
            before.topic,
            before.updated_at,
            before.delivered_at,
        )
        assert after.payload != before.payload
    assert outbox_after[queued.about_worker].payload["context"]["worker_name"] == erased_name
    changed = [
        message_id
        for message_id, before in outbox_before.items()
        if (before.payload, before.status, before.key, before.last_error)
        != (
            outbox_after[message_id].payload,
            outbox_after[message_id].status,
            outbox_after[message_id].key,
            outbox_after[message_id].last_error,
        )
    ]
    assert set(changed) == naming | set(pending_to_worker)
    assert entry.payload["outbox_messages"] == {
        "scrubbed": len(changed),
        "cancelled": len(pending_to_worker),
    }
    for message_id in pending_to_worker:
        withdrawn = outbox_after[message_id]
        assert withdrawn.status == OutboxStatus.CANCELLED and withdrawn.attempts == 0
        assert withdrawn.last_error == "the recipient's personal data was erased"
        async with world.session() as session:
            with pytest.raises(Conflict):
                await retry_failed(session, message_id)
            # Withdrawn is not failed: nothing for an administrator to look into or send again.
            assert message_id not in {message.id for message in await failed_messages(session)}
    for message_id in queued.others:
        before, after = outbox_before[message_id], outbox_after[message_id]
        assert (after.payload, after.key, after.status, after.updated_at) == (
            before.payload,
            before.key,
            before.status,
            before.updated_at,
        )

    # The induction record still verifies, under the pseudonym; a later change does not.
    (induction_signature,) = signature_ids["induction_signatures"]
    async with world.session() as session:
        verdict = await records.verify_signature(session, world.storage, induction_signature, 1)
        assert verdict is not None and verdict.status is VerificationStatus.VALID
        assert dict(verdict.facts)["Signed by"] == f"W-{worker_id.hex[:8].upper()}"
        signature = await session.get_one(InductionSignature, induction_signature)
        signature.ip_address = "198.51.100.9"
        await session.flush()
        tampered = await records.verify_signature(session, world.storage, induction_signature, 1)
        assert tampered is not None and tampered.status is VerificationStatus.INVALID
        await session.rollback()

    # The worker's login is disabled: the password no longer works, nor a session.
    async with world.session() as session:
        with pytest.raises(AuthenticationFailed):
            await tenant_services.authenticate(
                session,
                email=personal["email"],
                password="worker-pass-1",
                policy=LoginPolicy(max_failures=5, lockout=timedelta(minutes=15)),
            )
        tenant = await session.get_one(Tenant, world.tenant.id)
        assert (
            await tenant_services.load_principal(session, tenant, world.leader_login.user_id)
            is None
        )


async def test_erased_workers_stay_erased_through_a_key_rotation(
    sqlite_db: Database,
    sqlite_settings: Settings,
    factory: TenantFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant = await factory.create(sqlite_db, plants=("P1",), users=((Role.EHS_OFFICER, None),))
    make = OnboardingFactory(sqlite_db, sqlite_settings)
    company = await make.register(tenant)
    erased = [await make.add_worker(company, name) for name in ("欧阳明远", "司马青云")]
    for worker_id in erased:
        async with in_tenant(sqlite_db, tenant.id) as session:
            await personal_data.erase_personal_data(
                session, host_viewer(tenant), company.contractor_id, worker_id, cipher=make.cipher
            )
    rotated = dataclasses.replace(
        sqlite_settings,
        field_encryption_key=f"1:{'n' * 40},0:{sqlite_settings.secret_key}",
    )
    monkeypatch.setattr("onboarding.tasks.worker_settings", lambda: rotated)
    with tenant_scope(tenant.id), sqlite_db.sync_session() as session:
        assert reencrypt_id_numbers.run(session) == 2
        session.commit()
        workers = session.scalars(select(Worker).where(Worker.id.in_(erased))).all()
        assert all(personal_data.is_erased(worker) for worker in workers)
        assert all(worker.id_number_encrypted.startswith("1:") for worker in workers)


def test_a_message_is_the_workers_by_his_numbers_addresses_or_a_field_that_is_his_name() -> None:
    worker = Worker(
        id=uuid.uuid4(), name="李明", phone="13512345678", id_number_masked="110101********1234"
    )
    traces = personal_data.Traces.of(worker, None, "110101199001011234", "W-0000")
    assert traces.addressed({"recipient": "13512345678"})
    assert traces.concerns({"notification": {"context": {"person": "李明"}}}, None)
    assert traces.concerns({"destination": "admin@example.com"}, "13512345678: no such number")
    # Another's name that begins with his, or a masked phone that could be anyone's, is not him.
    assert not traces.concerns({"context": {"worker_name": "李明华"}}, None)
    assert not traces.concerns({"label": "135****5678"}, None)
    reason = "李明 110101199001011234 110101********1234 135****5678"
    assert traces.scrub({"context": {"worker_name": "李明", "reason": reason}, "days": 3}) == {
        "context": {"worker_name": "W-0000", "reason": "W-0000   "},
        "days": 3,
    }
