"""A tenant's data on PostgreSQL with S3 over HTTP: the export holds every tenant table, the CSVs,
the stored files and a verified ledger, and nothing of another tenant; deletion is refused
without the slug, can be cancelled, and after the grace period leaves no row and no object of
the tenant while the other tenant stays whole; a worker's personal data is exported and erased
with the ledger still verifying and the worker's permits still readable; the tenant
administrator's page starts an export that the embedded worker builds."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import re
import tempfile
import tracemalloc
import uuid
import zipfile
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient
from sqlalchemy import Table, func, insert, select

from geofence.models import Ping
from infra import audit
from infra.db import Database, utcnow
from infra.errors import Conflict, InvalidInput, NotFound
from infra.field_encryption import field_cipher
from infra.settings import Settings, get_settings
from infra.spreadsheets import CsvDocument
from infra.storage import LocalStorage, ObjectStorage, storage_from_settings, tenant_key
from infra.tasks import TASK_MODULES, app, periodic_jobs
from infra.tenancy import tenant_scope
from infra.uploads import StoredObject
from onboarding import personal_data
from onboarding.catalogue import WorkType
from onboarding.models import Worker
from permits import services as permit_services
from permits.models import PermitCrewMember
from portal.app import create_app
from tenants import deletion, export
from tenants.models import DataExport, Role, Tenant
from tenants.tasks import build_export, delete_due
from tests.conftest import PostgresDatabase, settings_for
from tests.factories import SeededTenant, TenantFactory
from tests.integration.conftest import S3Server
from tests.onboarding_factories import OnboardingFactory, host_viewer, make_id_number
from tests.permit_factories import CREW_MATE, LEADER, PermitWorld, window

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.postgres]

CSRF_FIELD = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')
GRACE = timedelta(days=14)
MIB = 1024 * 1024
PINGS = 6000


@dataclasses.dataclass
class Stage:
    settings: Settings
    database: Database
    storage: ObjectStorage
    world: PermitWorld
    permit_id: uuid.UUID
    factory: TenantFactory


def _materialize(stage_db: Database, storage: ObjectStorage, tenant_id: uuid.UUID) -> int:
    """Put bytes in S3 for each upload record of the tenant (the factories record uploads
    without storing them, or store them on the local disk); how many."""
    with stage_db.sync_session() as session, tenant_scope(tenant_id):
        keys = list(session.execute(select(StoredObject.key)).scalars())
    for key in keys:
        storage.put(key, f"bytes of {key}".encode(), content_type="image/png")
    return len(keys)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stage(
    postgres: PostgresDatabase, s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stage]:
    base = settings_for(
        postgres.app_url,
        tmp_path_factory.mktemp("tenant-data") / "var",
        migration_database_url=postgres.owner_url,
        login_rate_per_minute=10_000,
    )
    settings = s3_server.settings(base)
    database = Database.from_settings(settings)
    storage = storage_from_settings(settings)
    factory = TenantFactory()
    try:
        world = await PermitWorld.create(database, settings, factory)
        slot = window()
        permit = await world.draft(world.permit_in(WorkType.HEIGHT, slot), now=slot.now)
        _materialize(database, storage, world.tenant.id)
        yield Stage(settings, database, storage, world, permit.id, factory)
    finally:
        await database.dispose()


async def _small_tenant(stage: Stage, **create: Any) -> tuple[SeededTenant, str]:
    """A tenant with one company, one worker (with a known ID number) and a certificate, its
    uploads in S3; the worker's ID number."""
    tenant = await stage.factory.create(stage.database, plants=("P1",), **create)
    onboarding = OnboardingFactory(stage.database, stage.settings)
    company = await onboarding.register(tenant)
    id_number = make_id_number()
    await onboarding.add_worker(company, "钱七", id_number=id_number)
    await onboarding.add_certificate(company, "钱七")
    _materialize(stage.database, stage.storage, tenant.id)
    return tenant, id_number


