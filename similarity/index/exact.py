"""The exact in-memory index: cosine ranking with filter masks and disjunctive facets.

This package and ``search.py`` are the one place where ranking rules live:
score = cosine on L2-normalised vectors; order = score descending, ties by id; filters are
boolean masks applied before top-k (OR within a group, AND across groups).
``VectorIndex`` is an immutable snapshot; the ANN graph (``ann.py``) and the store-backed index
(``store_index.py``) build on it, so imports run one way: exact <- ann <- store_index.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..records import FACET_GROUPS, Facets, Filters
from ..store.base import Ranking, VectorBatch


class VectorIndex:
    """An immutable snapshot: contiguous float32 matrix, ids, and inverted facet lists."""

    def __init__(self, batch: VectorBatch, dtype: str = "float32") -> None:
        self.ids = np.asarray(batch.ids, dtype=object)
        # float16 halves memory; scores are still computed in float32 (see ``scores``)
        self.matrix = np.ascontiguousarray(batch.vectors, dtype=np.float16 if dtype == "float16" else np.float32)
        # per facet attribute: value names and a (rows, width) code matrix (-1 = none), for vectorised counts
        self.columns = {attr: _column(rows) for attr, rows in batch.facets.items()}
        self._name_rank = {attr: np.argsort(np.argsort(names)) for attr, (names, _) in self.columns.items()}
        # position of each row in id order, for deterministic tie-breaking
        self.id_rank = np.empty(len(self.ids), dtype=np.int64)
        self.id_rank[np.argsort(self.ids.astype(str), kind="stable")] = np.arange(len(self.ids))
        self.postings = {attr: _postings(*column) for attr, column in self.columns.items()}

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, vector: np.ndarray) -> np.ndarray:
        return self.scores_of(None, vector)

    def scores_of(self, rows: np.ndarray | None, vector: np.ndarray) -> np.ndarray:
        """Cosine scores of ``rows`` (None = all), always computed in float32."""
        vector = np.asarray(vector, dtype=np.float32)
        matrix = self.matrix if rows is None else self.matrix[rows]
        return matrix @ vector if matrix.dtype == np.float32 else _half_scores(matrix, vector)

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
        return self.top_among(rows, scores if rows is None else scores[rows], k, min_score)[0]

    def top_among(
        self, rows: np.ndarray | None, row_scores: np.ndarray, k: int, min_score: float | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The best ``k`` of ``rows`` (None = all rows) by score desc then id asc, with their scores."""
        if min_score is not None:
            keep = np.flatnonzero(row_scores >= min_score)
            rows, row_scores = (keep if rows is None else rows[keep]), row_scores[keep]
        n = len(row_scores)
        if k < n:
            part = np.argpartition(row_scores, (n - k - 1, n - k))
            kth = row_scores[part[n - k]]
            # rows tied with the k-th score beyond the partition must compete on id: rare, so scan only then
            picked = part[n - k :] if row_scores[part[n - k - 1]] < kth else np.flatnonzero(row_scores >= kth)
        else:
            picked = np.arange(n)
        chosen = picked if rows is None else rows[picked]
        picked_scores = row_scores[picked]
        order = np.lexsort((self.id_rank[chosen], -picked_scores))[:k]
        return chosen[order], picked_scores[order]

    def rank(self, vector: np.ndarray, filters: Filters, top_k: int, min_score: float | None, facet_n: int) -> Ranking:
        scores = self.scores(vector)

        def select(mask: np.ndarray | None, n: int) -> tuple[np.ndarray, np.ndarray]:
            rows = np.flatnonzero(mask) if mask is not None else None
            return self.top_among(rows, scores if rows is None else scores[rows], n, min_score)

        return self.ranking(filters, top_k, facet_n, select)

    def ranking(self, filters: Filters, top_k: int, facet_n: int, select: Selector) -> Ranking:
        """Page + disjunctive facets from ``select(mask, n)`` (best n rows, in order, with their scores).

        Shared by the exact and the ANN paths. One selection of max(top_k, facet_n) rows per distinct
        filter set serves both the page (its prefix) and the facets, since the order is total.
        """
        n = max(top_k, facet_n)
        best: dict[Filters, tuple[np.ndarray, np.ndarray]] = {}

        def rows_for(f: Filters) -> np.ndarray:
            if f not in best:
                best[f] = select(self.mask(f), n)
            return best[f][0]

        rows = rows_for(filters)[:top_k]
        scores = best[filters][1][:top_k]
        facets: Facets = {}
        for group, attr in FACET_GROUPS.items():
            facets[group] = self.counts(attr, rows_for(filters.without(group))[:facet_n])
        return Ranking([self.ids[r] for r in rows], [float(s) for s in scores], facets)

    def counts(self, attr: str, rows: np.ndarray) -> dict[str, int]:
        """How often each value of ``attr`` occurs in ``rows``, by count desc then value."""
        names, codes = self.columns[attr]
        found = codes[rows].ravel()
        tally = np.bincount(found[found >= 0], minlength=len(names))
        present = np.flatnonzero(tally)
        order = present[np.lexsort((self._name_rank[attr][present], -tally[present]))]
        return dict(zip([names[c] for c in order], tally[order].tolist(), strict=True))

    def browse(self, filters: Filters, offset: int, limit: int) -> tuple[list[str], int, Facets]:
        mask = self.mask(filters)
        rows = np.flatnonzero(mask) if mask is not None else np.arange(len(self))
        rows = rows[np.argsort(self.id_rank[rows], kind="stable")]
        facets: Facets = {}
        for group, attr in FACET_GROUPS.items():
            other = self.mask(filters.without(group))
            facets[group] = self.counts(attr, np.flatnonzero(other) if other is not None else np.arange(len(self)))
        return [self.ids[r] for r in rows[offset : offset + limit]], len(rows), facets


_EMPTY = np.zeros(0, dtype=np.int64)
_BLOCK = 2048  # rows per float16 -> float32 block (4 MB at 512-d)
Selector = Callable[[np.ndarray | None, int], tuple[np.ndarray, np.ndarray]]


def _half_scores(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """float16 rows . float32 vector, computed in float32 one block at a time (no full-size copy)."""
    out = np.empty(len(matrix), dtype=np.float32)
    for start in range(0, len(matrix), _BLOCK):
        out[start : start + _BLOCK] = matrix[start : start + _BLOCK].astype(np.float32) @ vector
    return out


def _column(rows: list[tuple[str, ...]]) -> tuple[list[str], np.ndarray]:
    """Facet values per row -> (value names, (rows, width) int codes padded with -1)."""
    vocab: dict[str, int] = {}
    width = max((len(values) for values in rows), default=0) or 1
    flat = [-1] * (len(rows) * width)
    for i, values in enumerate(rows):
        for j, value in enumerate(values):
            flat[i * width + j] = vocab.setdefault(value, len(vocab))
    dtype = np.int16 if len(vocab) < 2**15 else np.int32
    return list(vocab), np.asarray(flat, dtype=dtype).reshape(len(rows), width)


def _postings(names: list[str], codes: np.ndarray) -> dict[str, np.ndarray]:
    """Value -> ascending row numbers holding it."""
    rows, cols = np.nonzero(codes >= 0)
    values = codes[rows, cols]
    order = np.argsort(values, kind="stable")
    rows, bounds = rows[order], np.searchsorted(values[order], np.arange(len(names) + 1))
    return {name: rows[bounds[k] : bounds[k + 1]] for k, name in enumerate(names)}
