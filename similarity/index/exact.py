"""The exact in-memory index: cosine ranking with filter masks and disjunctive facets.

This package and ``search.py`` are the one place where ranking rules live:
score = cosine on L2-normalised vectors; order = score descending, ties by id; filters are
boolean masks applied before top-k (OR within a group, AND across groups).
``VectorIndex`` is an immutable snapshot; the ANN graph (``ann.py``) and the store-backed index
(``store_index.py``) build on it, so imports run one way: exact <- ann <- store_index.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np

from ..records import FACET_GROUPS, Facets, Filters, PriceRange
from ..store.base import VectorBatch
from ..store.ranking import Ranking
from .columns import Columns, codes_of, name_rank, postings_of
from .rows import Buffer, IdOrder, Lineage


class VectorIndex:
    """An immutable snapshot: float32 matrix, ids, facet codes and postings, and a mask of live rows.

    ``patch.patched`` derives the next snapshot from a change (rows appended, replaced rows and removed
    ones masked), sharing this one's buffers (``rows.py``), so an update costs the size of the change.
    """

    def __init__(self, batch: VectorBatch, dtype: str = "float32") -> None:
        # float16 halves memory; scores are still computed in float32 (see ``scores``)
        matrix = np.ascontiguousarray(batch.vectors, dtype=np.float16 if dtype == "float16" else np.float32)
        columns: Columns = {}
        for attr, values in batch.facets.items():
            vocab: dict[str, int] = {}
            columns[attr] = (vocab, codes_of(values, vocab, max((len(v) for v in values), default=0) or 1))
        ids = np.asarray(batch.ids, dtype=object)
        order = np.argsort(ids.astype(str), kind="stable").astype(np.int64)
        self._setup(ids, Buffer.of(matrix), columns, order, Buffer.of(batch.price_column()))

    def _setup(self, ids: np.ndarray, matrix: Buffer, columns: Columns, order: np.ndarray, prices: Buffer) -> None:
        """Rows with encoded facet columns (per attribute: value -> code, a (rows, width) code matrix,
        -1 = none), prices (NaN = none) and their id order; the postings (value -> rows) are derived here."""
        self.rows = len(ids)  # physical rows, dead ones included
        self._matrix = matrix
        self._prices = prices
        self._ids = Buffer.of(ids)
        self._alive: Buffer | None = None  # the live-row mask; None: every row is live
        self.live = self.rows
        self._vocab = {attr: vocab for attr, (vocab, _) in columns.items()}
        self._codes = {attr: Buffer.of(codes) for attr, (_, codes) in columns.items()}
        self._postings: dict[str, dict[str, tuple[Buffer, int]]] = {}
        for attr, (vocab, codes) in columns.items():
            self._postings[attr] = {k: (Buffer.of(r, slack=False), len(r)) for k, r in postings_of(vocab, codes)}
        self._name_rank = {attr: name_rank(vocab) for attr, vocab in self._vocab.items()}
        self.order = IdOrder(order)
        self.lineage = Lineage.of(ids)
        self.lineage.head = self

    def __len__(self) -> int:
        return self.live

    @property
    def ids(self) -> np.ndarray:
        """Id of every physical row (dead rows included: check ``alive``)."""
        return self._ids.view(self.rows)

    @property
    def alive(self) -> np.ndarray | None:
        """Which physical rows are live (None: all of them)."""
        return None if self._alive is None else self._alive.view(self.rows)

    @property
    def matrix(self) -> np.ndarray:
        return self._matrix.view(self.rows)

    @property
    def prices(self) -> np.ndarray:
        """Price of every physical row (NaN: none)."""
        return self._prices.view(self.rows)

    @property
    def columns(self) -> dict[str, tuple[list[str], np.ndarray]]:
        return {attr: (list(vocab), self._codes[attr].view(self.rows)) for attr, vocab in self._vocab.items()}

    def live_rows(self) -> np.ndarray:
        return np.arange(self.rows) if self.alive is None else np.flatnonzero(self.alive)

    def id_rows(self) -> dict[str, int]:
        """Live id -> row of this snapshot (O(n): for graph builds, not for searches)."""
        ids = self.ids
        return {ids[r]: int(r) for r in self.live_rows()}

    def to_batch(self) -> VectorBatch:
        """The live rows in id order, as a store would load them (tests compare with a fresh load)."""
        rows = self.order.rows(self.ids, self.alive)
        facets = {}
        for attr, (names, codes) in self.columns.items():
            facets[attr] = [tuple(names[c] for c in codes[r] if c >= 0) for r in rows]
        return VectorBatch(self.ids[rows].tolist(), self.matrix[rows].astype(np.float32), facets, self.prices[rows])

    def scores(self, vector: np.ndarray) -> np.ndarray:
        return self.scores_of(None, vector)

    def scores_of(self, rows: np.ndarray | None, vector: np.ndarray, ascending: bool = False) -> np.ndarray:
        """Cosine scores of ``rows`` (None = all), always computed in float32. ``ascending`` rows that mostly
        fill their range (rows appended by patches) are scored over a slice: no gathered copy of the rows."""
        vector = np.asarray(vector, dtype=np.float32)
        if ascending and rows is not None and len(rows) and rows[-1] - rows[0] < 2 * len(rows):
            return self._scores(self.matrix[rows[0] : rows[-1] + 1], vector)[rows - rows[0]]
        return self._scores(self.matrix if rows is None else self.matrix[rows], vector)

    @staticmethod
    def _scores(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
        return matrix @ vector if matrix.dtype == np.float32 else _half_scores(matrix, vector)

    def filter_mask(self, filters: Filters) -> np.ndarray | None:
        """Rows passing every active filter group (dead rows too), or None when no filter is active."""
        mask = None
        for group, values in filters.groups().items():
            if values:
                group_mask = np.zeros(self.rows, dtype=bool)
                postings = self._postings[FACET_GROUPS[group]]
                for value in values:
                    if value in postings:
                        buffer, n = postings[value]
                        group_mask[buffer.view(n)] = True
                mask = group_mask if mask is None else mask & group_mask
        if filters.priced:
            in_range = filters.price_mask(self.prices)
            mask = in_range if mask is None else mask & in_range
        return mask

    def mask(self, filters: Filters) -> np.ndarray | None:
        """Live rows passing every active filter group, or None when that is every row."""
        mask = self.filter_mask(filters)
        if self.alive is None or mask is None:
            return self.alive if mask is None else mask
        return mask & self.alive

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
        order = np.lexsort((self.ids[chosen].astype(str), -picked_scores))[:k]  # ties by id
        return chosen[order], picked_scores[order]

    def rank(self, vector: np.ndarray, filters: Filters, top_k: int, min_score: float | None, facet_n: int) -> Ranking:
        scores = self.scores(vector)

        def select(filters: Filters, n: int) -> tuple[np.ndarray, np.ndarray]:
            mask = self.mask(filters)
            rows = np.flatnonzero(mask) if mask is not None else None
            return self.top_among(rows, scores if rows is None else scores[rows], n, min_score)

        return self.ranking(filters, top_k, facet_n, select)

    def ranking(self, filters: Filters, top_k: int, facet_n: int, select: Selector) -> Ranking:
        """Page + disjunctive facets from ``select(filters, n)`` (best n live rows, in order, with scores).

        Shared by the exact and the ANN paths. One selection of max(top_k, facet_n) rows per distinct
        filter set serves both the page (its prefix) and the facets, since the order is total.
        """
        n = max(top_k, facet_n)
        best: dict[Filters, tuple[np.ndarray, np.ndarray]] = {}

        def rows_for(f: Filters) -> np.ndarray:
            if f not in best:
                best[f] = select(f, n)
            return best[f][0]

        rows = rows_for(filters)[:top_k]
        scores = best[filters][1][:top_k]
        facets: Facets = {}
        for group, attr in FACET_GROUPS.items():
            facets[group] = self.counts(attr, rows_for(filters.without(group))[:facet_n])
        prices = self.price_range(rows_for(filters.without_price())[:facet_n])
        return Ranking([self.ids[r] for r in rows], [float(s) for s in scores], facets, prices)

    def price_range(self, rows: np.ndarray | None = None) -> PriceRange:
        """The price range of ``rows`` (None: every live row) and how many of them have no price."""
        if rows is None:
            rows = self.live_rows()
        prices = self.prices[rows]
        return PriceRange.of(prices[~np.isnan(prices)], len(rows))

    def counts(self, attr: str, rows: np.ndarray) -> dict[str, int]:
        """How often each value of ``attr`` occurs in ``rows``, by count desc then value."""
        names, codes = list(self._vocab[attr]), self._codes[attr].view(self.rows)
        found = codes[rows].ravel()
        tally = np.bincount(found[found >= 0], minlength=len(names))
        present = np.flatnonzero(tally)
        order = present[np.lexsort((self._name_rank[attr][present], -tally[present]))]
        return dict(zip([names[c] for c in order], tally[order].tolist(), strict=True))

    def browse(self, filters: Filters, offset: int, limit: int) -> tuple[list[str], int, Facets]:
        mask = self.mask(filters)
        rows = self.order.rows(self.ids, self.alive)  # live rows in id order
        rows = rows[mask[rows]] if mask is not None else rows
        facets: Facets = {}
        for group, attr in FACET_GROUPS.items():
            other = self.mask(filters.without(group))
            facets[group] = self.counts(attr, np.flatnonzero(other) if other is not None else np.arange(self.rows))
        return [self.ids[r] for r in rows[offset : offset + limit]], len(rows), facets

    def memory_bytes(self) -> int:
        """Bytes of the arrays behind this snapshot, spare capacity and the id -> row map included."""
        total = self._matrix.data.nbytes + self._ids.data.nbytes + self.order.base.nbytes + self._prices.data.nbytes
        total += sum(b.data.nbytes for b in self._codes.values())
        total += sum(b.data.nbytes for postings in self._postings.values() for b, _ in postings.values())
        return total + (self.alive.nbytes if self.alive is not None else 0) + sys.getsizeof(self.lineage.row_of)

    @property
    def dead(self) -> int:
        return self.rows - self.live


_BLOCK = 2048  # rows per float16 -> float32 block (4 MB at 512-d)
Selector = Callable[[Filters, int], tuple[np.ndarray, np.ndarray]]


def _half_scores(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """float16 rows . float32 vector, computed in float32 one block at a time (no full-size copy)."""
    out = np.empty(len(matrix), dtype=np.float32)
    for start in range(0, len(matrix), _BLOCK):
        out[start : start + _BLOCK] = matrix[start : start + _BLOCK].astype(np.float32) @ vector
    return out
