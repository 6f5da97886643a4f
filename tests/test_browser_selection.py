"""Map selections, cluster names and the Duplicates panel in a real browser (Debian chromium via Playwright).

The catalog map is the real ``CatalogMap`` with a fitter whose layout is planted (the first two vector
components: six groups of products with their own brand, tag and name word), so the clusters and their
names are known. Also the script behind the README screenshots of a map selection and of the Duplicates
panel (tiny random model):
    python -m tests.test_browser_selection --docs
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from similarity.ingest import IngestItem, Ingestor
from similarity.map import CatalogMap
from similarity.search import SearchService
from similarity.store import open_store

from .dup_photos import encoded, product_photo, reupload
from .test_app_handlers import tiny_settings
from .test_browser import ARTIFACTS, ROOT, WAIT_MS, launch, open_browser
from .test_browser import browser as browser  # the fixtures, shared: one chromium per module
from .test_browser import page as page
from .test_clusters import PlantedFitter, planted, products_for

pytestmark = pytest.mark.browser
VIEW = "#map-view .map-view"
TOKEN = "browser-token"
PIXELS = f"(n) => Array.from({{length: n}}, (_, i) => document.querySelector('{VIEW}').mapView.pixelOf(i))"
SELECTED = f"() => document.querySelector('{VIEW}').mapView.selectedIndices()"
N = 240


def planted_store(embedder, n: int = N):
    """Products in six planted groups (the layout is their first two vector components), with thumbnails."""
    xy, truth = planted(n, seed=4)
    products = products_for(truth)
    thumbs = [encoded(product_photo(g, 0, (96, 80))) for g in range(6)]
    for p, (x, y), g in zip(products, xy, truth, strict=True):
        vector = np.concatenate([[x / 20, y / 20], np.full(embedder.dim - 2, 0.05)]).astype(np.float32)
        p.embedding, p.embedding_model, p.thumbnail = vector / np.linalg.norm(vector), embedder.model_id, thumbs[g]
        p.category = ["bags", "shoes", "watches", "electronics", "snacks", "other"][g]
    store = open_store("memory://")
    store.upsert(products)
    return store, truth


def served_app(store, embedder, **settings):
    catalog_map = CatalogMap(store, tiny_settings(), fitter=PlantedFitter(), background=False)
    catalog_map.start()
    service = SearchService(store, embedder, None, tiny_settings(**settings), catalog_map=catalog_map)
    service.ranker.warm()  # no "loading" line above the map that goes away in the middle of a lasso
    demo, url = launch(service)
    return demo, url, catalog_map


@pytest.fixture(scope="module")
def served(tiny_embedder) -> Iterator[tuple[str, CatalogMap]]:
    store, _ = planted_store(tiny_embedder)
    demo, url, catalog_map = served_app(store, tiny_embedder, admin_token=TOKEN)
    try:
        yield url, catalog_map
    finally:
        demo.close()


def open_map(page, url: str, count: int = N) -> None:
    page.set_viewport_size({"width": 1280, "height": 1300})  # the whole map on screen: the mouse reaches it
    page.goto(url)
    page.get_by_role("tab", name="Map").click()
    page.wait_for_selector(f'{VIEW}[data-ready="1"][data-drawn="{count}"]', timeout=WAIT_MS)
    chart, where = page.locator(f"{VIEW} .map-chart"), None
    while where != (where := chart.bounding_box()):  # the page has settled (the lines above the map filled in)
        page.wait_for_timeout(400)


def inside(poly, x, y) -> bool:
    hit = False
    for (xa, ya), (xb, yb) in zip(poly, poly[-1:] + poly[:-1], strict=True):
        if (ya > y) != (yb > y) and x < (xb - xa) * (y - ya) / (yb - ya) + xa:
            hit = not hit
    return hit


def edge_distance(poly, x, y) -> float:
    """How far (x, y) is from the polygon's outline."""
    best = float("inf")
    for (xa, ya), (xb, yb) in zip(poly, poly[1:] + poly[:1], strict=True):
        dx, dy = xb - xa, yb - ya
        t = max(0.0, min(1.0, ((x - xa) * dx + (y - ya) * dy) / (dx * dx + dy * dy or 1)))
        best = min(best, float(np.hypot(x - xa - t * dx, y - ya - t * dy)))
    return best


