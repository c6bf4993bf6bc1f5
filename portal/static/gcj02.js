/* WGS-84 <-> GCJ-02 for maps whose tiles are drawn in GCJ-02. The same arithmetic as
   geofence/gcj02.py, operation for operation, so the browser and the server agree to 1e-9 degrees
   (tests/unit/test_gcj02.py runs both). Zones are stored in WGS-84; only the map shifts them. */
(function (root) {
  "use strict";

  // The ellipsoid the transform is defined on (Krasovsky 1940), not WGS-84's.
  var SEMI_MAJOR_AXIS = 6378245.0;
  var ECCENTRICITY_SQUARED = 0.00669342162296594323;
  var MIN_LON = 72.004, MAX_LON = 137.8347, MIN_LAT = 0.8293, MAX_LAT = 55.8271;
  var TOLERANCE_DEG = 1e-7;
  var MAX_STEPS = 30;
  var PI = Math.PI;

  function outOfChina(lat, lon) {
    return !(MIN_LON <= lon && lon <= MAX_LON && MIN_LAT <= lat && lat <= MAX_LAT);
  }

  function latSeries(x, y) {
    var value = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    value += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
    value += (20.0 * Math.sin(y * PI) + 40.0 * Math.sin(y / 3.0 * PI)) * 2.0 / 3.0;
    value += (160.0 * Math.sin(y / 12.0 * PI) + 320.0 * Math.sin(y * PI / 30.0)) * 2.0 / 3.0;
    return value;
  }

  function lonSeries(x, y) {
    var value = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    value += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
    value += (20.0 * Math.sin(x * PI) + 40.0 * Math.sin(x / 3.0 * PI)) * 2.0 / 3.0;
    value += (150.0 * Math.sin(x / 12.0 * PI) + 300.0 * Math.sin(x / 30.0 * PI)) * 2.0 / 3.0;
    return value;
  }

  function shift(lat, lon) {
    var x = lon - 105.0, y = lat - 35.0;
    var radLat = lat / 180.0 * PI;
    var sinLat = Math.sin(radLat);
    var w = 1.0 - ECCENTRICITY_SQUARED * sinLat * sinLat;
    var sqrtW = Math.sqrt(w);
    var meridianRadius = SEMI_MAJOR_AXIS * (1.0 - ECCENTRICITY_SQUARED) / (w * sqrtW);
    var parallelRadius = SEMI_MAJOR_AXIS / sqrtW * Math.cos(radLat);
    return [
      latSeries(x, y) * 180.0 / (meridianRadius * PI),
      lonSeries(x, y) * 180.0 / (parallelRadius * PI)
    ];
  }

  function toGcj02(lat, lon) {
    if (outOfChina(lat, lon)) {
      return [lat, lon];
    }
    var d = shift(lat, lon);
    return [lat + d[0], lon + d[1]];
  }

  // GCJ-02 has no closed inverse: iterate the forward transform to its fixed point.
  function toWgs84(lat, lon) {
    if (outOfChina(lat, lon)) {
      return [lat, lon];
    }
    var wgsLat = lat, wgsLon = lon;
    for (var step = 0; step < MAX_STEPS; step++) {
      var gcj = toGcj02(wgsLat, wgsLon);
      var stepLat = gcj[0] - lat, stepLon = gcj[1] - lon;
      wgsLat = wgsLat - stepLat;
      wgsLon = wgsLon - stepLon;
      if (Math.abs(stepLat) < TOLERANCE_DEG && Math.abs(stepLon) < TOLERANCE_DEG) {
        break;
      }
    }
    return [wgsLat, wgsLon];
  }

  var api = { toGcj02: toGcj02, toWgs84: toWgs84, outOfChina: outOfChina };
  if (typeof module !== "undefined" && module.exports) {
    module.exports = api;
  } else {
    root.Gcj02 = api;
  }
})(this);
