"""Map selections through the handlers: the selection from the browser's mask, counts per category and
brand, the CSV/JSON export, "More like these" through the one ranking path, save all (signed in), and the
bulk edits and removal behind the admin token with a count confirmation."""

from __future__ import annotations

import base64
import csv
import dataclasses
import io
import json
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest

from similarity.ratelimit import RateLimiter
from similarity.search import SearchService
from similarity.store import open_store
from similarity.ui.catalog import CatalogHandlers
from similarity.ui.files import UiFiles
from similarity.ui.map import MapHandlers
from similarity.ui.map_select import SelectionHandlers, export_csv

from .map_fakes import FakeCatalogMap
from .rankings import assert_ranking_is_reference
from .test_app_handlers import seed_catalog, tiny_settings

TOKEN = "tok-123"
NO_FILTERS = ((), (), (), ())


class Request:
    def __init__(self, username: str | None = None, host: str = "198.51.100.4") -> None:
        self.username = username
        self.client = type("Client", (), {"host": host})()


@pytest.fixture
def tab(tiny_embedder, tmp_path):
    store = open_store("memory://")
    assert seed_catalog(store, tiny_embedder) == 18
    service = SearchService(store, tiny_embedder, None, tiny_settings(admin_token=TOKEN))
    files = UiFiles(tmp_path)
    maps = MapHandlers(service, files, catalog_map=FakeCatalogMap(store))
    return SelectionHandlers(maps, CatalogHandlers(service, files, limiter=RateLimiter(1000, 60)))


def mask_of(snap, rows) -> str:
    bits = np.zeros(len(snap.ids), bool)
    bits[list(rows)] = True
    return base64.b64encode(np.packbits(bits, bitorder="little").tobytes()).decode()


def select(tab, rows):
    snap = tab.maps.snapshot()
    return tab.select(gr.EventData(None, {"key": snap.key, "mask": mask_of(snap, rows)})), snap


def test_a_mask_selects_those_points_with_counts_per_category_and_brand(tab):
    out, snap = select(tab, [0, 3, 4, 9])
    chosen = [snap.ids[r] for r in (0, 3, 4, 9)]
    assert sorted(out.ids) == sorted(chosen) and len(out.gallery) == 4
    products = tab.service.store.get(chosen, thumbnails=False)
    assert out.summary.startswith("**4 selected**")
    for category in {p.category for p in products}:
        count = sum(p.category == category for p in products)
        assert f"{category} {count}" in out.summary
    for brand in {p.brand for p in products}:
        assert f"{brand} {sum(p.brand == brand for p in products)}" in out.summary


def test_a_stale_or_broken_selection_is_refused_politely(tab):
    out = tab.select(gr.EventData(None, {"key": "old-layout", "mask": "AAAA"}))
    assert out.ids == [] and "redrawn" in out.summary
    snap = tab.maps.snapshot()
    assert tab.select(gr.EventData(None, {"key": snap.key, "mask": "%%%not base64"})).ids == []
    assert tab.select(gr.EventData(None, "nonsense")).ids == []


def test_export_writes_csv_and_json_of_the_selection(tab):
    out, _snap = select(tab, [1, 2, 5])
    csv_file, json_file = tab.export(out.ids)
    rows = list(csv.DictReader(io.StringIO(Path(csv_file["value"]).read_text(encoding="utf-8"))))
    assert [r["id"] for r in rows] == out.ids
    products = {p.id: p for p in tab.service.store.get(out.ids, thumbnails=False)}
    for row in rows:
        p = products[row["id"]]
        assert row["name"] == p.name and row["category"] == p.category and row["brand"] == p.brand
        assert row["tags"] == " ".join(p.tags)
        x, y = tab.maps.catalog_map.coords[row["id"]]
        assert float(row["x"]) == pytest.approx(x) and float(row["y"]) == pytest.approx(y)
    data = json.loads(Path(json_file["value"]).read_text(encoding="utf-8"))
    assert [p["id"] for p in data["products"]] == out.ids
    with pytest.raises(gr.Error):
        tab.export([])


