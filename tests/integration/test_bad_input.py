"""Bad requests never cause a 500: each answers a 4xx whose JSON names the field and the rule, and
leaves nothing behind in the database.

The table's cases share one tenant, database and app: each case asserts that it stored nothing,
so sharing cannot hide a leak, and it keeps the table fast enough to grow."""

from __future__ import annotations

import dataclasses
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from litestar import get
from litestar.testing import AsyncTestClient

from infra.audit import AuditEntry
from infra.db import Database
from infra.settings import Settings
from portal.app import create_app
from tenants.models import ApiToken, Membership, Plant, Role, User
from tests.conftest import settings_for
from tests.factories import SeededTenant, TenantFactory, count_rows, issue_token

pytestmark = pytest.mark.asyncio(loop_scope="module")

SLUG = "bad-input"
# The factory names users after their role, index and tenant slug.
ADMIN_EMAIL = f"tenant_admin.0@{SLUG}.example"
TOKEN = "/api/v1/auth/token"
PLANTS = "/api/v1/plants"
USERS = "/api/v1/users"
STORED_MODELS = (Plant, User, Membership, ApiToken, AuditEntry)
_NO_JSON = object()


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    status: int
    field: str
    rule: str
    json: Any = _NO_JSON
    content: bytes | None = None
    content_type: str = "application/json"

    def request_kwargs(self) -> dict[str, Any]:
        if self.json is not _NO_JSON:
            return {"json": self.json}
        if self.content is not None:
            return {"content": self.content, "headers": {"content-type": self.content_type}}
        return {}


def token_body(**changes: Any) -> dict[str, Any]:
    return {"tenant": SLUG, "email": ADMIN_EMAIL, "password": "irrelevant", **changes}


def plant_body(**changes: Any) -> dict[str, Any]:
    return {"code": "NEW", "name": "新厂区", **changes}


def user_body(**changes: Any) -> dict[str, Any]:
    return {
        "email": "new.user@example.com",
        "name": "新用户",
        "password": "long-enough-1",
        **changes,
    }


def without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


