"""Joining by invitation over the JSON API, on SQLite: the link's offer is shown to anybody who
holds it, accepting creates the user with the invitation's grant exactly like the page does, a
link that cannot be used answers 404 naming the rule, a weak password is refused naming the
field and the rule, and accepting is rate limited like signing in.

A tenant that is read-only for billing still lets people into the account: the administrator
verifies the e-mail address (with a new link too), and an invitation sent before the bill went
unpaid is accepted on the page and over the API, while other writes answer 402."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update

from infra.db import Database, utcnow
from infra.outbox import OutboxMessage
from infra.settings import Settings
from infra.tenancy import tenant_scope
from portal.app import create_app
from tenants.models import Invitation, Role, Tenant, TenantStatus, User
from tests.factories import SeededTenant, TenantFactory, audit_actions, issue_token

INVITES = "/api/v1/user-invitations"
PASSWORD = "Kettle-Harbour-47"
CSRF_FIELD = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')


@pytest.fixture
async def client(sqlite_settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=create_app(sqlite_settings)) as test_client:
        test_client.follow_redirects = False
        test_client.headers["Accept-Language"] = "en"
        yield test_client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _mailed_token(database: Database, tenant_id: uuid.UUID, kind: str, address: str) -> str:
    """The token in the link of the last mail of this kind queued to the address."""
    async with database.session() as session:
        with tenant_scope(tenant_id):
            rows = (
                await session.execute(
                    select(OutboxMessage)
                    .where(OutboxMessage.topic == "notification")
                    .order_by(OutboxMessage.created_at)
                )
            ).scalars()
            links = [
                row.payload["context"]["url"]
                for row in rows
                if row.payload["kind"] == kind and row.payload["recipient"] == address
            ]
    assert links, f"no {kind} mail to {address}"
    return links[-1].rsplit("/", 1)[1]


async def _invite(
    client: AsyncTestClient[Litestar],
    database: Database,
    tenant: SeededTenant,
    email: str,
    **extra: Any,
) -> tuple[str, str]:
    """Invite through the administrators' API; the invitation's id and the mailed token."""
    token = await issue_token(database, tenant.id, tenant.user(Role.TENANT_ADMIN).id)
    sent = await client.post(
        INVITES, json={"email": email, "role": "ehs_officer", **extra}, headers=_bearer(token)
    )
    assert sent.status_code == 201, sent.text
    return sent.json()["id"], await _mailed_token(database, tenant.id, "user_invited", email)


def _rules(response: Any) -> list[tuple[str, str]]:
    return [(error["field"], error["rule"]) for error in response.json()["errors"]]


async def _users_named(database: Database, tenant_id: uuid.UUID, email: str) -> list[str]:
    async with database.session() as session:
        with tenant_scope(tenant_id):
            return list(
                (await session.execute(select(User.name).where(User.email == email))).scalars()
            )


async def test_an_invitation_is_shown_and_accepted_over_the_api(
    client: AsyncTestClient[Litestar], sqlite_db: Database, factory: TenantFactory
) -> None:
    tenant = await factory.create(sqlite_db, plants=("P1", "P2"))
    other = await factory.create(sqlite_db, plants=("P1",))
    address = f"new.officer@{tenant.slug}.example"
    _id, secret = await _invite(
        client, sqlite_db, tenant, address, plant_id=str(tenant.plants["P2"])
    )
    link = f"{INVITES}/{secret}"

    shown = await client.get(link, params={"tenant": tenant.slug})
    assert shown.status_code == 200, shown.text
    assert shown.headers["cache-control"] == "no-store"
    offer = shown.json()
    assert offer.pop("expires_at")
    assert offer == {
        "tenant_slug": tenant.slug,
        "tenant_name": f"测试集团 {tenant.slug}",
        "email": address,
        "role": "ehs_officer",
        "plant_id": str(tenant.plants["P2"]),
        "plant_name": "P2 厂区",
    }
    # The token means nothing in another tenant.
    elsewhere = await client.get(link, params={"tenant": other.slug})
    assert elsewhere.status_code == 404
    assert _rules(elsewhere) == [("token", "unknown")]
    nowhere = await client.get(link, params={"tenant": "no-such-tenant"})
    assert nowhere.status_code == 404
    assert nowhere.json()["detail"] == "Tenant not found."

    # The sign-up's password rules, against the invited address; nothing is created.
    for password, rule in (
        ("short-1", "min_length"),
        ("password123", "common"),
        (address.upper(), "personal"),
    ):
        weak = await client.post(
            f"{link}/accept", json={"tenant": tenant.slug, "name": "李四", "password": password}
        )
        assert weak.status_code == 422, weak.text
        assert _rules(weak) == [("password", rule)], password
    blank = await client.post(
        f"{link}/accept", json={"tenant": tenant.slug, "name": "  ", "password": PASSWORD}
    )
    assert _rules(blank) == [("name", "required")]
    assert await _users_named(sqlite_db, tenant.id, address) == []

    joined = await client.post(
        f"{link}/accept", json={"tenant": tenant.slug, "name": " 李四 ", "password": PASSWORD}
    )
    assert joined.status_code == 201, joined.text
    summary = joined.json()
    assert "access_token" not in summary
    assert summary["tenant_slug"] == tenant.slug
    assert summary["tenant_id"] == str(tenant.id)
    assert (summary["user"]["email"], summary["user"]["name"]) == (address, "李四")
    assert summary["user"]["grants"] == [
        {"role": "ehs_officer", "plant_id": str(tenant.plants["P2"])}
    ]
    assert await _users_named(sqlite_db, tenant.id, address) == ["李四"]

    # The new user signs in like anybody else, with the invitation's grant.
    signed_in = await client.post(
        "/api/v1/auth/token",
        json={"tenant": tenant.slug, "email": address, "password": PASSWORD},
    )
    assert signed_in.status_code == 200, signed_in.text
    me = await client.get("/api/v1/me/", headers=_bearer(signed_in.json()["access_token"]))
    assert me.json()["user"] == summary["user"]

    # The link is spent, for the API and for the page.
    again = await client.post(
        f"{link}/accept", json={"tenant": tenant.slug, "name": "王五", "password": PASSWORD}
    )
    assert again.status_code == 404
    assert _rules(again) == [("token", "used")]
    assert _rules(await client.get(link, params={"tenant": tenant.slug})) == [("token", "used")]
    page = await client.get(f"/t/{tenant.slug}/invitations/{secret}")
    assert 'data-rule="used"' in page.text
    assert await audit_actions(sqlite_db, tenant.id, "invitation.") == [
        "invitation.created",
        "invitation.accepted",
    ]


async def test_unknown_revoked_and_expired_links_answer_404_naming_the_rule(
    client: AsyncTestClient[Litestar], sqlite_db: Database, factory: TenantFactory
) -> None:
    tenant = await factory.create(sqlite_db, plants=("P1",))
    admin_token = await issue_token(sqlite_db, tenant.id, tenant.user(Role.TENANT_ADMIN).id)
    revoked_id, revoked = await _invite(client, sqlite_db, tenant, "r@x.example")
    expired_id, expired = await _invite(client, sqlite_db, tenant, "e@x.example")
    undone = await client.post(f"{INVITES}/{revoked_id}/revoke", headers=_bearer(admin_token))
    assert undone.status_code == 200, undone.text
    async with sqlite_db.session() as session:
        with tenant_scope(tenant.id):
            await session.execute(
                update(Invitation)
                .where(Invitation.id == uuid.UUID(expired_id))
                .values(expires_at=utcnow() - timedelta(minutes=1))
            )
            await session.commit()

    body = {"tenant": tenant.slug, "name": "李四", "password": PASSWORD}
    for token, rule in (("nope", "unknown"), (revoked, "revoked"), (expired, "expired")):
        shown = await client.get(f"{INVITES}/{token}", params={"tenant": tenant.slug})
        assert shown.status_code == 404, shown.text
        assert _rules(shown) == [("token", rule)]
        assert shown.json()["errors"][0]["message"]
        accepted = await client.post(f"{INVITES}/{token}/accept", json=body)
        assert accepted.status_code == 404, accepted.text
        assert _rules(accepted) == [("token", rule)]
    for address in ("r@x.example", "e@x.example"):
        assert await _users_named(sqlite_db, tenant.id, address) == []


async def test_joining_over_the_api_is_rate_limited_like_signing_in(
    sqlite_settings: Settings, sqlite_db: Database, factory: TenantFactory
) -> None:
    tenant = await factory.create(sqlite_db, plants=("P1",))
    admin_token = await issue_token(sqlite_db, tenant.id, tenant.user(Role.TENANT_ADMIN).id)
    limited = dataclasses.replace(sqlite_settings, login_rate_per_minute=2)
    body = {"tenant": tenant.slug, "name": "李四", "password": PASSWORD}
    async with AsyncTestClient(app=create_app(limited)) as client:
        # An administrator revoking invitations is not signing in.
        revokes = [
            (
                await client.post(f"{INVITES}/{uuid.uuid4()}/revoke", headers=_bearer(admin_token))
            ).status_code
            for _ in range(3)
        ]
        joins = [
            (await client.post(f"{INVITES}/nope/accept", json=body)).status_code for _ in range(3)
        ]
    assert revokes == [404, 404, 404]
    assert joins == [404, 404, 429]


# --- a tenant that is read-only for billing ----------------------------------------------------


@pytest.fixture
async def billing_client(sqlite_settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    settings = dataclasses.replace(
        sqlite_settings,
        stripe_secret_key="sk_test_portal",
        stripe_webhook_secret="whsec_test_portal",
        billing_plans=json.dumps({"starter": {"price": "price_starter", "max_plants": 5}}),
    )
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        test_client.follow_redirects = False
        test_client.headers["Accept-Language"] = "en"
        yield test_client


async def _make_read_only(database: Database, tenant_id: uuid.UUID) -> None:
    async with database.session() as session:
        await session.execute(
            update(Tenant).where(Tenant.id == tenant_id).values(status=TenantStatus.READ_ONLY.value)
        )
        await session.commit()


async def _post_form(
    client: AsyncTestClient[Litestar], page: str, action: str, form: dict[str, str]
) -> Any:
    """Send a page's form as a browser would, with the CSRF token of the page."""
    shown = await client.get(page)
    assert shown.status_code == 200, shown.text
    match = CSRF_FIELD.search(shown.text)
    assert match is not None, shown.text
    return await client.post(action, data={**form, "_csrf_token": match.group(1)})


