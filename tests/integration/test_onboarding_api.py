"""Admission over HTTP on PostgreSQL as the application role: every new route keeps tenants and
contractor companies apart (another's ids answer 404 and change nothing), bad input answers a
4xx naming the field and the rule and stores nothing, and the whole journey works end to end
without an ID number ever leaving the server unmasked."""

from __future__ import annotations

import dataclasses
import io
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient
from PIL import Image
from sqlalchemy import select

from infra.audit import AuditEntry
from infra.db import Database
from infra.settings import Settings
from infra.tenancy import tenant_scope
from infra.uploads import StoredObject
from onboarding.clock import plant_today
from onboarding.models import (
    Certificate,
    Contractor,
    ContractorDocument,
    ContractorInvitation,
    ContractorMember,
    OnboardingSettings,
    Worker,
)
from onboarding.validators import id_check_char
from portal.app import create_app
from tenants.models import Role, User
from tests.conftest import PostgresDatabase, settings_for
from tests.factories import SeededTenant, TenantFactory, count_rows, issue_token
from tests.onboarding_factories import (
    Company,
    OnboardingFactory,
    host_viewer,
    make_id_number,
    make_uscc,
    roster_xlsx,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.postgres]

API = "/api/v1"
HOSTS = ((Role.TENANT_ADMIN, None), (Role.EHS_OFFICER, None))
STORED = (
    Contractor,
    ContractorMember,
    ContractorDocument,
    ContractorInvitation,
    OnboardingSettings,
    Worker,
    Certificate,
    StoredObject,
    User,
    AuditEntry,
)


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), "teal").save(buffer, format="PNG")
    return buffer.getvalue()


@dataclasses.dataclass
class Stage:
    client: AsyncTestClient[Any]
    database: Database
    settings: Settings
    a: SeededTenant
    b: SeededTenant
    x: Company
    y: Company
    z: Company
    tokens: dict[str, dict[str, str]]
    foreign_scan: str
    y_scan: str
    y_photo: str

    async def snapshot(self) -> tuple[dict[str, int], dict[str, int]]:
        return (
            await count_rows(self.database, self.a.id, *STORED),
            await count_rows(self.database, self.b.id, *STORED),
        )

    def ids(self) -> dict[str, str]:
        return {
            "c": str(self.x.contractor_id),
            "d": str(self.x.documents["business_licence"]),
            "w": str(self.x.workers["张三"]),
            "cert": str(self.x.certificates["张三:welding_cutting"]),
            "y": str(self.y.contractor_id),
            "yw": str(self.y.workers["李四"]),
        }


