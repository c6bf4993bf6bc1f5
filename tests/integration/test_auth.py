"""Signing in over HTTP: bearer tokens, uniform failures, lockout, rate limit, tenant isolation
and the web session.

Tenant isolation runs on PostgreSQL, where row-level security backs the ORM filter; the rest runs
on SQLite, which is faster and exercises the same application code."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import html
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from httpx import Response
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import delete, select, text, update

from infra.db import Database
from infra.settings import Settings
from infra.tenancy import tenant_scope
from portal.app import create_app
from tenants.models import ApiToken, Membership, Role, User
from tests.factories import (
    SeededTenant,
    SeededUser,
    TenantFactory,
    audit_actions,
    issue_token,
)

TOKEN_URL = "/api/v1/auth/token"
ME_URL = "/api/v1/me"
INVALID_CREDENTIALS_ZH = "邮箱地址或密码错误，或账号因多次失败已被暂时锁定。"
INVALID_CREDENTIALS_EN = (
    "The e-mail address or password is wrong, or the account is locked for now."
)
CSRF_FIELD = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')


@asynccontextmanager
async def open_client(app: Litestar) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(app=app) as test_client:
        # Redirects are part of what these tests check, so they must not be followed.
        test_client.follow_redirects = False
        yield test_client


@pytest.fixture
async def client(sqlite_settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    async with open_client(create_app(sqlite_settings)) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def sign_in(
    client: AsyncTestClient[Any], tenant: str, email: str, password: str, **headers: str
) -> Response:
    return await client.post(
        TOKEN_URL, json={"tenant": tenant, "email": email, "password": password}, headers=headers
    )


# --- bearer tokens -------------------------------------------------------------------------------


async def test_token_is_issued_used_and_revoked(
    client: AsyncTestClient[Any], sqlite_db: Database, factory: TenantFactory
) -> None:
    tenant = await factory.create(sqlite_db, plants=("P1",))
    admin = tenant.user(Role.TENANT_ADMIN)

    issued = await sign_in(client, tenant.slug, admin.email, admin.password)
    assert issued.status_code == 200, issued.text
    body = issued.json()
    assert set(body) == {"access_token", "token_type", "expires_at"}
    assert body["token_type"] == "bearer"
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert expires_at > datetime.now(UTC) + timedelta(days=1)
    token = body["access_token"]

    me = await client.get(ME_URL, headers=bearer(token))
    assert me.status_code == 200, me.text
    assert me.json()["tenant_slug"] == tenant.slug
    assert me.json()["tenant_id"] == str(tenant.id)
    assert me.json()["user"]["id"] == str(admin.id)
    assert me.json()["user"]["email"] == admin.email
    assert me.json()["user"]["grants"] == [{"role": "tenant_admin", "plant_id": None}]

    # A leaked database must not hand out working tokens: only the SHA-256 of the secret is kept.
    secret = token.split("_", 2)[2]
    async with sqlite_db.session() as session:
        with tenant_scope(tenant.id):
            record = (await session.execute(select(ApiToken))).scalar_one()
        assert record.token_hash == hashlib.sha256(secret.encode()).hexdigest()
        raw_rows = (await session.execute(text("SELECT * FROM api_tokens"))).all()
    stored = " ".join(str(value) for row in raw_rows for value in row)
    assert secret not in stored
    assert token not in stored

    revoked = await client.delete(TOKEN_URL, headers=bearer(token))
    assert revoked.status_code == 204, revoked.text
    after = await client.get(ME_URL, headers=bearer(token))
    assert after.status_code == 401
    assert after.json()["status_code"] == 401
    assert "api_token.revoked" in await audit_actions(sqlite_db, tenant.id, "api_token.")


async def test_a_removed_role_counts_at_once_though_identities_are_remembered(
    client: AsyncTestClient[Any], sqlite_db: Database, factory: TenantFactory
) -> None:
    tenant = await factory.create(sqlite_db, plants=("P1",))
    admin = tenant.user(Role.TENANT_ADMIN)
    token = await issue_token(sqlite_db, tenant.id, admin.id)
    assert (await client.get("/api/v1/users", headers=bearer(token))).status_code == 200
    async with sqlite_db.session() as session:
        with tenant_scope(tenant.id):
            await session.execute(delete(Membership).where(Membership.user_id == admin.id))
            await session.commit()
    assert (await client.get("/api/v1/users", headers=bearer(token))).status_code == 403


async def test_a_token_revoked_by_another_process_stops_within_the_cache_time(
    sqlite_settings: Settings, sqlite_db: Database, factory: TenantFactory
) -> None:
    """A change this process's ORM did not make (another server process, or SQL by hand) is
    seen once the remembered identity expires."""
    settings = dataclasses.replace(sqlite_settings, identity_cache_seconds=0.2)
    tenant = await factory.create(sqlite_db, plants=("P1",))
    admin = tenant.user(Role.TENANT_ADMIN)
    token = await issue_token(sqlite_db, tenant.id, admin.id)
    async with open_client(create_app(settings)) as client:
        assert (await client.get(ME_URL, headers=bearer(token))).status_code == 200
        async with sqlite_db.async_engine.begin() as connection:
            await connection.execute(text("UPDATE api_tokens SET revoked_at = expires_at"))
        await asyncio.sleep(0.25)
        assert (await client.get(ME_URL, headers=bearer(token))).status_code == 401


async def test_api_needs_a_bearer_token(client: AsyncTestClient[Any]) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": f"Bearer pt_{uuid.uuid4().hex}_{'x' * 43}"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ):
        response = await client.get(ME_URL, headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["status_code"] == 401


# --- uniform failures ----------------------------------------------------------------------------


async def test_every_failed_sign_in_answers_the_same(
    client: AsyncTestClient[Any], sqlite_db: Database, factory: TenantFactory
) -> None:
    tenant = await factory.create(sqlite_db, plants=())
    admin = tenant.user(Role.TENANT_ADMIN)
    attempts = {
        "wrong password": (tenant.slug, admin.email, admin.password + "x"),
        "unknown e-mail": (tenant.slug, f"nobody@{tenant.slug}.example", admin.password),
        "unknown tenant": ("no-such-tenant", admin.email, admin.password),
    }
    for language, expected in ((None, INVALID_CREDENTIALS_ZH), ("en", INVALID_CREDENTIALS_EN)):
        headers = {"Accept-Language": language} if language else {}
        answers = {}
        for label, (slug, email, password) in attempts.items():
            response = await sign_in(client, slug, email, password, **headers)
            assert response.status_code == 401, label
            answers[label] = (response.status_code, response.content)
        # Byte-equal bodies: any difference would tell an attacker which part was right.
        assert len(set(answers.values())) == 1, answers
        body = await sign_in(client, *attempts["unknown tenant"], **headers)
        assert body.json() == {"status_code": 401, "detail": expected}


async def test_lockout_refuses_the_right_password_until_it_expires(
    sqlite_settings: Settings, sqlite_db: Database, factory: TenantFactory
) -> None:
    settings = dataclasses.replace(
        sqlite_settings, login_max_failures=3, login_lockout_seconds=3600
    )
    tenant = await factory.create(sqlite_db, plants=())
    admin = tenant.user(Role.TENANT_ADMIN)
    async with open_client(create_app(settings)) as client:
        failures = [
            await sign_in(client, tenant.slug, admin.email, "wrong-password") for _ in range(3)
        ]
        assert [r.status_code for r in failures] == [401, 401, 401]

        refused = await sign_in(client, tenant.slug, admin.email, admin.password)
        assert refused.status_code == 401
        assert refused.content == failures[0].content

        # Moving the lock into the past stands in for waiting out the lockout.
        async with sqlite_db.session() as session:
            with tenant_scope(tenant.id):
                await session.execute(
                    update(User)
                    .where(User.id == admin.id)
                    .values(locked_until=datetime.now(UTC) - timedelta(seconds=1))
                )
                await session.commit()

        accepted = await sign_in(client, tenant.slug, admin.email, admin.password)
        assert accepted.status_code == 200, accepted.text

    assert await audit_actions(sqlite_db, tenant.id, "auth.") == [
        "auth.login_failed",
        "auth.login_failed",
        "auth.account_locked",
        "auth.login_refused_locked",
        "auth.login_succeeded",
    ]


async def test_sign_in_is_rate_limited_per_client(
    sqlite_settings: Settings, sqlite_db: Database, factory: TenantFactory
) -> None:
    settings = dataclasses.replace(sqlite_settings, login_rate_per_minute=5)
    tenant = await factory.create(sqlite_db, plants=())
    admin = tenant.user(Role.TENANT_ADMIN)
    async with open_client(create_app(settings)) as client:
        # Unknown tenants keep these cheap and leave the account's failure count alone.
        for _ in range(5):
            assert (await sign_in(client, "no-such-tenant", admin.email, "x")).status_code == 401
        limited = await sign_in(client, tenant.slug, admin.email, admin.password)
        assert limited.status_code == 429
        assert limited.headers["content-type"].startswith("application/json")
        assert limited.json()["status_code"] == 429
        assert isinstance(limited.json()["detail"], str)
        assert limited.json()["detail"]

        # Only sign-in is throttled; a signed-in client keeps working.
        token = await issue_token(sqlite_db, tenant.id, admin.id)
        assert (await client.get(ME_URL, headers=bearer(token))).status_code == 200
    assert "auth.login_succeeded" not in await audit_actions(sqlite_db, tenant.id, "auth.")


# --- tenant isolation (PostgreSQL) ---------------------------------------------------------------


@pytest.fixture
async def pg_client(pg_settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    async with open_client(create_app(pg_settings)) as test_client:
        yield test_client


async def _token(database: Database, tenant: SeededTenant, user: SeededUser) -> dict[str, str]:
    return bearer(await issue_token(database, tenant.id, user.id))


@pytest.mark.postgres
async def test_another_tenants_ids_answer_404(
    pg_client: AsyncTestClient[Any], pg_db: Database, factory: TenantFactory
) -> None:
    tenant_a = await factory.create(pg_db, plants=("A1", "A2"))
    tenant_b = await factory.create(pg_db, plants=("B1",))
    b_admin = await _token(pg_db, tenant_b, tenant_b.user(Role.TENANT_ADMIN))

    missing_plant = await pg_client.get(f"/api/v1/plants/{uuid.uuid4()}", headers=b_admin)
    foreign_plant = await pg_client.get(f"/api/v1/plants/{tenant_a.plants['A1']}", headers=b_admin)
    assert foreign_plant.status_code == 404
    # Same answer as for an id that exists nowhere: no oracle for other tenants' ids.
    assert foreign_plant.content == missing_plant.content

    missing_user = await pg_client.get(f"/api/v1/users/{uuid.uuid4()}", headers=b_admin)
    foreign_user = await pg_client.get(
        f"/api/v1/users/{tenant_a.user(Role.TENANT_ADMIN).id}", headers=b_admin
    )
    assert foreign_user.status_code == 404
    assert foreign_user.content == missing_user.content

    plants = await pg_client.get("/api/v1/plants", headers=b_admin)
    assert plants.status_code == 200
    assert [(p["id"], p["code"]) for p in plants.json()] == [(str(tenant_b.plants["B1"]), "B1")]
    users = await pg_client.get("/api/v1/users", headers=b_admin)
    assert users.status_code == 200
    assert {u["id"] for u in users.json()} == {str(u.id) for u in tenant_b.users}

    # A token carries its tenant; pairing B's secret with A's id must not sign anyone in.
    b_token = b_admin["Authorization"].removeprefix("Bearer ")
    forged = f"pt_{tenant_a.id.hex}_{b_token.split('_', 2)[2]}"
    assert (await pg_client.get(ME_URL, headers=bearer(forged))).status_code == 401


@pytest.mark.postgres
async def test_plant_scoped_user_sees_only_their_plant(
    pg_client: AsyncTestClient[Any], pg_db: Database, factory: TenantFactory
) -> None:
    tenant = await factory.create(
        pg_db,
        plants=("P1", "P2"),
        users=((Role.TENANT_ADMIN, None), (Role.PLANT_MANAGER, "P1")),
    )
    manager = await _token(pg_db, tenant, tenant.user(Role.PLANT_MANAGER))

    plants = await pg_client.get("/api/v1/plants", headers=manager)
    assert plants.status_code == 200
    assert [p["code"] for p in plants.json()] == ["P1"]
    own = await pg_client.get(f"/api/v1/plants/{tenant.plants['P1']}", headers=manager)
    assert own.status_code == 200
    other = await pg_client.get(f"/api/v1/plants/{tenant.plants['P2']}", headers=manager)
    assert other.status_code == 404
    assert other.json()["status_code"] == 404

    created = await pg_client.post(
        "/api/v1/plants", json={"code": "P3", "name": "新厂区"}, headers=manager
    )
    assert created.status_code == 403
    assert created.json()["status_code"] == 403
    listed = await pg_client.get("/api/v1/users", headers=manager)
    assert listed.status_code == 403
    one = await pg_client.get(f"/api/v1/users/{tenant.user(Role.TENANT_ADMIN).id}", headers=manager)
    assert one.status_code == 403

    admin = await _token(pg_db, tenant, tenant.user(Role.TENANT_ADMIN))
    everything = await pg_client.get("/api/v1/plants", headers=admin)
    assert [p["code"] for p in everything.json()] == ["P1", "P2"]


# --- web sign-in ---------------------------------------------------------------------------------


async def _login_form(client: AsyncTestClient[Any], slug: str) -> str:
    page = await client.get(f"/t/{slug}/login")
    assert page.status_code == 200, page.text
    match = CSRF_FIELD.search(page.text)
    assert match is not None, "the login form has no CSRF field"
    assert client.cookies.get("portal_csrf")
    return match.group(1)


async def _web_sign_in(
    client: AsyncTestClient[Any], tenant: SeededTenant, user: SeededUser
) -> Response:
    csrf = await _login_form(client, tenant.slug)
    return await client.post(
        "/login",
        data={
            "tenant": tenant.slug,
            "email": user.email,
            "password": user.password,
            "_csrf_token": csrf,
        },
    )


def _location(response: Response) -> str:
    assert response.status_code in (301, 302, 303, 307), (response.status_code, response.text)
    return response.headers["location"]


def _login_for(slug: str, wanted: str) -> str:
    """The tenant's sign-in page, told to come back to ``wanted``."""
    return f"/t/{slug}/login?" + urlencode({"next": wanted})


