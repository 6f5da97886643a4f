"""Saved products in a real browser (Debian chromium via Playwright): signed in on Gradio's login page with
a users file, and as a guest whose list lives in the browser. Also makes docs/screenshot-saved.png:

    python -m tests.test_browser_saved --docs
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import app
from similarity.accounts import Accounts, Users, launch_auth
from similarity.search import SearchService
from similarity.ui import launch_options

from .test_app_handlers import seeded_service, tiny_settings
from .test_browser import ARTIFACTS, DESKTOP, chromium_context, demo_catalog, open_browser, search_photo
from .test_browser import photo as photo

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "browser-Pa55word"


def launch(service: SearchService, users: Users | None = None):
    accounts = Accounts(users=users)
    demo = app.build_demo(service, accounts)
    options = {**launch_options(), **(launch_auth(users) if users else {})}
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **options)
    return demo, url


@pytest.fixture(scope="module")
def service(tiny_embedder) -> SearchService:
    return seeded_service(tiny_embedder)


@pytest.fixture(scope="module")
def context() -> Iterator[object]:
    with chromium_context() as context:
        yield context


def save_first_result(page) -> str:
    """Open the first result's detail view and press Save; returns the product's name."""
    page.locator("#results-gallery .thumbnail-item").first.click()
    title = page.locator("#detail-info h3").inner_text()
    page.locator("#detail-save").get_by_text("Save", exact=True).click()
    page.locator("#detail-save").get_by_text("Saved ✓").wait_for()
    return title


def open_saved_tab(page) -> list[str]:
    page.get_by_role("tab", name="Saved").click()
    page.locator("#saved-gallery .caption-label").first.wait_for()
    return page.locator("#saved-gallery .caption-label").all_inner_texts()


def test_signed_in_save_shows_on_the_saved_tab_and_survives_a_reload(context, service, photo):
    demo, url = launch(service, Users().with_user("ann", PASSWORD))
    page = context.new_page()
    try:
        page.goto(url)
        page.get_by_label("username").fill("ann")
        page.get_by_label("password").fill(PASSWORD)
        page.get_by_role("button", name="Login").click()
        # the login redirects to the app: let that navigation finish, or the next goto aborts it
        page.locator("#query-image input[type=file]").wait_for(state="attached")
        search_photo(page, url, photo)
        title = save_first_result(page)
        assert title in open_saved_tab(page)
        page.get_by_text("Signed in as ann").wait_for()
        page.reload()
        assert title in open_saved_tab(page)
        page.screenshot(path=str(ARTIFACTS / "browser-saved-signed-in.png"), full_page=True)
        assert [r.product_id for r in service.store.saved_products("local:ann")]  # kept with the account
    finally:
        page.close()
        demo.close()


def test_a_guest_save_stays_in_the_browser_after_a_reload(context, service, photo):
    demo, url = launch(service)
    page = context.new_page()
    try:
        search_photo(page, url, photo)
        title = save_first_result(page)
        shown = open_saved_tab(page)
        assert shown == [title]
        page.get_by_text("Saved in this browser only").wait_for()
        page.reload()
        assert open_saved_tab(page) == [title]  # read back from the browser's storage
        page.locator("#saved-gallery .thumbnail-item").first.click()
        page.locator("#saved-remove").click()
        page.get_by_text("Nothing saved yet").wait_for()
    finally:
        page.close()
        demo.close()


def make_docs_screenshot() -> None:
    """The Saved tab with a few saved products (one since removed from the catalog) and recommendations."""
    from playwright.sync_api import sync_playwright

    store, embedder, _ = demo_catalog()
    ids = [p.id for p in next(store.iter_products(60, vectors=False)) if p.category in ("shoes", "bags")][:5]
    for n, pid in enumerate(ids):
        store.save_product("local:ann", pid, "for the trip" if n == 1 else "")
    store.delete([ids[-1]])
    demo, url = launch(SearchService(store, embedder, None, tiny_settings()), Users().with_user("ann", PASSWORD))
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        context = open_browser(playwright, str(Path(tmp) / "profile"))
        page = context.new_page()
        page.set_viewport_size(DESKTOP)
        page.goto(url)
        page.get_by_label("username").fill("ann")
        page.get_by_label("password").fill(PASSWORD)
        page.get_by_role("button", name="Login").click()
        open_saved_tab(page)
        page.locator("#saved-recommend").click()
        page.get_by_text(re.compile(r"\d+ results like your \d+ saved products")).wait_for()
        page.locator("#saved-gallery .thumbnail-item").nth(1).click()
        page.wait_for_timeout(1000)
        page.screenshot(path=str(ROOT / "docs" / "screenshot-saved.png"), full_page=True)
        context.close()
    demo.close()


if __name__ == "__main__" and "--docs" in sys.argv:
    make_docs_screenshot()
