"""Exact search through the GPU code path (``TorchScorer``), run with torch on CPU tensors: rankings equal
numpy's up to float rounding, with filters, min_score, dead rows, patches, reloads and a catalog too big."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from similarity.config import Settings
from similarity.device import CPU, Device
from similarity.index import StoreIndex, VectorIndex
from similarity.index.torch_scores import FP16_ERROR, TorchScorer, gpu_scorer
from similarity.records import Filters
from similarity.store.local import LocalStore

from .helpers import make_products, random_unit_vectors
from .rankings import assert_ranking_matches, same_up_to_ties

FILTERS = [
    Filters(),
    Filters(categories=("bags",)),
    Filters(brands=("acme", "globex"), colors=("red",)),
    Filters(tags=("leather",), categories=("shoes", "watches")),
    Filters(categories=("nothing-like-this",)),
]


def near_tied_catalog(n: int = 3000, dim: int = 64) -> LocalStore:
    """Products whose vectors crowd around a few directions (many scores closer than fp16 can tell apart),
    plus exact duplicates (ties broken by id)."""
    rng = np.random.default_rng(11)
    centres = random_unit_vectors(4, dim, 3)
    vectors = centres[rng.integers(0, 4, n)] + rng.normal(scale=0.002, size=(n, dim)).astype(np.float32)
    vectors[n // 2 : n // 2 + 20] = vectors[n // 2]  # twenty identical vectors
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    products = make_products(n, dim, seed=4)
    for product, vector in zip(products, vectors, strict=True):
        product.embedding = vector
    store = LocalStore(":memory:")
    store.upsert(products)
    return store


@pytest.fixture(scope="module")
def store() -> LocalStore:
    return near_tied_catalog()


def queries(store: LocalStore, count: int = 6) -> np.ndarray:
    stored = store.load_vectors().vectors
    noise = np.random.default_rng(2).normal(scale=0.01, size=(count, stored.shape[1])).astype(np.float32)
    picked = stored[:: len(stored) // count][:count] + noise
    return np.vstack(
        [picked / np.linalg.norm(picked, axis=1, keepdims=True), random_unit_vectors(2, stored.shape[1], 9)]
    )


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_the_torch_path_ranks_as_numpy_does(store, dtype):
    index = VectorIndex(store.load_vectors(), dtype)
    scorer = TorchScorer("cpu")
    for vector in queries(store):
        for filters in FILTERS:
            for top_k, min_score in ((10, None), (40, None), (10, 0.5), (5, 0.999)):
                got = scorer.rank(index, vector, filters, top_k, min_score, 200)
                want = index.rank(vector, filters, top_k, min_score, 200)
                assert same_up_to_ties(got, want) and got.facets == want.facets
                if dtype == "float32":  # (the reference's checks re-score in float32 blocks: float32 rows only)
                    assert_ranking_matches(got, index, vector, filters, top_k, 200, min_score)


def test_the_candidate_window_holds_every_row_that_could_win(store):
    """fp16 scores alone would misorder this catalog: the window and the float32 re-scoring are what make it exact."""
    import torch

    index = VectorIndex(store.load_vectors())
    vector = queries(store)[0]
    exact = index.scores(vector)
    half = (torch.from_numpy(index.matrix).half() @ torch.from_numpy(vector).half()).float().numpy()
    assert np.abs(half - exact).max() <= FP16_ERROR
    assert list(np.argsort(-half, kind="stable")[:10]) != list(np.lexsort((index.ids.astype(str), -exact))[:10])
    got = TorchScorer("cpu").rank(index, vector, Filters(), 10, None, 50)
    assert got.ids == [index.ids[r] for r in np.lexsort((index.ids.astype(str), -exact))[:10]]


def test_a_store_index_on_the_torch_path_follows_patches_removals_and_reloads(tmp_path):
    store = LocalStore(tmp_path / "c.db")
    store.upsert(make_products(400, 16, seed=1))
    scorer = TorchScorer("cpu")
    index = StoreIndex(store, Settings(store_url="memory://"), scorer=scorer, progress=False)
    probe = random_unit_vectors(3, 16, 8)

    def check() -> None:
        reference = VectorIndex(store.load_vectors())
        for vector in probe:
            for filters in FILTERS[:3]:
                assert_ranking_matches(index.rank(vector, filters, 10, None, 100), reference, vector, filters, 10, 100)

    check()
    copied = scorer._matrix
    store.upsert(more_products(400, 30))  # appended rows
    store.delete([p.id for p in make_products(5, 16, seed=1)])  # removed rows are masked
    check()
    assert index.patches >= 1 and scorer._matrix is copied  # same buffer: only the new rows were copied
    store.upsert(more_products(1000, 200))  # a large change: reloaded, copied again
    check()
    assert index.reloads >= 2


def more_products(start: int, n: int) -> list:
    """``n`` products with new ids (``start`` on)."""
    return make_products(start + n, 16, seed=3)[start:]


def test_a_catalog_too_big_for_the_gpu_stays_on_the_cpu_with_a_log_line(store, caplog):
    index = StoreIndex(store, Settings(store_url="memory://"), scorer=TorchScorer("cpu", lambda: 1000), progress=False)
    vector = queries(store)[0]
    with caplog.at_level(logging.WARNING, logger="similarity.index.torch_scores"):
        got = index.rank(vector, Filters(), 10, None, 100)
        index.rank(vector, Filters(), 10, None, 100)
    assert got == VectorIndex(store.load_vectors()).rank(vector, Filters(), 10, None, 100)
    lines = [r.getMessage() for r in caplog.records if "does not fit" in r.getMessage()]
    assert len(lines) == 1 and "searching on the CPU" in lines[0]  # once, not per search
    assert index.scorer._matrix is None  # nothing was copied


def test_only_a_cuda_device_gets_a_gpu_index_and_it_lifts_the_graph_threshold(store):
    assert gpu_scorer(CPU) is None and gpu_scorer(Device("mps", "mps")) is None and gpu_scorer(None) is None
    assert gpu_scorer(Device("cuda:1", "cuda:1 NVIDIA L4", (8, 9))).device == "cuda:1"
    settings = Settings(store_url="memory://", ann_threshold=100)

    def refuse(*args):
        raise AssertionError("no ANN graph while a GPU holds the matrix")

    index = StoreIndex(store, settings, scorer=TorchScorer("cpu"), ann=refuse, progress=False)
    assert isinstance(index.current(), VectorIndex) and len(index.current()) > 100
