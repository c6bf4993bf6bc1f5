"""Object storage behind one interface: S3 (any S3-compatible store) in production, a local
directory for the embedded default. Keys of tenant data start with ``tenants/{tenant_id}/``."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any, BinaryIO, Protocol

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from infra.security import InvalidSignedToken, TokenSigner
from infra.settings import Settings

# S3 refuses presigned URLs valid for longer than a week; the local backend keeps the same bound.
MAX_DOWNLOAD_SECONDS = 7 * 24 * 3600
# How much of an object is copied or read at a time when it is streamed rather than held whole.
CHUNK_BYTES = 256 * 1024
# Large files go to S3 in parts; a few parts in flight at once keep the memory of an upload to
# a few of them, whatever the size of the file.
S3_TRANSFER = TransferConfig(max_concurrency=4)


class ObjectNotFound(KeyError):
    pass


class ObjectReader:
    """An object opened for reading a part at a time, and its size in bytes. Close it, or use it
    as a context manager."""

    def __init__(self, stream: Any, size: int) -> None:
        self._stream = stream
        self.size = size

    def read(self, size: int = CHUNK_BYTES) -> bytes:
        """Up to ``size`` bytes; empty at the end."""
        return self._stream.read(size)  # type: ignore[no-any-return]

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> ObjectReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


FileSource = Path | BinaryIO


class ObjectStorage(Protocol):
    def put(self, key: str, data: bytes, *, content_type: str) -> None: ...

    def put_file(self, key: str, source: FileSource, *, content_type: str) -> None:
        """Store a file (a path, or a binary file read from its current position) without
        holding it in memory."""
        ...

    def get(self, key: str) -> bytes: ...

    def open(self, key: str) -> ObjectReader:
        """The object for reading a part at a time; :class:`ObjectNotFound` when it is gone."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` (a folder: it ends with ``/``), sorted."""
        ...

    def download_url(self, key: str, *, expires_seconds: int = 300) -> str:
        """A short-lived link to read the object without other credentials."""
        ...


def tenant_key(tenant_id: uuid.UUID, *parts: str) -> str:
    for part in parts:
        if not part or part in {".", ".."} or "/" in part or "\\" in part:
            raise ValueError(f"not a safe key part: {part!r}")
    return "/".join(("tenants", str(tenant_id), *parts))


def _check_expiry(expires_seconds: int) -> None:
    if not 0 < expires_seconds <= MAX_DOWNLOAD_SECONDS:
        raise ValueError(f"download links last 1 to {MAX_DOWNLOAD_SECONDS} s: {expires_seconds}")


def _check_key(key: str) -> PurePosixPath:
    # Checked on the raw text: PurePosixPath would quietly fold "a//b" and "a/./b" into "a/b",
    # one file locally but three different objects on S3.
    parts = key.split("/")
    if any(part in {"", ".", ".."} or "\\" in part or "\x00" in part for part in parts):
        raise ValueError(f"not a safe object key: {key!r}")
    return PurePosixPath(key)


def write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write through a temporary file renamed into place, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".partial-")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _readable(source: FileSource) -> Iterator[BinaryIO]:
    if isinstance(source, Path):
        with source.open("rb") as handle:
            yield handle
    else:
        yield source


class LocalStorage:
    """A directory on disk. Writes are atomic (temporary file, then rename)."""

    DOWNLOAD_PURPOSE = "storage-download"

    def __init__(self, root: Path, signer: TokenSigner, base_url: str) -> None:
        self.root = root
        self._signer = signer
        self._base_url = base_url.rstrip("/")

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*_check_key(key).parts)

    def put(self, key: str, data: bytes, *, content_type: str) -> None:
        write_atomically(self._path(key), lambda handle: handle.write(data))

    def put_file(self, key: str, source: FileSource, *, content_type: str) -> None:
        path = self._path(key)
        with _readable(source) as readable:
            write_atomically(path, lambda handle: shutil.copyfileobj(readable, handle, CHUNK_BYTES))

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc

    def open(self, key: str) -> ObjectReader:
        try:
            handle = self._path(key).open("rb")
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc
        return ObjectReader(handle, os.fstat(handle.fileno()).st_size)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def keys(self, prefix: str) -> list[str]:
        folder = self._path(prefix.removesuffix("/"))
        if not folder.is_dir():
            return []
        return sorted(
            prefix + path.relative_to(folder).as_posix()
            for path in folder.rglob("*")
            if path.is_file() and not path.name.startswith(".")
        )

    def download_url(self, key: str, *, expires_seconds: int = 300) -> str:
        _check_expiry(expires_seconds)
        token = self._signer.sign(
            {"key": key, "ttl": expires_seconds}, purpose=self.DOWNLOAD_PURPOSE
        )
        return f"{self._base_url}/files/{token}"

    def path_for_download(self, token: str) -> Path:
        """The file a :meth:`download_url` token names.

        Raises :class:`InvalidSignedToken` for a forged, altered or expired token and
        :class:`ObjectNotFound` when the object is gone.
        """
        payload = self._signer.unsign(
            token, purpose=self.DOWNLOAD_PURPOSE, max_age_seconds=MAX_DOWNLOAD_SECONDS
        )
        key, ttl = _download_claims(payload)
        # The link's own lifetime is only known once the signature has proved the payload ours.
        self._signer.unsign(token, purpose=self.DOWNLOAD_PURPOSE, max_age_seconds=ttl)
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(key)
        return path


