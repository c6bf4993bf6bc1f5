"""The worker's tracking page over HTTP: the page and its state for a crew member and for someone
with no job, the CSRF header the page's script sends, pings stored once however often a batch is
replayed, check-in by GPS and check-out, refusals that name the problem, the service worker's
scope, and the safety endpoints still answering while the tenant is read-only for billing. On
SQLite and on PostgreSQL (where pings go in by ``COPY`` under row-level security)."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from geofence import services as zone_services
from geofence.models import CheckIn, Ping, Watch, WatchMember
from geofence.schemas import CircleIn, ZoneIn
from infra.db import Database, utcnow
from infra.qr import VerificationRef, verification_url
from infra.settings import Settings
from portal.app import create_app
from portal.guards import BILLING_EXEMPT
from tenants.models import Role, Tenant, TenantStatus
from tests.factories import SeededTenant, SeededUser, TenantFactory, issue_token
from tests.onboarding_factories import in_tenant

CSRF_FIELD = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')
SHANGHAI = ZoneInfo("Asia/Shanghai")
# A circle of 120 m beside the Ningbo plant; "far" is a kilometre and a half north of it.
CENTRE = (121.8012, 29.9453)
FAR = (121.8012, 29.9588)
LABEL = "DH-20261128-0042"
ZONE_NAME = "常减压装置区"


@dataclasses.dataclass(frozen=True)
class World:
    tenant: SeededTenant
    worker: SeededUser
    ehs: SeededUser
    watch_id: uuid.UUID
    other_watch_id: uuid.UUID
    starts_at: datetime


async def _world(database: Database, factory: TenantFactory) -> World:
    tenant = await factory.create(
        database,
        plants=("P1",),
        users=(
            (Role.TENANT_ADMIN, None),
            (Role.CONTRACTOR_WORKER, None),
            (Role.EHS_OFFICER, None),
        ),
    )
    worker, ehs = tenant.user(Role.CONTRACTOR_WORKER), tenant.user(Role.EHS_OFFICER)
    starts_at = utcnow().replace(microsecond=0) - timedelta(hours=1)
    async with in_tenant(database, tenant.id) as session:
        zone = await zone_services.create_zone(
            session,
            ZoneIn(
                plant_id=tenant.plants["P1"],
                name=ZONE_NAME,
                shape=CircleIn(center=CENTRE, radius_m=120),
                buffer_m=10,
            ),
            actor_id=tenant.user(Role.TENANT_ADMIN).id,
        )
        # The second job is someone else's: the worker must neither see it nor check in to it.
        watches = []
        for label in (LABEL, "DH-20261128-0043"):
            watch = Watch(
                plant_id=tenant.plants["P1"],
                zone_id=zone.id,
                label=label,
                starts_at=starts_at,
                ends_at=starts_at + timedelta(hours=8),
                state="active",
            )
            session.add(watch)
            await session.flush()
            watches.append(watch.id)
        session.add(WatchMember(watch_id=watches[0], user_id=worker.id, name="王大力", role="crew"))
    return World(tenant, worker, ehs, watches[0], watches[1], starts_at)


@pytest.fixture
async def world(any_db: Database, factory: TenantFactory) -> World:
    return await _world(any_db, factory)


@pytest.fixture
async def client(any_settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(app=create_app(any_settings)) as test_client:
        test_client.follow_redirects = False
        yield test_client


async def _sign_in(client: AsyncTestClient[Any], slug: str, user: SeededUser) -> str:
    """Signs in through the login form and answers the CSRF value the page's script sends."""
    page = await client.get(f"/t/{slug}/login")
    match = CSRF_FIELD.search(page.text)
    assert match is not None, page.text
    response = await client.post(
        "/login",
        data={
            "tenant": slug,
            "email": user.email,
            "password": user.password,
            "_csrf_token": match.group(1),
        },
    )
    assert response.status_code in (302, 303), response.text
    return client.cookies["portal_csrf"]


def _json_headers(csrf: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if csrf is not None:
        headers["x-csrftoken"] = csrf
    return headers


def _ping(position: tuple[float, float], seconds_ago: float, **extra: Any) -> dict[str, Any]:
    taken = (utcnow() - timedelta(seconds=seconds_ago)).astimezone(SHANGHAI)
    return {
        "id": str(uuid.uuid4()),
        "device_time": taken.isoformat(timespec="milliseconds"),
        "latitude": position[1],
        "longitude": position[0],
        "accuracy_m": 8.0,
        "speed_mps": 0.4,
        "heading_deg": 90.0,
        "mock": False,
        "battery": 0.81,
        **extra,
    }


def _button(html: str, test_id: str) -> str:
    """The opening tag of the page's button with that test id."""
    match = re.search(rf'<button[^>]*data-testid="{test_id}"[^>]*>', html)
    assert match is not None, html
    return match.group(0)


async def _count(database: Database, tenant_id: uuid.UUID, model: Any, *where: Any) -> int:
    async with in_tenant(database, tenant_id) as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where)) or 0


