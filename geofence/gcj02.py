"""WGS-84 ↔ GCJ-02, the obfuscated datum Chinese web maps draw in.

Phones report WGS-84 and zones are stored in it; a map whose tiles are in GCJ-02 needs every
stored position shifted before it is drawn, and every drawn position shifted back before it is
stored. The forward transform is the publicly documented one (Krasovsky 1940 ellipsoid and two
trigonometric series); it has no closed inverse, so :func:`to_wgs84` iterates the forward
transform to a fixed point. ``portal/static/gcj02.js`` is the same arithmetic for the browser and
must stay operation for operation identical, since a test compares the two to 1e-9°.
"""

from __future__ import annotations

import math

# The ellipsoid the transform is defined on (Krasovsky 1940), not WGS-84's.
_SEMI_MAJOR_AXIS = 6378245.0
_ECCENTRICITY_SQUARED = 0.00669342162296594323
# The shift is applied only inside this box; the usual rough outline of mainland China (it
# includes Taiwan and parts of neighbouring countries, as every public implementation does).
_MIN_LON, _MAX_LON = 72.004, 137.8347
_MIN_LAT, _MAX_LAT = 0.8293, 55.8271
# The inverse stops when a step moves the point less than this; one more step would move it by
# about a thousandth of that, far below the 5 cm a map can show.
_TOLERANCE_DEG = 1e-7
_MAX_STEPS = 30


def out_of_china(lat: float, lon: float) -> bool:
    return not (_MIN_LON <= lon <= _MAX_LON and _MIN_LAT <= lat <= _MAX_LAT)


def _lat_series(x: float, y: float) -> float:
    value = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    value += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    value += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    value += (
        (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    )
    return value


def _lon_series(x: float, y: float) -> float:
    value = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    value += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    value += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    value += (
        (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    )
    return value


def _shift(lat: float, lon: float) -> tuple[float, float]:
    """The (dlat, dlon) GCJ-02 adds at a WGS-84 position, in degrees."""
    x, y = lon - 105.0, lat - 35.0
    rad_lat = lat / 180.0 * math.pi
    sin_lat = math.sin(rad_lat)
    w = 1.0 - _ECCENTRICITY_SQUARED * sin_lat * sin_lat
    sqrt_w = math.sqrt(w)
    meridian_radius = _SEMI_MAJOR_AXIS * (1.0 - _ECCENTRICITY_SQUARED) / (w * sqrt_w)
    parallel_radius = _SEMI_MAJOR_AXIS / sqrt_w * math.cos(rad_lat)
    dlat = _lat_series(x, y) * 180.0 / (meridian_radius * math.pi)
    dlon = _lon_series(x, y) * 180.0 / (parallel_radius * math.pi)
    return dlat, dlon


def to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    if out_of_china(lat, lon):
        return lat, lon
    dlat, dlon = _shift(lat, lon)
    return lat + dlat, lon + dlon


def to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """The WGS-84 position that :func:`to_gcj02` maps onto (lat, lon)."""
    if out_of_china(lat, lon):
        return lat, lon
    wgs_lat, wgs_lon = lat, lon
    for _step in range(_MAX_STEPS):
        gcj_lat, gcj_lon = to_gcj02(wgs_lat, wgs_lon)
        step_lat, step_lon = gcj_lat - lat, gcj_lon - lon
        wgs_lat, wgs_lon = wgs_lat - step_lat, wgs_lon - step_lon
        if abs(step_lat) < _TOLERANCE_DEG and abs(step_lon) < _TOLERANCE_DEG:
            break
    return wgs_lat, wgs_lon
