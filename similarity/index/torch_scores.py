"""Exact search on a GPU: the matrix lives on the device in fp16, scores and the top candidates are taken
there, and the candidates are re-scored on the host in float32, so rankings equal numpy's up to exact ties.

Why a candidate window is enough: rows and query are unit vectors, so an fp16 dot product (inputs rounded to
2^-11, accumulated in float32, rounded once more) is within ``FP16_ERROR`` of the float32 score. Every row
whose float32 score could reach the n-th best is therefore within ``2 * FP16_ERROR`` of the n-th best fp16
score; all such rows are re-scored exactly. Filters are the index's own boolean masks, applied on the device
before top-k; facets, the change feed and patching are the index's as they are (``VectorIndex.ranking``).

The device copy follows the index: a patched snapshot (rows appended to the same buffer) copies only the new
rows; a reload or a compaction copies the matrix again. A catalog that does not fit the device's free memory
stays on the CPU, with one log line. Torch runs this on CPU tensors too (the tests do).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from ..records import Filters
from ..store.ranking import Ranking
from .exact import VectorIndex

log = logging.getLogger(__name__)

FP16_ERROR = 2e-3  # bound on |fp16 score - float32 score| for unit vectors (~1.5e-3 by the rounding steps)
HEADROOM = 0.8  # use at most this share of the free device memory for the matrix
GPU_GRAPH_ROWS = 10_000_000  # with the matrix on a GPU, an ANN graph pays only beyond this many rows


class TorchScorer:
    """Scores a ``VectorIndex`` on a torch device. ``free_bytes`` says how much device memory is free
    (None: no limit, e.g. CPU tensors in tests)."""

    def __init__(self, device: str = "cuda:0", free_bytes: Callable[[], int] | None = None) -> None:
        self.device = device
        self.free_bytes = free_bytes
        self._lock = threading.Lock()
        self._host: Any = None  # the host buffer the device copy mirrors (held: compared by identity)
        self._rows = 0
        self._matrix: Any = None  # (capacity, dim) fp16 on the device
        self._refused: int | None = None  # rows of a catalog already logged as too big

    def fits(self, rows: int, dim: int) -> bool:
        """Whether a (rows, dim) fp16 matrix fits the device's free memory (plus what it already holds)."""
        if self.free_bytes is None:
            return True
        held = 0 if self._matrix is None else self._matrix.numel() * 2
        need = rows * dim * 2
        free = self.free_bytes() + held
        if need <= HEADROOM * free:
            return True
        if self._refused != rows:
            self._refused = rows
            log.warning(
                "The catalog's %d x %d fp16 matrix (%.1f GB) does not fit the free memory of %s (%.1f GB): "
                "searching on the CPU",
                rows, dim, need / 1e9, self.device, free / 1e9,
            )  # fmt: skip
        return False

    def rank(
        self,
        index: VectorIndex,
        vector: np.ndarray,
        filters: Filters,
        top_k: int,
        min_score: float | None,
        facet_n: int,
    ) -> Ranking:
        import torch

        vector = np.asarray(vector, dtype=np.float32)
        matrix = self._device_matrix(index)
        query = torch.from_numpy(vector).to(self.device, torch.float16)
        with torch.inference_mode():
            approx = (matrix @ query).float()
        floor = None if min_score is None else min_score - FP16_ERROR

        def select(f: Filters, n: int) -> tuple[np.ndarray, np.ndarray]:
            rows = self._candidates(approx, index.mask(f), n, floor)
            return index.top_among(rows, index.scores_of(rows, vector, ascending=True), n, min_score)

        return index.ranking(filters, top_k, facet_n, select)

    def _candidates(self, approx: Any, mask: np.ndarray | None, n: int, floor: float | None) -> np.ndarray:
        """Rows (ascending) that could be among the best ``n`` passing ``mask`` and ``floor``, by fp16 scores."""
        import torch

        scores = approx
        if mask is not None:
            keep = torch.from_numpy(mask).to(approx.device)
            scores = torch.where(keep, approx, torch.tensor(float("-inf"), device=approx.device))
        allowed = int(torch.isfinite(scores).sum()) if mask is not None else len(scores)
        if floor is not None:
            scores = torch.where(scores >= floor, scores, torch.tensor(float("-inf"), device=approx.device))
            allowed = int(torch.isfinite(scores).sum())
        if allowed == 0 or n == 0:
            return np.zeros(0, dtype=np.int64)
        kth = torch.topk(scores, min(n, allowed)).values[-1]
        window = torch.nonzero(scores >= kth - 2 * FP16_ERROR).flatten()
        return np.sort(window.cpu().numpy().astype(np.int64))

    def _device_matrix(self, index: VectorIndex) -> Any:
        """The index's rows on the device, copying only rows appended since the last copy of the same buffer."""
        import torch

        host = index.matrix
        base = host.base if host.base is not None else host
        with self._lock:
            if base is not self._host or self._matrix is None:  # rows of one buffer are never rewritten
                self._host, self._rows, self._matrix = base, 0, self._empty(index.rows, host.shape[1])
            if index.rows > self._rows:
                if index.rows > len(self._matrix):  # grow by a quarter: patches append a few rows at a time
                    grown = self._empty(index.rows, host.shape[1])
                    grown[: self._rows] = self._matrix[: self._rows]
                    self._matrix = grown
                fresh = torch.from_numpy(np.ascontiguousarray(host[self._rows : index.rows], dtype=np.float16))
                self._matrix[self._rows : index.rows] = fresh.to(self.device)
                self._rows = index.rows
            return self._matrix[: index.rows]

    def _empty(self, rows: int, dim: int) -> Any:
        import torch

        return torch.empty((max(rows, 1) * 5 // 4, dim), dtype=torch.float16, device=self.device)


def gpu_scorer(device: Any) -> TorchScorer | None:
    """A scorer on ``device`` (a resolved ``similarity.device.Device``) when it is a CUDA GPU, else None."""
    if getattr(device, "kind", "cpu") != "cuda":
        return None
    from ..device import TorchGpus

    gpus = TorchGpus()
    return TorchScorer(device.name, lambda: gpus.free_bytes(device.index))
