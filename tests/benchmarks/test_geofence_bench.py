"""Geofence evaluation: the vectorized :class:`ZoneIndex` against the per-ping loop over every zone
that :func:`geofence.services.contains` amounts to, on one plant's 200 zones and 100k pings."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest
import shapely
from geopy.distance import geodesic
from shapely.geometry import Point, shape

from geofence.engine import LocalFrame, ZoneIndex, ZoneShape
from tests.benchmarks.report import median_seconds, record

pytestmark = pytest.mark.benchmark

PINGS = 100_000
ZONES = 200
BASELINE_SAMPLE = 500
TARGET_RATIO = 50.0
PLANT_LAT, PLANT_LON = 30.0, 120.5
# About 5 km each way at 30°N.
PLANT_HALF_LAT, PLANT_HALF_LON = 0.0225, 0.026
METRES_PER_DEGREE = 111_000.0


def _star(
    rng: np.random.Generator, latitude: float, longitude: float, radius_m: float
) -> list[list[float]]:
    """A closed ring around a centre, vertices at jittered even angles (so edges stay short)."""
    count = int(rng.integers(5, 13))
    angles = np.linspace(0, 2 * np.pi, count, endpoint=False) + rng.uniform(-0.2, 0.2, count)
    radii = radius_m * rng.uniform(0.6, 1.0, count)
    ring = [
        [
            longitude + r * np.cos(a) / (METRES_PER_DEGREE * np.cos(np.radians(latitude))),
            latitude + r * np.sin(a) / METRES_PER_DEGREE,
        ]
        for a, r in zip(angles, radii, strict=True)
    ]
    return [*ring, ring[0]]


def _zones(rng: np.random.Generator) -> list[ZoneShape]:
    kinds = ("work_area", "restricted", "assembly_point")
    zones = []
    for number in range(ZONES):
        latitude = PLANT_LAT + rng.uniform(-PLANT_HALF_LAT, PLANT_HALF_LAT)
        longitude = PLANT_LON + rng.uniform(-PLANT_HALF_LON, PLANT_HALF_LON)
        if number % 2:
            geometry: dict[str, object] = {"type": "Point", "coordinates": [longitude, latitude]}
            radius: float | None = float(rng.uniform(20, 200))
        else:
            size = float(rng.uniform(40, 250))
            rings = [_star(rng, latitude, longitude, size)]
            if number % 3 == 0:
                rings.append(_star(rng, latitude, longitude, size * 0.3)[::-1])
            geometry, radius = {"type": "Polygon", "coordinates": rings}, None
        zones.append(
            ZoneShape(
                id=uuid.uuid4(),
                kind=kinds[number % 3],
                geometry=geometry,
                radius_m=radius,
                buffer_m=float(rng.choice([0.0, 5.0, 20.0])),
            )
        )
    return zones


def _baseline(
    zones: list[ZoneShape], latitudes: np.ndarray, longitudes: np.ndarray, slack: np.ndarray
) -> set[tuple[int, uuid.UUID]]:
    """One ping at a time, every zone: geopy for circles, shapely per polygon. The polygons are
    in the same local metric frame as the engine's, since degrees are not metres; the frame
    itself costs the loop nothing, being built once like the zones."""
    frame = LocalFrame.centred_on(zones)

    def in_metres(lonlat: np.ndarray) -> np.ndarray:
        return np.column_stack(frame.project(lonlat[:, 1], lonlat[:, 0]))

    polygons = [
        None if zone.radius_m is not None else shapely.transform(shape(zone.geometry), in_metres)
        for zone in zones
    ]
    hits = set()
    for ping, (latitude, longitude, extra) in enumerate(
        zip(latitudes.tolist(), longitudes.tolist(), slack.tolist(), strict=True)
    ):
        x, y = frame.project(latitude, longitude)
        point = Point(float(x), float(y))
        for zone, polygon in zip(zones, polygons, strict=True):
            reach = zone.buffer_m + extra
            if polygon is None:
                centre_lon, centre_lat = zone.geometry["coordinates"]
                metres = geodesic((centre_lat, centre_lon), (latitude, longitude)).meters
                inside = metres <= (zone.radius_m or 0) + reach
            else:
                inside = point.within(polygon) or polygon.distance(point) <= reach
            if inside:
                hits.add((ping, zone.id))
    return hits


def test_geofence_eval_speedup() -> None:
    rng = np.random.default_rng(20260504)
    zones = _zones(rng)
    latitudes = PLANT_LAT + rng.uniform(-PLANT_HALF_LAT, PLANT_HALF_LAT, PINGS)
    longitudes = PLANT_LON + rng.uniform(-PLANT_HALF_LON, PLANT_HALF_LON, PINGS)
    accuracies = rng.uniform(3, 30, PINGS)
    sample = rng.choice(PINGS, BASELINE_SAMPLE, replace=False)

    # Reported apart from the evaluation: an index is built once per plant and zone change.
    started = time.perf_counter()
    index = ZoneIndex(zones)
    build_s = time.perf_counter() - started
    hits = index.containing(latitudes, longitudes, accuracies)
    ours_s = median_seconds(lambda: index.containing(latitudes, longitudes, accuracies), runs=5)

    started = time.perf_counter()
    expected = _baseline(zones, latitudes[sample], longitudes[sample], accuracies[sample])
    baseline_s = time.perf_counter() - started

    position = {int(ping): place for place, ping in enumerate(sample)}
    ours_on_sample = {(position[ping], zone) for ping, zone in hits if ping in position}
    assert ours_on_sample == expected
    print(
        f"\n[bench] geofence: index of {ZONES} zones built in {build_s * 1000:.1f} ms (not in the "
        f"rate); {PINGS} pings in {ours_s * 1000:.0f} ms, {len(hits)} hits; baseline "
        f"{BASELINE_SAMPLE} pings in {baseline_s:.2f} s, {len(expected)} hits, same set"
    )
    result = record(
        "geofence_eval_speedup",
        unit="pings/s",
        ours=PINGS / ours_s,
        baseline=BASELINE_SAMPLE / baseline_s,
        target=f"ours >= {TARGET_RATIO:g} x baseline (per-ping loop over every zone)",
        meets=PINGS / ours_s >= TARGET_RATIO * BASELINE_SAMPLE / baseline_s,
    )
    assert result["meets"]
