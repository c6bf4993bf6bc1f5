"""Uploading documents and photos through the shared pipeline, and links to read them back."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State, UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import Body, Parameter
from litestar.status_codes import HTTP_201_CREATED

from infra.errors import FieldProblem, InvalidInput
from infra.i18n import N_
from infra.i18n import gettext as _
from infra.storage import ObjectStorage
from infra.uploads import (
    DOCUMENT_KINDS,
    FIELD,
    MAX_UPLOAD_BYTES,
    StoredObject,
    document_kind,
    get_stored_object,
    size_label,
    store_upload,
)
from portal.dependencies import DbSession
from portal.errors import error_response
from portal.guards import signed_in
from portal.params import IdParam, parse_id
from tenants.access import Principal

# Room for the multipart boundaries and part headers around the largest accepted file.
_FORM_OVERHEAD = 64 * 1024
KindParam = Annotated[
    str,
    Parameter(description="Document kind: " + ", ".join(DOCUMENT_KINDS), max_length=64),
]


# Read as a plain mapping rather than a typed form, so that a missing part or a text field
# instead of a file gets an answer naming the field, not a generic validation error.
MultipartForm = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]


def _upload_files(value: Any) -> list[UploadFile]:
    values = value if isinstance(value, list) else [value]
    return [item for item in values if isinstance(item, UploadFile)]


class UploadRead(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    kind: str
    sha256: str
    size: int
    content_type: str
    download_url: str


def upload_read(record: StoredObject, storage: ObjectStorage) -> UploadRead:
    return UploadRead(
        id=record.id,
        kind=record.kind,
        sha256=record.sha256,
        size=record.size,
        content_type=record.content_type,
        download_url=storage.download_url(record.key),
    )


def _body_too_large(request: Request[Any, Any, Any], _exc: RequestEntityTooLarge) -> Response[Any]:
    """The body limit fires before the handler; answer like the pipeline's own size check."""
    kind = DOCUMENT_KINDS.get(str(request.path_params.get("kind", "")))
    limit = kind.max_bytes if kind is not None else MAX_UPLOAD_BYTES
    problem = FieldProblem(
        FIELD, "max_size", N_("The file is larger than %(limit)s."), {"limit": size_label(limit)}
    )
    return error_response(request, 413, _("The request is too large."), [problem])


def _not_a_file(request: Request[Any, Any, Any], _exc: UnicodeDecodeError) -> Response[Any]:
    """Litestar decodes a part sent without a file name as UTF-8 text; binary content there
    would otherwise surface as a server error."""
    problem = FieldProblem(FIELD, "type", N_("Must be of type %(expected)s."), {"expected": "file"})
    return error_response(request, 422, _("The request is not valid."), [problem])


class UploadController(Controller):
    path = "/api/v1/uploads"
    tags = ["uploads"]  # noqa: RUF012
    guards = [signed_in]  # noqa: RUF012

    @post(
        "/{kind:str}",
        summary="Upload a file",
        description=(
            "Multipart form with one part, `file`. The type is decided by the content, not by "
            "the name or declared type: JPEG, PNG, WebP or HEIC images (re-encoded without "
            "metadata; HEIC becomes JPEG) and PDFs without scripts, actions, embedded files or "
            "encryption, as the kind allows. Limits: "
            + "; ".join(
                f"{kind.name} {size_label(kind.max_bytes)}" for kind in DOCUMENT_KINDS.values()
            )
            + ". The answer carries a short-lived `download_url`."
        ),
        status_code=HTTP_201_CREATED,
        request_max_body_size=MAX_UPLOAD_BYTES + _FORM_OVERHEAD,
        exception_handlers={
            RequestEntityTooLarge: _body_too_large,
            UnicodeDecodeError: _not_a_file,
        },
    )
    async def upload(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        state: State,
        kind: KindParam,
        data: MultipartForm,
    ) -> UploadRead:
        upload = data.get(FIELD)
        try:
            document = document_kind(kind)
            if upload is None:
                raise InvalidInput(FIELD, "required", N_("This field is required."))
            if not isinstance(upload, UploadFile):
                raise InvalidInput(
                    FIELD, "type", N_("Must be of type %(expected)s."), expected="file"
                )
            record = await store_upload(
                db_session,
                state.storage,
                document,
                upload.file,
                filename=upload.filename,
                created_by=request.user.user_id,
            )
        finally:
            for part in (part for value in data.values() for part in _upload_files(value)):
                await part.close()
        return upload_read(record, state.storage)

    @get(
        "/{upload_id:str}",
        summary="One uploaded file, with a fresh download link",
        description="Another tenant's id answers 404.",
    )
    async def get_upload(
        self, db_session: DbSession, state: State, upload_id: IdParam
    ) -> UploadRead:
        record = await get_stored_object(db_session, parse_id(upload_id, "upload_id"))
        return upload_read(record, state.storage)
