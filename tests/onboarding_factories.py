"""Building contractors for admission tests through the real services: valid identifiers, a
registered company with its administrator, uploads, documents, workers and certificates."""

from __future__ import annotations

import dataclasses
import io
import random
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import date, timedelta

import msgspec
import openpyxl
from sqlalchemy.ext.asyncio import AsyncSession

from infra.db import Database
from infra.field_encryption import FieldCipher
from infra.settings import Settings
from infra.tenancy import tenant_scope
from infra.uploads import StoredObject
from onboarding import services
from onboarding.access import Viewer
from onboarding.catalogue import CertificateKind, DocumentKind, WorkType
from onboarding.clock import plant_today
from onboarding.schemas import (
    CertificateIn,
    ContractorAdminIn,
    ContractorRegistration,
    DocumentIn,
    ItemVerdict,
    ReviewIn,
    WorkerIn,
)
from onboarding.validators import USCC_ALPHABET, id_check_char, uscc_check_char
from tenants.models import Role
from tests.factories import SeededTenant

_random = random.Random(20261128)


def make_uscc() -> str:
    body = "91" + "330100" + "".join(_random.choice(USCC_ALPHABET) for _ in range(9))
    return body + uscc_check_char(body)


_issued_id_numbers: set[str] = set()
_FIRST_BIRTH = date(1970, 1, 1)
_BIRTH_DAYS = 30 * 365


def make_id_number(birth: date | None = None, region: str = "330102") -> str:
    """A valid ID number never handed out before in this run: companies refuse a person twice,
    so two random draws that happened to meet would fail a test by chance. Without a birth date
    the person is born on some day of thirty years, which leaves room for millions."""
    while True:
        born = birth or _FIRST_BIRTH + timedelta(days=_random.randrange(_BIRTH_DAYS))
        body = f"{region}{born:%Y%m%d}{_random.randrange(1000):03d}"
        if body not in _issued_id_numbers:
            _issued_id_numbers.add(body)
            return body + id_check_char(body)


