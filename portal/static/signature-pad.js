/* Signature pad: draws with finger, pen or mouse (Pointer Events) and keeps the strokes as
   [[x, y, ms], ...] in CSS pixels of the canvas as it was when the drawing began, with that size,
   in the form's hidden "strokes" input as JSON (training.schemas.StrokesIn). Phones resize the
   page while a signer types the name (the keyboard opens) or turns the phone; the drawing is
   kept and scaled onto the pad's new size rather than lost. The server checks the strokes and renders
   the image itself. The position is asked for once and only filled in when the phone gives it
   within a few seconds; signing never waits for it. */
(function () {
  "use strict";

  var MAX_POINTS_PER_STROKE = 2000;
  var MAX_STROKES = 200;
  var POSITION_TIMEOUT_MS = 5000;

  function round1(value) {
    return Math.round(value * 10) / 10;
  }

  function setUp(root) {
    var canvas = root.querySelector("canvas");
    var input = root.querySelector("input[name=strokes]");
    var clearButton = root.querySelector("[data-pad-clear]");
    var form = root.closest("form");
    var submit = form.querySelector("[data-pad-submit]");
    var context = canvas.getContext("2d");
    var opened = performance.now();
    var strokes = [];
    var current = null;
    var width = 0;
    var height = 0;
    var shownWidth = 0;
    var shownHeight = 0;

    function save() {
      input.value = strokes.length
        ? JSON.stringify({ width: width, height: height, strokes: strokes })
        : "";
      submit.disabled = strokes.length === 0;
      root.classList.toggle("drawn", strokes.length > 0);
    }

    function paint() {
      context.clearRect(0, 0, width, height);
      context.lineWidth = 2.5;
      context.lineCap = "round";
      context.lineJoin = "round";
      context.strokeStyle = "#111";
      context.fillStyle = "#111";
      strokes.forEach(function (stroke) {
        if (stroke.length === 1) {
          context.beginPath();
          context.arc(stroke[0][0], stroke[0][1], 1.5, 0, 2 * Math.PI);
          context.fill();
          return;
        }
        context.beginPath();
        context.moveTo(stroke[0][0], stroke[0][1]);
        for (var i = 1; i < stroke.length; i += 1) {
          context.lineTo(stroke[i][0], stroke[i][1]);
        }
        context.stroke();
      });
    }

    function resize() {
      var box = canvas.getBoundingClientRect();
      shownWidth = Math.round(box.width);
      shownHeight = Math.round(box.height);
      if (!strokes.length) {
        width = shownWidth;
        height = shownHeight;
      }
      var ratio = window.devicePixelRatio || 1;
      canvas.width = Math.round(shownWidth * ratio);
      canvas.height = Math.round(shownHeight * ratio);
      context.setTransform(
        (ratio * shownWidth) / (width || 1), 0, 0, (ratio * shownHeight) / (height || 1), 0, 0
      );
      paint();
    }

    function point(event) {
      var box = canvas.getBoundingClientRect();
      return [
        round1(((event.clientX - box.left) * width) / (box.width || 1)),
        round1(((event.clientY - box.top) * height) / (box.height || 1)),
        Math.max(0, Math.round(performance.now() - opened)),
      ];
    }

    function add(event) {
      if (current.length >= MAX_POINTS_PER_STROKE) {
        if (strokes.length >= MAX_STROKES) {
          return;
        }
        current = [current[current.length - 1]];
        strokes.push(current);
      }
      var next = point(event);
      var last = current[current.length - 1];
      if (last && last[0] === next[0] && last[1] === next[1]) {
        return;
      }
      current.push(next);
      var previous = current[current.length - 2] || next;
      context.beginPath();
      context.moveTo(previous[0], previous[1]);
      context.lineTo(next[0], next[1]);
      context.stroke();
    }

    function end(event) {
      if (!current) {
        return;
      }
      if (canvas.hasPointerCapture && canvas.hasPointerCapture(event.pointerId)) {
        canvas.releasePointerCapture(event.pointerId);
      }
      current = null;
      paint();
      save();
    }

    canvas.addEventListener("pointerdown", function (event) {
      if (event.button > 0 || strokes.length >= MAX_STROKES) {
        return;
      }
      event.preventDefault();
      resize();
      if (canvas.setPointerCapture) {
        try {
          canvas.setPointerCapture(event.pointerId);
        } catch (ignored) {
          /* a synthetic pointer cannot be captured; drawing works without it */
        }
      }
      current = [point(event)];
      strokes.push(current);
      context.lineWidth = 2.5;
      context.lineCap = "round";
      context.strokeStyle = "#111";
    });
    canvas.addEventListener("pointermove", function (event) {
      if (!current) {
        return;
      }
      event.preventDefault();
      var events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
      (events.length ? events : [event]).forEach(add);
    });
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    canvas.addEventListener("lostpointercapture", end);

    clearButton.addEventListener("click", function () {
      strokes = [];
      current = null;
      resize();
      save();
    });

    window.addEventListener("resize", resize);
    resize();

    // A form sent back with a refused name keeps the drawing: draw it again.
    if (input.value) {
      try {
        var kept = JSON.parse(input.value);
        if (kept.width > 0 && kept.height > 0 && Array.isArray(kept.strokes)) {
          strokes = kept.strokes;
          width = kept.width;
          height = kept.height;
          resize();
        }
      } catch (ignored) {
        strokes = [];
      }
    }
    paint();
    save();
    root.setAttribute("data-ready", "true");
  }

  function askPosition(form) {
    var latitude = form.querySelector("input[name=latitude]");
    if (!latitude || !navigator.geolocation) {
      return;
    }
    var status = form.querySelector("[data-position-status]");
    navigator.geolocation.getCurrentPosition(
      function (position) {
        latitude.value = String(position.coords.latitude);
        form.querySelector("input[name=longitude]").value = String(position.coords.longitude);
        form.querySelector("input[name=accuracy]").value = String(position.coords.accuracy);
        if (status) {
          status.hidden = false;
        }
      },
      function () {
        /* refused or unavailable: the signature goes without a position */
      },
      { enableHighAccuracy: true, timeout: POSITION_TIMEOUT_MS, maximumAge: 60000 }
    );
  }

  function start() {
    document.querySelectorAll("[data-signature-pad]").forEach(function (root) {
      if (root.getAttribute("data-ready") !== "true") {
        setUp(root);
        askPosition(root.closest("form"));
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
