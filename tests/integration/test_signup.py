"""Self-serve sign-up and invitations over HTTP on PostgreSQL, as the application role under
row-level security: a sign-up creates a trialing tenant of its own with its plant and
administrator and mails a verification link that works once and expires; a refused sign-up names
the field and the rule and leaves nothing behind, even when the refusal comes after the tenant
row was written; an administrator invites with a role and plant, the invited person joins by the
mailed link (or over the API) and signs in with that grant, and expired, used and revoked links are
refused; another tenant's invitations answer 404 and a user who is not an administrator gets
403."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update

from infra.db import Database, utcnow
from infra.outbox import OutboxMessage
from infra.settings import Settings
from infra.tenancy import tenant_scope
from portal.app import create_app
from tenants.models import EmailVerification, Invitation, Plant, Role, Tenant, User
from tests.conftest import PostgresDatabase, settings_for
from tests.factories import SeededTenant, TenantFactory, audit_actions, issue_token

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.postgres]

CSRF_FIELD = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')
FIELD_ERROR = re.compile(r'class="field-error" data-field="([a-z_]+)"')
REFUSAL = re.compile(r'data-testid="refusal" data-rule="([a-z_]+)"')
PASSWORD = "Kettle-Harbour-47"
INVITES = "/api/v1/user-invitations"


@dataclasses.dataclass
class Stage:
    settings: Settings
    database: Database
    client: AsyncTestClient[Any]
    factory: TenantFactory


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stage(
    postgres: PostgresDatabase, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stage]:
    settings = settings_for(
        postgres.app_url,
        tmp_path_factory.mktemp("signup") / "var",
        migration_database_url=postgres.owner_url,
        login_rate_per_minute=10_000,
    )
    database = Database.from_settings(settings)
    try:
        async with AsyncTestClient(app=create_app(settings)) as client:
            client.follow_redirects = False
            client.headers["Accept-Language"] = "en"
            yield Stage(settings, database, client, TenantFactory())
    finally:
        await database.dispose()


def _slug() -> str:
    return f"s{uuid.uuid4().hex[:10]}"


def _signup_form(slug: str, **changes: str) -> dict[str, str]:
    return {
        "company_name": "华东化工集团",
        "slug": slug,
        "admin_name": "张三",
        "email": f"admin@{slug}.example",
        "password": PASSWORD,
        "plant_code": "NJ1",
        "plant_name": "南京一厂",
        "timezone": "Asia/Shanghai",
    } | changes


async def _csrf(client: AsyncTestClient[Any], page: str) -> str:
    shown = await client.get(page)
    assert shown.status_code == 200, shown.text
    match = CSRF_FIELD.search(shown.text)
    assert match is not None, shown.text
    return match.group(1)


async def _post_form(
    client: AsyncTestClient[Any], page: str, action: str, form: dict[str, str]
) -> Any:
    """Send a page's form as a browser would, with the CSRF token of the page."""
    return await client.post(action, data={**form, "_csrf_token": await _csrf(client, page)})


async def _sign_in(stage: Stage, slug: str, email: str, password: str) -> None:
    stage.client.cookies.clear()
    response = await _post_form(
        stage.client,
        f"/t/{slug}/login",
        "/login",
        {"tenant": slug, "email": email, "password": password},
    )
    assert response.status_code in (302, 303), response.text


async def _sign_up(stage: Stage, **changes: str) -> tuple[Tenant, dict[str, str]]:
    """A tenant signed up through the page; the browser is left signed in as its admin."""
    stage.client.cookies.clear()
    form = _signup_form(_slug()) | changes
    response = await _post_form(stage.client, "/signup", "/signup", form)
    assert response.status_code in (302, 303), response.text
    assert response.headers["location"] == f"/t/{form['slug']}/admin/users?done=signed_up"
    async with stage.database.session() as session:
        tenant = (
            await session.execute(select(Tenant).where(Tenant.slug == form["slug"]))
        ).scalar_one()
    return tenant, form


async def _mailed_token(stage: Stage, tenant_id: uuid.UUID, kind: str, address: str) -> str:
    """The token in the link of the last mail of this kind queued to the address."""
    async with stage.database.session() as session:
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