CASES = [
    # POST /api/v1/auth/token
    Case("token-malformed-json", "POST", TOKEN, 400, "body", "json", content=b'{"tenant": "x",'),
    Case("token-invalid-utf8", "POST", TOKEN, 400, "body", "json", content=b'{"a": "\xff\xfe"}'),
    Case(
        "token-form-encoded",
        "POST",
        TOKEN,
        400,
        "body",
        "json",
        content=b"tenant=bad-input",
        content_type="application/x-www-form-urlencoded",
    ),
    Case("token-empty-body", "POST", TOKEN, 400, "body", "required", content=b""),
    Case("token-no-body", "POST", TOKEN, 400, "body", "required"),
    Case("token-array", "POST", TOKEN, 400, "body", "type", json=[token_body()]),
    Case("token-null", "POST", TOKEN, 400, "body", "type", content=b"null"),
    Case("token-number-for-slug", "POST", TOKEN, 400, "tenant", "type", json=token_body(tenant=1)),
    Case(
        "token-unknown-field",
        "POST",
        TOKEN,
        400,
        "remember_me",
        "unknown_field",
        json=token_body(remember_me=True),
    ),
    Case(
        "token-missing-password",
        "POST",
        TOKEN,
        400,
        "password",
        "required",
        json=without(token_body(), "password"),
    ),
    Case(
        "token-empty-password",
        "POST",
        TOKEN,
        400,
        "password",
        "min_length",
        json=token_body(password=""),
    ),
    # Argon2 on a megabyte of password would be a cheap denial of service.
    Case(
        "token-long-password",
        "POST",
        TOKEN,
        400,
        "password",
        "max_length",
        json=token_body(password="p" * 257),
    ),
    Case(
        "token-long-email",
        "POST",
        TOKEN,
        400,
        "email",
        "max_length",
        json=token_body(email="a" * 290 + "@example.com"),
    ),
    Case(
        "token-invalid-email",
        "POST",
        TOKEN,
        400,
        "email",
        "email",
        json=token_body(email="not-an-email"),
    ),
    Case(
        "token-email-with-space",
        "POST",
        TOKEN,
        400,
        "email",
        "email",
        json=token_body(email="a b@example.com"),
    ),
    Case(
        "token-invalid-slug",
        "POST",
        TOKEN,
        400,
        "tenant",
        "slug",
        json=token_body(tenant="Bad Slug!"),
    ),
    Case("token-long-slug", "POST", TOKEN, 400, "tenant", "slug", json=token_body(tenant="a" * 41)),
    Case(
        "token-long-name", "POST", TOKEN, 400, "name", "max_length", json=token_body(name="n" * 101)
    ),
    # POST /api/v1/plants
    Case("plant-malformed-json", "POST", PLANTS, 400, "body", "json", content=b"{code: P9}"),
    Case(
        "plant-nan",
        "POST",
        PLANTS,
        400,
        "body",
        "json",
        content=b'{"code": "P9", "name": "x", "latitude": NaN, "longitude": 1}',
    ),
    Case("plant-empty-body", "POST", PLANTS, 400, "body", "required", content=b""),
    Case("plant-array", "POST", PLANTS, 400, "body", "type", json=[plant_body()]),
    Case("plant-number-for-name", "POST", PLANTS, 400, "name", "type", json=plant_body(name=42)),
    Case(
        "plant-string-for-latitude",
        "POST",
        PLANTS,
        400,
        "latitude",
        "type",
        json=plant_body(latitude="north", longitude=121.5),
    ),
    Case(
        "plant-bool-for-longitude",
        "POST",
        PLANTS,
        400,
        "longitude",
        "type",
        json=plant_body(latitude=31.2, longitude=True),
    ),
    Case(
        "plant-unknown-field",
        "POST",
        PLANTS,
        400,
        "tenant_id",
        "unknown_field",
        json=plant_body(tenant_id=str(uuid.uuid4())),
    ),
    Case(
        "plant-missing-code",
        "POST",
        PLANTS,
        400,
        "code",
        "required",
        json=without(plant_body(), "code"),
    ),
    Case(
        "plant-long-name",
        "POST",
        PLANTS,
        400,
        "name",
        "max_length",
        json=plant_body(name="厂" * 300),
    ),
    Case("plant-empty-name", "POST", PLANTS, 400, "name", "min_length", json=plant_body(name="")),
    Case("plant-invalid-code", "POST", PLANTS, 400, "code", "code", json=plant_body(code="P 9!")),
    Case("plant-long-code", "POST", PLANTS, 400, "code", "code", json=plant_body(code="C" * 33)),
    Case(
        "plant-latitude-91",
        "POST",
        PLANTS,
        400,
        "latitude",
        "maximum",
        json=plant_body(latitude=91, longitude=0),
    ),
    Case(
        "plant-latitude-minus-91",
        "POST",
        PLANTS,
        400,
        "latitude",
        "minimum",
        json=plant_body(latitude=-91, longitude=0),
    ),
    Case(
        "plant-longitude-minus-181",
        "POST",
        PLANTS,
        400,
        "longitude",
        "minimum",
        json=plant_body(latitude=0, longitude=-181),
    ),
    Case(
        "plant-longitude-181",
        "POST",
        PLANTS,
        400,
        "longitude",
        "maximum",
        json=plant_body(latitude=0, longitude=181),
    ),
    # Litestar parses the body untyped before validating it, so a number too large for a float
    # is caught before any field is known: the answer may only name the body.
    Case(
        "plant-latitude-overflow",
        "POST",
        PLANTS,
        400,
        "body",
        "range",
        content=b'{"code": "P9", "name": "x", "latitude": 1e999, "longitude": 1}',
    ),
    Case(
        "plant-longitude-overflow",
        "POST",
        PLANTS,
        400,
        "body",
        "range",
        content=b'{"code": "P9", "name": "x", "latitude": 1, "longitude": -1e999}',
    ),
    Case(
        "plant-latitude-without-longitude",
        "POST",
        PLANTS,
        422,
        "longitude",
        "pair",
        json=plant_body(latitude=31.2),
    ),
    Case(
        "plant-longitude-without-latitude",
        "POST",
        PLANTS,
        422,
        "latitude",
        "pair",
        json=plant_body(longitude=121.5),
    ),
    Case(
        "plant-unknown-timezone",
        "POST",
        PLANTS,
        422,
        "timezone",
        "iana_timezone",
        json=plant_body(timezone="Mars/Olympus_Mons"),
    ),
    # ZoneInfo reads files: a path in the name must be refused, not opened.
    Case(
        "plant-timezone-path",
        "POST",
        PLANTS,
        422,
        "timezone",
        "iana_timezone",
        json=plant_body(timezone="../../../etc/passwd"),
    ),
    Case(
        "plant-empty-timezone",
        "POST",
        PLANTS,
        400,
        "timezone",
        "min_length",
        json=plant_body(timezone=""),
    ),
    Case(
        "plant-long-timezone",
        "POST",
        PLANTS,
        400,
        "timezone",
        "max_length",
        json=plant_body(timezone="Asia/" + "X" * 60),
    ),
    Case("plant-duplicate-code", "POST", PLANTS, 409, "code", "unique", json=plant_body(code="P1")),
    # POST /api/v1/users
    Case("user-malformed-json", "POST", USERS, 400, "body", "json", content=b'{"email": }'),
    Case("user-empty-body", "POST", USERS, 400, "body", "required", content=b""),
    Case("user-array", "POST", USERS, 400, "body", "type", json=[]),
    Case(
        "user-missing-email",
        "POST",
        USERS,
        400,
        "email",
        "required",
        json=without(user_body(), "email"),
    ),
    Case(
        "user-long-email",
        "POST",
        USERS,
        400,
        "email",
        "max_length",
        json=user_body(email="u" * 290 + "@example.com"),
    ),
    Case(
        "user-invalid-email",
        "POST",
        USERS,
        400,
        "email",
        "email",
        json=user_body(email="user@@example"),
    ),
    Case(
        "user-long-name", "POST", USERS, 400, "name", "max_length", json=user_body(name="名" * 300)
    ),
    Case(
        "user-short-password",
        "POST",
        USERS,
        400,
        "password",
        "min_length",
        json=user_body(password="short-9ch"),
    ),
    Case(
        "user-number-for-password",
        "POST",
        USERS,
        400,
        "password",
        "type",
        json=user_body(password=12345678901),
    ),
    Case(
        "user-unknown-field",
        "POST",
        USERS,
        400,
        "is_superuser",
        "unknown_field",
        json=user_body(is_superuser=True),
    ),
    Case(
        "user-grants-not-a-list", "POST", USERS, 400, "grants", "type", json=user_body(grants="x")
    ),
    Case(
        "user-bad-role",
        "POST",
        USERS,
        400,
        "grants[0].role",
        "enum",
        json=user_body(grants=[{"role": "superuser"}]),
    ),
    Case(
        "user-grant-unknown-field",
        "POST",
        USERS,
        400,
        "grants[0].tenant_id",
        "unknown_field",
        json=user_body(grants=[{"role": "guardian", "tenant_id": str(uuid.uuid4())}]),
    ),
    Case(
        "user-grant-malformed-plant",
        "POST",
        USERS,
        400,
        "grants[0].plant_id",
        "uuid",
        json=user_body(grants=[{"role": "guardian", "plant_id": "P1"}]),
    ),
    # The user row is flushed before the grant fails: the whole request must roll back.
    Case(
        "user-grant-unknown-plant",
        "POST",
        USERS,
        422,
        "grants[1].plant_id",
        "exists",
        json=user_body(
            grants=[{"role": "guardian"}, {"role": "guardian", "plant_id": str(uuid.uuid4())}]
        ),
    ),
    Case(
        "user-too-many-grants",
        "POST",
        USERS,
        400,
        "grants",
        "max_items",
        json=user_body(grants=[{"role": "guardian"}] * 21),
    ),
    Case("user-invalid-phone", "POST", USERS, 400, "phone", "phone", json=user_body(phone="call")),
    Case(
        "user-unknown-locale", "POST", USERS, 400, "locale", "pattern", json=user_body(locale="fr")
    ),
    # Addresses are compared case-insensitively, so this is the admin again.
    Case(
        "user-duplicate-email",
        "POST",
        USERS,
        409,
        "email",
        "unique",
        json=user_body(email=ADMIN_EMAIL.upper()),
    ),
    # GET /api/v1/plants/{id} and /api/v1/users/{id}
    Case("plant-id-not-a-uuid", "GET", f"{PLANTS}/not-a-uuid", 422, "plant_id", "uuid"),
    Case("plant-id-number", "GET", f"{PLANTS}/1", 422, "plant_id", "uuid"),
    Case("plant-id-dot-dot", "GET", f"{PLANTS}/%2E%2E", 422, "plant_id", "uuid"),
    Case("plant-id-overlong", "GET", f"{PLANTS}/{'a' * 100}", 400, "plant_id", "max_length"),
    Case("user-id-not-a-uuid", "GET", f"{USERS}/not-a-uuid", 422, "user_id", "uuid"),
]


