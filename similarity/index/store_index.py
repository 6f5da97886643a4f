"""``StoreIndex``: the shared index over a catalog store, patched from the store's change feed.

When the store's version marker moves, the index asks the store what changed since its feed marker, with
the rows (``CatalogStore.changed_rows``), and derives a patched snapshot (rows appended, removed ones masked);
it reloads everything only when the change is large (> ``Tuning.reload_share`` of the catalog) or the marker
is unknown. Searches hold one snapshot from start to end; the new one is swapped in atomically.
A write through the store object itself patches the index before it returns (``CatalogStore.subscribe``);
writes by other processes (e.g. ``data_seed``) are read from the feed by the next search.

A catalog above ``SIMILARITY_ANN_THRESHOLD`` gets an ANN graph (``ann.py``) on top of the exact index;
the graph builder comes in through the constructor (``ann=``; default ``builder.hnsw_builder``), so imports
run one way (exact <- ann <- here).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from typing import TYPE_CHECKING

import numpy as np

from ..config import Settings
from ..errors import EmptyCatalogError, SimilarityError
from ..store.base import CatalogStore
from ..store.ranking import Ranker, Ranking
from .builder import AnnBuilder, hnsw_builder, rebuild_dead
from .exact import VectorIndex
from .patch import StalePatch, compacted, patched
from .torch_scores import GPU_GRAPH_ROWS, TorchScorer, gpu_scorer

if TYPE_CHECKING:
    from ..records import Facets, Filters, PriceRange
    from ..store.base import ChangeSet, VectorBatch
    from .ann import AnnIndex

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Tuning:
    """When a change is patched in, and when patched snapshots are tidied up."""

    reload_share: float = 0.10  # a change naming more than this share of the catalog reloads it
    compact_share: float = 0.25  # masked (removed or replaced) rows beyond this share of all rows are dropped
    compact_min: int = 64  # ... once there are at least this many
    compact_sync_rows: int = 50_000  # up to this many rows compaction runs at once, beyond in a thread
    merge_rows: int = 5_000  # rows outside the ANN graph beyond max(merge_rows, merge_share * catalog)
    merge_share: float = 0.01  # ... are merged into (a copy of) the graph


class StoreIndex(Ranker):
    """The shared index over a store: loaded once, reloaded when the store's version marker changes.

    With ``background=True`` (the app) the ANN graph is loaded, updated or built in a thread while
    the exact index serves, so a large catalog is searchable at once and never waits for a graph build.
    """

    def __init__(
        self,
        store: CatalogStore,
        settings: Settings | None = None,
        *,
        progress: bool = True,
        background: bool = False,
        ann: AnnBuilder | None = None,
        tuning: Tuning | None = None,
        scorer: TorchScorer | None = None,
    ) -> None:
        self.store = store
        self.tuning = tuning or Tuning()
        self.ann = ann or hnsw_builder  # the ANN seam: tests hand in their own builder
        self.scorer = scorer  # exact search on a GPU (``torch_scores.py``); None: numpy on the CPU
        self.settings = settings or Settings()  # ann_threshold, vector_dtype
        self.progress = progress  # progress bar while an ANN graph is (re)built
        self.background = background
        self._lock = threading.Lock()
        self._ann_lock = threading.Lock()  # one graph job at a time: they share the files next to the catalog
        self._ann_job: threading.Thread | None = None
        self._compact_job: threading.Thread | None = None
        self._index: VectorIndex | AnnIndex | None = None
        self._version: str | None = None
        self._marker: str | None = None  # change-feed position of the loaded snapshot
        self.reloads = self.patches = 0  # how the index followed the catalog (for tests and benchmarks)
        self._failed = False  # the last load failed before any index existed (e.g. the store is down)
        store.subscribe(self._written)

    def current(self) -> VectorIndex | AnnIndex:
        try:
            index = self._current()
        except SimilarityError:
            self._failed = self._index is None
            raise
        self._failed = False
        if not len(index):
            raise EmptyCatalogError("The catalog is empty. Add products first: python -m data_seed --source demo")
        return index

    def _current(self, reload: bool = True) -> VectorIndex | AnnIndex:
        version = self.store.version()
        if self._index is None or version != self._version:
            with self._lock:
                if self._index is None or version != self._version:
                    self._refresh(version, reload)
        return self._index  # type: ignore[return-value]

    def _written(self) -> None:
        """A write through this process's store: patch now, so the next search does not pay for it.
        A change that needs a full reload (or a first load) is left to the next search (a bulk seed would
        reload per batch)."""
        self._current(reload=False)

    def _refresh(self, version: str, reload: bool = True) -> None:
        if self._index is not None and self._marker is not None and len(self._index):
            limit = int(self.tuning.reload_share * len(self._index))
            changes, batch = self.store.changed_rows(self._marker, limit)
            if batch is not None:
                patched = self._patch(self._index, changes, batch, version)
                if patched is not None:
                    self._index, self._version, self._marker = patched, version, changes.marker
                    self.patches += 1
                    self._tidy()
                    return
        if not reload:
            return
        marker = self.store.changes(None).marker  # taken first: writes during the load are re-applied later
        self._index, self._version, self._marker = self._load(version), version, marker
        self.reloads += 1

    def _patch(
        self, index: VectorIndex | AnnIndex, changes: ChangeSet, batch: VectorBatch, version: str
    ) -> VectorIndex | AnnIndex | None:
        """``index`` with ``changes`` (whose stored rows are ``batch``) applied, or None when only a reload will do."""
        exact = _exact(index)
        if len(batch.ids) and batch.vectors.shape[1] != exact.matrix.shape[1]:
            return None  # re-embedded with another model size
        gone = set(changes.removed_ids) | (set(changes.upserted_ids) - set(batch.ids))  # removed meanwhile
        try:
            patch = patched(exact, batch, gone)
        except StalePatch:
            return None
        if isinstance(index, VectorIndex):
            new: VectorIndex | AnnIndex = patch.index
            if len(new) > self._graph_rows(new) and not self._building():  # grew past the threshold
                new = self._with_graph(patch.index, None, version)
            return new
        ann = index.patched(patch)  # type: ignore[union-attr]
        if self._needs_merge(ann) and not self._building():  # a running merge is rebased onto later patches
            return self._with_graph(patch.index, ann, version)
        return ann

    def _needs_merge(self, ann: AnnIndex) -> bool:
        """Many rows outside the graph, or many dead labels in it: time for a merge into a copy of the graph."""
        outside = len(ann.delta) > max(self.tuning.merge_rows, self.tuning.merge_share * len(ann))
        return outside or ann.dead_share > rebuild_dead()

    def _tidy(self) -> None:
        """Drop masked rows once they are many: at once in a small catalog (or without ``background``), else
        in a thread from this snapshot, which then catches up with later changes through the feed."""
        index, tuning = self._index, self.tuning
        exact = _exact(index)  # type: ignore[arg-type]
        if exact.dead < max(tuning.compact_min, tuning.compact_share * exact.rows):
            return
        if not self.background or exact.rows <= tuning.compact_sync_rows:
            self._index = _compacted(index)  # type: ignore[arg-type]
        elif self._compact_job is None or not self._compact_job.is_alive():
            job = threading.Thread(target=self._compact_later, args=(index, self._marker), name="compact-index")
            job.daemon = True
            self._compact_job = job
            job.start()

    def _compact_later(self, index: VectorIndex | AnnIndex, marker: str) -> None:
        try:
            compact = _compacted(index)  # O(rows) numpy copies, off the search path
            with self._lock:
                current = self._index
                if current is index:
                    self._index = compact
                elif current is not None and _exact(current).lineage is _exact(index).lineage:
                    # patched meanwhile: apply everything since ``index`` again, from the feed, to the compact copy
                    changes, batch = self.store.changed_rows(marker, int(self.tuning.reload_share * len(compact)))
                    patched = None if batch is None else self._patch(compact, changes, batch, self._version or "")
                    if patched is not None:  # else the uncompacted snapshot stays; a later patch tries again
                        self._index, self._marker = patched, changes.marker
                # else a reload replaced the rows since
        except Exception:  # the uncompacted snapshot keeps serving
            log.exception("Compacting the index failed; it keeps its removed rows masked")

    def warm(self) -> None:
        with contextlib.suppress(EmptyCatalogError):  # loaded, just empty: searches say so
            self.current()

    @property
    def status(self) -> str:
        if self._index is None:
            return "unavailable" if self._failed else "loading"
        job = self._ann_job
        return "building" if job is not None and job.is_alive() else "ready"

    def _building(self) -> bool:
        job = self._ann_job
        return job is not None and job.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the background jobs (compaction, ANN graph), if any; True when none is left running."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:  # a job may start another (a compaction's catch-up, a merge after a merge)
            running = [job for job in (self._compact_job, self._ann_job) if job is not None and job.is_alive()]
            if not running:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            running[0].join(None if deadline is None else deadline - time.monotonic())

    def _load(self, version: str) -> VectorIndex | AnnIndex:
        exact = VectorIndex(self.store.load_vectors(), self.settings.vector_dtype)
        if not len(exact) or len(exact) <= self._graph_rows(exact):
            return exact
        previous = None if isinstance(self._index, VectorIndex) else self._index  # an ANN index to update
        return self._with_graph(exact, previous, version)

    def _with_graph(self, exact: VectorIndex, previous: AnnIndex | None, version: str) -> VectorIndex | AnnIndex:
        """``exact`` with an ANN graph: built now, or (background) in a thread while exact (or ``previous``,
        when it already covers ``exact``: a merge of patched rows) serves."""
        if not self.background:
            return self._attach(exact, version, previous)
        job = threading.Thread(target=self._attach_later, args=(exact, version, previous), name="ann-index")
        job.daemon = True  # an unfinished graph is simply rebuilt next time
        self._ann_job = job
        job.start()
        return previous if previous is not None and previous.exact is exact else exact

    def _attach(self, exact: VectorIndex, version: str, previous: AnnIndex | None) -> AnnIndex:
        with self._ann_lock:
            return self.ann(exact, self.store, version, previous, self.progress)

    def _attach_later(self, exact: VectorIndex, version: str, previous: AnnIndex | None) -> None:
        try:
            ann = self._attach(exact, version, previous)
        except Exception:  # the exact index keeps serving; the next catalog change tries again
            log.exception("Building the ANN index failed; searches stay exact")
            return
        with self._lock:
            current = self._index
            current_exact = current if isinstance(current, VectorIndex) else getattr(current, "exact", None)
            if current_exact is exact:
                self._index = ann
            elif current_exact is not None and current_exact.lineage is exact.lineage:
                merged = ann.over(current_exact)  # patched meanwhile: same rows, later changes on top
                # patches made meanwhile may have left many rows outside the graph again: merge those next
                big = self._needs_merge(merged)
                self._index = self._with_graph(current_exact, merged, self._version or version) if big else merged
            # else a reload replaced the rows since; that snapshot has its own job

    def _graph_rows(self, exact: VectorIndex) -> int:
        """Catalogs above this many rows get an ANN graph (far more when a GPU holds the matrix)."""
        on_gpu = self.scorer is not None and self.scorer.fits(exact.rows, exact.matrix.shape[1])
        return max(self.settings.ann_threshold, GPU_GRAPH_ROWS) if on_gpu else self.settings.ann_threshold

    def rank(self, vector: np.ndarray, filters: Filters, top_k: int, min_score: float | None, facet_n: int) -> Ranking:
        index, scorer = self.current(), self.scorer
        if scorer is not None and isinstance(index, VectorIndex) and scorer.fits(index.rows, index.matrix.shape[1]):
            return scorer.rank(index, vector, filters, top_k, min_score, facet_n)
        return index.rank(vector, filters, top_k, min_score, facet_n)

    def browse(self, filters: Filters, offset: int, limit: int) -> tuple[list[str], int, Facets]:
        return self.current().browse(filters, offset, limit)

    def price_range(self) -> PriceRange:
        return self.current().price_range()


def _exact(index: VectorIndex | AnnIndex) -> VectorIndex:
    return index if isinstance(index, VectorIndex) else index.exact


def _compacted(index: VectorIndex | AnnIndex) -> VectorIndex | AnnIndex:
    compact, remap = compacted(_exact(index))
    return compact if isinstance(index, VectorIndex) else index.over(compact, remap)


def default_ranker(
    store: CatalogStore, settings: Settings, *, background: bool = False, device: object = None
) -> Ranker:
    """The store's own ranker (Atlas), else the shared in-memory index over it, scoring on ``device`` when it is a
    CUDA GPU (not on ZeroGPU: CUDA is lent there only inside the model's calls)."""
    scorer = None if settings.zero_gpu else gpu_scorer(device)
    return store.ranker() or StoreIndex(store, settings, background=background, scorer=scorer)
