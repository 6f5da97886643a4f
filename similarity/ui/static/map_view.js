// The Map tab's scatter: runs as the body of gr.HTML(js_on_load=...), with Gradio's `element`,
// `trigger`, `props`, `server` and `watch`. Apache ECharts (vendored under static/echarts/) draws on a
// canvas; one "large" series per legend entry keeps 100k points smooth.
// props.value is a JSON message: {"points": {...}} replaces the drawn catalog (see ui/map_data.py),
// {"overlay": {...}} places the query, its ranked matches and the filter mask over it.
const root = element.querySelector(".map-view");
const box = root.querySelector(".map-chart");
const picker = root.querySelector(".map-colour");
const BASE = "base:", DIM = "dim", DENSITY = "density", MATCHES = "matches", QUERY = "query";
const cards = new Map();  // point index -> hover card HTML (from the server, escaped there)
let base = null, overlay = null, chart = null, legendSelected = {};

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"})[c]);
const bytes = (b64) => Uint8Array.from(atob(b64 || ""), (c) => c.charCodeAt(0));
const uint16 = (b64) => { const b = bytes(b64); return new Uint16Array(b.buffer, 0, b.length >> 1); };

function decode(p) {
  const [x0, x1, y0, y1] = p.bounds, qx = uint16(p.x), qy = uint16(p.y);
  const xs = new Float32Array(p.count), ys = new Float32Array(p.count);
  for (let i = 0; i < p.count; i++) { xs[i] = x0 + (qx[i] / 65535) * (x1 - x0); ys[i] = y0 + (qy[i] / 65535) * (y1 - y0); }
  const fields = {};
  for (const [name, f] of Object.entries(p.fields)) fields[name] = {...f, codes: bytes(f.codes)};
  return {...p, xs, ys, fields};
}