async def _tokens(
    database: Database, pairs: dict[str, tuple[uuid.UUID, uuid.UUID]]
) -> dict[str, dict[str, str]]:
    return {
        name: {"Authorization": f"Bearer {await issue_token(database, tenant, user)}"}
        for name, (tenant, user) in pairs.items()
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stage(
    postgres: PostgresDatabase, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stage]:
    directory = tmp_path_factory.mktemp("onboarding-api")
    settings = settings_for(
        postgres.app_url,
        directory / "var",
        migration_database_url=postgres.owner_url,
        login_rate_per_minute=10_000,
    )
    database = Database.from_settings(settings)
    factory = TenantFactory()
    try:
        a = await factory.create(database, plants=("P1",), users=HOSTS)
        b = await factory.create(database, plants=("P1",), users=HOSTS)
        make = OnboardingFactory(database, settings)
        x = await make.admitted(
            a, host_viewer(a), certificate_expires_on=plant_today() + timedelta(days=20)
        )
        y = await make.register(a)
        await make.add_worker(y, "李四")
        z = await make.register(b)
        await make.add_worker(z, "王五")
        async with AsyncTestClient(app=create_app(settings)) as client:
            tokens = await _tokens(
                database,
                {
                    "a_ehs": (a.id, a.user(Role.EHS_OFFICER).id),
                    "a_admin": (a.id, a.user(Role.TENANT_ADMIN).id),
                    "x": (a.id, x.admin.user_id),
                    "y": (a.id, y.admin.user_id),
                    "b_ehs": (b.id, b.user(Role.EHS_OFFICER).id),
                    "b_admin": (b.id, b.user(Role.TENANT_ADMIN).id),
                    "z": (b.id, z.admin.user_id),
                },
            )
            uploads = []
            for kind, who in (("certificate_scan", "z"), ("certificate_scan", "y"), ("photo", "y")):
                upload = await client.post(
                    f"{API}/uploads/{kind}",
                    headers=tokens[who],
                    files={"file": ("scan.png", png(), "image/png")},
                )
                assert upload.status_code == 201, upload.text
                uploads.append(upload.json()["id"])
            yield Stage(client, database, settings, a, b, x, y, z, tokens, *uploads)
    finally:
        await database.dispose()


# --- isolation -------------------------------------------------------------------------------

TODAY = plant_today()
_WORK_DAY = TODAY + timedelta(days=1)
WINDOW = f"work_type=hot_work&start={_WORK_DAY}T08:00:00%2B08:00&end={_WORK_DAY}T17:00:00%2B08:00"
DOCUMENT = {
    "kind": "insurance",
    "number": "INS-1",
    "issuer": "保险公司",
    "valid_from": str(TODAY - timedelta(days=1)),
    "valid_until": str(TODAY + timedelta(days=300)),
    "scan_id": str(uuid.uuid4()),
}
CERTIFICATE = {
    "kind": "welding_cutting",
    "number": "T-NEW-1",
    "issuing_authority": "应急管理局",
    "issued_on": str(TODAY - timedelta(days=10)),
    "expires_on": str(TODAY + timedelta(days=300)),
    "scan_id": str(uuid.uuid4()),
}


def _worker_body() -> dict[str, Any]:
    return {"name": "新人", "id_number": make_id_number(), "phone": "13800138000", "trade": "电工"}


# (method, path, body, kind): kind says who may call the route at all — anyone signed in
# ("read"), the company's administrator ("edit") or EHS ("review").
ROUTES: list[tuple[str, str, Any, str]] = [
    ("GET", "/contractors/{c}", None, "read"),
    ("PATCH", "/contractors/{c}", {"address": "别处"}, "edit"),
    ("POST", "/contractors/{c}/submit", None, "edit"),
    ("POST", "/contractors/{c}/users", "user", "edit"),
    ("GET", "/contractors/{c}/documents", None, "read"),
    ("POST", "/contractors/{c}/documents", DOCUMENT, "edit"),
    ("PATCH", "/contractors/{c}/documents/{d}", {"issuer": "别处"}, "edit"),
    ("GET", "/contractors/{c}/workers", None, "read"),
    ("POST", "/contractors/{c}/workers", "worker", "edit"),
    ("POST", "/contractors/{c}/workers/import", "roster", "edit"),
    ("GET", "/contractors/{c}/workers/{w}", None, "read"),
    ("PATCH", "/contractors/{c}/workers/{w}", {"trade": "焊工"}, "edit"),
    ("GET", "/contractors/{c}/certificates", None, "read"),
    ("POST", "/contractors/{c}/certificates", "certificate", "edit"),
    ("PATCH", "/contractors/{c}/certificates/{cert}", {"issuing_authority": "别处"}, "edit"),
    ("GET", "/contractors/{c}/qualified?" + WINDOW, None, "read"),
    ("POST", "/contractors/{c}/review", "review", "review"),
    ("POST", "/contractors/{c}/suspend", {"reason": "x"}, "review"),
    ("POST", "/contractors/{c}/reinstate", {"reason": "x"}, "review"),
    ("POST", "/contractors/{c}/blacklist", {"reason": "x"}, "review"),
    # The other company's own id in the path, with an item of the company under attack.
    ("GET", "/contractors/{y}/workers/{w}", None, "read-y"),
    ("PATCH", "/contractors/{y}/workers/{w}", {"trade": "焊工"}, "edit-y"),
    ("PATCH", "/contractors/{y}/documents/{d}", {"issuer": "别处"}, "edit-y"),
    ("PATCH", "/contractors/{y}/certificates/{cert}", {"issuing_authority": "别处"}, "edit-y"),
]
# Who attacks: another tenant's user with the route's role, and the other company of the tenant.
ATTACKERS = {
    "read": ("b_admin", "z", "y"),
    "edit": ("z", "y"),
    "review": ("b_ehs", "b_admin"),
    "read-y": ("y",),
    "edit-y": ("y",),
}


def _request(stage: Stage, method: str, path: str, body: Any) -> dict[str, Any]:
    ids = stage.ids()
    kwargs: dict[str, Any] = {}
    if body == "worker":
        kwargs["json"] = _worker_body()
    elif body == "user":
        kwargs["json"] = {
            "email": f"{uuid.uuid4().hex[:8]}@x.example",
            "name": "新账号",
            "password": "long-enough-1",
            "role": "contractor_admin",
        }
    elif body == "certificate":
        kwargs["json"] = {**CERTIFICATE, "worker_id": ids["w"]}
    elif body == "review":
        kwargs["json"] = {"documents": [{"id": ids["d"], "verdict": "rejected", "reason": "x"}]}
    elif body == "roster":
        kwargs["files"] = {
            "file": ("r.xlsx", roster_xlsx([["新人", make_id_number(), "13800138000", "电工"]]))
        }
    elif body is not None:
        kwargs["json"] = body
    return {"method": method, "url": API + path.format(**ids), **kwargs}


CASES = [
    (method, path, body, attacker)
    for method, path, body, kind in ROUTES
    for attacker in ATTACKERS[kind]
]


@pytest.mark.parametrize(
    ("method", "path", "body", "attacker"),
    CASES,
    ids=[f"{attacker}-{method}-{path.split('?')[0]}" for method, path, _b, attacker in CASES],
)
async def test_other_tenants_and_companies_get_404_and_change_nothing(
    stage: Stage, method: str, path: str, body: Any, attacker: str
) -> None:
    before = await stage.snapshot()
    request = _request(stage, method, path, body)
    response = await stage.client.request(headers=stage.tokens[attacker], **request)
    assert response.status_code == 404, response.text
    assert response.json()["status_code"] == 404
    assert "张三" not in response.text
    assert await stage.snapshot() == before


# The review routes change the company for good; the journey below covers them.
OWNED = [route for route in ROUTES if route[3] in ("read", "edit")]


@pytest.mark.parametrize(
    ("method", "path", "body", "kind"),
    OWNED,
    ids=[f"{method}-{path.split('?')[0]}" for method, path, _b, _k in OWNED],
)
async def test_the_owner_reaches_every_route(
    stage: Stage, method: str, path: str, body: Any, kind: str
) -> None:
    """The same requests from the company itself are not 404: the 404s above are isolation,
    not broken routes. (Some are still refused for the state the company is in.)"""
    response = await stage.client.request(
        headers=stage.tokens["x"], **_request(stage, method, path, body)
    )
    assert response.status_code != 404, response.text
    assert response.status_code < 500, response.text


async def test_lists_show_only_what_the_caller_may_see(stage: Stage) -> None:
    def names(response: Any) -> set[str]:
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()}

    client, tokens = stage.client, stage.tokens
    contractors = f"{API}/contractors"
    ids = {str(c.contractor_id) for c in (stage.x, stage.y)}
    assert names(await client.get(contractors, headers=tokens["a_ehs"])) == ids
    assert names(await client.get(contractors, headers=tokens["y"])) == {str(stage.y.contractor_id)}
    assert names(await client.get(contractors, headers=tokens["b_ehs"])) == {
        str(stage.z.contractor_id)
    }
    drafts = await client.get(f"{contractors}?state=draft", headers=tokens["a_ehs"])
    assert names(drafts) == {str(stage.y.contractor_id)}

    queue = await client.get(f"{API}/review/queue", headers=tokens["b_ehs"])
    assert queue.status_code == 200 and queue.json() == []
    expiring = await client.get(f"{API}/onboarding/expiring", headers=tokens["b_ehs"])
    assert expiring.status_code == 200 and expiring.json() == []
    mine = await client.get(f"{API}/onboarding/expiring?within_days=30", headers=tokens["a_ehs"])
    assert {item["contractor_id"] for item in mine.json()} == {str(stage.x.contractor_id)}

    for route in (f"{API}/review/queue", f"{API}/onboarding/expiring"):
        assert (await client.get(route, headers=tokens["x"])).status_code == 403
    before = await stage.snapshot()
    invited = await client.post(
        f"{API}/invitations", json={"email": "new@b.example"}, headers=tokens["b_ehs"]
    )
    assert invited.status_code == 201, invited.text
    opened = await client.put(
        f"{API}/onboarding/settings", json={"open_registration": True}, headers=tokens["b_admin"]
    )
    assert opened.json() == {"open_registration": True, "reminder_days": [30, 7, 1]}
    after = await stage.snapshot()
    assert after[0] == before[0], "nothing changed in the other tenant"
    assert after[1]["contractor_invitations"] == before[1]["contractor_invitations"] + 1
    a_settings = await client.get(f"{API}/onboarding/settings", headers=tokens["a_ehs"])
    assert a_settings.json() == {"open_registration": False, "reminder_days": [30, 7, 1]}
    closed = await client.put(
        f"{API}/onboarding/settings", json={"open_registration": False}, headers=tokens["b_admin"]
    )
    assert closed.status_code == 200