def _build_export(stage: Stage, tenant_id: uuid.UUID) -> tuple[DataExport, bytes]:
    cipher = field_cipher(stage.settings)
    with stage.database.sync_session() as session, tenant_scope(tenant_id):
        tenant = session.get_one(Tenant, tenant_id)
        created = export.create_export(session, tenant, requested_by=uuid.uuid4())
        session.commit()
        done = export.run_export(session, stage.storage, cipher, created.id)
        session.commit()
        assert done is not None and done.state == "done", done and done.error
        assert done.object_key == tenant_key(tenant_id, "tenant-exports", f"{done.id}.zip")
        return done, stage.storage.get(done.object_key)


def _verify(stage: Stage, tenant_id: uuid.UUID) -> audit.ChainReport:
    with stage.database.sync_session() as session, tenant_scope(tenant_id):
        return audit.verify_chain(session)


def _rows_of(stage: Stage, tenant_id: uuid.UUID) -> dict[str, int]:
    with stage.database.sync_session() as session, tenant_scope(tenant_id):
        return {
            table.name: session.scalar(
                select(func.count())
                .select_from(table)
                .where(table.c[export.TENANT_COLUMN] == tenant_id)
            )
            or 0
            for table in export.tenant_owned_tables()
        }


def _objects_under(stage: Stage, tenant_id: uuid.UUID) -> list[str]:
    return stage.storage.keys(deletion.tenant_prefix(tenant_id))


# --- the export ------------------------------------------------------------------------------


async def test_the_export_holds_every_table_the_files_and_a_verified_ledger(stage: Stage) -> None:
    world = stage.world
    other, _number = await _small_tenant(stage)
    record, data = _build_export(stage, world.tenant.id)
    assert (record.progress, record.size) == (100, len(data))
    # The column holds the size of an archive past 2 GiB.
    with stage.database.sync_session() as session, tenant_scope(world.tenant.id):
        session.get_one(DataExport, record.id).size = 3 * 1024**3
        session.commit()
        session.expire_all()
        assert session.get_one(DataExport, record.id).size == 3 * 1024**3
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = set(archive.namelist())

    tables = export.tenant_owned_tables()
    assert {f"tables/{table.name}.json" for table in tables} <= names
    assert {"tenant_exports", "audit_entries", "workers", "permits"} <= {t.name for t in tables}
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["tenant"]["slug"] == world.tenant.slug
    assert manifest["ledger_ok"] is True
    counts = _rows_of(stage, world.tenant.id)
    for table in tables:
        rows = json.loads(archive.read(f"tables/{table.name}.json"))
        # The export's own row was still running while it was read.
        assert len(rows) == manifest["tables"][table.name]
        assert all(row["tenant_id"] == str(world.tenant.id) for row in rows)
        for row in rows:
            assert not row.keys() & export.CREDENTIAL_COLUMNS, table.name
            assert not any(key.endswith("_encrypted") for key in row), table.name
        if table.name != "tenant_exports":
            assert len(rows) == counts[table.name], table.name

    # The ID numbers in clear, matching their masked form; no credential.
    workers = list(csv.DictReader(io.StringIO(archive.read("csv/workers.csv").decode("utf-8-sig"))))
    assert {row["name"] for row in workers} >= {LEADER, CREW_MATE}
    for row in workers:
        assert "id_number_encrypted" not in row and "id_number_digest" in row
        if row["id_number_masked"]:
            masked, number = row["id_number_masked"], row["id_number"]
            assert len(number) == 18
            assert all(m == "*" or m == n for m, n in zip(masked, number, strict=True))
    users = json.loads(archive.read("tables/users.json"))
    assert users and all("password_hash" not in row for row in users)
    for name in ("plants", "contractors", "certificates", "permits", "scoring_ratings"):
        assert f"csv/{name}.csv" in names

    # Every upload whose bytes are stored is in the archive (a worker's erasure removes some).
    uploads = [item for item in manifest["files"] if item["path"]]
    assert uploads
    for item in manifest["files"]:
        if stage.storage.exists(item["key"]):
            assert archive.read(item["path"]) == stage.storage.get(item["key"])

    verification = json.loads(archive.read("ledger/verification.json"))
    assert verification["ok"] is True and verification["broken"] is None
    assert verification["entries_checked"] == counts["audit_entries"] > 0

    # Byte for byte what the export wrote when it read each table whole: json_bytes of the
    # list of rows, and the CSV as CsvDocument writes it.
    cipher = field_cipher(stage.settings)
    with stage.database.sync_session() as session, tenant_scope(world.tenant.id):
        for table in tables:
            if table.name == "tenant_exports":
                continue
            rows = list(export.table_rows(session, cipher, world.tenant.id, table))
            assert archive.read(f"tables/{table.name}.json") == export.json_bytes(rows), table.name
            if table.name in export.CSV_TABLES:
                assert archive.read(f"csv/{table.name}.csv") == _csv_whole(table, rows), table.name

    # Nothing of the other tenant.
    for name in names:
        content = archive.read(name)
        assert str(other.id).encode() not in content, name
        assert other.slug.encode() not in content, name


