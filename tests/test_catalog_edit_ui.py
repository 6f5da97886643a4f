"""Catalog tab "Edit or remove" handlers, called directly: token, rate limit, validation, confirmations."""

from __future__ import annotations

import dataclasses

import gradio as gr
import numpy as np
import pytest

from similarity.config import Settings
from similarity.ratelimit import RateLimiter
from similarity.records import Filters
from similarity.search import SearchService
from similarity.store import open_store
from similarity.ui.catalog import CatalogHandlers
from similarity.ui.catalog_edit import EditHandlers
from similarity.ui.files import UiFiles

from .helpers import TINY_MODEL, make_products

TOKEN = "s3cret-token"


class Request:
    """What handlers read from a ``gr.Request``: the client address."""

    def __init__(self, host: str = "203.0.113.7") -> None:
        self.client = type("Client", (), {"host": host})()


@dataclasses.dataclass
class Tab:
    edit: EditHandlers
    service: SearchService
    products: list


def make_tab(tmp_path, tiny_embedder, token: str | None = TOKEN, limiter: RateLimiter | None = None) -> Tab:
    products = [dataclasses.replace(p, embedding_model=tiny_embedder.model_id) for p in make_products(12)]
    store = open_store("memory://")
    store.upsert(products)
    settings = Settings(clip_model=TINY_MODEL, clip_pretrained="none", store_url="memory://", admin_token=token)
    service = SearchService(store, tiny_embedder, None, settings)
    catalog = CatalogHandlers(service, UiFiles(tmp_path), page_size=5, limiter=limiter)
    return Tab(EditHandlers(catalog), service, products)


def form_values(form, token=TOKEN):
    return (*form[:-1], token)


@pytest.fixture
def tab(tmp_path, tiny_embedder) -> Tab:
    return make_tab(tmp_path, tiny_embedder)


def test_select_fills_the_form_from_the_clicked_product(tab):
    page_two = tab.service.browse(Filters(), 2, 5).products
    form = tab.edit.select((), (), (), (), 2, gr.SelectData(None, {"index": 1, "value": None}))
    assert form.product_id == page_two[1].id and form.name == page_two[1].name
    assert form.colors == list(page_two[1].colors) and form.tags == ", ".join(page_two[1].tags)


def test_edit_saves_validated_metadata_and_search_sees_it(tab):
    target = tab.products[4]
    form = tab.edit.load(target.id)
    form = form._replace(brand="Zeta Corp", category="watches", colors=["navy", "red"], tags="summer, Sale", price=42)
    saved = tab.edit.save(*form_values(form), request=Request())
    assert saved.status.startswith("Saved: ") and "brand" in saved.status
    stored = tab.service.store.get([target.id])[0]
    assert (stored.brand, stored.category, stored.colors, stored.tags, stored.price) == (
        "zeta corp", "watches", ("navy", "red"), ("summer", "sale"), 42.0,
    )  # fmt: skip
    assert np.array_equal(tab.service.store.vector(target.id), target.embedding)
    found = tab.service.similar_to(tab.products[0].id, Filters.of(brands=["zeta corp"]), top_k=5)
    assert [m.product.id for m in found.matches] == [target.id]  # the index was patched with the edit


def test_a_category_outside_the_list_is_an_error(tab):
    form = tab.edit.load(tab.products[1].id)._replace(category="furniture")
    with pytest.raises(gr.Error, match="Unknown category 'furniture'"):
        tab.edit.save(*form_values(form), request=Request())
    assert tab.service.store.get([tab.products[1].id])[0].category == tab.products[1].category


def test_every_write_needs_the_token(tmp_path, tiny_embedder, tab):
    form = tab.edit.load(tab.products[2].id)._replace(name="Hacked")
    with pytest.raises(gr.Error, match="Wrong admin token"):
        tab.edit.save(*form_values(form, token="guess"), request=Request())
    with pytest.raises(gr.Error, match="Wrong admin token"):
        tab.edit.remove(tab.products[2].id, "", request=Request())
    *_, count = tab.edit.ask_remove_matching(["shoes"], (), (), ())
    with pytest.raises(gr.Error, match="Wrong admin token"):
        tab.edit.remove_matching(["shoes"], (), (), (), count, None, request=Request())
    assert tab.service.store.count() == 12 and tab.service.store.get([tab.products[2].id])[0].name != "Hacked"
    read_only = make_tab(tmp_path / "ro", tiny_embedder, token=None)
    with pytest.raises(gr.Error, match="read-only"):
        read_only.edit.remove(read_only.products[0].id, TOKEN, request=Request())


