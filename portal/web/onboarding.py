"""Admission pages (准入): a company registers on the tenant's portal, its administrator keeps
documents, workers and certificates on a phone, and EHS reviews them item by item.

The pages parse forms, call ``onboarding.services`` and render; the rules live there. A refused
form is rendered again with what the user typed and each problem next to its field, and the
request's transaction is rolled back first, so nothing half-done is stored.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State, UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template
from openpyxl import Workbook
from openpyxl.utils import get_column_letter
from sqlalchemy.ext.asyncio import AsyncSession

from infra.errors import DomainError, FieldProblem, NotFound
from infra.field_encryption import field_cipher
from infra.i18n import N_
from infra.i18n import gettext as _
from infra.settings import Settings
from infra.storage import ObjectStorage
from infra.uploads import DOCUMENT_KINDS, MAX_UPLOAD_BYTES, get_stored_object, store_upload
from onboarding import services
from onboarding.access import Viewer, viewer_for
from onboarding.catalogue import (
    CERTIFICATE_LABELS,
    DOCUMENT_LABELS,
    WORK_TYPE_LABELS,
    CertificateKind,
    DocumentKind,
    WorkType,
)
from onboarding.roster import COLUMNS, MAX_ROSTER_BYTES
from onboarding.roster import FIELD as ROSTER_FIELD
from onboarding.schemas import (
    CertificateIn,
    CertificateUpdate,
    ContractorRegistration,
    ContractorUpdate,
    DocumentIn,
    DocumentUpdate,
    InvitationIn,
    ItemVerdict,
    ReviewIn,
    StateChangeIn,
    WorkerIn,
    WorkerUpdate,
)
from onboarding.states import EDITABLE_STATES, PROFILE_EDITABLE_STATES, ContractorState, ItemState
from portal.dependencies import AppSettings, DbSession
from portal.guards import requires_roles
from portal.identity import SESSION_TENANT_KEY, SESSION_USER_KEY
from portal.sessions import rotate_session_id
from portal.web.forms import (
    FORM_LIMIT,
    INVALID_FORM,
    close_files,
    convert,
    ensure_own_tenant,
    field_text,
    field_texts,
    page_id,
)
from tenants.access import Principal
from tenants.models import Role, Tenant

MultipartForm = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]
# Room for the multipart boundaries and the text fields around the largest accepted file.
_FORM_OVERHEAD = 64 * 1024
_REQUIRED = N_("This field is required.")
_CONFIRM_BLACKLIST = N_("Tick the box to confirm the blacklisting.")
_reviewers = requires_roles(Role.EHS_OFFICER, Role.TENANT_ADMIN)
_tenant_admins = requires_roles(Role.TENANT_ADMIN)
_contractor_admins = requires_roles(Role.CONTRACTOR_ADMIN)
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXPIRING_WITHIN_DAYS = 30

STATE_LABELS = {
    ContractorState.DRAFT: N_("Draft"),
    ContractorState.SUBMITTED: N_("Submitted for review"),
    ContractorState.APPROVED: N_("Approved"),
    ContractorState.REJECTED: N_("Rejected"),
    ContractorState.CHANGES_REQUESTED: N_("Changes requested"),
    ContractorState.SUSPENDED: N_("Suspended"),
    ContractorState.BLACKLISTED: N_("Blacklisted"),
    ItemState.PENDING: N_("Waiting for review"),
    ItemState.VERIFIED: N_("Verified"),
    ItemState.EXPIRED: N_("Expired"),
}


# --- reading forms ---------------------------------------------------------------------------


def _file(data: dict[str, Any], name: str) -> UploadFile | None:
    """An empty file input still sends a part, with no file name."""
    value = data.get(name)
    return value if isinstance(value, UploadFile) and value.filename else None


def _typed_values(data: dict[str, Any], names: tuple[str, ...]) -> dict[str, str]:
    """What the user typed, to fill the form in again; never passwords or files."""
    return {name: field_text(data, name) for name in names}


def _required(data: dict[str, Any], names: tuple[str, ...]) -> None:
    """All empty fields at once, rather than msgspec's first problem only."""
    missing = [
        FieldProblem(name, "required", _REQUIRED) for name in names if not field_text(data, name)
    ]
    if missing:
        raise DomainError(INVALID_FORM, missing)


