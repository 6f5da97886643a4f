"""Steering in a real browser (Playwright + Debian chromium): 👎 on a result picture shows a chip at once, Refine
leaves the product off the first page; the thumbs sit on each picture, come right after it in tab order, name
their product to screen readers and fit a phone's width.

Also the script behind docs/screenshot-steering.png (demo catalog, tiny random model):
    python -m tests.test_browser_steering --docs
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

import pytest

from similarity.search import SearchService

from .test_app_handlers import tiny_settings
from .test_browser import (  # noqa: F401 - fixtures
    DESKTOP,
    MOBILE,
    ROOT,
    WAIT_MS,
    app_url,
    browser,
    captions,
    demo_catalog,
    launch,
    open_browser,
    page,
    photo,
    search_photo,
)

pytestmark = pytest.mark.browser
CHIPS = "#steer-chip-box"
ITEMS = "#results-gallery .gallery-item"


def thumb(page, n: int, vote: str):  # noqa: F811
    """The 👍 or 👎 pinned on the n-th result picture."""
    return page.locator(ITEMS).nth(n).locator(f".vote-pin button[data-vote={vote}]")


def titles(page) -> list[str]:  # noqa: F811
    return [c.rsplit(" · ", 1)[0] for c in captions(page)]


def refine(page) -> None:  # noqa: F811
    page.locator("#refine-btn").click()
    page.locator("#timings").get_by_text(re.compile(r"refined")).wait_for(timeout=WAIT_MS)


def test_dislike_then_refine_drops_the_product_and_shows_the_chip(page, app_url, photo):  # noqa: F811
    search_photo(page, app_url, photo)
    before = titles(page)
    first = before[0]
    dislike = thumb(page, 0, "dislike")
    assert dislike.get_attribute("aria-label") == f"Less like {first}"
    picture, pinned = page.locator(ITEMS).first.bounding_box(), dislike.bounding_box()
    assert picture["x"] <= pinned["x"] and pinned["x"] + pinned["width"] <= picture["x"] + picture["width"]
    assert picture["y"] <= pinned["y"] and pinned["y"] + pinned["height"] <= picture["y"] + picture["height"]
    dislike.click()
    page.locator(CHIPS).get_by_text(f"👎 {first}").wait_for(timeout=WAIT_MS)  # at once, before any search
    refine(page)
    after = titles(page)
    assert first not in after and len(after) == len(before)
    page.locator(CHIPS).get_by_text(f"👎 {first}").wait_for()  # the chip stays after the refine
    # a filter change re-ranks with the chips kept
    page.locator("#search-categories label").first.click()
    page.wait_for_timeout(1500)
    assert first not in titles(page)
    assert page.locator(CHIPS).get_by_text(f"👎 {first}").count() == 1


def test_thumbs_from_the_keyboard_and_on_a_phone(page, app_url, photo):  # noqa: F811
    page.set_viewport_size(MOBILE)
    search_photo(page, app_url, photo)
    second = titles(page)[1]
    thumb(page, 1, "like").wait_for(timeout=WAIT_MS)
    page.locator(f"{ITEMS} .thumbnail-item").nth(1).focus()
    page.keyboard.press("Tab")  # the picture's own 👍 comes next
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == f"More like {second}"
    page.keyboard.press("Enter")
    page.locator(CHIPS).get_by_text(f"👍 {second}").wait_for(timeout=WAIT_MS)
    pressed = page.locator("#results-gallery .vote-pin button[aria-pressed=true]")
    pressed.first.wait_for(timeout=WAIT_MS)  # the pins follow the chips
    assert pressed.count() == 1 and pressed.get_attribute("aria-label") == f"More like {second}"
    assert page.evaluate("document.activeElement.dataset.vote") == "like"  # the keyboard keeps its place
    for n in range(2):  # big enough to tap, and on the picture
        box, picture = thumb(page, n, "dislike").bounding_box(), page.locator(ITEMS).nth(n).bounding_box()
        assert box["width"] >= 32 and box["height"] >= 28
        assert picture["x"] <= box["x"] and box["x"] + box["width"] <= picture["x"] + picture["width"]
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")  # nothing sticks out
    page.set_viewport_size(DESKTOP)


def make_docs_screenshot() -> None:
    """docs/screenshot-steering.png: a demo shoe, one 👎 and one 👍, "Less of…" red, refined and price-sorted."""
    from playwright.sync_api import sync_playwright

    store, embedder, shoe = demo_catalog()
    with tempfile.TemporaryDirectory() as tmp:
        query = Path(tmp) / "query.png"
        query.write_bytes(shoe)
        demo, url = launch(SearchService(store, embedder, None, tiny_settings()))
        with sync_playwright() as playwright:
            context = open_browser(playwright, str(Path(tmp) / "profile"))
            page = context.new_page()
            page.set_viewport_size({"width": 1280, "height": 1400})  # the chips and the first rows of pictures
            search_photo(page, url, str(query))
            thumb(page, 0, "dislike").click()
            page.locator(CHIPS).get_by_text("👎").wait_for()
            thumb(page, 2, "like").click()
            page.locator(CHIPS).get_by_text("👍").wait_for()
            page.locator("#steer-less textarea, #steer-less input").first.fill("red")
            refine(page)
            page.wait_for_timeout(1500)  # thumbnails load
            page.screenshot(path=str(ROOT / "docs" / "screenshot-steering.png"))
            context.close()
        demo.close()


if __name__ == "__main__" and "--docs" in sys.argv:
    make_docs_screenshot()
