// The Map tab's scatter: the body of gr.HTML(js_on_load=...), with Gradio's `element`, `trigger`, `props`,
// `server` and `watch`. Apache ECharts (vendored under static/echarts/) does the zoom and pan, the legend and
// the overlay (query, matches); this script paints the catalog's points and density pixel by pixel on a canvas
// under ECharts', in the frame ECharts repaints (a software canvas fills 100k ECharts symbols too slowly).
// props.value is a JSON message: {"points": {...}} replaces the drawn catalog (see ui/map_data.py),
// {"overlay": {...}} places the query, its ranked matches and the filter mask over it.
const root = element.querySelector(".map-view");
const [box, layer, picker] = [".map-chart", ".map-points", ".map-colour"].map((s) => root.querySelector(s));
const MATCHES = "matches", QUERY = "query", DIMMED = "filtered out", DIM_COLOR = "#c3c8d0";
const GRID = {left: 8, right: 8, top: 36, bottom: 8};  // the plot area inside the chart, css px
const CELLS = 128, SHIFT = 9;  // hover index: 128 x 128 cells over the uint16 coordinates (65536 >> 9)
const cards = new Map();  // point index -> hover card HTML (from the server, escaped there)
let base = null, overlay = null, chart = null, legendSelected = {}, view = null, lastSig = "", hovered = -1;
const tip = Object.assign(document.createElement("div"), {className: "map-tip-box"});  // hover card of a painted point

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"})[c]);
const bytes = (b64) => Uint8Array.from(atob(b64 || ""), (c) => c.charCodeAt(0));
const uint16 = (b64) => { const b = bytes(b64); return new Uint16Array(b.buffer, 0, b.length >> 1); };
const rgb = (hex) => parseInt(hex.slice(5, 7) + hex.slice(3, 5) + hex.slice(1, 3), 16);  // #rrggbb -> 0xBBGGRR

function decode(p) {
  const [x0, x1, y0, y1] = p.bounds, qx = uint16(p.x), qy = uint16(p.y);
  const xs = new Float32Array(p.count), ys = new Float32Array(p.count);
  for (let i = 0; i < p.count; i++) { xs[i] = x0 + (qx[i] / 65535) * (x1 - x0); ys[i] = y0 + (qy[i] / 65535) * (y1 - y0); }
  const fields = {};
  for (const [name, f] of Object.entries(p.fields)) fields[name] = {...f, codes: bytes(f.codes)};
  // counting sort of the points by grid cell: the points of cell c are order[start[c]] .. order[start[c + 1] - 1]
  const start = new Uint32Array(CELLS * CELLS + 1), order = new Uint32Array(p.count);
  for (let i = 0; i < p.count; i++) start[(qy[i] >> SHIFT) * CELLS + (qx[i] >> SHIFT) + 1]++;
  for (let c = 0; c < CELLS * CELLS; c++) start[c + 1] += start[c];
  const fill = start.slice(0, -1);
  for (let i = 0; i < p.count; i++) order[fill[(qy[i] >> SHIFT) * CELLS + (qx[i] >> SHIFT)]++] = i;
  // the same points in that order (read sequentially by the paint and the hover lookup)
  const cellX = Float32Array.from(order, (i) => xs[i]), cellY = Float32Array.from(order, (i) => ys[i]);
  for (const f of Object.values(fields)) f.cellCodes = Uint8Array.from(order, (i) => f.codes[i]);
  const size = p.count < 2000 ? 9 : p.count < 20000 ? 6 : 3;  // small catalogs: bigger dots
  return {...p, xs, ys, fields, start, order, cellX, cellY, shade: shading(p), size};
}

// the density grid's cells (every product, above 100k): centre x, y and a pixel of its shade (0xAABBGGRR)
function shading(p) {
  const top = Math.max(...(p.density || []).map((d) => d[2]));
  const alpha = (n) => Math.round(255 * (0.08 + (0.5 * Math.log1p(n)) / Math.log1p(top)));
  return (p.density || []).map(([x, y, n]) => [x, y, (alpha(n) << 24) | rgb("#4f46e5")]);
}

// 1 per point (in cell order) that passes the Search tab's filters, or null when nothing is filtered
function passMask() {
  if (!overlay || !overlay.dim || overlay.key !== base.key) return null;
  const bits = bytes(overlay.dim);
  return Uint8Array.from(base.order, (i) => (bits[i >> 3] >> (i & 7)) & 1);
}