@dataclass
class FormErrors:
    """Problems by form field, in the user's language; those naming no field go on top."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    @classmethod
    def of(
        cls, exc: DomainError, known: set[str], aliases: dict[str, str] | None = None
    ) -> FormErrors:
        errors = cls()
        for problem in exc.problems:
            message = _(problem.message, **problem.params)
            name = re.sub(r"\[\d+\]", "", problem.field).replace(".", "_")
            name = (aliases or {}).get(name, name)
            parts = name.split("_")
            # A service may name a field inside its list ("workers.id_number").
            for start in range(1, len(parts)):
                if name in known:
                    break
                if "_".join(parts[start:]) in known:
                    name = "_".join(parts[start:])
            if name in known:
                errors.fields.setdefault(name, []).append(message)
            else:
                errors.general.append(message)
        if not exc.problems:
            errors.general.append(_(exc.message))
        return errors


def _download_link(storage: ObjectStorage, settings: Settings, key: str) -> str:
    """Local links are made for the configured base URL; shown on a page, they must work on
    whichever address the browser used, so the same-site part is kept as a path."""
    url = storage.download_url(key, expires_seconds=900)
    base = settings.base_url.rstrip("/")
    return url[len(base) :] if url.startswith(base + "/") else url


async def _scan(
    session: AsyncSession, storage: ObjectStorage, settings: Settings, object_id: uuid.UUID | None
) -> dict[str, Any] | None:
    if object_id is None:
        return None
    try:
        record = await get_stored_object(session, object_id)
    except NotFound:
        return None
    return {
        "url": _download_link(storage, settings, record.key),
        "is_image": record.content_type.startswith("image/"),
    }


async def _undo(session: AsyncSession, storage: ObjectStorage, keys: list[str]) -> None:
    """A refused form stores nothing: not the rows flushed so far, nor the files uploaded."""
    await session.rollback()
    for key in keys:
        storage.delete(key)


def _tenant_of(request: Request[Any, Any, Any], slug: str) -> Tenant:
    tenant = request.scope.get("state", {}).get("tenant")
    if tenant is None or tenant.slug != slug:
        raise NotFoundException()
    return tenant


def _labels() -> dict[str, Any]:
    return {
        "work_type_labels": WORK_TYPE_LABELS,
        "document_labels": DOCUMENT_LABELS,
        "certificate_labels": CERTIFICATE_LABELS,
        "state_labels": STATE_LABELS,
    }


# --- registration ----------------------------------------------------------------------------

PROFILE_FIELDS = (
    "name",
    "uscc",
    "legal_representative",
    "contact_name",
    "contact_phone",
    "address",
)
REGISTRATION_FIELDS = (
    *PROFILE_FIELDS,
    "admin_name",
    "admin_email",
    "admin_phone",
    "invitation_token",
)
_REGISTRATION_REQUIRED = (*PROFILE_FIELDS, "admin_name", "admin_email", "admin_password")
_REGISTRATION_KNOWN = {*REGISTRATION_FIELDS, "admin_password", "work_types"}


def _registration_page(
    slug: str,
    values: dict[str, Any],
    *,
    open_registration: bool,
    errors: FormErrors | None = None,
    status_code: int = 200,
) -> Template:
    return Template(
        template_name="onboarding/register.html",
        context={
            "tenant_slug": slug,
            "values": values,
            "errors": errors or FormErrors(),
            "work_types": list(WorkType),
            "open_registration": open_registration,
            **_labels(),
        },
        status_code=status_code,
    )


def _profile(data: dict[str, Any], required: tuple[str, ...] = PROFILE_FIELDS) -> dict[str, Any]:
    """The company's details as typed, on the registration and the profile forms."""
    _required(data, required)
    if not field_texts(data, "work_types"):
        raise DomainError(INVALID_FORM, [FieldProblem("work_types", "required", _REQUIRED)])
    return {
        **{name: field_text(data, name) for name in PROFILE_FIELDS},
        "work_types": field_texts(data, "work_types"),
    }


def _profile_values(data: dict[str, Any]) -> dict[str, Any]:
    return {**_typed_values(data, PROFILE_FIELDS), "work_types": field_texts(data, "work_types")}


def _registration(slug: str, data: dict[str, Any]) -> ContractorRegistration:
    profile = _profile(data, _REGISTRATION_REQUIRED)
    admin: dict[str, Any] = {
        "name": field_text(data, "admin_name"),
        "email": field_text(data, "admin_email"),
        "password": str(data.get("admin_password", ""))[:FORM_LIMIT],
    }
    if field_text(data, "admin_phone"):
        admin["phone"] = field_text(data, "admin_phone")
    payload: dict[str, Any] = {"tenant": slug, **profile, "admin": admin}
    if field_text(data, "invitation_token"):
        payload["invitation_token"] = field_text(data, "invitation_token")
    return convert(payload, ContractorRegistration)


# --- the contractor's own page -----------------------------------------------------------------

DOCUMENT_FIELDS = ("kind", "number", "issuer", "valid_from", "valid_until")
WORKER_FIELDS = ("name", "id_number", "phone", "trade")
# The ID number identifies the person: a wrong one means adding the worker again.
WORKER_FIX_FIELDS = ("name", "phone", "trade")
CERTIFICATE_FIELDS = ("worker_id", "kind", "number", "issuing_authority", "issued_on", "expires_on")


@dataclass
class ContractorForms:
    """Which form was sent, what it held and what was wrong with it."""

    name: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    errors: FormErrors = field(default_factory=FormErrors)
    report: list[RosterLine] = field(default_factory=list)
    imported: int | None = None


