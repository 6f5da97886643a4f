"""The in-memory ranking index, in three layers whose imports run one way:

- ``exact.py``: ``VectorIndex``, an immutable snapshot (float32 matrix, ids, facet postings) with exact
  cosine ranking, filter masks before top-k and disjunctive facets;
- ``ann.py``: a faiss HNSW graph over an exact index's rows (``AnnIndex``), persisted next to a SQLite file;
- ``store_index.py``: ``StoreIndex``, the shared index over a catalog store, reloaded when its version
  marker moves; the ANN builder is handed in at a seam (``StoreIndex(ann=...)``).
"""

from __future__ import annotations

from .exact import VectorIndex
from .store_index import AnnBuilder, StoreIndex, default_ranker, hnsw_builder

__all__ = ["AnnBuilder", "StoreIndex", "VectorIndex", "default_ranker", "hnsw_builder"]