def roster_xlsx(rows: Iterable[Iterable[object]], header: Iterable[str] = ()) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(list(header) or ["姓名", "身份证号", "手机号", "工种"])
    for row in rows:
        sheet.append(list(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@asynccontextmanager
async def in_tenant(database: Database, tenant_id: uuid.UUID) -> AsyncIterator[AsyncSession]:
    """A session in the tenant's scope, committed when the block ends without error."""
    async with database.session() as session:
        with tenant_scope(tenant_id):
            yield session
            await session.commit()


def host_viewer(tenant: SeededTenant, role: Role = Role.EHS_OFFICER) -> Viewer:
    return Viewer(tenant.user(role).id, frozenset({role}), None)


@dataclasses.dataclass
class Company:
    tenant: SeededTenant
    contractor_id: uuid.UUID
    admin: Viewer
    admin_email: str
    admin_password: str
    workers: dict[str, uuid.UUID] = dataclasses.field(default_factory=dict)
    certificates: dict[str, uuid.UUID] = dataclasses.field(default_factory=dict)
    documents: dict[str, uuid.UUID] = dataclasses.field(default_factory=dict)


def registration(tenant: SeededTenant, **changes: object) -> ContractorRegistration:
    suffix = uuid.uuid4().hex[:8]
    values: dict[str, object] = {
        "tenant": tenant.slug,
        "name": f"华东安装工程有限公司 {suffix}",
        "uscc": make_uscc(),
        "legal_representative": "王建国",
        "contact_name": "李明",
        "contact_phone": "13800138000",
        "address": "上海市浦东新区张江路 1 号",
        "work_types": [WorkType.HOT_WORK, WorkType.HEIGHT],
        "admin": ContractorAdminIn(
            email=f"admin-{suffix}@contractor.example",
            name="承包商管理员",
            password="contractor-pass-1",
        ),
    }
    values.update(changes)
    return ContractorRegistration(**values)  # type: ignore[arg-type]


class OnboardingFactory:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.cipher = FieldCipher.from_settings(settings)

    async def register(self, tenant: SeededTenant, **changes: object) -> Company:
        """A company registered by invitation; the tenant's registration stays as it was."""
        data = registration(tenant, **changes)
        async with in_tenant(self.database, tenant.id) as session:
            _invitation, token = await services.create_invitation(
                session, email=data.admin.email, actor_id=None
            )
            data = msgspec.structs.replace(data, invitation_token=token)
            done = await services.register_contractor(session, data)
        admin = Viewer(done.admin_user_id, frozenset({Role.CONTRACTOR_ADMIN}), done.contractor.id)
        return Company(tenant, done.contractor.id, admin, data.admin.email, data.admin.password)

    async def upload(self, company: Company, kind: str) -> uuid.UUID:
        """An upload record as the pipeline leaves it; the bytes do not matter here."""
        async with in_tenant(self.database, company.tenant.id) as session:
            record = StoredObject(
                kind=kind,
                key=f"tenants/{company.tenant.id}/uploads/{kind}/{uuid.uuid4()}",
                content_type="image/png",
                size=1,
                sha256="0" * 64,
                created_by=company.admin.user_id,
            )
            session.add(record)
        return record.id

    async def add_documents(self, company: Company, *, valid_until: date | None = None) -> None:
        today = plant_today()
        for kind in DocumentKind:
            scan = await self.upload(company, "company_document")
            async with in_tenant(self.database, company.tenant.id) as session:
                document = await services.add_document(
                    session,
                    company.admin,
                    company.contractor_id,
                    DocumentIn(
                        kind=kind,
                        number=f"{kind.value[:3].upper()}-{uuid.uuid4().hex[:8]}",
                        issuer="上海市市场监督管理局",
                        valid_from=today - timedelta(days=365),
                        valid_until=valid_until or today + timedelta(days=3 * 365),
                        scan_id=scan,
                    ),
                )
            company.documents[kind.value] = document.id

    async def add_worker(
        self, company: Company, name: str, *, id_number: str | None = None
    ) -> uuid.UUID:
        async with in_tenant(self.database, company.tenant.id) as session:
            worker = await services.add_worker(
                session,
                company.admin,
                company.contractor_id,
                WorkerIn(
                    name=name,
                    id_number=id_number or make_id_number(),
                    phone="13900139000",
                    trade="电焊工",
                ),
                cipher=self.cipher,
            )
        company.workers[name] = worker.id
        return worker.id

    async def add_certificate(
        self,
        company: Company,
        worker: str,
        *,
        kind: CertificateKind = CertificateKind.WELDING_CUTTING,
        expires_on: date | None = None,
        number: str | None = None,
    ) -> uuid.UUID:
        scan = await self.upload(company, "certificate_scan")
        today = plant_today()
        async with in_tenant(self.database, company.tenant.id) as session:
            certificate = await services.add_certificate(
                session,
                company.admin,
                company.contractor_id,
                CertificateIn(
                    worker_id=company.workers[worker],
                    kind=kind,
                    number=number or f"T{uuid.uuid4().hex[:12].upper()}",
                    issuing_authority="上海市应急管理局",
                    issued_on=today - timedelta(days=100),
                    expires_on=expires_on or today + timedelta(days=2 * 365),
                    scan_id=scan,
                ),
                cipher=self.cipher,
            )
        company.certificates[f"{worker}:{kind.value}"] = certificate.id
        return certificate.id

    async def submit(self, company: Company) -> None:
        async with in_tenant(self.database, company.tenant.id) as session:
            await services.submit_contractor(session, company.admin, company.contractor_id)

    async def approve_all(self, company: Company, reviewer: Viewer) -> None:
        """Verify every item and admit the company."""
        async with in_tenant(self.database, company.tenant.id) as session:
            await services.review_contractor(
                session,
                reviewer,
                company.contractor_id,
                ReviewIn(
                    decision="approve",
                    documents=[
                        ItemVerdict(id=item, verdict="verified")
                        for item in company.documents.values()
                    ],
                    workers=[
                        ItemVerdict(id=item, verdict="verified")
                        for item in company.workers.values()
                    ],
                    certificates=[
                        ItemVerdict(id=item, verdict="verified")
                        for item in company.certificates.values()
                    ],
                ),
            )

    async def admitted(
        self,
        tenant: SeededTenant,
        reviewer: Viewer,
        *,
        workers: tuple[str, ...] = ("张三",),
        certificate_expires_on: date | None = None,
        document_valid_until: date | None = None,
    ) -> Company:
        company = await self.register(tenant)
        await self.add_documents(company, valid_until=document_valid_until)
        for name in workers:
            await self.add_worker(company, name)
            await self.add_certificate(company, name, expires_on=certificate_expires_on)
        await self.submit(company)
        await self.approve_all(company, reviewer)
        return company