async def test_page_shows_the_job_to_its_crew_and_nothing_to_others(
    client: AsyncTestClient[Any], world: World
) -> None:
    slug = world.tenant.slug
    await _sign_in(client, slug, world.worker)
    page = await client.get(f"/t/{slug}/track")
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "no-store"
    html = page.text
    assert html.count('data-testid="watch"') == 1
    assert f'data-watch="{world.watch_id}"' in html
    assert LABEL in html and ZONE_NAME in html
    assert "DH-20261128-0043" not in html
    # The window on the plant's clock, not UTC.
    assert world.starts_at.astimezone(SHANGHAI).strftime("%m-%d %H:%M") in html
    assert 'data-testid="inside-state" data-inside="unknown"' in html
    assert 'data-sample-seconds="15"' in html
    assert "/static/track.js" in html
    assert f'data-sw-url="/t/{slug}/track/sw.js"' in html
    for asked, used in (("1", "1"), ("9999", "300"), ("soon", "15")):
        tuned = await client.get(f"/t/{slug}/track?interval={asked}")
        assert f'data-sample-seconds="{used}"' in tuned.text

    state = await client.get(f"/t/{slug}/track/state.json")
    assert state.status_code == 200, state.text
    [watch] = state.json()["watches"]
    assert watch["watch_id"] == str(world.watch_id)
    assert watch["label"] == LABEL
    assert watch["zone_name"] == ZONE_NAME
    assert watch["role"] == "crew"
    assert watch["state"] == "active"
    assert watch["checked_in"] is False
    assert watch["tracking"] is True
    assert watch["geometry"]["type"] == "Point"

    # Another tenant's address answers like one that does not exist.
    assert (await client.get("/t/not-ours/track")).status_code in (302, 303, 404)
    other = await client.get(f"/t/{slug}x/track/state.json", headers=_json_headers(None))
    assert other.status_code in (401, 404)


async def test_someone_without_a_job_sees_none_and_strangers_sign_in(
    client: AsyncTestClient[Any], world: World
) -> None:
    slug = world.tenant.slug
    anonymous = await client.get(f"/t/{slug}/track")
    assert anonymous.status_code in (302, 303)
    assert anonymous.headers["location"] == f"/t/{slug}/login?" + urlencode(
        {"next": f"/t/{slug}/track"}
    )
    unsigned = await client.get(f"/t/{slug}/track/state.json", headers=_json_headers(None))
    assert unsigned.status_code == 401

    await _sign_in(client, slug, world.ehs)
    page = await client.get(f"/t/{slug}/track")
    assert page.status_code == 200, page.text
    assert 'data-testid="no-watches"' in page.text
    assert 'data-testid="watch"' not in page.text
    assert (await client.get(f"/t/{slug}/track/state.json")).json() == {"watches": []}


async def test_posts_need_the_csrf_header(client: AsyncTestClient[Any], world: World) -> None:
    slug = world.tenant.slug
    csrf = await _sign_in(client, slug, world.worker)
    batch = {"pings": [_ping(CENTRE, 5)]}
    for headers in (_json_headers(None), _json_headers("forged" + csrf[6:])):
        refused = await client.post(f"/t/{slug}/track/pings", json=batch, headers=headers)
        assert refused.status_code == 403, refused.text
        refused = await client.post(
            f"/t/{slug}/track/{world.watch_id}/check-out", json={}, headers=headers
        )
        assert refused.status_code == 403, refused.text
    sent = await client.post(f"/t/{slug}/track/pings", json=batch, headers=_json_headers(csrf))
    assert sent.status_code == 200, sent.text


