"""AI Similar Image Visualizer engine: OpenCLIP embeddings, catalog stores, ranking with facets.

Importing this package loads no model and opens no connection; ``build_service`` wires things lazily.
"""

from .build import build_service
from .config import Settings
from .errors import (
    ConfigError,
    EmptyCatalogError,
    ImageError,
    ModelError,
    ModelMismatchError,
    NotFoundError,
    SimilarityError,
    StoreError,
    TaggingError,
)
from .records import Filters, Match, Product, ProductTags, SearchResult
from .search import Query, SearchService

__all__ = [
    "ConfigError",
    "EmptyCatalogError",
    "Filters",
    "ImageError",
    "Match",
    "ModelError",
    "ModelMismatchError",
    "NotFoundError",
    "Product",
    "ProductTags",
    "Query",
    "SearchResult",
    "SearchService",
    "Settings",
    "SimilarityError",
    "StoreError",
    "TaggingError",
    "build_service",
]
