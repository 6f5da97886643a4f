"""The MongoDB catalog store, one concern per module (imports run one way, top to bottom):

- ``codec.py``: documents <-> products and vector batches (BSON binary float32 vectors, millisecond timestamps);
- ``pipelines.py``: ``$vectorSearch`` and facet pipelines and the vector index definition, as plain data;
- ``connection.py``: the lazily connected collection and the password-free error messages;
- ``atlas.py``: the Atlas vector index (create, wait until queryable) and ``AtlasRanker``;
- ``store.py``: ``MongoStore``, the ``CatalogStore`` contract on a collection.
"""

from __future__ import annotations

from .atlas import UNSUPPORTED, AtlasRanker, VectorSearchIndex
from .connection import TIMEOUT_MS, host_of
from .store import MongoStore

__all__ = ["TIMEOUT_MS", "UNSUPPORTED", "AtlasRanker", "MongoStore", "VectorSearchIndex", "host_of"]
