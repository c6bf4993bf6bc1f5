"""A permit's timeline page over HTTP: for EHS the job's events in time order — the start, a
check-in by GPS, the alert the engine raised when the work leader walked out of the zone, the
pause and the resumption, the check-out, the completion and its acceptance — with the people and
their tracks; the permit page links to it once work has started. A contractor's logins and
another tenant's officer get 404."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy import select

from geofence import tracking
from geofence.schemas import GpsCheckIn
from infra.db import Database, utcnow
from infra.settings import Settings
from onboarding.catalogue import WorkType
from permits import services
from permits.models import Permit
from portal.app import create_app
from tenants import services as tenant_services
from tenants.access import Principal
from tenants.models import Role, User
from tests.factories import SeededTenant, TenantFactory
from tests.permit_factories import CENTRE, LEADER, PLANT_TZ, PermitWorld, Window

CSRF_FIELD = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')
EVENT = re.compile(
    r'data-testid="timeline-event" data-kind="([a-z_]+)"\s*'
    r'(?:data-action="([a-z_.]+)"|data-alert="([a-z_]+)" data-state="[a-z]+")?\s*'
    r'data-at="([^"]+)"'
)
EHS_PASSWORD = "ehs-pass-12345"
# Z1 is a 40 m circle around CENTRE, given as (lon, lat).
INSIDE = (CENTRE[1], CENTRE[0])


def _north(metres: float) -> tuple[float, float]:
    return INSIDE[0] + metres / 110_574.0, INSIDE[1]


async def _started_height_work(world: PermitWorld) -> tuple[Permit, datetime]:
    """Work at height started two hours ago for the next four, so the on-site steps that the
    ledger dates by the clock (pause, resumption) can happen now, after the ones in the past."""
    now = utcnow().replace(microsecond=0)
    at = Window(now - timedelta(hours=2), now + timedelta(hours=4))
    permit = await world.approved(world.permit_in(WorkType.HEIGHT, at), now=at.now)
    await world.brief(permit.id)
    await world.confirm(permit.id, now=at.start)
    await _act(world, world.guardian, services.start, permit.id, now=at.start)
    return permit, at.start


async def _act(world: PermitWorld, who: Principal, call: Any, *args: Any, now: datetime) -> Any:
    async with world.session() as session:
        actor = await services.actor_for(session, who)
        return await call(session, actor, *args, now=now)


async def _work_leader_walks_out(world: PermitWorld, permit_id: uuid.UUID, start: datetime) -> None:
    leader = world.leader_login.user_id
    async with world.session() as session:
        await tracking.check_in(
            session,
            world.settings,
            leader,
            permit_id,
            GpsCheckIn(latitude=INSIDE[0], longitude=INSIDE[1], accuracy_m=5),
            start + timedelta(minutes=5),
        )
    # Half a minute apart, 25 m further north each time: out of the 40 m circle for minutes.
    pings = []
    for step in range(12):
        taken = start + timedelta(minutes=6, seconds=30 * step)
        lat, lon = _north(min(25 * step, 150))
        pings.append(
            {
                "id": str(uuid.uuid4()),
                "device_time": taken.astimezone(PLANT_TZ).isoformat(),
                "latitude": lat,
                "longitude": lon,
                "accuracy_m": 5.0,
                "watch_id": str(permit_id),
            }
        )
    async with world.session() as session:
        report = await tracking.ingest(
            session, world.settings, leader, pings, start + timedelta(minutes=13)
        )
    assert report.accepted == len(pings) and not report.rejected


async def _sign_in(settings: Settings, slug: str, email: str, password: str) -> Any:
    client = AsyncTestClient(app=create_app(settings))
    await client.__aenter__()
    client.follow_redirects = False
    page = await client.get(f"/t/{slug}/login")
    csrf = CSRF_FIELD.search(page.text)
    assert csrf is not None, page.text
    response = await client.post(
        "/login",
        data={"tenant": slug, "email": email, "password": password, "_csrf_token": csrf.group(1)},
    )
    assert response.status_code in (302, 303), response.text
    return client


async def _ehs_login(world: PermitWorld) -> tuple[str, str]:
    async with world.session() as session:
        user = await session.scalar(select(User).where(User.id == world.ehs.user_id))
        assert user is not None
        await tenant_services.set_password(session, user, EHS_PASSWORD)
        return user.email, EHS_PASSWORD


async def test_ehs_sees_the_jobs_events_in_order_and_others_get_404(
    sqlite_db: Database, sqlite_settings: Settings, factory: TenantFactory
) -> None:
    world = await PermitWorld.create(sqlite_db, sqlite_settings, factory)
    permit, start = await _started_height_work(world)
    await _work_leader_walks_out(world, permit.id, start)
    await _act(
        world, world.guardian, services.suspend, permit.id, "风力增大，暂停作业观察", now=utcnow()
    )
    await _act(world, world.guardian, services.resume, permit.id, now=utcnow())
    async with world.session() as session:
        await tracking.check_out(session, world.leader_login.user_id, permit.id, utcnow())
    await _act(world, world.leader_login, services.complete, permit.id, now=utcnow())
    await _act(world, world.ehs, services.accept, permit.id, "现场清理完毕", now=utcnow())
    other: SeededTenant = await factory.create(sqlite_db, users=((Role.EHS_OFFICER, None),))
    stranger_login = other.user(Role.EHS_OFFICER)

    slug = world.tenant.slug
    path = f"/t/{slug}/permits/{permit.id}/timeline"
    ehs = await _sign_in(sqlite_settings, slug, *await _ehs_login(world))
    contractor = await _sign_in(
        sqlite_settings, slug, world.company.admin_email, world.company.admin_password
    )
    async with world.session() as session:
        leader_email = await session.scalar(
            select(User.email).where(User.id == world.leader_login.user_id)
        )
    worker = await _sign_in(sqlite_settings, slug, str(leader_email), "worker-pass-1")
    stranger = await _sign_in(
        sqlite_settings, other.slug, stranger_login.email, stranger_login.password
    )
    try:
        page = await ehs.get(path)
        assert page.status_code == 200, page.text
        events = EVENT.findall(page.text)
        assert [action or alert or kind for kind, action, alert, _at in events] == [
            "permit.start",
            "check_in",
            "left_zone",
            "permit.suspend",
            "permit.resume",
            "check_out",
            "permit.complete",
            "permit.accept",
        ]
        moments = [datetime.fromisoformat(at) for *_rest, at in events]
        assert moments == sorted(moments)
        # On the plant's clock: the start as the permit keeps it, not when it was written down.
        assert moments[0] == start.astimezone(PLANT_TZ)
        assert moments[0].utcoffset() == timedelta(hours=8)
        assert 'data-testid="timeline-person" data-role="crew"' in page.text
        assert 'data-testid="timeline-person" data-role="guardian"' in page.text
        assert LEADER in page.text and "data-timeline" in page.text
        assert "/static/timeline.js" in page.text

        permit_page = f"/t/{slug}/permits/{permit.id}"
        assert 'data-testid="timeline-link"' in (await ehs.get(permit_page)).text
        assert 'data-testid="timeline-link"' not in (await contractor.get(permit_page)).text

        assert (await contractor.get(path)).status_code == 404
        assert (await worker.get(path)).status_code == 404
        foreign = f"/t/{other.slug}/permits/{permit.id}/timeline"
        assert (await stranger.get(foreign)).status_code == 404
        assert (await ehs.get(foreign)).status_code in (302, 404)
        assert (await ehs.get(f"/t/{slug}/permits/not-an-id/timeline")).status_code == 404
    finally:
        for client in (stranger, worker, contractor, ehs):
            await client.__aexit__(None, None, None)
