/* On-site tracking (作业定位) on the worker's phone: check in and out, and send positions while
   the job runs.

   Every position goes first into an IndexedDB queue (store "pings", keyed by the ping's id) and
   only then to the server, up to 500 a request; a ping leaves the queue only when the server has
   answered 2xx for it (stored, already stored, or refused with a reason, which is shown as a
   count). Out of signal the queue grows and is sent when the phone is back online, so nothing
   the server acknowledged is lost and nothing it has not seen is dropped. The ids are made here,
   so a batch sent twice (an answer lost on the way back) is stored once.

   The queue is per signed-in user: the server files pings under whoever's session sends them,
   so another login on the same phone must never send them. */
(function () {
  "use strict";

  var BATCH = 500;
  var FLUSH_EVERY_MS = 10000;
  var STATE_EVERY_MS = 60000;
  var POSITION_TIMEOUT_MS = 20000;
  // A phone standing still may get no new fix for minutes; for this long after the last one
  // arrived, it is re-sent with the sample's time, so silence is not mistaken for lost signal.
  var STILL_MS = 120000;
  // A check-in uses the fix the page already has when it is this recent.
  var FRESH_MS = 30000;
  var STORE = "pings";

  var root = document.querySelector("[data-track]");
  if (!root) {
    return;
  }
  var texts = JSON.parse(root.querySelector("[data-track-texts]").textContent);
  var sampleMs = Math.max(1, parseInt(root.getAttribute("data-sample-seconds"), 10) || 15) * 1000;
  var pingsUrl = root.getAttribute("data-pings-url");
  var stateUrl = root.getAttribute("data-state-url");
  var owner = root.getAttribute("data-user");
  var dbName = "portal-track-" + owner;

  var shown = {
    inside: root.querySelector("[data-testid=inside-state]"),
    insideLabel: root.querySelector("[data-inside-label]"),
    online: root.querySelector("[data-testid=online-state]"),
    queued: root.querySelector("[data-testid=queued]"),
    lastSent: root.querySelector("[data-testid=last-sent]"),
    rejected: root.querySelector("[data-testid=rejected]"),
    message: root.querySelector("[data-testid=track-message]"),
  };

  var dbPromise = null;
  var battery = null;
  var geoWatch = null;
  var latest = null;
  var latestAt = 0;
  var recorded = null;
  var asking = false;
  var lastSampleAt = 0;
  var flushing = false;
  var rejectedCount = 0;
  // Who wrote the message shown: a successful send clears only a failed send's message, not a
  // refused check-in's.
  var messageFrom = null;

  // --- small helpers ----------------------------------------------------------------------

  function say(text, from) {
    shown.message.textContent = text || "";
    shown.message.hidden = !text;
    messageFrom = text ? from || null : null;
  }

  function format(text, params) {
    return text.replace(/%\((\w+)\)s/g, function (whole, name) {
      return params[name] === undefined ? whole : params[name];
    });
  }

  function pad(value, width) {
    var text = String(Math.abs(value));
    while (text.length < (width || 2)) {
      text = "0" + text;
    }
    return text;
  }

  /* The server wants the phone's own clock and its offset, e.g. 2026-11-28T09:30:05.120+08:00. */
  function isoWithOffset(date) {
    var offset = -date.getTimezoneOffset();
    return (
      date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) +
      "T" + pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds()) +
      "." + pad(date.getMilliseconds(), 3) +
      (offset >= 0 ? "+" : "-") + pad(Math.floor(Math.abs(offset) / 60)) + ":" +
      pad(Math.abs(offset) % 60)
    );
  }

  function newId() {
    if (window.crypto && crypto.randomUUID) {
      return crypto.randomUUID();
    }
    var bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) {
      return pad(b.toString(16), 2);
    }).join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)]
      .join("-");
  }

  function finite(value) {
    return typeof value === "number" && isFinite(value);
  }

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)portal_csrf=([^;]*)/);
    return match ? match[1] : "";
  }

  function clock(date) {
    return date.toLocaleTimeString(document.documentElement.lang || undefined, { hour12: false });
  }

  // --- the queue --------------------------------------------------------------------------

  function done(request) {
    return new Promise(function (resolve, reject) {
      request.onsuccess = function () {
        resolve(request.result);
      };
      request.onerror = function () {
        reject(request.error);
      };
    });
  }

  function openDb() {
    if (!dbPromise) {
      var opening = indexedDB.open(dbName, 1);
      opening.onupgradeneeded = function () {
        var store = opening.result.createObjectStore(STORE, { keyPath: "id" });
        // Sent oldest first, so the server evaluates the movements in the order they happened.
        store.createIndex("time", "t");
      };
      dbPromise = done(opening);
    }
    return dbPromise;
  }

  /* Resolves once the transaction is committed, not when the request succeeded: only then is a
     ping safely on the phone (or safely gone). */
  function inTransaction(mode, work) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var transaction = db.transaction(STORE, mode);
        var result;
        Promise.resolve(work(transaction.objectStore(STORE))).then(function (value) {
          result = value;
        });
        transaction.oncomplete = function () {
          resolve(result);
        };
        transaction.onerror = transaction.onabort = function () {
          reject(transaction.error);
        };
      });
    });
  }

  function enqueue(ping, time) {
    return inTransaction("readwrite", function (store) {
      store.put({ id: ping.id, t: time, ping: ping });
    });
  }

  function oldest(count) {
    return inTransaction("readonly", function (store) {
      return done(store.index("time").getAll(null, count));
    }).then(function (records) {
      return (records || []).map(function (record) {
        return record.ping;
      });
    });
  }

  function forget(ids) {
    return inTransaction("readwrite", function (store) {
      ids.forEach(function (id) {
        store.delete(id);
      });
    });
  }

  function showQueue() {
    return inTransaction("readonly", function (store) {
      return done(store.count());
    }).then(function (count) {
      shown.queued.textContent = String(count);
      return count;
    });
  }

  // --- talking to the server ---------------------------------------------------------------

  function Failure(status, detail) {
    this.status = status;
    this.detail = detail;
  }

  function postJson(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "x-csrftoken": csrfToken(),
        // The server refuses the queue of one login sent with another's session.
        "x-track-user": owner,
      },
      body: JSON.stringify(body),
    }).then(answer, network);
  }

  function getJson(url) {
    return fetch(url, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      cache: "no-store",
    }).then(answer, network);
  }

  function network() {
    throw new Failure(0, texts.network);
  }

  function answer(response) {
    if (response.ok) {
      setOnline(true);
      return response.json();
    }
    return response.json().then(
      function (body) {
        var problem = body.errors && body.errors.length ? body.errors[0].message : "";
        throw new Failure(response.status, [body.detail, problem].filter(Boolean).join(" "));
      },
      function () {
        throw new Failure(response.status, String(response.status));
      }
    );
  }

  function explain(failure) {
    if (!(failure instanceof Failure)) {
      return format(texts.failed, { reason: String(failure) });
    }
    if (failure.status === 0) {
      setOnline(false);
      return texts.network;
    }
    if (failure.status === 401) {
      return texts.sign_in;
    }
    return format(texts.failed, { reason: failure.detail });
  }

  function setOnline(online) {
    shown.online.setAttribute("data-online", online ? "true" : "false");
    shown.online.textContent = online ? texts.online : texts.offline;
  }

  /* Sends the queue, oldest first, a batch at a time until it is empty or a batch fails. */
  function flush() {
    if (flushing || !navigator.onLine) {
      return Promise.resolve();
    }
    flushing = true;
    return oldest(BATCH)
      .then(function (pings) {
        if (!pings.length) {
          return false;
        }
        return postJson(pingsUrl, { pings: pings }).then(function (report) {
          rejectedCount += (report.rejected || []).length;
          shown.rejected.textContent = String(rejectedCount);
          shown.lastSent.textContent = clock(new Date());
          (report.watches || []).forEach(function (watch) {
            setVerdict(watch.id, watch.inside);
          });
          showVerdict();
          return forget(
            pings.map(function (ping) {
              return ping.id;
            })
          ).then(function () {
            return pings.length === BATCH;
          });
        });
      })
      .then(
        function (more) {
          flushing = false;
          if (messageFrom === "flush") {
            say("");
          }
          return showQueue().then(function () {
            return more ? flush() : undefined;
          });
        },
        function (failure) {
          flushing = false;
          say(explain(failure), "flush");
          return showQueue();
        }
      );
  }

  // --- the jobs on the page ----------------------------------------------------------------

  function cards() {
    return Array.prototype.slice.call(root.querySelectorAll("[data-testid=watch]"));
  }

  function card(watchId) {
    return cards().filter(function (element) {
      return element.getAttribute("data-watch") === String(watchId);
    })[0];
  }

  function verdictName(inside) {
    return inside === true ? "true" : inside === false ? "false" : "unknown";
  }

  function verdictText(name) {
    return name === "true" ? texts.inside : name === "false" ? texts.outside : texts.unknown;
  }

  function setVerdict(watchId, inside) {
    var element = card(watchId);
    if (!element) {
      return;
    }
    var name = verdictName(inside);
    element.setAttribute("data-inside", name);
    element.querySelector("[data-testid=watch-inside]").textContent = verdictText(name);
  }

  /* The big indicator: inside if the person is inside any running job's zone (someone on two
     jobs at once can only stand in one), outside if every known verdict says so. */
  function showVerdict() {
    var names = cards()
      .filter(function (element) {
        return element.getAttribute("data-tracking") === "true";
      })
      .map(function (element) {
        return element.getAttribute("data-inside");
      });
    var name = "unknown";
    if (names.indexOf("true") >= 0) {
      name = "true";
    } else if (names.indexOf("false") >= 0) {
      name = "false";
    }
    shown.inside.setAttribute("data-inside", name);
    shown.insideLabel.textContent = verdictText(name);
  }

  function applyState(state) {
    (state.watches || []).forEach(function (watch) {
      var element = card(watch.watch_id);
      if (!element) {
        return;
      }
      element.setAttribute("data-state", watch.state);
      var badge = element.querySelector("[data-testid=watch-state]");
      badge.className = "badge state-" + watch.state;
      badge.textContent = texts["state_" + watch.state] || watch.state;
      element.setAttribute("data-tracking", watch.tracking ? "true" : "false");
      var check = element.querySelector("[data-testid=check-state]");
      check.setAttribute("data-checked-in", watch.checked_in ? "true" : "false");
      check.textContent = watch.checked_in
        ? format(texts.checked_in, { time: watch.checked_in_at_local })
        : watch.checked_out_at
          ? format(texts.checked_out, { time: watch.checked_out_at_local })
          : texts.not_checked_in;
      var canCheckIn = watch.state === "active" && !watch.checked_in;
      element.querySelector("[data-check=in]").hidden = !canCheckIn;
      element.querySelector(".qr-check-in").hidden = !canCheckIn;
      element.querySelector("[data-check=out]").hidden = !watch.checked_in;
      setVerdict(watch.watch_id, watch.inside);
    });
    showVerdict();
    follow();
  }

  function refreshState() {
    if (!navigator.onLine) {
      return Promise.resolve();
    }
    return getJson(stateUrl).then(applyState, function () {
      /* the page keeps what it shows; the next refresh tries again */
    });
  }

  // --- positions ---------------------------------------------------------------------------

  function tracking() {
    return cards().some(function (element) {
      return element.getAttribute("data-tracking") === "true";
    });
  }

  /* One sample: the fix's own time, or ``at`` when an unchanged fix is sent again. */
  function record(position, at) {
    var coords = position.coords;
    var taken = at || position.timestamp || Date.now();
    lastSampleAt = Date.now();
    recorded = position;
    var ping = {
      id: newId(),
      device_time: isoWithOffset(new Date(taken)),
      latitude: coords.latitude,
      longitude: coords.longitude,
      accuracy_m: coords.accuracy,
      mock: false,
    };
    if (finite(coords.speed) && coords.speed >= 0) {
      ping.speed_mps = coords.speed;
    }
    if (finite(coords.heading) && coords.heading >= 0 && coords.heading < 360) {
      ping.heading_deg = coords.heading;
    }
    if (battery && finite(battery.level)) {
      ping.battery = battery.level;
    }
    return enqueue(ping, taken).then(showQueue).then(flush, function (error) {
      say(format(texts.failed, { reason: String(error) }));
    });
  }

  function due() {
    // A little slack, so a timer that fires a few milliseconds early does not skip a sample.
    return Date.now() - lastSampleAt >= sampleMs * 0.9;
  }

  function onPosition(position) {
    latest = position;
    latestAt = Date.now();
    // A fix asked for just before the check-out may arrive after it.
    if (due() && tracking()) {
      record(position);
    }
  }

  function tick() {
    if (!geoWatch || !due()) {
      return;
    }
    if (latest && latest !== recorded) {
      record(latest);
    } else if (latest && Date.now() - latestAt <= STILL_MS) {
      record(latest, Date.now());
    } else if (!asking) {
      asking = true;
      navigator.geolocation.getCurrentPosition(
        function (position) {
          asking = false;
          onPosition(position);
        },
        function () {
          /* no fix this time: the watch keeps trying */
          asking = false;
        },
        { enableHighAccuracy: true, maximumAge: 0, timeout: POSITION_TIMEOUT_MS }
      );
    }
  }

  function follow() {
    if (!navigator.geolocation) {
      return;
    }
    if (tracking() && geoWatch === null) {
      geoWatch = navigator.geolocation.watchPosition(
        onPosition,
        function (error) {
          if (error.code === error.PERMISSION_DENIED) {
            say(texts.no_position);
          }
        },
        { enableHighAccuracy: true, maximumAge: 0, timeout: POSITION_TIMEOUT_MS }
      );
    } else if (!tracking() && geoWatch !== null) {
      navigator.geolocation.clearWatch(geoWatch);
      geoWatch = null;
    }
  }

  // --- check-in and check-out --------------------------------------------------------------

  function act(button, url, body) {
    button.disabled = true;
    return postJson(url, body)
      .then(
        function (state) {
          say("");
          applyState(state);
        },
        function (failure) {
          say(explain(failure));
        }
      )
      .then(function () {
        button.disabled = false;
      });
  }

  function checkInByGps(button) {
    if (!navigator.geolocation) {
      say(texts.no_geolocation);
      return;
    }
    function send(position) {
      act(button, button.getAttribute("data-url"), {
        method: "gps",
        latitude: position.coords.latitude,
        longitude: position.coords.longitude,
        accuracy_m: position.coords.accuracy,
      }).then(function () {
        // The check-in's position is also a sample of the job, unless it was sent already.
        if (tracking() && position !== recorded) {
          record(position);
        }
      });
    }
    button.disabled = true;
    // While the page follows the phone, the newest fix is at hand; asking again for a fresh one
    // would wait for the phone to move.
    if (latest && Date.now() - latestAt <= FRESH_MS) {
      send(latest);
      return;
    }
    say(texts.locating);
    navigator.geolocation.getCurrentPosition(
      function (position) {
        latest = position;
        latestAt = Date.now();
        send(position);
      },
      function () {
        button.disabled = false;
        say(texts.no_position);
      },
      { enableHighAccuracy: true, maximumAge: 0, timeout: POSITION_TIMEOUT_MS }
    );
  }

  root.addEventListener("click", function (event) {
    var button = event.target.closest("[data-check]");
    if (!button) {
      return;
    }
    if (button.getAttribute("data-check") === "in") {
      checkInByGps(button);
    } else {
      act(button, button.getAttribute("data-url"), {}).then(flush);
    }
  });

  root.addEventListener("submit", function (event) {
    var form = event.target.closest("[data-qr-form]");
    if (!form) {
      return;
    }
    event.preventDefault();
    act(form.querySelector("button"), form.getAttribute("data-url"), {
      method: "qr",
      token: form.querySelector("input[name=token]").value,
    });
  });

  // --- start -------------------------------------------------------------------------------

  window.addEventListener("online", function () {
    setOnline(true);
    flush().then(refreshState);
  });
  window.addEventListener("offline", function () {
    setOnline(false);
  });

  if (navigator.getBattery) {
    navigator.getBattery().then(
      function (manager) {
        battery = manager;
      },
      function () {
        /* no battery level: pings go without it */
      }
    );
  }

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker
      .register(root.getAttribute("data-sw-url"), { scope: root.getAttribute("data-sw-scope") })
      .catch(function () {
        /* without it the page still works while it stays open */
      });
  }

  setOnline(navigator.onLine);
  showVerdict();
  follow();
  showQueue().then(flush).then(refreshState);
  setInterval(tick, sampleMs);
  setInterval(flush, FLUSH_EVERY_MS);
  setInterval(refreshState, STATE_EVERY_MS);
  root.setAttribute("data-ready", "true");
})();
