"""Map tab in the browser: payload build time and size, first draw, zoom and pan redraw times in chromium.

    python -m benchmarks.map_view [--sizes 10000,100000,1000000] [--zooms 12]

Synthetic layouts (clustered 2-D points with categories, brands and colours) go through the Map tab's
own ``build_snapshot``/``payload`` and its own script (``similarity/ui/static/map_view.js``) with the
vendored ECharts, in Debian chromium (headless, no GPU) on a page served from 127.0.0.1. The script
paints the points itself on a canvas under ECharts'; every timed step is checked to have painted the
points in view. Above 100k products the tab draws a 100k sample plus a density grid, so the 1M row
measures that.
"""

from __future__ import annotations

import functools
import http.server
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from similarity.ui.map import LIBRARY, STATIC
from similarity.ui.map_data import build_snapshot
from similarity.ui.map_html import CSS, TEMPLATE

from .common import markdown_table, p50, parser, pyplot, write_report

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
# Gradio's js_on_load context, reduced to what map_view.js uses; the payload arrives as props.value
HARNESS = """<!doctype html><html><head><meta charset="utf-8"><script src="echarts.min.js"></script>
<style>%s .map-stage {width: 1000px;} .map-chart {width: 1000px; height: 560px;}</style></head>
<body><div id="host">%s</div><script>
const frames = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
window.runMap = async (raw) => {
  const props = {value: raw}, watchers = [];
  const server = {hover_card: async () => ""};
  const code = await (await fetch("map_view.js")).text();
  const t0 = performance.now();
  new Function("element", "trigger", "props", "server", "upload", "watch", code)(
    document.getElementById("host"), () => {}, props, server, null, (k, cb) => watchers.push(cb));
  const root = document.querySelector(".map-view");
  while (root.dataset.ready !== "1") await new Promise((r) => setTimeout(r, 5));
  await frames();
  return {ms: performance.now() - t0, drawn: Number(root.dataset.drawn)};
};
// one dataZoom step on both axes, timed to two animation frames later; the layer must have painted in it
window.zoomOnce = async (start, end) => {
  const chart = echarts.getInstanceByDom(document.querySelector(".map-chart"));
  const root = document.querySelector(".map-view"), paints = Number(root.dataset.paints);
  const t0 = performance.now();
  chart.dispatchAction({type: "dataZoom", dataZoomIndex: 0, start, end});
  chart.dispatchAction({type: "dataZoom", dataZoomIndex: 1, start, end});
  await frames();
  const ms = performance.now() - t0;
  return {ms, painted: Number(root.dataset.paints) > paints, paintMs: Number(root.dataset.paintMs)};
};
// what the layer says it painted, the points whose centre is in the plot by ECharts' own mapping, and
// the canvas' non-transparent pixels: a layer that draws nothing (or the wrong points) cannot pass
window.check = () => {
  const root = document.querySelector(".map-view"), box = root.querySelector(".map-chart");
  const layer = root.querySelector(".map-points"), r = box.getBoundingClientRect();
  let inside = 0;
  for (let i = 0; i < Number(root.dataset.drawn); i++) {
    const [x, y] = root.mapView.pixelOf(i).map((v, k) => v - (k ? r.top : r.left));
    inside += x >= 8 && x < box.clientWidth - 8 && y >= 36 && y < box.clientHeight - 8;
  }
  const alpha = layer.getContext("2d").getImageData(0, 0, layer.width, layer.height).data;
  let lit = 0;
  for (let k = 3; k < alpha.length; k += 4) lit += alpha[k] > 0;
  return {painted: Number(root.dataset.painted), inside, lit};
};
</script></body></html>"""


def synthetic_pages(n: int, seed: int = 0):
    """``CatalogMap.points``-shaped pages over ``n`` clustered points (60 clusters, 7 categories, 40 brands)."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10, 10, size=(60, 2))
    cluster = rng.integers(0, 60, size=n)
    xy = centres[cluster] + rng.normal(scale=0.6, size=(n, 2))
    categories = np.array(["bags", "electronics", "shoes", "watches", "snacks", "fruits-vegetables", "other"])
    colours = np.array(["black", "white", "red", "blue", "green", "brown", "grey"])

    def pages(limit, offset):
        rows = range(offset, min(n, offset + (n if limit is None else limit)))
        points = [{"id": f"p{i:07d}", "x": float(xy[i, 0]), "y": float(xy[i, 1]),
                   "category": str(categories[cluster[i] % 7]), "brand": f"brand{cluster[i] % 40}",
                   "colors": [str(colours[i % 7])]} for i in rows]  # fmt: skip
        return {"method": "umap", "catalog_version": "v1", "points": points, "total": n, "note": ""}

    return pages


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    quiet = type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def verified(page, n: int, when: str) -> dict:
    """The layer's own count against ECharts' mapping, and lit pixels; raises if the points are not drawn."""
    seen = page.evaluate("() => window.check()")
    if not seen["lit"] or abs(seen["painted"] - seen["inside"]) > max(2, seen["inside"] // 1000):
        raise SystemExit(f"{n:,} products, {when}: the point layer does not show the points in view: {seen}")
    return seen


def timed_steps(page, n: int, spans, what: str) -> tuple[list[float], list[float]]:
    """Redraw times (ms) of dataZoom steps to (start, end), and the layer's paint times; each step checked."""
    ms, paint = [], []
    for a, b in spans:
        step = page.evaluate("([a, b]) => window.zoomOnce(a, b)", [float(a), float(b)])
        if not step["painted"]:
            raise SystemExit(f"{n:,} products: the point layer did not repaint within a {what} step")
        verified(page, n, what)
        ms.append(step["ms"])
        paint.append(step["paintMs"])
    return ms, paint


