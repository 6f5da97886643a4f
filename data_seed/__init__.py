"""Fill a catalog: ``python -m data_seed --source demo|folder:PATH|hf:NAME_OR_PATH``.

``seed_source`` is the programmatic entry point (the app uses it to seed the demo catalog once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from similarity.embedder import OpenClipEmbedder
    from similarity.ingest import IngestReport
    from similarity.store.base import CatalogStore

__all__ = ["seed_source"]


def seed_source(
    spec: str,
    store: CatalogStore,
    embedder: OpenClipEmbedder,
    *,
    limit: int | None = None,
    progress: bool = True,
    columns: Any = None,
    **options: Any,
) -> IngestReport:
    """Seed ``store`` from a source spec with a progress bar; returns the per-item report."""
    from .pipeline import run_ingest
    from .sources import Columns, open_source

    items = open_source(spec, limit=limit, columns=columns or Columns())
    return run_ingest(items, store, embedder, progress=progress, **options)
