"""Running a scan off the request path (``DuplicateScan``) and checking new products as they are seeded."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import SimilarityError
from .dismissed import DismissedPairs, dismissed_for, pair
from .finder import BLOCK_BYTES, DEFAULT_THRESHOLD, PIXEL_THRESHOLD, DuplicateFinder, Progress, ScanReport
from .pixel import PixelHasher

if TYPE_CHECKING:
    from ..records import Product
    from ..store.base import CatalogStore

log = logging.getLogger(__name__)


class DuplicateScan:
    """One background scan at a time over a store; ``state()`` reports its phase and progress."""

    def __init__(self, store: CatalogStore, dismissed: DismissedPairs | None = None) -> None:
        self.store = store
        self.dismissed = dismissed or dismissed_for(store)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._progress: dict[str, Any] = {"phase": "idle", "done": 0, "total": 0}
        self.report: ScanReport | None = None
        self.error = ""

    def start(self, threshold: float = DEFAULT_THRESHOLD) -> bool:
        """Start a scan in a thread; False when one is already running."""
        with self._lock:
            if self.running:
                return False
            self.error = ""
            self._progress = {"phase": "starting", "done": 0, "total": 0}
            self._thread = threading.Thread(target=self._run, args=(threshold,), name="duplicates", daemon=True)
            self._thread.start()
            return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def state(self) -> dict[str, Any]:
        return {"running": self.running, **self._progress, "error": self.error}

    def run_now(self, threshold: float = DEFAULT_THRESHOLD, progress: Progress | None = None) -> ScanReport:
        """Scan in this thread (the CLI, with its own ``progress``; tests)."""
        finder = DuplicateFinder(self.store, threshold=threshold, dismissed=self.dismissed.load())
        self.report = finder.scan(progress=progress or self._note)
        self._progress = {"phase": "done", "done": self.report.products, "total": self.report.products}
        return self.report

    def dismiss(self, ids: Sequence[str]) -> int:
        """Mark every pair within ``ids`` "not a duplicate"; the group leaves the current report."""
        ids = list(dict.fromkeys(ids))
        if len(ids) < 2:
            raise SimilarityError("A group needs at least two products to be marked not a duplicate.")
        if len(ids) > 200:
            raise SimilarityError("That group is too large to mark at once; keep or remove some of it first.")
        added = self.dismissed.add(pair(a, b) for i, a in enumerate(ids) for b in ids[i + 1 :])
        if self.report is not None:
            chosen = set(ids)
            self.report.groups = [g for g in self.report.groups if not set(g.ids) <= chosen]
        return added

    def forget(self, removed: Sequence[str]) -> None:
        """Products removed from the catalog leave the current report (groups of one are dropped)."""
        if self.report is None:
            return
        gone = set(removed)
        for g in self.report.groups:
            g.ids = [i for i in g.ids if i not in gone]
        self.report.groups = [g for g in self.report.groups if len(g.ids) > 1]

    def _note(self, phase: str, done: int, total: int) -> None:
        self._progress = {"phase": phase, "done": done, "total": total}

    def _run(self, threshold: float) -> None:
        try:
            self.run_now(threshold)
        except Exception as exc:  # the app keeps serving; the panel shows a short message
            log.exception("The duplicate scan failed")
            self.error = str(exc) if isinstance(exc, SimilarityError) else "The scan failed; see the server log."
            self._progress = {"phase": "failed", "done": 0, "total": 0}


class SeedScreen:
    """Checks products being seeded against the catalog, the earlier items of the same run and the earlier
    items of the same batch (in order: the first of two near-identical items is the one kept).

    Called with a batch of new products (embeddings and thumbnails set); returns, per product that is
    near-identical to one stored or kept before it, a note naming that product and both figures.
    """

    def __init__(
        self, store: CatalogStore, threshold: float = DEFAULT_THRESHOLD, pixel_threshold: float = PIXEL_THRESHOLD
    ) -> None:
        self.store = store
        self.threshold, self.pixel_threshold = threshold, pixel_threshold
        self._ids: list[str] | None = None
        self._matrix: np.ndarray | None = None
        self._thumbs: dict[str, bytes | None] = {}  # this run's own products (not yet readable from the store)

    def _load(self) -> None:
        batch = self.store.load_vectors()
        self._ids, self._matrix = list(batch.ids), batch.vectors.astype(np.float32)

    def __call__(self, products: Sequence[Product]) -> dict[str, str]:
        if self._matrix is None:
            self._load()
        fresh = [p for p in products if p.embedding is not None]
        if not fresh:
            return {}
        vectors = np.stack([p.embedding for p in fresh]).astype(np.float32)
        notes = self._check(fresh, vectors)
        kept = [i for i, p in enumerate(fresh) if p.id not in notes]
        if kept:
            assert self._matrix is not None and self._ids is not None
            self._ids += [fresh[i].id for i in kept]
            self._matrix = np.concatenate([self._matrix, vectors[kept]]) if len(self._matrix) else vectors[kept]
            self._thumbs.update((fresh[i].id, fresh[i].thumbnail) for i in kept)
        return notes

    def _check(self, fresh: list[Product], vectors: np.ndarray) -> dict[str, str]:
        """Each product against the stored matrix and the batch's earlier products not themselves noted."""
        assert self._matrix is not None and self._ids is not None
        inner = vectors @ vectors.T  # the batch against itself: a model batch, a few hundred rows at most
        batch_thumbs = {p.id: p.thumbnail for p in fresh}
        block = max(1, BLOCK_BYTES // max(1, 4 * len(self._ids)))
        notes: dict[str, str] = {}
        kept: list[int] = []
        for start in range(0, len(fresh), block):
            sims = vectors[start : start + block] @ self._matrix.T if len(self._ids) else None
            for offset, product in enumerate(fresh[start : start + block]):
                i = start + offset
                candidates = [(fresh[j].id, float(inner[i, j])) for j in kept if inner[i, j] >= self.threshold]
                if sims is not None:
                    row = sims[offset]
                    order = np.argsort(-row)[:5]
                    candidates += [(self._ids[j], float(row[j])) for j in order if row[j] >= self.threshold]
                candidates.sort(key=lambda c: -c[1])  # stable: an equal cosine keeps the batch's earlier item first
                note = self._confirm(product, candidates[:5], batch_thumbs)
                if note:
                    notes[product.id] = note
                else:
                    kept.append(i)
        return notes

    def _confirm(self, product: Product, candidates: list[tuple[str, float]], batch: dict[str, bytes | None]) -> str:
        if not candidates:
            return ""
        hasher = PixelHasher()
        hasher.add(product.id, product.thumbnail)
        # products of this run (this batch, earlier batches) are not yet readable from the store
        own = {i: batch.get(i, self._thumbs.get(i)) for i, _ in candidates if i in batch or i in self._thumbs}
        stored = [i for i, _ in candidates if i not in own]
        thumbs = {p.id: p.thumbnail for p in self.store.get(stored)} if stored else {}
        for id_, cosine in candidates:
            hasher.add(id_, own[id_] if id_ in own else thumbs.get(id_))
            pixel = hasher.similarity(product.id, id_)
            if pixel is not None and pixel >= self.pixel_threshold:
                what = f"product {id_[:12]} earlier in this run" if id_ in own else f"an existing product {id_[:12]}"
                return f"near-identical to {what} (cosine {cosine:.3f}, pixel {pixel:.3f})"
        return ""