def main(argv: list[str] | None = None) -> int:
    args_parser = parser(__doc__, sizes="10000,100000,1000000")
    args_parser.add_argument("--zooms", type=int, default=12, help="timed zoom steps (and as many pan steps) per size")
    args = args_parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    rows, plot = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "echarts.min.js").write_bytes(LIBRARY.read_bytes())
        script = "\n".join((STATIC / name).read_text(encoding="utf-8") for name in ("map_view.js", "map_select.js"))
        (folder / "map_view.js").write_text(script, encoding="utf-8")  # as the Map tab hands it to Gradio
        (folder / "index.html").write_text(HARNESS % (CSS, TEMPLATE.format(lib="echarts.min.js")), encoding="utf-8")
        server, url = serve(folder)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS, headless=True)
            for n in args.sizes:
                start = time.perf_counter()
                snap = build_snapshot(synthetic_pages(n))
                raw = json.dumps({"points": snap.payload(), "overlay": None})
                build_ms = (time.perf_counter() - start) * 1000
                page = browser.new_page(viewport={"width": 1100, "height": 700})
                page.goto(url)
                first = page.evaluate("(raw) => window.runMap(raw)", raw)
                full = verified(page, n, "first draw")
                zooms, zoom_paint = timed_steps(page, n, [(s, 100 - s) for s in np.linspace(5, 45, args.zooms)], "zoom")
                # pan: the same 40 % span on both axes, shifted from one side to the other (after an untimed step to it)
                page.evaluate("() => window.zoomOnce(0, 40)")
                pans, pan_paint = timed_steps(page, n, [(s, s + 40) for s in np.linspace(5, 55, args.zooms)], "pan")
                page.close()
                plot[n] = (zooms, pans)
                rows.append([f"{n:,}", f"{first['drawn']:,}", f"{full['painted']:,}", f"{full['lit']:,}", build_ms,
                             len(raw) / 2**20, first["ms"], p50(zooms), max(zooms), p50(pans), max(pans),
                             p50(zoom_paint + pan_paint)])  # fmt: skip
                print(rows[-1], flush=True)
            browser.close()
        server.shutdown()
    headers = ["products", "drawn", "painted (full view)", "lit pixels", "payload build ms", "payload MB",
               "first draw ms", "zoom redraw p50 ms", "zoom redraw max ms", "pan redraw p50 ms", "pan redraw max ms",
               "layer paint p50 ms"]  # fmt: skip
    body = (
        "One page per size; the payload goes through `build_snapshot` + `payload()` (the Map tab's own code, "
        "synthetic `CatalogMap.points` pages) and `map_view.js` with the vendored ECharts 6.1.0, headless chromium "
        "with `--disable-gpu` (software canvas), 1000 x 560 px chart. ECharts draws the zoom and pan, the legend "
        "and the overlay; the script paints every drawn point itself into an `ImageData` on a canvas under "
        "ECharts' own, on each ECharts frame. *First draw* = script start to two animation frames after the "
        "chart is ready (decode + index + paint). *Zoom redraw* = one `dataZoom` step on both axes (span 90 % "
        "down to 10 %) to two animation frames later (the floor is one to two frames, 17 to 33 ms at 60 frames/s, "
        "as the step may start late in a frame); *pan redraw* = "
        "the same with a 40 % span shifted across. *Layer paint* = the script's own paint of the points (and "
        "density) in those steps. After the first draw and after every step the benchmark checks the layer: its "
        "count of painted points must equal the points whose centre ECharts maps into the plot, and the canvas "
        "must have lit pixels (*painted* and *lit pixels* at the full view are in the table). Above 100k a 100k "
        "sample is drawn plus a density grid.\n\n" + markdown_table(headers, rows)
    )
    write_report("map_view", "Map tab in chromium: payload and redraw times", body, args.out)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    labels = [f"{n:,}" for n in plot]
    spots = np.arange(len(plot)) * 3.0
    ax.boxplot([z for z, _ in plot.values()], positions=spots, tick_labels=labels)
    pan_box = ax.boxplot([p for _, p in plot.values()], positions=spots + 1, tick_labels=labels, patch_artist=True)
    for patch in pan_box["boxes"]:
        patch.set_facecolor("#cfd8e3")
    ax.set_xticks(spots + 0.5, labels)
    ax.set_xlabel("catalog size (products); white = zoom, grey = pan")
    ax.set_ylabel("redraw (ms)")
    ax.set_title("Map tab zoom and pan redraw in headless chromium (canvas)")
    fig.tight_layout()
    fig.savefig(args.out / "map_view.png", dpi=120)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
