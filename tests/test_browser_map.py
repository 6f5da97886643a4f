"""The Map tab and the "Why this match?" panel in a real browser (Debian chromium via Playwright).

The catalog map is the real ``CatalogMap`` with the PCA fitter (fast, deterministic). Also the script
behind the README screenshots of the map and of the panel (demo catalog, tiny random model):
    python -m tests.test_browser_map --docs
"""

from __future__ import annotations

import math
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from similarity.map import CatalogMap, PcaFitter
from similarity.search import SearchService
from similarity.store import open_store

from .test_app_handlers import seed_catalog, tiny_settings
from .test_browser import ARTIFACTS, ROOT, WAIT_MS, demo_catalog, launch, open_browser, search_photo
from .test_browser import browser as browser  # the fixtures, shared: one chromium per module
from .test_browser import page as page
from .test_browser import photo as photo

pytestmark = pytest.mark.browser
VIEW = "#map-view .map-view"
# the points painted by the map's own layer (passing, filtered out) and the overlay series' sizes in ECharts
CHART_STATE = """() => {
  const root = document.querySelector('#map-view .map-view');
  const option = echarts.getInstanceByDom(root.querySelector('.map-chart')).getOption();
  const size = (id) => option.series.filter((s) => s.id === id).reduce((n, s) => n + s.data.length, 0);
  const painted = Number(root.dataset.painted), dimmed = Number(root.dataset.paintedDimmed);
  return {base: painted - dimmed, dimmed, matches: size('matches'), query: size('query')};
}"""
# the opacity of the point layer's canvas at page pixels [[x, y], ...]
LAYER_ALPHA = """(points) => {
  const layer = document.querySelector('#map-view .map-points'), r = layer.getBoundingClientRect();
  const scale = layer.width / r.width, ctx = layer.getContext('2d');
  const at = (v, lo) => Math.floor((v - lo) * scale);
  return points.map(([x, y]) => ctx.getImageData(at(x, r.left), at(y, r.top), 1, 1).data[3]);
}"""
PIXELS = f"(n) => Array.from({{length: n}}, (_, i) => document.querySelector('{VIEW}').mapView.pixelOf(i))"
ACTION = f"(action) => echarts.getInstanceByDom(document.querySelector('{VIEW} .map-chart')).dispatchAction(action)"


def mapped_service(store, embedder) -> tuple[SearchService, CatalogMap]:
    catalog_map = CatalogMap(store, tiny_settings(), fitter=PcaFitter(), background=False)
    catalog_map.start()
    return SearchService(store, embedder, None, tiny_settings(), catalog_map=catalog_map), catalog_map


@pytest.fixture(scope="module")
def served(tiny_embedder) -> Iterator[tuple[str, CatalogMap]]:
    store = open_store("memory://")
    seed_catalog(store, tiny_embedder)
    service, catalog_map = mapped_service(store, tiny_embedder)
    demo, url = launch(service)
    try:
        yield url, catalog_map
    finally:
        demo.close()


def open_map(page, count: int) -> None:
    page.get_by_role("tab", name="Map").click()
    page.wait_for_selector(f'{VIEW}[data-ready="1"][data-drawn="{count}"]', timeout=WAIT_MS)


def click_point(page, index: int) -> None:
    x, y = page.evaluate(f"document.querySelector('{VIEW}').mapView.pixelOf({index})")
    page.mouse.move(x, y)
    page.mouse.click(x, y)


def test_map_draws_every_product_and_a_click_shows_its_card(page, served):
    url, catalog_map = served
    page.goto(url)
    open_map(page, 18)
    assert page.evaluate(CHART_STATE) == {"base": 18, "dimmed": 0, "matches": 0, "query": 0}
    assert page.locator("#map-view canvas").count() >= 1  # drawn on a canvas, not one SVG node per point
    assert page.locator("#map-view svg circle").count() == 0
    assert "PCA" in page.locator("#map-note").inner_text()

    ids = [p["id"] for p in catalog_map.points()["points"]]  # the order the map draws them in
    click_point(page, 5)
    page.wait_for_selector(f'#map-card .map-card[data-id="{ids[5]}"]')
    name = page.locator("#map-card h3").inner_text()
    tooltip = page.locator("#map-view .map-chart > div").filter(has_text=name)
    assert tooltip.count() >= 1  # the hover card names the same product (with its thumbnail)

    page.locator("#map-more").click()
    page.wait_for_selector(f'{VIEW}[data-matches="12"]')
    assert page.locator("#map-results .thumbnail-item").count() == 12
    assert page.evaluate(CHART_STATE)["matches"] == 12


def test_search_shows_the_query_marker_matches_and_dims_filtered_points(page, served, photo):
    url, _ = served
    search_photo(page, url, photo)
    page.locator("#search-categories").get_by_label(re.compile(r"^\s*bags \(\d+\)\s*$")).check()
    page.locator("#results-source").get_by_text(re.compile(r"^6 results for your photo")).wait_for()
    open_map(page, 18)
    page.wait_for_selector(f'{VIEW}[data-matches="6"][data-dimmed="12"]')
    state = page.evaluate(CHART_STATE)
    assert state == {"base": 6, "dimmed": 12, "matches": 6, "query": 1}  # 6 bags pass; the rest are dimmed
    assert page.locator(VIEW).get_attribute("data-query")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-map-search.png"), full_page=True)

    page.get_by_role("tab", name="Search").click()  # untick: nothing is dimmed any more
    page.locator("#search-categories").get_by_label(re.compile(r"^\s*bags \(\d+\)\s*$")).uncheck()
    page.locator("#results-source").get_by_text(re.compile(r"^12 results for your photo")).wait_for()
    page.get_by_role("tab", name="Map").click()
    page.wait_for_selector(f'{VIEW}[data-matches="12"][data-dimmed="0"]')