def clear_of_points(shape, pixels):
    """``shape(dx, dy)`` moved until no point lies within 2 px of its outline (the browser reports whole pixels)."""
    for dx, dy in [(0, 0), *((dx, dy) for dx in range(-30, 31, 3) for dy in range(-30, 31, 3))]:
        poly = [(round(x), round(y)) for x, y in shape(dx, dy)]
        if all(edge_distance(poly, x, y) > 2 for x, y in pixels):
            return poly
    raise AssertionError("no outline clear of the points")


def under(box, point) -> bool:
    return (
        box["x"] - 6 <= point[0] <= box["x"] + box["width"] + 6
        and box["y"] - 6 <= point[1] <= box["y"] + box["height"] + 6
    )


def drag(page, points) -> None:
    page.mouse.move(*points[0])
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*p, steps=3)
    page.mouse.up()


def test_a_lasso_selects_exactly_the_points_inside_it(page, served):
    url, _ = served
    open_map(page, url)
    page.locator(f"{VIEW} .map-modes button[data-mode=lasso]").click()
    box = page.locator(f"{VIEW} .map-chart").bounding_box()
    pixels = page.evaluate(PIXELS, N)
    cx, cy = pixels[0]  # around a group, cutting through it
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    poly = clear_of_points(  # not convex
        lambda dx, dy: [
            (cx + dx + 90 * np.cos(a) * (1 + 0.3 * np.sin(3 * a)), cy + dy + 60 * np.sin(a)) for a in angles
        ],
        pixels,
    )
    drag(page, poly)
    expected = [i for i, (x, y) in enumerate(pixels) if inside(poly, x, y)]
    page.wait_for_selector(f'{VIEW}[data-selected="{len(expected)}"]')
    assert 0 < len(expected) < N
    assert page.evaluate(SELECTED) == expected
    summary = page.locator("#map-selection-summary")
    summary.get_by_text(f"{len(expected)} selected").wait_for(timeout=WAIT_MS)
    assert "Categories:" in summary.inner_text() and "Brands:" in summary.inner_text()

    pixels = page.evaluate(PIXELS, N)  # again: the toolbar's count may have moved the map
    labels = [
        page.locator(f"{VIEW} .map-label").nth(k).bounding_box()
        for k in range(page.locator(f"{VIEW} .map-label").count())
    ]
    outside = next(
        i
        for i in range(N)
        if i not in expected
        and min(np.hypot(pixels[i][0] - pixels[j][0], pixels[i][1] - pixels[j][1]) for j in range(N) if j != i) > 12
        and not any(under(b, pixels[i]) for b in labels)  # a click on a name selects its cluster instead
    )
    page.mouse.click(*pixels[outside])  # a click adds a point
    page.wait_for_selector(f'{VIEW}[data-selected="{len(expected) + 1}"]')
    assert outside in page.evaluate(SELECTED)

    page.locator(f"{VIEW} .map-modes button[data-mode=box]").click()
    box = page.locator(f"{VIEW} .map-chart").bounding_box()
    pixels = page.evaluate(PIXELS, N)
    x0, y0 = box["x"] + 20, box["y"] + 60
    x1, y1 = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.6
    square = clear_of_points(
        lambda dx, dy: [(x0 + dx, y0 + dy), (x1 - dy, y0 + dy), (x1 - dy, y1 + dx), (x0 + dx, y1 + dx)], pixels
    )
    drag(page, [square[0], square[2]])
    in_box = [i for i, (x, y) in enumerate(pixels) if inside(square, x, y)]
    page.wait_for_selector(f'{VIEW}[data-selected="{len(in_box)}"]')
    assert page.evaluate(SELECTED) == in_box


