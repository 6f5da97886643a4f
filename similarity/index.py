"""In-memory vector index: exact cosine ranking with filter masks and disjunctive facets.

This module and ``search.py`` are the one place where ranking rules live:
score = cosine on L2-normalised vectors; order = score descending, ties by id; filters are
boolean masks applied before top-k (OR within a group, AND across groups).
"""

from __future__ import annotations

import threading
from collections import Counter

import numpy as np

from .errors import EmptyCatalogError
from .records import FACET_GROUPS, Facets, Filters
from .store.base import CatalogStore, Ranker, Ranking, VectorBatch


class VectorIndex:
    """An immutable snapshot: contiguous float32 matrix, ids, and inverted facet lists."""

    def __init__(self, batch: VectorBatch) -> None:
        self.ids = np.asarray(batch.ids, dtype=object)
        self.matrix = np.ascontiguousarray(batch.vectors, dtype=np.float32)
        self.facet_rows = batch.facets
        # position of each row in id order, for deterministic tie-breaking
        self.id_rank = np.empty(len(self.ids), dtype=np.int64)
        self.id_rank[np.argsort(self.ids.astype(str), kind="stable")] = np.arange(len(self.ids))
        self.postings = {attr: _postings(rows) for attr, rows in batch.facets.items()}

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, vector: np.ndarray) -> np.ndarray:
        return self.matrix @ np.asarray(vector, dtype=np.float32)

    def mask(self, filters: Filters) -> np.ndarray | None:
        """Rows passing every active filter group, or None when no filter is active."""
        mask = None
        for group, values in filters.groups().items():
            if values:
                group_mask = np.zeros(len(self), dtype=bool)
                for value in values:
                    group_mask[self.postings[FACET_GROUPS[group]].get(value, _EMPTY)] = True
                mask = group_mask if mask is None else mask & group_mask
        return mask

    def top(self, scores: np.ndarray, mask: np.ndarray | None, k: int, min_score: float | None) -> np.ndarray:
        """Row numbers of the best ``k`` rows (score desc, id asc) among those passing mask and min_score."""
        rows = np.flatnonzero(mask) if mask is not None else None
        if min_score is not None:
            passing = scores >= min_score if rows is None else scores[rows] >= min_score
            rows = np.flatnonzero(passing) if rows is None else rows[passing]
        candidate_scores = scores if rows is None else scores[rows]
        n = len(candidate_scores)
        if k < n:
            kth = np.argpartition(candidate_scores, n - k)[n - k :]
            # keep every row tied with the k-th score so ids decide among equals
            picked = np.flatnonzero(candidate_scores >= candidate_scores[kth].min())
        else:
            picked = np.arange(n)
        chosen = picked if rows is None else rows[picked]
        order = np.lexsort((self.id_rank[chosen], -scores[chosen]))[:k]
        return chosen[order]

    def facets(self, scores: np.ndarray, filters: Filters, n: int, min_score: float | None) -> Facets:
        """Disjunctive facets: per group, counts over the best ``n`` rows with every OTHER group's filter."""
        cache: dict[Filters, np.ndarray] = {}
        out: Facets = {}
        for group, attr in FACET_GROUPS.items():
            others = filters.without(group)
            if others not in cache:
                cache[others] = self.top(scores, self.mask(others), n, min_score)
            counts = Counter(v for row in cache[others] for v in self.facet_rows[attr][row])
            out[group] = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        return out

    def rank(self, vector: np.ndarray, filters: Filters, top_k: int, min_score: float | None, facet_n: int) -> Ranking:
        scores = self.scores(vector)
        rows = self.top(scores, self.mask(filters), top_k, min_score)
        facets = self.facets(scores, filters, facet_n, min_score)
        return Ranking([self.ids[r] for r in rows], [float(scores[r]) for r in rows], facets)

    def browse(self, filters: Filters, offset: int, limit: int) -> tuple[list[str], int, Facets]:
        mask = self.mask(filters)
        rows = np.flatnonzero(mask) if mask is not None else np.arange(len(self))
        rows = rows[np.argsort(self.id_rank[rows], kind="stable")]
        facets: Facets = {}
        for group, attr in FACET_GROUPS.items():
            other = self.mask(filters.without(group))
            counts = {v: len(idx) if other is None else int(other[idx].sum()) for v, idx in self.postings[attr].items()}
            facets[group] = dict(sorted(((v, c) for v, c in counts.items() if c), key=lambda kv: (-kv[1], kv[0])))
        return [self.ids[r] for r in rows[offset : offset + limit]], len(rows), facets


class StoreIndex(Ranker):
    """The shared index over a store: loaded once, reloaded when the store's version marker changes."""

    def __init__(self, store: CatalogStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._index: VectorIndex | None = None
        self._version: str | None = None

    def current(self) -> VectorIndex:
        version = self.store.version()
        if self._index is None or version != self._version:
            with self._lock:
                if self._index is None or version != self._version:
                    self._index, self._version = VectorIndex(self.store.load_vectors()), version
        if not len(self._index):
            raise EmptyCatalogError("The catalog is empty. Add products first: python -m data_seed --source demo")
        return self._index

    def rank(self, vector: np.ndarray, filters: Filters, top_k: int, min_score: float | None, facet_n: int) -> Ranking:
        return self.current().rank(vector, filters, top_k, min_score, facet_n)

    def browse(self, filters: Filters, offset: int, limit: int) -> tuple[list[str], int, Facets]:
        return self.current().browse(filters, offset, limit)


_EMPTY = np.zeros(0, dtype=np.int64)


def _postings(rows: list[tuple[str, ...]]) -> dict[str, np.ndarray]:
    lists: dict[str, list[int]] = {}
    for i, values in enumerate(rows):
        for value in values:
            lists.setdefault(value, []).append(i)
    return {value: np.asarray(idx, dtype=np.int64) for value, idx in lists.items()}