def test_csv_cells_cannot_run_as_formulas():
    text = export_csv([{"id": "a", "name": "=HYPERLINK(1)", "tags": ["x", "y"]}])
    assert "'=HYPERLINK(1)" in text and "x y" in text


def test_more_like_these_ranks_the_selection_mean_through_the_one_path(tab):
    out, snap = select(tab, [0, 1, 2])
    gallery, chart, line = tab.more_like_these(out.ids, snap.key, 5, 0.0, *NO_FILTERS)
    shown = gallery["value"]
    assert len(shown) == 5 and "like the 3 selected" in line
    overlay = json.loads(chart)["overlay"]
    ranked = [m["id"] for m in sorted(overlay["matches"], key=lambda m: m["rank"])]
    assert not set(ranked) & set(out.ids)  # the selection itself is left out
    # the reference: the normalised mean of the stored vectors, ranked by the service directly
    vectors = tab.service.store.load_vectors_of(out.ids).vectors
    mean = vectors.mean(axis=0) / np.linalg.norm(vectors.mean(axis=0))
    scores = {i: float(tab.service.store.vector(i) @ mean) for i in tab.maps.snapshot().ids if i not in out.ids}
    reference = sorted(scores.items(), key=lambda pair: -pair[1])
    assert_ranking_is_reference(SimpleNamespace(ids=ranked, scores=[scores[i] for i in ranked]), reference, 5)


def test_save_all_needs_a_signed_in_user(tab):
    out, _ = select(tab, [2, 6])
    with pytest.raises(gr.Error, match="Sign in"):
        tab.save_all(out.ids, None, Request())
    assert tab.save_all(out.ids, None, Request("ana")).startswith("Saved 2 new products")
    assert sorted(r.product_id for r in tab.service.store.saved_products("local:ana")) == sorted(out.ids)
    assert "2 were saved already" in tab.save_all(out.ids, None, Request("ana"))


def test_set_category_and_brand_need_the_token_and_the_confirmed_count(tab):
    out, _ = select(tab, [0, 7, 8])
    confirm, question, expected = tab.ask(out.ids, "category", "watches")
    assert expected == 3 and "**3**" in question and confirm["visible"] is True
    with pytest.raises(gr.Error, match="Wrong admin token"):
        tab.apply(out.ids, "category", "watches", expected, "nope", Request())
    with pytest.raises(gr.Error, match="not the 2 you confirmed"):
        tab.apply(out.ids, "category", "watches", 2, TOKEN, Request())
    with pytest.raises(gr.Error, match="category"):  # not one of the app's categories: a short message
        tab.apply(out.ids, "category", "spaceships", 3, TOKEN, Request())
    _, status = tab.apply(out.ids, "category", "watches", expected, TOKEN, Request())
    assert status.startswith("Set the category of 3 products")
    assert {p.category for p in tab.service.store.get(out.ids, thumbnails=False)} == {"watches"}
    _, status = tab.apply(out.ids, "brand", "Acme Co", 3, TOKEN, Request())
    assert {p.brand for p in tab.service.store.get(out.ids, thumbnails=False)} == {"acme co"}
    assert tab.ask(out.ids, "brand", "  ")[2] == 0  # no value, no confirmation


def test_remove_needs_the_token_and_the_confirmed_count(tab):
    out, _ = select(tab, [3, 4])
    before = tab.service.store.count()
    _confirm, question, expected = tab.ask(out.ids, "remove", "")
    assert expected == 2 and "Remove all **2**" in question
    with pytest.raises(gr.Error, match="Wrong admin token"):
        tab.apply(out.ids, "remove", "", expected, "", Request())
    assert tab.service.store.count() == before
    _, status = tab.apply(out.ids, "remove", "", expected, TOKEN, Request())
    assert status.startswith("Removed 2 products") and tab.service.store.count() == before - 2
    assert not tab.service.store.existing(out.ids)


def test_a_read_only_catalog_refuses_bulk_writes(tab):
    settings = dataclasses.replace(tab.service.settings, admin_token=None)
    tab.service.settings = settings
    out, _ = select(tab, [1])
    with pytest.raises(gr.Error, match="read-only"):
        tab.apply(out.ids, "remove", "", 1, TOKEN, Request())
