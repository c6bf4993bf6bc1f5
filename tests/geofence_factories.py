"""A small world for geofence tests: a tenant with one plant, a square work zone with a hole, a
circular restricted zone, host users and two crew logins, and a watched job over them.

Geofence does not read permits, so the job is described to it directly, as permits would.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from geofence import tracking
from geofence.models import MemberRole, WatchState
from geofence.schemas import CircleIn, PolygonIn, ZoneIn
from geofence.services import create_zone
from infra.db import Database, utcnow
from infra.settings import Settings
from tenants import services as tenant_services
from tenants.models import Role
from tests.factories import SeededTenant, TenantFactory
from tests.onboarding_factories import in_tenant

# The work zone: a 200 m square around ORIGIN with a 40 m square hole in its north-east corner;
# the restricted zone: a 30 m circle 300 m east of ORIGIN.
ORIGIN = (30.0, 120.5)
METRES_PER_DEGREE_LAT = 110_574.0
METRES_PER_DEGREE_LON = 111_320.0 * math.cos(math.radians(ORIGIN[0]))


def offset(north_m: float, east_m: float) -> tuple[float, float]:
    """The (lat, lon) this many metres north and east of ORIGIN."""
    return (
        ORIGIN[0] + north_m / METRES_PER_DEGREE_LAT,
        ORIGIN[1] + east_m / METRES_PER_DEGREE_LON,
    )


def _ring(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    ring = [(offset(n, e)[1], offset(n, e)[0]) for n, e in points]
    return [*ring, ring[0]]


WORK_OUTER = [(-100, -100), (-100, 100), (100, 100), (100, -100)]
WORK_HOLE = [(50, 50), (50, 90), (90, 90), (90, 50)]


@dataclasses.dataclass
class GeofenceWorld:
    database: Database
    settings: Settings
    tenant: SeededTenant
    work_zone: uuid.UUID
    restricted_zone: uuid.UUID
    crew: dict[str, uuid.UUID]
    guardian: uuid.UUID
    ehs: uuid.UUID
    watch_id: uuid.UUID

    @property
    def plant_id(self) -> uuid.UUID:
        return self.tenant.plants["P1"]

    def session(self):  # type: ignore[no-untyped-def]
        return in_tenant(self.database, self.tenant.id)

    @classmethod
    async def create(
        cls,
        database: Database,
        settings: Settings,
        factory: TenantFactory,
        *,
        starts_at: datetime | None = None,
        hours: float = 4,
    ) -> GeofenceWorld:
        tenant = await factory.create(
            database,
            plants=("P1",),
            users=((Role.EHS_OFFICER, None), (Role.TENANT_ADMIN, None)),
        )
        async with in_tenant(database, tenant.id) as session:
            logins = {}
            for name, role in (
                ("张三", Role.CONTRACTOR_WORKER),
                ("李四", Role.CONTRACTOR_WORKER),
                ("监护人", Role.GUARDIAN),
            ):
                user = await tenant_services.create_user(
                    session,
                    email=f"{uuid.uuid4().hex[:10]}@{tenant.slug}.example",
                    name=name,
                    password=None,
                )
                await tenant_services.grant_role(session, user_id=user.id, role=role)
                logins[name] = user.id
            ehs = tenant.user(Role.EHS_OFFICER).id
            work = await create_zone(
                session,
                ZoneIn(
                    plant_id=tenant.plants["P1"],
                    name="一号装置作业区",
                    shape=PolygonIn(coordinates=[_ring(WORK_OUTER), _ring(WORK_HOLE)]),
                    buffer_m=5.0,
                ),
                actor_id=ehs,
            )
            lat, lon = offset(0, 300)
            restricted = await create_zone(
                session,
                ZoneIn(
                    plant_id=tenant.plants["P1"],
                    name="罐区禁入区",
                    kind="restricted",
                    shape=CircleIn(center=(lon, lat), radius_m=30.0),
                ),
                actor_id=ehs,
            )
        world = cls(
            database=database,
            settings=settings,
            tenant=tenant,
            work_zone=work.id,
            restricted_zone=restricted.id,
            crew={"张三": logins["张三"], "李四": logins["李四"]},
            guardian=logins["监护人"],
            ehs=ehs,
            watch_id=uuid.uuid4(),
        )
        start = starts_at or utcnow() - timedelta(hours=1)
        await world.watch(start, start + timedelta(hours=hours))
        return world

    async def watch(
        self, starts_at: datetime, ends_at: datetime, state: WatchState = WatchState.ACTIVE
    ) -> None:
        people = [
            tracking.Person(user_id, None, name, MemberRole.CREW)
            for name, user_id in self.crew.items()
        ]
        people.append(tracking.Person(self.guardian, None, "监护人", MemberRole.GUARDIAN))
        spec = tracking.WatchSpec(
            id=self.watch_id,
            plant_id=self.plant_id,
            zone_id=self.work_zone,
            label="DH01-20261128-0001",
            starts_at=starts_at,
            ends_at=ends_at,
            state=state,
            people=people,
        )
        async with self.session() as session:
            await session.run_sync(lambda sync: tracking.sync_watch(sync, spec, utcnow()))


def ping(
    at: datetime,
    north_m: float,
    east_m: float,
    *,
    accuracy_m: float = 5.0,
    ping_id: uuid.UUID | None = None,
    **extra: Any,
) -> dict[str, Any]:
    lat, lon = offset(north_m, east_m)
    return {
        "id": str(ping_id or uuid.uuid4()),
        "device_time": at.isoformat(),
        "latitude": lat,
        "longitude": lon,
        "accuracy_m": accuracy_m,
        **extra,
    }


def track(
    start: datetime, points: Sequence[tuple[float, float]], *, every_s: float = 15.0, **extra: Any
) -> list[dict[str, Any]]:
    return [
        ping(start + timedelta(seconds=index * every_s), north, east, **extra)
        for index, (north, east) in enumerate(points)
    ]