async def test_web_sign_in_rotates_the_session_and_shows_the_dashboard(
    client: AsyncTestClient[Any], sqlite_db: Database, factory: TenantFactory
) -> None:
    tenant = await factory.create(sqlite_db, plants=("P1",))
    admin = tenant.user(Role.TENANT_ADMIN)
    planted = "a" * 64
    client.cookies.set("portal_session", planted, domain="testserver.local")

    signed_in = await _web_sign_in(client, tenant, admin)
    assert _location(signed_in) == f"/t/{tenant.slug}/"
    fresh = signed_in.cookies.get("portal_session")
    assert fresh and fresh not in (planted, "null")

    dashboard = await client.get(f"/t/{tenant.slug}/")
    assert dashboard.status_code == 200, dashboard.text
    assert "测试集团 " + tenant.slug in dashboard.text
    assert admin.email in dashboard.text
    assert "P1 厂区" in dashboard.text

    # Whoever planted the old id must not ride the victim's sign-in.
    async with open_client(client.app) as attacker:
        attacker.cookies.set("portal_session", planted, domain="testserver.local")
        hijack = await attacker.get(f"/t/{tenant.slug}/")
        assert _location(hijack) == _login_for(tenant.slug, f"/t/{tenant.slug}/")
    assert "auth.login_succeeded" in await audit_actions(sqlite_db, tenant.id, "auth.")


