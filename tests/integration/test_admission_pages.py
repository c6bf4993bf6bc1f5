"""The admission pages over HTTP: registration by invitation, refused forms that keep what was
typed and store nothing, who may open the review pages, roster imports, suspension and
blacklisting, invitations and the registration setting."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import openpyxl
import pytest
from litestar.testing import AsyncTestClient
from PIL import Image
from sqlalchemy import func, select

from infra.db import Database
from infra.settings import Settings
from infra.tenancy import tenant_scope
from onboarding import services as onboarding
from onboarding.models import Contractor, ContractorInvitation, OnboardingSettings, Worker
from onboarding.schemas import ItemVerdict, ReviewIn
from onboarding.validators import uscc_check_char
from portal.app import create_app
from tenants.models import Role
from tests.factories import SeededTenant, SeededUser, TenantFactory, audit_actions, count_rows
from tests.onboarding_factories import (
    Company,
    OnboardingFactory,
    host_viewer,
    make_id_number,
    roster_xlsx,
)

Row = TypeVar("Row")
CSRF_FIELD = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')
USCC_BODY = "91330206MA2XY7K31"
USCC = USCC_BODY + uscc_check_char(USCC_BODY)
# Browsers send these forms as multipart (they may carry files); an empty file part makes the
# test client do the same.
NO_FILE = {"unused": ("", b"", "application/octet-stream")}


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), "teal").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
async def client(sqlite_settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(app=create_app(sqlite_settings)) as test_client:
        test_client.follow_redirects = False
        yield test_client


async def _csrf(client: AsyncTestClient[Any], path: str) -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    match = CSRF_FIELD.search(page.text)
    assert match is not None
    return match.group(1)


def _registration(csrf: str, **overrides: Any) -> dict[str, Any]:
    form = {
        "_csrf_token": csrf,
        "name": "宁波测试安装有限公司",
        "uscc": USCC,
        "legal_representative": "张海",
        "contact_name": "张华",
        "contact_phone": "13912345678",
        "address": "浙江省宁波市北仑区长江路 1 号",
        "work_types": ["hot_work", "height"],
        "admin_name": "张华",
        "admin_email": "zhang.hua@ceshi.example",
        "admin_password": "a-long-enough-password",
    }
    form.update(overrides)
    return form


def _assert_refused(response: Any, field: str, *kept: str) -> None:
    """Refused with the problem next to ``field``, and the typed values in the form again."""
    assert response.status_code == 422, response.text
    assert f'data-field="{field}"' in response.text
    for value in kept:
        assert f'value="{value}"' in response.text


async def _contractors(database: Database, tenant: SeededTenant) -> int:
    async with database.session() as session:
        with tenant_scope(tenant.id):
            return int(await session.scalar(select(func.count()).select_from(Contractor)) or 0)


async def _invite(database: Database, tenant: SeededTenant, email: str) -> str:
    async with database.session() as session:
        with tenant_scope(tenant.id):
            _, token = await onboarding.create_invitation(session, email=email, actor_id=None)
        await session.commit()
    return token


async def _sign_in(client: AsyncTestClient[Any], tenant: SeededTenant, user: SeededUser) -> None:
    csrf = await _csrf(client, f"/t/{tenant.slug}/login")
    response = await client.post(
        "/login",
        data={
            "tenant": tenant.slug,
            "email": user.email,
            "password": user.password,
            "_csrf_token": csrf,
        },
    )
    assert response.status_code in (302, 303), response.text


async def test_registration_by_invitation_signs_the_admin_in(
    client: AsyncTestClient[Any], sqlite_db: Database, factory: TenantFactory
) -> None:
    tenant = await factory.create(sqlite_db)
    token = await _invite(sqlite_db, tenant, "zhang.hua@ceshi.example")
    path = f"/t/{tenant.slug}/register?invitation={token}"
    csrf = await _csrf(client, path)
    assert f'value="{token}"' in (await client.get(path)).text

    # Invited for another address: refused next to the e-mail field, the rest kept, no rows.
    refused = await client.post(
        f"/t/{tenant.slug}/register",
        data=_registration(csrf, invitation_token=token, admin_email="someone.else@ceshi.example"),
        files=NO_FILE,
    )
    _assert_refused(refused, "admin_email", "宁波测试安装有限公司")
    assert 'value="hot_work" checked' in refused.text
    assert "a-long-enough-password" not in refused.text
    assert await _contractors(sqlite_db, tenant) == 0

    registered = await client.post(
        f"/t/{tenant.slug}/register",
        data=_registration(csrf, invitation_token=token),
        files=NO_FILE,
    )
    assert registered.status_code in (302, 303), registered.text
    assert registered.headers["location"] == f"/t/{tenant.slug}/contractor"
    page = await client.get(f"/t/{tenant.slug}/contractor")
    assert page.status_code == 200, page.text
    assert "宁波测试安装有限公司" in page.text
    assert 'data-state="draft"' in page.text
    assert 'accept="image/*,application/pdf" capture="environment"' in page.text


async def test_closed_registration_and_a_bad_code_name_their_fields(
    client: AsyncTestClient[Any], sqlite_db: Database, factory: TenantFactory
) -> None:
    tenant = await factory.create(sqlite_db)
    csrf = await _csrf(client, f"/t/{tenant.slug}/register")
    closed = await client.post(
        f"/t/{tenant.slug}/register", data=_registration(csrf), files=NO_FILE
    )
    assert closed.status_code == 422
    assert 'data-field="invitation_token"' in closed.text
    assert "仅限受邀" in closed.text or "邀请" in closed.text

    token = await _invite(sqlite_db, tenant, "zhang.hua@ceshi.example")
    typo = USCC[:-1] + ("1" if USCC[-1] != "1" else "2")
    bad = await client.post(
        f"/t/{tenant.slug}/register",
        data=_registration(csrf, invitation_token=token, uscc=typo),
        files=NO_FILE,
    )
    assert bad.status_code == 422
    assert 'data-field="uscc"' in bad.text
    assert f'value="{typo}"' in bad.text
    assert await _contractors(sqlite_db, tenant) == 0


async def test_review_pages_are_for_reviewers_only(
    client: AsyncTestClient[Any], sqlite_db: Database, factory: TenantFactory
) -> None:
    tenant = await factory.create(
        sqlite_db, users=((Role.EHS_OFFICER, None), (Role.UNIT_SUPERVISOR, None))
    )
    await _sign_in(client, tenant, tenant.user(Role.UNIT_SUPERVISOR))
    assert (await client.get(f"/t/{tenant.slug}/review")).status_code == 403
    assert (await client.get(f"/t/{tenant.slug}/contractor")).status_code == 403

    async with AsyncTestClient(app=client.app) as officer:
        officer.follow_redirects = False
        await _sign_in(officer, tenant, tenant.user(Role.EHS_OFFICER))
        queue = await officer.get(f"/t/{tenant.slug}/review")
        assert queue.status_code == 200, queue.text
        assert 'data-testid="review-queue"' in queue.text
        assert (await officer.get(f"/t/{tenant.slug}/review/{uuid.uuid4()}")).status_code == 404
        assert (await officer.get(f"/t/{tenant.slug}/review/not-an-id")).status_code == 404
        dashboard = await officer.get(f"/t/{tenant.slug}/")
        assert f'href="/t/{tenant.slug}/review"' in dashboard.text


# --- roster imports, standing, invitations -----------------------------------------------------

HOSTS = ((Role.EHS_OFFICER, None), (Role.TENANT_ADMIN, None))
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _admin_of(company: Company) -> SeededUser:
    return SeededUser(
        company.admin.user_id,
        company.admin_email,
        company.admin_password,
        Role.CONTRACTOR_ADMIN,
        None,
    )


async def _admitted(
    database: Database, settings: Settings, factory: TenantFactory
) -> tuple[SeededTenant, Company]:
    tenant = await factory.create(database, plants=("P1",), users=HOSTS)
    company = await OnboardingFactory(database, settings).admitted(tenant, host_viewer(tenant))
    return tenant, company


async def _workers(database: Database, tenant: SeededTenant) -> int:
    return (await count_rows(database, tenant.id, Worker))["workers"]


async def _row(
    database: Database, tenant: SeededTenant, model: type[Row], row_id: uuid.UUID
) -> Row:
    async with database.session() as session:
        with tenant_scope(tenant.id):
            row = await session.get(model, row_id)
            assert row is not None
            return row


async def _state(database: Database, tenant: SeededTenant, contractor_id: uuid.UUID) -> str:
    return (await _row(database, tenant, Contractor, contractor_id)).state


async def test_roster_import_reports_every_bad_row_then_imports_the_valid_ones(
    client: AsyncTestClient[Any],
    sqlite_db: Database,
    sqlite_settings: Settings,
    factory: TenantFactory,
) -> None:
    tenant, company = await _admitted(sqlite_db, sqlite_settings, factory)
    await _sign_in(client, tenant, _admin_of(company))
    base = f"/t/{tenant.slug}/contractor"
    csrf = await _csrf(client, base)
    page = (await client.get(base)).text
    assert 'accept=".xlsx' in page
    assert f'href="{base}/roster-template.xlsx"' in page

    template = await client.get(f"{base}/roster-template.xlsx")
    assert template.status_code == 200
    assert template.headers["content-type"].startswith(XLSX)
    sheet = openpyxl.load_workbook(io.BytesIO(template.content)).active
    assert [cell.value for cell in sheet[1]] == ["姓名", "身份证号", "手机号", "工种"]

    before = await _workers(sqlite_db, tenant)
    good = roster_xlsx(
        [
            ["李雷", make_id_number(), "13800138001", "电工"],
            ["韩梅梅", make_id_number(), "13800138002", "焊工"],
        ]
    )
    imported = await client.post(
        f"{base}/workers/import",
        data={"_csrf_token": csrf},
        files={"file": ("roster.xlsx", good, XLSX)},
    )
    assert imported.status_code in (302, 303), imported.text
    assert imported.headers["location"] == f"{base}#workers"
    assert await _workers(sqlite_db, tenant) == before + 2

    # One good row and one with an ID number whose check character is wrong.
    wrong_id = make_id_number()
    wrong_id = wrong_id[:-1] + ("0" if wrong_id[-1] != "0" else "1")
    mixed = roster_xlsx(
        [
            ["王芳", make_id_number(), "13800138003", "架子工"],
            ["赵强", wrong_id, "13800138004", "起重工"],
        ]
    )
    refused = await client.post(
        f"{base}/workers/import",
        data={"_csrf_token": csrf},
        files={"file": ("roster.xlsx", mixed, XLSX)},
    )
    assert refused.status_code == 422, refused.text
    report = refused.text.split('data-testid="roster-report"', 1)[1].split("</table>", 1)[0]
    assert "<td>3</td><td>身份证号</td>" in report
    assert "校验" in report  # the rule's message, in the user's language
    assert wrong_id not in refused.text
    assert 'name="import_valid_rows" value="true"' in refused.text
    assert await _workers(sqlite_db, tenant) == before + 2

    valid_only = await client.post(
        f"{base}/workers/import",
        data={"_csrf_token": csrf, "import_valid_rows": "true"},
        files={"file": ("roster.xlsx", mixed, XLSX)},
    )
    assert valid_only.status_code == 200, valid_only.text
    assert 'data-testid="roster-imported"' in valid_only.text
    assert "<td>3</td><td>身份证号</td>" in valid_only.text
    assert 'name="import_valid_rows"' not in valid_only.text
    assert await _workers(sqlite_db, tenant) == before + 3
    assert "王芳" in (await client.get(base)).text


async def test_suspension_and_blacklisting_need_a_reason_and_a_confirmation(
    client: AsyncTestClient[Any],
    sqlite_db: Database,
    sqlite_settings: Settings,
    factory: TenantFactory,
) -> None:
    tenant, company = await _admitted(sqlite_db, sqlite_settings, factory)
    await _sign_in(client, tenant, tenant.user(Role.EHS_OFFICER))
    page = f"/t/{tenant.slug}/review/{company.contractor_id}"
    csrf = await _csrf(client, page)
    assert 'data-testid="standing-suspend"' in (await client.get(page)).text

    # The form is refused without its CSRF token, and nothing changes.
    forged = await client.post(f"{page}/suspend", data={"reason": "x"}, files=NO_FILE)
    assert forged.status_code == 403
    no_reason = await client.post(
        f"{page}/suspend", data={"_csrf_token": csrf, "reason": " "}, files=NO_FILE
    )
    assert no_reason.status_code in (400, 422), no_reason.text
    assert 'data-field="reason"' in no_reason.text
    assert await _state(sqlite_db, tenant, company.contractor_id) == "approved"

    suspended = await client.post(
        f"{page}/suspend",
        data={"_csrf_token": csrf, "reason": "动火作业未按规定监护"},
        files=NO_FILE,
    )
    assert suspended.status_code in (302, 303), suspended.text
    shown = (await client.get(page)).text
    assert 'data-state="suspended"' in shown
    assert "动火作业未按规定监护" in shown
    assert 'data-testid="standing-reinstate"' in shown
    assert "contractor.suspended" in await audit_actions(sqlite_db, tenant.id, "contractor.")

    unconfirmed = await client.post(
        f"{page}/blacklist",
        data={"_csrf_token": csrf, "reason": "伪造资质证书"},
        files=NO_FILE,
    )
    assert unconfirmed.status_code in (400, 422), unconfirmed.text
    assert 'data-field="confirm"' in unconfirmed.text
    assert "伪造资质证书" in unconfirmed.text
    assert await _state(sqlite_db, tenant, company.contractor_id) == "suspended"

    blacklisted = await client.post(
        f"{page}/blacklist",
        data={"_csrf_token": csrf, "reason": "伪造资质证书", "confirm": "yes"},
        files=NO_FILE,
    )
    assert blacklisted.status_code in (302, 303), blacklisted.text
    assert await _state(sqlite_db, tenant, company.contractor_id) == "blacklisted"
    assert (await audit_actions(sqlite_db, tenant.id, "contractor."))[-1] == (
        "contractor.blacklisted"
    )
    assert 'data-testid="standing"' not in (await client.get(page)).text


async def test_an_invitation_link_is_shown_once_and_registers_the_company(
    client: AsyncTestClient[Any], sqlite_db: Database, factory: TenantFactory
) -> None:
    tenant = await factory.create(sqlite_db, plants=("P1",), users=HOSTS)
    await _sign_in(client, tenant, tenant.user(Role.EHS_OFFICER))
    queue = f"/t/{tenant.slug}/review"
    csrf = await _csrf(client, queue)
    assert 'data-testid="settings"' not in (await client.get(queue)).text

    bad = await client.post(
        f"/t/{tenant.slug}/invitations",
        data={"_csrf_token": csrf, "email": "not-an-address"},
        files=NO_FILE,
    )
    assert bad.status_code in (400, 422), bad.text
    assert 'data-field="email"' in bad.text
    assert 'data-testid="invitation-link"' not in bad.text

    created = await client.post(
        f"/t/{tenant.slug}/invitations",
        data={"_csrf_token": csrf, "email": "zhang.hua@ceshi.example"},
        files=NO_FILE,
    )
    assert created.status_code == 200, created.text
    assert created.headers["cache-control"] == "no-store"
    match = re.search(rf"/t/{tenant.slug}/register\?invitation=([\w-]+)", created.text)
    assert match is not None, created.text
    token = match.group(1)
    assert token not in (await client.get(queue)).text

    async with AsyncTestClient(app=client.app) as visitor:
        visitor.follow_redirects = False
        register = f"/t/{tenant.slug}/register?invitation={token}"
        form_csrf = await _csrf(visitor, register)
        assert f'value="{token}"' in (await visitor.get(register)).text
        registered = await visitor.post(
            f"/t/{tenant.slug}/register",
            data=_registration(form_csrf, invitation_token=token),
            files=NO_FILE,
        )
        assert registered.status_code in (302, 303), registered.text
    assert await _contractors(sqlite_db, tenant) == 1


async def test_only_tenant_admins_open_registration(
    client: AsyncTestClient[Any], sqlite_db: Database, factory: TenantFactory
) -> None:
    tenant = await factory.create(sqlite_db, plants=("P1",), users=HOSTS)
    await _sign_in(client, tenant, tenant.user(Role.TENANT_ADMIN))
    queue = f"/t/{tenant.slug}/review"
    csrf = await _csrf(client, queue)
    page = (await client.get(queue)).text
    assert 'data-testid="settings"' in page
    assert 'name="open_registration" value="on" checked' not in page

    changed = await client.post(
        f"/t/{tenant.slug}/onboarding-settings",
        data={"_csrf_token": csrf, "open_registration": "on"},
        files=NO_FILE,
    )
    assert changed.status_code in (302, 303), changed.text
    assert 'name="open_registration" value="on" checked' in (await client.get(queue)).text
    assert "onboarding_settings.changed" in await audit_actions(sqlite_db, tenant.id)


async def test_contractor_users_cannot_use_the_ehs_forms(
    client: AsyncTestClient[Any],
    sqlite_db: Database,
    sqlite_settings: Settings,
    factory: TenantFactory,
) -> None:
    tenant, company = await _admitted(sqlite_db, sqlite_settings, factory)
    await _sign_in(client, tenant, _admin_of(company))
    csrf = await _csrf(client, f"/t/{tenant.slug}/contractor")
    before = await count_rows(sqlite_db, tenant.id, ContractorInvitation, OnboardingSettings)
    forms = [
        (f"/t/{tenant.slug}/review/{company.contractor_id}/{action}", {"reason": "自行处理"})
        for action in ("suspend", "reinstate", "blacklist")
    ]
    forms += [
        (f"/t/{tenant.slug}/invitations", {"email": "other@ceshi.example"}),
        (f"/t/{tenant.slug}/onboarding-settings", {"open_registration": "on"}),
    ]
    for path, data in forms:
        response = await client.post(path, data={"_csrf_token": csrf, **data}, files=NO_FILE)
        assert response.status_code in (403, 404), (path, response.status_code)
    assert await _state(sqlite_db, tenant, company.contractor_id) == "approved"
    assert (
        await count_rows(sqlite_db, tenant.id, ContractorInvitation, OnboardingSettings) == before
    )


# --- fixing the company's details and a rejected worker ----------------------------------------


async def _review(database: Database, company: Company, review: ReviewIn) -> None:
    async with database.session() as session:
        with tenant_scope(company.tenant.id):
            await onboarding.review_contractor(
                session, host_viewer(company.tenant), company.contractor_id, review
            )
        await session.commit()


@pytest.fixture
async def sent_back(
    client: AsyncTestClient[Any],
    sqlite_db: Database,
    sqlite_settings: Settings,
    factory: TenantFactory,
) -> tuple[SeededTenant, Company]:
    """A submitted company sent back by EHS, with its one worker rejected; its administrator
    is signed in on ``client``."""
    database = sqlite_db
    tenant = await factory.create(database, plants=("P1",), users=HOSTS)
    companies = OnboardingFactory(database, sqlite_settings)
    company = await companies.register(tenant)
    await companies.add_documents(company)
    await companies.add_worker(company, "张三")
    await companies.add_certificate(company, "张三")
    await companies.submit(company)
    await _review(
        database,
        company,
        ReviewIn(
            decision="request_changes",
            reason="请更正工人信息",
            documents=[
                ItemVerdict(id=item, verdict="verified") for item in company.documents.values()
            ],
            workers=[
                ItemVerdict(id=company.workers["张三"], verdict="rejected", reason="姓名有误")
            ],
            certificates=[
                ItemVerdict(id=item, verdict="verified") for item in company.certificates.values()
            ],
        ),
    )
    await _sign_in(client, tenant, _admin_of(company))
    return tenant, company


def _profile(csrf: str, **overrides: Any) -> dict[str, Any]:
    """The registration form without its administrator account: the company's details."""
    form = _registration(csrf, **overrides)
    return {key: value for key, value in form.items() if not key.startswith("admin_")}


