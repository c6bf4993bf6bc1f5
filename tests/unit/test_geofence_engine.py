"""The geofence engine: distances and containment against geopy's geodesic, and the hysteresis
that turns a noisy track into ENTERED and LEFT."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from geopy.distance import geodesic
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, shape

from geofence.engine import (
    PingInput,
    Step,
    Thresholds,
    TrackState,
    Transition,
    ZoneIndex,
    ZoneShape,
    advance,
    evaluate,
)

START = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
THRESHOLDS = Thresholds(dwell_s=60.0, max_speed_mps=15.0)
LAT, LON = 30.0, 120.5
GEOMETRY = settings(max_examples=60, deadline=None)


def _circle(latitude: float, longitude: float, radius_m: float, buffer_m: float = 0.0) -> ZoneShape:
    return ZoneShape(
        id=uuid.uuid4(),
        kind="work_area",
        geometry={"type": "Point", "coordinates": [longitude, latitude]},
        radius_m=radius_m,
        buffer_m=buffer_m,
    )


def _square(
    latitude: float, longitude: float, half_deg: float, *, hole_deg: float = 0.0, kind: str = ""
) -> ZoneShape:
    def ring(half: float) -> list[list[float]]:
        return [
            [longitude - half, latitude - half],
            [longitude + half, latitude - half],
            [longitude + half, latitude + half],
            [longitude - half, latitude + half],
            [longitude - half, latitude - half],
        ]

    rings = [ring(half_deg)] + ([ring(hole_deg)[::-1]] if hole_deg else [])
    return ZoneShape(
        id=uuid.uuid4(),
        kind=kind or "work_area",
        geometry={"type": "Polygon", "coordinates": rings},
        radius_m=None,
        buffer_m=0.0,
    )


def _moved(latitude: float, longitude: float, metres: float, bearing: float) -> tuple[float, float]:
    point = geodesic(meters=metres).destination((latitude, longitude), bearing)
    return point.latitude, point.longitude


def _geodesic_to_edge(zone: ZoneShape, latitude: float, longitude: float) -> float:
    """The reference: the least geodesic distance to the rings (edges straight in lon/lat, as
    GeoJSON draws them), each edge searched by ternary search, negative inside."""

    def metres(edge: tuple[list[float], list[float]], t: float) -> float:
        (lon_a, lat_a), (lon_b, lat_b) = edge
        on_edge = (lat_a + t * (lat_b - lat_a), lon_a + t * (lon_b - lon_a))
        return float(geodesic(on_edge, (latitude, longitude)).meters)

    best = float("inf")
    for ring in zone.geometry["coordinates"]:
        for edge in itertools.pairwise(ring):
            low, high = 0.0, 1.0
            for _ in range(60):
                left, right = low + (high - low) / 3, high - (high - low) / 3
                if metres(edge, left) < metres(edge, right):
                    high = right
                else:
                    low = left
            best = min(best, metres(edge, (low + high) / 2))
    inside = shape(zone.geometry).contains(Point(longitude, latitude))
    return -best if inside else best


def _signed(index: ZoneIndex, zone: ZoneShape, points: list[tuple[float, float]]) -> np.ndarray:
    latitudes, longitudes = np.array(points).T
    return index.signed_distances([zone.id] * len(points), latitudes, longitudes)


def _ping(
    zone_id: uuid.UUID | None, latitude: float, longitude: float, accuracy: float = 5.0
) -> PingInput:
    return PingInput(("permit", "user"), zone_id, START, latitude, longitude, accuracy, False)


# Geometry


def test_a_point_in_a_hole_is_outside_at_its_distance_to_the_hole() -> None:
    zone = _square(LAT, LON, 0.01, hole_deg=0.002)
    index = ZoneIndex([zone])

    in_hole, in_ring = (LAT, LON), (LAT + 0.005, LON)

    hole_distance, ring_distance = _signed(index, zone, [in_hole, in_ring])
    assert hole_distance == pytest.approx(_geodesic_to_edge(zone, *in_hole), abs=0.5)
    assert hole_distance > 150
    assert ring_distance == pytest.approx(_geodesic_to_edge(zone, *in_ring), abs=0.5)
    assert ring_distance < -200


@GEOMETRY
@given(
    latitude=st.floats(18, 50),
    longitude=st.floats(75, 135),
    radius=st.floats(5, 5000),
    distances=st.lists(st.floats(0, 3000), min_size=1, max_size=8),
    bearings=st.lists(st.floats(0, 360), min_size=8, max_size=8),
    far_bearing=st.floats(0, 360),
)
def test_circle_distances_agree_with_geodesic(
    latitude: float,
    longitude: float,
    radius: float,
    distances: list[float],
    bearings: list[float],
    far_bearing: float,
) -> None:
    circle = _circle(latitude, longitude, radius)
    # A second zone 30 km away puts the frame's centre 15 km off the circle's, where the planar
    # path is least accurate.
    other = _circle(*_moved(latitude, longitude, 30_000, far_bearing), 10.0)
    index = ZoneIndex([circle, other])
    points = [
        _moved(latitude, longitude, metres, bearing)
        for metres, bearing in zip(distances, bearings, strict=False)
    ]

    expected = [geodesic((latitude, longitude), point).meters - radius for point in points]

    assert _signed(index, circle, points) == pytest.approx(expected, abs=0.5)


@pytest.mark.parametrize("frame_offset_m", [0.0, 20_000.0])
def test_polygon_distances_agree_with_geodesic(frame_offset_m: float) -> None:
    zone = _square(LAT, LON, 0.004, hole_deg=0.001)
    # A mirror zone as far on the other side puts the frame's centre frame_offset_m away.
    mirror = _circle(*_moved(LAT, LON, 2 * frame_offset_m, 225.0), 10.0)
    index = ZoneIndex([zone, mirror] if frame_offset_m else [zone])
    points = [
        _moved(LAT, LON, metres, bearing)
        for metres, bearing in [(0, 0), (80, 30), (300, 10), (420, 45), (600, 80), (900, 200)]
    ]

    expected = [_geodesic_to_edge(zone, *point) for point in points]

    assert _signed(index, zone, points) == pytest.approx(expected, abs=0.5)
    assert min(expected) < 0 < max(expected)


def test_containing_grows_zones_by_buffer_and_slack() -> None:
    circle = _circle(LAT, LON, 50.0, buffer_m=10.0)
    index = ZoneIndex([circle])
    at_55, at_65 = _moved(LAT, LON, 55, 90), _moved(LAT, LON, 65, 90)
    latitudes, longitudes = np.array([at_55, at_65]).T

    assert index.containing(latitudes, longitudes) == [(0, circle.id)]
    assert index.containing(latitudes, longitudes, np.array([-10.0, 0.0])) == []
    assert index.containing(latitudes, longitudes, 10.0) == [(0, circle.id), (1, circle.id)]


def test_containing_with_confident_slack_needs_the_whole_accuracy_circle_inside() -> None:
    zone = _square(LAT, LON, 0.001)
    index = ZoneIndex([zone])
    near_edge = _moved(LAT, LON, 100, 0)  # about 11 m inside the northern edge
    latitudes, longitudes = np.array([near_edge, near_edge]).T

    hits = index.containing(latitudes, longitudes, slack_m=-np.array([5.0, 20.0]))

    assert hits == [(0, zone.id)]


@GEOMETRY
@given(
    offsets=st.lists(
        st.tuples(st.floats(-0.004, 0.004), st.floats(-0.004, 0.004), st.floats(-40, 40)),
        min_size=1,
        max_size=30,
    )
)
def test_containing_agrees_with_signed_distances(
    offsets: list[tuple[float, float, float]],
) -> None:
    zones = [
        _circle(LAT, LON, 120.0, buffer_m=15.0),
        _circle(LAT + 0.002, LON - 0.002, 40.0),
        _square(LAT - 0.001, LON + 0.001, 0.0015, hole_deg=0.0005),
    ]
    index = ZoneIndex(zones)
    latitudes = np.array([LAT + north for north, _, _ in offsets])
    longitudes = np.array([LON + east for _, east, _ in offsets])
    slack = np.array([extra for _, _, extra in offsets])

    found = set(index.containing(latitudes, longitudes, slack))

    for zone in zones:
        distances = index.signed_distances([zone.id] * len(offsets), latitudes, longitudes)
        for ping, distance in enumerate(distances.tolist()):
            threshold = zone.buffer_m + slack[ping]
            # Within PLANAR_ERROR_M of the threshold a circle's answer is geodesic, its distance
            # here possibly planar.
            if abs(distance - threshold) > 0.5:
                assert ((ping, zone.id) in found) == (distance <= threshold)


def test_an_empty_index_finds_nothing() -> None:
    index = ZoneIndex([])

    assert len(index) == 0
    assert index.containing(np.array([LAT]), np.array([LON]), 100.0) == []
    assert index.signed_distances([], np.array([]), np.array([])).size == 0
    batch = evaluate(index, [_ping(None, LAT, LON)])
    assert np.isnan(batch.signed_distances).all()
    assert batch.restricted_zones == (frozenset(),)


def test_kinds_filter_containing() -> None:
    work = _circle(LAT, LON, 100.0)
    restricted = _square(LAT, LON, 0.0005, kind="restricted")
    index = ZoneIndex([work, restricted])
    latitudes, longitudes = np.array([LAT]), np.array([LON])

    assert {zone for _, zone in index.containing(latitudes, longitudes)} == {
        work.id,
        restricted.id,
    }
    assert index.containing(latitudes, longitudes, kinds={"restricted"}) == [(0, restricted.id)]
    assert index.containing(latitudes, longitudes, kinds={"assembly_point"}) == []


def test_evaluate_reports_own_distance_and_confident_restricted_zones() -> None:
    work = _circle(LAT, LON, 100.0)
    restricted = _square(LAT, LON, 0.0005, kind="restricted")  # about 55 m each side
    index = ZoneIndex([work, restricted])
    pings = [
        _ping(work.id, LAT, LON, accuracy=5.0),
        _ping(None, LAT, LON, accuracy=80.0),
        _ping(work.id, *_moved(LAT, LON, 150, 0)),
    ]

    batch = evaluate(index, pings)

    assert batch.signed_distances[0] == pytest.approx(-100.0, abs=0.01)
    assert np.isnan(batch.signed_distances[1])
    assert batch.signed_distances[2] == pytest.approx(50.0, abs=0.01)
    assert batch.restricted_zones == (frozenset({restricted.id}), frozenset(), frozenset())


# Hysteresis


def _feed(
    pings: list[tuple[float, float, float]], state: TrackState | None = None, **flags: bool
) -> list[Step]:
    """Steps of (seconds after START, signed distance, accuracy) pings at one spot, buffer 0."""
    state = state or TrackState()
    steps = []
    for seconds, distance, accuracy in pings:
        step = advance(
            state,
            at=START + timedelta(seconds=seconds),
            latitude=LAT,
            longitude=LON,
            accuracy_m=accuracy,
            signed_distance_m=distance,
            buffer_m=0.0,
            mock=flags.get("mock", False),
            thresholds=THRESHOLDS,
        )
        state = step.state
        steps.append(step)
    return steps


def _transitions(steps: list[Step]) -> list[Transition | None]:
    return [step.transition for step in steps]


def test_the_first_confidently_inside_ping_enters() -> None:
    steps = _feed([(0, -3, 5), (10, -8, 5), (20, -20, 5)])

    assert _transitions(steps) == [None, Transition.ENTERED, None]
    assert steps[-1].state.inside is True


def test_an_inaccurate_ping_near_the_edge_does_not_exit() -> None:
    steps = _feed([(0, -20, 5), (10, 15, 50), (80, 30, 40), (100, -10, 5)])

    assert _transitions(steps) == [Transition.ENTERED, None, None, None]
    assert steps[-1].state.inside is True


def test_exit_only_after_the_dwell() -> None:
    steps = _feed([(0, -20, 5), (10, 30, 5), (40, 30, 5), (69, 30, 5), (70, 30, 5)])

    assert _transitions(steps) == [Transition.ENTERED, None, None, None, Transition.LEFT]
    assert steps[-1].state.inside is False


def test_an_ambiguous_ping_neither_ends_nor_completes_a_dwell() -> None:
    steps = _feed([(0, -20, 5), (10, 30, 5), (50, 3, 5), (75, 3, 5), (80, 30, 5)])

    assert _transitions(steps) == [Transition.ENTERED, None, None, None, Transition.LEFT]


def test_a_brief_excursion_does_not_exit() -> None:
    steps = _feed([(0, -20, 5), (10, 30, 5), (50, 30, 5), (60, -10, 5), (90, 30, 5), (140, 30, 5)])

    assert Transition.LEFT not in _transitions(steps)
    assert steps[-1].state.inside is True


def test_a_track_first_seen_outside_settles_outside_without_leaving() -> None:
    steps = _feed([(0, 300, 5), (30, 300, 5), (60, 300, 5), (70, -20, 5)])

    assert _transitions(steps) == [None, None, None, Transition.ENTERED]
    assert [step.state.inside for step in steps] == [None, None, False, True]


def test_an_out_of_order_ping_is_ignored() -> None:
    inside = _feed([(0, -20, 5), (100, -20, 5)])[-1].state

    late = _feed([(50, 500, 5)], inside)[0]

    assert late.state == inside
    assert late.transition is None
    assert late.implausible is False
    assert late.speed_mps is None


def test_a_speed_jump_is_implausible() -> None:
    first = advance(
        TrackState(),
        at=START,
        latitude=LAT,
        longitude=LON,
        accuracy_m=5,
        signed_distance_m=-20,
        buffer_m=0,
        mock=False,
        thresholds=THRESHOLDS,
    )
    jump = _moved(LAT, LON, 500, 90)

    second = advance(
        first.state,
        at=START + timedelta(seconds=10),
        latitude=jump[0],
        longitude=jump[1],
        accuracy_m=5,
        signed_distance_m=-20,
        buffer_m=0,
        mock=False,
        thresholds=THRESHOLDS,
    )

    assert first.speed_mps is None
    assert first.implausible is False
    assert second.speed_mps == pytest.approx(50.0, abs=0.01)
    assert second.implausible is True


def test_a_mock_location_is_implausible() -> None:
    steps = _feed([(0, -20, 5), (10, -20, 5)], mock=True)

    assert [step.implausible for step in steps] == [True, True]
    assert steps[1].speed_mps == 0.0


ACCURACIES = st.floats(1, 50)
GAPS = st.floats(0.5, 40)


@st.composite
def not_clearly_outside(draw: st.DrawFn) -> tuple[float, float, float]:
    accuracy = draw(ACCURACIES)
    return draw(GAPS), draw(st.floats(-500, accuracy)), accuracy


@st.composite
def any_ping(draw: st.DrawFn) -> tuple[float, float, float]:
    return draw(GAPS), draw(st.floats(-500, 500)), draw(ACCURACIES)


@st.composite
def clearly_outside(draw: st.DrawFn) -> tuple[float, float, float]:
    accuracy = draw(ACCURACIES)
    return draw(GAPS), draw(st.floats(accuracy + 0.01, accuracy + 500)), accuracy


def _timed(pings: list[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
    """Gaps to seconds after START."""
    seconds, timed = 0.0, []
    for gap, distance, accuracy in pings:
        seconds += gap
        timed.append((seconds, distance, accuracy))
    return timed


@given(st.lists(not_clearly_outside(), max_size=40))
def test_a_track_never_clearly_outside_never_leaves(
    pings: list[tuple[float, float, float]],
) -> None:
    assert Transition.LEFT not in _transitions(_feed(_timed(pings)))


@given(
    prefix=st.lists(any_ping(), max_size=15),
    entry_accuracy=ACCURACIES,
    outside=st.lists(clearly_outside(), min_size=1, max_size=30),
)
def test_a_track_outside_past_the_dwell_after_inside_leaves_once(
    prefix: list[tuple[float, float, float]],
    entry_accuracy: float,
    outside: list[tuple[float, float, float]],
) -> None:
    covered = sum(gap for gap, _, _ in outside[1:])
    if covered < THRESHOLDS.dwell_s:
        # Stretch the run past the dwell: its last ping comes late enough.
        gap, distance, accuracy = outside[-1]
        late = THRESHOLDS.dwell_s - covered + 1
        if len(outside) == 1:
            outside = [*outside, (late, distance, accuracy)]
        else:
            outside = [*outside[:-1], (gap + late, distance, accuracy)]
    entry = (1.0, -entry_accuracy - 1, entry_accuracy)

    steps = _feed(_timed([*prefix, entry, *outside]))

    after_entry = _transitions(steps[len(prefix) + 1 :])
    assert after_entry.count(Transition.LEFT) == 1
    assert steps[-1].state.inside is False


def _side(distance: float, accuracy: float, buffer: float) -> str:
    if distance + accuracy <= buffer:
        return "inside"
    return "outside" if distance > accuracy + buffer else "ambiguous"


@GEOMETRY
@given(
    st.floats(18, 50),
    st.floats(75, 135),
    st.floats(5, 500),
    st.floats(0, 20),
    st.lists(st.tuples(st.floats(0, 1_000), st.floats(0, 360), st.floats(1, 60)), max_size=20),
)
def test_accuracy_aware_distances_decide_as_the_geodesic_does(
    latitude: float,
    longitude: float,
    radius: float,
    buffer: float,
    fixes: list[tuple[float, float, float]],
) -> None:
    """Refining only near ``buffer ± accuracy`` never changes what advance decides."""
    zone = _circle(latitude, longitude, radius, buffer)
    index = ZoneIndex([zone])
    points = [_moved(latitude, longitude, metres, bearing) for metres, bearing, _ in fixes]
    if not points:
        return
    accuracies = np.array([accuracy for _, _, accuracy in fixes])
    latitudes, longitudes = np.array(points).T
    fast = index.signed_distances([zone.id] * len(points), latitudes, longitudes, accuracies)
    for (lat, lon), accuracy, value in zip(points, accuracies, fast, strict=True):
        exact = float(geodesic((latitude, longitude), (lat, lon)).meters) - radius
        assert _side(value, accuracy, buffer) == _side(exact, accuracy, buffer)


@GEOMETRY
@given(st.floats(18, 50), st.floats(75, 135), st.floats(1, 5_000), st.floats(0, 360))
def test_speed_between_fixes_agrees_with_the_geodesic(
    latitude: float, longitude: float, metres: float, bearing: float
) -> None:
    there = _moved(latitude, longitude, metres, bearing)
    first = advance(
        TrackState(),
        at=START,
        latitude=latitude,
        longitude=longitude,
        accuracy_m=5,
        signed_distance_m=0,
        buffer_m=0,
        mock=False,
        thresholds=THRESHOLDS,
    )
    second = advance(
        first.state,
        at=START + timedelta(seconds=100),
        latitude=there[0],
        longitude=there[1],
        accuracy_m=5,
        signed_distance_m=0,
        buffer_m=0,
        mock=False,
        thresholds=THRESHOLDS,
    )
    assert second.speed_mps == pytest.approx(metres / 100, rel=1e-3)