function library() {
  if (window.echarts) return Promise.resolve();
  const cfg = window.gradio_config || {};
  const src = `${cfg.root || ""}${cfg.api_prefix || "/gradio_api"}/file=${encodeURI(root.dataset.lib)}`;
  return new Promise((ok, fail) => {
    const s = document.createElement("script");
    s.src = src; s.onload = ok; s.onerror = () => fail(new Error("the chart library could not be loaded"));
    document.head.appendChild(s);
  });
}

// one dot of `diameter` device px: its pixels' offsets from the centre pixel and the share of each it covers
function stamp(diameter, square) {
  const r = diameter / 2, n = Math.max(1, Math.round(diameter)), dx = [], dy = [], cover = [];
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) {
    let c = 0;  // 4 x 4 samples per pixel; small dots are squares, like ECharts' own large symbols
    for (let s = 0; s < 16; s++) c += square || Math.hypot(x + (s % 4 + 0.5) / 4 - n / 2, y + ((s >> 2) + 0.5) / 4 - n / 2) <= r;
    if (c) { dx.push(x - (n >> 1)); dy.push(y - (n >> 1)); cover.push(c / 16); }
  }
  const [lo, hi] = [-(n >> 1), n - 1 - (n >> 1)];
  return {dx: Int32Array.from(dx), dy: Int32Array.from(dy), cover: Float32Array.from(cover), lo, hi, odd: n % 2};
}

// pixel d (0xAABBGGRR, unpremultiplied) after colour c (0xBBGGRR) at opacity sa goes "source over" it
function over(d, c, sa) {
  const da = (d >>> 24) / 255, oa = sa + da * (1 - sa), f = (da * (1 - sa)) / oa, g = sa / oa;
  const mix = (at) => ((((c >> at) & 255) * g + ((d >> at) & 255) * f + 0.5) | 0) << at;
  return (((oa * 255 + 0.5) | 0) << 24) | mix(16) | mix(8) | mix(0);
}

// the points' colour codes, whether each code is shown (legend), and the pass mask of the filters
function groups() {
  const field = base.fields[picker.value] || base.fields.category;
  const shown = field.names.map((name) => legendSelected[name] !== false);
  return {field, shown, pass: base.cellPass, dimShown: legendSelected[DIMMED] !== false};
}

// the dots of one paint into `out` (0xAABBGGRR pixels, W a row) clipped to [L, R) x [T, B), over the
// density cells if any; the numbers
// of passing and of filtered-out points centred in it (its own function: V8 optimises it as a whole)
function splat(out, W, [L, T, R, B], [sx, sy, ox, oy], dpr) {
  const {field, shown, pass, dimShown} = groups(), colors = field.colors.map(rgb), codes = field.cellCodes;
  const {dx, dy, cover, lo, hi, odd} = stamp(base.size * dpr, base.size < 4), {cellX, cellY} = base, n = base.count, reach = hi - lo + 1;
  const grey = rgb(DIM_COLOR), bias = 64.5 - odd / 2, square = cover.every((v) => v === 1);
  const [w, h] = base.cell || [0, 0];
  for (const [x, y, shade] of base.shade) {  // the density of every product under the sampled points
    const xa = Math.max(L, Math.round(ox + sx * (x - w / 2))), xb = Math.min(R, Math.round(ox + sx * (x + w / 2)));
    const ya = Math.max(T, Math.round(oy + sy * (y + h / 2))), yb = Math.min(B, Math.round(oy + sy * (y - h / 2)));
    for (let row = ya; row < yb; row++) for (let k = row * W + xa; k < row * W + xb; k++) out[k] = shade;
  }
  let drawn = 0, dimmed = 0;
  // the filtered-out points first, in grey, so the points that pass stay on top; in the index's cell
  // order, so that consecutive dots share cache lines of the image (several times faster than by index)
  for (let round = pass ? 0 : 1; round < 2; round++) {
    for (let o = 0; o < n; o++) {
      const passing = !pass || pass[o] === 1;
      if (passing !== (round === 1) || (passing ? !shown[codes[o]] : !dimShown)) continue;
      const px = ox + sx * cellX[o], py = oy + sy * cellY[o];
      if (px < L - reach || px >= R + reach || py < T - reach || py >= B + reach) continue;  // partly shown dots too
      const cx = ((px + bias) | 0) - 64, cy = ((py + bias) | 0) - 64;  // rounded, in int32 arithmetic
      const c = passing ? colors[codes[o]] : grey, alpha = passing ? 0.8 : 0.3, a8 = passing ? 205 : 77;
      if (square && cx + lo >= L && cx + hi < R && cy + lo >= T && cy + hi < B) {  // the common case, row by row
        for (let y = cy + lo; y <= cy + hi; y++) {
          for (let k = y * W + cx + lo, end = y * W + cx + hi; k <= end; k++) {
            const da = out[k] >>> 24;
            out[k] = c | ((da + (((255 - da) * a8) >> 8)) << 24);  // on top; opacity adds up
          }
        }
      } else {  // round dots (small catalogs) and dots cut by the plot's edge: pixel by pixel, blended
        for (let j = 0; j < dx.length; j++) {
          const x = cx + dx[j], y = cy + dy[j];
          if (x >= L && x < R && y >= T && y < B) out[y * W + x] = over(out[y * W + x], c, alpha * cover[j]);
        }
      }
      if (px < L || px >= R || py < T || py >= B) continue;  // counted: the points centred in the plot
      if (passing) drawn++; else dimmed++;
    }
  }
  return [drawn, dimmed];
}