function passMask() {
  if (!overlay || !overlay.dim || overlay.key !== base.key) return null;
  const bits = bytes(overlay.dim);
  return (i) => (bits[i >> 3] >> (i & 7)) & 1;
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

function baseSeries() {
  const field = base.fields[picker.value] || base.fields.category;
  const pass = passMask();
  const groups = field.names.map(() => []), dimmed = [];
  for (let i = 0; i < base.count; i++) {
    const point = [base.xs[i], base.ys[i], i];
    if (pass && !pass(i)) dimmed.push(point); else groups[field.codes[i]].push(point);
  }
  const size = base.count < 2000 ? 9 : base.count < 20000 ? 6 : 3;  // small catalogs: bigger dots
  const large = {type: "scatter", large: true, largeThreshold: 400, progressive: 0, symbolSize: size};
  const series = field.names.map((name, k) => ({
    ...large, id: BASE + k, name, data: groups[k], itemStyle: {color: field.colors[k], opacity: 0.8},
  }));
  if (pass) series.push({...large, id: DIM, name: "filtered out", data: dimmed, itemStyle: {color: "#c3c8d0", opacity: 0.3}});
  root.dataset.drawn = String(base.count);
  root.dataset.dimmed = String(dimmed.length);
  return {series, legend: field.names.concat(pass ? ["filtered out"] : [])};
}

function densitySeries() {
  if (!base.density) return [];
  const max = Math.max(...base.density.map((d) => d[2]));
  const [w, h] = base.cell;
  return [{
    type: "custom", id: DENSITY, silent: true, z: 0, data: base.density,
    renderItem: (params, api) => {
      const a = api.coord([api.value(0) - w / 2, api.value(1) + h / 2]), b = api.coord([api.value(0) + w / 2, api.value(1) - h / 2]);
      const alpha = 0.08 + 0.5 * Math.log1p(api.value(2)) / Math.log1p(max);
      return {type: "rect", shape: {x: a[0], y: a[1], width: b[0] - a[0], height: b[1] - a[1]}, style: {fill: `rgba(79,70,229,${alpha})`}};
    },
  }];
}

function overlaySeries() {
  const out = [];
  const matches = (overlay && overlay.matches) || [], query = overlay && overlay.query;
  root.dataset.matches = String(matches.length);
  root.dataset.query = query ? `${query.x},${query.y}` : "";
  out.push({
    type: "scatter", id: MATCHES, name: "matches", z: 5, symbolSize: 18,
    data: matches.map((m) => [m.x, m.y, m.rank, m.id, m.label]),
    itemStyle: {color: "#ffffff", borderColor: "#1e1b4b", borderWidth: 2},
    label: {show: true, formatter: (p) => String(p.value[2]), fontSize: 10, fontWeight: "bold", color: "#1e1b4b"},
  });
  const source = overlay && overlay.source;
  out.push({
    type: "scatter", id: "source", name: "source", z: 4, symbolSize: 26, silent: true,
    data: source ? [[source.x, source.y]] : [],
    itemStyle: {color: "rgba(225,29,72,0.12)", borderColor: "#e11d48", borderWidth: 2.5},
  });
  out.push({
    type: "scatter", id: QUERY, name: "query", z: 6, symbol: "pin", symbolSize: 38,
    data: query ? [[query.x, query.y, query.label]] : [],
    itemStyle: {color: "#e11d48", borderColor: "#ffffff", borderWidth: 1.5},
    label: {show: true, formatter: "Q", color: "#fff", fontWeight: "bold"},
  });
  return out;
}

function tooltip(params, ticket, callback) {
  const id = params.seriesId || "";
  if (id === MATCHES) return params.value[4];
  if (id === QUERY) return params.value[2];
  if (!id.startsWith(BASE) && id !== DIM) return "";
  const i = params.value[2];
  if (cards.has(i)) return cards.get(i);
  const key = base.key;
  server.hover_card({key, index: i}).then((card) => {
    if (!card) return;
    cards.set(i, card);
    callback(ticket, card);
  }).catch(() => {});
  const f = base.fields;
  return `<div class="map-tip"><b>${esc(f.category.names[f.category.codes[i]])}</b> · ${esc(f.brand.names[f.brand.codes[i]])}</div>`;
}

function render(keepView) {
  if (!chart || !base) return;
  const {series, legend} = baseSeries();
  const option = {
    animation: false,
    grid: {left: 8, right: 8, top: 36, bottom: 8},
    xAxis: {type: "value", scale: true, show: false}, yAxis: {type: "value", scale: true, show: false},
    dataZoom: [
      {type: "inside", xAxisIndex: 0, filterMode: "none"},
      {type: "inside", yAxisIndex: 0, filterMode: "none"},
    ],
    legend: {type: "scroll", top: 4, data: legend, selected: legendSelected},
    tooltip: {trigger: "item", enterable: false, confine: true, formatter: tooltip, transitionDuration: 0},
    series: [...densitySeries(), ...series, ...overlaySeries()],
  };
  if (keepView) chart.setOption(option, {replaceMerge: ["series", "legend"]});
  else chart.setOption(option, true);
  root.dataset.key = base.key;
}

function receive(raw) {
  if (!raw) return;
  let message;
  try { message = JSON.parse(raw); } catch (e) { return; }
  const fresh = message.points && (!base || message.points.key !== base.key);
  if (fresh) { base = decode(message.points); cards.clear(); }
  if ("overlay" in message) overlay = message.overlay;
  if (fresh || "overlay" in message) render(!fresh);
}

// public for tests and for the reset button: the pixel of a drawn point, page coordinates
root.mapView = {
  pixelOf(i) {
    const [x, y] = chart.convertToPixel({gridIndex: 0}, [base.xs[i], base.ys[i]]);
    const r = box.getBoundingClientRect();
    return [r.left + x, r.top + y];
  },
  pixelOfMatch(rank) {
    const m = overlay.matches.find((m) => m.rank === rank);
    const [x, y] = chart.convertToPixel({gridIndex: 0}, [m.x, m.y]);
    const r = box.getBoundingClientRect();
    return [r.left + x, r.top + y];
  },
};

library().then(() => {
  chart = window.echarts.init(box, null, {renderer: "canvas"});
  chart.on("legendselectchanged", (e) => { legendSelected = e.selected; });
  chart.on("click", (p) => {
    const id = p.seriesId || "";
    if (id === MATCHES) trigger("point_click", {id: p.value[3]});
    else if (id.startsWith(BASE) || id === DIM) trigger("point_click", {key: base.key, index: p.value[2]});
  });
  new ResizeObserver(() => chart.resize()).observe(box);
  picker.addEventListener("change", () => { legendSelected = {}; render(true); });
  root.querySelector(".map-reset").addEventListener("click", () => {
    chart.dispatchAction({type: "dataZoom", dataZoomIndex: 0, start: 0, end: 100});
    chart.dispatchAction({type: "dataZoom", dataZoomIndex: 1, start: 0, end: 100});
  });
  receive(props.value);
  watch("value", () => receive(props.value));
  root.dataset.ready = "1";
}).catch((e) => { box.textContent = `The map cannot be shown: ${e.message}.`; });