@dataclass(frozen=True)
class RosterLine:
    """One problem of a roster, placed by its row and the header of its column."""

    row: int
    column: str
    message: str


_ROSTER_PLACE = re.compile(r"rows\[(\d+)\]\.(.+)")


def _roster_report(exc: DomainError) -> list[RosterLine]:
    """Row problems go into the report table and leave the error; what is wrong with the file
    as a whole stays a problem of the file input."""
    lines: list[RosterLine] = []
    rest: list[FieldProblem] = []
    for problem in exc.problems:
        place = _ROSTER_PLACE.fullmatch(problem.field)
        if place:
            lines.append(RosterLine(int(place[1]), place[2], _(problem.message, **problem.params)))
        else:
            rest.append(problem)
    exc.problems = rest
    return lines


async def _contractor_page(
    session: AsyncSession,
    storage: ObjectStorage,
    settings: Settings,
    viewer: Viewer,
    slug: str,
    forms: ContractorForms | None = None,
    status_code: int = 200,
) -> Template:
    if viewer.contractor_id is None:
        raise NotFoundException()
    contractor = await services.get_contractor(session, viewer, viewer.contractor_id)
    documents = await services.list_documents(session, viewer, contractor.id)
    workers = await services.list_workers(session, viewer, contractor.id)
    certificates = await services.list_certificates(session, viewer, contractor.id)
    worker_names = {worker.id: worker.name for worker in workers}
    present_kinds = {document.kind for document in documents}
    return Template(
        template_name="onboarding/contractor.html",
        context={
            "tenant_slug": slug,
            "contractor": contractor,
            "documents": [
                {"item": d, "scan": await _scan(session, storage, settings, d.scan_id)}
                for d in documents
            ],
            "workers": workers,
            "certificates": [
                {
                    "item": c,
                    "worker_name": worker_names.get(c.worker_id, ""),
                    "scan": await _scan(session, storage, settings, c.scan_id),
                }
                for c in certificates
            ],
            "editable": contractor.state in EDITABLE_STATES,
            "profile_editable": contractor.state in PROFILE_EDITABLE_STATES,
            "can_submit": contractor.state
            in (ContractorState.DRAFT, ContractorState.CHANGES_REQUESTED),
            "work_types": list(WorkType),
            "missing_document_kinds": [k for k in DocumentKind if k.value not in present_kinds],
            "certificate_kinds": list(CertificateKind),
            "roster_columns": COLUMNS,
            "forms": forms or ContractorForms(),
            "no_errors": FormErrors(),
            **_labels(),
        },
        status_code=status_code,
    )


def _document_in(data: dict[str, Any], scan_id: uuid.UUID | None) -> DocumentIn:
    _required(data, ("kind", "number", "issuer", "valid_from"))
    payload: dict[str, Any] = {name: field_text(data, name) for name in DOCUMENT_FIELDS}
    if not payload["valid_until"]:
        # Empty means a licence without an end (长期).
        payload["valid_until"] = None
    payload["scan_id"] = str(scan_id) if scan_id else None
    return convert(payload, DocumentIn)


def _document_update(data: dict[str, Any], scan_id: uuid.UUID | None) -> DocumentUpdate:
    _required(data, ("number", "issuer", "valid_from"))
    payload: dict[str, Any] = {name: field_text(data, name) for name in DOCUMENT_FIELDS[1:]}
    payload["valid_until"] = payload["valid_until"] or None
    if scan_id is not None:
        payload["scan_id"] = str(scan_id)
    return convert(payload, DocumentUpdate)


def _with_file(
    data: dict[str, Any],
    fields: tuple[str, ...],
    file_field: str,
    file_id: uuid.UUID | None,
    schema: type[Any],
) -> Any:
    """All fields required, and the uploaded file's id only when one was sent."""
    _required(data, fields)
    payload: dict[str, Any] = {name: field_text(data, name) for name in fields}
    if file_id is not None:
        payload[file_field] = str(file_id)
    return convert(payload, schema)


def _certificate_update(data: dict[str, Any], scan_id: uuid.UUID | None) -> CertificateUpdate:
    return _with_file(data, CERTIFICATE_FIELDS[2:], "scan_id", scan_id, CertificateUpdate)


def _certificate_in(data: dict[str, Any], scan_id: uuid.UUID | None) -> CertificateIn:
    _required(data, CERTIFICATE_FIELDS)
    payload: dict[str, Any] = {name: field_text(data, name) for name in CERTIFICATE_FIELDS}
    payload["scan_id"] = str(scan_id) if scan_id else None
    return convert(payload, CertificateIn)


def _worker_in(data: dict[str, Any], photo_id: uuid.UUID | None) -> WorkerIn:
    return _with_file(data, WORKER_FIELDS, "photo_id", photo_id, WorkerIn)


