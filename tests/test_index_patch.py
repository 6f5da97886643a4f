"""The patched index against a freshly loaded one: ids, vectors, facets, rankings (ties included), browsing;
the ANN path measured as recall; searches in threads during updates see one snapshot or the next."""

from __future__ import annotations

import dataclasses
import gc
import threading

import numpy as np
import pytest

from similarity.config import Settings
from similarity.index import StoreIndex, Tuning, VectorIndex, store_index
from similarity.records import Filters, Product
from similarity.store.local import LocalStore

from .helpers import make_products, random_unit_vectors
from .rankings import assert_ranking_matches, same_up_to_ties

BRANDS = ("acme", "globex", "initech", "umbrella", None)
COLORS = ("red", "blue", "black", "green", "white", "navy")
TAGS = ("leather", "canvas", "travel", "summer", "kids")
FILTERS = [
    Filters(),
    Filters.of(brands=["acme", "umbrella"]),
    Filters.of(categories=["shoes"], colors=["red", "navy"]),
    Filters.of(tags=["summer"]),
]


def tied_products(n: int, seed: int, dim: int = 8, start: int = 0) -> list[Product]:
    """Products with facet values and many exact ties (a third share one of a few vectors)."""
    rng = np.random.default_rng(seed)
    vectors = random_unit_vectors(n, dim, seed)
    shared = random_unit_vectors(4, dim, seed + 1000)
    out = []
    for i in range(n):
        vector = shared[rng.integers(0, 4)] if rng.random() < 0.33 else vectors[i]
        out.append(random_metadata(Product(id=f"{rng.integers(0, 2**62):016x}{start + i:048x}"), rng, vector))
    return out


def random_metadata(p: Product, rng: np.random.Generator, vector: np.ndarray | None = None) -> Product:
    return dataclasses.replace(
        p,
        category=str(rng.choice(["bags", "shoes", "watches"])),
        brand=BRANDS[rng.integers(0, len(BRANDS))],
        colors=tuple(dict.fromkeys(str(c) for c in rng.choice(COLORS, rng.integers(0, 4)))),
        tags=tuple(dict.fromkeys(str(t) for t in rng.choice(TAGS, rng.integers(0, 3)))),
        embedding=p.embedding if vector is None else vector,
        embedding_model="test/none",
    )


def random_change(store: LocalStore, rng: np.random.Generator, step: int) -> None:
    """One of: add a few, edit a few, re-embed one, remove a few (sizes kept under the reload share)."""
    ids = [p.id for batch in store.iter_products(500, vectors=False) for p in batch]
    kind = rng.integers(0, 4)
    if kind == 0:
        store.upsert(tied_products(int(rng.integers(1, 6)), seed=10_000 + step, start=10_000 * (step + 1)))
    elif kind == 1:
        for id_ in rng.choice(ids, int(rng.integers(1, 4)), replace=False):
            edited = random_metadata(Product(id=str(id_)), rng)
            store.edit(str(id_), {k: getattr(edited, k) for k in ("category", "brand", "colors", "tags")})
    elif kind == 2:
        product = store.get([str(rng.choice(ids))])[0]
        store.upsert([dataclasses.replace(product, embedding=random_unit_vectors(1, 8, step)[0])])
    else:
        store.delete([str(i) for i in rng.choice(ids, int(rng.integers(1, 4)), replace=False)])


def assert_same_index(patched, fresh: VectorIndex, queries: np.ndarray) -> None:
    exact = getattr(patched, "exact", patched)
    mine, theirs = exact.to_batch(), fresh.to_batch()
    assert mine.ids == theirs.ids
    assert np.array_equal(mine.vectors, theirs.vectors)
    assert mine.facets == theirs.facets
    for filters in FILTERS:
        assert patched.browse(filters, 0, 1000) == fresh.browse(filters, 0, 1000)
        for q in queries:  # equal up to float rounding: the patched matrix has another layout (tests/rankings.py)
            assert_ranking_matches(patched.rank(q, filters, 15, None, 40), fresh, q, filters, 15, 40)