async def test_pings_are_stored_once_and_refused_ones_named(
    client: AsyncTestClient[Any], world: World, any_db: Database
) -> None:
    slug = world.tenant.slug
    csrf = await _sign_in(client, slug, world.worker)
    pings = [
        _ping(CENTRE, 30),
        _ping(CENTRE, 15),
        _ping(CENTRE, 10, latitude=123.0),
    ]
    first = await client.post(
        f"/t/{slug}/track/pings", json={"pings": pings}, headers=_json_headers(csrf)
    )
    assert first.status_code == 200, first.text
    report = first.json()
    assert report["accepted"] == 2
    assert report["duplicates"] == 0
    [rejected] = report["rejected"]
    assert rejected["index"] == 2
    assert rejected["id"] == pings[2]["id"]
    assert rejected["field"].endswith("latitude")
    assert rejected["message"]

    # The answer was lost on the way back: the phone sends the same queue again.
    again = await client.post(
        f"/t/{slug}/track/pings", json={"pings": pings[:2]}, headers=_json_headers(csrf)
    )
    assert again.status_code == 200, again.text
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 2)
    assert await _count(any_db, world.tenant.id, Ping, Ping.user_id == world.worker.id) == 2

    state = (await client.get(f"/t/{slug}/track/state.json")).json()
    assert state["watches"][0]["last_seen_at"] is not None

    too_many = await client.post(
        f"/t/{slug}/track/pings",
        json={"pings": [_ping(CENTRE, 2) for _ in range(1001)]},
        headers=_json_headers(csrf),
    )
    assert too_many.status_code == 422, too_many.text
    assert too_many.json()["errors"][0]["field"] == "pings"
    assert await _count(any_db, world.tenant.id, Ping) == 2

    not_a_list = await client.post(
        f"/t/{slug}/track/pings", json={"pings": "many"}, headers=_json_headers(csrf)
    )
    assert not_a_list.status_code == 400, not_a_list.text
    assert not_a_list.json()["errors"][0]["field"] == "pings"


async def test_a_queue_recorded_for_another_login_is_refused(
    client: AsyncTestClient[Any], world: World, any_db: Database
) -> None:
    slug = world.tenant.slug
    csrf = await _sign_in(client, slug, world.worker)
    batch = {"pings": [_ping(CENTRE, 5)]}
    someone_else = {**_json_headers(csrf), "x-track-user": str(world.ehs.id)}
    refused = await client.post(f"/t/{slug}/track/pings", json=batch, headers=someone_else)
    assert refused.status_code == 409, refused.text
    assert refused.json()["errors"][0]["field"] == "user"
    assert await _count(any_db, world.tenant.id, Ping) == 0

    own = {**_json_headers(csrf), "x-track-user": str(world.worker.id)}
    sent = await client.post(f"/t/{slug}/track/pings", json=batch, headers=own)
    assert sent.status_code == 200, sent.text
    assert await _count(any_db, world.tenant.id, Ping, Ping.user_id == world.worker.id) == 1


async def test_check_in_by_gps_then_out(
    client: AsyncTestClient[Any], world: World, any_db: Database
) -> None:
    slug = world.tenant.slug
    csrf = await _sign_in(client, slug, world.worker)
    base = f"/t/{slug}/track/{world.watch_id}"

    checked_in = await client.post(
        f"{base}/check-in",
        json={"method": "gps", "latitude": CENTRE[1], "longitude": CENTRE[0], "accuracy_m": 6},
        headers=_json_headers(csrf),
    )
    assert checked_in.status_code == 200, checked_in.text
    [watch] = checked_in.json()["watches"]
    assert watch["checked_in"] is True
    assert watch["checked_in_at_local"]
    page = await client.get(f"/t/{slug}/track")
    assert 'data-checked-in="true"' in page.text
    assert _button(page.text, "check-in").endswith(" hidden>")
    assert (
        await _count(
            any_db, world.tenant.id, CheckIn, CheckIn.direction == "in", CheckIn.method == "gps"
        )
        == 1
    )

    # The guardian stops the work: nobody checks in now, but whoever is on site can leave.
    async with in_tenant(any_db, world.tenant.id) as session:
        await session.execute(
            Watch.__table__.update().where(Watch.id == world.watch_id).values(state="suspended")
        )
    page = await client.get(f"/t/{slug}/track")
    assert _button(page.text, "check-in").endswith(" hidden>")
    assert not _button(page.text, "check-out").endswith(" hidden>")

    checked_out = await client.post(f"{base}/check-out", headers=_json_headers(csrf))
    assert checked_out.status_code == 200, checked_out.text
    [watch] = checked_out.json()["watches"]
    assert watch["checked_in"] is False
    assert watch["checked_out_at"] is not None
    assert watch["tracking"] is False
    assert await _count(any_db, world.tenant.id, CheckIn, CheckIn.direction == "out") == 1


async def test_check_in_by_the_permits_qr_code(
    client: AsyncTestClient[Any], world: World, any_db: Database, any_settings: Settings
) -> None:
    slug = world.tenant.slug
    csrf = await _sign_in(client, slug, world.worker)

    def link(watch_id: uuid.UUID) -> str:
        return verification_url(
            any_settings, VerificationRef(world.tenant.id, "permit", watch_id, 1)
        )

    # The code posted at another job's site does not check anyone in here.
    elsewhere = await client.post(
        f"/t/{slug}/track/{world.watch_id}/check-in",
        json={"method": "qr", "token": link(world.other_watch_id)},
        headers=_json_headers(csrf),
    )
    assert elsewhere.status_code == 422, elsewhere.text
    assert elsewhere.json()["errors"][0]["field"] == "token"

    scanned = await client.post(
        f"/t/{slug}/track/{world.watch_id}/check-in",
        json={"method": "qr", "token": link(world.watch_id)},
        headers=_json_headers(csrf),
    )
    assert scanned.status_code == 200, scanned.text
    assert scanned.json()["watches"][0]["checked_in"] is True
    assert await _count(any_db, world.tenant.id, CheckIn, CheckIn.method == "qr") == 1