def _worker_update(data: dict[str, Any], photo_id: uuid.UUID | None) -> WorkerUpdate:
    return _with_file(data, WORKER_FIX_FIELDS, "photo_id", photo_id, WorkerUpdate)


# --- review ----------------------------------------------------------------------------------

_ITEM_LISTS = (("documents", "document"), ("workers", "worker"), ("certificates", "certificate"))


def _review_in(
    data: dict[str, Any], pending: dict[str, list[uuid.UUID]]
) -> tuple[ReviewIn, dict[str, str]]:
    """The decision and the verdicts as one review, and each verdict's place in its list mapped
    to the form field it came from, so the service's problems land next to the right item."""
    aliases: dict[str, str] = {}
    verdicts: dict[str, list[ItemVerdict]] = {}
    problems: list[FieldProblem] = []
    for list_name, prefix in _ITEM_LISTS:
        chosen: list[ItemVerdict] = []
        for item_id in pending.get(list_name, []):
            key = f"{prefix}_{item_id.hex}"
            verdict = field_text(data, f"{key}_verdict")
            if verdict not in ("verified", "rejected"):
                continue
            reason = field_text(data, f"{key}_reason") or None
            aliases[f"{list_name}_{len(chosen)}_id"] = key
            aliases[f"{list_name}_{len(chosen)}_reason"] = key
            chosen.append(ItemVerdict(id=item_id, verdict=verdict, reason=reason))  # type: ignore[arg-type]
        verdicts[list_name] = chosen
    decision = field_text(data, "decision") or None
    if decision not in (None, "approve", "reject", "request_changes"):
        problems.append(FieldProblem("decision", "enum", N_("Not one of the allowed values.")))
    if problems:
        raise DomainError(INVALID_FORM, problems)
    payload = ReviewIn(
        decision=decision,  # type: ignore[arg-type]
        reason=field_text(data, "reason") or None,
        documents=verdicts["documents"],
        workers=verdicts["workers"],
        certificates=verdicts["certificates"],
    )
    return payload, aliases


async def _review_page(
    session: AsyncSession,
    storage: ObjectStorage,
    settings: Settings,
    viewer: Viewer,
    slug: str,
    contractor_id: uuid.UUID,
    *,
    values: dict[str, Any] | None = None,
    errors: FormErrors | None = None,
    standing: ContractorForms | None = None,
    status_code: int = 200,
) -> Template:
    contractor = await services.get_contractor(session, viewer, contractor_id)
    documents = await services.list_documents(session, viewer, contractor.id)
    workers = await services.list_workers(session, viewer, contractor.id)
    certificates = await services.list_certificates(session, viewer, contractor.id)
    worker_names = {worker.id: worker.name for worker in workers}
    return Template(
        template_name="onboarding/review.html",
        context={
            "tenant_slug": slug,
            "contractor": contractor,
            "documents": [
                {
                    "item": d,
                    "key": f"document_{d.id.hex}",
                    "scan": await _scan(session, storage, settings, d.scan_id),
                }
                for d in documents
            ],
            "workers": [
                {
                    "item": w,
                    "key": f"worker_{w.id.hex}",
                    "scan": await _scan(session, storage, settings, w.photo_id),
                }
                for w in workers
            ],
            "certificates": [
                {
                    "item": c,
                    "key": f"certificate_{c.id.hex}",
                    "worker_name": worker_names.get(c.worker_id, ""),
                    "scan": await _scan(session, storage, settings, c.scan_id),
                }
                for c in certificates
            ],
            "can_decide": contractor.state == ContractorState.SUBMITTED,
            "can_suspend": contractor.state == ContractorState.APPROVED,
            "can_reinstate": contractor.state == ContractorState.SUSPENDED,
            "can_blacklist": contractor.state != ContractorState.BLACKLISTED,
            "values": values or {},
            "errors": errors or FormErrors(),
            "standing": standing or ContractorForms(),
            "no_errors": FormErrors(),
            **_labels(),
        },
        status_code=status_code,
    )


async def _review_queue_page(
    session: AsyncSession,
    viewer: Viewer,
    principal: Principal,
    slug: str,
    *,
    invitation: ContractorForms | None = None,
    invitation_link: str | None = None,
    invitation_expires_at: datetime | None = None,
    status_code: int = 200,
) -> Template:
    queue = await services.review_queue(session, viewer)
    expiring = await services.expiring_soon(session, viewer, within_days=EXPIRING_WITHIN_DAYS)
    is_tenant_admin = Role.TENANT_ADMIN in principal.roles
    settings_row = await services.onboarding_settings(session) if is_tenant_admin else None
    return Template(
        template_name="onboarding/review_queue.html",
        context={
            "tenant_slug": slug,
            "queue": queue,
            "expiring": expiring,
            "within_days": EXPIRING_WITHIN_DAYS,
            "invitation": invitation or ContractorForms(),
            "invitation_link": invitation_link,
            "invitation_expires_at": invitation_expires_at,
            "open_registration": settings_row.open_registration if settings_row else None,
            **_labels(),
        },
        status_code=status_code,
        # The link carries the invitation's only copy of its token: no cache keeps it.
        headers={"Cache-Control": "no-store"} if invitation_link else None,
    )


