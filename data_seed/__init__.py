"""Fill a catalog: ``python -m data_seed --source demo|folder:PATH|hf:NAME_OR_PATH``.

``seed_source`` is the programmatic entry point (the app uses it to seed an empty catalog once).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from similarity.embedder import OpenClipEmbedder
    from similarity.store.base import CatalogStore

    from .fetch import UrlImages
    from .options import DatasetOptions
    from .pipeline import SeedReport

__all__ = ["seed_source"]


def seed_source(
    spec: str,
    store: CatalogStore,
    embedder: OpenClipEmbedder,
    *,
    limit: int | None = None,
    progress: bool = True,
    columns: Any = None,
    options: DatasetOptions | None = None,
    urls: UrlImages | None = None,
    should_stop: Callable[[], bool] | None = None,
    **ingest_options: Any,
) -> SeedReport:
    """Seed ``store`` from a source spec with a progress bar; returns the per-item report and summary lines.

    ``options`` carries the dataset options (columns, categories, balance); ``columns`` is the older form.
    ``urls`` fetches image URLs (tests pass one with their own guard); URLs already stored are not fetched.
    ``should_stop`` ends the run after the current batch once it returns True (the app shutting down).
    """
    from itertools import takewhile

    from .dataset import stored_image_urls
    from .options import DatasetOptions
    from .pipeline import SeedReport, run_ingest
    from .sources import make_source

    if options is None:
        options = DatasetOptions(columns=columns.pairs() if columns is not None else ())
    source = make_source(spec, limit=limit, options=options, urls=urls, known_urls=lambda: stored_image_urls(store))
    items = source.items()
    if should_stop is not None:
        items = takewhile(lambda _item: not should_stop(), items)
    report = run_ingest(items, store, embedder, progress=progress, **ingest_options)
    return SeedReport(report.outcomes, notes=source.summary(), already_stored=source.already_stored())