def _csv_whole(table: Table, rows: list[dict[str, Any]]) -> bytes:
    columns = [
        column.name.removesuffix(export.ENCRYPTED_SUFFIX)
        for column in table.c
        if column.name not in export.CREDENTIAL_COLUMNS
    ]
    document = CsvDocument(columns)
    for row in rows:
        document.add_row(export._csv_text(row.get(name)) for name in columns)
    return document.encoded()


async def test_a_json_array_written_a_document_at_a_time_is_json_bytes_of_the_list() -> None:
    documents = [
        {"名称": "一号罐区\n东侧", "at": utcnow(), "nested": {"list": [1, {"x": None}], "e": []}},
        {},
        [],
        "a\u2028b",
    ]
    for written in ([], documents[:1], documents):
        stream = io.BytesIO()
        assert export.write_json_array(stream, iter(written)) == len(written)
        assert stream.getvalue() == export.json_bytes(written)


async def test_the_archive_passes_through_a_part_at_a_time(
    stage: Stage, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """An archive of a 6 MiB scan and thousands of pings is built while the memory Python
    allocates peaks well below the size of either: it never holds the archive, a table or a
    file whole. The scan is random bytes, so compression cannot shrink what is measured."""
    tenant, _number = await _small_tenant(stage)
    scratch = tmp_path_factory.mktemp("export-scratch")
    storage = storage_from_settings(dataclasses.replace(stage.settings, s3_bucket=""))
    assert isinstance(storage, LocalStorage)
    cipher = field_cipher(stage.settings)

    def build(target: Any) -> None:
        with stage.database.sync_session() as session, tenant_scope(tenant.id):
            record = session.get_one(Tenant, tenant.id)
            export.build_archive(session, storage, cipher, record, target, scratch_dir=scratch)

    # A first run fills what stays cached whatever the data (compiled queries, the models).
    with tempfile.TemporaryFile(dir=scratch) as target:
        build(target)

    scan = os.urandom(6 * MIB)
    key = tenant_key(tenant.id, "uploads", "certificate_scan", uuid.uuid4().hex)
    storage.put(key, scan, content_type="application/pdf")
    now = utcnow()
    pings = [
        {
            "id": uuid.uuid4(),
            "tenant_id": tenant.id,
            "device_time": now - timedelta(seconds=second),
            "user_id": uuid.uuid4(),
            "latitude": 30.25,
            "longitude": 120.125,
            "accuracy_m": 5.0,
        }
        for second in range(PINGS)
    ]
    with stage.database.sync_session() as session, tenant_scope(tenant.id):
        session.add(
            StoredObject(
                kind="certificate_scan",
                key=key,
                content_type="application/pdf",
                size=len(scan),
                sha256=hashlib.sha256(scan).hexdigest(),
            )
        )
        session.execute(insert(Ping), pings)
        session.commit()
    del pings

    with tempfile.TemporaryFile(dir=scratch) as target:
        tracemalloc.start()
        try:
            build(target)
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        archive = zipfile.ZipFile(target)
        assert archive.read(export.file_path(tenant.id, key)) == scan
        table = archive.read("tables/geofence_pings.json")
        assert len(json.loads(table)) == PINGS
    assert len(table) > 2.5 * MIB
    assert peak < 2.5 * MIB, peak
    assert list(scratch.iterdir()) == []


# --- deletion --------------------------------------------------------------------------------


async def test_deletion_after_the_grace_leaves_nothing_and_spares_the_other_tenant(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant, _number = await _small_tenant(stage, users=((Role.TENANT_ADMIN, None),))
    admin = tenant.user(Role.TENANT_ADMIN).id
    _build_export(stage, tenant.id)
    # An object no row names, like a rendered document kept as a cache.
    stage.storage.put(tenant_key(tenant.id, "documents", "cached.pdf"), b"%PDF", content_type="x")
    assert len(_objects_under(stage, tenant.id)) == 3  # the scan, the export, the cache
    survivor = stage.world.tenant.id
    survivor_rows, survivor_objects = _rows_of(stage, survivor), _objects_under(stage, survivor)
    now = utcnow()

    with stage.database.sync_session() as session, tenant_scope(tenant.id):
        record = session.get_one(Tenant, tenant.id)
        with pytest.raises(InvalidInput) as refused:
            deletion.request_deletion(
                session, record, confirmation="wrong", grace_days=14, actor_id=admin, now=now
            )
        assert [(p.field, p.rule) for p in refused.value.problems] == [
            ("confirmation", "matches_slug")
        ]
        deletion.request_deletion(
            session, record, confirmation=tenant.slug, grace_days=14, actor_id=admin, now=now
        )
        with pytest.raises(Conflict):
            deletion.request_deletion(
                session, record, confirmation=tenant.slug, grace_days=14, actor_id=admin, now=now
            )
        deletion.cancel_deletion(session, record, actor_id=admin)
        assert record.deletion_scheduled_at is None
        session.commit()
    # Cancelled: past the grace, the sweep passes it by.
    with stage.database.sync_session() as session:
        assert deletion.delete_due(session, stage.storage, now + GRACE * 2) == []
    assert _rows_of(stage, tenant.id)["workers"] == 1

    with stage.database.sync_session() as session, tenant_scope(tenant.id):
        record = session.get_one(Tenant, tenant.id)
        deletion.request_deletion(
            session, record, confirmation=tenant.slug, grace_days=14, actor_id=admin, now=now
        )
        session.commit()
        actions = list(
            session.execute(
                select(audit.AuditEntry.action)
                .where(audit.AuditEntry.action.startswith("tenant.deletion"))
                .order_by(audit.AuditEntry.seq)
            ).scalars()
        )
    assert actions == [
        "tenant.deletion_requested",
        "tenant.deletion_cancelled",
        "tenant.deletion_requested",
    ]

    with stage.database.sync_session() as session:
        assert deletion.delete_due(session, stage.storage, now + GRACE - timedelta(minutes=1)) == []
        reports = deletion.delete_due(session, stage.storage, now + GRACE)
    assert [report.slug for report in reports] == [tenant.slug]
    assert reports[0].rows > 0 and reports[0].objects == 3
    # The beat's task finds nothing more to do.
    monkeypatch.setattr("tenants.tasks.worker_settings", lambda: stage.settings)
    monkeypatch.setattr("tenants.tasks.worker_database", lambda: stage.database)
    assert delete_due.run() == []

    assert set(_rows_of(stage, tenant.id).values()) == {0}
    assert _objects_under(stage, tenant.id) == []
    with stage.database.sync_session() as session:
        assert session.get(Tenant, tenant.id) is None
    # The other tenant is whole, and its ledger still verifies.
    assert _rows_of(stage, survivor) == survivor_rows
    assert _objects_under(stage, survivor) == survivor_objects
    assert _verify(stage, survivor).ok


# --- a worker's personal data ----------------------------------------------------------------


async def test_a_worker_is_exported_then_erased_and_the_records_stay_whole(stage: Stage) -> None:
    world = stage.world
    cipher = field_cipher(stage.settings)
    ehs = host_viewer(world.tenant)
    worker_id = world.worker(CREW_MATE)
    contractor_id = world.company.contractor_id

    async with world.session() as session:
        found = await personal_data.export_personal_data(
            session, ehs, contractor_id, worker_id, cipher=cipher
        )
    document = found.document
    assert document["worker"]["name"] == CREW_MATE
    assert len(document["worker"]["id_number"]) == 18
    assert document["worker"]["phone"]
    assert {"certificates", "induction_signatures", "permit_crew"} <= document["records"].keys()
    kinds = {item["kind"] for item in document["files"]}
    assert {"certificate_scan", "signature"} <= kinds
    archive = zipfile.ZipFile(
        io.BytesIO(found.archive({key: stage.storage.get(key) for key in found.files.values()}))
    )
    assert json.loads(archive.read("worker.json"))["worker"]["id"] == str(worker_id)
    assert set(found.files) <= set(archive.namelist())

    # Only reviewers of the tenant: a contractor's administrator finds no such worker.
    with pytest.raises(NotFound):
        async with world.session() as session:
            await personal_data.export_personal_data(
                session, world.company.admin, contractor_id, worker_id, cipher=cipher
            )

    # A PDF the tenant has cached, listed from S3 and deleted with the worker's files.
    cached = tenant_key(world.tenant.id, "documents", "permit.pdf")
    stage.storage.put(cached, CREW_MATE.encode(), content_type="application/pdf")
    async with world.session() as session:
        keys = await personal_data.erase_personal_data(
            session, ehs, contractor_id, worker_id, cipher=cipher
        )
    deleted = personal_data.delete_erased_objects(stage.storage, world.tenant.id, keys)
    assert set(keys) == set(found.files.values())
    assert deleted == len(keys) + 1 and not stage.storage.exists(cached)

    async with world.session() as session:
        worker = await session.get_one(Worker, worker_id)
        assert worker.name == personal_data.pseudonym(worker) != CREW_MATE
        assert (worker.phone, worker.id_number_masked, worker.photo_id) == ("", "", None)
        assert (
            cipher.decrypt(
                worker.id_number_encrypted, context=f"{world.tenant.id}/workers.id_number"
            )
            == ""
        )
        assert worker.birth_date.month == worker.birth_date.day == 1
        with pytest.raises(Conflict):
            await personal_data.erase_personal_data(
                session, ehs, contractor_id, worker_id, cipher=cipher
            )
    assert not any(stage.storage.exists(key) for key in keys)

    # The ledger still verifies and records both requests; the permit still reads, with the
    # worker under the pseudonym.
    assert _verify(stage, world.tenant.id).ok
    async with world.session() as session:
        actions = list(
            (
                await session.execute(
                    select(audit.AuditEntry.action).where(
                        audit.AuditEntry.subject_id == str(worker_id),
                        audit.AuditEntry.action.startswith("worker.personal_data"),
                    )
                )
            ).scalars()
        )
        assert sorted(actions) == ["worker.personal_data_erased", "worker.personal_data_exported"]
        crew = await session.scalar(
            select(PermitCrewMember).where(
                PermitCrewMember.permit_id == stage.permit_id,
                PermitCrewMember.worker_id == worker_id,
            )
        )
        assert crew is not None
        permit = await permit_services.get_permit(
            session, await world.actor(world.ehs), stage.permit_id
        )
        assert permit.id == stage.permit_id


# --- the tenant administrator's page ---------------------------------------------------------


async def _signed_in(settings: Settings, slug: str, email: str, password: str) -> Any:
    client = AsyncTestClient(app=create_app(settings))
    await client.__aenter__()
    client.follow_redirects = False
    client.headers["Accept-Language"] = "zh-CN,zh;q=0.9"
    login = await client.get(f"/t/{slug}/login")
    csrf = CSRF_FIELD.search(login.text)
    assert csrf is not None, login.text
    response = await client.post(
        "/login",
        data={"tenant": slug, "email": email, "password": password, "_csrf_token": csrf.group(1)},
    )
    assert response.status_code in (302, 303), response.text
    return client


async def _post(client: Any, page: str, action: str, form: dict[str, str]) -> Any:
    shown = await client.get(page)
    assert shown.status_code == 200, shown.text
    csrf = CSRF_FIELD.search(shown.text)
    assert csrf is not None, shown.text
    return await client.post(action, data={**form, "_csrf_token": csrf.group(1)})


async def test_the_admin_page_exports_and_schedules_or_cancels_the_deletion(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant, number = await _small_tenant(
        stage, users=((Role.TENANT_ADMIN, None), (Role.EHS_OFFICER, None))
    )
    page = f"/t/{tenant.slug}/admin/export"
    admin_user, ehs_user = tenant.user(Role.TENANT_ADMIN), tenant.user(Role.EHS_OFFICER)
    admin = await _signed_in(stage.settings, tenant.slug, admin_user.email, admin_user.password)
    ehs = await _signed_in(stage.settings, tenant.slug, ehs_user.email, ehs_user.password)
    try:
        assert (await ehs.get(page)).status_code == 404
        shown = await admin.get(page)
        assert shown.status_code == 200
        assert 'data-testid="start-export"' in shown.text
        assert 'data-testid="request-deletion"' in shown.text

        started = await _post(admin, page, page, {})
        assert started.status_code == 303
        running = await admin.get(page)
        assert 'data-state="running"' in running.text
        assert 'data-testid="export-download"' not in running.text
        # The task as the worker runs it, on this test's database and storage.
        monkeypatch.setattr("tenants.tasks.worker_settings", lambda: stage.settings)
        with stage.database.sync_session() as session, tenant_scope(tenant.id):
            export_id = session.scalars(select(DataExport.id)).one()
            assert build_export.run(session, export_id=str(export_id)) == "done"
            session.commit()
        listed = await admin.get(page)
        assert 'data-state="done"' in listed.text, listed.text
        link = f"{page}/{export_id}/download"
        assert f'href="{link}"' in listed.text
        download = await admin.get(link)
        assert download.status_code == 200
        assert download.headers["content-type"].startswith("application/zip")
        assert download.headers["cache-control"] == "no-store"
        with stage.database.sync_session() as session, tenant_scope(tenant.id):
            built = session.get_one(DataExport, export_id)
        assert download.headers["content-disposition"] == (
            f'attachment; filename="{built.filename}"'
        )
        assert download.headers["content-length"] == str(built.size)
        assert download.content == stage.storage.get(built.object_key or "")
        assert "manifest.json" in zipfile.ZipFile(io.BytesIO(download.content)).namelist()
        assert (await ehs.get(link)).status_code == 404
        assert (await admin.get(f"{page}/{uuid.uuid4()}/download")).status_code == 404

        deletion_path = f"/t/{tenant.slug}/admin/deletion"
        refused = await _post(admin, page, deletion_path, {"confirmation": tenant.slug + "x"})
        assert refused.status_code == 422
        assert 'data-field="confirmation"' in refused.text
        scheduled = await _post(admin, page, deletion_path, {"confirmation": tenant.slug})
        assert scheduled.status_code == 303
        assert 'data-testid="deletion-scheduled"' in (await admin.get(page)).text
        cancelled = await _post(admin, page, f"{deletion_path}/cancel", {})
        assert cancelled.status_code == 303
        after = await admin.get(page)
        assert 'data-testid="deletion-scheduled"' not in after.text
        assert 'data-testid="request-deletion"' in after.text

        # A worker's personal data, from the review page, by an EHS officer.
        with stage.database.sync_session() as session, tenant_scope(tenant.id):
            worker = session.scalars(select(Worker)).one()
            contractor_id, worker_id = worker.contractor_id, worker.id
        review = await ehs.get(f"/t/{tenant.slug}/review/{contractor_id}")
        personal = f"/t/{tenant.slug}/review/{contractor_id}/workers/{worker_id}/personal-data"
        assert f'href="{personal}"' in review.text
        downloaded = await _post(ehs, personal, f"{personal}/export", {})
        assert downloaded.status_code == 200, downloaded.text
        document = json.loads(zipfile.ZipFile(io.BytesIO(downloaded.content)).read("worker.json"))
        assert document["worker"]["id_number"] == number
        unconfirmed = await _post(ehs, personal, f"{personal}/erase", {})
        assert unconfirmed.status_code == 422
        assert 'data-field="confirm"' in unconfirmed.text
        erased = await _post(ehs, personal, f"{personal}/erase", {"confirm": "yes"})
        assert erased.status_code == 303
        shown = await ehs.get(personal)
        assert 'data-erased="true"' in shown.text and number not in shown.text
        assert (
            await ehs.get(personal.replace(str(worker_id), str(uuid.uuid4())))
        ).status_code == 404
    finally:
        for client in (ehs, admin):
            await client.__aexit__(None, None, None)


async def test_the_tasks_are_registered_and_the_sweep_scheduled() -> None:
    assert "tenants.tasks" in TASK_MODULES
    assert periodic_jobs(get_settings())["tenant-deletions"] == ("tenants.delete_due", 3600.0)
    app.loader.import_default_modules()
    assert {"tenants.build_export", "tenants.delete_due"} <= set(app.tasks)
