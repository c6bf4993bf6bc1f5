/* The tracking page's service worker: keeps the page and its script and style so the page opens
   again without signal (a phone on site loses it in pipe racks and tank farms) and goes on
   queueing positions. Network first, so a phone with signal always gets the current page; the
   copy is the fallback. Pings are never touched here: the page queues them in IndexedDB itself.

   Served from /t/{tenant}/track/sw.js with a Service-Worker-Allowed header, because its scope
   is the page /t/{tenant}/track, one level above the script. */
"use strict";

var CACHE = "portal-track-v1";
var PAGE = new URL(self.registration.scope).pathname;
var ASSETS = ["/static/portal.css", "/static/track.js"];

/* The page that registers the worker was loaded before the worker existed, so nothing has
   passed through here yet: fetch it now, or the first reload without signal would find nothing. */
function keepOpenPages(cache) {
  return self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (tabs) {
    return Promise.all(
      tabs
        .map(function (tab) {
          return new URL(tab.url);
        })
        .filter(function (url) {
          return url.origin === self.location.origin && url.pathname === PAGE;
        })
        .map(function (url) {
          return cache.add(url.pathname + url.search).catch(function () {
            /* signed out meanwhile: the next visit with signal keeps it */
          });
        })
    );
  });
}

self.addEventListener("install", function (event) {
  event.waitUntil(
    caches
      .open(CACHE)
      .then(function (cache) {
        return cache.addAll(ASSETS).then(function () {
          return keepOpenPages(cache);
        });
      })
      .then(function () {
        return self.skipWaiting();
      })
  );
});

self.addEventListener("activate", function (event) {
  event.waitUntil(
    caches
      .keys()
      .then(function (names) {
        return Promise.all(
          names
            .filter(function (name) {
              return name.indexOf("portal-track-") === 0 && name !== CACHE;
            })
            .map(function (name) {
              return caches.delete(name);
            })
        );
      })
      .then(function () {
        // The page that registered the worker is controlled at once, not from its next load.
        return self.clients.claim();
      })
  );
});

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") {
    return;
  }
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) {
    return;
  }
  var isPage = url.pathname === PAGE && request.mode === "navigate";
  if (!isPage && ASSETS.indexOf(url.pathname) < 0) {
    return;
  }
  event.respondWith(
    fetch(request).then(
      function (response) {
        if (response.ok) {
          var copy = response.clone();
          event.waitUntil(
            caches.open(CACHE).then(function (cache) {
              return cache.put(request, copy);
            })
          );
        }
        return response;
      },
      function () {
        // The page as last seen with this query, else with any (the query only tunes it).
        return caches
          .match(request)
          .then(function (cached) {
            return cached || caches.match(request, { ignoreSearch: true });
          })
          .then(function (cached) {
            return cached || Response.error();
          });
      }
    )
  );
});
