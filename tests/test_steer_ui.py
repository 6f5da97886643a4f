"""The Search tab's steering handlers, called directly: chips added, removed and kept across re-ranks,
Refine, Clear, the data behind the 👍/👎 on each picture and the price controls."""

from __future__ import annotations

import re
from types import SimpleNamespace

import gradio as gr
import pytest

from similarity.ui import format as fmt
from similarity.ui.steer import SteerHandlers, chip_key, steering_of, strip_html

from .test_app_handlers import catalog_store, embedder, handlers, photo, rerank  # noqa: F401

NO_FILTERS = ((), (), (), ())


def ranking(top_k=6, groups=NO_FILTERS, price=(None, None), sort="relevance", within=0, collapse=False):
    return (top_k, 0, *groups, *price, sort, within, collapse)  # RANK_INPUTS order


@pytest.fixture
def steer(handlers) -> SteerHandlers:  # noqa: F811
    return SteerHandlers(handlers.service, handlers)


def first_search(steer, photo, more="", less="", chips=(), **kw):  # noqa: F811
    return steer.search(more, less, list(chips), photo, "", "", 0.5, *ranking(**kw), None)


def clicked(product_id: str, vote: str):
    return SimpleNamespace(_data={"id": product_id, "vote": vote})


def test_a_thumb_shows_at_once_as_a_chip_and_refine_leaves_the_disliked_product_out(steer, photo):  # noqa: F811
    out = first_search(steer, photo)
    top = out.session.ids[0]
    embeds = steer.service.embedder.calls
    chips, view = steer.vote([], clicked(top, "dislike"))
    name = fmt.product_title(steer.service.store.get([top])[0])
    assert chips == [{"vote": "dislike", "id": top, "label": f"👎 {name}"}]
    assert view["choices"] == [(f"👎 {name}", f"dislike:{top}")] and view["value"] == [f"dislike:{top}"]
    refined = steer.refine("", "", chips, 0.5, *ranking(), out.session)
    assert top not in refined.session.ids and len(refined.session.ids) == 6
    assert refined.session.query.steering.disliked == (top,)
    assert steer.service.embedder.calls == embeds  # the photo is not embedded again
    assert "refined: 👎 1" in refined.timings


def test_chips_are_kept_across_filter_changes_and_re_ranks(steer, handlers, photo):  # noqa: F811
    out = first_search(steer, photo)
    chips, _ = steer.vote([], clicked(out.session.ids[1], "like"))
    chips, _ = steer.vote(chips, clicked(out.session.ids[0], "dislike"))
    refined = steer.refine("", "red", chips, 0.5, *ranking(), out.session)
    again = rerank(handlers, refined.session, groups=(["shoes"], (), (), ()))  # a filter change re-ranks
    assert again.session.query.steering == refined.session.query.steering
    assert out.session.ids[0] not in again.session.ids
    # the chips are a separate state: a re-rank never touches them, and the next Refine uses them again
    moved = steer.refine("", "", chips, 0.5, *ranking(groups=(["bags"], (), (), ())), again.session)
    assert moved.session.query.steering.liked == (out.session.ids[1],)


def test_a_new_vote_replaces_the_old_one_and_removal_drops_chips(steer, photo):  # noqa: F811
    ids = first_search(steer, photo).session.ids
    chips, _ = steer.vote([], clicked(ids[0], "like"))
    chips, _ = steer.vote(chips, clicked(ids[1], "like"))
    chips, _ = steer.vote_shown(ids[0], chips, "dislike")  # the detail view's 👎
    assert [(c["vote"], c["id"]) for c in chips] == [("like", ids[1]), ("dislike", ids[0])]
    chips, view = steer.remove([chip_key(chips[1])], chips)
    assert [c["id"] for c in chips] == [ids[0]] and view["visible"]
    chips, view = steer.remove([], chips)
    assert chips == [] and view["visible"] is False


