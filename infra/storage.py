"""Object storage behind one interface: S3 (any S3-compatible store) in production, a local
directory for the embedded default. Keys of tenant data start with ``tenants/{tenant_id}/``."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path, PurePosixPath
from typing import Protocol

from infra.security import TokenSigner


class ObjectNotFound(KeyError):
    pass


class ObjectStorage(Protocol):
    def put(self, key: str, data: bytes, *, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def download_url(self, key: str, *, expires_seconds: int = 300) -> str:
        """A short-lived link to read the object without other credentials."""
        ...


def tenant_key(tenant_id: uuid.UUID, *parts: str) -> str:
    for part in parts:
        if not part or part in {".", ".."} or "/" in part or "\\" in part:
            raise ValueError(f"not a safe key part: {part!r}")
    return "/".join(("tenants", str(tenant_id), *parts))


def _check_key(key: str) -> PurePosixPath:
    path = PurePosixPath(key)
    if path.is_absolute() or any(part in {"", ".", ".."} for part in path.parts) or not key:
        raise ValueError(f"not a safe object key: {key!r}")
    return path


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
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def download_url(self, key: str, *, expires_seconds: int = 300) -> str:
        token = self._signer.sign(
            {"key": key, "ttl": expires_seconds}, purpose=self.DOWNLOAD_PURPOSE
        )
        return f"{self._base_url}/files/{token}"
