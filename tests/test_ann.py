"""ANN (faiss HNSW) for large local catalogs: agreement with exact, persistence, updates, filters."""

from __future__ import annotations

import dataclasses
import json
import threading

import numpy as np
import pytest

from similarity.config import Settings
from similarity.embedder import OpenClipEmbedder
from similarity.index import StoreIndex, Tuning, VectorIndex
from similarity.index.ann import AnnIndex
from similarity.index.graph import HnswGraph, graph_path
from similarity.records import Filters, Product
from similarity.search import SearchService
from similarity.store.local import LocalStore

from .helpers import TINY_MODEL
from .rankings import assert_ranking_matches, same_up_to_ties

pytest.importorskip("faiss")

N, DIM, CLUSTERS = 2000, 32, 40
CATEGORIES = ("bags", "shoes", "electronics", "watches", "snacks", "other")


def clustered(n: int, seed: int = 0, spread: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(size=(CLUSTERS, DIM))
    labels = rng.integers(0, CLUSTERS, n)
    x = centres[labels] / np.linalg.norm(centres[labels], axis=1, keepdims=True) + rng.normal(size=(n, DIM)) * spread
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels


def catalog(n: int = N, seed: int = 0, start: int = 0) -> list[Product]:
    """Products whose category follows the cluster (like real catalogs); brands spread thin (~3% each)."""
    vectors, labels = clustered(n, seed)
    rng = np.random.default_rng(seed + 1)
    return [
        Product(
            id=f"{start + i:064x}",
            category=CATEGORIES[labels[i] % len(CATEGORIES)],
            brand=f"brand{rng.integers(0, 30)}",
            colors=("red",) if i % 2 else ("blue",),
            embedding=vectors[i],
            embedding_model="test/none",
        )
        for i in range(n)
    ]


class CountingGraph(HnswGraph):
    """The real graph, counting searches (to see that HNSW, not the exact fallback, answered)."""

    searches = 0

    def search(self, vector, k, ef):
        self.searches += 1
        return super().search(vector, k, ef)


def ann_over(products: list[Product], **options) -> tuple[AnnIndex, VectorIndex]:
    store = LocalStore()
    store.upsert(products)
    exact = VectorIndex(store.load_vectors())
    graph = HnswGraph.empty(DIM)
    graph.add(exact.matrix, list(exact.ids), progress=False)
    return AnnIndex(exact, CountingGraph(graph.index, graph.labels), **options), exact


@pytest.fixture(scope="module")
def indexes():
    return ann_over(catalog())


def queries(n: int = 30, seed: int = 7) -> np.ndarray:
    return clustered(n, seed)[0]


def overlap(a, b) -> float:
    return len(set(a) & set(b)) / max(1, len(b))


def test_ann_agrees_with_exact(indexes):
    ann, exact = indexes
    before = ann.graph.searches
    recalls = []
    for q in queries():
        got, want = ann.rank(q, Filters(), 10, None, 50), exact.rank(q, Filters(), 10, None, 50)
        assert len(got.ids) == 10
        assert got.scores == sorted(got.scores, reverse=True)
        # ANN only chooses candidates: every reported score is the exact cosine
        exact_scores = dict(zip(exact.ids, exact.scores(q), strict=True))
        assert np.allclose(got.scores, [exact_scores[i] for i in got.ids], atol=1e-6)
        recalls.append(overlap(got.ids, want.ids))
    assert ann.graph.searches > before  # HNSW answered
    assert np.mean(recalls) >= 0.95


def test_store_index_switches_to_ann_above_threshold(tmp_path):
    store = LocalStore(tmp_path / "catalog.db")
    store.upsert(catalog(300))
    assert isinstance(StoreIndex(store, Settings(ann_threshold=1000)).current(), VectorIndex)
    index = StoreIndex(store, Settings(ann_threshold=100), progress=False).current()
    assert isinstance(index, AnnIndex) and len(index.graph) == 300


def test_search_service_passes_its_settings_to_the_index():
    embedder = OpenClipEmbedder(TINY_MODEL, "none")  # never loaded: a product query needs no model
    store = LocalStore()
    store.upsert([dataclasses.replace(p, embedding_model=embedder.model_id) for p in catalog(300)])
    service = SearchService(store, embedder, settings=Settings(ann_threshold=100))
    assert isinstance(service.ranker.current(), AnnIndex)
    result = service.similar_to(f"{3:064x}", top_k=5)
    assert len(result.matches) == 5 and f"{3:064x}" not in [m.product.id for m in result.matches]


def test_graph_is_saved_and_reloaded_without_rebuilding(tmp_path):
    path = tmp_path / "catalog.db"
    store = LocalStore(path)
    store.upsert(catalog(400))
    first = StoreIndex(store, Settings(ann_threshold=100), progress=False).current()
    saved = graph_path(store)
    assert saved.exists() and json.loads(saved.with_name(saved.name + ".json").read_text())["count"] == 400
    stamp = saved.stat().st_mtime_ns

    reopened = LocalStore(path)  # a new process would do exactly this
    again = StoreIndex(reopened, Settings(ann_threshold=100), progress=False).current()
    assert saved.stat().st_mtime_ns == stamp  # fresh: loaded, not rebuilt or rewritten
    q = queries(1)[0]
    assert again.rank(q, Filters(), 10, None, 20).ids == first.rank(q, Filters(), 10, None, 20).ids


def test_damaged_or_partial_graph_files_are_rebuilt(tmp_path):
    store = LocalStore(tmp_path / "catalog.db")
    store.upsert(catalog(300))
    StoreIndex(store, Settings(ann_threshold=100), progress=False).current()
    saved = graph_path(store)
    saved.write_bytes(b"not a faiss index")
    assert HnswGraph.load(saved) is None
    index = StoreIndex(store, Settings(ann_threshold=100), progress=False).current()
    assert len(index.graph) == 300 and HnswGraph.load(saved) is not None


def test_new_products_are_added_incrementally(tmp_path):
    store = LocalStore(tmp_path / "catalog.db")
    store.upsert(catalog(500))
    index = StoreIndex(store, Settings(ann_threshold=100), progress=False)
    old_labels = list(index.current().graph.labels)
    extra = catalog(100, seed=3, start=10_000)
    store.upsert(extra)
    updated = index.current()
    assert updated.graph.labels[:500] == old_labels  # appended, not rebuilt
    assert len(updated.graph) == 600 and len(updated) == 600
    for product in extra[:10]:
        assert updated.rank(product.embedding, Filters(), 1, None, 1).ids == [product.id]
    # a process started later picks up the saved, updated graph
    reloaded = HnswGraph.load(graph_path(store))
    assert reloaded is not None and reloaded[0].labels == updated.graph.labels


def test_deleted_and_re_embedded_products_are_replaced(tmp_path):
    store = LocalStore(tmp_path / "catalog.db")
    products = catalog(500)
    store.upsert(products)
    index = StoreIndex(store, Settings(ann_threshold=100), progress=False)
    index.current()
    gone, moved = products[0], products[1]
    store.delete([gone.id])
    new_vector = -moved.embedding  # far from where the graph has it
    store.upsert([dataclasses.replace(moved, embedding=new_vector)])
    updated = index.current()
    assert gone.id not in updated.rank(gone.embedding, Filters(), 10, None, 10).ids
    assert updated.rank(new_vector, Filters(), 1, None, 1).ids == [moved.id]
    assert updated.graph.labels.count("") == 2 and len(updated) == 499


def test_selective_filter_is_ranked_exactly_with_full_pages(indexes):
    ann, exact = indexes
    brand = Filters(brands=("brand4",))  # ~3% of the catalog
    for q in queries(10):
        # the exact answer up to float rounding: same ids and facets, ties within 1e-6 may swap
        assert_ranking_matches(ann.rank(q, brand, 12, None, 50), exact, q, brand, 12, 50)


def test_widening_fills_pages_under_a_restrictive_filter():
    # exact_share=1 lets widening run as far as it must instead of switching to exact early
    ann, exact = ann_over(catalog(), exact_share=1.0)
    category = Filters(categories=("bags",))  # ~17%: not selective, and far from most queries' clusters
    searches, recalls = [], []
    for q in queries(20):
        before = ann.graph.searches
        got, want = ann.rank(q, category, 20, None, 20), exact.rank(q, category, 20, None, 20)
        assert len(got.ids) == 20
        searches.append(ann.graph.searches - before)
        recalls.append(overlap(got.ids, want.ids))
    assert max(searches) > 2  # some queries had to widen (page + facets take 2 searches without widening)
    assert np.mean(recalls) >= 0.95


def test_min_score_never_drops_matches_that_exist(indexes):
    ann, exact = indexes
    for q in queries(10):
        want = exact.rank(q, Filters(colors=("red",)), 50, 0.6, 50)
        got = ann.rank(q, Filters(colors=("red",)), 50, 0.6, 50)
        assert all(s >= 0.6 for s in got.scores)
        assert overlap(got.ids, want.ids) >= 0.9 and len(got.ids) >= 0.9 * len(want.ids)


def test_a_stale_but_unchanged_graph_only_refreshes_its_meta(tmp_path):
    store = LocalStore(tmp_path / "catalog.db")
    products = catalog(300)
    store.upsert(products)
    StoreIndex(store, Settings(ann_threshold=100), progress=False).current()
    saved = graph_path(store)
    stamp = saved.stat().st_mtime_ns
    store.upsert(products)  # same products again: the version moves, the vectors do not
    StoreIndex(store, Settings(ann_threshold=100), progress=False).current()
    meta = json.loads(saved.with_name(saved.name + ".json").read_text())
    assert meta["store_version"] == store.version() and saved.stat().st_mtime_ns == stamp


# ----------------------------------------------------------------------------- background preparation (the app)


def test_background_index_serves_exact_at_once_then_switches_to_ann(tmp_path):
    store = LocalStore(tmp_path / "catalog.db")
    store.upsert(catalog(600))
    index = StoreIndex(store, Settings(ann_threshold=100), progress=False, background=True)
    assert index.status == "loading"
    q = queries(1)[0]
    first = index.current()
    assert isinstance(first, VectorIndex)  # searchable before any graph exists
    exact = first.rank(q, Filters(), 10, None, 20)
    assert index.join(timeout=60) and index.status == "ready"
    ann = index.current()
    assert isinstance(ann, AnnIndex) and len(ann.graph) == 600
    assert graph_path(store).exists()  # saved for the next start
    assert same_up_to_ties(ann.rank(q, Filters(), 10, None, 20), exact)  # ANN re-scores its candidates exactly


def test_background_job_of_an_outdated_version_does_not_win(tmp_path):
    store = LocalStore(tmp_path / "catalog.db")
    store.upsert(catalog(500))
    index = StoreIndex(store, Settings(ann_threshold=100), progress=False, background=True)
    index.current()
    store.upsert(catalog(100, seed=3, start=10_000))  # the catalog changes while the first graph is built
    assert len(index.current()) == 600
    assert index.join(timeout=60)
    final = index.current()
    assert (
        isinstance(final, AnnIndex)
        and len(final) == 600
        and sorted(filter(None, final.graph.labels)) == sorted(final.exact.ids.tolist())
    )


def test_a_failed_background_build_leaves_exact_search_serving(tmp_path, monkeypatch, caplog):
    import similarity.index.ann

    def broken(*args, **kwargs):
        raise MemoryError("no room for the graph")

    monkeypatch.setattr(similarity.index.ann, "attach", broken)
    store = LocalStore(tmp_path / "catalog.db")
    store.upsert(catalog(300))
    index = StoreIndex(store, Settings(ann_threshold=100), progress=False, background=True)
    assert isinstance(index.current(), VectorIndex)
    assert index.join(timeout=60) and index.status == "ready"
    assert (
        isinstance(index.current(), VectorIndex)
        and len(index.current().rank(queries(1)[0], Filters(), 5, None, 5).ids) == 5
    )
    assert "searches stay exact" in caplog.text


def test_index_status_when_the_store_is_down():
    from similarity.errors import StoreError

    class DownStore(LocalStore):
        def version(self) -> str:
            raise StoreError("The catalog store is unreachable.")

    index = StoreIndex(DownStore(), background=True)
    with pytest.raises(StoreError):
        index.warm()
    assert index.status == "unavailable"


def test_the_ann_builder_is_handed_in_at_a_seam(tmp_path):
    """StoreIndex(ann=...) builds large catalogs' graphs with the given builder, and hands it the previous index."""
    calls = []

    def builder(exact, store, version, previous, progress):
        calls.append((len(exact), version, previous))
        return AnnIndex(exact, HnswGraph.empty(exact.matrix.shape[1]))  # an empty graph: exact fallbacks only

    store = LocalStore(tmp_path / "catalog.db")
    store.upsert(catalog(150))
    index = StoreIndex(store, Settings(ann_threshold=100), progress=False, ann=builder)
    first = index.current()
    assert isinstance(first, AnnIndex) and calls == [(150, store.version(), None)]
    assert len(first.rank(queries(1)[0], Filters(), 5, None, 5).ids) == 5
    store.upsert(catalog(20, seed=3, start=150))  # > 10% of the catalog: reloaded (smaller changes are patched)
    assert isinstance(index.current(), AnnIndex) and calls[-1][0] == 170 and calls[-1][2] is first


def test_rows_patched_in_during_a_merge_get_merged_by_the_next_one(tmp_path):
    """A background merge that finds many rows added meanwhile starts the next merge itself (no later patch needed)."""
    release, calls = threading.Event(), []
    real = StoreIndex(LocalStore()).ann  # the default builder

    def gated(exact, store, version, previous, progress):
        calls.append(len(exact))
        if len(calls) == 2:  # the first merge waits until more rows have arrived
            assert release.wait(30)
        return real(exact, store, version, previous, progress)

    store = LocalStore(tmp_path / "catalog.db")
    store.upsert(catalog(600))
    tuning = Tuning(merge_rows=20, merge_share=0.0)
    index = StoreIndex(store, Settings(ann_threshold=100), progress=False, background=True, ann=gated, tuning=tuning)
    index.current()
    assert index.join(60) and isinstance(index.current(), AnnIndex)
    store.upsert(catalog(25, seed=4, start=10_000))  # 25 outside the graph: a merge starts (and waits)
    store.upsert(catalog(25, seed=5, start=20_000))  # 25 more while it runs
    release.set()
    assert index.join(60)
    final = index.current()
    assert calls == [600, 625, 650] and len(final.delta) == 0 and len(final) == 650
    assert sorted(filter(None, final.graph.labels)) == sorted(final.exact.ids.tolist())