def test_clear_empties_chips_and_boxes_and_shows_the_unsteered_results(steer, photo):  # noqa: F811
    out = first_search(steer, photo)
    chips, _ = steer.vote([], clicked(out.session.ids[0], "dislike"))
    refined = steer.refine("leather", "", chips, 0.5, *ranking(), out.session)
    chips_after, view, more, less, *shown = steer.clear(0.5, *ranking(), refined.session)
    assert (chips_after, view["value"], more, less) == ([], [], "", "")
    session = shown[8]
    assert session.ids == out.session.ids and not session.query.steering


def test_search_uses_the_boxes_and_the_chips(steer, photo):  # noqa: F811
    plain = first_search(steer, photo)
    chips = [{"vote": "dislike", "id": plain.session.ids[0], "label": "x"}]
    steered = first_search(steer, photo, more="leather, suede", less="red", chips=chips)
    query = steered.session.query
    assert (query.steering.more, query.steering.less) == (("leather", "suede"), ("red",))
    assert plain.session.ids[0] not in steered.session.ids


def test_the_strip_lists_every_result_for_the_thumbs_on_its_picture(steer, photo):  # noqa: F811
    out = first_search(steer, photo)
    chips, _ = steer.vote([], clicked(out.session.ids[2], "like"))
    html = steer.strip(out.session, chips)
    ids = re.findall(r'<li data-id="([^"]+)"', html)
    assert ids == out.session.ids and html.count("<li ") == 6  # gallery order: vote_pins.js pins them in turn
    assert html.count('data-vote="like"') == 1 and html.count('data-vote=""') == 5
    assert f'<li data-id="{out.session.ids[2]}" data-title=' in html.split('data-vote="like"')[0]
    assert steer.strip(None, []) == ""


def test_the_strip_escapes_product_text():
    hostile = SimpleNamespace(id='x"><b>', name='<img src=x onerror="alert(1)">', brand="a&b", category="bags")
    html = strip_html([hostile], {'x"><b>': "dislike"})
    assert "<img" not in html and "<b>" not in html and 'onerror="' not in html
    assert 'data-title="&lt;img src=x onerror=&quot;alert(1)&quot;&gt; — a&amp;b"' in html
    assert 'data-vote="dislike"' in html


def test_price_sort_and_the_price_note(steer, photo):  # noqa: F811
    store = steer.service.store
    for n, product in enumerate(store.get(store.ids_with_prefix("", 100), thumbnails=False)):
        if n % 3:
            store.edit(product.id, {"price": float(10 * (n % 5) + 5)})
    out = first_search(steer, photo, top_k=12, price=(10, 30), sort="price_desc")
    prices = [p.price for p in store.get(out.session.ids, thumbnails=False)]
    assert prices == sorted(prices, reverse=True) and all(10 <= p <= 30 for p in prices)
    note, low, high = steer.price_note(out.session)
    assert note.startswith("Catalog: 5.00 – 45.00 · 6 without a price") and "among the candidates" in note
    assert (low["placeholder"], high["placeholder"]) == ("5.00", "45.00")  # the boxes show the catalog's range
    for product in store.get(store.ids_with_prefix("", 100), thumbnails=False):
        store.edit(product.id, {"price": None})  # the module's catalog is shared: as it was


def test_bad_steering_input_is_a_short_message(steer, photo):  # noqa: F811
    with pytest.raises(gr.Error, match="Search first"):
        steer.refine("", "", [], 0.5, *ranking(), None)
    with pytest.raises(gr.Error, match="no longer in the catalog"):
        steer.vote([], clicked("f" * 64, "like"))
    with pytest.raises(gr.Error, match="Open a result first"):
        steer.vote([], SimpleNamespace(_data={"id": "x", "vote": "love"}))
    with pytest.raises(gr.Error, match="price range is reversed"):
        first_search(steer, photo, price=(50, 10))


def test_steering_of_reads_boxes_and_chips():
    chips = [{"vote": "like", "id": "a", "label": ""}, {"vote": "dislike", "id": "b", "label": ""}]
    s = steering_of(" leather , ,suede", "", chips)
    assert (s.more, s.less, s.liked, s.disliked) == (("leather", "suede"), (), ("a",), ("b",))
