"""The upload pipeline every domain uses.

A file is read in chunks up to its kind's size limit, typed by its magic bytes (never by the
declared content type or the file name) and checked: images are fully decoded under a pixel cap
and re-encoded, which drops EXIF and other metadata and anything appended after the image data;
PDFs must open, be unencrypted, have pages and carry no scripts, actions or embedded files.
Only a file that passed every check is written to object storage and recorded.
"""

from __future__ import annotations

import enum
import hashlib
import io
import re
import unicodedata
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any, BinaryIO

import anyio
import pillow_heif
from PIL import Image, ImageCms, ImageFile, ImageOps
from pypdf import PdfReader
from pypdf.errors import DependencyError
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject
from sqlalchemy import String, UniqueConstraint, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from infra.db import new_id
from infra.errors import InvalidInput, NotFound
from infra.i18n import N_
from infra.storage import ObjectStorage, tenant_key
from infra.tenancy import TenantOwned, current_tenant_id
from infra.verification import Verdict, VerificationStatus, register_verifier

# Auxiliary pictures are never used, and decoding them would only widen the attack surface.
pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)

KB = 1024
MB = 1024 * KB
CHUNK_SIZE = 64 * KB
# An A4 page scanned at 600 dpi is 35 megapixels; anything larger is more likely a bomb.
MAX_IMAGE_PIXELS = 40_000_000
# Bounds the walk over a PDF's object graph, which an attacker can make arbitrarily large.
MAX_PDF_OBJECTS = 100_000
FIELD = "file"


class FileType(enum.StrEnum):
    """The accepted types, valued by the content type they are stored and served with."""

    JPEG = "image/jpeg"
    PNG = "image/png"
    WEBP = "image/webp"
    HEIC = "image/heic"
    PDF = "application/pdf"


IMAGES = frozenset({FileType.JPEG, FileType.PNG, FileType.WEBP, FileType.HEIC})


@dataclass(frozen=True)
class DocumentKind:
    name: str
    max_bytes: int
    allowed: frozenset[FileType]


DOCUMENT_KINDS = {
    kind.name: kind
    for kind in (
        DocumentKind("certificate_scan", 10 * MB, IMAGES | {FileType.PDF}),
        DocumentKind("photo", 5 * MB, IMAGES),
        DocumentKind("signature", 512 * KB, frozenset({FileType.PNG})),
        DocumentKind("company_document", 20 * MB, IMAGES | {FileType.PDF}),
    )
}
MAX_UPLOAD_BYTES = max(kind.max_bytes for kind in DOCUMENT_KINDS.values())


def document_kind(name: str) -> DocumentKind:
    try:
        return DOCUMENT_KINDS[name]
    except KeyError:
        raise InvalidInput("kind", "enum", N_("Not one of the allowed values.")) from None


class StoredObject(TenantOwned):
    """An accepted upload. ``sha256`` and ``size`` describe the stored bytes, which is what a
    download returns. ``created_by`` has no foreign key: like the ledger's actor, the record of
    who uploaded a document outlives the account."""

    __tablename__ = "stored_objects"
    __table_args__ = (UniqueConstraint("tenant_id", "key"),)

    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    original_filename: Mapped[str | None] = mapped_column(String(255))
    created_by: Mapped[uuid.UUID | None]


@dataclass(frozen=True)
class CheckedFile:
    content: bytes
    file_type: FileType

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def size_label(size: int) -> str:
    return f"{size // MB} MB" if size % MB == 0 else f"{size // KB} KB"


def read_bounded(stream: BinaryIO, kind: DocumentKind) -> bytes:
    """Read the whole stream, refusing it as soon as it passes the kind's limit."""
    buffer = bytearray()
    while chunk := stream.read(CHUNK_SIZE):
        buffer += chunk
        if len(buffer) > kind.max_bytes:
            raise InvalidInput(
                FIELD,
                "max_size",
                N_("The file is larger than %(limit)s."),
                limit=size_label(kind.max_bytes),
            )
    if not buffer:
        raise InvalidInput(FIELD, "empty", N_("The file is empty."))
    return bytes(buffer)


_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})


def sniff_type(head: bytes) -> FileType | None:
    """The accepted type the leading bytes announce, if any."""
    if head.startswith(b"\xff\xd8\xff"):
        return FileType.JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return FileType.PNG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return FileType.WEBP
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return FileType.HEIC
    if head.startswith(b"%PDF-"):
        return FileType.PDF
    return None


def _type_not_allowed(kind: DocumentKind) -> InvalidInput:
    allowed = ", ".join(sorted(file_type.name for file_type in kind.allowed))
    return InvalidInput(
        FIELD,
        "type_not_allowed",
        N_("This type of file is not accepted here. Accepted: %(allowed)s."),
        allowed=allowed,
    )


