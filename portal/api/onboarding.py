"""Admission over the API: registration, the contractor's records, EHS review and the lists EHS
works from. Handlers parse, call ``onboarding.services`` and shape the answer; which contractor a
user may reach is the services' business (another company's or tenant's ids answer 404)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, patch, post, put
from litestar.datastructures import State, UploadFile
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import Body, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK
from msgspec import UnsetType

from infra.errors import FieldProblem, InvalidInput, NotFound
from infra.field_encryption import field_cipher
from infra.i18n import N_
from infra.i18n import gettext as _
from infra.tenancy import tenant_scope
from infra.uploads import size_label
from onboarding import services
from onboarding.access import Viewer, viewer_for
from onboarding.catalogue import WorkType
from onboarding.models import (
    Certificate,
    Contractor,
    ContractorDocument,
    OnboardingSettings,
    Worker,
)
from onboarding.roster import FIELD, MAX_ROSTER_BYTES
from onboarding.schemas import (
    CertificateIn,
    CertificateRead,
    CertificateUpdate,
    ContractorRead,
    ContractorRegistration,
    ContractorUpdate,
    ContractorUserIn,
    ContractorUserRead,
    DocumentIn,
    DocumentRead,
    DocumentUpdate,
    ExpiringRead,
    ImportRead,
    InvitationIn,
    InvitationRead,
    OnboardingSettingsIn,
    OnboardingSettingsRead,
    QualificationRead,
    QueueEntryRead,
    RegistrationRead,
    ReviewIn,
    RowProblemRead,
    StateChangeIn,
    WorkerIn,
    WorkerRead,
    WorkerUpdate,
)
from onboarding.states import ContractorState
from portal.dependencies import AppSettings, DbSession
from portal.errors import error_response
from portal.guards import requires_roles, signed_in
from portal.params import IdParam, parse_id
from tenants import services as tenant_services
from tenants.access import Principal
from tenants.models import Role

_FORM_OVERHEAD = 64 * 1024
_reviewers = requires_roles(Role.EHS_OFFICER, Role.TENANT_ADMIN)
_contractor_admins = requires_roles(Role.CONTRACTOR_ADMIN)

MultipartForm = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]
WithinDays = Annotated[int, QueryParameter(ge=1, le=365, description="Horizon in days")]
# ``state`` is a name Litestar reserves for the application state.
StateQuery = Annotated[
    ContractorState | None,
    QueryParameter(name="state", description="Only contractors in this state"),
]


async def provide_viewer(request: Request[Principal, Any, Any], db_session: DbSession) -> Viewer:
    return await viewer_for(db_session, request.user)


ViewerDep = NamedDependency[Viewer]
_VIEWER = {"viewer": Provide(provide_viewer)}


# --- shaping answers -------------------------------------------------------------------------


def contractor_read(contractor: Contractor) -> ContractorRead:
    return ContractorRead(
        id=contractor.id,
        name=contractor.name,
        uscc=contractor.uscc,
        legal_representative=contractor.legal_representative,
        contact_name=contractor.contact_name,
        contact_phone=contractor.contact_phone,
        address=contractor.address,
        work_types=list(contractor.work_types),
        state=contractor.state,
        state_reason=contractor.state_reason,
        state_changed_at=contractor.state_changed_at,
        state_changed_by=contractor.state_changed_by,
        created_at=contractor.created_at,
    )


def document_read(document: ContractorDocument) -> DocumentRead:
    return DocumentRead(
        id=document.id,
        contractor_id=document.contractor_id,
        kind=document.kind,
        number=document.number,
        issuer=document.issuer,
        valid_from=document.valid_from,
        valid_until=document.valid_until,
        scan_id=document.scan_id,
        state=document.state,
        reason=document.reason,
    )


def worker_read(worker: Worker) -> WorkerRead:
    return WorkerRead(
        id=worker.id,
        contractor_id=worker.contractor_id,
        name=worker.name,
        id_number_masked=worker.id_number_masked,
        birth_date=worker.birth_date,
        phone=worker.phone,
        trade=worker.trade,
        photo_id=worker.photo_id,
        state=worker.state,
        reason=worker.reason,
    )


def certificate_read(certificate: Certificate) -> CertificateRead:
    return CertificateRead(
        id=certificate.id,
        worker_id=certificate.worker_id,
        kind=certificate.kind,
        number=certificate.number,
        issuing_authority=certificate.issuing_authority,
        issued_on=certificate.issued_on,
        expires_on=certificate.expires_on,
        scan_id=certificate.scan_id,
        state=certificate.state,
        reason=certificate.reason,
    )


def _roster_too_large(
    request: Request[Any, Any, Any], _exc: RequestEntityTooLarge
) -> Response[Any]:
    """The body limit fires before the handler; answer like the roster's own size check."""
    problem = FieldProblem(
        FIELD,
        "max_size",
        N_("The file is larger than %(limit)s."),
        {"limit": size_label(MAX_ROSTER_BYTES)},
    )
    return error_response(request, 413, _("The request is too large."), [problem])


