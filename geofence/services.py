"""Zones: drawing, redrawing and retiring them, listing them, and the point a permit's distance
rules measure from."""

from __future__ import annotations

import uuid

from geopy.distance import geodesic
from shapely.geometry import Point, Polygon, shape
from shapely.ops import nearest_points
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from geofence.models import Watch, WatchState, Zone
from geofence.schemas import CircleIn, PolygonIn, ZoneIn
from infra import audit
from infra.db import utcnow
from infra.errors import Conflict, InvalidInput, NotFound
from infra.i18n import N_
from tenants.models import Plant
from tenants.services import ensure_plant_in_service

ZONE_NOT_FOUND = N_("Zone not found.")


def _polygon_geometry(polygon: PolygonIn) -> dict[str, object]:
    for index, ring in enumerate(polygon.coordinates):
        if ring[0] != ring[-1]:
            raise InvalidInput(
                f"shape.coordinates[{index}]", "closed", N_("A ring must end where it starts.")
            )
    geometry = {"type": "Polygon", "coordinates": [list(map(list, r)) for r in polygon.coordinates]}
    drawn = shape(geometry)
    if not isinstance(drawn, Polygon) or not drawn.is_valid or drawn.area == 0:
        raise InvalidInput(
            "shape.coordinates",
            "simple",
            N_("The polygon crosses itself or encloses no area."),
        )
    return geometry


def _shape_geometry(data: ZoneIn) -> tuple[dict[str, object], float | None]:
    """The stored GeoJSON and radius of a drawn shape, refused when the shape is not one."""
    if isinstance(data.shape, CircleIn):
        return {"type": "Point", "coordinates": list(data.shape.center)}, data.shape.radius_m
    return _polygon_geometry(data.shape), None


async def _ensure_name_free(
    session: AsyncSession, plant_id: uuid.UUID, name: str, zone_id: uuid.UUID | None = None
) -> None:
    # Retired zones keep their names: permits and alerts of the past still point at them.
    query = select(Zone.id).where(Zone.plant_id == plant_id, Zone.name == name)
    if zone_id is not None:
        query = query.where(Zone.id != zone_id)
    if await session.scalar(query) is not None:
        raise Conflict("name", "unique", N_("The plant already has a zone with this name."))


def _ledger_payload(zone: Zone) -> dict[str, object]:
    return {
        "plant_id": zone.plant_id,
        "name": zone.name,
        "kind": zone.kind,
        "geometry": zone.geometry,
        "radius_m": zone.radius_m,
        "buffer_m": zone.buffer_m,
    }


async def create_zone(session: AsyncSession, data: ZoneIn, *, actor_id: uuid.UUID) -> Zone:
    plant = await session.scalar(select(Plant).where(Plant.id == data.plant_id))
    if plant is None:
        raise InvalidInput("plant_id", "exists", N_("No such plant."))
    ensure_plant_in_service(plant)
    geometry, radius = _shape_geometry(data)
    await _ensure_name_free(session, data.plant_id, data.name)
    zone = Zone(
        plant_id=data.plant_id,
        name=data.name,
        kind=data.kind,
        geometry=geometry,
        radius_m=radius,
        buffer_m=data.buffer_m,
    )
    session.add(zone)
    await session.flush()
    await audit.record(
        session,
        action="zone.created",
        subject_type="zone",
        subject_id=zone.id,
        actor_id=actor_id,
        payload={"plant_id": zone.plant_id, "name": zone.name, "kind": zone.kind},
    )
    return zone


async def _current_zone(session: AsyncSession, zone_id: uuid.UUID) -> Zone:
    """A zone that may still change: a retired one is history, and answers like a missing one."""
    zone = await get_zone(session, zone_id)
    if zone.retired_at is not None:
        raise NotFound(ZONE_NOT_FOUND)
    return zone


async def update_zone(
    session: AsyncSession, zone_id: uuid.UUID, data: ZoneIn, *, actor_id: uuid.UUID
) -> Zone:
    """Redraw or rename a zone. The ledger keeps the shape before and after, since the engine's
    past decisions were made against the old one."""
    zone = await _current_zone(session, zone_id)
    if data.plant_id != zone.plant_id:
        raise InvalidInput("plant_id", "unchanged", N_("A zone stays in its plant."))
    geometry, radius = _shape_geometry(data)
    await _ensure_name_free(session, zone.plant_id, data.name, zone.id)
    before = _ledger_payload(zone)
    zone.name, zone.kind, zone.buffer_m = data.name, data.kind, data.buffer_m
    zone.geometry, zone.radius_m = geometry, radius
    await session.flush()
    await audit.record(
        session,
        action="zone.updated",
        subject_type="zone",
        subject_id=zone.id,
        actor_id=actor_id,
        payload={"before": before, "after": _ledger_payload(zone)},
    )
    return zone


async def retire_zone(session: AsyncSession, zone_id: uuid.UUID, *, actor_id: uuid.UUID) -> Zone:
    """Take a zone off the map. The row stays (permits, watches and alerts refer to it), and a
    zone that open jobs are still watched in cannot go: their people would lose their fence."""
    zone = await _current_zone(session, zone_id)
    watched = await session.scalar(
        select(Watch.id)
        .where(Watch.zone_id == zone.id, Watch.state != WatchState.CLOSED.value)
        .limit(1)
    )
    if watched is not None:
        raise Conflict(
            "zone_id", "in_use", N_("Jobs under way are watched in this zone; close them first.")
        )
    zone.retired_at = utcnow()
    await session.flush()
    await audit.record(
        session,
        action="zone.retired",
        subject_type="zone",
        subject_id=zone.id,
        actor_id=actor_id,
        payload={"plant_id": zone.plant_id, "name": zone.name, "retired_at": zone.retired_at},
    )
    return zone


async def get_zone(session: AsyncSession, zone_id: uuid.UUID) -> Zone:
    zone = await session.scalar(select(Zone).where(Zone.id == zone_id))
    if zone is None:
        raise NotFound(ZONE_NOT_FOUND)
    return zone


async def list_zones(session: AsyncSession, plant_id: uuid.UUID) -> list[Zone]:
    query = select(Zone).where(Zone.plant_id == plant_id, Zone.retired_at.is_(None))
    return list((await session.execute(query.order_by(Zone.name))).scalars())


def reference_point(zone: Zone) -> tuple[float, float]:
    """The (lat, lon) a zone's distance rules measure from: a circle's centre, a polygon's
    representative point (inside it even when the polygon is concave)."""
    if zone.geometry["type"] == "Point":
        lon, lat = zone.geometry["coordinates"]
        return float(lat), float(lon)
    point = shape(zone.geometry).representative_point()
    return point.y, point.x


def contains(zone: Zone, latitude: float, longitude: float, accuracy_m: float = 0.0) -> bool:
    """Whether a position may be inside the zone: within its shape, or nearer to it than its
    buffer plus the position's accuracy. Distances are geodesic on WGS-84."""
    slack = zone.buffer_m + accuracy_m
    if zone.geometry["type"] == "Point":
        lon, lat = zone.geometry["coordinates"]
        return (
            float(geodesic((lat, lon), (latitude, longitude)).meters)
            <= (zone.radius_m or 0) + slack
        )
    polygon = shape(zone.geometry)
    where = Point(longitude, latitude)
    if polygon.contains(where):
        return True
    nearest, _ = nearest_points(polygon, where)
    return float(geodesic((nearest.y, nearest.x), (latitude, longitude)).meters) <= slack
