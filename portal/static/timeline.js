/* A job's timeline map: the zone, each person's track in their own colour with where they were
   last, and where the alerts were raised. Positions arrive in WGS-84; PortalMap draws them on
   the tiles' datum. */
(function () {
  "use strict";

  // Distinct from the zone colours of map.js, so a track never reads as a fence.
  var TRACK_COLOURS = ["#7a2e9e", "#c4320a", "#0e7090", "#a15c07", "#3e4784", "#b8397f"];

  var element = document.querySelector("[data-map]");
  var data = PortalMap.readJson("[data-timeline]");
  if (!element || !data || typeof L === "undefined") {
    return;
  }
  var view = PortalMap.open(element);
  // A fix the engine found implausible (a faked location, a jump no one can run) did not move
  // the person: it is shown where the alert was raised, not as part of the track or the view.
  var implausible = {};
  data.alerts.forEach(function (alert) {
    if (alert.kind === "implausible_movement") {
      implausible[alert.latitude + "," + alert.longitude] = true;
    }
  });
  var framed = L.featureGroup().addTo(view.map);
  if (data.zone) {
    PortalMap.zoneLayer(view, data.zone).addTo(framed);
  }
  data.tracks.forEach(function (track, index) {
    var colour = TRACK_COLOURS[index % TRACK_COLOURS.length];
    var points = track.points
      .filter(function (point) {
        return !implausible[point[0] + "," + point[1]];
      })
      .map(function (point) {
        return view.toMap(point[0], point[1]);
      });
    if (!points.length) {
      return;
    }
    L.polyline(points, { color: colour, weight: 3, opacity: 0.8 })
      .bindTooltip(track.person)
      .addTo(framed);
    L.circleMarker(points[points.length - 1], {
      radius: 7,
      color: "#ffffff",
      weight: 2,
      fillColor: colour,
      fillOpacity: 1
    })
      .bindTooltip(track.person, { permanent: true, direction: "right" })
      .addTo(framed);
  });
  data.alerts.forEach(function (alert) {
    var marker = L.circleMarker(view.toMap(alert.latitude, alert.longitude), {
      radius: 6,
      color: "#b42318",
      weight: 2,
      fillColor: "#fef3f2",
      fillOpacity: 1
    }).bindTooltip(alert.label);
    marker.addTo(alert.kind === "implausible_movement" ? view.map : framed);
  });
  if (framed.getLayers().length) {
    view.map.fitBounds(framed.getBounds(), { padding: [24, 24], maxZoom: 18 });
  }
})();