async def _writes_are_refused(
    client: AsyncTestClient[Litestar], database: Database, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    """The tenant really is read-only: an ordinary write answers 402."""
    token = await issue_token(database, tenant_id, user_id)
    refused = await client.post(
        "/api/v1/plants", json={"code": "P9", "name": "九厂"}, headers=_bearer(token)
    )
    assert refused.status_code == 402, refused.text
    assert _rules(refused) == [("billing", "read_only")]


async def test_a_read_only_tenants_administrator_verifies_the_address(
    billing_client: AsyncTestClient[Litestar], sqlite_db: Database
) -> None:
    slug = f"s{uuid.uuid4().hex[:10]}"
    email = f"admin@{slug}.example"
    signed_up = await billing_client.post(
        "/api/v1/signup",
        json={
            "company_name": "华东化工集团",
            "slug": slug,
            "admin_name": "张三",
            "email": email,
            "password": PASSWORD,
            "plant_code": "NJ1",
            "plant_name": "南京一厂",
        },
    )
    assert signed_up.status_code == 201, signed_up.text
    tenant_id = uuid.UUID(signed_up.json()["tenant_id"])
    admin_id = uuid.UUID(signed_up.json()["admin_user_id"])
    first = await _mailed_token(sqlite_db, tenant_id, "email_verification", email)
    await _make_read_only(sqlite_db, tenant_id)
    await _writes_are_refused(billing_client, sqlite_db, tenant_id, admin_id)

    # A new link, asked for on the users page, and then the address verified with it.
    signed_in = await _post_form(
        billing_client,
        f"/t/{slug}/login",
        "/login",
        {"tenant": slug, "email": email, "password": PASSWORD},
    )
    assert signed_in.status_code in (302, 303), signed_in.text
    users_page = f"/t/{slug}/admin/users"
    resent = await _post_form(billing_client, users_page, users_page + "/verification", {})
    assert resent.headers["location"] == users_page + "?done=resent", resent.text
    fresh = await _mailed_token(sqlite_db, tenant_id, "email_verification", email)
    assert fresh != first
    link = f"/t/{slug}/verify-email/{fresh}"
    verified = await _post_form(billing_client, link, link, {})
    assert verified.status_code == 200, verified.text
    assert 'data-testid="verified"' in verified.text
    assert await audit_actions(sqlite_db, tenant_id, "email_verification.") == [
        "email_verification.sent",
        "email_verification.sent",
        "email_verification.verified",
    ]


async def test_a_read_only_tenant_still_takes_in_invited_people(
    billing_client: AsyncTestClient[Litestar], sqlite_db: Database, factory: TenantFactory
) -> None:
    tenant = await factory.create(sqlite_db, plants=("P1",))
    on_page, on_api = (f"{name}@{tenant.slug}.example" for name in ("page", "api"))
    _id, page_secret = await _invite(billing_client, sqlite_db, tenant, on_page)
    _id, api_secret = await _invite(billing_client, sqlite_db, tenant, on_api)
    await _make_read_only(sqlite_db, tenant.id)
    await _writes_are_refused(
        billing_client, sqlite_db, tenant.id, tenant.user(Role.TENANT_ADMIN).id
    )

    link = f"/t/{tenant.slug}/invitations/{page_secret}"
    joined = await _post_form(billing_client, link, link, {"name": "李四", "password": PASSWORD})
    assert joined.status_code in (302, 303), joined.text
    assert joined.headers["location"] == f"/t/{tenant.slug}/"
    billing_client.cookies.clear()
    accepted = await billing_client.post(
        f"{INVITES}/{api_secret}/accept",
        json={"tenant": tenant.slug, "name": "王五", "password": PASSWORD},
    )
    assert accepted.status_code == 201, accepted.text
    assert await _users_named(sqlite_db, tenant.id, on_page) == ["李四"]
    assert await _users_named(sqlite_db, tenant.id, on_api) == ["王五"]