async def test_refused_check_ins_name_the_problem_and_store_nothing(
    client: AsyncTestClient[Any], world: World, any_db: Database
) -> None:
    slug = world.tenant.slug
    csrf = await _sign_in(client, slug, world.worker)
    base = f"/t/{slug}/track/{world.watch_id}"
    far = {"method": "gps", "latitude": FAR[1], "longitude": FAR[0], "accuracy_m": 6}

    outside = await client.post(f"{base}/check-in", json=far, headers=_json_headers(csrf))
    assert 400 <= outside.status_code < 500, outside.text
    assert outside.json()["detail"]

    pigeon = await client.post(
        f"{base}/check-in", json={"method": "pigeon"}, headers=_json_headers(csrf)
    )
    assert pigeon.status_code == 400, pigeon.text
    assert pigeon.json()["errors"]

    off_the_map = {**far, "latitude": 91}
    wrong = await client.post(f"{base}/check-in", json=off_the_map, headers=_json_headers(csrf))
    assert wrong.status_code == 400, wrong.text
    assert wrong.json()["errors"][0]["field"] == "latitude"

    forged = await client.post(
        f"{base}/check-in",
        json={"method": "qr", "token": "https://portal.example/v/forged-token"},
        headers=_json_headers(csrf),
    )
    assert 400 <= forged.status_code < 500, forged.text

    for path in (
        f"/t/{slug}/track/not-a-uuid/check-in",
        f"/t/{slug}/track/{world.other_watch_id}/check-in",
        f"/t/{slug}/track/{uuid.uuid4()}/check-in",
    ):
        missing = await client.post(path, json=far, headers=_json_headers(csrf))
        assert missing.status_code == 404, (path, missing.text)
    assert await _count(any_db, world.tenant.id, CheckIn) == 0


async def test_service_worker_covers_the_page(client: AsyncTestClient[Any], world: World) -> None:
    slug = world.tenant.slug
    script = await client.get(f"/t/{slug}/track/sw.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("application/javascript")
    assert script.headers["service-worker-allowed"] == f"/t/{slug}/track"
    assert "caches.open" in script.text


async def test_safety_endpoints_work_while_the_tenant_is_read_only(
    any_settings: Settings, any_db: Database, world: World
) -> None:
    billing = dataclasses.replace(
        any_settings,
        stripe_secret_key="sk_test_tracking",
        stripe_webhook_secret="whsec_test_tracking",
        billing_plans=json.dumps({"starter": {"price": "price_starter", "max_plants": 1}}),
    )
    async with any_db.session() as session:
        await session.execute(
            Tenant.__table__.update()
            .where(Tenant.id == world.tenant.id)
            .values(status=TenantStatus.READ_ONLY.value)
        )
        await session.commit()
    slug = world.tenant.slug
    token = await issue_token(any_db, world.tenant.id, world.tenant.user(Role.TENANT_ADMIN).id)
    async with AsyncTestClient(app=create_app(billing)) as client:
        client.follow_redirects = False
        refused = await client.post(
            "/api/v1/plants",
            json={"code": "P9", "name": "新厂区"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert refused.status_code == 402, refused.text

        csrf = await _sign_in(client, slug, world.worker)
        base = f"/t/{slug}/track/{world.watch_id}"
        inside = {"method": "gps", "latitude": CENTRE[1], "longitude": CENTRE[0], "accuracy_m": 6}
        for path, body in (
            (f"{base}/check-in", inside),
            (f"/t/{slug}/track/pings", {"pings": [_ping(CENTRE, 3)]}),
            (f"{base}/check-out", None),
        ):
            answer = await client.post(path, json=body, headers=_json_headers(csrf))
            assert answer.status_code == 200, (path, answer.text)

        exempt = {
            route.path
            for route in client.app.routes
            for handler in getattr(route, "route_handlers", [])
            if handler.opt.get(BILLING_EXEMPT) and "/track" in route.path
        }
        assert exempt == {
            "/t/{slug:str}/track/pings",
            "/t/{slug:str}/track/{watch_id:str}/check-in",
            "/t/{slug:str}/track/{watch_id:str}/check-out",
        }