def _roster_file(data: dict[str, Any]) -> UploadFile:
    upload = data.get(FIELD)
    if upload is None:
        raise InvalidInput(FIELD, "required", N_("This field is required."))
    if not isinstance(upload, UploadFile):
        raise InvalidInput(FIELD, "type", N_("Must be of type %(expected)s."), expected="file")
    return upload


def _settings_read(row: OnboardingSettings) -> OnboardingSettingsRead:
    return OnboardingSettingsRead(
        open_registration=row.open_registration, reminder_days=list(row.reminder_days)
    )


# --- routes ----------------------------------------------------------------------------------


class RegistrationController(Controller):
    path = "/api/v1/contractors/register"
    tags = ["onboarding"]  # noqa: RUF012

    @post(
        "/",
        summary="Register a contractor company",
        description=(
            "Public. Registers a company with the tenant named by `tenant`, with its first "
            "administrator, who then signs in at `POST /api/v1/auth/token`. Needs an "
            "`invitation_token` unless the tenant allows open registration. The USCC is checked "
            "against its GB 32100 check character. Rate limited per client address."
        ),
    )
    async def register(
        self, db_session: DbSession, data: JSONBody[ContractorRegistration]
    ) -> RegistrationRead:
        tenant = await tenant_services.tenant_by_slug(db_session, data.tenant)
        if tenant is None:
            raise NotFound(N_("Tenant not found."))
        with tenant_scope(tenant.id):
            registration = await services.register_contractor(db_session, data)
        return RegistrationRead(
            contractor=contractor_read(registration.contractor),
            admin_user_id=registration.admin_user_id,
        )


