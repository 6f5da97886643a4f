"""The app in a real browser: Playwright driving Debian's chromium against the launched app.

Also the script behind the README screenshots (demo catalog, tiny random model):
    python -m tests.test_browser --docs
"""

from __future__ import annotations

import contextlib
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import app
from similarity.search import SearchService
from similarity.store import open_store
from similarity.ui import launch_options

from .helpers import make_image
from .test_app_handlers import seeded_service, tiny_settings

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
DESKTOP, MOBILE = {"width": 1280, "height": 800}, {"width": 390, "height": 844}
SCORE = re.compile(r" · -?\d\.\d\d$")
WAIT_MS = 30_000


def launch(service: SearchService):
    demo = app.build_demo(service)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **launch_options())
    return demo, url


def open_browser(playwright, user_data_dir: str):
    """Chromium with a fresh profile (DESIGN.md §4 flags)."""
    return playwright.chromium.launch_persistent_context(
        user_data_dir, executable_path=str(CHROMIUM), args=FLAGS, headless=True, viewport=DESKTOP
    )


def captions(page) -> list[str]:
    return page.locator("#results-gallery .caption-label").all_inner_texts()


def search_photo(page, url: str, photo: str) -> None:
    page.goto(url)
    page.locator("#query-image input[type=file]").set_input_files(photo)
    page.wait_for_selector("#results-gallery .caption-label", timeout=WAIT_MS)
    page.get_by_text(re.compile(r"\d+ results? for your photo")).wait_for(timeout=WAIT_MS)


def wait_for_source(page, pattern: str) -> None:
    page.locator("#results-source").get_by_text(re.compile(pattern)).wait_for(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def app_url(tiny_embedder) -> Iterator[str]:
    demo, url = launch(seeded_service(tiny_embedder))
    try:
        yield url
    finally:
        demo.close()


@contextlib.contextmanager
def chromium_context() -> Iterator[object]:
    """A chromium browser context on a throw-away profile; skips the test when Debian chromium is missing."""
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, sync_playwright() as playwright:
        context = open_browser(playwright, profile)
        context.set_default_timeout(WAIT_MS)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium_context() as context:
        yield context


@pytest.fixture
def page(browser):
    page = browser.new_page()
    page.set_viewport_size(DESKTOP)
    yield page
    page.close()


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("browser") / "red-thing.png"
    make_image((200, 30, 30), (200, 160), shape=1).save(path)
    return str(path)


def test_upload_filter_and_more_like_this(page, app_url, photo):
    search_photo(page, app_url, photo)
    shown = captions(page)
    assert len(shown) == 12 and all(SCORE.search(c) for c in shown), shown

    page.locator("#search-categories").get_by_label(re.compile(r"^\s*bags \(\d+\)\s*$")).check()
    wait_for_source(page, r"^6 results for your photo")
    shown = captions(page)
    assert len(shown) == 6 and all(" bags " in c for c in shown), shown  # names carry the category

    picked = shown[1].split(" — ")[0]
    page.locator("#results-gallery .thumbnail-item").nth(1).click()  # opens the result's detail view
    page.locator("#detail-info").get_by_text(picked).wait_for()
    page.locator("#detail-more").click()
    wait_for_source(page, r"like .+ \(from the catalog\)")
    page.locator("#detail-info").wait_for(state="hidden")  # the detail view closed (Gradio nests its group id)
    assert picked in page.locator("#results-source").inner_text()
    shown = captions(page)
    assert len(shown) == 5 and all(" bags " in c for c in shown), shown  # filter kept; the product left out
    assert page.locator("#search-categories input:checked").count() == 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-more-like-this.png"), full_page=True)

    page.get_by_role("button", name="Clear", exact=True).click()
    page.locator("#search-categories").wait_for(state="hidden")
    assert page.locator("#results-gallery .thumbnail-item").count() == 0


def test_layout_on_desktop_and_phone(page, app_url, photo):
    search_photo(page, app_url, photo)
    query, results = page.locator("#query-image").bounding_box(), page.locator("#results-gallery").bounding_box()
    assert results["x"] >= query["x"] + query["width"]  # two columns side by side
    page.screenshot(path=str(ARTIFACTS / "screenshot-desktop.png"))

    page.set_viewport_size(MOBILE)
    page.wait_for_timeout(300)  # let the layout settle after the resize
    query, results = page.locator("#query-image").bounding_box(), page.locator("#results-gallery").bounding_box()
    assert results["y"] >= query["y"] + query["height"]  # stacked
    assert page.evaluate("document.documentElement.scrollWidth") <= MOBILE["width"]  # no sideways scrolling
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "screenshot-mobile.png"))


def test_catalog_tab_browses_and_is_read_only(page, app_url):
    page.goto(app_url)
    page.get_by_role("tab", name="Catalog").click()
    page.get_by_text("Page 1 of 1 · 18 products").wait_for()
    assert page.locator("#catalog-gallery .thumbnail-item").count() == 18
    page.get_by_text("Add products").click()
    page.get_by_text("The catalog is read-only here").wait_for()


def demo_catalog():
    """For the README screenshots: the demo catalog embedded by the tiny model, and a demo shoe's picture."""
    from data_seed.demo import demo_items
    from similarity.embedder import OpenClipEmbedder
    from similarity.ingest import Ingestor

    from .helpers import TINY_MODEL

    embedder = OpenClipEmbedder(TINY_MODEL, "none")
    store = open_store("memory://")
    items = list(demo_items())
    Ingestor(store, embedder).run(items)
    return store, embedder, next(i for i in items if "shoes" in i.key).read()


def make_docs_screenshots() -> None:
    """Screenshots for the README: the demo catalog, a rendered shoe as the query (Search tab), the Catalog tab."""
    from playwright.sync_api import sync_playwright

    store, embedder, shoe = demo_catalog()
    with tempfile.TemporaryDirectory() as tmp:
        query = Path(tmp) / "query.png"
        query.write_bytes(shoe)
        demo, url = launch(SearchService(store, embedder, None, tiny_settings()))
        with sync_playwright() as playwright:
            context = open_browser(playwright, str(Path(tmp) / "profile"))
            page = context.new_page()
            for name, size in (("desktop", DESKTOP), ("mobile", MOBILE)):
                page.set_viewport_size(size)
                search_photo(page, url, str(query))
                page.wait_for_timeout(1000)  # thumbnails load; on a phone the page scrolls to the results
                page.screenshot(path=str(ROOT / "docs" / f"screenshot-{name}.png"))
            page.set_viewport_size(DESKTOP)
            page.goto(url)
            page.get_by_role("tab", name="Catalog").click()
            page.get_by_text(re.compile(r"Page 1 of \d+ · 54 products")).wait_for()
            page.wait_for_timeout(1000)  # thumbnails load
            page.screenshot(path=str(ROOT / "docs" / "screenshot-catalog.png"))
            context.close()
        demo.close()


if __name__ == "__main__" and "--docs" in sys.argv:
    make_docs_screenshots()
