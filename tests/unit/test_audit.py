"""The ledger: appends chain per tenant, and any tampering is found and named."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, text, update

from infra import audit
from infra.audit import GENESIS_HASH, AuditChainHead, AuditEntry, verify_chain
from infra.db import Database
from infra.settings import Settings
from infra.tenancy import tenant_scope
from tests.factories import SeededTenant, TenantFactory


async def _verify(database: Database, tenant: SeededTenant) -> audit.ChainReport:
    async with database.session() as session:
        with tenant_scope(tenant.id):
            return await session.run_sync(verify_chain)


async def _append(database: Database, tenant: SeededTenant, count: int) -> None:
    async with database.session() as session:
        with tenant_scope(tenant.id):
            for index in range(count):
                await audit.record(
                    session,
                    action="test.event",
                    subject_type="test",
                    subject_id=f"s{index}",
                    payload={"index": index, "说明": "动火作业审批"},
                )
        await session.commit()


async def test_chain_links_and_verifies(any_db: Database, factory: TenantFactory) -> None:
    tenant = await factory.create(any_db)
    await _append(any_db, tenant, 5)
    async with any_db.session() as session:
        with tenant_scope(tenant.id):
            entries = (await session.execute(select(AuditEntry).order_by(AuditEntry.seq))).scalars()
            entries = list(entries)
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.hash
    report = await _verify(any_db, tenant)
    assert report.ok and report.entries_checked == len(entries)


async def test_chains_are_per_tenant(any_db: Database, factory: TenantFactory) -> None:
    first = await factory.create(any_db)
    second = await factory.create(any_db)
    await _append(any_db, first, 3)
    first_report = await _verify(any_db, first)
    second_report = await _verify(any_db, second)
    assert first_report.ok and second_report.ok
    assert first_report.entries_checked == second_report.entries_checked + 3


async def test_rolled_back_change_leaves_no_entry(any_db: Database, factory: TenantFactory) -> None:
    tenant = await factory.create(any_db)
    before = (await _verify(any_db, tenant)).entries_checked
    async with any_db.session() as session:
        with tenant_scope(tenant.id):
            await audit.record(session, action="x", subject_type="t", subject_id="1")
        await session.rollback()
    report = await _verify(any_db, tenant)
    assert report.ok and report.entries_checked == before


async def test_concurrent_appends_never_fork(pg_db: Database, factory: TenantFactory) -> None:
    tenant = await factory.create(pg_db)
    await asyncio.gather(*(_append(pg_db, tenant, 3) for _ in range(6)))
    report = await _verify(pg_db, tenant)
    assert report.ok


async def test_concurrent_first_appends_make_one_head(
    pg_settings: Settings, factory: TenantFactory
) -> None:
    """A tenant's first entries, six transactions at once: the head is made once and the chain
    stays one line."""
    owner = Database(_owner_url(pg_settings), pg_settings.sync_migration_database_url)
    app = Database.from_settings(pg_settings)
    try:
        tenant = await factory.create(app)
        async with owner.session() as session:
            with tenant_scope(tenant.id):
                await session.execute(delete(AuditEntry))
                await session.execute(delete(AuditChainHead))
                await session.commit()
        await asyncio.gather(*(_append(app, tenant, 3) for _ in range(6)))
        report = await _verify(app, tenant)
        assert report.ok
        async with app.session() as session:
            with tenant_scope(tenant.id):
                [head] = (await session.execute(select(AuditChainHead))).scalars().all()
                entries = (await session.execute(select(func.count(AuditEntry.id)))).scalar_one()
        assert head.last_seq == entries == 18
    finally:
        await owner.dispose()
        await app.dispose()


def _owner_url(settings: Settings) -> str:
    return settings.migration_database_url


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        ("payload", "content does not match its hash"),
        ("action", "content does not match its hash"),
        ("hash", "content does not match its hash"),
        ("rehashed", "previous-hash link does not match"),
        ("delete_middle", "is missing"),
        ("delete_tail", "chain head says"),
    ],
)
async def test_tampering_is_found_and_named(
    any_settings: Settings, factory: TenantFactory, tamper: str, expected: str
) -> None:
    # Tampering happens as the schema owner, the way a person with database access would.
    owner = Database(_owner_url(any_settings), any_settings.sync_migration_database_url)
    app = Database.from_settings(any_settings)
    try:
        tenant = await factory.create(app)
        await _append(app, tenant, 4)
        async with owner.session() as session:
            with tenant_scope(tenant.id):
                last = (
                    (await session.execute(select(AuditEntry.seq).order_by(AuditEntry.seq.desc())))
                    .scalars()
                    .first()
                )
                target = 3
                match tamper:
                    case "payload":
                        await session.execute(
                            update(AuditEntry)
                            .where(AuditEntry.seq == target)
                            .values(payload={"index": 999})
                        )
                    case "action":
                        await session.execute(
                            update(AuditEntry)
                            .where(AuditEntry.seq == target)
                            .values(action="test.forged")
                        )
                    case "hash":
                        await session.execute(
                            update(AuditEntry).where(AuditEntry.seq == target).values(hash="f" * 64)
                        )
                    case "rehashed":
                        # A careful forger recomputes the altered entry's own hash; the next
                        # entry's link still gives it away.
                        entry = (
                            await session.execute(
                                select(AuditEntry).where(AuditEntry.seq == target)
                            )
                        ).scalar_one()
                        entry.payload = {"index": 999}
                        entry.hash = audit.chain_hash(entry.prev_hash, audit._entry_document(entry))
                        target += 1
                    case "delete_middle":
                        await session.execute(delete(AuditEntry).where(AuditEntry.seq == target))
                    case "delete_tail":
                        await session.execute(delete(AuditEntry).where(AuditEntry.seq == last))
                        target = last
                await session.commit()
        report = await _verify(app, tenant)
        assert not report.ok
        assert report.broken is not None
        assert expected in report.broken.reason
        assert report.broken.seq == target
        assert f"#{target}" in report.broken.describe()
    finally:
        await owner.dispose()
        await app.dispose()


def _portal(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PORTAL_DATABASE_URL": settings.database_url,
        "PORTAL_MIGRATION_DATABASE_URL": settings.migration_database_url,
        "PORTAL_VAR_DIR": str(settings.var_dir),
    }
    portal = Path(sys.executable).with_name("portal")
    return subprocess.run(
        [str(portal), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


async def test_cli_verify_exits_nonzero_and_names_the_link(
    sqlite_settings: Settings, factory: TenantFactory
) -> None:
    database = Database.from_settings(sqlite_settings)
    try:
        tenant = await factory.create(database)
        await _append(database, tenant, 3)
        ok = await asyncio.to_thread(
            _portal, sqlite_settings, "audit", "verify", "--tenant", tenant.slug
        )
        assert ok.returncode == 0, ok.stderr
        assert f"{tenant.slug}: ok" in ok.stdout
        async with database.session() as session:
            await session.execute(
                text("UPDATE audit_entries SET payload = :p WHERE seq = 2 AND tenant_id = :t"),
                {"p": '{"forged": true}', "t": tenant.id.hex},
            )
            await session.commit()
        broken = await asyncio.to_thread(_portal, sqlite_settings, "audit", "verify")
        assert broken.returncode == 1
        assert f"{tenant.slug}: BROKEN at entry #2" in broken.stderr
        unknown = await asyncio.to_thread(
            _portal, sqlite_settings, "audit", "verify", "--tenant", "no-such-tenant"
        )
        assert unknown.returncode == 2
    finally:
        await database.dispose()


async def test_head_row_is_the_per_tenant_lock(any_db: Database, factory: TenantFactory) -> None:
    tenant = await factory.create(any_db)
    async with any_db.session() as session:
        with tenant_scope(tenant.id):
            heads = (await session.execute(select(AuditChainHead))).scalars().all()
    assert len(heads) == 1