def test_cluster_names_are_drawn_listed_and_select_their_cluster(page, served):
    url, catalog_map = served
    open_map(page, url)
    clusters = catalog_map.clusters()
    assert len(clusters) == 6
    page.wait_for_function(f"Number(document.querySelector('{VIEW}').dataset.labels) >= 3")
    labels = page.locator(f"{VIEW} .map-label").all_inner_texts()
    assert set(labels) <= {c["name"] for c in clusters}
    boxes = [page.locator(f"{VIEW} .map-label").nth(k).bounding_box() for k in range(len(labels))]
    for a in range(len(boxes)):  # no two names overlap
        for b in range(a):
            p, q = boxes[a], boxes[b]
            assert p["x"] >= q["x"] + q["width"] or q["x"] >= p["x"] + p["width"] or p["y"] >= q["y"] + q[
                "height"] or q["y"] >= p["y"] + p["height"]  # fmt: skip
    listed = page.locator(f"{VIEW} .map-cluster-list button").all_inner_texts()
    assert [re.sub(r" \([\d,]+\)$", "", t) for t in listed] == [c["name"] for c in clusters]

    target = page.locator(f"{VIEW} .map-label").first
    name = target.inner_text()
    cluster = next(c for c in clusters if c["name"] == name)
    spot = target.bounding_box()
    page.mouse.click(spot["x"] + spot["width"] / 2, spot["y"] + spot["height"] / 2)  # a name selects its cluster
    page.wait_for_selector(f'{VIEW}[data-selected="{cluster["size"]}"]')
    members = [i for i in range(N) if page.evaluate(f"document.querySelector('{VIEW}').mapView.clusterOf({i})")
               == cluster["id"]]  # fmt: skip
    assert page.evaluate(SELECTED) == members
    page.locator("#map-selection-summary").get_by_text(f"{cluster['size']} selected").wait_for(timeout=WAIT_MS)

    page.locator(f"{VIEW} .map-cluster-list button").nth(1).click()  # and in the list beside the map
    page.wait_for_selector(f'{VIEW}[data-selected="{clusters[1]["size"]}"]')

    zoomed = page.evaluate(
        f"() => {{ const c = echarts.getInstanceByDom(document.querySelector('{VIEW} .map-chart'));"
        "c.dispatchAction({type: 'dataZoom', dataZoomIndex: 0, start: 40, end: 60});"
        "c.dispatchAction({type: 'dataZoom', dataZoomIndex: 1, start: 40, end: 60}); return true; }"
    )
    assert zoomed
    page.wait_for_function(f"document.querySelector('{VIEW}').dataset.labels !== undefined")


def test_more_like_these_and_export_from_a_selection(page, served):
    url, _ = served
    open_map(page, url)
    page.locator(f"{VIEW} .map-cluster-list button").first.click()
    page.locator("#map-selection-summary").get_by_text(re.compile(r"\d+ selected")).wait_for(timeout=WAIT_MS)
    page.locator("#map-more-these").click()
    page.locator("#map-selection-status").get_by_text(re.compile(r"products like the \d+ selected")).wait_for(
        timeout=WAIT_MS
    )
    page.wait_for_selector(f'{VIEW}[data-matches="12"]')
    page.locator("#map-export").click()
    with page.expect_download() as download:
        page.locator("#map-csv").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.splitlines()[0] == "id,name,category,subcategory,brand,colors,tags,price,x,y"


@pytest.fixture(scope="module")
def duplicates_app(tiny_embedder, tmp_path_factory) -> Iterator[str]:
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('dups') / 'catalog.db'}")
    items = []
    for f in range(4):
        first = product_photo(f, 0)
        items.append(_item(f"p{f}", first))
        items += [_item(f"p{f}-{k}", reupload(first, k, f)) for k in ("resized", "watermark", "crop95")[: 3 - f % 2]]
        items.append(_item(f"p{f}-other", product_photo(f, 1)))
    Ingestor(store, tiny_embedder).run(items)
    demo, url, _ = served_app(store, tiny_embedder, admin_token=TOKEN)
    try:
        yield url
    finally:
        demo.close()


