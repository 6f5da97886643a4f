"""Catalog stores, chosen by URL scheme (``open_store``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ..errors import ConfigError
from .base import CatalogStore, UpsertReport, VectorBatch, mask_url
from .ranking import Ranker, Ranking

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["SCHEMES", "CatalogStore", "Ranker", "Ranking", "UpsertReport", "VectorBatch", "mask_url", "open_store"]


def _sqlite(url: str, settings: Settings | None) -> CatalogStore:
    from .local import LocalStore

    path = url.split("://", 1)[1]
    # sqlite:///relative.db -> "relative.db"; sqlite:////abs/path.db -> "/abs/path.db" (SQLAlchemy style)
    path = path[1:] if path.startswith("/") else path
    if not path:
        raise ConfigError("SIMILARITY_STORE=sqlite:/// needs a file path, e.g. sqlite:///data/catalog.db")
    return LocalStore(path)


def _memory(url: str, settings: Settings | None) -> CatalogStore:
    from .local import LocalStore

    return LocalStore(":memory:")


def _mongo(url: str, settings: Settings | None) -> CatalogStore:
    from .mongo import MongoStore

    return MongoStore.from_url(url, settings)


# scheme -> factory(url, settings); backends are imported only when chosen.
SCHEMES: dict[str, Callable[[str, Any], CatalogStore]] = {
    "sqlite": _sqlite,
    "memory": _memory,
    "mongodb": _mongo,
    "mongodb+srv": _mongo,
}


def open_store(url: str, settings: Settings | None = None) -> CatalogStore:
    """Open the store named by ``url``; an unknown scheme lists the valid ones."""
    scheme = urlparse(url).scheme.lower() if "://" in url else ""
    factory = SCHEMES.get(scheme)
    if factory is None:
        valid = ", ".join(f"{s}://" for s in SCHEMES)
        raise ConfigError(f"Unknown catalog store {mask_url(url)!r}; valid schemes: {valid}")
    return factory(url, settings)
