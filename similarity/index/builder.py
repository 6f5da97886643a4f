"""The ANN seam of ``StoreIndex``: the builder type it is handed, the default builder (a faiss HNSW graph) and
the dead-label share past which a graph is rebuilt. ``ann.py`` (and faiss) is imported only when a graph is built."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..store.base import CatalogStore
from .exact import VectorIndex

if TYPE_CHECKING:
    from .ann import AnnIndex

# (exact index, store, store version, previous ANN index or None, progress bar) -> an index with the same contract
AnnBuilder = Callable[[VectorIndex, CatalogStore, str, "AnnIndex | None", bool], "AnnIndex"]


def hnsw_builder(
    exact: VectorIndex, store: CatalogStore, version: str, previous: AnnIndex | None, progress: bool
) -> AnnIndex:
    """The default ANN builder: a faiss HNSW graph, reused, updated or rebuilt (``ann.attach``)."""
    from . import ann  # faiss is imported only for large catalogs

    return ann.attach(exact, store, version, previous, progress)


def rebuild_dead() -> float:
    """The share of a graph's labels that may be dead (removed, replaced) before a rebuild (``ann.REBUILD_DEAD``)."""
    from .ann import REBUILD_DEAD

    return REBUILD_DEAD