def _roster_template() -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "花名册"
    sheet.append(list(COLUMNS))
    # ID numbers must be typed as text: Excel rounds an 18-digit number.
    id_column = COLUMNS.index("身份证号") + 1
    for row in range(2, 1002):
        sheet.cell(row=row, column=id_column).number_format = "@"
    sheet.column_dimensions[get_column_letter(id_column)].width = 22
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _index_aliases(exc: DomainError, aliases: dict[str, str]) -> None:
    """Rename ``certificates[0].reason`` to the form key of that certificate."""
    for problem in exc.problems:
        match = re.fullmatch(r"(\w+)\[(\d+)\]\.(\w+)", problem.field)
        if match:
            alias = aliases.get(f"{match[1]}_{match[2]}_{match[3]}")
            if alias:
                problem.field = alias


# --- routes ----------------------------------------------------------------------------------

# The collection in a correction's address, and the form it names.
_FIX_FORMS = {
    "documents": "document_fix",
    "workers": "worker_fix",
    "certificates": "certificate_fix",
}


@dataclass(frozen=True)
class _Fix:
    """A correction form: its fields, its optional new file and the service that stores it."""

    fields: tuple[str, ...]
    file_field: str
    file_kind: str
    parse: Callable[[dict[str, Any], uuid.UUID | None], Any]
    update: Callable[..., Awaitable[Any]]
    # A worker's name and phone, and a certificate's number, reach the ledger as keyed digests,
    # which need the cipher.
    ciphered: bool = False


_FIXES = {
    "document_fix": _Fix(
        DOCUMENT_FIELDS, "scan", "company_document", _document_update, services.update_document
    ),
    "worker_fix": _Fix(
        WORKER_FIX_FIELDS,
        "photo",
        "photo",
        _worker_update,
        services.update_worker,
        ciphered=True,
    ),
    "certificate_fix": _Fix(
        CERTIFICATE_FIELDS,
        "scan",
        "certificate_scan",
        _certificate_update,
        services.update_certificate,
        ciphered=True,
    ),
}


def _path_segments(request: Request[Any, Any, Any]) -> list[str]:
    """One handler serves a few fixed addresses; which one was asked for names the form."""
    return request.url.path.rstrip("/").split("/")


