"""The in-memory ranking index, in three layers whose imports run one way:

- ``exact.py``: ``VectorIndex``, an immutable snapshot (float32 matrix, ids, facet postings, live-row mask)
  with exact cosine ranking, filter masks before top-k and disjunctive facets; ``patch.py`` derives patched
  and compacted snapshots; ``columns.py`` encodes its facet values;
- ``ann.py``: search through a faiss HNSW graph over an exact index's rows (``AnnIndex``); ``graph.py`` holds
  the graph and its files next to a SQLite catalog;
- ``store_index.py``: ``StoreIndex``, the shared index over a catalog store, patched by the store's own writes
  and from its change feed (reloaded only for large changes); the ANN builder is handed in at a seam
  (``StoreIndex(ann=...)``; ``builder.py`` holds its type and the default faiss builder);
- ``rows.py``: the append-only buffers that let patched snapshots share memory (copy-on-write without copies).
"""

from __future__ import annotations

from .builder import AnnBuilder, hnsw_builder
from .exact import VectorIndex
from .store_index import StoreIndex, Tuning, default_ranker

__all__ = ["AnnBuilder", "StoreIndex", "Tuning", "VectorIndex", "default_ranker", "hnsw_builder"]
