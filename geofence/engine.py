"""The evaluation engine of GPS geofence supervision: where pings lie against a plant's zones, and
when a worker's track enters or leaves a zone. Pure computation: no database, no HTTP.

Zones arrive as stored (WGS-84 GeoJSON, see :mod:`geofence.models`). A :class:`ZoneIndex`
projects one plant's zones once into a local metric frame, so that every later question is
planar arithmetic done by shapely and numpy over whole arrays of pings; circles are refined with
geopy's geodesic where the exact value decides something.
"""

from __future__ import annotations

import enum
import math
import uuid
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import shapely
from geopy.distance import geodesic
from shapely.geometry import shape

# WGS-84, the datum zones are stored in.
_SEMI_MAJOR_M = 6378137.0
_FLATTENING = 1 / 298.257223563
_ECCENTRICITY_SQUARED = _FLATTENING * (2 - _FLATTENING)

PLANAR_ERROR_M = 0.5
"""Bound on the error of a planar distance in the local frame against the geodesic one, for
points within 20 km of the frame's centre (the tangent plane shortens distances by about
rho^2 / 2R^2, a few millimetres per kilometre at 20 km)."""

DECISION_REACH_M = 100.0
"""How far from a circle's buffered edge :meth:`ZoneIndex.signed_distances` refines with geopy.
:func:`advance` decides at ``buffer +- accuracy``, and a fix less accurate than this decides
nothing near a zone of plant scale, so beyond it the planar value is as good as the geodesic."""

# GeoJSON edges are straight in longitude and latitude, not in metres: cutting them at about
# 500 m before projecting keeps the projected edge within millimetres of the stored one.
_MAX_SEGMENT_DEGREES = 0.005

# ZoneKind.RESTRICTED's value: importing the model would pull the ORM into a pure engine.
_RESTRICTED = "restricted"


@dataclass(frozen=True, slots=True)
class ZoneShape:
    id: uuid.UUID
    kind: str
    geometry: Mapping[str, Any]
    radius_m: float | None
    buffer_m: float


@dataclass(frozen=True, slots=True)
class LocalFrame:
    """The plane tangent to the WGS-84 ellipsoid at a centre, in metres (x east, y north).

    Positions go through Earth-centred coordinates rather than an equirectangular scaling: that
    one scales east-west by the centre's cos-latitude everywhere, off by tan(lat) * dlat (0.2 %,
    2 m per km, 20 km north of a centre at 30°N). The tangent plane's only error is its
    foreshortening, see :data:`PLANAR_ERROR_M`.
    """

    latitude: float
    longitude: float

    @classmethod
    def centred_on(cls, zones: Sequence[ZoneShape]) -> LocalFrame:
        if not zones:
            return cls(0.0, 0.0)
        centres = np.array([_centre(zone.geometry) for zone in zones])
        longitude, latitude = centres.mean(axis=0)
        return cls(float(latitude), float(longitude))

    def project(
        self, latitudes: np.ndarray | float, longitudes: np.ndarray | float
    ) -> tuple[np.ndarray, np.ndarray]:
        x, y, z = _earth_centred(np.asarray(latitudes, float), np.asarray(longitudes, float))
        x0, y0, z0 = _earth_centred(np.array(self.latitude), np.array(self.longitude))
        dx, dy, dz = x - x0, y - y0, z - z0
        phi, lam = np.radians(self.latitude), np.radians(self.longitude)
        east = -np.sin(lam) * dx + np.cos(lam) * dy
        north = -np.sin(phi) * np.cos(lam) * dx - np.sin(phi) * np.sin(lam) * dy + np.cos(phi) * dz
        return east, north


