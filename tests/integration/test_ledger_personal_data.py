"""The ledger keeps no worker's personal data: adding, changing and importing workers writes
keyed digests of the name, ID number and phone, which an inspector holding the key can check
against a value, and the chain still verifies."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from sqlalchemy import select

from infra.audit import AuditEntry, verify_chain
from infra.db import Database
from infra.settings import Settings
from infra.tenancy import tenant_scope
from onboarding import services
from onboarding.schemas import WorkerIn, WorkerUpdate
from tests.factories import TenantFactory
from tests.onboarding_factories import (
    OnboardingFactory,
    in_tenant,
    make_id_number,
    roster_xlsx,
)


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