async def test_company_details_are_edited_only_before_admission(
    client: AsyncTestClient[Any], sqlite_db: Database, sent_back: tuple[SeededTenant, Company]
) -> None:
    tenant, company = sent_back
    base = f"/t/{tenant.slug}/contractor"
    before = await _row(sqlite_db, tenant, Contractor, company.contractor_id)
    page = await client.get(base)
    assert f'action="{base}/profile"' in page.text
    assert f'value="{before.uscc}"' in page.text
    assert 'value="height" checked' in page.text
    csrf = await _csrf(client, base)

    # A wrong check character: the error next to the field, what was typed kept, nothing stored.
    typo = before.uscc[:-1] + ("1" if before.uscc[-1] != "1" else "2")
    bad = await client.post(
        f"{base}/profile",
        data=_profile(csrf, uscc=typo, name="宁波更正后有限公司"),
        files=NO_FILE,
    )
    _assert_refused(bad, "uscc", typo, "宁波更正后有限公司")
    assert (await _row(sqlite_db, tenant, Contractor, company.contractor_id)).name == before.name

    # Without the token the form is refused.
    forged = await client.post(
        f"{base}/profile", data=_profile("", uscc=before.uscc), files=NO_FILE
    )
    assert forged.status_code == 403
    assert (await _row(sqlite_db, tenant, Contractor, company.contractor_id)).name == before.name

    saved = await client.post(
        f"{base}/profile",
        data=_profile(csrf, uscc=before.uscc, name="宁波更正后有限公司", work_types=["hot_work"]),
        files=NO_FILE,
    )
    assert saved.status_code in (302, 303), saved.text
    assert saved.headers["location"] == f"{base}#company"
    after = await _row(sqlite_db, tenant, Contractor, company.contractor_id)
    assert after.name == "宁波更正后有限公司"
    assert after.work_types == ["hot_work"]
    assert after.uscc == before.uscc

    # Once admitted, the details are EHS's record: no form, and a forged post changes nothing.
    worker_fixed = await client.post(
        f"{base}/workers/{company.workers['张三']}",
        data={"_csrf_token": csrf, "name": "张叁", "phone": "13900139000", "trade": "电焊工"},
        files=NO_FILE,
    )
    assert worker_fixed.status_code in (302, 303), worker_fixed.text
    submitted = await client.post(f"{base}/submit", data={"_csrf_token": csrf}, files=NO_FILE)
    assert submitted.status_code in (302, 303), submitted.text
    await _review(
        sqlite_db,
        company,
        ReviewIn(
            decision="approve",
            workers=[ItemVerdict(id=company.workers["张三"], verdict="verified")],
        ),
    )
    assert f'action="{base}/profile"' not in (await client.get(base)).text
    refused = await client.post(
        f"{base}/profile",
        data=_profile(csrf, uscc=before.uscc, name="录取后改名有限公司"),
        files=NO_FILE,
    )
    assert refused.status_code == 409, refused.text
    assert 'class="error"' in refused.text
    assert (
        await _row(sqlite_db, tenant, Contractor, company.contractor_id)
    ).name == "宁波更正后有限公司"


