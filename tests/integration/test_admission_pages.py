"""The admission pages over HTTP: registration by invitation, refused forms that keep what was
typed and store nothing, and who may open the review pages."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from infra.db import Database
from infra.settings import Settings
from infra.tenancy import tenant_scope
from onboarding import services as onboarding
from onboarding.models import Contractor
from onboarding.validators import uscc_check_char
from portal.app import create_app
from tenants.models import Role
from tests.factories import SeededTenant, SeededUser, TenantFactory

CSRF_FIELD = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')
USCC_BODY = "91330206MA2XY7K31"
USCC = USCC_BODY + uscc_check_char(USCC_BODY)
# Browsers send these forms as multipart (they may carry files); an empty file part makes the
# test client do the same.
NO_FILE = {"unused": ("", b"", "application/octet-stream")}


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
    assert refused.status_code == 422, refused.text
    assert 'data-field="admin_email"' in refused.text
    assert 'value="宁波测试安装有限公司"' in refused.text
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
