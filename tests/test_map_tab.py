"""The Map tab's handlers, called directly with a fake CatalogMap at the constructor seam (no browser)."""

from __future__ import annotations

import base64
import json

import gradio as gr
import numpy as np
import pytest

from similarity.errors import SimilarityError
from similarity.records import Product
from similarity.search import SearchService
from similarity.store import open_store
from similarity.ui.files import UiFiles
from similarity.ui.handlers import SearchHandlers
from similarity.ui.map import EMPTY, NO_MAP, MapHandlers
from similarity.ui.map_data import NO_BRAND, OTHER_BRANDS, build_snapshot
from similarity.ui.map_html import product_card

from .map_fakes import FakeCatalogMap
from .test_app_handlers import seed_catalog, tiny_settings

NO_FILTERS = ((), (), (), ())


def ranking(top_k=6, min_score=0.0, groups=NO_FILTERS):
    return (top_k, min_score, *groups)  # RANK_INPUTS order


@pytest.fixture(scope="module")
def store(tiny_embedder):
    store = open_store("memory://")
    assert seed_catalog(store, tiny_embedder) == 18
    return store


@pytest.fixture
def service(store, tiny_embedder):
    return SearchService(store, tiny_embedder, None, tiny_settings())


@pytest.fixture
def fake(store):
    return FakeCatalogMap(store)


@pytest.fixture
def handlers(service, fake, tmp_path):
    return MapHandlers(service, UiFiles(tmp_path), catalog_map=fake)


def decode_points(points: dict) -> tuple[np.ndarray, np.ndarray]:
    x0, x1, y0, y1 = points["bounds"]
    qx = np.frombuffer(base64.b64decode(points["x"]), "<u2")
    qy = np.frombuffer(base64.b64decode(points["y"]), "<u2")
    return x0 + qx / 65535 * (x1 - x0), y0 + qy / 65535 * (y1 - y0)


def field_values(points: dict, name: str) -> list[str]:
    field = points["fields"][name]
    return [field["names"][c] for c in base64.b64decode(field["codes"])]


def passing(overlay: dict, count: int) -> np.ndarray:
    bits = np.frombuffer(base64.b64decode(overlay["dim"]), np.uint8)
    return np.unpackbits(bits, bitorder="little")[:count].astype(bool)


def open_map(handlers, session=None, sent="", **kw):
    value, note, key, timer = handlers.open_map(session, None, sent, *ranking(**kw))
    return json.loads(value), note, key, timer


def test_points_are_sent_once_as_compact_parallel_arrays(handlers, fake, store):
    message, note, key, timer = open_map(handlers)
    points = message["points"]
    assert points["count"] == points["total"] == 18 and key == points["key"] == "v1:umap"
    assert "UMAP" in note and "18 products" in note and timer.active is False
    xs, ys = decode_points(points)
    snap = handlers.snapshot()
    products = {p.id: p for p in store.get(snap.ids, thumbnails=False)}
    span = max(np.ptp(xs), np.ptp(ys))
    for i, product_id in enumerate(snap.ids):  # every product, at its layout position (uint16 quantisation)
        assert abs(xs[i] - fake.coords[product_id][0]) < span / 30000
        assert abs(ys[i] - fake.coords[product_id][1]) < span / 30000
    assert field_values(points, "category") == [products[i].category for i in snap.ids]
    assert field_values(points, "color") == [products[i].colors[0] for i in snap.ids]
    assert field_values(points, "brand") == [products[i].brand for i in snap.ids]
    assert message["overlay"] == {"key": key, "query": None, "matches": [], "dim": None}

    again, _, _, _ = open_map(handlers, sent=key)  # this browser has them: only the overlay
    assert "points" not in again and "overlay" in again


def test_click_on_a_point_shows_that_products_card(handlers, store):
    open_map(handlers)
    snap = handlers.snapshot()
    card, more, picked = handlers.show_card(gr.EventData(None, {"key": snap.key, "index": 4}))
    product = store.get([snap.ids[4]])[0]
    assert picked == product.id and more["visible"] is True
    assert f'data-id="{product.id}"' in card and product.name in card and "data:image/" in card

    for stale in ({"key": "old:umap", "index": 4}, {"key": snap.key, "index": 99}, {"index": "x"}, None):
        with pytest.raises(gr.Error):
            handlers.show_card(gr.EventData(None, stale))


