/* The live plant map: zones, the people of the jobs under way and the open alerts, asked for
   every few seconds. An alert row keeps what is typed in its note across refreshes, since rows
   are updated in place rather than rebuilt. */
(function () {
  "use strict";

  var root = document.getElementById("live-map");
  if (!root) {
    return;
  }
  var texts = PortalMap.readJson("script[data-texts]");
  var dataUrl = root.getAttribute("data-data-url");
  var alertsUrl = root.getAttribute("data-alerts-url");
  var pollMs = Number(root.getAttribute("data-poll-seconds")) * 1000;
  var canHandle = root.getAttribute("data-can-handle") === "true";
  var view = PortalMap.open(root.querySelector("[data-map]"));
  var zoneLayers = L.featureGroup().addTo(view.map);
  var peopleLayer = L.featureGroup().addTo(view.map);
  var alertLayer = L.featureGroup().addTo(view.map);
  var PERSON_COLOURS = { inside: "#067647", outside: "#b42318", unknown: "#5b6b7c" };
  var drawnZones = null;
  var fitted = false;
  var timer = null;
  var asking = false;
  var askAgain = false;
  var lang = document.documentElement.lang || undefined;

  function part(testid) {
    return root.querySelector('[data-testid="' + testid + '"]');
  }

  // Times of today as a clock; earlier ones with their day, since a night shift spans two.
  function clock(iso) {
    if (!iso) {
      return "";
    }
    var moment = new Date(iso);
    var time = moment.toLocaleTimeString(lang, { hour12: false });
    if (moment.toDateString() === new Date().toDateString()) {
      return time;
    }
    return moment.toLocaleDateString(lang, { month: "2-digit", day: "2-digit" }) + " " + time;
  }

  function drawZones(zones) {
    var key = JSON.stringify(zones);
    if (key === drawnZones) {
      return;
    }
    drawnZones = key;
    zoneLayers.clearLayers();
    zones.forEach(function (zone) {
      PortalMap.zoneLayer(view, zone).addTo(zoneLayers);
    });
    if (!fitted && zones.length) {
      fitted = true;
      view.map.fitBounds(zoneLayers.getBounds(), { maxZoom: 17, padding: [20, 20] });
    }
  }

  function personState(person) {
    if (person.latitude === null || person.longitude === null) {
      return "no_fix";
    }
    if (person.inside === true) {
      return "inside";
    }
    return person.inside === false ? "outside" : "unknown";
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function drawWatches(watches) {
    peopleLayer.clearLayers();
    var list = part("watch-list");
    list.textContent = "";
    watches.forEach(function (watch) {
      var row = element("li", "watch-row");
      row.setAttribute("data-testid", "watch-row");
      row.setAttribute("data-watch-id", watch.id);
      row.setAttribute("data-state", watch.state);
      row.appendChild(element("strong", "", watch.label));
      row.appendChild(element("span", "meta", " " + clock(watch.starts_at) + " – " + clock(watch.ends_at)));
      var people = element("ul", "people");
      watch.people.forEach(function (person) {
        var state = personState(person);
        // Whether someone not checked in is inside says nothing about the job: grey.
        var colour = person.checked_in && state !== "no_fix" ? state : "unknown";
        var item = element("li", "person-row person-" + state);
        item.setAttribute("data-testid", "person-row");
        item.setAttribute("data-state", state);
        item.setAttribute("data-checked-in", String(person.checked_in));
        item.setAttribute("data-user-id", person.user_id);
        item.appendChild(element("span", "dot " + colour));
        item.appendChild(element("span", "", person.name));
        var status = person.checked_in ? texts[state] : texts.not_checked_in;
        item.appendChild(element("span", "meta", " " + status + (person.last_seen_at ? " · " + clock(person.last_seen_at) : "")));
        people.appendChild(item);
        if (state !== "no_fix") {
          var where = view.toMap(person.latitude, person.longitude);
          if (person.accuracy_m) {
            L.circle(where, {
              radius: person.accuracy_m, color: PERSON_COLOURS[colour], weight: 1,
              fillOpacity: 0.08, interactive: false
            }).addTo(peopleLayer);
          }
          L.circleMarker(where, {
            radius: 7, color: "#fff", weight: 2, fillColor: PERSON_COLOURS[colour], fillOpacity: 1
          }).bindTooltip(person.name + " · " + watch.label).addTo(peopleLayer);
        }
      });
      row.appendChild(people);
      list.appendChild(row);
    });
    part("no-watches").hidden = watches.length > 0;
  }

  function act(alertId, action, row) {
    var note = row.querySelector("[data-testid=alert-note]").value.trim();
    var error = row.querySelector("[data-testid=alert-error]");
    if (action !== "acknowledge" && !note) {
      error.textContent = texts.need_note;
      error.hidden = false;
      return;
    }
    error.hidden = true;
    row.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    PortalMap.send("POST", alertsUrl + "/" + alertId + "/" + action, note ? { note: note } : {})
      .then(function (answer) {
        if (!answer.ok) {
          var problems = (answer.body && answer.body.errors) || [];
          error.textContent = problems.length
            ? problems.map(function (p) { return p.message; }).join(" ")
            : (answer.body && answer.body.detail) || texts.failed;
          error.hidden = false;
          return;
        }
        row.querySelector("[data-testid=alert-note]").value = "";
      })
      .catch(function () {
        error.textContent = texts.failed;
        error.hidden = false;
      })
      .then(function () {
        row.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
        poll();
      });
  }

  function alertRow(alert) {
    var row = element("li", "alert-row");
    row.setAttribute("data-testid", "alert-row");
    row.setAttribute("data-alert-id", alert.id);
    row.appendChild(element("strong", "alert-kind"));
    row.appendChild(element("span", "alert-state badge"));
    row.appendChild(element("span", "meta alert-facts"));
    if (canHandle) {
      var actions = element("div", "alert-actions");
      var note = element("input");
      note.type = "text";
      note.maxLength = 2000;
      note.placeholder = texts.note;
      note.setAttribute("aria-label", texts.note);
      note.setAttribute("data-testid", "alert-note");
      actions.appendChild(note);
      [["acknowledge", ""], ["resolve", ""], ["violation", "danger"]].forEach(function (pair) {
        var button = element("button", pair[1], texts[pair[0]]);
        button.type = "button";
        button.setAttribute("data-testid", "alert-" + pair[0]);
        button.setAttribute("data-action", pair[0]);
        actions.appendChild(button);
      });
      actions.addEventListener("click", function (event) {
        var action = event.target.getAttribute && event.target.getAttribute("data-action");
        if (action) {
          act(row.getAttribute("data-alert-id"), action, row);
        }
      });
      var error = element("p", "field-error");
      error.setAttribute("data-testid", "alert-error");
      error.hidden = true;
      actions.appendChild(error);
      row.appendChild(actions);
    }
    return row;
  }

  function drawAlerts(alerts) {
    alertLayer.clearLayers();
    var list = part("alert-list");
    var rows = {};
    list.querySelectorAll("[data-testid=alert-row]").forEach(function (row) {
      rows[row.getAttribute("data-alert-id")] = row;
    });
    var newest = alerts.slice().sort(function (a, b) {
      return a.opened_at < b.opened_at ? 1 : a.opened_at > b.opened_at ? -1 : 0;
    });
    var wanted = newest.map(function (alert) {
      var row = rows[alert.id] || alertRow(alert);
      delete rows[alert.id];
      row.setAttribute("data-kind", alert.kind);
      row.setAttribute("data-state", alert.state);
      row.querySelector(".alert-kind").textContent = alert.kind_label;
      var badge = row.querySelector(".alert-state");
      badge.hidden = alert.state !== "acknowledged";
      badge.textContent = texts.acknowledged;
      var facts = [alert.label, alert.person, clock(alert.opened_at)].filter(Boolean);
      row.querySelector(".alert-facts").textContent = facts.join(" · ");
      var acknowledge = row.querySelector("[data-testid=alert-acknowledge]");
      if (acknowledge) {
        acknowledge.hidden = alert.state !== "open";
      }
      if (alert.latitude !== null && alert.longitude !== null) {
        L.circleMarker(view.toMap(alert.latitude, alert.longitude), {
          radius: 12, color: "#b42318", weight: 3, dashArray: "3 3", fill: false
        }).bindTooltip(alert.kind_label + (alert.person ? " · " + alert.person : "")).addTo(alertLayer);
      }
      return row;
    });
    Object.keys(rows).forEach(function (id) {
      rows[id].remove();
    });
    // Re-appending a row would take the focus out of a note being typed: only when the order
    // really changed.
    var current = Array.prototype.slice.call(list.children);
    var same = current.length === wanted.length && current.every(function (row, i) { return row === wanted[i]; });
    if (!same) {
      wanted.forEach(function (row) { list.appendChild(row); });
    }
    part("no-alerts").hidden = alerts.length > 0;
    part("open-alerts").textContent = String(alerts.filter(function (a) { return a.state === "open"; }).length);
  }

  function show(snapshot) {
    drawZones(snapshot.zones);
    drawWatches(snapshot.watches);
    drawAlerts(snapshot.alerts);
    var refreshed = part("last-refresh");
    refreshed.textContent = clock(snapshot.generated_at);
    refreshed.setAttribute("datetime", snapshot.generated_at);
    part("live-error").hidden = true;
    root.setAttribute("data-refreshed", snapshot.generated_at);
  }

  // One request at a time: an action asks for fresh data at once, and a refresh already on its
  // way may have been answered before the action took effect, so it is asked again after it.
  function poll() {
    clearTimeout(timer);
    if (asking) {
      askAgain = true;
      return;
    }
    asking = true;
    fetch(dataUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error(String(response.status));
        }
        return response.json();
      })
      .then(show)
      .catch(function () {
        var error = part("live-error");
        var since = part("last-refresh").textContent;
        error.textContent = since && since !== "—" ? PortalMap.format(texts.stale, { time: since }) : texts.failed;
        error.hidden = false;
      })
      .then(function () {
        asking = false;
        if (askAgain) {
          askAgain = false;
          poll();
        } else {
          timer = setTimeout(poll, pollMs);
        }
      });
  }

  drawZones(PortalMap.readJson("script[data-zones]"));
  poll();
})();