// paint the points for ECharts' current view; called on each ECharts frame, skipped if nothing moved
function paint() {
  if (!chart || !base || !box.clientWidth) return;
  const dpr = window.devicePixelRatio || 1, W = Math.round(box.clientWidth * dpr), H = Math.round(box.clientHeight * dpr);
  const [x0, x1, y0, y1] = base.bounds, spanX = x1 - x0 || 1, spanY = y1 - y0 || 1;
  const a = chart.convertToPixel({gridIndex: 0}, [x0, y0]), b = chart.convertToPixel({gridIndex: 0}, [x0 + spanX, y0 + spanY]);
  const sx = ((b[0] - a[0]) / spanX) * dpr, sy = ((b[1] - a[1]) / spanY) * dpr, ox = a[0] * dpr - sx * x0, oy = a[1] * dpr - sy * y0;
  const sig = [W, H, sx, sy, ox, oy, picker.value, JSON.stringify(legendSelected)].join();
  if (sig === lastSig) return;
  lastSig = sig;
  view = {sx, sy, ox, oy, dpr};
  const t0 = performance.now();
  if (layer.width !== W || layer.height !== H) {
    Object.assign(layer, {width: W, height: H}).style.cssText = `width: ${box.clientWidth}px; height: ${box.clientHeight}px`;
  }
  const [L, T, R, B] = [GRID.left, GRID.top, -GRID.right, -GRID.bottom].map((v, k) => Math.round(v * dpr) + [0, 0, W, H][k]);
  if (!paint.image || paint.image.width !== W || paint.image.height !== H) paint.image = new ImageData(W, H);
  const image = paint.image, out = new Int32Array(image.data.buffer).fill(0);  // RGBA bytes: 0xAABBGGRR
  const [drawn, dimmed] = splat(out, W, [L, T, R, B], [sx, sy, ox, oy], dpr);
  layer.getContext("2d").putImageData(image, 0, 0);
  decorate(layer.getContext("2d"));  // the selection and the cluster names (map_select.js)
  // for tests and the benchmark: what this paint drew, its number and its time
  const paints = Number(root.dataset.paints || 0) + 1, paintMs = (performance.now() - t0).toFixed(2);
  Object.assign(root.dataset, {painted: drawn + dimmed, paintedDimmed: dimmed, paints, paintMs});
}