def test_writes_share_the_add_rate_limit(tmp_path, tiny_embedder):
    tab = make_tab(tmp_path, tiny_embedder, limiter=RateLimiter(limit=2, period_s=60))
    with pytest.raises(gr.Error, match="Wrong admin token"):
        tab.edit.remove(tab.products[0].id, "wrong", request=Request())  # a wrong guess counts too
    tab.edit.remove(tab.products[1].id, TOKEN, request=Request())
    with pytest.raises(gr.Error, match="Too many catalog changes"):
        tab.edit.remove(tab.products[2].id, TOKEN, request=Request())
    tab.edit.remove(tab.products[2].id, TOKEN, request=Request("198.51.100.1"))  # another client is not limited
    assert tab.service.store.count() == 10


def test_remove_asks_first_then_the_product_never_appears_again(tab):
    target = tab.products[3]
    shown, question = tab.edit.ask_remove(target.id)
    assert shown["visible"] is True and "Product 3" in question and "cannot be undone" in question
    assert tab.service.store.count() == 12  # asking writes nothing
    hidden, *form = tab.edit.remove(target.id, TOKEN, request=Request())
    assert hidden["visible"] is False and form[0] == "" and form[-1] == "Removed 1 product."
    results = tab.service.similar_to(tab.products[0].id, top_k=20)
    assert target.id not in [m.product.id for m in results.matches] and len(results.matches) == 10
    assert target.id not in [p.id for p in tab.service.browse(Filters(), 1, 50).products]
    with pytest.raises(gr.Error, match="No product has an id"):
        tab.edit.remove(target.id, TOKEN, request=Request())


def test_bulk_remove_states_the_count_and_removes_exactly_the_matching(tab):
    shoes = [p.id for p in tab.products if p.category == "shoes"]
    shown, question, count = tab.edit.ask_remove_matching(["shoes"], (), (), ())
    assert shown["visible"] is True and count == len(shoes) == 3
    assert "Remove all **3** products matching category shoes" in question
    tab.service.store.delete([shoes[0]])  # the catalog changes between the question and the answer
    with pytest.raises(gr.Error, match="now match 2 products, not the 3 you confirmed"):
        tab.edit.remove_matching(["shoes"], (), (), (), count, TOKEN, request=Request())
    assert tab.service.store.count() == 11
    *_, count = tab.edit.ask_remove_matching(["shoes"], (), (), ())
    _, *form = tab.edit.remove_matching(["shoes"], (), (), (), count, TOKEN, request=Request())
    assert form[-1] == "Removed 2 products." and tab.service.store.count() == 9
    assert tab.service.browse(Filters.of(categories=["shoes"])).total == 0


def test_bulk_remove_needs_a_filter(tab):
    shown, message, count = tab.edit.ask_remove_matching((), (), (), ())
    assert shown["visible"] is False and count == 0 and "Tick at least one filter" in message
    with pytest.raises(gr.Error, match="Tick at least one filter"):
        tab.edit.remove_matching((), (), (), (), 12, TOKEN, request=Request())
    assert tab.service.store.count() == 12


def test_names_are_escaped_in_the_confirmation(tab):
    tab.service.store.edit(tab.products[5].id, {"name": "**bold** <img src=x>"})
    _, question = tab.edit.ask_remove(tab.products[5].id)
    assert "<img" not in question and "\\*\\*bold\\*\\*" in question


def test_saved_products_whose_product_was_removed_show_as_removed(tab):
    from similarity.saved import SavedProducts

    saved = SavedProducts(tab.service.store)
    saved.save("alice", tab.products[6].id, "for the trip")
    saved.save("alice", tab.products[7].id)
    tab.edit.remove(tab.products[6].id, TOKEN, request=Request())
    entries = {e.id: e for e in saved.entries("alice")}
    assert set(entries) == {tab.products[6].id, tab.products[7].id}  # the saved record and its note stay
    gone, kept = entries[tab.products[6].id], entries[tab.products[7].id]
    assert not gone.in_catalog and gone.product is None and gone.record.note == "for the trip"
    assert gone.to_dict()["in_catalog"] is False and kept.in_catalog
