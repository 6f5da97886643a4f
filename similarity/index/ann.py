"""Approximate search for large local catalogs: a faiss HNSW graph (``graph.py``) over the exact index's rows.

HNSW only proposes candidates. Every score is recomputed exactly from the matrix and the order,
filters and facets come from ``VectorIndex``, so ANN can only cost recall, never change semantics.
A filter that keeps few products is ranked exactly over its rows; a broader one searches HNSW for
enough candidates and widens until the page is full (falling back to exact when widening gets
expensive), so a page never comes back short while enough matching products exist.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import numpy as np

from .exact import VectorIndex
from .graph import HnswGraph, graph_path
from .patch import Patch

if TYPE_CHECKING:
    from ..records import Facets, Filters, PriceRange
    from ..store.base import CatalogStore
    from ..store.ranking import Ranking

log = logging.getLogger(__name__)

EF_SEARCH = 128  # floor; a search asks max(EF_SEARCH, candidates), and the service asks 200 (facets)
SELECTIVE = 0.10  # a filter keeping less than this share of the catalog is ranked exactly
MARGIN = 2.0  # extra candidates per wanted result under a (non-selective) filter
EXACT_SHARE = 0.015  # HNSW asked for more candidates than this share of the catalog is slower than exact
GATHER_SHARE = 0.25  # exact over a filter: copy out its rows below this share, else score all rows
REBUILD_DEAD = 0.20  # rebuild the graph when this share of its labels is deleted/replaced
_CHECK_CHUNK = 65_536


class AnnIndex:
    """The exact index plus an HNSW graph; same ``rank``/``browse`` contract as ``VectorIndex``.

    Rows the graph does not hold yet (``delta``: products added or replaced by patches) are scored
    exactly beside the graph's candidates; removed and replaced rows are masked and their labels
    marked deleted. A background merge folds the delta into a copy of the graph (``attach``).
    """

    def __init__(
        self, exact: VectorIndex, graph: HnswGraph, *, ef_search: int = EF_SEARCH, exact_share: float = EXACT_SHARE
    ) -> None:
        row_of = exact.id_rows()
        label_rows = np.fromiter((row_of.get(i, -1) if i else -1 for i in graph.labels), np.int64, len(graph))
        self._setup(exact, graph, label_rows, ef_search, exact_share)

    def _setup(
        self, exact: VectorIndex, graph: HnswGraph, label_rows: np.ndarray, ef_search: int, exact_share: float
    ) -> None:
        self.exact = exact
        self.graph = graph
        self.ef_search = ef_search
        self.exact_share = exact_share  # beyond this many candidates (share of catalog) exact is cheaper
        alive = exact.alive
        if alive is not None:  # labels of removed or replaced rows are deleted from the graph
            dead = np.flatnonzero((label_rows >= 0) & ~alive[np.maximum(label_rows, 0)])
            for label in dead.tolist():
                graph.labels[label] = ""
            label_rows = label_rows.copy()
            label_rows[dead] = -1
        self.label_rows = label_rows  # graph label -> row of ``exact`` (-1: deleted), shared by patches
        self.row_label = np.full(exact.rows, -1, dtype=np.int64)
        live = np.flatnonzero(label_rows >= 0)
        self.row_label[label_rows[live]] = live
        covered = self.row_label >= 0
        self.delta = np.flatnonzero(~covered if alive is None else alive & ~covered)
        self.dead_share = 1.0 - len(live) / len(graph) if len(graph) else 0.0

    def patched(self, patch: Patch) -> AnnIndex:
        """The same graph over the patched exact snapshot: new rows join the delta, dead labels are marked."""
        out = object.__new__(AnnIndex)
        out.__dict__.update(self.__dict__)
        out.exact = patch.index
        killed = patch.killed[patch.killed < len(self.row_label)]
        labels = self.row_label[killed]
        for label in labels[labels >= 0].tolist():
            self.graph.labels[label] = ""  # older snapshots read label_rows, never the labels
        alive = patch.index.alive
        out.delta = np.concatenate([self.delta[alive[self.delta]] if alive is not None else self.delta, patch.appended])
        covered_live = len(patch.index) - len(out.delta)
        out.dead_share = 1.0 - covered_live / len(self.graph) if len(self.graph) else 0.0
        return out

    def over(self, exact: VectorIndex, remap: np.ndarray | None = None) -> AnnIndex:
        """This graph over ``exact``: a later snapshot of its lineage, or a compaction (``remap``: old -> new row)."""
        label_rows = self.label_rows
        if remap is not None:
            label_rows = np.where(label_rows >= 0, remap[np.maximum(label_rows, 0)], -1)
        out = object.__new__(AnnIndex)
        out._setup(exact, self.graph, label_rows, self.ef_search, self.exact_share)
        return out

    def __len__(self) -> int:
        return len(self.exact)

    def rank(self, vector: np.ndarray, filters: Filters, top_k: int, min_score: float | None, facet_n: int) -> Ranking:
        vector = np.asarray(vector, dtype=np.float32)

        def select(f: Filters, n: int) -> tuple[np.ndarray, np.ndarray]:
            mask = self.exact.mask(f)
            if self.exact.filter_mask(f) is None:  # no filter: removed rows are masked inside _search
                return self._search(vector, None, len(self), n, min_score)
            matching = int(np.count_nonzero(mask))
            if matching < SELECTIVE * len(self):
                return self._exact(vector, mask, matching, n, min_score)
            return self._search(vector, mask, matching, n, min_score)

        return self.exact.ranking(filters, top_k, facet_n, select)

    def browse(self, filters: Filters, offset: int, limit: int) -> tuple[list[str], int, Facets]:
        return self.exact.browse(filters, offset, limit)

    def price_range(self) -> PriceRange:
        return self.exact.price_range()

    def _exact(
        self, vector: np.ndarray, mask: np.ndarray | None, matching: int, n: int, min_score: float | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact over the filter's rows: gather them when few, else score everything (no big copy)."""
        mask = self.exact.alive if mask is None else mask
        rows = np.flatnonzero(mask) if mask is not None else None
        if rows is not None and matching < GATHER_SHARE * len(self):
            return self.exact.top_among(rows, self.exact.scores_of(rows, vector), n, min_score)
        scores = self.exact.scores(vector)
        return self.exact.top_among(rows, scores if rows is None else scores[rows], n, min_score)

    def _search(
        self, vector: np.ndarray, mask: np.ndarray | None, matching: int, n: int, min_score: float | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """HNSW candidates rescored exactly, widened until ``n`` pass the filter (or exact is cheaper)."""
        margin = MARGIN if mask is not None else 1.0
        k = math.ceil(n * len(self) / max(matching, 1) * margin / max(1.0 - self.dead_share, 0.5))
        # rows not in the graph yet are few: always scored exactly, and they count toward the page
        delta = self.delta
        delta_scores = self.exact.scores_of(delta, vector, ascending=True)  # appended rows: ascending
        delta_ok = np.ones(len(delta), dtype=bool) if mask is None else mask[delta]
        if min_score is not None:
            delta_ok &= delta_scores >= min_score
        delta, delta_scores = delta[delta_ok], delta_scores[delta_ok]
        while k <= max(n, self.exact_share * len(self)):
            labels = self.graph.search(vector, k, max(self.ef_search, k))
            rows = self.label_rows[labels]
            rows = rows[rows >= 0]
            if self.exact.alive is not None:  # removed or replaced by a patch since the graph was set up
                rows = rows[self.exact.alive[rows]]
            scores = self.exact.scores_of(rows, vector)
            # once candidates fall below min_score, wider searches only find lower scores
            past_threshold = min_score is not None and len(scores) > 0 and float(scores.min()) < min_score
            ok = np.ones(len(rows), dtype=bool) if mask is None else mask[rows]
            if min_score is not None:
                ok &= scores >= min_score
            # HNSW orders its farthest candidates least reliably, so the page must fill from the nearer part
            head = math.ceil(len(rows) / margin)
            passing = int(np.count_nonzero(ok[:head])) + len(delta)
            if passing >= n or past_threshold:
                rows, scores = np.concatenate([rows[ok], delta]), np.concatenate([scores[ok], delta_scores])
                return self.exact.top_among(rows, scores, n, None)
            if not passing:  # no match near the query: the best matches are far off, where only exact is reliable
                break
            # widen by the pass rate near the query (at least double)
            k = max(2 * k, math.ceil(n * head / passing * MARGIN))
        return self._exact(vector, mask, matching, n, min_score)


def attach(
    exact: VectorIndex,
    store: CatalogStore,
    version: str,
    previous: AnnIndex | None = None,
    progress: bool = True,
) -> AnnIndex:
    """An ``AnnIndex`` for ``exact``: reuse the graph in memory or on disk, update it, or rebuild it."""
    path = graph_path(store)
    graph, fresh = None, False
    if previous is not None and previous.exact.lineage is exact.lineage:  # a patched snapshot: rows are known
        graph = previous.graph.copy()  # searches may still be running on the previous one
        _merge(graph, previous.label_rows, exact, progress)
        if graph.labels.count("") > REBUILD_DEAD * len(graph):
            graph = _build(exact, progress)
        if path is not None:
            graph.save(path, {"store_version": version, "count": len(exact)})
        return AnnIndex(exact, graph)
    if previous is not None and previous.graph.dim == exact.matrix.shape[1]:
        graph = previous.graph.copy()  # searches may still be running on the previous one
    elif path is not None and (loaded := HnswGraph.load(path)) is not None:
        graph, meta = loaded
        fresh = meta.get("store_version") == version
    changed = graph is None or graph.dim != exact.matrix.shape[1]
    if changed:
        graph = _build(exact, progress)
    else:
        changed = _update(graph, exact, check_vectors=not fresh, progress=progress)
    if path is not None and (changed or not fresh):
        # unchanged but stale (e.g. an idempotent re-upsert): refresh only the meta, so the next start is fresh
        graph.save(path, {"store_version": version, "count": len(exact)}, graph=changed)
    return AnnIndex(exact, graph)


def _build(exact: VectorIndex, progress: bool) -> HnswGraph:
    log.info("Building the ANN index for %d products (one-off; it is saved next to the catalog)", len(exact))
    graph = HnswGraph.empty(exact.matrix.shape[1])
    if exact.alive is None:
        graph.add(exact.matrix, list(exact.ids), progress)
    else:
        rows = exact.live_rows()
        graph.add(exact.matrix[rows], exact.ids[rows].tolist(), progress)
    return graph


def _merge(graph: HnswGraph, label_rows: np.ndarray, exact: VectorIndex, progress: bool) -> None:
    """Fold a patched snapshot into ``graph`` (labelled by ``label_rows``): dead labels marked, new rows added."""
    alive = exact.alive if exact.alive is not None else np.ones(exact.rows, dtype=bool)
    live = label_rows >= 0
    for label in np.flatnonzero(live & ~alive[np.maximum(label_rows, 0)]).tolist():
        graph.labels[label] = ""
    covered = np.zeros(exact.rows, dtype=bool)
    covered[label_rows[live]] = True
    new_rows = np.flatnonzero(alive & ~covered)
    if len(new_rows):
        graph.add(exact.matrix[new_rows], exact.ids[new_rows].tolist(), progress)


def _update(graph: HnswGraph, exact: VectorIndex, check_vectors: bool, progress: bool) -> bool:
    """Bring ``graph`` in line with ``exact`` in place: drop deleted/changed, add new. True if it changed."""
    row_of = exact.id_rows()
    rows = np.fromiter((row_of.get(i, -1) if i else -1 for i in graph.labels), np.int64, len(graph))
    named = np.fromiter((bool(i) for i in graph.labels), bool, len(graph))
    dead = np.flatnonzero((rows < 0) & named).tolist()
    if check_vectors:
        dead += _changed_labels(graph, exact, rows)
    for label in dead:
        graph.labels[label] = ""
        rows[label] = -1
    covered = np.zeros(exact.rows, dtype=bool) if exact.alive is None else ~exact.alive  # dead rows: never added
    covered[rows[rows >= 0]] = True
    new_rows = np.flatnonzero(~covered)
    if graph.labels and (graph.labels.count("") + len(new_rows)) / (len(graph) + len(new_rows)) > REBUILD_DEAD:
        log.info("Many products changed since the ANN index was saved; rebuilding it")
        rebuilt = _build(exact, progress)
        graph.index, graph.labels = rebuilt.index, rebuilt.labels
        return True
    if len(new_rows):
        graph.add(exact.matrix[new_rows], [exact.ids[r] for r in new_rows], progress)
    return bool(dead) or bool(len(new_rows))


def _changed_labels(graph: HnswGraph, exact: VectorIndex, rows: np.ndarray) -> list[int]:
    """Live labels whose stored vector no longer matches the catalog's (e.g. re-embedded products)."""
    changed: list[int] = []
    for start in range(0, len(graph), _CHECK_CHUNK):
        stop = min(start + _CHECK_CHUNK, len(graph))
        part = rows[start:stop]
        live = np.flatnonzero(part >= 0)
        if not len(live):
            continue
        stored = graph.index.reconstruct_n(start, stop - start)[live]
        current = exact.matrix[part[live]].astype(np.float32)
        # float16 storage rounds to ~1e-3; a different vector differs far more
        far = np.abs(stored - current).max(axis=1) > 1e-2
        changed.extend(int(start + i) for i in live[far])
    return changed
