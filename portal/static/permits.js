/* Permit pages: an approval records where the approver stands (GB 30871 §4.11a). The position is
   asked for as soon as the decide form is shown and written into its hidden inputs; a phone that
   refuses or has no fix sends the decision without it — the decision is never held up. */
(function () {
  "use strict";

  var POSITION_TIMEOUT_MS = 15000;

  function askPosition(form) {
    var latitude = form.querySelector("input[name=latitude]");
    var status = form.querySelector("[data-position-status]");
    if (!latitude || !navigator.geolocation) {
      return;
    }
    navigator.geolocation.getCurrentPosition(
      function (position) {
        latitude.value = String(position.coords.latitude);
        form.querySelector("input[name=longitude]").value = String(position.coords.longitude);
        form.querySelector("input[name=accuracy]").value = String(position.coords.accuracy);
        form.setAttribute("data-position", "ready");
        if (status) {
          status.setAttribute("data-ready", "true");
        }
      },
      function () {
        form.setAttribute("data-position", "unavailable");
      },
      { enableHighAccuracy: true, timeout: POSITION_TIMEOUT_MS, maximumAge: 60000 }
    );
  }

  function start() {
    document.querySelectorAll("form[data-geolocate]").forEach(askPosition);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
