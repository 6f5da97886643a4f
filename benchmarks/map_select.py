"""Map selections and cluster names at scale: lasso selection time in chromium, and HDBSCAN + naming time.

    flock /work/cpu.lock python -m benchmarks.map_select [--sizes 10000,100000]

Selection: the Map tab's own scripts (``map_view.js`` + ``map_select.js``) with the vendored ECharts in Debian
chromium, on the synthetic clustered layouts of ``benchmarks/map_view.py``; each lasso (a 40-vertex polygon
of another size and place) goes through ``mapView.selectPolygon``: the hit test over every drawn point
(``selectMs``, measured in the page) and the whole step to the next painted frame (the selection's rings
included). Clusters: ``find_clusters`` (HDBSCAN on a 10k sample, the rest by nearest sampled point) and
``name_clusters`` (c-TF-IDF) on the same layouts with category/brand/tag terms.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from similarity.map.clusters import find_clusters, name_clusters
from similarity.ui.map import LIBRARY, STATIC
from similarity.ui.map_data import build_snapshot
from similarity.ui.map_html import CSS, TEMPLATE

from .common import markdown_table, p50, parser, write_report
from .map_view import FLAGS, HARNESS, serve, synthetic_pages

LASSO = """async ([cx, cy, rx, ry]) => {
  const root = document.querySelector(".map-view"), t0 = performance.now();
  const poly = Array.from({length: 40}, (_, k) => {
    const a = (2 * Math.PI * k) / 40;
    return [cx + rx * Math.cos(a) * (1 + 0.2 * Math.sin(3 * a)), cy + ry * Math.sin(a)];
  });
  root.mapView.selectPolygon(poly);
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  return {ms: performance.now() - t0, hit: Number(root.dataset.selectMs), selected: Number(root.dataset.selected)};
}"""


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__, sizes="10000,100000").parse_args(argv)
    from playwright.sync_api import sync_playwright

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "echarts.min.js").write_bytes(LIBRARY.read_bytes())
        script = "\n".join((STATIC / name).read_text(encoding="utf-8") for name in ("map_view.js", "map_select.js"))
        (folder / "map_view.js").write_text(script, encoding="utf-8")
        (folder / "index.html").write_text(HARNESS % (CSS, TEMPLATE.format(lib="echarts.min.js")), encoding="utf-8")
        server, url = serve(folder)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS, headless=True)
            for n in args.sizes:
                pages = synthetic_pages(n)
                snap = build_snapshot(pages)
                page = browser.new_page(viewport={"width": 1300, "height": 800})
                page.goto(url)
                page.evaluate("(raw) => window.runMap(raw)", json.dumps({"points": snap.payload(), "overlay": None}))
                box = page.locator(".map-chart").bounding_box()
                rng = np.random.default_rng(n)
                steps = []
                for _ in range(12):
                    cx, cy = (
                        box["x"] + box["width"] * rng.uniform(0.3, 0.7),
                        box["y"] + box["height"] * rng.uniform(0.3, 0.7),
                    )
                    steps.append(page.evaluate(LASSO, [cx, cy, rng.uniform(60, 300), rng.uniform(40, 200)]))
                page.close()
                xy = np.array([[p["x"], p["y"]] for p in pages(None, 0)["points"]], np.float32)
                t0 = time.perf_counter()
                labels = find_clusters(xy)
                found = time.perf_counter() - t0
                points = pages(None, 0)["points"]
                terms = [{p["category"], p["brand"], p["colors"][0]} for p in points]
                t0 = time.perf_counter()
                names = name_clusters(labels, terms)
                named = time.perf_counter() - t0
                selected = [s["selected"] for s in steps]
                hits, whole = [s["hit"] for s in steps], [s["ms"] for s in steps]
                figures = [p50(hits), max(hits), p50(whole), max(whole)]
                rows.append([f"{n:,}", f"{min(selected):,}-{max(selected):,}", *(f"{v:.1f}" for v in figures),
                             len(names), f"{found:.2f}", f"{named:.2f}"])  # fmt: skip
                print(rows[-1], flush=True)
            browser.close()
        server.shutdown()
    table = markdown_table(
        ["products", "selected per lasso", "hit test p50 ms", "hit test max ms", "to painted p50 ms",
         "to painted max ms", "clusters", "HDBSCAN s", "naming s"], rows,
    )  # fmt: skip
    note = (
        "\n\n12 lassos per size (40-vertex, non-convex, of random size and place); hit test = the selection's "
        "point-in-polygon pass over every drawn point; to painted = to the second animation frame after it (the "
        "selected points ringed). Clusters on the synthetic layout (60 planted groups)."
    )
    write_report("map_select", "Map selections and cluster names", table + note, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