@pytest.mark.parametrize("writer", ["same store", "other connection"])
def test_patched_index_equals_a_fresh_load_after_random_changes(tmp_path, writer):
    store = LocalStore(tmp_path / "catalog.db")
    store.upsert(tied_products(150, seed=1))
    index = StoreIndex(store, Settings(ann_threshold=10_000))
    index.current()
    # the index's own store patches it at each write; another connection (as another process) is read from
    # the feed by the next search, sometimes two changes at once
    other = store if writer == "same store" else LocalStore(tmp_path / "catalog.db")
    rng = np.random.default_rng(42)
    queries = np.vstack([random_unit_vectors(3, 8, 99), random_unit_vectors(4, 8, 1000)])  # the second: tied
    compactions = changes = 0
    for step in range(60):
        lineage = index.current().lineage
        for _ in range(int(rng.integers(1, 3))):
            random_change(other, rng, step)
            changes += 1
        if writer == "same store":
            assert index._version == store.version()  # patched by the write itself, before any search
        assert_same_index(index.current(), VectorIndex(store.load_vectors()), queries)
        compactions += index.current().lineage is not lineage
    assert index.reloads == 1
    assert index.patches >= changes if writer == "same store" else index.patches == 60  # one per write (edits: 1-3)
    assert compactions >= 1  # removed and replaced rows were dropped along the way, and it still agrees


def test_a_large_catalog_is_compacted_in_a_thread_and_catches_up_with_later_changes(monkeypatch):
    store = LocalStore()
    products = tied_products(100, seed=7)
    store.upsert(products)
    tuning = Tuning(reload_share=0.5, compact_min=4, compact_sync_rows=0)  # every catalog counts as large here
    index = StoreIndex(store, Settings(ann_threshold=10_000), background=True, tuning=tuning)
    lineage = index.current().lineage
    release, started = threading.Event(), threading.Event()
    compacted = store_index.compacted

    def slow_compaction(snapshot: VectorIndex):
        started.set()
        assert release.wait(30)
        return compacted(snapshot)

    monkeypatch.setattr(store_index, "compacted", slow_compaction)
    store.delete([p.id for p in products[:30]])  # 30% masked: past the compaction share
    assert len(index.current()) == 70 and started.wait(10)
    assert index.current().lineage is lineage  # searches go on with the masked snapshot meanwhile
    store.upsert(tied_products(3, seed=8, start=900))
    store.delete([products[40].id, products[41].id])
    store.edit(products[50].id, {"brand": "zeta"})
    queries = random_unit_vectors(3, 8, 11)
    assert_same_index(index.current(), VectorIndex(store.load_vectors()), queries)
    release.set()
    assert index.join(30)
    current = index.current()
    assert current.lineage is not lineage and current.dead < 30  # compacted, with the later changes applied again
    assert_same_index(current, VectorIndex(store.load_vectors()), queries)
    assert index.reloads == 1


def test_a_write_patches_the_index_at_once_and_a_failing_listener_never_fails_the_write(caplog):
    store = LocalStore()
    store.upsert(make_products(100))
    index = StoreIndex(store)
    index.current()
    store.subscribe(lambda: 1 / 0)
    assert store.upsert(tied_products(2, seed=9, start=700)).added == 2  # the write succeeds all the same
    assert "after a write failed" in caplog.text
    assert index._version == store.version() and (index.reloads, index.patches) == (1, 1)  # before any search
    store.upsert(tied_products(11, seed=10, start=800))  # a change that needs a reload: left to the next search
    assert index._version != store.version() and index.reloads == 1
    assert len(index.current()) == 113 and index.reloads == 2
    del index
    gc.collect()
    store.upsert(tied_products(1, seed=11, start=900))  # the index is gone: its listener is dropped
    assert len(store.__dict__["_listeners"]) == 1


def test_large_or_unknown_changes_reload():
    store = LocalStore()
    store.upsert(make_products(100))
    index = StoreIndex(store)
    index.current()
    store.upsert(tied_products(11, seed=5))  # 11% of the catalog
    index.current()
    assert (index.reloads, index.patches) == (2, 0)
    index._marker = "somebody-else:1.0"  # a marker the store does not know (e.g. another catalog file)
    store.delete([make_products(1)[0].id])
    assert len(index.current()) == 110 and index.reloads == 3


def test_another_process_writing_the_same_file_is_picked_up(tmp_path):
    path = tmp_path / "catalog.db"
    store, other = LocalStore(path), LocalStore(path)  # a second connection, as data_seed in another process
    products = tied_products(80, seed=3)
    store.upsert(products)
    index = StoreIndex(store)
    index.current()
    other.upsert(tied_products(3, seed=4, start=500))
    other.delete([products[0].id])
    other.edit(products[1].id, {"brand": "zeta"})
    assert_same_index(index.current(), VectorIndex(store.load_vectors()), random_unit_vectors(3, 8, 5))
    assert index.patches == 1 and products[0].id not in index.current().to_batch().ids