def check_file(stream: BinaryIO, kind: DocumentKind) -> CheckedFile:
    """Read and check one upload; returns the bytes to store. Blocking: run it in a thread."""
    data = read_bounded(stream, kind)
    file_type = sniff_type(data[:16])
    if file_type is None or file_type not in kind.allowed:
        raise _type_not_allowed(kind)
    if file_type is FileType.PDF:
        return CheckedFile(check_pdf(data), FileType.PDF)
    return reencode_image(data, file_type)


_PIL_FORMATS = {
    FileType.JPEG: "JPEG",
    FileType.PNG: "PNG",
    FileType.WEBP: "WEBP",
    FileType.HEIC: "HEIF",
}
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _image_corrupt() -> InvalidInput:
    return InvalidInput(FIELD, "image_corrupt", N_("The image is damaged or incomplete."))


def _image_too_large() -> InvalidInput:
    return InvalidInput(
        FIELD,
        "image_too_large",
        N_("The image has too many pixels (at most %(limit)s megapixels)."),
        limit=MAX_IMAGE_PIXELS // 1_000_000,
    )


def _decoded(data: bytes, file_type: FileType) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[file_type]])
    except Image.DecompressionBombError:
        raise _image_too_large() from None
    except Exception:
        raise _image_corrupt() from None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise _image_too_large()
    # WeasyPrint switches Pillow to accepting truncated images when it is imported; a process
    # that renders PDFs must still refuse truncated uploads, so insist on strict decoding here.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        image.load()
        return ImageOps.exif_transpose(image)
    except Exception:
        raise _image_corrupt() from None


def _in_srgb(image: Image.Image) -> Image.Image:
    """Dropping an embedded colour profile would shift the colours of wide-gamut phone photos;
    converting to sRGB keeps them while the profile itself, being metadata, goes."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in {"RGB", "RGBA"}:
        return image
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(image, profile, _SRGB, outputMode=image.mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image


def _normalised(image: Image.Image, output: FileType) -> Image.Image:
    has_alpha = image.mode in {"RGBA", "LA", "PA", "RGBa", "La"} or "transparency" in image.info
    grey = image.mode in {"1", "L", "I", "I;16", "F"} and not has_alpha
    if grey:
        return image.convert("L")
    if not has_alpha:
        return _in_srgb(image.convert("RGB"))
    rgba = _in_srgb(image.convert("RGBA"))
    if output is not FileType.JPEG:
        return rgba
    background = Image.new("RGB", rgba.size, "white")
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def reencode_image(data: bytes, file_type: FileType) -> CheckedFile:
    """Decode fully (a truncated image fails) and write the pixels anew, so that metadata and
    any payload hidden around the image data are not carried over."""
    output = FileType.JPEG if file_type is FileType.HEIC else file_type
    with _decoded(data, file_type) as image:
        try:
            clean = _normalised(image, output)
        except Exception:
            raise _image_corrupt() from None
    # Pillow's writers fall back to the source's comment and colour profile; start from nothing.
    clean.info = {}
    buffer = io.BytesIO()
    if output is FileType.JPEG:
        clean.save(buffer, format="JPEG", quality=90)
    elif output is FileType.PNG:
        clean.save(buffer, format="PNG")
    else:
        clean.save(buffer, format="WEBP", quality=90)
    return CheckedFile(buffer.getvalue(), output)


def _pdf_corrupt() -> InvalidInput:
    return InvalidInput(FIELD, "pdf_corrupt", N_("The PDF is damaged or cannot be read."))


# Entries through which a PDF runs code, acts on its own, or carries other files.
_ACTIVE_KEYS = frozenset(
    {
        "/JavaScript",
        "/JS",
        "/OpenAction",
        "/AA",
        "/Launch",
        "/EmbeddedFile",
        "/EmbeddedFiles",
        "/RichMedia",
        "/XFA",
        "/SubmitForm",
        "/ImportData",
        "/GoToE",
    }
)
# The same, when named as an action type or object type (``/S /Launch``, ``/Type /EmbeddedFile``).
_ACTIVE_NAMES = frozenset(
    {"/JavaScript", "/Launch", "/EmbeddedFile", "/RichMedia", "/SubmitForm", "/ImportData"}
)
_EOF_MARKER = b"%%EOF"


def _without_trailer(data: bytes) -> bytes:
    """Cut whatever follows the last end-of-file marker and its line end: readers ignore it,
    polyglots hide there."""
    start = data.rfind(_EOF_MARKER)
    if start < 0:
        raise _pdf_corrupt()
    end = start + len(_EOF_MARKER)
    for line_end in (b"\r\n", b"\n", b"\r"):
        if data.startswith(line_end, end):
            return data[: end + len(line_end)]
    return data[:end]


_PDF_NODES = (IndirectObject, DictionaryObject, ArrayObject, NameObject)


def _has_active_content(reader: PdfReader) -> bool:
    """Walk everything reachable from the trailer, each indirect object once; names are
    compared decoded, so ``/Java#53cript`` does not slip through."""
    seen: set[tuple[int, int]] = set()
    stack: list[Any] = [reader.trailer]
    containers = 0
    while stack:
        item = stack.pop()
        if isinstance(item, IndirectObject):
            ref = (item.idnum, item.generation)
            if ref in seen:
                continue
            seen.add(ref)
            item = item.get_object()
        if isinstance(item, NameObject):
            if item in _ACTIVE_NAMES:
                return True
            continue
        if isinstance(item, DictionaryObject):
            if _ACTIVE_KEYS.intersection(item.keys()):
                return True
            children: Any = item.values()
        elif isinstance(item, ArrayObject):
            children = item
        else:
            continue
        containers += 1
        if containers > MAX_PDF_OBJECTS:
            raise _pdf_corrupt()
        stack.extend(child for child in children if isinstance(child, _PDF_NODES))
    return False


