"""The Search tab's region view, its handlers called directly: found regions, picking one, a drawn box,
"Whole photo", filter changes from the kept vectors, and a single-product photo."""

from __future__ import annotations

import gradio as gr
import pytest
from PIL import Image

from similarity.regions.search import RegionSearch
from similarity.ui.explain import ExplainHandlers
from similarity.ui.files import UiFiles
from similarity.ui.handlers import SearchHandlers
from similarity.ui.regions import RegionHandlers
from similarity.ui.steer import SteerHandlers

from .test_app_handlers import seeded_service
from .test_region_api import scene_of_catalog_pictures
from .test_region_search import CountingEmbedder

NO_FILTERS = (12, 0, [], [], [], [])  # top-k, minimum score, the four filter groups (the page's sliders)


@pytest.fixture
def page(tiny_embedder, tmp_path):
    counting = CountingEmbedder(tiny_embedder)
    service = seeded_service(counting, regions="offline")
    search = SearchHandlers(service, UiFiles(tmp_path / "files"))
    scene, boxes, names = scene_of_catalog_pictures()
    photo = tmp_path / "table.png"
    scene.save(photo)
    return search, RegionHandlers(search, RegionSearch(service)), str(photo), boxes, names, counting


def pick(handlers: RegionHandlers, state, session, ranking=NO_FILTERS, **data):
    outputs = handlers.select(gr.EventData(None, data), state, *ranking, session)
    *page, view, state = outputs
    return page, view, state


def gallery_names(page) -> list[str]:
    return [caption.split(" · ")[0].split(" — ")[0] for _, caption in page[0]]


def test_found_regions_are_drawn_and_picking_one_makes_it_the_query(page):
    search, handlers, photo, _, _, counting = page
    whole = search.search(photo, "", "", 0.5, *NO_FILTERS)
    passes = counting.calls
    view, state = handlers.find(photo, "", whole.session, *NO_FILTERS)
    assert counting.calls == passes + 1  # the crops in one pass; the whole photo's vector is reused
    html = view["value"]
    assert view["visible"] and "Found in your photo" in html and html.count('class="region-box') == 4
    assert html.count('<button type="button" class="region-card') == 4 and 'class="region-whole selected"' in html
    assert len(state.prepared.regions) == 4
    region_page, region_html, state = pick(handlers, state, whole.session, index=1)
    session = region_page[8]
    assert state.selected == 1 and session.crop is not None and session.query is not whole.session.query
    assert 'class="region-box selected" data-index="1"' in region_html
    assert "results for region 2 of your photo" in region_page[1]
    assert gallery_names(region_page) != gallery_names(whole)
    back, back_html, state = pick(handlers, state, session, index=-1)
    assert state.selected is None and back[8].crop is None and 'class="region-whole selected"' in back_html
    assert gallery_names(back) == gallery_names(whole)


def test_a_drawn_box_searches_just_that_and_why_this_match_explains_the_crop(page):
    search, handlers, photo, boxes, names, _ = page
    whole = search.search(photo, "", "", 0.5, *NO_FILTERS)
    _, state = handlers.find(photo, "", whole.session, *NO_FILTERS)
    x0, y0, x1, y1 = boxes[3]
    fractions = [x0 / 360, y0 / 300, x1 / 360, y1 / 300]
    drawn, html, state = pick(handlers, state, whole.session, box=fractions)
    assert state.prepared.regions[-1].source == "user" and state.selected == len(state.prepared.regions) - 1
    assert state.prepared.regions[-1].box == boxes[3]
    assert gallery_names(drawn)[0] == names[3] and "region-box user selected" in html
    session = drawn[8]
    assert ExplainHandlers(search.service)._query_image(photo, "", session).size == (96, 80)
    _, _, state = pick(handlers, state, session, box=fractions)  # a second box replaces the first
    assert sum(r.source == "user" for r in state.prepared.regions) == 1
    with pytest.raises(gr.Error, match="could not be read"):
        pick(handlers, state, session, box=["a", 0, 1, 1])


def test_filter_changes_refresh_the_cards_without_embedding(page):
    search, handlers, photo, _, _, counting = page
    whole = search.search(photo, "", "", 0.5, *NO_FILTERS)
    _, state = handlers.find(photo, "", whole.session, *NO_FILTERS)
    calls = counting.calls
    before = handlers.refresh(state, *NO_FILTERS)
    shoes = handlers.refresh(state, 12, 0, ["shoes"], [], [], [])
    assert counting.calls == calls and shoes != before
    names = [part.split("<br>")[0] for part in shoes.split("</b> · ")[1:]]
    assert len(names) == 4 and all(" shoes " in n for n in names), names
    assert handlers.refresh(None, *NO_FILTERS) is not None


def test_a_single_product_photo_changes_nothing_but_a_folded_box_tool(page, tmp_path):
    search, handlers, *_ = page
    single = tmp_path / "one.png"
    Image.new("RGB", (200, 160), (30, 60, 200)).save(single)
    whole = search.search(str(single), "", "", 0.5, *NO_FILTERS)
    view, state = handlers.find(str(single), "", whole.session, *NO_FILTERS)
    assert state.prepared.regions == [] and "Found in your photo" not in view["value"]
    assert '<details class="region-draw">' in view["value"]
    text_only = search.search(None, "", "red shoe", 0.5, *NO_FILTERS)
    hidden, none = handlers.find(None, "", text_only.session, *NO_FILTERS)
    assert hidden["visible"] is False and none is None


def card_matches(html: str) -> list[str]:
    """Each region card's best match id, in region order (the "Whole photo" card has none)."""
    return [part.split('"', 1)[0] for part in html.split(' data-match="')[1:]]


def test_the_cards_follow_a_refine_and_agree_with_the_picked_regions_gallery(page):
    search, handlers, photo, _, _, counting = page
    steering = SteerHandlers(search.service, search)
    whole = search.search(photo, "", "", 0.5, *NO_FILTERS)
    view, state = handlers.find(photo, "", whole.session, *NO_FILTERS)
    before = card_matches(view["value"])
    assert len(before) == 4
    chips = [{"vote": "dislike", "id": i, "label": "👎"} for i in dict.fromkeys(before)]
    calls = counting.calls
    refined = steering.refine("", "", chips, 0.5, *NO_FILTERS, whole.session)
    after = card_matches(handlers.refresh(state, *NO_FILTERS, refined.session))
    assert counting.calls == calls  # neither the crops nor the chips' products are embedded
    assert len(after) == 4 and not set(after) & set(before), (before, after)  # the disliked matches are gone
    for index in range(4):  # picking a region shows its card's match first (scores and all)
        picked, html, _ = pick(handlers, state, refined.session, index=index)
        assert picked[8].ids[0] == after[index] and card_matches(html) == after
    cleared = steering.clear(0.5, *NO_FILTERS, refined.session)[4:]  # chips, view, boxes, then the page
    assert card_matches(handlers.refresh(state, *NO_FILTERS, cleared[8])) == before
