"""The upload pipeline over the API, on the local backend and on S3 (moto over HTTP): good files
come back clean, and every bad file is refused with the rule it broke and leaves nothing behind,
neither an object nor a row."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import shutil
import struct
import uuid
import zipfile
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient
from PIL import ExifTags, Image
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, TextStringObject
from sqlalchemy import select

from infra.db import Database
from infra.settings import Settings
from infra.storage import storage_from_settings
from infra.tenancy import tenant_scope
from infra.uploads import DOCUMENT_KINDS, StoredObject, store_upload
from portal.app import create_app
from tenants.models import Role
from tests.conftest import settings_for
from tests.factories import SeededTenant, TenantFactory
from tests.integration.conftest import S3Server

TEST_BASE_URL = "http://testserver.local"
# One app, database and tenant per backend for the whole module (signing in costs an Argon2
# hash); each test compares storage and rows before and after instead of expecting them empty.
pytestmark = pytest.mark.asyncio(loop_scope="module")


# --- files ---------------------------------------------------------------------------------


def image(fmt: str, size: tuple[int, int] = (64, 48), mode: str = "RGB", **options: Any) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, "teal").save(buffer, format=fmt, **options)
    return buffer.getvalue()


def jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyCam"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (31.0, 14.0, 5.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (121.0, 28.0, 9.0)
    data = image("JPEG", exif=exif.tobytes(), comment=b"secret comment")
    assert b"Exif" in data and b"SpyCam" in data
    return data


def rotated_jpeg() -> bytes:
    """64x48 pixels, marked to be shown rotated by 90 degrees."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    return image("JPEG", exif=exif.tobytes())


def zip_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.html", "<script>alert(1)</script>")
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bilevel_png(width: int, height: int) -> bytes:
    """A genuine all-black 1-bit PNG: huge in pixels, tiny on disk."""
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
        + png_chunk(b"IDAT", zlib.compress(row * height, 9))
        + png_chunk(b"IEND", b"")
    )