class OnboardingPages(Controller):
    include_in_schema = False

    @get("/t/{slug:str}/register")
    async def register_form(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        invitation: FromQuery[str | None] = None,
    ) -> Template:
        _tenant_of(request, slug)
        settings_row = await services.onboarding_settings(db_session)
        return _registration_page(
            slug,
            {"invitation_token": (invitation or "")[:FORM_LIMIT]},
            open_registration=settings_row.open_registration,
        )

    @post("/t/{slug:str}/register")
    async def register(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        data: MultipartForm,
    ) -> Template | Redirect:
        tenant = _tenant_of(request, slug)
        values = {**_typed_values(data, REGISTRATION_FIELDS), **_profile_values(data)}
        try:
            registration = await services.register_contractor(db_session, _registration(slug, data))
        except DomainError as exc:
            await db_session.rollback()
            settings_row = await services.onboarding_settings(db_session)
            aliases = {"admin_email": "admin_email", "email": "admin_email"}
            return _registration_page(
                slug,
                values,
                open_registration=settings_row.open_registration,
                errors=FormErrors.of(exc, _REGISTRATION_KNOWN, aliases),
                status_code=exc.status_code,
            )
        # The new administrator is signed in at once, with a fresh session id as at sign-in.
        rotate_session_id(request.scope)
        request.set_session(
            {SESSION_TENANT_KEY: str(tenant.id), SESSION_USER_KEY: str(registration.admin_user_id)}
        )
        return Redirect(path=f"/t/{slug}/contractor")

    @get("/t/{slug:str}/contractor", guards=[_contractor_admins])
    async def contractor(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        state: State,
        slug: FromPath[str],
    ) -> Template:
        ensure_own_tenant(request.user, slug)
        viewer = await viewer_for(db_session, request.user)
        return await _contractor_page(db_session, state.storage, settings, viewer, slug)

    async def _contractor_form(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: Settings,
        state: State,
        slug: str,
        data: dict[str, Any],
        form: str,
        item_id: uuid.UUID | None = None,
    ) -> Template | Redirect:
        ensure_own_tenant(request.user, slug)
        viewer = await viewer_for(db_session, request.user)
        if viewer.contractor_id is None:
            raise NotFoundException()
        storage: ObjectStorage = state.storage
        stored: list[str] = []

        async def upload(name: str, kind: str) -> uuid.UUID | None:
            upload = _file(data, name)
            if upload is None:
                return None
            try:
                record = await store_upload(
                    db_session,
                    storage,
                    DOCUMENT_KINDS[kind],
                    upload.file,
                    filename=upload.filename,
                    created_by=request.user.user_id,
                )
            except DomainError as exc:
                for problem in exc.problems:
                    problem.field = name
                raise
            stored.append(record.key)
            return record.id

        fields: tuple[str, ...]
        try:
            if form == "document":
                fields = DOCUMENT_FIELDS
                scan_id = await upload("scan", "company_document")
                if scan_id is None:
                    raise DomainError(INVALID_FORM, [FieldProblem("scan", "required", _REQUIRED)])
                await services.add_document(
                    db_session, viewer, viewer.contractor_id, _document_in(data, scan_id)
                )
            elif form == "profile":
                fields = PROFILE_FIELDS
                await services.update_contractor(
                    db_session,
                    viewer,
                    viewer.contractor_id,
                    convert(_profile(data), ContractorUpdate),
                )
            elif form == "worker":
                fields = WORKER_FIELDS
                photo_id = await upload("photo", "photo")
                await services.add_worker(
                    db_session,
                    viewer,
                    viewer.contractor_id,
                    _worker_in(data, photo_id),
                    cipher=field_cipher(settings),
                )
            elif form == "certificate":
                fields = CERTIFICATE_FIELDS
                scan_id = await upload("scan", "certificate_scan")
                if scan_id is None:
                    raise DomainError(INVALID_FORM, [FieldProblem("scan", "required", _REQUIRED)])
                await services.add_certificate(
                    db_session,
                    viewer,
                    viewer.contractor_id,
                    _certificate_in(data, scan_id),
                    cipher=field_cipher(settings),
                )
            elif form in _FIXES and item_id is not None:
                fix = _FIXES[form]
                fields = fix.fields
                file_id = await upload(fix.file_field, fix.file_kind)
                options = {"cipher": field_cipher(settings)} if fix.ciphered else {}
                await fix.update(
                    db_session,
                    viewer,
                    viewer.contractor_id,
                    item_id,
                    fix.parse(data, file_id),
                    **options,
                )
            else:
                fields = ()
                await services.submit_contractor(db_session, viewer, viewer.contractor_id)
        except DomainError as exc:
            await _undo(db_session, storage, stored)
            known = {*fields, "scan", "photo", "work_types"}
            aliases = {"scan_id": "scan", "photo_id": "photo", "file": "scan"}
            forms = ContractorForms(
                f"fix_{item_id.hex}" if item_id is not None else form,
                _profile_values(data) if form == "profile" else _typed_values(data, fields),
                FormErrors.of(exc, known, aliases),
            )
            return await _contractor_page(
                db_session, storage, settings, viewer, slug, forms, exc.status_code
            )
        finally:
            await close_files(data)
        anchor = "company" if form in ("submit", "profile") else form.removesuffix("_fix") + "s"
        return Redirect(path=f"/t/{slug}/contractor#{anchor}")

    @post(
        "/t/{slug:str}/contractor/documents",
        guards=[_contractor_admins],
        request_max_body_size=MAX_UPLOAD_BYTES + _FORM_OVERHEAD,
    )
    async def add_document(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        state: State,
        slug: FromPath[str],
        data: MultipartForm,
    ) -> Template | Redirect:
        return await self._contractor_form(
            request, db_session, settings, state, slug, data, "document"
        )

    @post(
        "/t/{slug:str}/contractor/workers",
        guards=[_contractor_admins],
        request_max_body_size=MAX_UPLOAD_BYTES + _FORM_OVERHEAD,
    )
    async def add_worker(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        state: State,
        slug: FromPath[str],
        data: MultipartForm,
    ) -> Template | Redirect:
        return await self._contractor_form(
            request, db_session, settings, state, slug, data, "worker"
        )

    @post(
        "/t/{slug:str}/contractor/certificates",
        guards=[_contractor_admins],
        request_max_body_size=MAX_UPLOAD_BYTES + _FORM_OVERHEAD,
    )
    async def add_certificate(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        state: State,
        slug: FromPath[str],
        data: MultipartForm,
    ) -> Template | Redirect:
        return await self._contractor_form(
            request, db_session, settings, state, slug, data, "certificate"
        )

    @post(
        ["/t/{slug:str}/contractor/submit", "/t/{slug:str}/contractor/profile"],
        guards=[_contractor_admins],
    )
    async def company_action(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        state: State,
        slug: FromPath[str],
        data: MultipartForm,
    ) -> Template | Redirect:
        """Submit the company for review, or change its details."""
        action = _path_segments(request)[-1]
        return await self._contractor_form(request, db_session, settings, state, slug, data, action)

    @post(
        [f"/t/{{slug:str}}/contractor/{collection}/{{item_id:str}}" for collection in _FIX_FORMS],
        guards=[_contractor_admins],
        request_max_body_size=MAX_UPLOAD_BYTES + _FORM_OVERHEAD,
    )
    async def fix_item(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        state: State,
        slug: FromPath[str],
        item_id: FromPath[str],
        data: MultipartForm,
    ) -> Template | Redirect:
        """Correct a rejected or expired document, certificate or worker."""
        form = _FIX_FORMS[_path_segments(request)[-2]]
        return await self._contractor_form(
            request, db_session, settings, state, slug, data, form, page_id(item_id)
        )

    @get("/t/{slug:str}/contractor/roster-template.xlsx", guards=[_contractor_admins])
    async def roster_template(
        self, request: Request[Principal, Any, Any], slug: FromPath[str]
    ) -> Response[bytes]:
        ensure_own_tenant(request.user, slug)
        return Response(
            content=_roster_template(),
            media_type=XLSX_TYPE,
            headers={"Content-Disposition": 'attachment; filename="roster.xlsx"'},
        )

    @post(
        "/t/{slug:str}/contractor/workers/import",
        guards=[_contractor_admins],
        request_max_body_size=MAX_ROSTER_BYTES + _FORM_OVERHEAD,
    )
    async def import_roster(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        state: State,
        slug: FromPath[str],
        data: MultipartForm,
    ) -> Template | Redirect:
        ensure_own_tenant(request.user, slug)
        viewer = await viewer_for(db_session, request.user)
        if viewer.contractor_id is None:
            raise NotFoundException()
        valid_rows_only = field_text(data, "import_valid_rows") == "true"
        try:
            upload = _file(data, ROSTER_FIELD)
            if upload is None:
                raise DomainError(INVALID_FORM, [FieldProblem(ROSTER_FIELD, "required", _REQUIRED)])
            content = await upload.read(MAX_ROSTER_BYTES + 1)
            report = await services.import_workers(
                db_session,
                viewer,
                viewer.contractor_id,
                content,
                cipher=field_cipher(settings),
                import_valid_rows=valid_rows_only,
            )
        except DomainError as exc:
            await db_session.rollback()
            lines = _roster_report(exc)
            forms = ContractorForms("roster", {}, FormErrors.of(exc, {ROSTER_FIELD}), report=lines)
            return await _contractor_page(
                db_session, state.storage, settings, viewer, slug, forms, exc.status_code
            )
        finally:
            await close_files(data)
        if report.skipped:
            # Rendered rather than redirected so the page can say which rows were left out and
            # why; the rows that were imported are committed with the request.
            skipped = [
                RosterLine(p.row, p.column, _(p.message, **p.params)) for p in report.skipped
            ]
            forms = ContractorForms(
                "roster", {}, FormErrors(), report=skipped, imported=len(report.imported)
            )
            return await _contractor_page(db_session, state.storage, settings, viewer, slug, forms)
        return Redirect(path=f"/t/{slug}/contractor#workers")

    @get("/t/{slug:str}/review", guards=[_reviewers])
    async def review_queue(
        self, request: Request[Principal, Any, Any], db_session: DbSession, slug: FromPath[str]
    ) -> Template:
        ensure_own_tenant(request.user, slug)
        viewer = await viewer_for(db_session, request.user)
        return await _review_queue_page(db_session, viewer, request.user, slug)

    @post("/t/{slug:str}/invitations", guards=[_reviewers])
    async def invite(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        slug: FromPath[str],
        data: MultipartForm,
    ) -> Template:
        ensure_own_tenant(request.user, slug)
        viewer = await viewer_for(db_session, request.user)
        values = _typed_values(data, ("email",))
        try:
            _required(data, ("email",))
            invitation = convert({"email": values["email"]}, InvitationIn)
            row, token = await services.create_invitation(
                db_session, email=invitation.email, actor_id=request.user.user_id
            )
        except DomainError as exc:
            await db_session.rollback()
            forms = ContractorForms("invitation", values, FormErrors.of(exc, {"email"}))
            return await _review_queue_page(
                db_session,
                viewer,
                request.user,
                slug,
                invitation=forms,
                status_code=exc.status_code,
            )
        link = f"{settings.base_url.rstrip('/')}/t/{slug}/register?invitation={token}"
        forms = ContractorForms("invitation", {"email": invitation.email})
        return await _review_queue_page(
            db_session,
            viewer,
            request.user,
            slug,
            invitation=forms,
            invitation_link=link,
            invitation_expires_at=row.expires_at,
        )

    @post("/t/{slug:str}/onboarding-settings", guards=[_tenant_admins])
    async def change_settings(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        data: MultipartForm,
    ) -> Redirect:
        ensure_own_tenant(request.user, slug)
        await services.set_open_registration(
            db_session,
            allowed=field_text(data, "open_registration") == "on",
            actor_id=request.user.user_id,
        )
        return Redirect(path=f"/t/{slug}/review#settings")

    @post("/t/{slug:str}/review/{contractor_id:str}/suspend", guards=[_reviewers])
    async def suspend(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        state: State,
        slug: FromPath[str],
        contractor_id: FromPath[str],
        data: MultipartForm,
    ) -> Template | Redirect:
        return await self._standing(
            request, db_session, settings, state, slug, contractor_id, data, "suspend"
        )

    @post("/t/{slug:str}/review/{contractor_id:str}/reinstate", guards=[_reviewers])
    async def reinstate(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        state: State,
        slug: FromPath[str],
        contractor_id: FromPath[str],
        data: MultipartForm,
    ) -> Template | Redirect:
        return await self._standing(
            request, db_session, settings, state, slug, contractor_id, data, "reinstate"
        )

    @post("/t/{slug:str}/review/{contractor_id:str}/blacklist", guards=[_reviewers])
    async def blacklist(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        state: State,
        slug: FromPath[str],
        contractor_id: FromPath[str],
        data: MultipartForm,
    ) -> Template | Redirect:
        return await self._standing(
            request, db_session, settings, state, slug, contractor_id, data, "blacklist"
        )

    async def _standing(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: Settings,
        state: State,
        slug: str,
        contractor_id: str,
        data: dict[str, Any],
        action: str,
    ) -> Template | Redirect:
        """Suspend, reinstate or blacklist a company, with its reason; the state machine in the
        service decides which of these the company's state allows."""
        ensure_own_tenant(request.user, slug)
        viewer = await viewer_for(db_session, request.user)
        parsed_id = page_id(contractor_id)
        change = {
            "suspend": services.suspend_contractor,
            "reinstate": services.reinstate_contractor,
            "blacklist": services.blacklist_contractor,
        }[action]
        values = _typed_values(data, ("reason",))
        try:
            _required(data, ("reason",))
            if action == "blacklist" and field_text(data, "confirm") != "yes":
                # Blacklisting cannot be undone from here: a slip of the finger must not do it.
                raise DomainError(
                    INVALID_FORM, [FieldProblem("confirm", "required", _CONFIRM_BLACKLIST)]
                )
            reason = convert({"reason": values["reason"]}, StateChangeIn).reason
            await change(db_session, viewer, parsed_id, reason=reason)
        except DomainError as exc:
            await db_session.rollback()
            standing = ContractorForms(action, values, FormErrors.of(exc, {"reason", "confirm"}))
            return await _review_page(
                db_session,
                state.storage,
                settings,
                viewer,
                slug,
                parsed_id,
                standing=standing,
                status_code=exc.status_code,
            )
        return Redirect(path=f"/t/{slug}/review/{parsed_id}#standing")

    @get("/t/{slug:str}/review/{contractor_id:str}", guards=[_reviewers])
    async def review_form(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        state: State,
        slug: FromPath[str],
        contractor_id: FromPath[str],
    ) -> Template:
        ensure_own_tenant(request.user, slug)
        viewer = await viewer_for(db_session, request.user)
        return await _review_page(
            db_session, state.storage, settings, viewer, slug, page_id(contractor_id)
        )

    @post("/t/{slug:str}/review/{contractor_id:str}", guards=[_reviewers])
    async def review(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        state: State,
        slug: FromPath[str],
        contractor_id: FromPath[str],
        data: MultipartForm,
    ) -> Template | Redirect:
        ensure_own_tenant(request.user, slug)
        viewer = await viewer_for(db_session, request.user)
        parsed_id = page_id(contractor_id)
        pending = await _pending_items(db_session, viewer, parsed_id)
        aliases: dict[str, str] = {}
        try:
            review, aliases = _review_in(data, pending)
            await services.review_contractor(
                db_session, viewer, parsed_id, review, billing=state.billing
            )
        except DomainError as exc:
            await db_session.rollback()
            _index_aliases(exc, aliases)
            known = {"decision", "reason", *aliases.values()}
            values = {name: field_text(data, name) for name in data}
            return await _review_page(
                db_session,
                state.storage,
                settings,
                viewer,
                slug,
                parsed_id,
                values=values,
                errors=FormErrors.of(exc, known),
                status_code=exc.status_code,
            )
        return Redirect(path=f"/t/{slug}/review")


async def _pending_items(
    session: AsyncSession, viewer: Viewer, contractor_id: uuid.UUID
) -> dict[str, list[uuid.UUID]]:
    """The items the form offered verdicts on: those waiting for review."""
    pending = ItemState.PENDING.value
    return {
        "documents": [
            d.id
            for d in await services.list_documents(session, viewer, contractor_id)
            if d.state == pending
        ],
        "workers": [
            w.id
            for w in await services.list_workers(session, viewer, contractor_id)
            if w.state == pending
        ],
        "certificates": [
            c.id
            for c in await services.list_certificates(session, viewer, contractor_id)
            if c.state == pending
        ],
    }
