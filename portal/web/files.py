"""Download links of the local storage backend (S3 serves its own presigned links)."""

from __future__ import annotations

from litestar import get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import File

from infra.i18n import N_
from infra.security import InvalidSignedToken
from infra.storage import LocalStorage, ObjectNotFound
from infra.uploads import sniff_type

_MAX_TOKEN_LENGTH = 2048
# The token is the only credential: keep it out of Referer headers, and never let a stored
# file run as a page of this site.
_HEADERS = {
    "Cache-Control": "private",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


@get("/files/{token:str}", include_in_schema=False, sync_to_thread=True)
def download_file(state: State, token: FromPath[str]) -> File:
    storage = state.storage
    if not isinstance(storage, LocalStorage) or len(token) > _MAX_TOKEN_LENGTH:
        raise NotFoundException(N_("File not found."))
    try:
        path = storage.path_for_download(token)
        with path.open("rb") as handle:
            head = handle.read(16)
    except (InvalidSignedToken, ObjectNotFound, FileNotFoundError):
        raise NotFoundException(N_("File not found.")) from None
    file_type = sniff_type(head)
    return File(
        path,
        media_type=file_type.value if file_type else "application/octet-stream",
        content_disposition_type="inline",
        filename=path.name,
        headers=_HEADERS,
    )