async def _user_id(stage: Stage, tenant_id: uuid.UUID, email: str) -> uuid.UUID:
    async with stage.database.session() as session:
        with tenant_scope(tenant_id):
            return (await session.execute(select(User.id).where(User.email == email))).scalar_one()


async def _expire(stage: Stage, tenant_id: uuid.UUID, model: Any, **where: Any) -> None:
    async with stage.database.session() as session:
        with tenant_scope(tenant_id):
            await session.execute(
                update(model)
                .where(*(getattr(model, name) == value for name, value in where.items()))
                .values(expires_at=utcnow() - timedelta(minutes=1))
            )
            await session.commit()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _invite(
    stage: Stage, tenant: SeededTenant, email: str, role: str = "ehs_officer", **extra: Any
) -> Any:
    token = await issue_token(stage.database, tenant.id, tenant.user(Role.TENANT_ADMIN).id)
    return await stage.client.post(
        INVITES, json={"email": email, "role": role, **extra}, headers=_bearer(token)
    )


# --- sign-up ---------------------------------------------------------------------------------


async def test_sign_up_creates_a_trialing_tenant_of_its_own(stage: Stage) -> None:
    other = await stage.factory.create(stage.database, plants=("P1",))
    tenant, form = await _sign_up(stage)

    assert tenant.status == "trialing"
    assert tenant.name == form["company_name"]
    async with stage.database.session() as session:
        with tenant_scope(tenant.id):
            plants = list((await session.execute(select(Plant))).scalars())
            users = list((await session.execute(select(User))).scalars())
    assert [(p.code, p.name, p.timezone) for p in plants] == [("NJ1", "南京一厂", "Asia/Shanghai")]
    assert [(u.email, u.name) for u in users] == [(form["email"], "张三")]
    assert await audit_actions(stage.database, tenant.id) == [
        "tenant.created",
        "plant.created",
        "user.created",
        "membership.granted",
        "email_verification.sent",
        "tenant.signed_up",
    ]

    # The browser is signed in as the administrator, who is told to verify first.
    page = await stage.client.get(f"/t/{tenant.slug}/admin/users?done=signed_up")
    assert page.status_code == 200, page.text
    assert 'data-testid="unverified"' in page.text
    assert 'data-testid="invite"' not in page.text
    assert f'data-email="{form["email"]}"' in page.text

    # The administrator signs in with the password, and holds the tenant-wide admin role.
    signed_in = await stage.client.post(
        "/api/v1/auth/token",
        json={"tenant": tenant.slug, "email": form["email"], "password": PASSWORD},
    )
    assert signed_in.status_code == 200, signed_in.text
    me = await stage.client.get("/api/v1/me/", headers=_bearer(signed_in.json()["access_token"]))
    assert me.json()["user"]["grants"] == [{"role": "tenant_admin", "plant_id": None}]

    # Neither tenant sees the other's users.
    other_token = await issue_token(stage.database, other.id, other.user(Role.TENANT_ADMIN).id)
    listed = await stage.client.get("/api/v1/users/", headers=_bearer(other_token))
    assert form["email"] not in {user["email"] for user in listed.json()}
    async with stage.database.session() as session:
        with tenant_scope(other.id):
            seen = (await session.execute(select(func.count()).select_from(Plant))).scalar_one()
    assert seen == 1