@dataclasses.dataclass
class Api:
    client: AsyncTestClient[Any]
    database: Database
    tenant: SeededTenant
    headers: dict[str, str]


@asynccontextmanager
async def open_api(template: Path, directory: Path) -> AsyncIterator[Api]:
    database_file = directory / "portal.db"
    shutil.copyfile(template, database_file)
    # The table sends dozens of sign-ins from one client; the rate limit has its own test.
    settings = settings_for(
        f"sqlite+aiosqlite:///{database_file}", directory / "var", login_rate_per_minute=10_000
    )
    database = Database.from_settings(settings)
    try:
        tenant = await TenantFactory().create(database, slug=SLUG, plants=("P1",))
        token = await issue_token(database, tenant.id, tenant.user(Role.TENANT_ADMIN).id)
        async with AsyncTestClient(app=create_app(settings)) as client:
            yield Api(client, database, tenant, {"Authorization": f"Bearer {token}"})
    finally:
        await database.dispose()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Api]:
    async with open_api(sqlite_template, tmp_path_factory.mktemp("bad-input")) as shared:
        yield shared


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_bad_request_names_field_and_rule(case: Case, api: Api) -> None:
    before = await count_rows(api.database, api.tenant.id, *STORED_MODELS)
    kwargs = case.request_kwargs()
    headers = {**api.headers, **kwargs.pop("headers", {})}

    response = await api.client.request(case.method, case.path, headers=headers, **kwargs)

    assert response.status_code < 500, response.text
    assert response.status_code == case.status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"status_code", "detail", "errors"}, body
    assert body["status_code"] == case.status
    assert isinstance(body["detail"], str) and body["detail"]
    problems = [(error["field"], error["rule"]) for error in body["errors"]]
    assert (case.field, case.rule) in problems, body["errors"]
    assert all(isinstance(error["message"], str) and error["message"] for error in body["errors"])
    assert await count_rows(api.database, api.tenant.id, *STORED_MODELS) == before


