/* The zone editor: the plant's zones on the map and in a list; a new polygon drawn corner by
   corner (Finish, Undo last point, Clear) or a circle placed by its centre with a typed radius;
   an existing zone changed (its fields, or its shape drawn again) or retired. Saving sends JSON to
   the page's endpoints; the server decides what is valid and its answer names the field. */
(function () {
  "use strict";

  var root = document.getElementById("zone-editor");
  if (!root) {
    return;
  }
  var texts = PortalMap.readJson("script[data-texts]");
  var zones = PortalMap.readJson("script[data-zones]");
  var saveUrl = root.getAttribute("data-save-url");
  var plantId = root.getAttribute("data-plant-id");
  var view = PortalMap.open(root.querySelector("[data-map]"));
  // A double click finishes nothing here; zooming on it would move the map under the pointer.
  view.map.doubleClickZoom.disable();
  var zoneLayers = L.featureGroup().addTo(view.map);
  var draftLayer = L.featureGroup().addTo(view.map);
  var DRAFT = { color: "#1d2733", weight: 2, dashArray: "4 4", fillOpacity: 0.1, interactive: false };

  function part(testid) {
    return root.querySelector('[data-testid="' + testid + '"]');
  }
  var form = part("zone-form");
  var inputs = {
    name: form.querySelector("input[name=name]"),
    kind: form.querySelector("select[name=kind]"),
    buffer: form.querySelector("input[name=buffer_m]"),
    radius: form.querySelector("input[name=radius_m]")
  };

  // mode: "idle", "polygon" or "circle"; positions are WGS-84 [lat, lon], as they are stored.
  // ``kept`` is the stored geometry of the zone being edited until its shape is drawn again.
  var state = { mode: "idle", vertices: [], finished: false, centre: null, kept: null, editing: null };

  function toMap(position) {
    return view.toMap(position[0], position[1]);
  }

  function renderDraft() {
    draftLayer.clearLayers();
    var radius = Number(inputs.radius.value);
    if (state.mode === "polygon" && state.vertices.length) {
      var corners = state.vertices.map(toMap);
      corners.forEach(function (corner) {
        L.circleMarker(corner, { radius: 5, color: "#1d2733", interactive: false }).addTo(draftLayer);
      });
      (state.finished ? L.polygon(corners, DRAFT) : L.polyline(corners, DRAFT)).addTo(draftLayer);
    } else if (state.mode === "circle" && state.centre) {
      var centre = toMap(state.centre);
      L.circleMarker(centre, { radius: 4, color: "#1d2733", interactive: false }).addTo(draftLayer);
      if (radius > 0) {
        L.circle(centre, Object.assign({ radius: radius }, DRAFT)).addTo(draftLayer);
      }
    } else if (state.kept) {
      var kept = Object.assign({}, state.editing, { geometry: state.kept });
      if (state.kept.type === "Point" && radius > 0) {
        kept.radius_m = radius;
      }
      PortalMap.zoneLayer(view, kept, { weight: 4, interactive: false }).addTo(draftLayer);
    }
    var drawing = state.mode !== "idle";
    view.map.getContainer().classList.toggle("drawing", drawing);
    part("polygon-tools").hidden = state.mode !== "polygon";
    part("radius-field").hidden = !(
      state.mode === "circle" || (state.mode === "idle" && state.kept && state.kept.type === "Point")
    );
    var hint = part("draw-hint");
    var done = (state.mode === "polygon" && state.finished) || (state.mode === "circle" && state.centre);
    var key = done ? "done" : state.mode;
    hint.textContent = hint.getAttribute("data-" + key);
    hint.setAttribute("data-state", key);
  }

  function kindLabel(kind) {
    return texts["kind_" + kind] || kind;
  }

  function button(label, testid, handler) {
    var node = document.createElement("button");
    node.type = "button";
    node.className = "secondary";
    node.textContent = label;
    node.setAttribute("data-testid", testid);
    node.addEventListener("click", handler);
    return node;
  }

  function renderZones() {
    zoneLayers.clearLayers();
    var list = part("zone-list");
    list.textContent = "";
    zones.sort(function (a, b) {
      return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
    });
    zones.forEach(function (zone) {
      var layer = PortalMap.zoneLayer(view, zone);
      layer.on("click", function () {
        if (state.mode === "idle") {
          edit(zone);
        }
      });
      layer.addTo(zoneLayers);

      var row = document.createElement("li");
      row.className = "zone-row kind-" + zone.kind;
      row.setAttribute("data-testid", "zone-row");
      row.setAttribute("data-zone-id", zone.id);
      row.setAttribute("data-kind", zone.kind);
      var name = document.createElement("strong");
      name.className = "zone-name";
      name.textContent = zone.name;
      var meta = document.createElement("span");
      meta.className = "meta";
      var facts = [kindLabel(zone.kind)];
      if (zone.radius_m) {
        facts.push(PortalMap.format(texts.radius, { m: zone.radius_m }));
      }
      if (zone.buffer_m) {
        facts.push(PortalMap.format(texts.buffer, { m: zone.buffer_m }));
      }
      meta.textContent = facts.join(" · ");
      var actions = document.createElement("span");
      actions.className = "zone-actions";
      actions.appendChild(button(texts.edit, "zone-edit", function () { edit(zone); }));
      actions.appendChild(button(texts.retire, "zone-retire", function () { retire(zone); }));
      row.appendChild(name);
      row.appendChild(meta);
      row.appendChild(actions);
      list.appendChild(row);
    });
    part("no-zones").hidden = zones.length > 0;
  }

  function clearErrors() {
    var box = part("zone-errors");
    box.textContent = "";
    box.hidden = true;
    form.querySelectorAll(".field.invalid").forEach(function (field) {
      field.classList.remove("invalid");
    });
  }

  function showErrors(errors) {
    clearErrors();
    var box = part("zone-errors");
    errors.forEach(function (error) {
      var item = document.createElement("li");
      item.textContent = error.message;
      item.setAttribute("data-field", error.field || "");
      item.setAttribute("data-rule", error.rule || "");
      box.appendChild(item);
      var field = form.querySelector('[data-field="' + error.field + '"]');
      if (field) {
        field.classList.add("invalid");
      }
    });
    box.hidden = false;
  }

  function status(text) {
    var node = part("zone-status");
    node.textContent = text;
    node.hidden = !text;
  }

  function startDrawing(mode) {
    state.mode = mode;
    state.vertices = [];
    state.finished = false;
    state.centre = null;
    state.kept = null;
    clearErrors();
    status("");
    renderDraft();
  }

  function reset() {
    state = { mode: "idle", vertices: [], finished: false, centre: null, kept: null, editing: null };
    form.reset();
    var title = part("zone-form-title");
    title.textContent = title.getAttribute("data-new");
    part("cancel-edit").hidden = true;
    clearErrors();
    renderDraft();
  }

  function edit(zone) {
    reset();
    state.editing = zone;
    state.kept = zone.geometry;
    inputs.name.value = zone.name;
    inputs.kind.value = zone.kind;
    inputs.buffer.value = zone.buffer_m;
    inputs.radius.value = zone.radius_m || "";
    var title = part("zone-form-title");
    title.textContent = title.getAttribute("data-edit");
    part("cancel-edit").hidden = false;
    status("");
    renderDraft();
    if (draftLayer.getLayers().length) {
      view.map.fitBounds(draftLayer.getBounds(), { maxZoom: 18, padding: [40, 40] });
    }
  }

  // The shape to send, or a problem named like the server would name it.
  function shape() {
    var radius = Number(inputs.radius.value);
    if (state.mode === "polygon") {
      if (!state.finished) {
        return { error: { field: "shape.coordinates", rule: "finish", message: texts.need_finish } };
      }
      var ring = state.vertices.map(function (v) { return [v[1], v[0]]; });
      ring.push(ring[0]);
      return { shape: { type: "Polygon", coordinates: [ring] } };
    }
    if (state.mode === "circle" || (state.kept && state.kept.type === "Point")) {
      var centre = state.mode === "circle"
        ? (state.centre && [state.centre[1], state.centre[0]])
        : state.kept.coordinates;
      if (!centre) {
        return { error: { field: "shape", rule: "required", message: texts.need_shape } };
      }
      if (!(radius > 0)) {
        return { error: { field: "shape.radius_m", rule: "required", message: texts.need_radius } };
      }
      return { shape: { type: "Circle", center: centre, radius_m: radius } };
    }
    if (state.kept) {
      return { shape: { type: "Polygon", coordinates: state.kept.coordinates } };
    }
    return { error: { field: "shape", rule: "required", message: texts.need_shape } };
  }

  function save(event) {
    event.preventDefault();
    status("");
    var drawn = shape();
    if (drawn.error) {
      showErrors([drawn.error]);
      return;
    }
    var body = {
      plant_id: plantId,
      name: inputs.name.value.trim(),
      kind: inputs.kind.value,
      shape: drawn.shape,
      buffer_m: inputs.buffer.value === "" ? 0 : Number(inputs.buffer.value)
    };
    var editing = state.editing;
    var saving = part("save-zone");
    saving.disabled = true;
    PortalMap.send(editing ? "PUT" : "POST", editing ? saveUrl + "/" + editing.id : saveUrl, body)
      .then(function (answer) {
        if (!answer.ok) {
          var problems = (answer.body && answer.body.errors) || [];
          showErrors(problems.length ? problems : [{ message: (answer.body && answer.body.detail) || texts.failed }]);
          return;
        }
        zones = zones.filter(function (zone) { return zone.id !== answer.body.id; });
        zones.push(answer.body);
        reset();
        renderZones();
        status(texts.saved);
      })
      .catch(function () {
        showErrors([{ message: texts.failed }]);
      })
      .then(function () {
        saving.disabled = false;
      });
  }

  function retire(zone) {
    if (!window.confirm(PortalMap.format(texts.confirm_retire, { name: zone.name }))) {
      return;
    }
    PortalMap.send("DELETE", saveUrl + "/" + zone.id)
      .then(function (answer) {
        if (!answer.ok) {
          var problems = (answer.body && answer.body.errors) || [];
          showErrors(problems.length ? problems : [{ message: (answer.body && answer.body.detail) || texts.failed }]);
          return;
        }
        zones = zones.filter(function (other) { return other.id !== zone.id; });
        if (state.editing && state.editing.id === zone.id) {
          reset();
        }
        renderZones();
        status(texts.retired);
      })
      .catch(function () {
        showErrors([{ message: texts.failed }]);
      });
  }

  view.map.on("click", function (event) {
    if (state.mode === "polygon" && !state.finished) {
      state.vertices.push(view.toStored(event.latlng));
    } else if (state.mode === "circle") {
      state.centre = view.toStored(event.latlng);
    } else {
      return;
    }
    renderDraft();
  });
  part("draw-polygon").addEventListener("click", function () { startDrawing("polygon"); });
  part("draw-circle").addEventListener("click", function () { startDrawing("circle"); });
  part("finish-shape").addEventListener("click", function () {
    if (state.vertices.length < 3) {
      showErrors([{ field: "shape.coordinates", rule: "finish", message: texts.need_finish }]);
      return;
    }
    clearErrors();
    state.finished = true;
    renderDraft();
  });
  part("undo-point").addEventListener("click", function () {
    state.vertices.pop();
    state.finished = false;
    renderDraft();
  });
  part("clear-shape").addEventListener("click", function () {
    state.vertices = [];
    state.finished = false;
    renderDraft();
  });
  part("cancel-edit").addEventListener("click", reset);
  inputs.radius.addEventListener("input", renderDraft);
  form.addEventListener("submit", save);

  renderZones();
  renderDraft();
  if (zones.length) {
    view.map.fitBounds(zoneLayers.getBounds(), { maxZoom: 17, padding: [20, 20] });
  }
  root.setAttribute("data-ready", "true");
})();
