"""Where a layout is computed: a spawned child process at the lowest CPU priority, or the calling thread.

The child (the default for UMAP) runs every thread numba, BLAS and faiss start at nice 19, so
searches in the app's process keep their cores; its memory (UMAP peaks around 1.5 GB at 100k
rows) goes back to the system when it exits. The vectors reach it as a temporary ``.npy`` file
that it memory-maps, so the parent never pickles a large matrix.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from ..ingest import yield_cpu
from .layout import SAMPLE_SIZE, Fitter, fit_layout

LayoutResult = tuple[np.ndarray, np.ndarray, str]  # coordinates, fitted mask, method


def run_in_thread(vectors: np.ndarray, fitter: Fitter, sample_size: int = SAMPLE_SIZE) -> LayoutResult:
    """Fit here, after lowering this thread's priority (the caller is a background thread)."""
    yield_cpu()
    return fit_layout(vectors, fitter, sample_size=sample_size)


def run_in_child(
    vectors: np.ndarray, fitter: Fitter, sample_size: int = SAMPLE_SIZE, *, scratch: Path | None = None
) -> LayoutResult:
    """Fit in a fresh ``spawn`` process at nice 19 and return its result (raises what the child raised)."""
    with tempfile.TemporaryDirectory(prefix="similarity-map-", dir=scratch) as tmp:
        path = Path(tmp) / "vectors.npy"
        np.save(path, np.ascontiguousarray(vectors, dtype=np.float32))
        with ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=_lowest_priority) as pool:
            return pool.submit(_fit_file, str(path), fitter, sample_size).result()


def _lowest_priority() -> None:
    with contextlib.suppress(OSError, AttributeError):
        os.nice(19)  # before numba/BLAS start their threads, which inherit it


def _fit_file(path: str, fitter: Fitter, sample_size: int) -> LayoutResult:
    vectors = np.load(path, mmap_mode="r")
    return fit_layout(vectors, fitter, sample_size=sample_size)
