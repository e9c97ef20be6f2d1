// sammoe view: the page. NiiVue draws the volume tri-planar with the label overlay; every edit is
// one request to the server's Session (see docs/view.md), then the overlay's bytes are replaced.
"use strict";

const NV = window.niivue;
const $ = (id) => document.getElementById(id);
const app = {
  nv: null, info: null, targets: [], active: null, overlay: null, labelsVersion: -1,
  busy: false, unsaved: false, lastTotalMs: null,
};
window.sammoe = app; // for the browser test and for curious users

async function api(method, path, body) {
  const options = { method, headers: {} };
  if (method !== "GET") options.headers["X-Sammoe"] = "1";
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}
const json = async (method, path, body) => (await api(method, path, body)).json();
const targetPath = (name) => "api/targets/" + encodeURIComponent(name);

function status(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

// --- overlay ------------------------------------------------------------------------------

function hexToRgb(hex) {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

function applyColours() {
  const lut = { R: [0], G: [0], B: [0], A: [0], I: [0], labels: [""] };
  for (const t of app.targets) {
    const [r, g, b] = hexToRgb(t.colour);
    lut.R.push(r); lut.G.push(g); lut.B.push(b); lut.A.push(255); lut.I.push(t.label); lut.labels.push(t.name);
  }
  app.overlay.setColormapLabel(lut);
  app.nv.updateGLVolume();
}

async function refreshLabels(version) {
  if (version === app.labelsVersion) return;
  const buffer = await (await api("GET", "api/labels")).arrayBuffer();
  const bytes = new Uint8Array(buffer);
  if (bytes.length !== app.overlay.img.length) throw new Error("label map of unexpected size");
  app.overlay.img.set(bytes);
  app.labelsVersion = version;
  applyColours();
}

// --- targets panel ------------------------------------------------------------------------

function renderTargets() {
  const list = $("targets");
  list.replaceChildren();
  for (const t of app.targets) {
    const item = document.createElement("li");
    item.className = t.name === app.active ? "active" : "";
    const pick = document.createElement("input");
    pick.type = "radio"; pick.name = "active"; pick.checked = t.name === app.active;
    pick.addEventListener("change", () => { app.active = t.name; renderTargets(); renderRoute(); });
    const name = document.createElement("input");
    name.type = "text"; name.value = t.name; name.title = "rename";
    name.addEventListener("change", () => run(async () => {
      const snap = await json("PATCH", targetPath(t.name), { name: name.value });
      if (app.active === t.name) app.active = name.value;
      return snap;
    }));
    const colour = document.createElement("input");
    colour.type = "color"; colour.value = t.colour;
    colour.addEventListener("change", () => run(() => json("PATCH", targetPath(t.name), { colour: colour.value })));
    const size = document.createElement("span");
    size.className = "size";
    const clicks = `${t.clicks.length} click${t.clicks.length === 1 ? "" : "s"}${t.box ? " + box" : ""}`;
    size.textContent = `label ${t.label} · ${clicks} · ${t.crops} crop${t.crops === 1 ? "" : "s"}`;
    const remove = document.createElement("button");
    remove.textContent = "✕"; remove.title = "delete target";
    remove.addEventListener("click", () => run(async () => {
      const snap = await json("DELETE", targetPath(t.name));
      if (app.active === t.name) app.active = null;
      return snap;
    }));
    item.append(pick, colour, name, size, remove);
    list.append(item);
  }
}

function renderRoute() {
  const box = $("route");
  box.replaceChildren();
  const target = app.targets.find((t) => t.name === app.active);
  if (!target || !target.route) {
    box.textContent = app.info.model.gate ? "No click on this target yet." : "A single network: no gate.";
    return;
  }
  const route = target.route;
  const head = document.createElement("p");
  head.textContent = `${target.name}: policy ${route.policy}, chosen ` +
    Object.entries(route.chosen).map(([k, w]) => (w === 1 ? k : `${k} ×${w}`)).join(" + ");
  box.append(head);
  const table = document.createElement("table");
  const gate = route.gate || {};
  for (const name of app.info.model.candidates) {
    const row = document.createElement("tr");
    if (name in route.chosen) row.className = "chosen";
    const p = gate[name];
    const label = document.createElement("td"); label.textContent = name;
    const value = document.createElement("td");
    value.textContent = p === undefined ? "–" : p.toFixed(3);
    const barCell = document.createElement("td");
    const bar = document.createElement("span"); bar.className = "bar";
    bar.style.width = `${Math.round((p || 0) * 120)}px`;
    barCell.append(bar);
    row.append(label, value, barCell);
    table.append(row);
  }
  box.append(table);
  if (!route.gate) {
    const note = document.createElement("p"); note.className = "hint";
    note.textContent = "This policy does not consult the gate.";
    box.append(note);
  }
}

function applySnapshot(snap) {
  app.targets = snap.targets;
  if (!app.targets.some((t) => t.name === app.active)) app.active = app.targets.length ? app.targets[0].name : null;
  $("policy").value = snap.policy.expert ? "threshold" : snap.policy.policy;
  $("expert").value = snap.policy.expert || "";
  if (snap.policy.options && snap.policy.options.tau !== undefined) $("tau").value = snap.policy.options.tau;
  renderTargets();
  renderRoute();
  return snap;
}

// Run one request that changes the session; then redraw the panel and the overlay.
async function run(request, clickedAt) {
  if (app.busy) { status("busy: the previous request is still running"); return; }
  app.busy = true;
  const started = performance.now();
  status("working…");
  try {
    const snap = applySnapshot(await request());
    await refreshLabels(snap.labels_version);
    app.unsaved = true;
    app.lastTotalMs = performance.now() - started;
    const last = snap.last;
    if (clickedAt && last.action) {
      $("latency").textContent = `last ${last.action} on ${last.target}: ${Math.round(app.lastTotalMs)} ms in the page, ` +
        `${Math.round(last.server_ms)} ms on the server` +
        (last.encoder_passes ? ` (encoder ran on ${last.encoder_passes} new crop${last.encoder_passes > 1 ? "s" : ""})` : " (cached embeddings)");
    }
    status("ready");
  } catch (e) {
    status(e.message, true);
  } finally {
    app.busy = false;
  }
}

async function ensureTarget() {
  if (app.active) return app.active;
  const snap = await json("POST", "api/targets", {});
  app.active = snap.targets[snap.targets.length - 1].name;
  return app.active;
}

// --- pointer: click = point, shift-click = negative point, drag = box -----------------------

// Voxel indices of the volume file (the grid `sammoe segment --point` takes) from RAS mm, with the
// server's inverse affine; NiiVue's own voxel indices are those of its RAS-reordered copy.
function mmToVoxel(mm) {
  const m = app.info.volume.mm_to_voxel;
  return [0, 1, 2].map((r) => m[r][0] * mm[0] + m[r][1] * mm[1] + m[r][2] * mm[2] + m[r][3]);
}

function voxelToMm(voxel) {
  const a = app.info.volume.affine;
  return [0, 1, 2].map((r) => a[r][0] * voxel[0] + a[r][1] * voxel[1] + a[r][2] * voxel[2] + a[r][3]);
}
app.voxelToFrac = (voxel) => app.nv.mm2frac(voxelToMm(voxel));

function voxelAt(event) {
  const rect = app.nv.canvas.getBoundingClientRect();
  const dpr = app.nv.uiData.dpr || window.devicePixelRatio || 1;
  const frac = app.nv.canvasPos2frac([(event.clientX - rect.left) * dpr, (event.clientY - rect.top) * dpr]);
  if (frac[0] < 0) return null;
  const vox = mmToVoxel(app.nv.frac2mm(frac)).map((v) => Math.round(v));
  const shape = app.info.volume.shape;
  if (vox.some((v, i) => v < 0 || v >= shape[i])) return null;
  return { frac, vox };
}

function clickPoint(event) {
  const hit = voxelAt(event);
  if (!hit) return;
  const positive = !event.shiftKey;
  app.nv.scene.crosshairPos = hit.frac;
  app.nv.drawScene();
  app.nv.createOnLocationChange();
  run(async () => {
    const name = await ensureTarget();
    return json("POST", targetPath(name) + "/clicks", { position: hit.vox, positive });
  }, hit.vox);
}

function dragBox(params) {
  const a = Array.from(params.mmStart).slice(0, 3), b = Array.from(params.mmEnd).slice(0, 3);
  const through = params.axCorSag === 0 ? 2 : params.axCorSag === 1 ? 1 : 0; // axial: S, coronal: A, sagittal: R
  const half = Math.max(...[0, 1, 2].filter((i) => i !== through).map((i) => Math.abs(a[i] - b[i]) / 2));
  const lower = [0, 1, 2].map((i) => (i === through ? a[i] - half : Math.min(a[i], b[i])));
  const upper = [0, 1, 2].map((i) => (i === through ? a[i] + half : Math.max(a[i], b[i])));
  run(async () => {
    const name = await ensureTarget();
    return json("POST", targetPath(name) + "/box", { lower, upper, space: "mm" });
  }, true);
}

function wirePointer() {
  let down = null, leftDrag = false;
  const canvas = app.nv.canvas;
  canvas.addEventListener("pointerdown", (e) => {
    leftDrag = e.button === 0;
    if (leftDrag) down = { x: e.clientX, y: e.clientY };
  });
  canvas.addEventListener("pointerup", (e) => {
    if (e.button !== 0 || !down) return;
    const moved = Math.hypot(e.clientX - down.x, e.clientY - down.y);
    down = null;
    if (moved < 4) clickPoint(e);
  });
  // NiiVue reports a finished drag in mm; a right-button drag pans instead
  app.nv.onDragRelease = (params) => { if (leftDrag && params.mmLength > 2) dragBox(params); };
}

// --- window / level, zoom, location ----------------------------------------------------------

function setWindow(width, level) {
  const volume = app.nv.volumes[0];
  volume.cal_min = level - width / 2;
  volume.cal_max = level + width / 2;
  app.nv.updateGLVolume();
  showWindow();
}

function showWindow() {
  const volume = app.nv.volumes[0];
  $("window-width").value = Math.round(volume.cal_max - volume.cal_min);
  $("window-level").value = Math.round((volume.cal_max + volume.cal_min) / 2);
}

function autoWindow() {
  const volume = app.nv.volumes[0];
  volume.cal_min = volume.robust_min;
  volume.cal_max = volume.robust_max;
  app.nv.updateGLVolume();
  showWindow();
}

function zoom(factor) {
  const pan = Array.from(app.nv.scene.pan2Dxyzmm);
  pan[3] = factor === null ? 1 : pan[3] * factor;
  if (factor === null) { pan[0] = 0; pan[1] = 0; pan[2] = 0; }
  app.nv.setPan2Dxyzmm(pan);
}

function showLocation(data) {
  const vox = mmToVoxel(data.mm).map((v) => Math.round(v)).join(", ");
  const mm = Array.from(data.mm).slice(0, 3).map((v) => v.toFixed(1)).join(", ");
  const value = data.values && data.values.length ? data.values[0].value : "–";
  $("location").textContent = `voxel (${vox}) · RAS mm (${mm}) · value ${value}`;
}

// --- wiring ----------------------------------------------------------------------------------

function wireControls() {
  $("new-target").addEventListener("click", () => run(async () => {
    const snap = await json("POST", "api/targets", {});
    app.active = snap.targets[snap.targets.length - 1].name;
    return snap;
  }));
  for (const action of ["undo", "redo", "clear"]) {
    $(action).addEventListener("click", () => {
      if (app.active) run(() => json("POST", targetPath(app.active) + "/" + action), true);
    });
  }
  document.addEventListener("keydown", (e) => {
    if (!(e.ctrlKey || e.metaKey) || !app.active || e.target.tagName === "INPUT") return;
    const action = e.key === "z" ? "undo" : e.key === "y" ? "redo" : null;
    if (action) { e.preventDefault(); run(() => json("POST", targetPath(app.active) + "/" + action), true); }
  });
  $("opacity").addEventListener("input", () => app.nv.setOpacity(1, parseFloat($("opacity").value)));
  for (const button of document.querySelectorAll("[data-window]")) {
    button.addEventListener("click", () => {
      const spec = button.dataset.window;
      if (spec === "auto") autoWindow();
      else { const [w, l] = spec.split(",").map(Number); setWindow(w, l); }
    });
  }
  const typed = () => setWindow(Number($("window-width").value), Number($("window-level").value));
  $("window-width").addEventListener("change", typed);
  $("window-level").addEventListener("change", typed);
  $("radiological").addEventListener("change", () => app.nv.setRadiologicalConvention($("radiological").checked));
  $("zoom-in").addEventListener("click", () => zoom(1.25));
  $("zoom-out").addEventListener("click", () => zoom(0.8));
  $("zoom-reset").addEventListener("click", () => zoom(null));
  $("apply-policy").addEventListener("click", () => run(() => {
    const expert = $("expert").value || null;
    const policy = $("policy").value;
    const body = { policy, expert };
    if (policy === "threshold" && !expert) body.tau = Number($("tau").value);
    return json("PUT", "api/policy", body);
  }, true));
  $("save").addEventListener("click", async () => {
    try {
      status("saving…");
      const saved = await json("POST", "api/save");
      app.unsaved = false;
      $("saved").textContent = `saved ${Object.values(saved.files).join(", ")}. Reproduce: ${saved.reproduce}`;
      status("saved");
    } catch (e) { status(e.message, true); }
  });
  window.addEventListener("beforeunload", (e) => { if (app.unsaved) { e.preventDefault(); e.returnValue = ""; } });
}

async function start() {
  app.info = await json("GET", "api/info");
  const info = app.info;
  $("volume-name").textContent = `${info.volume.name} (${info.volume.shape.join("×")}, ${info.volume.modality.toUpperCase()})`;
  $("save-to").textContent = `Save writes ${info.save.label_map} (+ sidecar .json) and ${info.save.prompts}`;
  for (const name of info.model.candidates.slice(1)) {
    const option = document.createElement("option");
    option.value = name; option.textContent = name;
    $("expert").append(option);
  }
  for (const id of ["policy", "tau", "expert", "apply-policy"]) $(id).disabled = info.model.predictor !== "moe";
  const nv = new NV.Niivue({
    backColor: [0, 0, 0, 1],
    show3Dcrosshair: false,
    dragAndDropEnabled: false,
    multiplanarShowRender: NV.SHOW_RENDER.NEVER,
    multiplanarLayout: NV.MULTIPLANAR_TYPE.GRID,
    isOrientationTextVisible: true,
    crosshairColor: [0.2, 0.8, 1, 0.8],
  });
  nv.setMouseEventConfig({ // left: our clicks and boxes (NiiVue reports the drag); right, middle: pan
    leftButton: { primary: NV.DRAG_MODE.callbackOnly, withShift: NV.DRAG_MODE.callbackOnly },
    rightButton: NV.DRAG_MODE.pan,
    centerButton: NV.DRAG_MODE.pan,
  });
  app.nv = nv;
  await nv.attachToCanvas($("gl"));
  nv.setSliceType(nv.sliceTypeMultiplanar);
  nv.setRadiologicalConvention($("radiological").checked);
  await nv.loadVolumes([{ url: "api/volume.nii.gz", name: "volume.nii.gz", colormap: "gray" }]);
  app.overlay = await NV.NVImage.loadFromUrl({ url: "api/labels.nii.gz", name: "labels.nii.gz", opacity: 0.5 });
  nv.addVolume(app.overlay);
  nv.setOpacity(1, parseFloat($("opacity").value));
  if (info.volume.modality === "ct") setWindow(400, 40); else autoWindow();
  nv.onLocationChange = showLocation;
  wirePointer();
  wireControls();
  applySnapshot(info);
  await refreshLabels(info.labels_version);
  status("ready: click inside a structure");
  app.ready = true;
  setInterval(poll, 2000);
}

// Edits made elsewhere (another tab, or Python on the same session in a notebook) show up here.
async function poll() {
  if (app.busy || document.hidden) return;
  try {
    const snap = await json("GET", "api/targets");
    if (app.busy || snap.labels_version === app.labelsVersion) return;
    applySnapshot(snap);
    await refreshLabels(snap.labels_version);
  } catch (e) { /* the server stopped: the next action says so */ }
}

start().catch((e) => status("could not start: " + e.message, true));