def pdf(mutate: Callable[[PdfWriter], None] | None = None, pages: int = 1) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=200, height=200)
    if mutate is not None:
        mutate(writer)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def raw_pdf(catalog_extra: bytes = b"") -> bytes:
    """A hand-assembled PDF, for names pypdf would not write (such as escaped ones)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + b" >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _document_javascript(writer: PdfWriter) -> None:
    action = DictionaryObject(
        {NameObject("/S"): NameObject("/JavaScript"), NameObject("/JS"): TextStringObject("1")}
    )
    tree = DictionaryObject(
        {NameObject("/Names"): ArrayObject([TextStringObject("x"), writer._add_object(action)])}
    )
    writer._root_object[NameObject("/Names")] = DictionaryObject({NameObject("/JavaScript"): tree})


def _open_action_launch(writer: PdfWriter) -> None:
    writer._root_object[NameObject("/OpenAction")] = DictionaryObject(
        {NameObject("/S"): NameObject("/Launch"), NameObject("/F"): TextStringObject("calc.exe")}
    )


def _page_additional_action(writer: PdfWriter) -> None:
    writer.pages[0][NameObject("/AA")] = DictionaryObject(
        {
            NameObject("/O"): DictionaryObject(
                {
                    NameObject("/S"): NameObject("/JavaScript"),
                    NameObject("/JS"): TextStringObject("1"),
                }
            )
        }
    )


def _encrypt(algorithm: str) -> Callable[[PdfWriter], None]:
    return lambda writer: writer.encrypt("user-pw", "owner-pw", algorithm=algorithm)


JPEG = image("JPEG")
PNG = image("PNG")
PDF = pdf()


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    kind: str
    filename: str
    declared: str
    data: bytes
    rule: str = ""
    content_type: str = ""


GOOD = [
    Case("jpeg", "photo", "site.jpg", "image/jpeg", JPEG, content_type="image/jpeg"),
    Case("png", "photo", "site.png", "image/png", PNG, content_type="image/png"),
    Case(
        "png-rgba",
        "photo",
        "a.png",
        "image/png",
        image("PNG", mode="RGBA"),
        content_type="image/png",
    ),
    Case("webp", "photo", "site.webp", "image/webp", image("WEBP"), content_type="image/webp"),
    Case("heic", "photo", "IMG_0001.HEIC", "image/heic", image("HEIF"), content_type="image/jpeg"),
    Case(
        "pdf",
        "certificate_scan",
        "licence.pdf",
        "application/pdf",
        PDF,
        content_type="application/pdf",
    ),
    Case(
        "raw-pdf",
        "company_document",
        "c.pdf",
        "application/pdf",
        raw_pdf(),
        content_type="application/pdf",
    ),
    Case(
        "signature",
        "signature",
        "sig.png",
        "image/png",
        image("PNG", (300, 100), "LA"),
        content_type="image/png",
    ),
    Case(
        "scan-jpeg", "certificate_scan", "scan.jpg", "image/jpeg", JPEG, content_type="image/jpeg"
    ),
    # The declared type and the name are ignored: the content decides.
    Case(
        "png-declared-jpeg",
        "company_document",
        "x.jpg",
        "image/jpeg",
        PNG,
        content_type="image/png",
    ),
]

SCRIPT_HTML = b"<html><body><script>alert(document.cookie)</script></body></html>"
BAD = [
    Case(
        "elf-named-jpg",
        "photo",
        "photo.jpg",
        "image/jpeg",
        b"\x7fELF\x02\x01\x01" + b"\0" * 500,
        "type_not_allowed",
    ),
    Case(
        "mz-named-jpg",
        "photo",
        "photo.jpg",
        "image/jpeg",
        b"MZ\x90\x00\x03" + b"\0" * 60 + b"This program cannot be run in DOS mode",
        "type_not_allowed",
    ),
    Case("empty", "photo", "empty.jpg", "image/jpeg", b"", "empty"),
    Case(
        "oversized", "photo", "big.jpg", "image/jpeg", JPEG + b"\0" * (5 * 1024 * 1024), "max_size"
    ),
    Case(
        "oversized-signature",
        "signature",
        "sig.png",
        "image/png",
        PNG + b"\0" * (512 * 1024),
        "max_size",
    ),
    Case(
        "truncated-jpeg",
        "photo",
        "cut.jpg",
        "image/jpeg",
        image("JPEG", (400, 300))[:1500],
        "image_corrupt",
    ),
    Case(
        "truncated-png",
        "photo",
        "cut.png",
        "image/png",
        image("PNG", (400, 300), "RGB", compress_level=0)[:5000],
        "image_corrupt",
    ),
    Case(
        "svg-script",
        "photo",
        "logo.svg",
        "image/svg+xml",
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "type_not_allowed",
    ),
    Case(
        "svg-named-png",
        "certificate_scan",
        "logo.png",
        "image/png",
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        "type_not_allowed",
    ),
    Case("html-named-png", "photo", "cat.png", "image/png", SCRIPT_HTML, "type_not_allowed"),
    Case(
        "pdf-javascript",
        "certificate_scan",
        "a.pdf",
        "application/pdf",
        pdf(_document_javascript),
        "pdf_active_content",
    ),
    Case(
        "pdf-openaction-launch",
        "certificate_scan",
        "a.pdf",
        "application/pdf",
        pdf(_open_action_launch),
        "pdf_active_content",
    ),
    Case(
        "pdf-embedded-file",
        "company_document",
        "a.pdf",
        "application/pdf",
        pdf(lambda w: w.add_attachment("run.exe", b"MZ payload")),
        "pdf_active_content",
    ),
    Case(
        "pdf-page-aa",
        "company_document",
        "a.pdf",
        "application/pdf",
        pdf(_page_additional_action),
        "pdf_active_content",
    ),
    Case(
        "pdf-escaped-javascript-name",
        "company_document",
        "a.pdf",
        "application/pdf",
        raw_pdf(b"/Names << /Java#53cript << /Names [] >> >>"),
        "pdf_active_content",
    ),
    Case(
        "pdf-encrypted-rc4",
        "certificate_scan",
        "a.pdf",
        "application/pdf",
        pdf(_encrypt("RC4-128")),
        "pdf_encrypted",
    ),
    Case(
        "pdf-encrypted-aes",
        "certificate_scan",
        "a.pdf",
        "application/pdf",
        pdf(_encrypt("AES-256")),
        "pdf_encrypted",
    ),
    Case(
        "pdf-header-only",
        "certificate_scan",
        "a.pdf",
        "application/pdf",
        b"%PDF-1.7\n",
        "pdf_corrupt",
    ),
    Case(
        "pdf-garbage",
        "certificate_scan",
        "a.pdf",
        "application/pdf",
        b"%PDF-1.4\n" + bytes(range(256)) * 8 + b"\n%%EOF\n",
        "pdf_corrupt",
    ),
    Case(
        "pdf-no-pages", "certificate_scan", "a.pdf", "application/pdf", pdf(pages=0), "pdf_no_pages"
    ),
    Case(
        "png-bomb", "photo", "bomb.png", "image/png", bilevel_png(20_000, 20_000), "image_too_large"
    ),
    Case(
        "png-over-pixel-cap",
        "photo",
        "big.png",
        "image/png",
        bilevel_png(7_000, 7_000),
        "image_too_large",
    ),
    Case("gif", "photo", "anim.gif", "image/gif", image("GIF"), "type_not_allowed"),
    Case(
        "zip", "company_document", "docs.zip", "application/zip", zip_archive(), "type_not_allowed"
    ),
    Case(
        "polyglot-jpeg-html",
        "photo",
        "x.jpg",
        "image/jpeg",
        JPEG[: len(JPEG) // 2] + SCRIPT_HTML,
        "image_corrupt",
    ),
    Case(
        "jpeg-comment-html",
        "photo",
        "x.jpg",
        "image/jpeg",
        b"\xff\xd8\xff\xfe" + struct.pack(">H", len(SCRIPT_HTML) + 2) + SCRIPT_HTML,
        "image_corrupt",
    ),
    Case("heic-broken", "photo", "x.heic", "image/heic", image("HEIF")[:200], "image_corrupt"),
    Case(
        "webp-broken",
        "photo",
        "x.webp",
        "image/webp",
        b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x01" * 40,
        "image_corrupt",
    ),
    # The declared type and the name say photo; the content is a PDF, not allowed for photos.
    Case("content-type-lie", "photo", "holiday.jpg", "image/jpeg", PDF, "type_not_allowed"),
    Case("jpeg-as-signature", "signature", "sig.png", "image/png", JPEG, "type_not_allowed"),
]


# --- fixtures ------------------------------------------------------------------------------


@dataclasses.dataclass
class Portal:
    client: AsyncTestClient
    headers: dict[str, str]
    tenant: SeededTenant
    database: Database
    settings: Settings
    s3: S3Server | None

    async def upload(
        self, kind: str, filename: str, data: bytes, declared: str = "application/octet-stream"
    ) -> httpx.Response:
        return await self.client.post(
            f"/api/v1/uploads/{kind}",
            headers=self.headers,
            files={"file": (filename, data, declared)},
        )

    async def download(self, url: str) -> httpx.Response:
        if url.startswith(TEST_BASE_URL):
            return await self.client.get(url.removeprefix(TEST_BASE_URL))
        async with httpx.AsyncClient() as client:
            return await client.get(url)

    def stored_keys(self, tenant_id: uuid.UUID | None = None) -> list[str]:
        prefix = f"tenants/{tenant_id or self.tenant.id}/"
        if self.s3 is None:
            root = Path(self.settings.storage_dir)
            return sorted(
                path.relative_to(root).as_posix()
                for path in (root / prefix).rglob("*")
                if path.is_file()
            )
        listing = self.s3.client().list_objects_v2(Bucket=self.s3.bucket, Prefix=prefix)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    async def rows(self) -> list[StoredObject]:
        async with self.database.session() as session:
            with tenant_scope(self.tenant.id):
                return list(await session.scalars(select(StoredObject)))

    async def row(self, object_id: str) -> StoredObject:
        [row] = [row for row in await self.rows() if str(row.id) == object_id]
        return row

    async def snapshot(self) -> tuple[frozenset[str], frozenset[uuid.UUID]]:
        return frozenset(self.stored_keys()), frozenset(row.id for row in await self.rows())


async def _signed_in(client: AsyncTestClient, tenant: SeededTenant) -> dict[str, str]:
    user = tenant.user(Role.TENANT_ADMIN)
    response = await client.post(
        "/api/v1/auth/token",
        json={"tenant": tenant.slug, "email": user.email, "password": user.password},
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@contextlib.asynccontextmanager
async def _portal(
    settings: Settings, database: Database, s3: S3Server | None
) -> AsyncIterator[Portal]:
    settings = dataclasses.replace(settings, base_url=TEST_BASE_URL)
    if s3 is not None:
        settings = s3.settings(settings)
    tenant = await TenantFactory().create(
        database, users=((Role.CONTRACTOR_WORKER, "P1"), (Role.TENANT_ADMIN, None))
    )
    async with AsyncTestClient(app=create_app(settings), base_url=TEST_BASE_URL) as client:
        headers = await _signed_in(client, tenant)
        yield Portal(client, headers, tenant, database, settings, s3)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["local", "s3"])
async def portal(
    request: pytest.FixtureRequest,
    sqlite_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
    s3_server: S3Server,
) -> AsyncIterator[Portal]:
    directory = tmp_path_factory.mktemp(f"uploads-{request.param}")
    shutil.copyfile(sqlite_template, directory / "portal.db")
    settings = settings_for(f"sqlite+aiosqlite:///{directory / 'portal.db'}", directory / "var")
    database = Database.from_settings(settings)
    try:
        async with _portal(settings, database, s3_server if request.param == "s3" else None) as p:
            yield p
    finally:
        await database.dispose()


# --- good files ----------------------------------------------------------------------------


async def _accepted(portal: Portal, case: Case) -> tuple[dict[str, Any], bytes]:
    response = await portal.upload(case.kind, case.filename, case.data, case.declared)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["kind"] == case.kind
    assert body["content_type"] == case.content_type
    download = await portal.download(body["download_url"])
    assert download.status_code == 200
    content = download.content
    assert len(content) == body["size"]
    assert hashlib.sha256(content).hexdigest() == body["sha256"]
    assert download.headers["content-type"] == case.content_type
    return body, content


@pytest.mark.parametrize("case", GOOD, ids=[case.id for case in GOOD])
async def test_good_files_are_accepted(portal: Portal, case: Case) -> None:
    before = await portal.snapshot()
    body, content = await _accepted(portal, case)
    if case.content_type.startswith("image/"):
        with Image.open(io.BytesIO(content)) as stored:
            stored.load()
            assert stored.get_format_mimetype() == case.content_type
    else:
        assert len(PdfReader(io.BytesIO(content)).pages) >= 1
    again = await portal.client.get(f"/api/v1/uploads/{body['id']}", headers=portal.headers)
    assert again.status_code == 200
    assert {k: v for k, v in again.json().items() if k != "download_url"} == {
        k: v for k, v in body.items() if k != "download_url"
    }
    assert (await portal.download(again.json()["download_url"])).content == content
    row = await portal.row(body["id"])
    assert row.key.startswith(f"tenants/{portal.tenant.id}/uploads/{case.kind}/")
    assert set(portal.stored_keys()) - before[0] == {row.key}


async def test_jpeg_comes_back_without_exif_or_gps(portal: Portal) -> None:
    case = Case("gps", "photo", "gps.jpg", "image/jpeg", jpeg_with_gps(), content_type="image/jpeg")
    _body, content = await _accepted(portal, case)
    assert b"Exif" not in content and b"SpyCam" not in content and b"secret comment" not in content
    with Image.open(io.BytesIO(content)) as stored:
        assert len(stored.getexif()) == 0
        assert "exif" not in stored.info and "comment" not in stored.info


async def test_exif_orientation_is_applied_before_it_is_dropped(portal: Portal) -> None:
    case = Case("rot", "photo", "r.jpg", "image/jpeg", rotated_jpeg(), content_type="image/jpeg")
    _body, content = await _accepted(portal, case)
    with Image.open(io.BytesIO(content)) as stored:
        assert stored.size == (48, 64)


async def test_png_comes_back_without_appended_zip(portal: Portal) -> None:
    polyglot = PNG + zip_archive()
    assert zipfile.is_zipfile(io.BytesIO(polyglot))
    case = Case("png+zip", "photo", "p.png", "image/png", polyglot, content_type="image/png")
    _body, content = await _accepted(portal, case)
    assert b"PK\x03\x04" not in content and b"payload.html" not in content
    assert not zipfile.is_zipfile(io.BytesIO(content))
    assert content.endswith(png_chunk(b"IEND", b""))


async def test_pdf_is_kept_as_is_but_loses_what_follows_its_end(portal: Portal) -> None:
    case = Case(
        "pdf+zip",
        "company_document",
        "d.pdf",
        "application/pdf",
        PDF + zip_archive(),
        content_type="application/pdf",
    )
    _body, content = await _accepted(portal, case)
    assert content == PDF


async def test_original_filename_is_kept_for_display_only(portal: Portal) -> None:
    name = "../../etc/\u202epasswd\x00 证书 扫描件.png"
    response = await portal.upload("photo", name, PNG, "image/png")
    assert response.status_code == 201, response.text
    row = await portal.row(response.json()["id"])
    shown = row.original_filename
    assert shown is not None and shown.startswith("passwd") and shown.endswith(" 证书 扫描件.png")
    assert not {"/", "\\", "\u202e", "\x00"} & set(shown)
    assert row.key.rsplit("/", 1)[1] != row.original_filename
    assert row.created_by == portal.tenant.user(Role.TENANT_ADMIN).id


# --- bad files -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", BAD, ids=[case.id for case in BAD])
async def test_bad_files_are_refused_and_leave_nothing(portal: Portal, case: Case) -> None:
    before = await portal.snapshot()
    response = await portal.upload(case.kind, case.filename, case.data, case.declared)
    assert 400 <= response.status_code < 500, response.text
    body = response.json()
    assert [(e["field"], e["rule"]) for e in body["errors"]] == [("file", case.rule)], body
    assert body["errors"][0]["message"]
    assert await portal.snapshot() == before


async def test_body_over_the_route_limit_is_refused_before_reading(portal: Portal) -> None:
    before = await portal.snapshot()
    too_big = b"\0" * (max(k.max_bytes for k in DOCUMENT_KINDS.values()) + 128 * 1024)
    response = await portal.upload("company_document", "huge.pdf", too_big, "application/pdf")
    assert response.status_code == 413
    assert [(e["field"], e["rule"]) for e in response.json()["errors"]] == [("file", "max_size")]
    assert await portal.snapshot() == before


@pytest.mark.parametrize(
    ("request_kwargs", "status", "field", "rule"),
    [
        ({}, 422, "file", "required"),
        ({"files": {"other": ("a.png", PNG, "image/png")}}, 422, "file", "required"),
        ({"data": {"file": "text"}, "files": {"x": ("a", b"1")}}, 422, "file", "type"),
        ({"files": {"file": ("", PDF, "application/pdf")}}, 422, "file", "type"),
        ({"files": [("file", ("a.png", PNG)), ("file", ("b.png", PNG))]}, 422, "file", "type"),
        ({"data": {"file": "not multipart"}}, 400, "body", "invalid"),
        (
            {"content": b"--x\r\nbroken", "headers": {"content-type": "multipart/form-data"}},
            400,
            "body",
            "invalid",
        ),
    ],
    ids=[
        "no-body",
        "wrong-part",
        "text-not-file",
        "binary-without-name",
        "two-files",
        "url-encoded",
        "no-boundary",
    ],
)
async def test_malformed_forms_name_the_field(
    portal: Portal, request_kwargs: dict[str, Any], status: int, field: str, rule: str
) -> None:
    before = await portal.snapshot()
    kwargs = dict(request_kwargs)
    headers = {**portal.headers, **kwargs.pop("headers", {})}
    response = await portal.client.post("/api/v1/uploads/photo", headers=headers, **kwargs)
    assert response.status_code == status, response.text
    assert [(e["field"], e["rule"]) for e in response.json()["errors"]] == [(field, rule)]
    assert await portal.snapshot() == before


async def test_unknown_kind_is_refused(portal: Portal) -> None:
    before = await portal.snapshot()
    response = await portal.upload("passport", "a.png", PNG, "image/png")
    assert response.status_code == 422
    assert [(e["field"], e["rule"]) for e in response.json()["errors"]] == [("kind", "enum")]
    assert await portal.snapshot() == before


async def test_uploads_need_a_signed_in_user(portal: Portal) -> None:
    before = await portal.snapshot()
    response = await portal.client.post(
        "/api/v1/uploads/photo", files={"file": ("a.png", PNG, "image/png")}
    )
    assert response.status_code == 401
    assert await portal.snapshot() == before


async def test_any_role_may_upload(portal: Portal) -> None:
    worker = portal.tenant.user(Role.CONTRACTOR_WORKER)
    token = await portal.client.post(
        "/api/v1/auth/token",
        json={"tenant": portal.tenant.slug, "email": worker.email, "password": worker.password},
    )
    response = await portal.client.post(
        "/api/v1/uploads/photo",
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        files={"file": ("a.png", PNG, "image/png")},
    )
    assert response.status_code == 201, response.text


async def test_ids_of_other_tenants_and_malformed_ids_are_refused(
    portal: Portal, factory: TenantFactory
) -> None:
    mine = (await portal.upload("photo", "a.png", PNG, "image/png")).json()
    other = await factory.create(portal.database, slug=f"o-{uuid.uuid4().hex[:8]}")
    other_headers = await _signed_in(portal.client, other)
    response = await portal.client.get(f"/api/v1/uploads/{mine['id']}", headers=other_headers)
    assert response.status_code == 404
    assert "download_url" not in response.text
    missing = await portal.client.get(f"/api/v1/uploads/{uuid.uuid4()}", headers=portal.headers)
    assert missing.status_code == 404
    malformed = await portal.client.get("/api/v1/uploads/../etc", headers=portal.headers)
    assert malformed.status_code in {404, 422}
    bad_id = await portal.client.get("/api/v1/uploads/not-an-id", headers=portal.headers)
    assert [(e["field"], e["rule"]) for e in bad_id.json()["errors"]] == [("upload_id", "uuid")]


class _FailingSession:
    def add(self, _record: object) -> None:
        pass

    async def flush(self) -> None:
        raise RuntimeError("database went away")


async def test_object_is_deleted_when_the_row_cannot_be_written(portal: Portal) -> None:
    before = await portal.snapshot()
    storage = storage_from_settings(portal.settings)
    with tenant_scope(portal.tenant.id), pytest.raises(RuntimeError, match="went away"):
        await store_upload(
            _FailingSession(),  # type: ignore[arg-type]
            storage,
            DOCUMENT_KINDS["photo"],
            io.BytesIO(PNG),
            filename="a.png",
            created_by=None,
        )
    assert await portal.snapshot() == before


# --- PostgreSQL: the row lives under row-level security --------------------------------------


@pytest_asyncio.fixture(loop_scope="module")
async def pg_portal(pg_settings: Settings, s3_server: S3Server) -> AsyncIterator[Portal]:
    database = Database.from_settings(pg_settings)
    try:
        async with _portal(pg_settings, database, s3_server) as p:
            yield p
    finally:
        await database.dispose()


@pytest.mark.postgres
async def test_upload_round_trip_on_postgres(pg_portal: Portal, factory: TenantFactory) -> None:
    case = Case(
        "pdf", "certificate_scan", "c.pdf", "application/pdf", PDF, content_type="application/pdf"
    )
    body, _content = await _accepted(pg_portal, case)
    [row] = await pg_portal.rows()
    assert str(row.id) == body["id"] and row.tenant_id == pg_portal.tenant.id
    other = await factory.create(pg_portal.database, slug=f"o-{uuid.uuid4().hex[:8]}")
    other_headers = await _signed_in(pg_portal.client, other)
    response = await pg_portal.client.get(f"/api/v1/uploads/{body['id']}", headers=other_headers)
    assert response.status_code == 404
    refused = await pg_portal.upload("certificate_scan", "x.pdf", b"%PDF-1.7\n", "application/pdf")
    assert refused.status_code == 422
    assert len(await pg_portal.rows()) == 1
    assert pg_portal.stored_keys() == [row.key]