async def test_web_sign_in_needs_the_csrf_token(
    client: AsyncTestClient[Any], sqlite_db: Database, factory: TenantFactory
) -> None:
    tenant = await factory.create(sqlite_db, plants=())
    admin = tenant.user(Role.TENANT_ADMIN)
    await _login_form(client, tenant.slug)
    form = {"tenant": tenant.slug, "email": admin.email, "password": admin.password}

    refused = await client.post("/login", data=form)
    assert refused.status_code == 403
    forged = await client.post("/login", data={**form, "_csrf_token": "forged"})
    assert forged.status_code == 403
    assert not refused.cookies.get("portal_session")
    assert await audit_actions(sqlite_db, tenant.id, "auth.") == []


async def test_web_sign_in_failure_shows_the_generic_message(
    client: AsyncTestClient[Any], sqlite_db: Database, factory: TenantFactory
) -> None:
    tenant = await factory.create(sqlite_db, plants=())
    admin = tenant.user(Role.TENANT_ADMIN)
    csrf = await _login_form(client, tenant.slug)
    wrong = await client.post(
        "/login",
        data={
            "tenant": tenant.slug,
            "email": admin.email,
            "password": "wrong-password",
            "_csrf_token": csrf,
        },
    )
    assert wrong.status_code == 401
    assert INVALID_CREDENTIALS_ZH in wrong.text
    assert (await client.get(f"/t/{tenant.slug}/")).status_code in (301, 302, 303, 307)