// the nearest shown point within a few px of (mx, my) (css px in the chart), or -1
function nearest(mx, my) {
  const outside = mx < GRID.left || my < GRID.top || mx > box.clientWidth - GRID.right || my > box.clientHeight - GRID.bottom;
  if (!view || !base.count || outside) return -1;
  const {sx, sy, ox, oy, dpr} = view, px = mx * dpr, py = my * dpr, reach = Math.max(5, base.size / 2 + 2) * dpr;
  const [x0, x1, y0, y1] = base.bounds, dx = x1 - x0 || 1, dy = y1 - y0 || 1;
  const cell = (v, o, s, lo, span) => Math.min(CELLS - 1, Math.max(0, Math.floor((((v - o) / s - lo) / span) * 65535) >> SHIFT));
  const ca = cell(px - reach, ox, sx, x0, dx), cb = cell(px + reach, ox, sx, x0, dx);
  const ra = cell(py - reach, oy, sy, y0, dy), rb = cell(py + reach, oy, sy, y0, dy);
  const {field, shown, pass, dimShown} = groups();
  let best = -1, bestD = reach * reach;
  for (let row = Math.min(ra, rb); row <= Math.max(ra, rb); row++) {
    for (let col = Math.min(ca, cb); col <= Math.max(ca, cb); col++) {
      for (let k = base.start[row * CELLS + col]; k < base.start[row * CELLS + col + 1]; k++) {
        if (pass && !pass[k] ? !dimShown : !shown[field.cellCodes[k]]) continue;
        const d = (ox + sx * base.cellX[k] - px) ** 2 + (oy + sy * base.cellY[k] - py) ** 2;
        if (d <= bestD) { best = base.order[k]; bestD = d; }
      }
    }
  }
  return best;
}

function showTip(i, mx, my) {
  const f = base.fields;
  hovered = i;
  const name = (field) => esc(f[field].names[f[field].codes[i]]);
  tip.innerHTML = cards.get(i) || `<div class="map-tip"><b>${name("category")}</b> · ${name("brand")}</div>`;
  tip.style.display = "block";  // beside the pointer, inside the chart
  const left = mx + 16 + tip.offsetWidth > box.clientWidth ? mx - 16 - tip.offsetWidth : mx + 16;
  const top = Math.min(my + 16, box.clientHeight - tip.offsetHeight);
  Object.assign(tip.style, {left: `${Math.max(0, left)}px`, top: `${Math.max(0, top)}px`});
  if (cards.has(i)) return;
  const key = base.key;  // the category and brand at once, the server's card when it comes
  server.hover_card({key, index: i}).then((card) => {
    if (card && key === base.key) { cards.set(i, card); if (hovered === i) showTip(i, mx, my); }
  }).catch(() => {});
}

function hideTip() { hovered = -1; tip.style.display = "none"; }

// the overlay's markers and one empty series per legend entry (its colour in the legend, points painted by us)
function series() {
  const {field, pass} = groups();
  const entry = (id, name, color) => ({type: "scatter", id, name, data: [], itemStyle: {color}});
  const legend = field.names.map((name, k) => entry(`base:${k}`, name, field.colors[k]));
  if (pass) legend.push(entry("dim", DIMMED, DIM_COLOR));
  const matches = (overlay && overlay.matches) || [], query = overlay && overlay.query, source = overlay && overlay.source;
  Object.assign(root.dataset, {matches: matches.length, query: query ? `${query.x},${query.y}` : ""});
  return [legend.map((s) => s.name), [...legend, {
    type: "scatter", id: MATCHES, name: "matches", z: 5, symbolSize: 18,
    data: matches.map((m) => [m.x, m.y, m.rank, m.id, m.label]),
    itemStyle: {color: "#ffffff", borderColor: "#1e1b4b", borderWidth: 2},
    label: {show: true, formatter: (p) => String(p.value[2]), fontSize: 10, fontWeight: "bold", color: "#1e1b4b"},
  }, {
    type: "scatter", id: "source", name: "source", z: 4, symbolSize: 26, silent: true,
    data: source ? [[source.x, source.y]] : [],
    itemStyle: {color: "rgba(225,29,72,0.12)", borderColor: "#e11d48", borderWidth: 2.5},
  }, {
    type: "scatter", id: QUERY, name: "query", z: 6, symbol: "pin", symbolSize: 38,
    data: query ? [[query.x, query.y, query.label]] : [],
    itemStyle: {color: "#e11d48", borderColor: "#ffffff", borderWidth: 1.5},
    label: {show: true, formatter: "Q", color: "#fff", fontWeight: "bold"},
  }]];
}