# --- bad input -------------------------------------------------------------------------------


def _registration(**changes: Any) -> dict[str, Any]:
    body = {
        "tenant": "",
        "name": "坏输入工程公司",
        "uscc": make_uscc(),
        "legal_representative": "王建国",
        "contact_name": "李明",
        "contact_phone": "13800138000",
        "address": "上海",
        "work_types": ["hot_work"],
        "admin": {"email": "bad@input.example", "name": "管理员", "password": "long-enough-1"},
    }
    return {**body, **changes}


def _id_with(birth: str) -> str:
    body = f"330102{birth}123"
    return body + id_check_char(body)


def _xlsx_with_formula() -> bytes:
    return roster_xlsx([["张三", make_id_number(), "13800138000", "=SUM(1,2)"]])


@dataclasses.dataclass(frozen=True)
class Bad:
    id: str
    method: str
    path: str
    status: int
    field: str
    rule: str
    caller: str | None = "y"
    json: Any = None
    file: bytes | None = None


VALID_ID = make_id_number()
BAD = [
    Bad(
        "uscc-short",
        "POST",
        "/contractors/register",
        422,
        "uscc",
        "length",
        None,
        json=_registration(uscc="91350100M000100Y4"),
    ),
    Bad(
        "uscc-checksum",
        "POST",
        "/contractors/register",
        422,
        "uscc",
        "checksum",
        None,
        json=_registration(uscc="91350100M000100Y42"),
    ),
    Bad(
        "uscc-charset",
        "POST",
        "/contractors/register",
        422,
        "uscc",
        "charset",
        None,
        json=_registration(uscc="91350100M000100I43"),
    ),
    Bad(
        "uscc-too-long-for-schema",
        "POST",
        "/contractors/register",
        400,
        "uscc",
        "max_length",
        None,
        json=_registration(uscc="9" * 41),
    ),
    Bad(
        "closed-registration",
        "POST",
        "/contractors/register",
        422,
        "invitation_token",
        "required",
        None,
        json=_registration(),
    ),
    Bad(
        "forged-invitation",
        "POST",
        "/contractors/register",
        422,
        "invitation_token",
        "invalid",
        None,
        json=_registration(invitation_token="forged"),
    ),
    Bad(
        "unknown-work-type",
        "POST",
        "/contractors/register",
        400,
        "work_types[0]",
        "enum",
        None,
        json=_registration(work_types=["juggling"]),
    ),
    Bad(
        "id-short",
        "POST",
        "/contractors/{y}/workers",
        422,
        "id_number",
        "length",
        json={**_worker_body(), "id_number": VALID_ID[:-1]},
    ),
    Bad(
        "id-checksum",
        "POST",
        "/contractors/{y}/workers",
        422,
        "id_number",
        "checksum",
        json={**_worker_body(), "id_number": VALID_ID[:-1] + ("0" if VALID_ID[-1] != "0" else "1")},
    ),
    Bad(
        "id-feb-30",
        "POST",
        "/contractors/{y}/workers",
        422,
        "id_number",
        "birth_date",
        json={**_worker_body(), "id_number": _id_with("19900230")},
    ),
    Bad(
        "id-born-tomorrow",
        "POST",
        "/contractors/{y}/workers",
        422,
        "id_number",
        "birth_date",
        json={**_worker_body(), "id_number": _id_with(f"{TODAY + timedelta(days=1):%Y%m%d}")},
    ),
    Bad(
        "id-letters",
        "POST",
        "/contractors/{y}/workers",
        422,
        "id_number",
        "format",
        json={**_worker_body(), "id_number": "33010219900101ABCD"},
    ),
    Bad(
        "worker-bad-phone",
        "POST",
        "/contractors/{y}/workers",
        400,
        "phone",
        "phone",
        json={**_worker_body(), "phone": "call me"},
    ),
    Bad(
        "expiry-before-issue",
        "POST",
        "/contractors/{y}/certificates",
        422,
        "expires_on",
        "after_issue",
        json={**CERTIFICATE, "worker_id": "{yw}", "expires_on": str(TODAY - timedelta(days=20))},
    ),
    Bad(
        "scan-of-another-tenant",
        "POST",
        "/contractors/{y}/certificates",
        422,
        "scan_id",
        "exists",
        json={**CERTIFICATE, "worker_id": "{yw}", "scan_id": "{foreign}"},
    ),
    Bad(
        "certificate-duplicate-number",
        "POST",
        "/contractors/{y}/certificates",
        409,
        "number",
        "unique",
        json={**CERTIFICATE, "worker_id": "{yw}", "number": "{xnumber}", "scan_id": "{yscan}"},
    ),
    Bad(
        "certificate-scan-of-wrong-kind",
        "POST",
        "/contractors/{y}/certificates",
        422,
        "scan_id",
        "kind",
        json={**CERTIFICATE, "worker_id": "{yw}", "scan_id": "{yphoto}"},
    ),
    Bad(
        "certificate-of-other-company-worker",
        "POST",
        "/contractors/{y}/certificates",
        422,
        "worker_id",
        "exists",
        json={**CERTIFICATE, "worker_id": "{w}"},
    ),
    Bad(
        "document-until-before-from",
        "POST",
        "/contractors/{y}/documents",
        422,
        "valid_until",
        "after_valid_from",
        json={**DOCUMENT, "valid_until": str(TODAY - timedelta(days=5))},
    ),
    Bad(
        "document-bad-date",
        "POST",
        "/contractors/{y}/documents",
        400,
        "valid_from",
        "datetime",
        json={**DOCUMENT, "valid_from": "2026-02-30"},
    ),
    Bad(
        "roster-formula",
        "POST",
        "/contractors/{y}/workers/import",
        422,
        "file",
        "formula",
        file=_xlsx_with_formula(),
    ),
    Bad(
        "roster-oversized",
        "POST",
        "/contractors/{y}/workers/import",
        422,
        "file",
        "max_size",
        file=b"PK\x03\x04" + b"\0" * (2 * 1024 * 1024 + 10),
    ),
    Bad(
        "roster-far-too-large",
        "POST",
        "/contractors/{y}/workers/import",
        413,
        "file",
        "max_size",
        file=b"PK\x03\x04" + b"\0" * (3 * 1024 * 1024),
    ),
    Bad(
        "roster-not-xlsx",
        "POST",
        "/contractors/{y}/workers/import",
        422,
        "file",
        "xlsx",
        file=b"%PDF-1.7\n",
    ),
    Bad(
        "roster-wrong-columns",
        "POST",
        "/contractors/{y}/workers/import",
        422,
        "columns.D",
        "unknown_column",
        file=roster_xlsx([["张三"]], header=["姓名", "身份证号", "手机号", "备注"]),
    ),
    Bad(
        "roster-bad-row",
        "POST",
        "/contractors/{y}/workers/import",
        422,
        "rows[2].身份证号",
        "birth_date",
        file=roster_xlsx([["张三", _id_with("19900230"), "13800138000", "电工"]]),
    ),
    Bad(
        "qualified-end-before-start",
        "GET",
        "/contractors/{y}/qualified?work_type=hot_work&start=2030-01-02T08:00:00%2B08:00"
        "&end=2030-01-01T08:00:00%2B08:00",
        422,
        "end",
        "after_start",
    ),
    Bad(
        "qualified-naive-time",
        "GET",
        "/contractors/{y}/qualified?work_type=hot_work&start=2030-01-01T08:00:00"
        "&end=2030-01-02T08:00:00%2B08:00",
        422,
        "start",
        "timezone",
    ),
    Bad(
        "qualified-unknown-work-type",
        "GET",
        "/contractors/{y}/qualified?work_type=juggling&start=2030-01-01T08:00:00Z"
        "&end=2030-01-02T08:00:00Z",
        400,
        "work_type",
        "enum",
    ),
    Bad(
        "review-draft",
        "POST",
        "/contractors/{y}/review",
        409,
        "state",
        "transition",
        "a_ehs",
        json={"decision": "approve"},
    ),
    Bad(
        "review-reject-without-reason",
        "POST",
        "/contractors/{c}/review",
        422,
        "documents[0].reason",
        "required",
        "a_ehs",
        json={"documents": [{"id": "{d}", "verdict": "rejected"}]},
    ),
    Bad(
        "submit-without-documents",
        "POST",
        "/contractors/{y}/submit",
        422,
        "documents",
        "required_documents",
    ),
    Bad("malformed-contractor-id", "GET", "/contractors/not-a-uuid", 422, "contractor_id", "uuid"),
]


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids) if "{" in value else value
    if isinstance(value, dict):
        return {key: _fill(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, ids) for item in value]
    return value


