/* What the plant maps share: opening a Leaflet map from its element's data attributes, drawing a
   stored zone, and talking to the page's JSON endpoints with the session's CSRF token.

   Zones and positions are stored in WGS-84. When the tiles are GCJ-02 (data-coordinates="gcj02",
   the datum of Chinese web maps), everything drawn is shifted to GCJ-02 with gcj02.js and every
   clicked position is shifted back before it is sent, so storage never holds GCJ-02. */
(function () {
  "use strict";

  var KIND_COLOURS = { work_area: "#0b6bcb", restricted: "#b42318", assembly_point: "#067647" };
  var METRES_PER_DEGREE_LAT = 110540;
  var METRES_PER_DEGREE_LON = 111320;
  // A sharp corner's offset point runs far out along the bisector; past this many buffers it
  // says nothing useful about where the fence is and only distorts the outline.
  var MITRE_LIMIT = 3;

  function readJson(selector) {
    var node = document.querySelector(selector);
    return node ? JSON.parse(node.textContent) : null;
  }

  function format(text, params) {
    return text.replace(/%\((\w+)\)s/g, function (_match, key) {
      return params && params[key] !== undefined ? String(params[key]) : "";
    });
  }

  function number(value) {
    return value === "" || value === undefined || value === null ? null : Number(value);
  }

  function open(element) {
    var gcj = element.getAttribute("data-coordinates") === "gcj02";
    // Leaflet's own buttons are titled in English: the page gives them its language.
    var map = L.map(element, { zoomControl: false });
    L.control.zoom({
      zoomInTitle: element.getAttribute("data-zoom-in"),
      zoomOutTitle: element.getAttribute("data-zoom-out")
    }).addTo(map);
    L.tileLayer(element.getAttribute("data-tile-url"), {
      attribution: element.getAttribute("data-attribution"),
      maxZoom: 19
    }).addTo(map);
    var view = {
      map: map,
      gcj: gcj,
      // Stored WGS-84 (lat, lon) -> the position to draw at.
      toMap: function (lat, lon) {
        var shifted = gcj ? Gcj02.toGcj02(lat, lon) : [lat, lon];
        return L.latLng(shifted[0], shifted[1]);
      },
      // A position on the map (a click) -> WGS-84 [lat, lon] to store.
      toStored: function (latlng) {
        return gcj ? Gcj02.toWgs84(latlng.lat, latlng.lng) : [latlng.lat, latlng.lng];
      }
    };
    var lat = number(element.getAttribute("data-latitude"));
    var lon = number(element.getAttribute("data-longitude"));
    if (lat !== null && lon !== null) {
      map.setView(view.toMap(lat, lon), 16);
    } else {
      map.setView(view.toMap(35, 105), 4);
    }
    return view;
  }

  // Rings of a GeoJSON polygon (lon, lat; closed) -> rings of map positions (open, as Leaflet
  // wants them).
  function rings(view, geometry) {
    return geometry.coordinates.map(function (ring) {
      return ring.slice(0, ring.length - 1).map(function (position) {
        return view.toMap(position[1], position[0]);
      });
    });
  }

  // The outline a buffer draws around a ring: each corner moved along the bisector of its two
  // edges' normals, away from the zone (outwards for the outer ring, into the hole for a hole).
  // Computed in metres on a local flat projection, which is exact enough over a plant.
  function offsetRing(latlngs, metres, outer) {
    var origin = latlngs[0];
    var cos = Math.cos(origin.lat * Math.PI / 180);
    var points = latlngs.map(function (p) {
      return [
        (p.lng - origin.lng) * METRES_PER_DEGREE_LON * cos,
        (p.lat - origin.lat) * METRES_PER_DEGREE_LAT
      ];
    });
    var area = 0;
    for (var i = 0; i < points.length; i++) {
      var a = points[i], b = points[(i + 1) % points.length];
      area += a[0] * b[1] - b[0] * a[1];
    }
    // The right-hand normal of an edge points out of a counter-clockwise ring.
    var side = (area > 0 ? 1 : -1) * (outer ? 1 : -1);
    function normal(a, b) {
      var dx = b[0] - a[0], dy = b[1] - a[1];
      var length = Math.sqrt(dx * dx + dy * dy) || 1;
      return [side * dy / length, -side * dx / length];
    }
    return points.map(function (point, index) {
      var previous = points[(index - 1 + points.length) % points.length];
      var next = points[(index + 1) % points.length];
      var n1 = normal(previous, point), n2 = normal(point, next);
      var mx = n1[0] + n2[0], my = n1[1] + n2[1];
      var length = Math.sqrt(mx * mx + my * my);
      var x = point[0], y = point[1];
      if (length > 1e-9) {
        mx /= length;
        my /= length;
        var cosHalf = mx * n1[0] + my * n1[1];
        var reach = Math.min(metres / Math.max(cosHalf, 1e-9), metres * MITRE_LIMIT);
        x += mx * reach;
        y += my * reach;
      }
      return L.latLng(
        origin.lat + y / METRES_PER_DEGREE_LAT,
        origin.lng + x / (METRES_PER_DEGREE_LON * cos)
      );
    });
  }

  function zoneLayer(view, zone, extra) {
    var colour = KIND_COLOURS[zone.kind] || "#5b6b7c";
    var style = Object.assign(
      { color: colour, weight: 2, fillColor: colour, fillOpacity: 0.15 },
      extra || {}
    );
    var outline = { color: colour, weight: 1.5, dashArray: "6 6", fill: false, interactive: false };
    var group = L.featureGroup();
    var geometry = zone.geometry;
    if (geometry.type === "Point") {
      var centre = view.toMap(geometry.coordinates[1], geometry.coordinates[0]);
      L.circle(centre, Object.assign({ radius: zone.radius_m }, style)).addTo(group);
      if (zone.buffer_m > 0) {
        L.circle(centre, Object.assign({ radius: zone.radius_m + zone.buffer_m }, outline)).addTo(group);
      }
    } else {
      var drawn = rings(view, geometry);
      L.polygon(drawn, style).addTo(group);
      if (zone.buffer_m > 0) {
        drawn.forEach(function (ring, index) {
          L.polygon(offsetRing(ring, zone.buffer_m, index === 0), outline).addTo(group);
        });
      }
    }
    group.bindTooltip(zone.name);
    return group;
  }

  function cookie(name) {
    var found = document.cookie.split("; ").filter(function (item) {
      return item.indexOf(name + "=") === 0;
    })[0];
    return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
  }

  // The site's CSRF check reads the token from this header and compares it with the cookie.
  function send(method, url, body) {
    var options = {
      method: method,
      credentials: "same-origin",
      headers: { Accept: "application/json", "x-csrftoken": cookie("portal_csrf") }
    };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
      var type = response.headers.get("content-type") || "";
      var parsed = type.indexOf("json") >= 0 ? response.json() : Promise.resolve(null);
      return parsed.then(function (data) {
        return { ok: response.ok, status: response.status, body: data };
      });
    });
  }

  window.PortalMap = {
    KIND_COLOURS: KIND_COLOURS,
    open: open,
    zoneLayer: zoneLayer,
    readJson: readJson,
    format: format,
    send: send
  };
})();
