"""``StoreIndex``: the shared index over a catalog store, reloaded when the store's version marker moves.

A catalog above ``SIMILARITY_ANN_THRESHOLD`` gets an ANN graph (``ann.py``) on top of the exact index;
the graph builder comes in through the constructor (``ann=``), so imports run one way (exact <- ann <- here).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..config import Settings
from ..errors import EmptyCatalogError, SimilarityError
from ..store.base import CatalogStore, Ranker, Ranking
from .exact import VectorIndex

if TYPE_CHECKING:
    from ..records import Facets, Filters
    from .ann import AnnIndex

log = logging.getLogger(__name__)
# (exact index, store, store version, previous ANN index or None, progress bar) -> an index with the same contract
AnnBuilder = Callable[[VectorIndex, CatalogStore, str, "AnnIndex | None", bool], "AnnIndex"]


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
    ) -> None:
        self.store = store
        self.ann = ann or hnsw_builder  # the ANN seam: tests hand in their own builder
        self.settings = settings or Settings()  # ann_threshold, vector_dtype
        self.progress = progress  # progress bar while an ANN graph is (re)built
        self.background = background
        self._lock = threading.Lock()
        self._ann_lock = threading.Lock()  # one graph job at a time: they share the files next to the catalog
        self._ann_job: threading.Thread | None = None
        self._index: VectorIndex | AnnIndex | None = None
        self._version: str | None = None
        self._failed = False  # the last load failed before any index existed (e.g. the store is down)

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

    def _current(self) -> VectorIndex | AnnIndex:
        version = self.store.version()
        if self._index is None or version != self._version:
            with self._lock:
                if self._index is None or version != self._version:
                    self._index, self._version = self._load(version), version
        return self._index

    def warm(self) -> None:
        with contextlib.suppress(EmptyCatalogError):  # loaded, just empty: searches say so
            self.current()

    @property
    def status(self) -> str:
        if self._index is None:
            return "unavailable" if self._failed else "loading"
        job = self._ann_job
        return "building" if job is not None and job.is_alive() else "ready"

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the background ANN job, if any; True when none is left running."""
        job = self._ann_job
        if job is not None:
            job.join(timeout)
        return job is None or not job.is_alive()

    def _load(self, version: str) -> VectorIndex | AnnIndex:
        exact = VectorIndex(self.store.load_vectors(), self.settings.vector_dtype)
        if not len(exact) or len(exact) <= self.settings.ann_threshold:
            return exact
        previous = None if isinstance(self._index, VectorIndex) else self._index  # an ANN index to update
        if not self.background:
            return self._attach(exact, version, previous)
        job = threading.Thread(target=self._attach_later, args=(exact, version, previous), name="ann-index")
        job.daemon = True  # an unfinished graph is simply rebuilt next time
        self._ann_job = job
        job.start()
        return exact

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
            if self._index is exact:  # a newer catalog version has its own job
                self._index = ann

    def rank(self, vector: np.ndarray, filters: Filters, top_k: int, min_score: float | None, facet_n: int) -> Ranking:
        return self.current().rank(vector, filters, top_k, min_score, facet_n)

    def browse(self, filters: Filters, offset: int, limit: int) -> tuple[list[str], int, Facets]:
        return self.current().browse(filters, offset, limit)


def hnsw_builder(
    exact: VectorIndex, store: CatalogStore, version: str, previous: AnnIndex | None, progress: bool
) -> AnnIndex:
    """The default ANN builder: a faiss HNSW graph, reused, updated or rebuilt (``ann.attach``)."""
    from . import ann  # faiss is imported only for large catalogs

    return ann.attach(exact, store, version, previous, progress)


def default_ranker(store: CatalogStore, settings: Settings, *, background: bool = False) -> Ranker:
    """The store's own ranker (Atlas), else the shared in-memory index over it."""
    return store.ranker() or StoreIndex(store, settings, background=background)