@pytest.mark.parametrize("case", BAD, ids=[case.id for case in BAD])
async def test_bad_input_names_field_and_rule_and_stores_nothing(stage: Stage, case: Bad) -> None:
    ids = {
        **stage.ids(),
        "foreign": stage.foreign_scan,
        "yscan": stage.y_scan,
        "yphoto": stage.y_photo,
    }
    async with stage.database.session() as session:
        with tenant_scope(stage.a.id):
            ids["xnumber"] = (await session.scalars(select(Certificate.number))).first() or ""
    before = await stage.snapshot()
    headers = stage.tokens[case.caller] if case.caller else {}
    kwargs: dict[str, Any] = {}
    if case.json is not None:
        body = _fill(case.json, ids)
        if case.path == "/contractors/register":
            body["tenant"] = stage.a.slug
        kwargs["json"] = body
    if case.file is not None:
        kwargs["files"] = {"file": ("roster.xlsx", case.file)}
    response = await stage.client.request(
        case.method, API + case.path.format(**ids), headers=headers, **kwargs
    )
    assert response.status_code == case.status, response.text
    body = response.json()
    assert set(body) == {"status_code", "detail", "errors"}, body
    assert (case.field, case.rule) in [(e["field"], e["rule"]) for e in body["errors"]], body
    assert all(error["message"] for error in body["errors"])
    assert await stage.snapshot() == before


