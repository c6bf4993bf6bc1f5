"""The QR verification page: live status for a genuine link, "invalid" for anything else, and
never an error page."""

from __future__ import annotations

import dataclasses
import io
import uuid

from litestar.testing import AsyncTestClient
from PIL import Image
from sqlalchemy import delete

from infra.db import Database
from infra.qr import VerificationRef, verification_url
from infra.security import TokenSigner
from infra.settings import Settings
from infra.storage import LocalStorage
from infra.tenancy import tenant_scope
from infra.uploads import StoredObject, document_kind, store_upload
from portal.app import create_app
from tests.factories import TenantFactory


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buffer, format="PNG")
    return buffer.getvalue()


async def _stored(database: Database, settings: Settings, tenant_id: uuid.UUID) -> StoredObject:
    storage = LocalStorage(
        settings.storage_dir, TokenSigner(settings.secret_key), settings.base_url
    )
    async with database.session() as session:
        with tenant_scope(tenant_id):
            record = await store_upload(
                session,
                storage,
                document_kind("photo"),
                io.BytesIO(_png()),
                filename="scan.png",
                created_by=None,
            )
            await session.commit()
    return record


def _path(settings: Settings, ref: VerificationRef) -> str:
    return verification_url(settings, ref).removeprefix(settings.base_url)


async def test_genuine_link_shows_live_status_then_invalid_once_withdrawn(
    pg_settings: Settings, pg_db: Database, factory: TenantFactory
) -> None:
    tenant = await factory.create(pg_db, users=())
    record = await _stored(pg_db, pg_settings, tenant.id)
    path = _path(pg_settings, VerificationRef(tenant.id, "stored_object", record.id, 1))
    async with AsyncTestClient(app=create_app(pg_settings)) as client:
        page = await client.get(path)
        assert page.status_code == 200
        assert 'data-status="valid"' in page.text
        assert "有效" in page.text
        assert record.sha256 in page.text
        api = await client.get("/api/v1/verify/" + path.rsplit("/", 1)[1])
        assert api.json()["status"] == "valid"

        async with pg_db.session() as session:
            with tenant_scope(tenant.id):
                await session.execute(delete(StoredObject).where(StoredObject.id == record.id))
                await session.commit()
        withdrawn = await client.get(path)
        assert withdrawn.status_code == 200
        assert 'data-status="invalid"' in withdrawn.text
        assert record.sha256 not in withdrawn.text


async def test_everything_else_is_invalid_and_never_an_error(
    pg_settings: Settings, pg_db: Database, factory: TenantFactory
) -> None:
    owner = await factory.create(pg_db, users=())
    stranger = await factory.create(pg_db, users=())
    record = await _stored(pg_db, pg_settings, owner.id)
    genuine = _path(pg_settings, VerificationRef(owner.id, "stored_object", record.id, 1))
    token = genuine.rsplit("/", 1)[1]
    other_key = dataclasses.replace(pg_settings, secret_key="another installation")
    candidates = [
        # Another tenant's id in a correctly signed link: RLS and the tenant filter find nothing.
        _path(pg_settings, VerificationRef(stranger.id, "stored_object", record.id, 1)),
        _path(pg_settings, VerificationRef(owner.id, "no_such_type", record.id, 1)),
        _path(pg_settings, VerificationRef(owner.id, "stored_object", uuid.uuid4(), 1)),
        _path(pg_settings, VerificationRef(uuid.uuid4(), "stored_object", record.id, 1)),
        _path(other_key, VerificationRef(owner.id, "stored_object", record.id, 1)),
        "/v/" + token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"),
        "/v/" + token.replace(".", "", 1),
        "/v/not-a-token",
        "/v/" + "A" * 5000,
    ]
    async with AsyncTestClient(app=create_app(pg_settings)) as client:
        for path in candidates:
            page = await client.get(path)
            assert page.status_code == 200, path
            assert 'data-status="invalid"' in page.text, path
            assert record.sha256 not in page.text
            api = await client.get("/api/v1/verify/" + path.removeprefix("/v/"))
            assert api.json()["status"] == "invalid", path