def test_search_places_the_query_and_ranks_its_matches(handlers, fake, service, tmp_path, photo_path):
    search = SearchHandlers(service, UiFiles(tmp_path))
    session = search.search(photo_path, "", "", 0.5, *ranking()).session
    value, focus = handlers.follow_search(session, "v1:umap", *ranking())
    overlay = json.loads(value)["overlay"]
    assert focus is None
    ids, scores = fake.placed[-1]
    assert ids == session.ids and scores == sorted(scores, reverse=True)  # the top matches, best first
    assert (overlay["query"]["x"], overlay["query"]["y"]) == pytest.approx(fake.place(ids, scores))
    assert [m["id"] for m in overlay["matches"]] == session.ids
    assert [m["rank"] for m in overlay["matches"]] == list(range(1, 7))
    assert all((m["x"], m["y"]) == pytest.approx(fake.coords[m["id"]]) for m in overlay["matches"])
    assert "your photo" in overlay["query"]["label"]
    assert handlers.follow_search(session, "", *ranking())[0] == gr.skip()  # map never drawn here: nothing to send


def test_active_filters_dim_the_points_that_do_not_pass(handlers, store, service, tmp_path, photo_path):
    open_map(handlers)
    snap = handlers.snapshot()
    session = SearchHandlers(service, UiFiles(tmp_path)).search(photo_path, "", "", 0.5, *ranking()).session
    groups = (["bags"], (), ["black", "brown"], ())
    overlay = json.loads(handlers.refresh(session, None, snap.key, *ranking(groups=groups)))["overlay"]
    products = {p.id: p for p in store.get(snap.ids, thumbnails=False)}
    expected = [products[i].category == "bags" and bool({"black", "brown"} & set(products[i].colors)) for i in snap.ids]
    assert passing(overlay, len(snap.ids)).tolist() == expected and sum(expected) == 6
    assert {store.get([m["id"]])[0].category for m in overlay["matches"]} == {"bags"}  # matches pass too


def test_more_like_this_ranks_the_products_neighbours_on_the_map(handlers, fake):
    open_map(handlers)
    snap = handlers.snapshot()
    source = snap.ids[0]
    gallery, chart, line, focus = handlers.more_like_this(source, snap.key, *ranking(top_k=5))
    overlay = json.loads(chart)["overlay"]
    assert len(gallery["value"]) == 5 and "5 similar products" in line
    assert focus.ids == [m["id"] for m in overlay["matches"]] and source not in focus.ids
    assert (overlay["source"]["x"], overlay["source"]["y"]) == pytest.approx(fake.coords[source])
    assert (overlay["query"]["x"], overlay["query"]["y"]) == pytest.approx(fake.coords[source])  # on its product
    assert "like" in overlay["query"]["label"]
    # filters changed later: the map keeps this product as its query
    again = json.loads(handlers.refresh(None, focus, snap.key, *ranking(top_k=3)))["overlay"]
    assert [m["id"] for m in again["matches"]] == focus.ids[:3]
    card, _, picked = handlers.pick_result(focus, gr.SelectData(None, {"index": 1, "value": None}))
    assert picked == focus.ids[1] and f'data-id="{picked}"' in card
    with pytest.raises(gr.Error):
        handlers.more_like_this(None, snap.key, *ranking())


def test_hover_card_is_escaped_and_bad_input_gives_nothing(handlers, store, service, tmp_path):
    nasty = Product(id="nasty", name='<img src=x onerror="alert(1)">', category="bags", brand="<b>x</b>")
    nasty.embedding = np.ones(store.load_vectors().vectors.shape[1], np.float32)
    local = open_store("memory://")
    local.upsert([nasty])
    map_handlers = MapHandlers(SearchService(local, service.embedder, None, tiny_settings()), UiFiles(tmp_path),
                               catalog_map=FakeCatalogMap(local))  # fmt: skip
    snap = map_handlers.snapshot()
    tip = map_handlers.hover_card({"key": snap.key, "index": 0})
    assert "<img src=x" not in tip and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in tip and "&lt;b&gt;" in tip
    assert "<img src=x" not in product_card(nasty)
    for bad in (None, "x", {"key": snap.key, "index": -1}, {"key": snap.key, "index": 1.5}, {"id": "missing"}):
        assert map_handlers.hover_card(bad) == ""