async def test_dashboard_needs_a_session_of_that_tenant(
    client: AsyncTestClient[Any], sqlite_db: Database, factory: TenantFactory
) -> None:
    tenant_a = await factory.create(sqlite_db, plants=("A1",))
    tenant_b = await factory.create(sqlite_db, plants=("B1",))

    anonymous = await client.get(f"/t/{tenant_a.slug}/")
    assert _location(anonymous) == _login_for(tenant_a.slug, f"/t/{tenant_a.slug}/")

    await _web_sign_in(client, tenant_a, tenant_a.user(Role.TENANT_ADMIN))
    assert (await client.get(f"/t/{tenant_a.slug}/")).status_code == 200
    crossed = await client.get(f"/t/{tenant_b.slug}/")
    assert crossed.status_code != 200
    assert "测试集团 " + tenant_b.slug not in crossed.text
    assert "B1 厂区" not in crossed.text
    assert _location(crossed) == _login_for(tenant_b.slug, f"/t/{tenant_b.slug}/")


async def test_a_link_followed_while_signed_out_leads_back_after_signing_in(
    client: AsyncTestClient[Any], sqlite_db: Database, factory: TenantFactory
) -> None:
    """A notification's link to a permit or a briefing opens it after sign-in, not the
    dashboard; the page to come back to is always one of this site's."""
    tenant = await factory.create(sqlite_db, plants=("A1",))
    user = tenant.user(Role.TENANT_ADMIN)
    wanted = f"/t/{tenant.slug}/admin/plants?done=plant_saved"
    sent = _location(await client.get(wanted))
    assert sent == _login_for(tenant.slug, wanted)
    form = await client.get(sent)
    assert f'name="next" value="{html.escape(wanted)}"' in form.text

    wrong = await client.post(
        "/login",
        data={
            "tenant": tenant.slug,
            "email": user.email,
            "password": "not-the-password",
            "next": wanted,
            "_csrf_token": CSRF_FIELD.search(form.text).group(1),  # type: ignore[union-attr]
        },
    )
    assert wrong.status_code == 401
    assert f'name="next" value="{html.escape(wanted)}"' in wrong.text, "kept for the retry"
    signed_in = await client.post(
        "/login",
        data={
            "tenant": tenant.slug,
            "email": user.email,
            "password": user.password,
            "next": wanted,
            "_csrf_token": await _login_form(client, tenant.slug),
        },
    )
    assert _location(signed_in) == wanted

    for elsewhere in ("https://evil.example/t/x/", "//evil.example/", "/\\evil.example"):
        form = await client.get(f"/t/{tenant.slug}/login?" + urlencode({"next": elsewhere}))
        assert 'name="next"' not in form.text, elsewhere


async def test_logout_ends_the_session(
    client: AsyncTestClient[Any], sqlite_db: Database, factory: TenantFactory
) -> None:
    tenant = await factory.create(sqlite_db, plants=())
    await _web_sign_in(client, tenant, tenant.user(Role.TENANT_ADMIN))
    session_id = client.cookies.get("portal_session")
    assert (await client.get(f"/t/{tenant.slug}/")).status_code == 200

    logged_out = await client.post(
        "/logout", data={"_csrf_token": client.cookies.get("portal_csrf")}
    )
    assert _location(logged_out) == f"/t/{tenant.slug}/login"
    assert _location(await client.get(f"/t/{tenant.slug}/")) == _login_for(
        tenant.slug, f"/t/{tenant.slug}/"
    )

    # The old id must be dead on the server too, not merely forgotten by this browser.
    async with open_client(client.app) as replay:
        replay.cookies.set("portal_session", session_id, domain="testserver.local")
        assert _location(await replay.get(f"/t/{tenant.slug}/")) == _login_for(
            tenant.slug, f"/t/{tenant.slug}/"
        )
