"""The catalog map engine: layouts, persistence, placement, background work and quality."""

from __future__ import annotations

import os
import threading
import time

import mongomock
import numpy as np
import pytest

from benchmarks.common import clustered_vectors
from similarity.config import Settings
from similarity.map import CatalogMap, FileLayouts, PcaFitter, UmapFitter, fit_layout, neighbourhood_preservation
from similarity.map.layout import pca_2d
from similarity.map.worker import numba_cache, run_in_child
from similarity.records import Filters
from similarity.search import Query, SearchService
from similarity.store.local import LocalStore
from similarity.store.mongo import MongoStore

from .helpers import make_products, random_unit_vectors
from .test_store_mongo import patch_mongomock_bulk


class CountingFitter:
    """A real (PCA-based) fitter that counts its fits and the rows it saw."""

    name = "counting"
    min_points = 5

    def __init__(self) -> None:
        self.rows: list[int] = []

    def fit(self, vectors: np.ndarray) -> np.ndarray:
        self.rows.append(len(vectors))
        return pca_2d(vectors)


class GatedFitter(CountingFitter):
    """Fits only once ``gate`` is set, so a test can look at the map while a layout computes."""

    def __init__(self) -> None:
        super().__init__()
        self.gate, self.entered = threading.Event(), threading.Event()

    def fit(self, vectors: np.ndarray) -> np.ndarray:
        self.entered.set()
        assert self.gate.wait(30)
        return super().fit(vectors)


class BrokenFitter:
    name, min_points = "broken", 2

    def fit(self, vectors: np.ndarray) -> np.ndarray:
        raise RuntimeError("no layout today")