# ----------------------------------------------------------------------------- the ANN path


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(7).normal(size=(30, dim))
    x = centres[rng.integers(0, 30, n)] + rng.normal(size=(n, dim)) * 0.3
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_ann_path_after_random_changes_keeps_recall_and_never_shows_removed(tmp_path):
    pytest.importorskip("faiss")
    dim, rng = 32, np.random.default_rng(3)

    def products(n: int, seed: int, start: int) -> list[Product]:
        vectors = clustered(n, dim, seed)
        return [random_metadata(Product(id=f"{start + i:064x}"), rng, vectors[i]) for i in range(n)]

    store = LocalStore(tmp_path / "catalog.db")
    store.upsert(products(1500, 1, 0))
    # small merge threshold: the graph takes patched rows in along the way, as the app does in the background
    index = StoreIndex(store, Settings(ann_threshold=100), progress=False, tuning=Tuning(merge_rows=60))
    first = index.current()
    removed: set[str] = set()
    writes = 0
    for step in range(25):
        ids = [p.id for b in store.iter_products(1000, vectors=False) for p in b]
        gone = [str(i) for i in rng.choice(ids, 5, replace=False)]
        store.delete(gone)
        removed |= set(gone)
        store.upsert(products(8, 100 + step, 10_000 + 100 * step))
        moved = store.get([str(rng.choice(ids))])
        if moved and moved[0].id not in removed:
            store.upsert([dataclasses.replace(moved[0], embedding=clustered(1, dim, 500 + step)[0])])
            writes += 1
        store.edit(str(rng.choice([i for i in ids if i not in removed])), {"brand": "zeta"})
        writes += 3
        current = index.current()
        fresh = VectorIndex(store.load_vectors())
        assert current.exact.to_batch().ids == fresh.to_batch().ids
        recalls = []
        for q in clustered(10, dim, 900 + step):
            for filters in (Filters(), Filters.of(colors=["red", "blue"])):
                got, want = current.rank(q, filters, 10, None, 30), fresh.rank(q, filters, 10, None, 30)
                assert not removed & set(got.ids)
                recalls.append(len(set(got.ids) & set(want.ids)) / max(1, len(want.ids)))
        assert np.mean(recalls) >= 0.95
        assert np.all(np.diff(current.delta) > 0)  # ascending: scored over a slice of the matrix
        dense = current.exact.scores_of(current.delta, q, ascending=True)
        assert np.allclose(dense, current.exact.scores_of(current.delta, q), atol=1e-6)
    assert index.reloads == 1 and index.patches == writes  # each write through the store patched it at once
    assert current.graph is not first.graph  # merged into a new graph copy along the way
    assert len(current.delta) <= 60 + 20


# ----------------------------------------------------------------------------- concurrency


def test_searches_during_updates_see_one_snapshot_and_never_a_removed_product():
    store = LocalStore()
    store.upsert(tied_products(200, seed=8))
    index = StoreIndex(store)
    queries = random_unit_vectors(2, 8, 77)
    states: list[list[tuple]] = []  # expected answers per catalog state, in order

    def expected() -> list:
        fresh = VectorIndex(store.load_vectors())
        return [fresh.rank(q, Filters(), 20, None, 50) for q in queries]

    states.append(expected())
    index.current()
    removed: set[str] = set()
    stop, errors, seen = threading.Event(), [], []

    def reader() -> None:
        while not stop.is_set():
            gone = set(removed)  # removals that had returned before this search started
            try:
                answer = [index.rank(q, Filters(), 20, None, 50) for q in queries[:1]]
                snapshot = index.current()
                both = [snapshot.rank(q, Filters(), 20, None, 50) for q in queries]
            except BaseException as exc:  # reported by the test
                errors.append(exc)
                return
            assert not gone & set(answer[0].ids), "a removed product was returned"
            seen.append((answer, both))

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    rng = np.random.default_rng(5)
    for step in range(40):
        ids = [p.id for b in store.iter_products(500, vectors=False) for p in b]
        gone = [str(i) for i in rng.choice(ids, 2, replace=False)]
        store.delete(gone)
        removed.update(gone)
        states.append(expected())
        store.upsert(tied_products(2, seed=300 + step, start=1000 * (step + 1)))
        states.append(expected())
    stop.set()
    for t in threads:
        t.join(30)
    assert not errors
    assert len(seen) > 20
    for answer, both in seen:  # equal up to float rounding: a patched snapshot has another matrix layout
        assert any(same_up_to_ties(answer[0], state[0]) for state in states)  # one state's answer, never a mix
        # two queries on one snapshot: the same state for both
        assert any(all(map(same_up_to_ties, both, state)) for state in states)