def check_pdf(data: bytes) -> bytes:
    """The PDF as stored: the original bytes (a rewrite would void digital signatures) without
    anything after the final end-of-file marker."""
    content = _without_trailer(data)
    encrypted = InvalidInput(FIELD, "pdf_encrypted", N_("The PDF is password-protected."))
    try:
        reader = PdfReader(io.BytesIO(content), strict=False)
    except DependencyError:
        # Raised only when pypdf lacks the cipher an encrypted file needs.
        raise encrypted from None
    except Exception:
        raise _pdf_corrupt() from None
    if reader.is_encrypted:
        raise encrypted
    try:
        active = _has_active_content(reader)
        pages = len(reader.pages)
    except InvalidInput:
        raise
    except Exception:
        raise _pdf_corrupt() from None
    if active:
        raise InvalidInput(
            FIELD,
            "pdf_active_content",
            N_("The PDF contains scripts, automatic actions or embedded files."),
        )
    if pages == 0:
        raise InvalidInput(FIELD, "pdf_no_pages", N_("The PDF has no pages."))
    return content


_UNSAFE_NAME_CHARS = re.compile(r'[<>:"|?*]')


def display_filename(name: str | None) -> str | None:
    """The client's file name, for display only: no directories, control or direction-override
    characters, at most 255 characters. Never used to build a key or a path."""
    if not name:
        return None
    base = re.split(r"[\\/]", name)[-1]
    text = "".join(
        char
        for char in unicodedata.normalize("NFC", base)
        if not unicodedata.category(char).startswith("C")
    )
    text = " ".join(_UNSAFE_NAME_CHARS.sub("_", text).split()).strip(" .")
    return text[:255] or None


async def store_upload(
    session: AsyncSession,
    storage: ObjectStorage,
    kind: DocumentKind,
    stream: BinaryIO,
    *,
    filename: str | None,
    created_by: uuid.UUID | None,
) -> StoredObject:
    """Check, store and record one upload for the current tenant, off the event loop.

    The row is flushed in the caller's transaction; if that fails, the object is deleted again,
    so a failed upload leaves neither behind.
    """
    tenant_id = current_tenant_id()
    checked = await anyio.to_thread.run_sync(check_file, stream, kind)
    key = tenant_key(tenant_id, "uploads", kind.name, str(new_id()))
    await anyio.to_thread.run_sync(
        partial(storage.put, key, checked.content, content_type=checked.file_type.value)
    )
    record = StoredObject(
        kind=kind.name,
        key=key,
        content_type=checked.file_type.value,
        size=len(checked.content),
        sha256=checked.sha256,
        original_filename=display_filename(filename),
        created_by=created_by,
    )
    session.add(record)
    try:
        await session.flush()
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(storage.delete, key)
        raise
    return record


async def get_stored_object(session: AsyncSession, object_id: uuid.UUID) -> StoredObject:
    record = await session.scalar(select(StoredObject).where(StoredObject.id == object_id))
    if record is None:
        raise NotFound(N_("File not found."))
    return record


async def _verify_stored_object(
    session: AsyncSession, _storage: ObjectStorage, object_id: uuid.UUID, _version: int
) -> Verdict | None:
    """A stored file is valid while it is kept; the facts let the holder of a printout compare
    the content hash with their copy."""
    record = await session.scalar(select(StoredObject).where(StoredObject.id == object_id))
    if record is None:
        return None
    return Verdict(
        VerificationStatus.VALID,
        title=N_("Stored document"),
        facts=[
            (N_("Kind"), record.kind),
            (N_("Size"), size_label(record.size)),
            (N_("SHA-256"), record.sha256),
            (N_("Stored at (UTC)"), record.created_at.strftime("%Y-%m-%d %H:%M")),
        ],
    )


register_verifier("stored_object", _verify_stored_object)