# --- the journey -----------------------------------------------------------------------------


async def test_journey_from_registration_to_qualified_workers(
    stage: Stage, factory: TenantFactory
) -> None:
    client, database = stage.client, stage.database
    tenant = await factory.create(database, plants=("P1",), users=HOSTS)
    hosts = await _tokens(
        database,
        {
            "admin": (tenant.id, tenant.user(Role.TENANT_ADMIN).id),
            "ehs": (tenant.id, tenant.user(Role.EHS_OFFICER).id),
        },
    )
    admin, ehs = hosts["admin"], hosts["ehs"]

    invitation = await client.post(
        f"{API}/invitations", json={"email": "boss@journey.example"}, headers=ehs
    )
    assert invitation.status_code == 201, invitation.text
    body = _registration(
        tenant=tenant.slug,
        invitation_token=invitation.json()["token"],
        admin={"email": "boss@journey.example", "name": "老板", "password": "journey-pass-1"},
    )
    registered = await client.post(f"{API}/contractors/register", json=body)
    assert registered.status_code == 201, registered.text
    contractor_id = registered.json()["contractor"]["id"]
    assert registered.json()["contractor"]["state"] == "draft"
    signed_in = await client.post(
        f"{API}/auth/token",
        json={"tenant": tenant.slug, "email": "boss@journey.example", "password": "journey-pass-1"},
    )
    boss = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    base = f"{API}/contractors/{contractor_id}"

    async def upload(kind: str) -> str:
        response = await client.post(
            f"{API}/uploads/{kind}", headers=boss, files={"file": ("a.png", png(), "image/png")}
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]

    for kind in ("business_licence", "safety_production_licence"):
        document = await client.post(
            f"{base}/documents",
            headers=boss,
            json={
                **DOCUMENT,
                "kind": kind,
                "valid_until": None,
                "scan_id": await upload("company_document"),
            },
        )
        assert document.status_code == 201, document.text
    number = make_id_number(date(1985, 5, 5))
    worker = await client.post(
        f"{base}/workers",
        headers=boss,
        json={**_worker_body(), "id_number": number, "name": "张三"},
    )
    assert worker.status_code == 201, worker.text
    assert worker.json()["id_number_masked"] == number[:6] + "********" + number[-4:]
    certificate = await client.post(
        f"{base}/certificates",
        headers=boss,
        json={
            **CERTIFICATE,
            "number": f"T-{uuid.uuid4().hex[:8]}",
            "worker_id": worker.json()["id"],
            "scan_id": await upload("certificate_scan"),
        },
    )
    assert certificate.status_code == 201, certificate.text
    roster = roster_xlsx(
        [
            ["李四", make_id_number(date(1990, 2, 2)), "13800138001", "架子工"],
            ["王五", "330102199002301234", "13800138002", "电工"],
        ]
    )
    refused = await client.post(
        f"{base}/workers/import", headers=boss, files={"file": ("r.xlsx", roster)}
    )
    assert refused.status_code == 422
    imported = await client.post(
        f"{base}/workers/import?import_valid_rows=true",
        headers=boss,
        files={"file": ("r.xlsx", roster)},
    )
    assert imported.status_code == 200, imported.text
    assert [w["name"] for w in imported.json()["imported"]] == ["李四"]
    assert [(s["row"], s["rule"]) for s in imported.json()["skipped"]] == [(3, "birth_date")]

    [li_worker] = imported.json()["imported"]
    unnamed = await client.post(
        f"{base}/users",
        headers=boss,
        json={"email": "li@journey.example", "name": "李四", "password": "worker-pass-1"},
    )
    assert [(e["field"], e["rule"]) for e in unnamed.json()["errors"]] == [
        ("worker_id", "required")
    ]
    login = await client.post(
        f"{base}/users",
        headers=boss,
        json={
            "email": "li@journey.example",
            "name": "李四",
            "password": "worker-pass-1",
            "worker_id": li_worker["id"],
        },
    )
    assert login.status_code == 201 and login.json()["role"] == "contractor_worker", login.text
    second_login = await client.post(
        f"{base}/users",
        headers=boss,
        json={
            "email": "li2@journey.example",
            "name": "李四",
            "password": "worker-pass-1",
            "worker_id": li_worker["id"],
        },
    )
    assert [(e["field"], e["rule"]) for e in second_login.json()["errors"]] == [
        ("worker_id", "unique")
    ]
    taken = await client.post(
        f"{base}/users",
        headers=boss,
        json={
            "email": "LI@journey.example",
            "name": "李四",
            "password": "worker-pass-1",
            "role": "contractor_admin",
        },
    )
    assert [(e["field"], e["rule"]) for e in taken.json()["errors"]] == [("email", "unique")]
    worker_login = await client.post(
        f"{API}/auth/token",
        json={"tenant": tenant.slug, "email": "li@journey.example", "password": "worker-pass-1"},
    )
    li = {"Authorization": f"Bearer {worker_login.json()['access_token']}"}
    assert (await client.get(base, headers=li)).status_code == 200
    assert (await client.patch(base, headers=li, json={"address": "x"})).status_code == 403

    submitted = await client.post(f"{base}/submit", headers=boss)
    assert submitted.json()["state"] == "submitted", submitted.text
    queue = await client.get(f"{API}/review/queue", headers=ehs)
    [entry] = queue.json()
    assert entry["contractor"]["id"] == contractor_id and entry["pending_workers"] == 2

    documents = (await client.get(f"{base}/documents", headers=ehs)).json()
    workers = (await client.get(f"{base}/workers", headers=ehs)).json()
    certificates = (await client.get(f"{base}/certificates", headers=ehs)).json()
    everything = " ".join(str(item) for item in (worker.json(), imported.json(), workers))
    assert number not in everything
    review = await client.post(
        f"{base}/review",
        headers=ehs,
        json={
            "decision": "approve",
            "documents": [{"id": d["id"], "verdict": "verified"} for d in documents],
            "workers": [{"id": w["id"], "verdict": "verified"} for w in workers],
            "certificates": [{"id": c["id"], "verdict": "verified"} for c in certificates],
        },
    )
    assert review.status_code == 200, review.text
    assert review.json()["state"] == "approved"

    qualified = await client.get(
        f"{base}/qualified?{WINDOW}", headers={**boss, "Cookie": "portal_lang=en"}
    )
    assert qualified.status_code == 200, qualified.text
    verdicts = {item["worker_name"]: item for item in qualified.json()}
    assert verdicts["张三"]["qualified"] is True
    assert verdicts["李四"]["reason"] == "certificate_missing"
    assert verdicts["李四"]["message"] == "The worker has no certificate for this kind of work."
    chinese = await client.get(f"{base}/qualified?{WINDOW}", headers=boss)
    assert {i["worker_name"]: i["message"] for i in chinese.json()}["李四"] == (
        "该人员没有此类作业所需的证书。"
    )
    suspended = await client.post(f"{base}/suspend", headers=ehs, json={"reason": "违章"})
    assert suspended.json()["state"] == "suspended"
    reinstated = await client.post(f"{base}/reinstate", headers=ehs, json={"reason": "已整改"})
    assert reinstated.json()["state"] == "approved"
    blacklisted = await client.post(f"{base}/blacklist", headers=ehs, json={"reason": "伪造"})
    assert blacklisted.json()["state"] == "blacklisted"
    assert (
        await client.post(f"{base}/suspend", headers=admin, json={"reason": "x"})
    ).status_code == 409