def _download_claims(payload: Any) -> tuple[str, int]:
    key = payload.get("key") if isinstance(payload, dict) else None
    ttl = payload.get("ttl") if isinstance(payload, dict) else None
    if not isinstance(key, str) or type(ttl) is not int or ttl <= 0:
        raise InvalidSignedToken("bad_payload")
    try:
        _check_key(key)
    except ValueError as exc:
        raise InvalidSignedToken("bad_payload") from exc
    return key, ttl


_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def _is_missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in _MISSING_CODES


class S3Storage:
    """A bucket on S3 or any S3-compatible store. Every object is written with server-side
    encryption requested; reads for browsers go through presigned GET links."""

    def __init__(self, client: Any, bucket: str, *, transfer: TransferConfig = S3_TRANSFER) -> None:
        self._client = client
        self.bucket = bucket
        self._transfer = transfer

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        endpoint = settings.s3_endpoint_url or None
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=settings.s3_region or None,
            # Empty keys leave boto3 to its own chain (environment, instance role).
            aws_access_key_id=settings.s3_access_key_id or None,
            aws_secret_access_key=settings.s3_secret_access_key or None,
            config=Config(
                signature_version="s3v4",
                # Self-hosted stores rarely have wildcard DNS for virtual-hosted buckets.
                s3={"addressing_style": "path" if endpoint else "auto"},
                retries={"mode": "standard", "max_attempts": 3},
                connect_timeout=5,
                read_timeout=30,
            ),
        )
        return cls(client, settings.s3_bucket)

    def put(self, key: str, data: bytes, *, content_type: str) -> None:
        self._client.put_object(
            Bucket=self.bucket,
            Key=str(_check_key(key)),
            Body=data,
            ContentType=content_type,
            ServerSideEncryption="AES256",
        )

    def put_file(self, key: str, source: FileSource, *, content_type: str) -> None:
        checked = str(_check_key(key))
        with _readable(source) as readable:
            # Above the transfer's threshold this is a multipart upload; the extra arguments
            # (type, encryption) are those of the whole object either way.
            self._client.upload_fileobj(
                readable,
                self.bucket,
                checked,
                ExtraArgs={"ContentType": content_type, "ServerSideEncryption": "AES256"},
                Config=self._transfer,
            )

    def _get_object(self, key: str) -> dict[str, Any]:
        try:
            return self._client.get_object(Bucket=self.bucket, Key=str(_check_key(key)))
        except ClientError as exc:
            if _is_missing(exc):
                raise ObjectNotFound(key) from exc
            raise

    def get(self, key: str) -> bytes:
        with self._get_object(key)["Body"] as body:
            return body.read()

    def open(self, key: str) -> ObjectReader:
        response = self._get_object(key)
        return ObjectReader(response["Body"], response["ContentLength"])

    def exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=str(_check_key(key)))
        except ClientError as exc:
            if _is_missing(exc):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=str(_check_key(key)))

    def keys(self, prefix: str) -> list[str]:
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=str(_check_key(prefix.removesuffix("/"))) + "/"
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def download_url(self, key: str, *, expires_seconds: int = 300) -> str:
        _check_expiry(expires_seconds)
        return self._client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": str(_check_key(key))},
            ExpiresIn=expires_seconds,
        )


def storage_from_settings(settings: Settings) -> ObjectStorage:
    """S3 when a bucket is configured, else the local directory (the embedded default)."""
    if settings.s3_bucket:
        return S3Storage.from_settings(settings)
    return LocalStorage(settings.storage_dir, TokenSigner(settings.secret_key), settings.base_url)