async def test_verification_link_works_once_and_expires(stage: Stage) -> None:
    tenant, form = await _sign_up(stage)
    admin_id = await _user_id(stage, tenant.id, form["email"])
    token = await issue_token(stage.database, tenant.id, admin_id)

    refused = await stage.client.post(
        INVITES,
        json={"email": "colleague@example.cn", "role": "ehs_officer"},
        headers=_bearer(token),
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["errors"][0]["rule"] == "email_verified"

    link = f"/t/{tenant.slug}/verify-email/"
    secret = await _mailed_token(stage, tenant.id, "email_verification", form["email"])
    stage.client.cookies.clear()
    verified = await _post_form(stage.client, link + secret, link + secret, {})
    assert verified.status_code == 200, verified.text
    assert 'data-testid="verified"' in verified.text
    again = await _post_form(stage.client, link + secret, link + secret, {})
    assert again.status_code == 422
    assert REFUSAL.findall(again.text) == ["used"]
    unknown = await _post_form(stage.client, link + "nope", link + "nope", {})
    assert REFUSAL.findall(unknown.text) == ["unknown"]

    allowed = await stage.client.post(
        INVITES,
        json={"email": "colleague@example.cn", "role": "ehs_officer"},
        headers=_bearer(token),
    )
    assert allowed.status_code == 201, allowed.text
    assert await audit_actions(stage.database, tenant.id, "email_verification.") == [
        "email_verification.sent",
        "email_verification.verified",
    ]

    # A link left until it expired is refused, and a new one can be asked for.
    late, late_form = await _sign_up(stage)
    late_secret = await _mailed_token(stage, late.id, "email_verification", late_form["email"])
    await _expire(stage, late.id, EmailVerification)
    link = f"/t/{late.slug}/verify-email/{late_secret}"
    expired = await _post_form(stage.client, link, link, {})
    assert expired.status_code == 422
    assert REFUSAL.findall(expired.text) == ["expired"]
    await _sign_in(stage, late.slug, late_form["email"], PASSWORD)
    users_page = f"/t/{late.slug}/admin/users"
    resent = await _post_form(stage.client, users_page, users_page + "/verification", {})
    assert resent.headers["location"] == users_page + "?done=resent"
    fresh = await _mailed_token(stage, late.id, "email_verification", late_form["email"])
    assert fresh != late_secret
    link = f"/t/{late.slug}/verify-email/{fresh}"
    assert (await _post_form(stage.client, link, link, {})).status_code == 200
    shown = await stage.client.get(users_page)
    assert 'data-testid="unverified"' not in shown.text
    assert 'data-testid="invite"' in shown.text


async def test_a_refusal_after_the_tenant_row_leaves_nothing(stage: Stage) -> None:
    """The time zone is checked when the plant is added, after the tenant was written."""
    slug = _slug()
    response = await stage.client.post(
        "/api/v1/signup", json=_signup_form(slug, timezone="Mars/Olympus")
    )
    assert response.status_code == 422, response.text
    assert [(e["field"], e["rule"]) for e in response.json()["errors"]] == [
        ("timezone", "iana_timezone")
    ]
    async with stage.database.session() as session:
        found = await session.execute(select(Tenant.id).where(Tenant.slug == slug))
    assert found.first() is None


@pytest.mark.parametrize(
    ("changes", "status", "field", "rule"),
    [
        ({"slug": "admin"}, 422, "slug", "reserved"),
        ({"slug": "signup"}, 422, "slug", "reserved"),
        ({"slug": "9lives"}, 422, "slug", "slug"),
        ({"slug": "ab"}, 422, "slug", "slug"),
        ({"slug": "has_underscore"}, 422, "slug", "slug"),
        ({"password": "short1"}, 422, "password", "min_length"),
        ({"password": "password123"}, 422, "password", "common"),
        ({"password": "QWERTYUIOP"}, 422, "password", "common"),
        ({"email": "not-an-address"}, 400, "email", "email"),
        ({"plant_code": "bad code!"}, 400, "plant_code", "code"),
    ],
)
async def test_refused_sign_up_names_the_field_and_creates_nothing(
    stage: Stage, changes: dict[str, str], status: int, field: str, rule: str
) -> None:
    form = _signup_form(_slug()) | changes
    response = await stage.client.post("/api/v1/signup", json=form)
    assert response.status_code == status, response.text
    assert (field, rule) in [(e["field"], e["rule"]) for e in response.json()["errors"]]
    async with stage.database.session() as session:
        found = await session.execute(select(Tenant.id).where(Tenant.slug == form["slug"]))
    assert found.first() is None


async def test_password_equal_to_the_address_and_a_taken_slug_are_refused(stage: Stage) -> None:
    slug = _slug()
    same = await stage.client.post(
        "/api/v1/signup",
        json=_signup_form(slug, email=f"{slug}@x.example", password=f"{slug}@x.example"),
    )
    assert ("password", "personal") in [(e["field"], e["rule"]) for e in same.json()["errors"]]
    same_as_slug = await stage.client.post(
        "/api/v1/signup", json=_signup_form(slug, password=slug.upper())
    )
    assert ("password", "personal") in [
        (e["field"], e["rule"]) for e in same_as_slug.json()["errors"]
    ]

    taken = await stage.factory.create(stage.database, plants=("P1",))
    stage.client.cookies.clear()
    page = await _post_form(
        stage.client, "/signup", "/signup", _signup_form(taken.slug, password="short")
    )
    assert page.status_code == 422
    # Every rule the form breaks is named at its field; the password is never sent back.
    assert set(FIELD_ERROR.findall(page.text)) == {"password"}
    assert 'value="short"' not in page.text
    collision = await _post_form(stage.client, "/signup", "/signup", _signup_form(taken.slug))
    assert collision.status_code == 409
    assert FIELD_ERROR.findall(collision.text) == ["slug"]
    assert f'value="{taken.slug}"' in collision.text
    async with stage.database.session() as session:
        with tenant_scope(taken.id):
            emails = set((await session.execute(select(User.email))).scalars())
            plants = set((await session.execute(select(Plant.code))).scalars())
    assert f"admin@{taken.slug}.example" not in emails
    assert plants == {"P1"}


async def test_sign_up_form_needs_its_csrf_token_and_is_rate_limited(
    stage: Stage, tmp_path_factory: pytest.TempPathFactory
) -> None:
    stage.client.cookies.clear()
    forged = await stage.client.post("/signup", data=_signup_form(_slug()))
    assert forged.status_code == 403

    limited_settings = dataclasses.replace(
        stage.settings, login_rate_per_minute=2, var_dir=tmp_path_factory.mktemp("limited")
    )
    async with AsyncTestClient(app=create_app(limited_settings)) as client:
        answers = [
            (await client.post("/api/v1/signup", json={"slug": "x"})).status_code for _ in range(3)
        ]
    assert answers == [400, 400, 429]


# --- invitations -----------------------------------------------------------------------------


async def test_invited_person_joins_and_signs_in_with_the_grant(stage: Stage) -> None:
    tenant = await stage.factory.create(stage.database, plants=("P1", "P2"))
    admin = tenant.user(Role.TENANT_ADMIN)
    await _sign_in(stage, tenant.slug, admin.email, admin.password)
    users_page = f"/t/{tenant.slug}/admin/users"
    address = f"new.officer@{tenant.slug}.example"
    refused = await _post_form(
        stage.client,
        users_page,
        users_page + "/invite",
        {"email": address, "role": "contractor_admin", "plant_id": str(tenant.plants["P2"])},
    )
    assert refused.status_code == 422
    assert FIELD_ERROR.findall(refused.text) == ["role"]
    assert f'value="{address}"' in refused.text
    assert f'<option value="{tenant.plants["P2"]}" selected>' in refused.text
    sent = await _post_form(
        stage.client,
        users_page,
        users_page + "/invite",
        {"email": address, "role": "ehs_officer", "plant_id": str(tenant.plants["P2"])},
    )
    assert sent.headers["location"] == users_page + "?done=invited"
    listed = await stage.client.get(users_page)
    assert 'data-testid="invitation" data-id=' in listed.text
    assert f'data-email="{address}"' in listed.text

    secret = await _mailed_token(stage, tenant.id, "user_invited", address)
    link = f"/t/{tenant.slug}/invitations/{secret}"
    stage.client.cookies.clear()
    shown = await stage.client.get(link)
    assert shown.status_code == 200, shown.text
    assert 'data-role="ehs_officer"' in shown.text
    assert shown.headers["cache-control"] == "no-store"
    weak = await _post_form(stage.client, link, link, {"name": "", "password": "password123"})
    assert weak.status_code == 422
    assert set(FIELD_ERROR.findall(weak.text)) == {"name", "password"}
    joined = await _post_form(stage.client, link, link, {"name": "李四", "password": PASSWORD})
    assert joined.headers["location"] == f"/t/{tenant.slug}/"
    assert (await stage.client.get(f"/t/{tenant.slug}/")).status_code == 200

    signed_in = await stage.client.post(
        "/api/v1/auth/token",
        json={"tenant": tenant.slug, "email": address, "password": PASSWORD},
    )
    assert signed_in.status_code == 200, signed_in.text
    me = await stage.client.get("/api/v1/me/", headers=_bearer(signed_in.json()["access_token"]))
    assert me.json()["user"]["name"] == "李四"
    assert me.json()["user"]["grants"] == [
        {"role": "ehs_officer", "plant_id": str(tenant.plants["P2"])}
    ]

    stage.client.cookies.clear()
    # The spent link shows no form any more; a replayed form is refused all the same.
    reused = await _post_form(stage.client, "/signup", link, {"name": "王五", "password": PASSWORD})
    assert reused.status_code == 422
    assert REFUSAL.findall(reused.text) == ["used"]
    assert await audit_actions(stage.database, tenant.id, "invitation.") == [
        "invitation.created",
        "invitation.accepted",
    ]


async def test_expired_and_revoked_invitations_are_refused(stage: Stage) -> None:
    tenant = await stage.factory.create(stage.database, plants=("P1",))
    admin_token = await issue_token(stage.database, tenant.id, tenant.user(Role.TENANT_ADMIN).id)
    revoked_address, expired_address = (f"{n}@{tenant.slug}.example" for n in ("r", "e"))
    revoked = await _invite(stage, tenant, revoked_address)
    expired = await _invite(stage, tenant, expired_address, role="guardian")
    assert revoked.status_code == expired.status_code == 201

    undone = await stage.client.post(
        f"{INVITES}/{revoked.json()['id']}/revoke", headers=_bearer(admin_token)
    )
    assert undone.status_code == 200, undone.text
    await _expire(stage, tenant.id, Invitation, id=uuid.UUID(expired.json()["id"]))
    pending = await stage.client.get(INVITES, headers=_bearer(admin_token))
    assert pending.json() == []

    stage.client.cookies.clear()
    for address, rule in ((revoked_address, "revoked"), (expired_address, "expired")):
        link = f"/t/{tenant.slug}/invitations/" + await _mailed_token(
            stage, tenant.id, "user_invited", address
        )
        shown = await stage.client.get(link)
        assert shown.status_code == 422
        assert REFUSAL.findall(shown.text) == [rule]
        assert 'name="password"' not in shown.text
    async with stage.database.session() as session:
        with tenant_scope(tenant.id):
            joined = await session.execute(
                select(User.id).where(User.email.in_([revoked_address, expired_address]))
            )
            assert joined.first() is None
    assert await audit_actions(stage.database, tenant.id, "invitation.") == [
        "invitation.created",
        "invitation.created",
        "invitation.revoked",
    ]


async def test_joining_over_the_api_is_for_the_tenant_of_the_link(stage: Stage) -> None:
    """Under row-level security, with a bearer token of another tenant on the request: the
    public route works in the tenant named in the body, and only there."""
    tenant = await stage.factory.create(stage.database, plants=("P1",))
    other = await stage.factory.create(stage.database, plants=("P1",))
    address = f"api.joiner@{tenant.slug}.example"
    plant = str(tenant.plants["P1"])
    assert (await _invite(stage, tenant, address, "guardian", plant_id=plant)).status_code == 201
    secret = await _mailed_token(stage, tenant.id, "user_invited", address)
    other_token = await issue_token(stage.database, other.id, other.user(Role.TENANT_ADMIN).id)
    body = {"name": "赵六", "password": PASSWORD}

    foreign = await stage.client.post(
        f"{INVITES}/{secret}/accept", json={**body, "tenant": other.slug}
    )
    assert foreign.status_code == 404, foreign.text
    assert [(e["field"], e["rule"]) for e in foreign.json()["errors"]] == [("token", "unknown")]
    joined = await stage.client.post(
        f"{INVITES}/{secret}/accept",
        json={**body, "tenant": tenant.slug},
        headers=_bearer(other_token),
    )
    assert joined.status_code == 201, joined.text
    assert joined.json()["user"]["grants"] == [{"role": "guardian", "plant_id": plant}]
    for tenant_id, expected in ((tenant.id, 1), (other.id, 0)):
        async with stage.database.session() as session:
            with tenant_scope(tenant_id):
                found = await session.execute(
                    select(func.count()).select_from(User).where(User.email == address)
                )
                assert found.scalar_one() == expected
    assert await audit_actions(stage.database, other.id, "invitation.") == []


async def test_invitation_rules(stage: Stage) -> None:
    tenant = await stage.factory.create(
        stage.database, plants=("P1",), users=((Role.TENANT_ADMIN, None), (Role.GUARDIAN, "P1"))
    )
    other = await stage.factory.create(stage.database, plants=("P1",))
    cases = [
        ({"email": "c@x.example", "role": "contractor_worker"}, 422, "role", "host_role"),
        (
            {"email": "a@x.example", "role": "tenant_admin", "plant_id": str(tenant.plants["P1"])},
            422,
            "plant_id",
            "tenant_wide",
        ),
        (
            {"email": "p@x.example", "role": "guardian", "plant_id": str(other.plants["P1"])},
            422,
            "plant_id",
            "exists",
        ),
        (
            {"email": tenant.user(Role.GUARDIAN).email, "role": "guardian"},
            409,
            "email",
            "unique",
        ),
        ({"email": "nope", "role": "guardian"}, 400, "email", "email"),
    ]
    for body, status, field, rule in cases:
        email = body.pop("email")
        response = await _invite(stage, tenant, email, **body)
        assert response.status_code == status, (body, response.text)
        assert (field, rule) in [(e["field"], e["rule"]) for e in response.json()["errors"]]
    assert (await _invite(stage, tenant, "twice@x.example")).status_code == 201
    twice = await _invite(stage, tenant, "TWICE@x.example")
    assert twice.status_code == 409
    assert twice.json()["errors"][0]["rule"] == "pending"


async def test_another_tenants_invitations_answer_404(stage: Stage) -> None:
    tenant = await stage.factory.create(stage.database, plants=("P1",))
    other = await stage.factory.create(stage.database, plants=("P1",))
    invited = await _invite(stage, tenant, f"x@{tenant.slug}.example")
    invitation_id = invited.json()["id"]

    other_admin = other.user(Role.TENANT_ADMIN)
    other_token = await issue_token(stage.database, other.id, other_admin.id)
    assert (await stage.client.get(INVITES, headers=_bearer(other_token))).json() == []
    api_revoke = await stage.client.post(
        f"{INVITES}/{invitation_id}/revoke", headers=_bearer(other_token)
    )
    assert api_revoke.status_code == 404

    await _sign_in(stage, other.slug, other_admin.email, other_admin.password)
    own_page = f"/t/{other.slug}/admin/users"
    page_revoke = await _post_form(
        stage.client, own_page, f"/t/{other.slug}/admin/invitations/{invitation_id}/revoke", {}
    )
    assert page_revoke.status_code == 404
    foreign = await stage.client.get(f"/t/{tenant.slug}/admin/users")
    assert foreign.status_code != 200
    assert f"x@{tenant.slug}.example" not in foreign.text

    admin_token = await issue_token(stage.database, tenant.id, tenant.user(Role.TENANT_ADMIN).id)
    pending = await stage.client.get(INVITES, headers=_bearer(admin_token))
    assert [row["id"] for row in pending.json()] == [invitation_id]


async def test_only_tenant_administrators_invite(stage: Stage) -> None:
    tenant = await stage.factory.create(
        stage.database, plants=("P1",), users=((Role.TENANT_ADMIN, None), (Role.EHS_OFFICER, None))
    )
    officer = tenant.user(Role.EHS_OFFICER)
    token = await issue_token(stage.database, tenant.id, officer.id)
    refused = await stage.client.post(
        INVITES, json={"email": "y@x.example", "role": "guardian"}, headers=_bearer(token)
    )
    assert refused.status_code == 403
    await _sign_in(stage, tenant.slug, officer.email, officer.password)
    assert (await stage.client.get(f"/t/{tenant.slug}/admin/users")).status_code == 403
    dashboard = await stage.client.get(f"/t/{tenant.slug}/")
    assert 'data-testid="users-link"' not in dashboard.text
    async with stage.database.session() as session:
        with tenant_scope(tenant.id):
            count = (
                await session.execute(select(func.count()).select_from(Invitation))
            ).scalar_one()
    assert count == 0