class ContractorController(Controller):
    path = "/api/v1/contractors"
    tags = ["onboarding"]  # noqa: RUF012
    guards = [signed_in]  # noqa: RUF012
    dependencies = _VIEWER

    @get(
        "/",
        summary="Contractors the caller may see",
        description="A contractor user sees only their own company.",
    )
    async def list_contractors(
        self,
        db_session: DbSession,
        viewer: ViewerDep,
        in_state: StateQuery = None,
    ) -> list[ContractorRead]:
        contractors = await services.list_contractors(db_session, viewer, state=in_state)
        return [contractor_read(contractor) for contractor in contractors]

    @get(
        "/{contractor_id:str}",
        summary="One contractor",
        description="Other companies' and other tenants' ids answer 404.",
    )
    async def get_contractor(
        self, db_session: DbSession, viewer: ViewerDep, contractor_id: IdParam
    ) -> ContractorRead:
        contractor = await services.get_contractor(
            db_session, viewer, parse_id(contractor_id, "contractor_id")
        )
        return contractor_read(contractor)

    @patch(
        "/{contractor_id:str}",
        summary="Change the company's details",
        description="Its administrator only, while a draft or after changes were requested.",
        guards=[_contractor_admins],
    )
    async def update_contractor(
        self,
        db_session: DbSession,
        viewer: ViewerDep,
        contractor_id: IdParam,
        data: JSONBody[ContractorUpdate],
    ) -> ContractorRead:
        contractor = await services.update_contractor(
            db_session, viewer, parse_id(contractor_id, "contractor_id"), data
        )
        return contractor_read(contractor)

    @post(
        "/{contractor_id:str}/submit",
        summary="Submit the company for admission review",
        description="Needs the business licence and the safety production licence.",
        guards=[_contractor_admins],
        status_code=HTTP_200_OK,
    )
    async def submit(
        self, db_session: DbSession, viewer: ViewerDep, contractor_id: IdParam
    ) -> ContractorRead:
        contractor = await services.submit_contractor(
            db_session, viewer, parse_id(contractor_id, "contractor_id")
        )
        return contractor_read(contractor)

    @post(
        "/{contractor_id:str}/users",
        summary="Add an account of the company",
        description="Its administrator only: another administrator, or a worker's own login "
        "(`role` contractor_worker) for inductions and check-ins on their phone.",
        guards=[_contractor_admins],
    )
    async def add_user(
        self,
        db_session: DbSession,
        viewer: ViewerDep,
        contractor_id: IdParam,
        data: JSONBody[ContractorUserIn],
    ) -> ContractorUserRead:
        user = await services.add_contractor_user(
            db_session, viewer, parse_id(contractor_id, "contractor_id"), data
        )
        return ContractorUserRead(id=user.id, email=user.email, name=user.name, role=data.role)

    @get("/{contractor_id:str}/documents", summary="The company's documents")
    async def list_documents(
        self, db_session: DbSession, viewer: ViewerDep, contractor_id: IdParam
    ) -> list[DocumentRead]:
        documents = await services.list_documents(
            db_session, viewer, parse_id(contractor_id, "contractor_id")
        )
        return [document_read(document) for document in documents]

    @post(
        "/{contractor_id:str}/documents",
        summary="Add a company document",
        description="One per kind; the scan is an upload of kind `company_document`.",
        guards=[_contractor_admins],
    )
    async def add_document(
        self,
        db_session: DbSession,
        viewer: ViewerDep,
        contractor_id: IdParam,
        data: JSONBody[DocumentIn],
    ) -> DocumentRead:
        document = await services.add_document(
            db_session, viewer, parse_id(contractor_id, "contractor_id"), data
        )
        return document_read(document)

    @patch(
        "/{contractor_id:str}/documents/{document_id:str}",
        summary="Change a company document",
        description="The document goes back to EHS for checking.",
        guards=[_contractor_admins],
    )
    async def update_document(
        self,
        db_session: DbSession,
        viewer: ViewerDep,
        contractor_id: IdParam,
        document_id: IdParam,
        data: JSONBody[DocumentUpdate],
    ) -> DocumentRead:
        document = await services.update_document(
            db_session,
            viewer,
            parse_id(contractor_id, "contractor_id"),
            parse_id(document_id, "document_id"),
            data,
        )
        return document_read(document)

    @get(
        "/{contractor_id:str}/workers",
        summary="The company's workers",
        description="ID numbers are shown masked.",
    )
    async def list_workers(
        self, db_session: DbSession, viewer: ViewerDep, contractor_id: IdParam
    ) -> list[WorkerRead]:
        workers = await services.list_workers(
            db_session, viewer, parse_id(contractor_id, "contractor_id")
        )
        return [worker_read(worker) for worker in workers]

    @post(
        "/{contractor_id:str}/workers",
        summary="Add a worker",
        description="The ID number is checked (GB 11643), stored encrypted and shown masked.",
        guards=[_contractor_admins],
    )
    async def add_worker(
        self,
        db_session: DbSession,
        settings: AppSettings,
        viewer: ViewerDep,
        contractor_id: IdParam,
        data: JSONBody[WorkerIn],
    ) -> WorkerRead:
        worker = await services.add_worker(
            db_session,
            viewer,
            parse_id(contractor_id, "contractor_id"),
            data,
            cipher=field_cipher(settings),
        )
        return worker_read(worker)

    @post(
        "/{contractor_id:str}/workers/import",
        summary="Import workers from an XLSX roster",
        description=(
            "Multipart form with one part, `file`: the first sheet's first row names the columns "
            "姓名, 身份证号, 手机号 and 工种 (any order, no others); at most 1000 workers and "
            "2 MB; formulas are refused. A file with any wrong row imports nothing and answers "
            "422 naming each row and column, unless `import_valid_rows=true`: then the good rows "
            "are imported and the others listed under `skipped`."
        ),
        guards=[_contractor_admins],
        status_code=HTTP_200_OK,
        request_max_body_size=MAX_ROSTER_BYTES + _FORM_OVERHEAD,
        exception_handlers={RequestEntityTooLarge: _roster_too_large},
    )
    async def import_workers(
        self,
        db_session: DbSession,
        settings: AppSettings,
        viewer: ViewerDep,
        contractor_id: IdParam,
        data: MultipartForm,
        import_valid_rows: FromQuery[bool] = False,
    ) -> ImportRead:
        parsed_id = parse_id(contractor_id, "contractor_id")
        upload = _roster_file(data)
        try:
            content = await upload.read(MAX_ROSTER_BYTES + 1)
        finally:
            await upload.close()
        report = await services.import_workers(
            db_session,
            viewer,
            parsed_id,
            content,
            cipher=field_cipher(settings),
            import_valid_rows=import_valid_rows,
        )
        return ImportRead(
            imported=[worker_read(worker) for worker in report.imported],
            skipped=[
                RowProblemRead(
                    row=problem.row,
                    column=problem.column,
                    rule=problem.rule,
                    message=_(problem.message, **problem.params),
                )
                for problem in report.skipped
            ],
        )

    @get("/{contractor_id:str}/workers/{worker_id:str}", summary="One worker")
    async def get_worker(
        self, db_session: DbSession, viewer: ViewerDep, contractor_id: IdParam, worker_id: IdParam
    ) -> WorkerRead:
        worker = await services.get_worker(
            db_session,
            viewer,
            parse_id(contractor_id, "contractor_id"),
            parse_id(worker_id, "worker_id"),
        )
        return worker_read(worker)

    @patch(
        "/{contractor_id:str}/workers/{worker_id:str}",
        summary="Change a worker",
        description="A new name or photo sends the worker back to EHS for checking.",
        guards=[_contractor_admins],
    )
    async def update_worker(
        self,
        db_session: DbSession,
        settings: AppSettings,
        viewer: ViewerDep,
        contractor_id: IdParam,
        worker_id: IdParam,
        data: JSONBody[WorkerUpdate],
    ) -> WorkerRead:
        worker = await services.update_worker(
            db_session,
            viewer,
            parse_id(contractor_id, "contractor_id"),
            parse_id(worker_id, "worker_id"),
            data,
            cipher=field_cipher(settings),
        )
        return worker_read(worker)

    @get("/{contractor_id:str}/certificates", summary="The certificates of the company's workers")
    async def list_certificates(
        self, db_session: DbSession, viewer: ViewerDep, contractor_id: IdParam
    ) -> list[CertificateRead]:
        certificates = await services.list_certificates(
            db_session, viewer, parse_id(contractor_id, "contractor_id")
        )
        return [certificate_read(certificate) for certificate in certificates]

    @post(
        "/{contractor_id:str}/certificates",
        summary="Add a worker's certificate",
        description="Numbers are unique in the tenant; the scan is an upload of kind "
        "`certificate_scan`; the expiry date must follow the issue date.",
        guards=[_contractor_admins],
    )
    async def add_certificate(
        self,
        db_session: DbSession,
        settings: AppSettings,
        viewer: ViewerDep,
        contractor_id: IdParam,
        data: JSONBody[CertificateIn],
    ) -> CertificateRead:
        certificate = await services.add_certificate(
            db_session,
            viewer,
            parse_id(contractor_id, "contractor_id"),
            data,
            cipher=field_cipher(settings),
        )
        return certificate_read(certificate)

    @patch(
        "/{contractor_id:str}/certificates/{certificate_id:str}",
        summary="Change a certificate",
        description="The certificate goes back to EHS for checking.",
        guards=[_contractor_admins],
    )
    async def update_certificate(
        self,
        db_session: DbSession,
        settings: AppSettings,
        viewer: ViewerDep,
        contractor_id: IdParam,
        certificate_id: IdParam,
        data: JSONBody[CertificateUpdate],
    ) -> CertificateRead:
        certificate = await services.update_certificate(
            db_session,
            viewer,
            parse_id(contractor_id, "contractor_id"),
            parse_id(certificate_id, "certificate_id"),
            data,
            cipher=field_cipher(settings),
        )
        return certificate_read(certificate)

    @post(
        "/{contractor_id:str}/review",
        summary="Decide on an admission, item by item",
        description=(
            "EHS. `decision` approve, reject or request_changes (or none, to judge only items), "
            "`reason`, and a verdict `verified` or `rejected` with its own reason for each "
            "document, worker and certificate named. Approval needs every pending item judged "
            "and the required documents verified. The company's administrators are notified. "
            "With billing on, a review that would take the tenant past its plan's active "
            "workers answers 402 naming the limit and the upgrade, and changes nothing."
        ),
        guards=[_reviewers],
        status_code=HTTP_200_OK,
    )
    async def review(
        self,
        db_session: DbSession,
        state: State,
        viewer: ViewerDep,
        contractor_id: IdParam,
        data: JSONBody[ReviewIn],
    ) -> ContractorRead:
        contractor = await services.review_contractor(
            db_session,
            viewer,
            parse_id(contractor_id, "contractor_id"),
            data,
            billing=state.billing,
        )
        return contractor_read(contractor)

    @post(
        "/{contractor_id:str}/suspend",
        summary="Suspend an admitted company",
        guards=[_reviewers],
        status_code=HTTP_200_OK,
    )
    async def suspend(
        self,
        db_session: DbSession,
        viewer: ViewerDep,
        contractor_id: IdParam,
        data: JSONBody[StateChangeIn],
    ) -> ContractorRead:
        contractor = await services.suspend_contractor(
            db_session, viewer, parse_id(contractor_id, "contractor_id"), reason=data.reason
        )
        return contractor_read(contractor)

    @post(
        "/{contractor_id:str}/reinstate",
        summary="Lift a suspension",
        description="The required documents must be verified and valid.",
        guards=[_reviewers],
        status_code=HTTP_200_OK,
    )
    async def reinstate(
        self,
        db_session: DbSession,
        viewer: ViewerDep,
        contractor_id: IdParam,
        data: JSONBody[StateChangeIn],
    ) -> ContractorRead:
        contractor = await services.reinstate_contractor(
            db_session, viewer, parse_id(contractor_id, "contractor_id"), reason=data.reason
        )
        return contractor_read(contractor)

    @post(
        "/{contractor_id:str}/blacklist",
        summary="Blacklist a company",
        guards=[_reviewers],
        status_code=HTTP_200_OK,
    )
    async def blacklist(
        self,
        db_session: DbSession,
        viewer: ViewerDep,
        contractor_id: IdParam,
        data: JSONBody[StateChangeIn],
    ) -> ContractorRead:
        contractor = await services.blacklist_contractor(
            db_session, viewer, parse_id(contractor_id, "contractor_id"), reason=data.reason
        )
        return contractor_read(contractor)

    @get(
        "/{contractor_id:str}/qualified",
        summary="Which workers qualify for a kind of work in a time window",
        description=(
            "For each worker: qualified, or the first reason not (`reason` code and `message` "
            "in the caller's language). `start` and `end` are RFC 3339 times with an offset."
        ),
    )
    async def qualified(
        self,
        db_session: DbSession,
        viewer: ViewerDep,
        contractor_id: IdParam,
        work_type: FromQuery[WorkType],
        start: FromQuery[datetime],
        end: FromQuery[datetime],
    ) -> list[QualificationRead]:
        contractor = await services.get_contractor(
            db_session, viewer, parse_id(contractor_id, "contractor_id")
        )
        results = await services.qualified_workers(db_session, contractor.id, work_type, start, end)
        return [
            QualificationRead(
                worker_id=result.worker.id,
                worker_name=result.worker.name,
                qualified=result.verdict.qualified,
                reason=result.verdict.reason,
                message=result.verdict.message(),
                certificate_id=result.verdict.certificate_id,
            )
            for result in results
        ]