async def test_rejections_are_translated(api: Api) -> None:
    response = await api.client.post(
        PLANTS,
        json=plant_body(latitude=91, longitude=0),
        headers={**api.headers, "Accept-Language": "en"},
    )
    assert response.status_code == 400
    # The admin's own locale (zh_CN) wins over the browser's list for a signed-in user.
    assert response.json()["detail"] == "请求内容有误。"
    anonymous = await api.client.post(
        TOKEN, json=token_body(email="nope"), headers={"Accept-Language": "en"}
    )
    assert anonymous.json()["detail"] == "The request is not valid."
    assert anonymous.json()["errors"] == [
        {"field": "email", "rule": "email", "message": "Must be a valid e-mail address."}
    ]


async def test_valid_requests_still_pass(sqlite_template: Path, tmp_path: Path) -> None:
    """The table above is only meaningful if the same bodies, made valid, are accepted."""
    async with open_api(sqlite_template, tmp_path) as api:
        await _create_plant_and_user(api)


async def _create_plant_and_user(api: Api) -> None:
    plant = await api.client.post(
        PLANTS, json=plant_body(latitude=31.2, longitude=121.5), headers=api.headers
    )
    assert plant.status_code == 201, plant.text
    user = await api.client.post(
        USERS,
        json=user_body(grants=[{"role": "guardian", "plant_id": plant.json()["id"]}]),
        headers=api.headers,
    )
    assert user.status_code == 201, user.text
    assert user.json()["grants"] == [{"role": "guardian", "plant_id": plant.json()["id"]}]
    fetched = await api.client.get(f"{PLANTS}/{plant.json()['id']}", headers=api.headers)
    assert fetched.status_code == 200
    counts = await count_rows(api.database, api.tenant.id, Plant, User)
    assert counts == {"plants": 2, "users": 2}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/nope", 404),
        ("GET", "/api/v2/plants", 404),
        ("PUT", PLANTS, 405),
        ("DELETE", f"{PLANTS}/6fce49f2-1c99-4f46-9688-2c367f8d451c", 405),
        ("PATCH", TOKEN, 405),
        # A slash inside an id cannot match the one-segment id route: it is an unknown route.
        ("GET", f"{PLANTS}/..%2Fetc", 404),
        ("GET", f"{PLANTS}/..%2F..%2Fetc%2Fpasswd", 404),
    ],
)
async def test_unknown_api_routes_answer_json(
    api: Api, method: str, path: str, status: int
) -> None:
    response = await api.client.request(method, path, headers=api.headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status_code"] == status
    assert isinstance(body["detail"], str) and body["detail"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nope", 404),
        ("GET", "/t/no-such-tenant/login", 404),
        ("GET", "/lang/fr", 404),
        ("PUT", "/login", 405),
        ("DELETE", "/logout", 405),
    ],
)
async def test_unknown_pages_answer_html(api: Api, method: str, path: str, status: int) -> None:
    response = await api.client.request(method, path)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert f"<h1>{status}</h1>" in response.text
    assert "Traceback" not in response.text


async def test_our_own_decode_errors_still_answer_500(sqlite_settings: Settings) -> None:
    """Invalid UTF-8 in a request body is the client's fault (400); the same error raised by
    server code is a bug and must not be passed off as the client's."""

    @get("/api/v1/_decode_bug", sync_to_thread=False)
    def decode_bug() -> str:
        return b"\xff".decode()

    app = create_app(sqlite_settings)
    app.register(decode_bug)
    async with AsyncTestClient(app=app) as client:
        response = await client.get("/api/v1/_decode_bug")
    assert response.status_code == 500
    assert response.json() == {"status_code": 500, "detail": "系统内部出错，请稍后再试。"}
