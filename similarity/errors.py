"""Domain errors. They carry short, human messages; edges (UI, CLI) translate them.

Messages must never contain secrets (passwords, API keys) or raw exception text from libraries.
"""

from __future__ import annotations


class SimilarityError(Exception):
    """Base class: ``str(err)`` is a short message that is safe to show to a user."""

    exit_code = 1


class ConfigError(SimilarityError):
    """A setting has a value we cannot use."""

    exit_code = 2


class ImageError(SimilarityError):
    """An image could not be read, decoded or fetched."""


class HttpStatusError(ImageError):
    """A fetched URL answered with an HTTP error status (kept in ``status``, e.g. for retrying 429 and 5xx)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"The URL answered with HTTP {status}.")
        self.status = status


class UrlRefusedError(ImageError):
    """A URL was refused by the fetch guard (scheme, address, size, type)."""


class ModelError(SimilarityError):
    """The embedding model could not be loaded (e.g. weights missing offline)."""


class StoreError(SimilarityError):
    """The catalog store is unreachable or failed."""


class ModelMismatchError(StoreError):
    """The catalog's vectors were made by another embedding model than the configured one."""


class EmptyCatalogError(SimilarityError):
    """The catalog has no products yet."""


class NotFoundError(SimilarityError):
    """A product id is not in the catalog."""


class TaggingError(SimilarityError):
    """A tagger failed; searches go on without (or with fallback) tags."""


class PermissionDeniedError(SimilarityError):
    """A write was attempted without a valid admin token, or too often."""


class LimitError(SimilarityError):
    """A per-user cap was reached (e.g. saved products)."""