class ReviewQueueController(Controller):
    path = "/api/v1/review/queue"
    tags = ["onboarding"]  # noqa: RUF012
    guards = [_reviewers]  # noqa: RUF012
    dependencies = _VIEWER

    @get(
        "/",
        summary="What waits for EHS review",
        description="Submitted companies, longest waiting first, then admitted companies with "
        "documents, workers or certificates not yet judged.",
    )
    async def queue(self, db_session: DbSession, viewer: ViewerDep) -> list[QueueEntryRead]:
        return [
            QueueEntryRead(
                contractor=contractor_read(entry.contractor),
                pending_documents=entry.pending_documents,
                pending_workers=entry.pending_workers,
                pending_certificates=entry.pending_certificates,
            )
            for entry in await services.review_queue(db_session, viewer)
        ]


class OnboardingController(Controller):
    path = "/api/v1/onboarding"
    tags = ["onboarding"]  # noqa: RUF012
    guards = [_reviewers]  # noqa: RUF012
    dependencies = _VIEWER

    @get(
        "/expiring",
        summary="Documents and certificates expiring soon",
        description="Those still counting that expire within `within_days` (30 unless given), "
        "or already have, soonest first.",
    )
    async def expiring(
        self, db_session: DbSession, viewer: ViewerDep, within_days: WithinDays = 30
    ) -> list[ExpiringRead]:
        items = await services.expiring_soon(db_session, viewer, within_days=within_days)
        return [
            ExpiringRead(
                item=item.item,  # type: ignore[arg-type]
                id=item.id,
                contractor_id=item.contractor.id,
                contractor_name=item.contractor.name,
                worker_id=item.worker.id if item.worker else None,
                worker_name=item.worker.name if item.worker else None,
                kind=item.kind,
                number=item.number,
                expires_on=item.expires_on,
                days_left=item.days_left,
                state=item.state,
            )
            for item in items
        ]

    @get(
        "/settings",
        summary="The tenant's admission settings",
        description="`reminder_days`: the days before a certificate, company document or "
        "induction lapses when reminders go out, longest first (30, 7 and 1 until set).",
    )
    async def get_settings(self, db_session: DbSession) -> OnboardingSettingsRead:
        return _settings_read(await services.onboarding_settings(db_session))

    @put(
        "/settings",
        summary="Change the tenant's admission settings",
        description="Tenant admins. Changes the fields given and keeps the others. "
        "`open_registration` lets companies register without an invitation. `reminder_days` "
        "are 1 to 5 different days, each from 1 to 365 (rules `count`, `range`, `distinct`), "
        "kept longest first; the expiry and induction lapse watches use them from their next "
        "pass. Each change is written to the ledger (`onboarding_settings.changed`).",
        guards=[requires_roles(Role.TENANT_ADMIN)],
    )
    async def put_settings(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        data: JSONBody[OnboardingSettingsIn],
    ) -> OnboardingSettingsRead:
        actor_id = request.user.user_id
        row = await services.onboarding_settings(db_session)
        if not isinstance(data.reminder_days, UnsetType):
            row = await services.set_reminder_days(
                db_session, data.reminder_days, actor_id=actor_id
            )
        if not isinstance(data.open_registration, UnsetType):
            row = await services.set_open_registration(
                db_session, allowed=data.open_registration, actor_id=actor_id
            )
        return _settings_read(row)


class InvitationController(Controller):
    path = "/api/v1/invitations"
    tags = ["onboarding"]  # noqa: RUF012
    guards = [_reviewers]  # noqa: RUF012

    @post(
        "/",
        summary="Invite a company to register",
        description="The token is in this answer only; send it to the invited address.",
    )
    async def invite(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        data: JSONBody[InvitationIn],
    ) -> InvitationRead:
        invitation, token = await services.create_invitation(
            db_session,
            email=data.email,
            valid_for=timedelta(days=data.valid_days),
            actor_id=request.user.user_id,
        )
        return InvitationRead(
            id=invitation.id, email=invitation.email, expires_at=invitation.expires_at, token=token
        )