def _earth_centred(
    latitudes: np.ndarray, longitudes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    phi, lam = np.radians(latitudes), np.radians(longitudes)
    prime_vertical = _SEMI_MAJOR_M / np.sqrt(1 - _ECCENTRICITY_SQUARED * np.sin(phi) ** 2)
    return (
        prime_vertical * np.cos(phi) * np.cos(lam),
        prime_vertical * np.cos(phi) * np.sin(lam),
        prime_vertical * (1 - _ECCENTRICITY_SQUARED) * np.sin(phi),
    )


def _short_distance(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Metres between two fixes, on the ellipsoid's radii of curvature at their mean latitude:
    within a fraction of a per mille of the geodesic over the kilometres between two pings, which
    is all a speed limit needs, at a hundredth of geopy's cost per ping."""
    phi = math.radians((lat1 + lat2) / 2)
    denominator = 1 - _ECCENTRICITY_SQUARED * math.sin(phi) ** 2
    prime_vertical = _SEMI_MAJOR_M / math.sqrt(denominator)
    meridional = prime_vertical * (1 - _ECCENTRICITY_SQUARED) / denominator
    north = math.radians(lat2 - lat1) * meridional
    east = math.radians(lon2 - lon1) * prime_vertical * math.cos(phi)
    return math.hypot(north, east)


def _centre(geometry: Mapping[str, Any]) -> tuple[float, float]:
    """(lon, lat) of a circle's centre or of the middle of a polygon's bounds."""
    if geometry["type"] == "Point":
        longitude, latitude = geometry["coordinates"]
        return float(longitude), float(latitude)
    outer = np.asarray(geometry["coordinates"][0], float)
    low, high = outer.min(axis=0), outer.max(axis=0)
    return float((low[0] + high[0]) / 2), float((low[1] + high[1]) / 2)


@dataclass(frozen=True, slots=True)
class _Circle:
    x: float
    y: float
    radius_m: float
    latitude: float
    longitude: float

    def geodesic_signed(self, latitudes: np.ndarray, longitudes: np.ndarray) -> np.ndarray:
        return np.array(
            [
                geodesic((self.latitude, self.longitude), (lat, lon)).meters
                for lat, lon in zip(latitudes.tolist(), longitudes.tolist(), strict=True)
            ]
        ) - float(self.radius_m)


@dataclass(frozen=True, slots=True)
class _Polygon:
    area: shapely.Polygon
    boundary: shapely.Geometry


class ZoneIndex:
    """Zones of one plant, projected once into a local metric frame (metres), prepared, and in an
    STRtree.

    Planar distances hold to :data:`PLANAR_ERROR_M` within 20 km of the frame's centre (the mean
    of the zones' centres), which a plant's zones and the pings near them are.
    """

    def __init__(self, zones: Sequence[ZoneShape]) -> None:
        self._zones = tuple(zones)
        self._position = {zone.id: position for position, zone in enumerate(self._zones)}
        self.frame = LocalFrame.centred_on(self._zones)
        self._buffers = np.array([zone.buffer_m for zone in self._zones], float)
        self._kinds = [zone.kind for zone in self._zones]
        self._shapes: list[_Circle | _Polygon] = []
        reaches = []
        for zone in self._zones:
            if zone.geometry["type"] == "Point":
                if zone.radius_m is None:
                    raise ValueError(f"Zone {zone.id} is a circle without a radius.")
                longitude, latitude = _centre(zone.geometry)
                x, y = self.frame.project(latitude, longitude)
                self._shapes.append(_Circle(float(x), float(y), zone.radius_m, latitude, longitude))
                # A refined circle may count a ping up to PLANAR_ERROR_M beyond its planar reach.
                margin = zone.radius_m + zone.buffer_m + PLANAR_ERROR_M
                reaches.append(shapely.box(x - margin, y - margin, x + margin, y + margin))
            elif zone.geometry["type"] == "Polygon":
                stored = shapely.segmentize(shape(zone.geometry), _MAX_SEGMENT_DEGREES)
                area = shapely.transform(
                    stored,
                    lambda lonlat: np.column_stack(self.frame.project(lonlat[:, 1], lonlat[:, 0])),
                )
                boundary = area.boundary
                shapely.prepare(area)
                shapely.prepare(boundary)
                self._shapes.append(_Polygon(area, boundary))
                west, south, east, north = area.bounds
                reaches.append(
                    shapely.box(
                        west - zone.buffer_m,
                        south - zone.buffer_m,
                        east + zone.buffer_m,
                        north + zone.buffer_m,
                    )
                )
            else:
                raise ValueError(f"Zone {zone.id} has an unknown geometry {zone.geometry['type']}.")
        # Boxes rather than the shapes: the tree only proposes candidates, which each shape's exact
        # check then narrows, and a box is the cheapest thing to measure a distance to.
        self._tree = shapely.STRtree(reaches)

    def __len__(self) -> int:
        return len(self._zones)

    def signed_distances(
        self,
        zone_ids: Sequence[uuid.UUID],
        latitudes: np.ndarray,
        longitudes: np.ndarray,
        accuracies: np.ndarray | None = None,
    ) -> np.ndarray:
        """Per ping i, metres from it to the edge of zone ``zone_ids[i]`` (its shape without the
        buffer): negative inside (a hole is outside), positive outside.

        A circle's value is geopy's geodesic one wherever it lies within
        :data:`DECISION_REACH_M` of the buffered edge, planar elsewhere. Given the pings'
        accuracies, only values within :data:`PLANAR_ERROR_M` of the two thresholds
        :func:`advance` decides at (``buffer ± accuracy``) are refined: elsewhere the planar
        value decides the same, and geopy costs tens of microseconds a ping.
        """
        latitudes, longitudes = _pair(latitudes, longitudes)
        if len(zone_ids) != latitudes.size:
            raise ValueError("One zone id per ping.")
        positions = np.fromiter(
            (self._position[zone_id] for zone_id in zone_ids), np.intp, len(zone_ids)
        )
        x, y = self.frame.project(latitudes, longitudes)
        distances = np.empty(latitudes.size)
        for position, pings in _groups(positions):
            planar = self._planar(position, x[pings], y[pings])
            zone = self._shapes[position]
            if isinstance(zone, _Circle):
                buffer = self._buffers[position]
                if accuracies is None:
                    near = np.abs(planar - buffer) <= DECISION_REACH_M + PLANAR_ERROR_M
                else:
                    accuracy = np.asarray(accuracies, float)[pings]
                    near = (np.abs(planar - (buffer - accuracy)) <= PLANAR_ERROR_M) | (
                        np.abs(planar - (buffer + accuracy)) <= PLANAR_ERROR_M
                    )
                planar[near] = zone.geodesic_signed(latitudes[pings][near], longitudes[pings][near])
            distances[pings] = planar
        return distances

    def containing(
        self,
        latitudes: np.ndarray,
        longitudes: np.ndarray,
        slack_m: np.ndarray | float = 0.0,
        kinds: Collection[str] | None = None,
    ) -> list[tuple[int, uuid.UUID]]:
        """Every (ping index, zone id), in that order, where the ping's signed distance to the zone
        is at most the zone's buffer plus the ping's slack (negative slack asks for a ping well
        inside). Circles are decided by geopy's geodesic whenever the planar value lies within
        :data:`PLANAR_ERROR_M` of that threshold, so the planar error never flips an answer."""
        latitudes, longitudes = _pair(latitudes, longitudes)
        slack = np.broadcast_to(np.asarray(slack_m, float), latitudes.shape)
        if not self._zones or latitudes.size == 0:
            return []
        x, y = self.frame.project(latitudes, longitudes)
        # A ping can be within buffer + slack only if it is within max(slack, 0) of the tree's
        # buffered box; with negative slack it must be in the box at all.
        pings, zones = self._tree.query(
            shapely.points(x, y), predicate="dwithin", distance=np.maximum(slack, 0.0)
        )
        if kinds is not None:
            wanted = np.array([kind in kinds for kind in self._kinds])
            pings, zones = pings[wanted[zones]], zones[wanted[zones]]
        thresholds = self._buffers[zones] + slack[pings]
        hits = np.zeros(zones.size, bool)
        for position, pairs in _groups(zones):
            members = pings[pairs]
            planar = self._planar(position, x[members], y[members])
            zone = self._shapes[position]
            if isinstance(zone, _Circle):
                near = np.abs(planar - thresholds[pairs]) <= PLANAR_ERROR_M
                planar[near] = zone.geodesic_signed(
                    latitudes[members][near], longitudes[members][near]
                )
            hits[pairs] = planar <= thresholds[pairs]
        pings, zones = pings[hits], zones[hits]
        order = np.lexsort((zones, pings))
        return [
            (int(ping), self._zones[zone].id)
            for ping, zone in zip(pings[order].tolist(), zones[order].tolist(), strict=True)
        ]

    def _planar(self, position: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        zone = self._shapes[position]
        if isinstance(zone, _Circle):
            return np.hypot(x - zone.x, y - zone.y) - zone.radius_m
        to_edge = shapely.distance(zone.boundary, shapely.points(x, y))
        return np.where(shapely.contains_xy(zone.area, x, y), -to_edge, to_edge)


def _pair(latitudes: np.ndarray, longitudes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    latitudes = np.atleast_1d(np.asarray(latitudes, float))
    longitudes = np.atleast_1d(np.asarray(longitudes, float))
    if latitudes.shape != longitudes.shape or latitudes.ndim != 1:
        raise ValueError("Latitudes and longitudes must be 1-D arrays of one length.")
    return latitudes, longitudes


def _groups(keys: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(key, indices of that key) for every distinct key."""
    if keys.size == 0:
        return []
    order = np.argsort(keys, kind="stable")
    starts = np.flatnonzero(np.diff(keys[order])) + 1
    return [(int(keys[run[0]]), run) for run in np.split(order, starts)]


@dataclass(frozen=True, slots=True)
class Thresholds:
    dwell_s: float = 60.0
    max_speed_mps: float = 15.0


@dataclass(frozen=True, slots=True)
class TrackState:
    """One worker's standing against one permit's zone; ``inside`` is None until a ping says."""

    inside: bool | None = None
    outside_since: datetime | None = None
    last_at: datetime | None = None
    last_latitude: float | None = None
    last_longitude: float | None = None


class Transition(enum.StrEnum):
    ENTERED = "entered"
    LEFT = "left"


@dataclass(frozen=True, slots=True)
class Step:
    state: TrackState
    transition: Transition | None
    implausible: bool
    speed_mps: float | None


def advance(
    state: TrackState,
    *,
    at: datetime,
    latitude: float,
    longitude: float,
    accuracy_m: float,
    signed_distance_m: float,
    buffer_m: float,
    mock: bool,
    thresholds: Thresholds,
) -> Step:
    """The state after one more ping of a track, and what the ping changed.

    A ping is confidently inside when its whole accuracy circle lies within the zone grown by its
    buffer, and clearly outside when the circle lies wholly beyond it; anything between is
    ambiguous. The first confidently inside ping enters; clearly outside pings for ``dwell_s``
    leave (LEFT only when the track was inside). Implausible pings (too fast, or a mock location)
    are flagged, not dropped: a caller that distrusts them keeps ``state`` over ``step.state``.
    A ping older than the last one changes nothing, so a late delivery never undoes a later fix.
    """
    if state.last_at is not None and at < state.last_at:
        # A mock location stays implausible whenever it arrives; its speed has no meaning.
        return Step(state, None, implausible=mock, speed_mps=None)
    speed = None
    if (
        state.last_at is not None
        and state.last_latitude is not None
        and state.last_longitude is not None
    ):
        seconds = (at - state.last_at).total_seconds()
        if seconds > 0:
            metres = _short_distance(state.last_latitude, state.last_longitude, latitude, longitude)
            speed = metres / seconds
    implausible = mock or (speed is not None and speed > thresholds.max_speed_mps)

    inside, outside_since, transition = state.inside, state.outside_since, None
    if signed_distance_m + accuracy_m <= buffer_m:
        outside_since = None
        if inside is not True:
            inside, transition = True, Transition.ENTERED
    elif signed_distance_m > accuracy_m + buffer_m:
        if outside_since is None:
            outside_since = at
        if inside is not False and (at - outside_since).total_seconds() >= thresholds.dwell_s:
            transition = Transition.LEFT if inside else None
            inside = False
    # An ambiguous ping neither starts nor ends a dwell, nor completes one: a fix straddling the
    # edge says nothing about the side the worker is on. Ending the dwell would let one noisy fix
    # a minute hide a worker who walked out; completing it would report LEFT on no evidence.
    return Step(
        TrackState(inside, outside_since, at, latitude, longitude),
        transition,
        implausible,
        speed,
    )


@dataclass(frozen=True, slots=True)
class PingInput:
    key: Hashable
    zone_id: uuid.UUID | None
    at: datetime
    latitude: float
    longitude: float
    accuracy_m: float
    mock: bool


@dataclass(frozen=True, slots=True)
class EvaluatedBatch:
    """Per ping, in input order: the signed distance to its own zone (nan without one), and the
    restricted zones it is confidently inside (signed distance + accuracy <= buffer)."""

    signed_distances: np.ndarray
    restricted_zones: tuple[frozenset[uuid.UUID], ...]


def evaluate(index: ZoneIndex, pings: Sequence[PingInput]) -> EvaluatedBatch:
    """The geometry of a batch of pings, computed in two vectorized passes over the whole batch;
    :func:`advance` then runs per ping, in time order per key, with these distances."""
    latitudes = np.array([ping.latitude for ping in pings], float)
    longitudes = np.array([ping.longitude for ping in pings], float)
    accuracies = np.array([ping.accuracy_m for ping in pings], float)
    distances = np.full(len(pings), np.nan)
    own = [position for position, ping in enumerate(pings) if ping.zone_id is not None]
    zone_ids = [ping.zone_id for ping in pings if ping.zone_id is not None]
    if own:
        distances[own] = index.signed_distances(
            zone_ids, latitudes[own], longitudes[own], accuracies[own]
        )
    restricted: list[set[uuid.UUID]] = [set() for _ in pings]
    for position, zone_id in index.containing(
        latitudes, longitudes, slack_m=-accuracies, kinds={_RESTRICTED}
    ):
        restricted[position].add(zone_id)
    return EvaluatedBatch(distances, tuple(frozenset(zones) for zones in restricted))
