// Map selections and cluster names, appended to map_view.js (the same js_on_load body: it shares `base`, `chart`,
// `view`, `root`, `box`, `layer`, `groups`, `nearest` and `paint`). Lasso or box selection of the drawn points,
// a click to add or remove one, a click on a cluster's name (on the map or in the list) to select the cluster.
// A changed selection goes to the server as the custom event "map_select": {key, mask} (base64 bits, LSB first).
const drawLayer = root.querySelector(".map-draw"), labelBox = root.querySelector(".map-labels");
const clusterList = root.querySelector(".map-cluster-list"), selectedNote = root.querySelector(".map-selected");
let mode = "pan", selected = null, stroke = null, labelRects = [];  // the names drawn: [x0, y0, x1, y1, id] css px

function selectionReset() {
  selected = base ? new Uint8Array(base.count) : null;
  base.clusterOf = base.cluster ? new Int16Array(bytes(base.cluster).buffer) : new Int16Array(base.count).fill(-1);
  clusterList.innerHTML = (base.clusters || []).map((c) =>
    `<li><button type="button" data-cluster="${c.id}">${esc(c.name)} (${c.size.toLocaleString()})</button></li>`).join("");
  showCount();
}

function showCount() {
  const n = selected ? selected.reduce((a, v) => a + v, 0) : 0;
  selectedNote.textContent = n ? `${n.toLocaleString()} selected` : "";
  root.dataset.selected = n;
}

function sendSelection() {
  showCount();
  const bits = new Uint8Array((base.count + 7) >> 3);
  for (let i = 0; i < base.count; i++) if (selected[i]) bits[i >> 3] |= 1 << (i & 7);
  let text = "";
  for (let k = 0; k < bits.length; k += 0x8000) text += String.fromCharCode(...bits.subarray(k, k + 0x8000));
  trigger("map_select", {key: base.key, mask: btoa(text)});
  lastSig = "";
  paint();
}

// the css px of point i in the chart box, or null when it is hidden (legend, filters) or outside the plot
function cssOf(i, shown, field, pass) {
  if (!view) return null;
  if (pass ? !pass[i] : !shown[field.codes[i]]) return null;
  const {sx, sy, ox, oy, dpr} = view;
  return [(ox + sx * base.xs[i]) / dpr, (oy + sy * base.ys[i]) / dpr];
}

function inside(poly, x, y) {  // ray casting
  let hit = false;
  for (let a = 0, b = poly.length - 1; a < poly.length; b = a++) {
    const [xa, ya] = poly[a], [xb, yb] = poly[b];
    if ((ya > y) !== (yb > y) && x < ((xb - xa) * (y - ya)) / (yb - ya) + xa) hit = !hit;
  }
  return hit;
}

// every shown point inside the polygon (css px), added to the selection or replacing it
function selectInside(poly, add) {
  lastSig = "";
  paint();  // the view as ECharts has it now (a resize may not have been painted yet)
  const t0 = performance.now(), {field, shown} = groups(), pass = passByIndex();
  const xs = poly.map((p) => p[0]), ys = poly.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  if (!add) selected.fill(0);
  for (let i = 0; i < base.count; i++) {
    const p = cssOf(i, shown, field, pass);
    if (p && p[0] >= x0 && p[0] <= x1 && p[1] >= y0 && p[1] <= y1 && inside(poly, p[0], p[1])) selected[i] = 1;
  }
  root.dataset.selectMs = (performance.now() - t0).toFixed(2);
  sendSelection();
}

function passByIndex() {  // the filters' pass mask by point index (base.cellPass is in cell order)
  if (!base.cellPass) return null;
  const out = new Uint8Array(base.count);
  for (let k = 0; k < base.count; k++) out[base.order[k]] = base.cellPass[k];
  return out;
}

function selectCluster(id) {
  for (let i = 0; i < base.count; i++) selected[i] = base.clusterOf[i] === id ? 1 : 0;
  sendSelection();
}

// drawn after the points: a dark ring around each selected point, then the cluster names
function decorate(ctx) {
  if (!selected || !view) return;
  const {sx, sy, ox, oy, dpr} = view, r = Math.max(2, base.size / 2 + 1.5) * dpr;
  ctx.strokeStyle = "#111827";
  ctx.lineWidth = 1.5 * dpr;
  ctx.beginPath();
  for (let i = 0; i < base.count; i++) {
    if (!selected[i]) continue;
    const x = ox + sx * base.xs[i], y = oy + sy * base.ys[i];
    ctx.rect(x - r, y - r, 2 * r, 2 * r);
  }
  ctx.stroke();
  placeLabels();
}