def clustered(n: int, dim: int = 48, clusters: int = 12, seed: int = 0, labels: bool = False):
    """Unit vectors in tight clusters around random centres (each cluster's neighbours are its own)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    members = rng.integers(0, clusters, n)
    x = centres[members] + 0.35 * rng.standard_normal((n, dim))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return (x, members) if labels else x


def catalog(store, n: int, dim: int = 16, seed: int = 0, start: int = 0):
    products = make_products(start + n, dim=dim, seed=seed)[start:]
    store.upsert(products)
    return products


def test_empty_catalog_is_a_clear_note_not_an_error():
    atlas = CatalogMap(LocalStore(), fitter=CountingFitter())
    page = atlas.points()
    assert page["points"] == [] and page["total"] == 0 and atlas.status == "empty"
    assert "empty" in page["note"]
    assert atlas.place(["nope"], [0.9]) is None and atlas.coordinates(["nope"]) == {}


def test_tiny_catalog_gets_pca_with_every_product_placed():
    store = LocalStore()
    products = catalog(store, 4)
    atlas = CatalogMap(store, fitter=UmapFitter())  # 4 products: far too few for UMAP, and no child process
    page = atlas.points()
    assert page["method"] == "pca" and atlas.status == "ready" and "PCA" in page["note"]
    assert {p["id"] for p in page["points"]} == {p.id for p in products}
    assert all(np.isfinite([p["x"], p["y"]]).all() for p in page["points"])
    single = LocalStore()
    catalog(single, 1)
    assert CatalogMap(single, fitter=UmapFitter()).points()["points"][0]["x"] == 0.0


def test_every_product_placed_and_points_page_with_limit_and_offset():
    store = LocalStore()
    products = catalog(store, 40)
    atlas = CatalogMap(store, fitter=CountingFitter())
    page = atlas.points()
    assert page["total"] == 40 and len(page["points"]) == 40 and page["method"] == "counting"
    assert {"id", "x", "y", "category", "brand", "name"} <= set(page["points"][0])
    xy = np.array([[p["x"], p["y"]] for p in page["points"]])
    assert np.isfinite(xy).all() and np.abs(xy).max() == pytest.approx(1.0)  # scaled into [-1, 1]
    second = atlas.points(limit=10, offset=10)
    assert [p["id"] for p in second["points"]] == [p["id"] for p in page["points"][10:20]]
    assert second["total"] == 40 and atlas.points(limit=5, offset=38)["points"][-1]["id"] == products[-1].id


def test_layout_survives_a_restart_without_refitting(tmp_path):
    path = tmp_path / "catalog.db"
    store = LocalStore(path)
    catalog(store, 60)
    fitter = CountingFitter()
    first = CatalogMap(store, fitter=fitter)
    before = first.points()
    assert fitter.rows == [60] and (tmp_path / "catalog.db.map.npz").exists()
    store.close()
    restarted_fitter = CountingFitter()
    again = CatalogMap(LocalStore(path), fitter=restarted_fitter)
    assert again.points() == before and restarted_fitter.rows == []  # loaded, not computed
    assert again.status == "ready"


def test_a_layout_saved_by_another_method_is_not_adopted(tmp_path):
    store = LocalStore(tmp_path / "catalog.db")
    catalog(store, 60)
    CatalogMap(store, fitter=PcaFitter()).start()  # e.g. SIMILARITY_MAP=pca before
    fitter = CountingFitter()
    assert CatalogMap(store, fitter=fitter).points()["method"] == "counting" and fitter.rows == [60]


def test_damaged_saved_layout_is_computed_again(tmp_path):
    path = tmp_path / "catalog.db"
    store = LocalStore(path)
    catalog(store, 30)
    CatalogMap(store, fitter=CountingFitter()).start()
    saved = tmp_path / "catalog.db.map.npz"
    saved.write_bytes(saved.read_bytes()[:-20])  # a crash mid-write
    assert FileLayouts(saved).load() is None
    fitter = CountingFitter()
    CatalogMap(store, fitter=fitter).start()
    assert fitter.rows == [30]


def test_mongodb_layout_lives_in_a_map_collection(monkeypatch):
    patch_mongomock_bulk(monkeypatch)  # a mongomock gap, not our code
    client = mongomock.MongoClient()
    store = MongoStore(client, search="exact")
    catalog(store, 25)
    fitter = CountingFitter()
    before = CatalogMap(store, fitter=fitter).points()
    assert fitter.rows == [25] and client["similarity"]["map"].count_documents({"kind": "meta"}) == 1
    restarted = CountingFitter()
    assert CatalogMap(MongoStore(client, search="exact"), fitter=restarted).points() == before
    assert restarted.rows == []


def test_new_products_are_placed_by_neighbours_until_enough_changed():
    store = LocalStore()
    products = catalog(store, 40)
    fitter = CountingFitter()
    atlas = CatalogMap(store, fitter=fitter)
    atlas.start()
    twin = make_products(41)[40]
    twin.embedding = products[7].embedding  # the same picture as product 7
    store.upsert([twin])
    atlas.start()
    assert fitter.rows == [40]  # placed, not refitted
    spots = atlas.coordinates([twin.id, products[7].id])
    assert spots[twin.id] == pytest.approx(spots[products[7].id], abs=1e-4)
    catalog(store, 20, start=41)  # now over a quarter of the catalog is new: refit
    atlas.start()
    assert fitter.rows == [40, 61] and atlas.points()["total"] == 61


def test_removed_products_leave_the_map():
    store = LocalStore()
    products = catalog(store, 30)
    atlas = CatalogMap(store, fitter=CountingFitter())
    atlas.start()
    store.delete([products[0].id])
    atlas.start()
    page = atlas.points()
    assert page["total"] == 29 and products[0].id not in {p["id"] for p in page["points"]}


def test_preview_while_the_layout_computes_and_searches_do_not_wait(tiny_embedder):
    store = LocalStore()
    catalog(store, 50, dim=32)
    fitter = GatedFitter()
    atlas = CatalogMap(store, fitter=fitter, background=True)
    service = SearchService(store, tiny_embedder, catalog_map=atlas)
    try:
        atlas.start()
        assert fitter.entered.wait(10)
        page = atlas.points()
        assert atlas.status == "preview" and page["method"] == "pca-preview" and page["note"].startswith("PCA preview")
        assert len(page["points"]) == 50
        query = Query(random_unit_vectors(1, 32, seed=5)[0], "image")
        started = time.perf_counter()
        result = service.rank(query, Filters(), 5)
        assert time.perf_counter() - started < 2  # the search ran beside the fit, not after it
        assert "map" in result.to_dict()  # placed on the preview
    finally:
        fitter.gate.set()
    assert atlas.join(30) and atlas.status == "ready" and atlas.points()["method"] == "counting"


def test_added_products_are_placed_in_the_background_while_searches_run(tiny_embedder):
    store = LocalStore()
    catalog(store, 40, dim=32)
    fitter = CountingFitter()
    atlas = CatalogMap(store, fitter=fitter, background=True)
    service = SearchService(store, tiny_embedder, catalog_map=atlas)
    atlas.start()
    assert atlas.join(30)
    added = catalog(store, 3, dim=32, start=40)
    atlas.start()  # as the app does on a catalog change: returns at once
    result = service.rank(Query(random_unit_vectors(1, 32, seed=9)[0], "text"), Filters(), 5)
    assert result.map_position is not None
    assert atlas.join(30) and fitter.rows == [40]
    assert set(atlas.coordinates([p.id for p in added])) == {p.id for p in added}


def test_a_failed_layout_keeps_the_preview_and_says_so():
    store = LocalStore()
    catalog(store, 20)
    atlas = CatalogMap(store, fitter=BrokenFitter())
    page = atlas.points()
    assert atlas.status == "failed" and page["method"] == "pca-preview" and "could not be computed" in page["note"]


def test_query_position_is_the_weighted_mean_of_its_matches(tiny_embedder):
    store = LocalStore()
    products = catalog(store, 40, dim=32)
    atlas = CatalogMap(store, fitter=CountingFitter())
    atlas.start()
    service = SearchService(store, tiny_embedder, catalog_map=atlas)
    result = service.rank(Query(products[3].embedding, "image"), Filters(), 5)
    top = result.matches[0]
    assert top.product.id == products[3].id
    spots = atlas.coordinates([m.product.id for m in result.matches])
    xs, ys = zip(*spots.values(), strict=True)
    x, y = result.map_position
    assert min(xs) <= x <= max(xs) and min(ys) <= y <= max(ys)
    assert result.to_dict()["map"] == {"x": round(x, 5), "y": round(y, 5)}
    similar = service.similar_to(products[3].id, top_k=5)  # a product query sits on its product
    assert similar.map_position == pytest.approx(spots[products[3].id])
    assert "map" not in SearchService(store, tiny_embedder).rank(Query(products[3].embedding, "image")).to_dict()


def test_sampled_fit_places_the_rest_by_their_fitted_neighbours():
    vectors, members = clustered(600, labels=True)
    fitter = CountingFitter()
    coords, fitted, method = fit_layout(vectors, fitter, sample_size=200)
    assert fitter.rows == [200] and int(fitted.sum()) == 200 and method == "counting"
    assert np.isfinite(coords).all() and coords.shape == (600, 2)
    # a placed product lands among the fitted products of its own cluster
    centres = np.stack([coords[fitted & (members == c)].mean(axis=0) for c in range(12)])
    placed = np.flatnonzero(~fitted)
    nearest = np.argmin(((coords[placed, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
    assert np.mean(nearest == members[placed]) > 0.9


def test_neighbourhood_preservation_measures_what_it_says():
    angles = np.random.default_rng(0).uniform(0, 2 * np.pi, 300)
    circle = np.c_[np.cos(angles), np.sin(angles)].astype(np.float32)  # cosine order = 2-D distance order
    assert neighbourhood_preservation(np.c_[circle, np.zeros((300, 6))], circle, sample=None) == 1.0
    flat = circle
    high = random_unit_vectors(300, 16)
    assert neighbourhood_preservation(high, np.random.default_rng(1).random((300, 2))) < 0.1
    with pytest.raises(ValueError):
        neighbourhood_preservation(high[:5], flat[:5])


def test_the_fit_runs_in_a_low_priority_child_process():
    vectors = clustered(300)
    coords, fitted, method = run_in_child(vectors, PcaFitter(), 100)
    expected = fit_layout(vectors, PcaFitter(), sample_size=100)
    assert method == "pca" and fitted.sum() == 100
    assert coords == pytest.approx(expected[0], abs=1e-5)


class NiceProbe:
    """Reports the niceness and process it fitted in, through the coordinates (x: niceness; y: +-1)."""

    name, min_points = "probe", 2

    def fit(self, vectors: np.ndarray) -> np.ndarray:
        out = np.zeros((len(vectors), 2), np.float32)
        out[0], out[1] = (os.nice(0), 1.0), (0.0, -1.0)
        out[2:, 0] = os.nice(0) / 2  # the rest in the middle, so scaling keeps x = niceness / 2 as the extreme
        return out


class SleepyFitter:
    name, min_points = "sleepy", 2

    def fit(self, vectors: np.ndarray) -> np.ndarray:
        time.sleep(120)
        return pca_2d(vectors)


def test_closing_stops_a_fit_in_progress():
    store = LocalStore()
    catalog(store, 30)
    atlas = CatalogMap(store, fitter=SleepyFitter(), background=True, isolate=True)
    atlas.start()
    deadline = time.monotonic() + 30
    while (atlas._child is None or not atlas._child.is_alive()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert atlas.status == "preview"
    atlas.close()
    assert atlas.join(10) and not atlas._child.is_alive()  # not 120 s later
    assert atlas.points()["method"] == "pca-preview"  # the preview stays; nothing was saved


def test_the_child_fits_at_nice_19():
    coords, _, method = run_in_child(clustered(20), NiceProbe())
    assert method == "probe"
    # scaled into [-1, 1]: x spans niceness, y spans 2, so y0 = 1 / (niceness / 2)
    assert coords[0, 1] == pytest.approx(2 / 19, abs=1e-4)
    assert os.nice(0) < 19  # and this process was left alone


@pytest.mark.slow
def test_umap_preserves_neighbourhoods_far_better_than_pca():
    vectors, _ = clustered_vectors(1500, dim=64, clusters=30, rank=8)  # low-rank clusters, like CLIP's
    # the app's own path: a nice-19 child, numba's disk cache in the temp dir (a later run compiles less)
    coords, _, method = run_in_child(vectors, UmapFitter(seed=0), numba_cache=numba_cache(Settings()))
    assert method == "umap" and np.isfinite(coords).all()
    threshold = 0.25  # the share of 10 true neighbours kept; PCA keeps ~0.07 here, random points ~0.01
    umap_score = neighbourhood_preservation(vectors, coords)
    pca_score = neighbourhood_preservation(vectors, pca_2d(vectors))
    random_score = neighbourhood_preservation(vectors, np.random.default_rng(0).random((1500, 2)))
    assert umap_score > threshold and umap_score > 3 * pca_score
    assert pca_score < threshold and random_score < threshold  # the threshold tells a broken layout apart
