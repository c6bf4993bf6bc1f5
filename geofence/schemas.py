"""Shapes of zone data crossing the boundary. Coordinates are WGS-84 degrees, longitude first
(GeoJSON order); the services check that a polygon is closed, simple and not degenerate."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from tenants.schemas import Input

Lon = Annotated[float, Meta(ge=-180, le=180)]
Lat = Annotated[float, Meta(ge=-90, le=90)]
Position = tuple[Lon, Lat]
Ring = Annotated[list[Position], Meta(min_length=4, max_length=2_000)]


class PolygonIn(Input, kw_only=True, tag="Polygon", tag_field="type"):
    """A GeoJSON polygon: the outer ring, then any holes."""

    coordinates: Annotated[list[Ring], Meta(min_length=1, max_length=50)]


class CircleIn(Input, kw_only=True, tag="Circle", tag_field="type"):
    center: Position
    radius_m: Annotated[float, Meta(gt=0, le=50_000)]


class ZoneIn(Input, kw_only=True):
    plant_id: uuid.UUID
    name: Annotated[str, Meta(min_length=1, max_length=100)]
    kind: Literal["work_area", "restricted", "assembly_point"] = "work_area"
    shape: PolygonIn | CircleIn
    buffer_m: Annotated[float, Meta(ge=0, le=500)] = 0.0


class ZoneRead(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    plant_id: uuid.UUID
    name: str
    kind: str
    geometry: dict[str, object]
    radius_m: float | None
    buffer_m: float
