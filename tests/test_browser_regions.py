"""The region view in a real browser: numbered boxes drawn over the photo, a click on a region changes the
gallery, "Whole photo" (from the keyboard) restores it, a dragged box searches that box; phone width.

Also the script behind the README screenshot: ``python -m tests.test_browser_regions --docs``.
"""

from __future__ import annotations

import random
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from similarity.search import SearchService

from .test_app_handlers import seeded_service, tiny_settings
from .test_browser import (
    ARTIFACTS,
    DESKTOP,
    MOBILE,
    ROOT,
    WAIT_MS,
    browser,  # noqa: F401 (the shared chromium fixture)
    captions,
    launch,
    open_browser,
    search_photo,
)
from .test_region_api import scene_of_catalog_pictures

pytestmark = pytest.mark.browser
BOXES = "#region-view .region-box"
DISLIKES = "#results-gallery .vote-pin button[data-vote=dislike]"  # 👎 on each result picture


@pytest.fixture(scope="module")
def served(tiny_embedder, tmp_path_factory) -> Iterator[tuple[str, str, list]]:
    scene, boxes, _ = scene_of_catalog_pictures()
    photo = tmp_path_factory.mktemp("regions") / "table.png"
    scene.resize((720, 600)).save(photo)  # twice the size: boxes double
    demo, url = launch(seeded_service(tiny_embedder, regions="offline"))
    try:
        yield url, str(photo), [tuple(2 * v for v in b) for b in boxes]
    finally:
        demo.close()


IDS = "(els) => els.map((e) => e.dataset.id || e.dataset.match).filter(Boolean)"


def card_matches(page) -> list[str]:
    return page.locator("#region-view .region-card").evaluate_all(IDS)


def changed(page, before: list[str]) -> list[str]:
    page.wait_for_function(
        "(before) => { const now = [...document.querySelectorAll('#results-gallery .caption-label')]"
        ".map((e) => e.innerText); return now.length && now.join('|') !== before.join('|'); }",
        arg=before,
        timeout=WAIT_MS,
    )
    return captions(page)


def test_boxes_are_drawn_and_a_region_a_box_and_the_whole_photo_drive_the_gallery(browser, served):  # noqa: F811
    url, photo, boxes = served
    page = browser.new_page()
    page.set_viewport_size(DESKTOP)
    search_photo(page, url, photo)
    page.locator(BOXES).nth(3).wait_for(timeout=WAIT_MS)
    assert page.locator(BOXES).count() == 4 and page.locator("#region-view .region-card").count() == 4
    assert page.get_by_text("Found in your photo").is_visible()
    whole = captions(page)

    page.locator(BOXES).nth(1).click()
    region = changed(page, whole)
    assert page.locator(f"{BOXES}.selected").get_attribute("data-index") == "1"
    assert "region 2" in page.locator("#timings").inner_text()

    page.locator("#region-view .region-whole").focus()
    page.keyboard.press("Enter")
    assert changed(page, region) == whole
    assert page.locator("#region-view .region-whole.selected").count() == 1

    page.locator("#region-view .region-card").nth(2).focus()  # keyboard: Space on a card
    page.keyboard.press(" ")
    card = changed(page, whole)
    assert page.locator(f"{BOXES}.selected").get_attribute("data-index") == "2"

    photo_box = page.locator("#region-view .region-photo").bounding_box()
    scale = photo_box["width"] / 720
    x0, y0, x1, y1 = boxes[0]
    page.mouse.move(photo_box["x"] + (x0 + 2) * scale, photo_box["y"] + (y0 + 2) * scale)
    page.mouse.down()
    page.mouse.move(photo_box["x"] + (x1 - 2) * scale, photo_box["y"] + (y1 - 2) * scale, steps=8)
    page.mouse.up()
    page.locator(f"{BOXES}.user.selected").wait_for(timeout=WAIT_MS)
    drawn = changed(page, card)
    assert drawn[0].startswith("Stride red shoes 0")  # the drawn box holds that product
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-regions.png"), full_page=True)

    page.set_viewport_size(MOBILE)
    page.wait_for_timeout(300)
    view = page.locator("#region-view .region-photo").bounding_box()
    assert view["width"] <= MOBILE["width"] and page.locator(BOXES).first.is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= MOBILE["width"]

    page.set_viewport_size(DESKTOP)
    cards = card_matches(page)
    disliked = [i for i in page.locator(DISLIKES).evaluate_all(IDS) if i in cards]
    assert disliked, "the drawn box's results hold none of the cards' matches"
    for n, product in enumerate(disliked):  # one at a time: each vote reads the chips the last one left
        page.locator(f'{DISLIKES}[data-id="{product}"]').click()
        page.locator(f"{DISLIKES}[aria-pressed=true]").nth(n).wait_for(timeout=WAIT_MS)
    page.locator("#refine-btn").click()
    page.wait_for_function(  # the cards follow the Refine: no card shows a disliked product any more
        f"(gone) => {{ const now = ({IDS})([...document.querySelectorAll('#region-view .region-card')]);"
        " return now.length && !now.some((i) => gone.includes(i)); }",
        arg=disliked,
        timeout=WAIT_MS,
    )
    page.locator("#results-gallery .thumbnail-item").first.click()  # More like this: a product is the query now
    page.locator("#detail-more").click()
    page.locator("#region-view").wait_for(state="hidden", timeout=WAIT_MS)  # the photo's regions no longer apply
    page.close()


def make_docs_screenshot() -> None:
    """docs/screenshot-regions.png: the demo catalog, a table with four demo products as the query."""
    from playwright.sync_api import sync_playwright

    from data_seed.scenes import grid_scene, product_pictures

    from .test_browser import demo_catalog

    store, embedder, _ = demo_catalog()
    pictures = product_pictures()
    chosen = [pictures[i] for i in (3, 11, 20, 40)]  # a bag, a shoe, a watch, a snack
    scene = grid_scene(random.Random(2).sample(chosen, 4), "texture", size=900, seed=2)
    with tempfile.TemporaryDirectory() as tmp:
        query = Path(tmp) / "table.png"
        scene.image.save(query)
        demo, url = launch(SearchService(store, embedder, None, tiny_settings(regions="offline")))
        with sync_playwright() as playwright:
            context = open_browser(playwright, str(Path(tmp) / "profile"))
            page = context.new_page()
            page.set_viewport_size({"width": 1280, "height": 1000})
            search_photo(page, url, str(query))
            page.locator(BOXES).nth(3).wait_for(timeout=WAIT_MS)
            before = captions(page)
            page.locator(BOXES).nth(1).click()
            changed(page, before)
            page.wait_for_timeout(1000)  # thumbnails load
            page.locator("#region-view").scroll_into_view_if_needed()
            page.screenshot(path=str(ROOT / "docs" / "screenshot-regions.png"))
            context.close()
        demo.close()


if __name__ == "__main__" and "--docs" in sys.argv:
    make_docs_screenshot()