def test_the_point_layer_paints_each_point_follows_zoom_and_legend_and_hovers(page, served):
    url, catalog_map = served
    page.goto(url)
    open_map(page, 18)
    pixels = page.evaluate(PIXELS, 18)
    assert all(alpha > 0 for alpha in page.evaluate(LAYER_ALPHA, pixels))  # a dot under every point
    box = page.locator(f"{VIEW} .map-chart").bounding_box()
    corner = [box["x"] + 2, box["y"] + box["height"] - 2]
    assert page.evaluate(LAYER_ALPHA, [corner]) == [0]  # and nothing outside the plot

    def clearance(i: int) -> float:
        return min(math.dist(pixels[i], pixels[j]) for j in range(18) if j != i)

    lonely = max(range(18), key=clearance)  # a point whose dot no other dot covers
    assert clearance(lonely) > 6
    category = catalog_map.points()["points"][lonely]["category"]
    hidden = sum(p["category"] == category for p in catalog_map.points()["points"])
    page.evaluate(ACTION, {"type": "legendToggleSelect", "name": category})  # what a click on its legend entry does
    page.wait_for_selector(f'{VIEW}[data-painted="{18 - hidden}"]')
    spot = page.evaluate(PIXELS, 18)[lonely]  # again: the page may have moved
    assert page.evaluate(LAYER_ALPHA, [spot]) == [0]
    page.mouse.move(*spot)  # a hidden point has no hover card either
    assert not page.locator(f"{VIEW} .map-tip-box").is_visible()
    page.evaluate(ACTION, {"type": "legendToggleSelect", "name": category})
    page.wait_for_selector(f'{VIEW}[data-painted="18"]')

    page.mouse.move(0, 0)
    spot = page.evaluate(PIXELS, 18)[lonely]
    page.mouse.move(*spot)  # hover: at once the category, then the server's card of that product
    tip = page.locator(f"{VIEW} .map-tip-box")
    tip.wait_for(state="visible")
    page.wait_for_function(f"document.querySelector('{VIEW} .map-tip-box img, {VIEW} .map-tip-box small') !== null")
    page.mouse.click(*spot)
    page.wait_for_selector("#map-card .map-card")
    assert page.locator("#map-card h3").inner_text() in tip.inner_text()

    page.evaluate(ACTION, {"type": "dataZoom", "dataZoomIndex": 0, "start": 25, "end": 75})  # zoom in on x
    page.wait_for_function(f"document.querySelector('{VIEW}').dataset.painted !== '18'")
    zoomed = page.evaluate(PIXELS, 18)
    shown = [p for p in zoomed if box["x"] + 8 <= p[0] < box["x"] + box["width"] - 8]
    assert shown and int(page.locator(VIEW).get_attribute("data-painted")) == len(shown)
    assert all(alpha > 0 for alpha in page.evaluate(LAYER_ALPHA, shown))  # the dots moved with the view


def make_docs_screenshots() -> None:
    """The README screenshots: the demo catalog on the map with a searched shoe, and the panel."""
    from playwright.sync_api import sync_playwright

    store, embedder, shoe = demo_catalog()
    with tempfile.TemporaryDirectory() as tmp:
        query = Path(tmp) / "query.png"
        query.write_bytes(shoe)
        service, _ = mapped_service(store, embedder)
        demo, url = launch(service)
        with sync_playwright() as playwright:
            context = open_browser(playwright, str(Path(tmp) / "profile"))
            page = context.new_page()
            page.set_viewport_size({"width": 1280, "height": 900})
            search_photo(page, url, str(query))
            open_map(page, store.count())
            page.wait_for_selector(f'{VIEW}[data-matches="12"]')
            x, y = page.evaluate(f"document.querySelector('{VIEW}').mapView.pixelOfMatch(1)")
            page.mouse.click(x, y)
            page.wait_for_selector("#map-card .map-card")
            page.mouse.move(x + 40, y + 30)
            page.wait_for_timeout(800)
            page.locator("#map-view").scroll_into_view_if_needed()
            page.screenshot(path=str(ROOT / "docs" / "screenshot-map.png"))
            page.get_by_role("tab", name="Search").click()
            page.locator("#results-gallery .thumbnail-item").nth(1).click()  # explain result #2
            page.get_by_text("Why this match?").click()
            page.locator("#why-btn").click()
            page.wait_for_selector("#why-query img", timeout=WAIT_MS)
            page.wait_for_timeout(800)
            page.locator("#why-match").scroll_into_view_if_needed()
            page.locator("#why-match").screenshot(path=str(ROOT / "docs" / "screenshot-why.png"))
            context.close()
        demo.close()


if __name__ == "__main__" and "--docs" in sys.argv:
    make_docs_screenshots()