def _item(key, image):
    data = encoded(image)
    return IngestItem(key, lambda: data, {"name": key.replace("-", " ").title(), "category": "bags"})


def scan_duplicates(page, url: str) -> None:
    page.goto(url)
    page.get_by_role("tab", name="Catalog").click()
    page.locator("#duplicates").get_by_text("Duplicates").first.click()
    page.locator("#duplicates input[type=number]").fill("0.5")
    page.locator("#duplicates input[type=number]").press("Enter")
    page.locator("#duplicates-scan").click()
    page.locator("#duplicates-status").get_by_text(re.compile(r"near-identical groups")).wait_for(timeout=WAIT_MS)


def test_duplicates_panel_keeps_one_and_removes_the_others(page, duplicates_app):
    scan_duplicates(page, duplicates_app)
    tiles = page.locator("#duplicates-groups .thumbnail-item")
    assert tiles.count() >= 4
    first_caption = page.locator("#duplicates-groups .caption-label").first.inner_text()
    assert first_caption.startswith("#1 near-identical · 4 products · cosine ")
    tiles.first.click()
    page.wait_for_selector("#duplicates-chosen .thumbnail-item")
    assert page.locator("#duplicates-chosen .thumbnail-item").count() == 4
    page.locator("#duplicates-token input").fill(TOKEN)
    page.get_by_role("button", name="Keep the chosen one, remove the others…").click()
    page.locator("#duplicates-note").get_by_text(re.compile(r"remove the other 3 products")).wait_for(timeout=WAIT_MS)
    page.locator("#duplicates-yes").click()
    page.locator("#duplicates-status").get_by_text(re.compile(r"^Removed 3 products")).wait_for(timeout=WAIT_MS)


def make_docs_screenshots() -> None:
    """docs/screenshot-map-selection.png and docs/screenshot-duplicates.png."""
    from playwright.sync_api import sync_playwright

    from similarity.embedder import OpenClipEmbedder

    from .helpers import TINY_MODEL

    embedder = OpenClipEmbedder(TINY_MODEL, "none", precision="fp32")
    embedder.load()
    store, _ = planted_store(embedder, 600)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        context = open_browser(playwright, str(Path(tmp) / "profile"))
        page = context.new_page()
        page.set_viewport_size({"width": 1280, "height": 1100})
        demo, url, _ = served_app(store, embedder)
        open_map(page, url, 600)
        page.locator(f"{VIEW} .map-modes button[data-mode=lasso]").click()
        page.locator(f"{VIEW} .map-cluster-list button").nth(1).click()  # a cluster picked in the list
        page.locator("#map-selection-summary").get_by_text(re.compile(r"\d+ selected")).wait_for(timeout=WAIT_MS)
        page.wait_for_timeout(1500)  # the gallery's thumbnails
        page.screenshot(path=str(ROOT / "docs" / "screenshot-map-selection.png"), full_page=True)
        demo.close()
        dup_store = open_store("memory://")
        items = []
        for f in range(3):
            first = product_photo(f, 0)
            items.append(_item(f"photo {f}", first))
            items += [_item(f"photo {f} {k}", reupload(first, k, f)) for k in ("resized", "watermark", "crop95")[f:]]
            items.append(_item(f"photo {f} other shot", product_photo(f, 1)))
        Ingestor(dup_store, embedder).run(items)
        demo, url, _ = served_app(dup_store, embedder, admin_token=TOKEN)
        scan_duplicates(page, url)
        page.locator("#duplicates-groups .thumbnail-item").first.click()
        page.wait_for_selector("#duplicates-chosen .thumbnail-item")
        page.locator("#duplicates").scroll_into_view_if_needed()
        page.locator("#duplicates").screenshot(path=str(ROOT / "docs" / "screenshot-duplicates.png"))
        demo.close()
        context.close()
    ARTIFACTS.mkdir(exist_ok=True)


if __name__ == "__main__" and "--docs" in sys.argv:
    make_docs_screenshots()
