"""``CatalogMap``: the catalog's 2-D layout, computed off the request path and kept with the catalog.

Life of a layout: a saved one whose catalog version matches is adopted as is; otherwise a PCA
preview is shown at once while the real layout (UMAP) is fitted in the background, then saved.
Products added later are placed by their nearest fitted neighbours until enough of the catalog
has changed (``incremental.REFIT_SHARE``), and then the layout is fitted again in the background.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import Settings
from ..errors import SimilarityError
from .clusters import cluster_layout
from .incremental import can_update, updated
from .layout import (
    PLACE_K,
    Fitter,
    PcaFitter,
    UmapFitter,
    fit_layout,
    normalise,
    pca_2d,
    weighted_position,
)
from .persist import Layout, LayoutStore, layouts_for
from .points import points_page
from .worker import numba_cache, run_in_child, run_in_thread

if TYPE_CHECKING:
    from ..store.base import CatalogStore

log = logging.getLogger(__name__)
CHECK_EVERY = 5.0  # seconds between catalog version checks on the request path
PREVIEW = "pca-preview"


class CatalogMap:
    """A 2-D layout of every catalog product's embedding, computed off the request path.

    ``fitter``: the layout method (default UMAP). ``background``: ``start`` returns at once and the
    work runs in a thread (the app); otherwise ``start`` does the work before returning (CLI, tests).
    ``isolate``: fit in a child process at nice 19 (default: only for the built-in UMAP fitter; a
    fitter handed in runs in the calling thread, at low thread priority). ``layouts``: the storage seam.
    """

    def __init__(
        self,
        store: CatalogStore,
        settings: Settings | None = None,
        *,
        fitter: Fitter | None = None,
        background: bool = False,
        layouts: LayoutStore | None = None,
        isolate: bool | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or Settings()
        self.fitter = fitter or (PcaFitter() if self.settings.map_layout == "pca" else UmapFitter())
        self.background = background
        self.sample_size = self.settings.map_sample
        self.layouts = layouts or layouts_for(store)
        self.isolate = fitter is None if isolate is None else isolate
        self._layout: Layout | None = None
        self._status = "preview"  # nothing known yet: the first start() decides
        self._note = "The map is being prepared."
        self._lock = threading.Lock()
        self._job: threading.Thread | None = None
        self._again = False  # the catalog changed while a job ran: run once more
        self._started = False
        self._checked = 0.0
        self._version: str | None = None  # the catalog version the last refresh saw
        self._child: Any = None  # the fitting process, while one runs
        self._closed = False
        self._adopted = False  # a saved layout was looked for without starting (see _check)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Begin (or refresh, if the catalog changed) the background layout; returns at once."""
        self._started = True
        if not self.background:
            self._refresh_logged()
            return
        with self._lock:
            if self._job is not None and self._job.is_alive():
                self._again = True
                return
            self._job = threading.Thread(target=self._run_jobs, name="catalog-map", daemon=True)
            self._job.start()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the background job, if any; True when none is left running."""
        job = self._job
        if job is not None:
            job.join(timeout)
        return job is None or not job.is_alive()

    def close(self) -> None:
        """Stop a layout being fitted (the app is shutting down); the next start fits again."""
        self._closed = True
        child = self._child
        if child is not None and child.is_alive():
            child.terminate()

    def _track(self, child: Any) -> None:
        self._child = child
        if self._closed:
            child.terminate()

    @property
    def status(self) -> str:
        """'empty' | 'preview' (PCA shown, real layout computing) | 'ready' | 'failed'."""
        return self._status

    @property
    def note(self) -> str:
        return self._note

    # -- reads -------------------------------------------------------------------------------
    def points(self, limit: int | None = None, offset: int = 0) -> dict[str, Any]:
        """The /catalog_map JSON: method, catalog_version, a page of points, total, status and a note."""
        self._check(compute=True)
        return {**points_page(self._layout, self.store, limit, offset), **self._describe()}

    def coordinates(self, ids: Sequence[str]) -> dict[str, tuple[float, float]]:
        """Layout coordinates of those ``ids`` that are placed (never waits for a layout to be computed)."""
        self._check(compute=self.background)
        layout = self._layout
        if layout is None:
            return {}
        rows = layout.row_of()
        return {i: (float(layout.coords[rows[i], 0]), float(layout.coords[rows[i], 1])) for i in ids if i in rows}

    def clusters(self) -> list[dict[str, Any]]:
        """The named clusters of the current layout (``[{"id", "name", "x", "y", "size"}]``; none yet: [])."""
        layout = self._layout
        return list(layout.clusters or []) if layout is not None else []

    def place(self, ids: Sequence[str], scores: Sequence[float]) -> tuple[float, float] | None:
        """A query's position: the similarity-weighted mean of its top matches' coordinates (None: no layout)."""
        found = self.coordinates(list(ids))
        pairs = [(found[i], float(s)) for i, s in zip(ids, scores, strict=False) if i in found][:PLACE_K]
        if not pairs:
            return None
        x, y = weighted_position(np.array([p for p, _ in pairs]), np.array([s for _, s in pairs]))
        return float(x), float(y)

    def _describe(self) -> dict[str, str]:
        return {"status": self._status, "note": self._note}

    def _check(self, compute: bool) -> None:
        """Start the first layout, or a refresh when the catalog moved (checked at most every ``CHECK_EVERY`` s).

        Without ``compute`` (a search placing its query in a one-shot CLI run) nothing is fitted: a saved
        layout is adopted, if there is one.
        """
        if not self._started:
            if compute:
                self.start()
            elif self._layout is None and not self._adopted:
                self._adopted = True
                if (saved := self._load_saved()) is not None:
                    self._show(saved)
            return
        now = time.monotonic()
        if now - self._checked < CHECK_EVERY:
            return
        self._checked = now
        try:
            moved = self.store.version() != self._version
        except SimilarityError:
            return  # the store is down: keep the layout we have
        if moved and compute:
            self.start()

    # -- the job -----------------------------------------------------------------------------
    def _run_jobs(self) -> None:
        while True:
            self._refresh_logged()
            with self._lock:
                if not self._again:
                    return
                self._again = False

    def _refresh_logged(self) -> None:
        try:
            self._refresh()
        except Exception:  # the app keeps serving; the preview (if any) stays on screen
            if self._closed:  # stopped on purpose (shutdown)
                return
            log.exception("Computing the catalog map failed")
            self._status = "failed"
            self._note = "The map layout could not be computed" + (
                "; showing the PCA preview." if self._layout is not None else "."
            )
        self._checked = time.monotonic()

    def _refresh(self) -> None:
        version = self._version = self.store.version()
        if self._layout is None and (saved := self._load_saved()) is not None:
            self._show(saved)
            if saved.catalog_version == version:
                if saved.labels is None:  # saved before clusters existed
                    self._save(saved)
                return
        current = self._layout
        if current is not None and current.catalog_version == version and self._status == "ready":
            return
        batch = self.store.load_vectors()
        if not len(batch.ids):
            self._layout, self._status = None, "empty"
            self._note = "The catalog is empty: nothing to map yet."
            return
        if current is not None and current.method != PREVIEW and can_update(current, batch):
            self._save(updated(current, batch, version))
            return
        if (current is None or current.method == PREVIEW) and not isinstance(self.fitter, PcaFitter):
            self._show(Layout(batch.ids, _preview(batch.vectors), np.ones(len(batch.ids), bool), PREVIEW, version))
        coords, fitted, method = self._fit(batch.vectors)
        self._save(Layout(batch.ids, coords, fitted, method, version))

    def _fit(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
        if len(vectors) < max(self.fitter.min_points, 2):  # too few for the method: PCA, here and now
            return fit_layout(vectors, self.fitter)
        if self.isolate:
            cache = numba_cache(self.settings)
            return run_in_child(vectors, self.fitter, self.sample_size, numba_cache=cache, started=self._track)
        return run_in_thread(vectors, self.fitter, self.sample_size, low_priority=self.background)

    def _load_saved(self) -> Layout | None:
        """The saved layout, if it was made by this map's method (or is the PCA of a catalog too small for it)."""
        try:
            saved = self.layouts.load()
        except SimilarityError:
            return None
        if saved is None or saved.method == PREVIEW:
            return None
        too_small = saved.method == "pca" and saved.fit_count < self.fitter.min_points
        return saved if saved.method == self.fitter.name or too_small else None

    def _save(self, layout: Layout) -> None:
        self._cluster(layout)
        self._show(layout)
        try:
            self.layouts.save(layout)
        except (SimilarityError, OSError):
            log.warning("The catalog map could not be saved; it will be computed again after a restart")

    def _cluster(self, layout: Layout) -> None:
        """Named clusters of a final layout, computed with it and saved with it (a failure leaves none)."""
        if layout.method == PREVIEW or layout.labels is not None:
            return
        try:
            cluster_layout(layout, self.store)
        except Exception:  # the map is still worth showing without names
            log.exception("Naming the map's clusters failed")
            layout.labels, layout.clusters = np.full(len(layout), -1, np.int32), []

    def _show(self, layout: Layout) -> None:
        self._layout = layout
        self._status = "preview" if layout.method == PREVIEW else "ready"
        self._note = _note(layout, self.fitter)


def _preview(vectors: np.ndarray) -> np.ndarray:
    return normalise(pca_2d(vectors))


def _note(layout: Layout, fitter: Fitter) -> str:
    n = len(layout)
    if layout.method == PREVIEW:
        return "PCA preview: the map layout is computing in the background."
    if layout.method == "pca" and fitter.name != "pca":
        return f"Only {n} products: a PCA layout ({fitter.name.upper()} needs at least {fitter.min_points})."
    fitted = int(layout.fitted.sum())
    note = f"{layout.method.upper()} layout of {n} products"
    if fitted < n:
        note += f"; {n - fitted} placed by their nearest fitted neighbours"
    return note + "."