// cluster names at their centres, largest first, none overlapping another; more fit as the user zooms in
function placeLabels() {
  const {sx, sy, ox, oy, dpr} = view, taken = [], w = box.clientWidth, h = box.clientHeight;
  const zoom = chart.getOption().dataZoom || [], span = zoom.length ? (zoom[0].end - zoom[0].start) / 100 || 1 : 1;
  const most = Math.max(6, Math.round(6 / span));  // zoomed in 2x: up to twice as many names
  let html = "", shownNames = 0;
  for (const c of base.clusters || []) {
    if (shownNames >= most) break;
    const x = (ox + sx * c.x) / dpr, y = (oy + sy * c.y) / dpr, half = (c.name.length * 7 + 14) / 2;
    const rect = [x - half, y - 10, x + half, y + 10];
    if (rect[0] < GRID.left || rect[2] > w - GRID.right || rect[1] < GRID.top || rect[3] > h - GRID.bottom) continue;
    if (taken.some((t) => rect[0] < t[2] && t[0] < rect[2] && rect[1] < t[3] && t[1] < rect[3])) continue;
    taken.push([...rect, c.id]);
    shownNames++;
    html += `<span class="map-label" data-cluster="${c.id}" style="left:${x}px;top:${y}px">${esc(c.name)}</span>`;
  }
  labelBox.innerHTML = html;
  labelRects = taken;
  root.dataset.labels = shownNames;
}

function clickName(x, y) {
  const hit = labelRects.find((r) => x >= r[0] && x <= r[2] && y >= r[1] && y <= r[3]);
  if (hit) selectCluster(hit[4]);
  return Boolean(hit);
}

function drawStroke() {
  const dpr = window.devicePixelRatio || 1, ctx = drawLayer.getContext("2d");
  ctx.clearRect(0, 0, drawLayer.width, drawLayer.height);
  if (!stroke || stroke.points.length < 2) return;
  const pts = mode === "box" ? boxCorners(stroke.points) : stroke.points;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.beginPath();
  pts.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
  ctx.closePath();
  Object.assign(ctx, {fillStyle: "rgba(79,70,229,0.12)", strokeStyle: "#4f46e5", lineWidth: 1.5});
  ctx.fill();
  ctx.stroke();
}

function boxCorners(points) {
  const [a, b] = [points[0], points[points.length - 1]];
  return [a, [b[0], a[1]], b, [a[0], b[1]]];
}

function setMode(next) {
  mode = next;
  root.querySelectorAll(".map-modes button").forEach((b) => b.classList.toggle("on", b.dataset.mode === mode));
  drawLayer.classList.toggle("active", mode !== "pan");
  const dpr = window.devicePixelRatio || 1;
  Object.assign(drawLayer, {width: box.clientWidth * dpr, height: box.clientHeight * dpr});
  drawLayer.style.cssText = `width: ${box.clientWidth}px; height: ${box.clientHeight}px`;
}

function wireSelection() {
  const at = (e) => { const r = drawLayer.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
  root.querySelectorAll(".map-modes button").forEach((b) => b.addEventListener("click", () => setMode(b.dataset.mode)));
  root.querySelector(".map-clear").addEventListener("click", () => { if (selected) { selected.fill(0); sendSelection(); } });
  drawLayer.addEventListener("pointerdown", (e) => {
    if (!base) return;
    drawLayer.setPointerCapture(e.pointerId);
    stroke = {points: [at(e)], add: e.shiftKey};
  });
  drawLayer.addEventListener("pointermove", (e) => {  // every position, also those the browser coalesced
    if (!stroke) return;
    const all = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
    for (const c of all.length ? all : [e]) stroke.points.push(at(c));
    drawStroke();
  });
  drawLayer.addEventListener("pointerup", (e) => {
    if (!stroke) return;
    const done = stroke;
    stroke = null;
    drawStroke();
    const [a, b] = [done.points[0], at(e)], moved = Math.hypot(b[0] - a[0], b[1] - a[1]);
    if (moved < 4) {  // a click: a cluster's name selects the cluster; else add or remove the point under it
      if (clickName(b[0], b[1])) return;
      const i = nearest(b[0], b[1]);
      if (i >= 0) { selected[i] = selected[i] ? 0 : 1; sendSelection(); }
      return;
    }
    done.points.push(b);
    selectInside(mode === "box" ? boxCorners(done.points) : done.points, done.add);
  });
  const pick = (e) => {
    const id = e.target.closest("[data-cluster]");
    if (id && base) selectCluster(Number(id.dataset.cluster));
  };
  clusterList.addEventListener("click", pick);
  // the names let the pointer through (hover and pan work under them); a click on one is found here
  chart.getZr().on("click", (e) => { if (mode === "pan" && base) clickName(e.offsetX, e.offsetY); });
  // for tests and the benchmark: select by polygon (page px), the selected indices, a cluster by id
  Object.assign(root.mapView, {
    selectPolygon: (poly, add) => {
      const r = box.getBoundingClientRect();
      selectInside(poly.map(([x, y]) => [x - r.left, y - r.top]), add);
    },
    selectedIndices: () => (selected ? [...selected.keys()].filter((i) => selected[i]) : []),
    selectCluster,
    clusterOf: (i) => base.clusterOf[i],
  });
}
