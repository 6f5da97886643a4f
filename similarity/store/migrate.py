"""Copy a catalog between any two stores (SQLite <-> MongoDB) without re-embedding."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ModelMismatchError
from .base import CatalogStore


def copy_catalog(
    source: CatalogStore,
    target: CatalogStore,
    batch_size: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Upsert every product of ``source`` (vectors, thumbnails, metadata) into ``target``; returns the count.

    Idempotent: products are upserted by id, so a re-run (or a resumed, interrupted run) converges.
    ``progress(done, total)`` is called after each batch.
    """
    _check_models(source, target)
    total, done = source.count(), 0
    for batch in source.iter_products(batch_size, vectors=True):
        target.upsert(batch)
        done += len(batch)
        if progress is not None:
            progress(done, total)
    return done


def _check_models(source: CatalogStore, target: CatalogStore) -> None:
    """Refuse to mix vectors of different models in one catalog (they are not comparable)."""
    theirs, ours = set(target.embedding_models()), set(source.embedding_models())
    if theirs and ours and theirs != ours:
        raise ModelMismatchError(
            f"The catalog at {target.display_url} was embedded with {', '.join(sorted(theirs))}, but "
            f"{source.display_url} with {', '.join(sorted(ours))}; copy into an empty catalog instead."
        )