async def test_a_rejected_worker_is_fixed_and_the_company_resubmits(
    client: AsyncTestClient[Any],
    sqlite_db: Database,
    sqlite_settings: Settings,
    sent_back: tuple[SeededTenant, Company],
) -> None:
    tenant, company = sent_back
    worker_id = company.workers["张三"]
    base = f"/t/{tenant.slug}/contractor"
    page = (await client.get(base)).text
    form = page.split('data-testid="worker-fix"', 1)[1].split("</details>", 1)[0]
    assert f'action="{base}/workers/{worker_id}"' in form
    assert 'name="id_number"' not in form
    assert 'value="张三"' in form
    assert page.index("姓名有误") < page.index('data-testid="worker-fix"')
    csrf = await _csrf(client, base)
    fix = {"_csrf_token": csrf, "name": "张叁", "phone": "13900139001", "trade": "电焊工"}

    forged = await client.post(f"{base}/workers/{worker_id}", data={**fix, "_csrf_token": ""})
    assert forged.status_code == 403
    missing = await client.post(
        f"{base}/workers/{worker_id}", data={**fix, "trade": ""}, files=NO_FILE
    )
    assert missing.status_code == 400, missing.text
    assert 'data-field="trade"' in missing.text
    assert 'value="张叁"' in missing.text
    assert (await _row(sqlite_db, tenant, Worker, worker_id)).state == "rejected"

    # Another company's worker is no page of this one.
    other = await OnboardingFactory(sqlite_db, sqlite_settings).register(tenant)
    stranger = await OnboardingFactory(sqlite_db, sqlite_settings).add_worker(other, "李四")
    foreign = await client.post(f"{base}/workers/{stranger}", data=fix, files=NO_FILE)
    assert foreign.status_code == 404
    assert (await _row(sqlite_db, tenant, Worker, stranger)).name == "李四"
    assert (await client.post(f"{base}/workers/not-an-id", data=fix)).status_code == 404

    photo = ("photo.png", _png(), "image/png")
    fixed = await client.post(f"{base}/workers/{worker_id}", data=fix, files={"photo": photo})
    assert fixed.status_code in (302, 303), fixed.text
    assert fixed.headers["location"] == f"{base}#workers"
    worker = await _row(sqlite_db, tenant, Worker, worker_id)
    assert (worker.state, worker.name, worker.phone, worker.reason) == (
        "pending",
        "张叁",
        "13900139001",
        None,
    )
    assert worker.photo_id is not None

    submitted = await client.post(f"{base}/submit", data={"_csrf_token": csrf}, files=NO_FILE)
    assert submitted.status_code in (302, 303), submitted.text
    assert await _state(sqlite_db, tenant, company.contractor_id) == "submitted"