def test_sample_and_density_above_the_drawn_limit():
    rng = np.random.default_rng(1)
    xy = rng.normal(size=(1000, 2))
    brands = [f"brand{i % 20}" if i % 7 else None for i in range(1000)]

    def pages(limit, offset):
        rows = range(offset, min(offset + (limit or 1000), 1000))
        points = [{"id": f"p{i}", "x": xy[i, 0], "y": xy[i, 1], "category": "bags", "brand": brands[i],
                   "colors": []} for i in rows]  # fmt: skip
        return {"method": "umap", "catalog_version": "v", "points": points, "total": 1000, "note": ""}

    snap = build_snapshot(pages, max_drawn=100, page=300)
    assert len(snap.ids) == 100 == len(set(snap.ids)) and snap.total == 1000
    assert sum(cell[2] for cell in snap.density) == 1000  # the shading counts every product
    assert "sample of 100 of 1,000" in snap.note
    names = snap.fields["brand"].names
    assert len(names) <= 14 and names[-1] == OTHER_BRANDS and NO_BRAND in names
    assert build_snapshot(pages, max_drawn=100, page=300).ids == snap.ids  # the same sample every time
    assert len(build_snapshot(pages, max_drawn=5000, page=300).ids) == 1000 and snap.density is not None


def test_empty_catalog_and_missing_map_give_a_note(service, tiny_embedder, tmp_path):
    empty = open_store("memory://")
    handlers = MapHandlers(SearchService(empty, tiny_embedder, None, tiny_settings()), UiFiles(tmp_path),
                           catalog_map=FakeCatalogMap(empty))  # fmt: skip
    message, note, _, _ = open_map(handlers)
    assert note == EMPTY and message["points"]["count"] == 0
    value, note, key, _ = MapHandlers(service, UiFiles(tmp_path)).open_map(None, None, "", *ranking())
    assert (value, note, key) == ("", NO_MAP, "")


def test_preview_polls_until_the_layout_is_ready(handlers, fake):
    fake.method, fake.status = "pca-preview", "preview"
    _, note, key, timer = open_map(handlers)
    assert "PCA preview" in note and "computing" in note and timer.active is True
    value, _, same, _ = handlers.poll(None, None, key, *ranking())
    assert value == gr.skip() and same == gr.skip()  # nothing new
    fake.method, fake.status = "umap", "ready"
    value, note, new_key, timer = handlers.poll(None, None, key, *ranking())
    assert new_key == "v1:umap" and "points" in json.loads(value) and timer.active is False


@pytest.fixture
def photo_path(tmp_path) -> str:
    from .helpers import make_image

    path = tmp_path / "query.png"
    make_image((200, 30, 30), (120, 100), shape=1).save(path)
    return str(path)


class BrokenMap(FakeCatalogMap):
    """A layout store that is down (e.g. a MongoDB outage)."""

    def points(self, limit=None, offset=0):
        raise SimilarityError("The catalog map is unavailable right now.")


def test_a_broken_map_says_so_on_the_tab_and_never_fails_a_search(service, store, tmp_path, photo_path):
    handlers = MapHandlers(service, UiFiles(tmp_path), catalog_map=BrokenMap(store))
    with pytest.raises(gr.Error, match="unavailable right now"):
        handlers.open_map(None, None, "", *ranking())
    session = SearchHandlers(service, UiFiles(tmp_path)).search(photo_path, "", "", 0.5, *ranking()).session
    assert handlers.follow_search(session, "v1:umap", *ranking()) == (gr.skip(), None)
    assert handlers.refresh(session, None, "v1:umap", *ranking()) == gr.skip()
