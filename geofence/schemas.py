"""Shapes of zone data crossing the boundary. Coordinates are WGS-84 degrees, longitude first
(GeoJSON order); the services check that a polygon is closed, simple and not degenerate."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

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


class PingIn(Input, kw_only=True):
    """One position from a phone. ``id`` is made by the phone, so a batch sent again (after a
    lost answer, or from the offline queue) stores each ping once."""

    id: uuid.UUID
    device_time: Annotated[
        datetime, Meta(tz=True, description="When the phone took the position, with its offset")
    ]
    latitude: Annotated[float, Meta(ge=-90, le=90, description="WGS-84 degrees")]
    longitude: Annotated[float, Meta(ge=-180, le=180, description="WGS-84 degrees")]
    accuracy_m: Annotated[float, Meta(gt=0, le=100_000, description="Radius of 68 % confidence")]
    speed_mps: Annotated[float, Meta(ge=0, le=1_000)] | None = None
    heading_deg: Annotated[float, Meta(ge=0, le=360)] | None = None
    mock: bool = False
    battery: Annotated[float, Meta(ge=0, le=1)] | None = None
    watch_id: Annotated[
        uuid.UUID | None, Meta(description="The permit the phone reports for, when it knows")
    ] = None


class PingBatchIn(Input, kw_only=True):
    pings: Annotated[
        list[dict[str, Any]],
        Meta(
            description="Up to the batch limit (1,000) pings, each a `PingIn`. Each ping is "
            "checked on its own: bad ones are reported in `rejected`, good ones are kept."
        ),
    ]


class RejectedPing(msgspec.Struct, kw_only=True):
    index: int
    id: str | None
    field: str
    rule: str
    message: str


class WatchVerdict(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    label: str
    inside: bool | None


class IngestReport(msgspec.Struct, kw_only=True):
    accepted: int
    duplicates: int
    rejected: list[RejectedPing]
    watches: list[WatchVerdict]


class GpsCheckIn(Input, kw_only=True, tag="gps", tag_field="method"):
    latitude: Annotated[float, Meta(ge=-90, le=90)]
    longitude: Annotated[float, Meta(ge=-180, le=180)]
    accuracy_m: Annotated[float, Meta(gt=0, le=100_000)]


class QrCheckIn(Input, kw_only=True, tag="qr", tag_field="method"):
    token: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=2_000,
            description="The permit's QR code as scanned: its link or the token in it",
        ),
    ]


CheckInIn = GpsCheckIn | QrCheckIn


class AlertNoteIn(Input, kw_only=True):
    note: Annotated[str, Meta(min_length=1, max_length=2_000)]


class PolicyIn(Input, kw_only=True):
    dwell_s: Annotated[int, Meta(ge=10, le=3_600)]
    no_signal_minutes: Annotated[int, Meta(ge=1, le=240)]
    max_speed_mps: Annotated[float, Meta(gt=0, le=100)]
    guardian_absent_minutes: Annotated[int, Meta(ge=1, le=240)]
    overstay_grace_minutes: Annotated[int, Meta(ge=0, le=240)]
