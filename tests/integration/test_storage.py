"""One contract for both object storage backends: S3 over HTTP against moto's server, and the
local directory with its signed download route."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from boto3.s3.transfer import TransferConfig
from litestar.testing import AsyncTestClient

from infra.security import TokenSigner
from infra.settings import Settings
from infra.storage import (
    LocalStorage,
    ObjectNotFound,
    ObjectReader,
    ObjectStorage,
    S3Storage,
    storage_from_settings,
    tenant_key,
)
from portal.app import create_app
from tests.integration.conftest import S3Server

TEST_BASE_URL = "http://testserver.local"
Fetch = Callable[[str], Awaitable[httpx.Response]]


@pytest.fixture(params=["local", "s3"])
def storage_settings(
    request: pytest.FixtureRequest, sqlite_settings: Settings, s3_server: S3Server
) -> Settings:
    local = dataclasses.replace(sqlite_settings, base_url=TEST_BASE_URL)
    return local if request.param == "local" else s3_server.settings(local)


@pytest.fixture
def storage(storage_settings: Settings) -> ObjectStorage:
    return storage_from_settings(storage_settings)


@pytest.fixture
async def fetch(storage_settings: Settings) -> AsyncIterator[Fetch]:
    """GETs a download link the way a browser would: local links through the app, presigned
    S3 links straight from the S3 server."""
    async with (
        AsyncTestClient(app=create_app(storage_settings), base_url=TEST_BASE_URL) as app_client,
        httpx.AsyncClient() as s3_client,
    ):

        async def get(url: str) -> httpx.Response:
            if url.startswith(TEST_BASE_URL):
                return await app_client.get(url.removeprefix(TEST_BASE_URL))
            return await s3_client.get(url)

        yield get


def _local(settings: Settings) -> LocalStorage:
    storage = storage_from_settings(dataclasses.replace(settings, base_url=TEST_BASE_URL))
    assert isinstance(storage, LocalStorage)
    return storage


def new_key() -> str:
    return tenant_key(uuid.uuid4(), "tests", uuid.uuid4().hex)


def test_storage_from_settings_picks_the_backend(
    sqlite_settings: Settings, s3_server: S3Server
) -> None:
    assert isinstance(storage_from_settings(sqlite_settings), LocalStorage)
    assert isinstance(storage_from_settings(s3_server.settings(sqlite_settings)), S3Storage)


def test_put_get_exists_delete(storage: ObjectStorage) -> None:
    key = new_key()
    assert not storage.exists(key)
    storage.put(key, b"first", content_type="text/plain")
    assert storage.exists(key)
    assert storage.get(key) == b"first"
    storage.put(key, b"second", content_type="text/plain")
    assert storage.get(key) == b"second"
    storage.delete(key)
    assert not storage.exists(key)


def _read_in_parts(reader: ObjectReader, size: int) -> list[bytes]:
    return list(iter(lambda: reader.read(size), b""))


def test_put_file_and_open_stream_the_object(storage: ObjectStorage, tmp_path: Path) -> None:
    key = new_key()
    content = os.urandom(200_000)
    # A file object is stored from where it stands, not from its start.
    source = io.BytesIO(b"skipped" + content)
    source.seek(len(b"skipped"))
    storage.put_file(key, source, content_type="application/zip")
    with storage.open(key) as reader:
        assert reader.size == len(content)
        parts = _read_in_parts(reader, 65_536)
    assert [len(part) for part in parts] == [65_536, 65_536, 65_536, 3_392]
    assert b"".join(parts) == content == storage.get(key)

    on_disk = tmp_path / "archive.zip"
    on_disk.write_bytes(b"from a path")
    storage.put_file(key, on_disk, content_type="application/zip")
    with storage.open(key) as reader:
        assert (reader.size, reader.read(1024), reader.read(1024)) == (11, b"from a path", b"")

    storage.delete(key)
    with pytest.raises(ObjectNotFound):
        storage.open(key)
    with pytest.raises(ValueError):
        storage.put_file("../escape", on_disk, content_type="text/plain")
    with pytest.raises(ValueError):
        storage.open("a//b")


def test_s3_put_file_sends_a_large_file_in_parts_encrypted(
    s3_server: S3Server, sqlite_settings: Settings
) -> None:
    """Above the threshold (5 MiB here, S3's smallest part) the file goes as a multipart upload,
    whose ETag counts its parts; the whole object is still typed and encrypted."""
    part = 5 * 1024 * 1024
    storage = S3Storage(
        s3_server.client(),
        s3_server.bucket,
        transfer=TransferConfig(multipart_threshold=part, multipart_chunksize=part),
    )
    key = new_key()
    content = os.urandom(part + 1000)
    storage.put_file(key, io.BytesIO(content), content_type="application/zip")
    head = s3_server.client().head_object(Bucket=s3_server.bucket, Key=key)
    assert head["ETag"].strip('"').endswith("-2")
    assert head["ServerSideEncryption"] == "AES256"
    assert (head["ContentType"], head["ContentLength"]) == ("application/zip", len(content))
    with storage.open(key) as reader:
        assert reader.size == len(content)
        assert b"".join(_read_in_parts(reader, part)) == content


def test_keys_lists_a_folder_and_nothing_beside_it(storage: ObjectStorage) -> None:
    tenant = uuid.uuid4()
    folder = tenant_key(tenant) + "/"
    inside = [tenant_key(tenant, "a.txt"), tenant_key(tenant, "docs", "b.pdf")]
    for key in [*inside, tenant_key(uuid.uuid4(), "c.txt"), tenant_key(tenant) + "-x/d.txt"]:
        storage.put(key, b"x", content_type="text/plain")
    assert storage.keys(folder) == sorted(inside)
    for key in inside:
        storage.delete(key)
    assert storage.keys(folder) == []
    assert storage.keys(tenant_key(uuid.uuid4()) + "/") == []


def test_missing_objects(storage: ObjectStorage) -> None:
    key = new_key()
    with pytest.raises(ObjectNotFound):
        storage.get(key)
    assert not storage.exists(key)
    storage.delete(key)


@pytest.mark.parametrize("key", ["../escape", "/etc/passwd", "a//b", "a/./b", ""])
def test_unsafe_keys_are_refused(storage: ObjectStorage, key: str) -> None:
    with pytest.raises(ValueError):
        storage.put(key, b"x", content_type="text/plain")
    with pytest.raises(ValueError):
        storage.get(key)


@pytest.mark.parametrize("part", ["..", ".", "", "a/b", "a\\b"])
def test_tenant_key_refuses_unsafe_parts(part: str) -> None:
    with pytest.raises(ValueError):
        tenant_key(uuid.uuid4(), "uploads", part)


def test_s3_puts_request_server_side_encryption(s3_server: S3Server, sqlite_settings: Settings):  # type: ignore[no-untyped-def]
    storage = storage_from_settings(s3_server.settings(sqlite_settings))
    key = new_key()
    storage.put(key, b"secret", content_type="application/pdf")
    head = s3_server.client().head_object(Bucket=s3_server.bucket, Key=key)
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ContentType"] == "application/pdf"


def test_download_url_lifetime_is_bounded(storage: ObjectStorage) -> None:
    for seconds in (0, -1, 7 * 24 * 3600 + 1):
        with pytest.raises(ValueError):
            storage.download_url(new_key(), expires_seconds=seconds)


async def test_download_url_serves_the_object(storage: ObjectStorage, fetch: Fetch) -> None:
    key = new_key()
    storage.put(key, b"%PDF-1.7 just bytes", content_type="application/pdf")
    response = await fetch(storage.download_url(key, expires_seconds=60))
    assert response.status_code == 200
    assert response.content == b"%PDF-1.7 just bytes"
    assert response.headers["content-type"] == "application/pdf"


async def test_local_download_url_expires(sqlite_settings: Settings) -> None:
    """Signed with a three-second lifetime, checked four seconds later: the signer's own bound
    (a week) would still accept the token, so this shows the signed lifetime is honoured. The
    app is up before the link is made, and token times are whole seconds, so a busy machine
    cannot spend the lifetime before the first request."""
    settings = dataclasses.replace(sqlite_settings, base_url=TEST_BASE_URL)
    storage = _local(settings)
    key = new_key()
    storage.put(key, b"short-lived", content_type="text/plain")
    async with AsyncTestClient(app=create_app(settings), base_url=TEST_BASE_URL) as client:
        path = storage.download_url(key, expires_seconds=3).removeprefix(TEST_BASE_URL)
        assert (await client.get(path)).status_code == 200
        await asyncio.sleep(4.1)
        assert (await client.get(path)).status_code == 404


def test_s3_download_url_is_signed_to_expire(s3_server: S3Server, sqlite_settings: Settings):  # type: ignore[no-untyped-def]
    """moto serves presigned links without checking their age, so this checks what S3 checks:
    a SigV4 query signature dated now, with the requested lifetime among the signed fields."""
    storage = storage_from_settings(s3_server.settings(sqlite_settings))
    query = parse_qs(urlsplit(storage.download_url(new_key(), expires_seconds=120)).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["120"]
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - signed_at).total_seconds()) < 60
    assert query["X-Amz-Signature"][0]


async def test_deleted_object_link_answers_4xx(storage: ObjectStorage, fetch: Fetch) -> None:
    key = new_key()
    storage.put(key, b"gone soon", content_type="text/plain")
    url = storage.download_url(key, expires_seconds=60)
    storage.delete(key)
    assert (await fetch(url)).status_code in {403, 404}


@pytest.fixture
async def local_client(sqlite_settings: Settings) -> AsyncIterator[AsyncTestClient]:
    settings = dataclasses.replace(sqlite_settings, base_url=TEST_BASE_URL)
    async with AsyncTestClient(app=create_app(settings), base_url=TEST_BASE_URL) as client:
        yield client


def _token(url: str) -> str:
    return url.rsplit("/", 1)[1]


async def test_local_links_refuse_forged_tokens(
    sqlite_settings: Settings, local_client: AsyncTestClient
) -> None:
    storage = _local(sqlite_settings)
    key = new_key()
    storage.put(key, b"private", content_type="text/plain")
    good = _token(storage.download_url(key, expires_seconds=60))
    other_key = TokenSigner("another-secret").sign(
        {"key": key, "ttl": 60}, purpose=LocalStorage.DOWNLOAD_PURPOSE
    )
    other_purpose = TokenSigner(sqlite_settings.secret_key).sign(
        {"key": key, "ttl": 60}, purpose="password-reset"
    )
    bad_shapes = [
        TokenSigner(sqlite_settings.secret_key).sign(payload, purpose=LocalStorage.DOWNLOAD_PURPOSE)
        for payload in (
            [key, 60],
            {"key": key},
            {"key": key, "ttl": "60"},
            {"key": key, "ttl": True},
            {"key": key, "ttl": -5},
            {"key": "../../etc/passwd", "ttl": 60},
            {"key": 5, "ttl": 60},
        )
    ]
    tampered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    for token in [tampered, other_key, other_purpose, *bad_shapes, "x" * 5000, "...", "%00"]:
        response = await local_client.get(f"/files/{token}")
        assert response.status_code == 404, token
    assert (await local_client.get(f"/files/{good}")).content == b"private"


def test_local_writes_leave_no_temporary_files(sqlite_settings: Settings) -> None:
    storage = _local(sqlite_settings)
    key, copied = new_key(), new_key()
    storage.put(key, b"a" * 1000, content_type="text/plain")
    storage.put_file(copied, io.BytesIO(b"b" * 1000), content_type="text/plain")
    files = [path for path in Path(storage.root).rglob("*") if path.is_file()]
    assert sorted(path.name for path in files) == sorted(
        name.rsplit("/", 1)[1] for name in (key, copied)
    )
