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
import threading
import time
from collections.abc import Callable
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Settings
from ..ingest import yield_cpu
from .layout import SAMPLE_SIZE, Fitter, fit_layout

LayoutResult = tuple[np.ndarray, np.ndarray, str]  # coordinates, fitted mask, method


def run_in_thread(
    vectors: np.ndarray, fitter: Fitter, sample_size: int = SAMPLE_SIZE, *, low_priority: bool = True
) -> LayoutResult:
    """Fit here; ``low_priority`` lowers this thread's priority for good (only for a dedicated background thread)."""
    if low_priority:
        yield_cpu()
    return fit_layout(vectors, fitter, sample_size=sample_size)


def run_in_child(
    vectors: np.ndarray,
    fitter: Fitter,
    sample_size: int = SAMPLE_SIZE,
    *,
    numba_cache: str | None = None,
    started: Callable[[Any], None] | None = None,
) -> LayoutResult:
    """Fit in a fresh ``spawn`` process at nice 19 and return its result.

    ``numba_cache``: numba's on-disk cache for the child, so later children skip part of the compilation.
    ``started``: called with the child process (so an owner can terminate it). The child is a daemon:
    it dies with the app instead of holding up its exit.
    """
    with tempfile.TemporaryDirectory(prefix="similarity-map-") as tmp:
        source, result = Path(tmp) / "vectors.npy", Path(tmp) / "layout.npz"
        np.save(source, np.ascontiguousarray(vectors, dtype=np.float32))
        child = get_context("spawn").Process(
            target=_fit_file, args=(str(source), str(result), fitter, sample_size, numba_cache), daemon=True
        )
        child.start()
        if started is not None:
            started(child)
        child.join()
        if child.exitcode != 0 or not result.exists():
            raise RuntimeError(f"the layout worker stopped (exit code {child.exitcode})")
        with np.load(result, allow_pickle=False) as out:
            return out["coords"], out["fitted"], str(out["method"])


def numba_cache(settings: Settings) -> str:
    """The configured numba cache directory, else one under the system's temp dir."""
    return settings.numba_cache_dir or str(Path(tempfile.gettempdir()) / "similarity-numba")


def _exit_with_parent(parent: int) -> None:
    """A parent killed outright (no atexit) leaves its daemon children running: stop when it is gone."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _fit_file(source: str, result: str, fitter: Fitter, sample_size: int, cache_dir: str | None) -> None:
    """The child's work: lower its priority, then fit the memory-mapped vectors and write the result."""
    with contextlib.suppress(OSError, AttributeError):
        os.nice(19)  # before numba/BLAS start their threads, which inherit it
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    if cache_dir:  # the child's own environment, read by numba when it is first imported
        os.environ["NUMBA_CACHE_DIR"] = cache_dir
    coords, fitted, method = fit_layout(np.load(source, mmap_mode="r"), fitter, sample_size=sample_size)
    np.savez(result, coords=coords, fitted=fitted, method=np.array(method))