async def test_registration_is_rate_limited_like_signing_in(
    sqlite_template: Path, tmp_path: Path, factory: TenantFactory
) -> None:
    database_file = tmp_path / "portal.db"
    shutil.copyfile(sqlite_template, database_file)
    settings = settings_for(
        f"sqlite+aiosqlite:///{database_file}", tmp_path / "var", login_rate_per_minute=2
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        answers = [
            (await client.post(f"{API}/contractors/register", json=_registration(tenant="nope")))
            for _ in range(3)
        ]
    assert [answer.status_code for answer in answers] == [404, 404, 429]


async def test_reminder_days_are_read_and_set_in_the_settings(
    sqlite_settings: Settings, factory: TenantFactory
) -> None:
    database = Database.from_settings(sqlite_settings)
    try:
        tenant = await factory.create(database, plants=("P1",), users=HOSTS)
        tokens = await _tokens(
            database,
            {
                "admin": (tenant.id, tenant.user(Role.TENANT_ADMIN).id),
                "ehs": (tenant.id, tenant.user(Role.EHS_OFFICER).id),
            },
        )
        route = f"{API}/onboarding/settings"
        async with AsyncTestClient(app=create_app(sqlite_settings)) as client:
            shown = await client.get(route, headers=tokens["ehs"])
            assert shown.json() == {"open_registration": False, "reminder_days": [30, 7, 1]}
            set_days = await client.put(
                route, json={"reminder_days": [3, 60, 14]}, headers=tokens["admin"]
            )
            assert set_days.status_code == 200, set_days.text
            wanted = {"open_registration": False, "reminder_days": [60, 14, 3]}
            assert set_days.json() == wanted
            assert (await client.get(route, headers=tokens["ehs"])).json() == wanted

            refused = await client.put(route, json={"reminder_days": [5]}, headers=tokens["ehs"])
            assert refused.status_code == 403
            for days, status, field, rule in (
                ([], 422, "reminder_days", "count"),
                ([1, 2, 3, 4, 5, 6], 422, "reminder_days", "count"),
                ([0, 7], 422, "reminder_days", "range"),
                ([366], 422, "reminder_days", "range"),
                ([7, 7], 422, "reminder_days", "distinct"),
                (["seven"], 400, "reminder_days[0]", "type"),
            ):
                bad = await client.put(
                    route,
                    json={"open_registration": True, "reminder_days": days},
                    headers=tokens["admin"],
                )
                assert bad.status_code == status, (days, bad.text)
                errors = bad.json()["errors"]
                assert [(e["field"], e["rule"]) for e in errors] == [(field, rule)], days
                assert all(e["message"] for e in errors)
            assert (await client.get(route, headers=tokens["ehs"])).json() == wanted

            # A field left out keeps its value.
            opened = await client.put(
                route, json={"open_registration": True}, headers=tokens["admin"]
            )
            assert opened.json() == {"open_registration": True, "reminder_days": [60, 14, 3]}
        async with database.session() as session:
            with tenant_scope(tenant.id):
                changes = (
                    await session.scalars(
                        select(AuditEntry.payload)
                        .where(AuditEntry.action == "onboarding_settings.changed")
                        .order_by(AuditEntry.seq)
                    )
                ).all()
        assert changes == [{"reminder_days": [60, 14, 3]}, {"open_registration": True}]
    finally:
        await database.dispose()
