"""Optional float16 storage of the exact matrix: half the memory, scores still computed in float32."""

from __future__ import annotations

import numpy as np

from similarity.config import Settings
from similarity.index import StoreIndex, VectorIndex
from similarity.records import Filters
from similarity.store.local import LocalStore

from .helpers import make_products, random_unit_vectors


def test_float16_scores_stay_within_1e_3_and_keep_the_top_10():
    store = LocalStore()
    store.upsert(make_products(2500, dim=512, seed=3))  # more rows than one float16 block, plus a tail
    batch = store.load_vectors()
    full, half = VectorIndex(batch), VectorIndex(batch, "float16")
    assert half.matrix.dtype == np.float16 and half.matrix.nbytes * 2 == full.matrix.nbytes
    overlaps = []
    for q in random_unit_vectors(20, 512, seed=9):
        a, b = full.scores(q), half.scores(q)
        assert b.dtype == np.float32 and np.abs(a - b).max() < 1e-3
        top_a = full.rank(q, Filters(), 10, None, 50)
        top_b = half.rank(q, Filters(), 10, None, 50)
        overlaps.append(len(set(top_a.ids) & set(top_b.ids)) / 10)
        assert np.allclose(top_a.scores[:1], top_b.scores[:1], atol=1e-3)
    assert np.mean(overlaps) >= 0.9


def test_float16_rows_score_like_the_whole_matrix():
    store = LocalStore()
    store.upsert(make_products(1500, dim=64, seed=4))
    half = VectorIndex(store.load_vectors(), "float16")
    q = random_unit_vectors(1, 64, seed=5)[0]
    rows = np.array([1400, 3, 1024, 77])
    assert np.allclose(half.scores_of(rows, q), half.scores(q)[rows], atol=1e-6)


def test_store_index_honours_vector_dtype():
    store = LocalStore()
    store.upsert(make_products(50, dim=16))
    index = StoreIndex(store, Settings(vector_dtype="float16")).current()
    assert index.matrix.dtype == np.float16
    ranking = index.rank(random_unit_vectors(1, 16, seed=1)[0], Filters(categories=("bags",)), 5, None, 20)
    assert len(ranking.ids) == 5 and ranking.scores == sorted(ranking.scores, reverse=True)