// the axes span the catalog and the overlay, plus a margin (the points are not ECharts data)
function extent() {
  const [x0, x1, y0, y1] = base.bounds, xs = [x0, x1], ys = [y0, y1], o = overlay || {};
  for (const p of [...(o.matches || []), o.query, o.source]) if (p) { xs.push(p.x); ys.push(p.y); }
  const pad = (v) => { const lo = Math.min(...v), hi = Math.max(...v), m = (hi - lo || 1) * 0.03; return {min: lo - m, max: hi + m}; };
  return [pad(xs), pad(ys)];
}

function render(keepView) {
  if (!chart || !base) return;
  base.cellPass = passMask();
  const [names, all] = series(), [x, y] = extent();
  const option = {
    animation: false, grid: GRID,
    xAxis: {type: "value", show: false, ...x}, yAxis: {type: "value", show: false, ...y},
    dataZoom: [{type: "inside", xAxisIndex: 0, filterMode: "none"}, {type: "inside", yAxisIndex: 0, filterMode: "none"}],
    legend: {type: "scroll", top: 4, data: names, selected: legendSelected},
    tooltip: {trigger: "item", enterable: false, confine: true, transitionDuration: 0,
      formatter: (p) => (p.seriesId === MATCHES ? p.value[4] : p.seriesId === QUERY ? p.value[2] : "")},
    series: all,
  };
  chart.setOption(option, keepView ? {replaceMerge: ["series", "legend"]} : true);
  const dimmed = base.cellPass ? base.count - base.cellPass.reduce((n, v) => n + v, 0) : 0;
  Object.assign(root.dataset, {drawn: base.count, dimmed, key: base.key});
  lastSig = "";
  paint();
}

function receive(raw) {
  if (!raw) return;
  let message;
  try { message = JSON.parse(raw); } catch (e) { return; }
  const fresh = message.points && (!base || message.points.key !== base.key);
  if (fresh) { base = decode(message.points); cards.clear(); hideTip(); selectionReset(); }
  if ("overlay" in message) overlay = message.overlay;
  if (fresh || "overlay" in message) render(!fresh);
}

const pagePixel = (value) => {
  const [x, y] = chart.convertToPixel({gridIndex: 0}, value), r = box.getBoundingClientRect();
  return [r.left + x, r.top + y];
};
// public for tests and the benchmark: the page pixel of a drawn point or of a ranked match
root.mapView = {
  pixelOf: (i) => pagePixel([base.xs[i], base.ys[i]]),
  pixelOfMatch: (rank) => { const m = overlay.matches.find((m) => m.rank === rank); return pagePixel([m.x, m.y]); },
};

library().then(() => {
  chart = window.echarts.init(box, null, {renderer: "canvas"});
  box.appendChild(tip);
  const zr = chart.getZr();
  chart.on("rendered", paint);  // after each ECharts paint (zoom, pan, legend, resize): the same frame
  chart.on("legendselectchanged", (e) => { legendSelected = e.selected; });
  chart.on("click", (p) => { if (p.seriesId === MATCHES) trigger("point_click", {id: p.value[3]}); });
  // the painted points have no ECharts element: hover and click on the empty chart look them up
  zr.on("mousemove", (e) => {
    const i = e.target || e.event.buttons || !base ? -1 : nearest(e.offsetX, e.offsetY);
    if (i < 0) { if (hovered >= 0) hideTip(); return; }
    zr.setCursorStyle("pointer");
    showTip(i, e.offsetX, e.offsetY);
  });
  ["globalout", "mousewheel"].forEach((name) => zr.on(name, hideTip));
  zr.on("click", (e) => {
    const i = e.target || !base ? -1 : nearest(e.offsetX, e.offsetY);
    if (i >= 0) trigger("point_click", {key: base.key, index: i});
  });
  new ResizeObserver(() => chart.resize()).observe(box);
  picker.addEventListener("change", () => { legendSelected = {}; render(true); });
  root.querySelector(".map-reset").addEventListener("click", () => {
    chart.dispatchAction({type: "dataZoom", dataZoomIndex: 0, start: 0, end: 100});
    chart.dispatchAction({type: "dataZoom", dataZoomIndex: 1, start: 0, end: 100});
  });
  wireSelection();
  receive(props.value);
  watch("value", () => receive(props.value));
  root.dataset.ready = "1";
}).catch((e) => { box.textContent = `The map cannot be shown: ${e.message}.`; });
