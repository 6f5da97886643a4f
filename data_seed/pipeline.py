"""Runs the shared ingest pipeline with a tqdm progress bar and one line per bad file."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TextIO

from tqdm import tqdm

from similarity.ingest import IngestItem, Ingestor, IngestReport, ItemOutcome

if TYPE_CHECKING:
    from similarity.embedder import OpenClipEmbedder
    from similarity.store.base import CatalogStore


@dataclasses.dataclass
class SeedReport(IngestReport):
    """The ingest report plus the source's own summary lines (categories, caps, URL fetches)."""

    notes: list[str] = dataclasses.field(default_factory=list)
    already_stored: int = 0  # items the source passed over unread because the catalog has them (image URLs)

    @property
    def present(self) -> int:
        return self.count("present") + self.already_stored


def run_ingest(
    items: Iterable[IngestItem],
    store: CatalogStore,
    embedder: OpenClipEmbedder,
    *,
    progress: bool = True,
    out: TextIO | None = None,
    on_outcome: Callable[[ItemOutcome], None] | None = None,
    workers: int | None = None,
    batch_size: int | None = None,
    **options: Any,
) -> IngestReport:
    """Embed and store ``items``; bad files are reported one line each on ``out`` (stderr).

    ``on_outcome`` also sees every item's outcome (the app's first start counts them for its status line).
    ``workers`` None and ``batch_size`` None: chosen by the embedder's device and this machine's cores
    (``similarity.ingest_procs.plan``); ``workers`` 0 decodes in threads, N in N worker processes.
    """
    from similarity.ingest_procs import plan
    from similarity.precision import usable_cores

    options.update(plan(embedder.device_info, usable_cores(), workers, batch_size).options())
    out = out or sys.stderr
    bar = tqdm(desc="seeding", unit="img", disable=not progress, file=out, dynamic_ncols=True)

    def note(outcome: ItemOutcome) -> None:
        bar.update(1)
        if on_outcome is not None:
            on_outcome(outcome)
        if outcome.status in ("skipped", "failed"):
            bar.write(f"{outcome.status}: {outcome.key}: {outcome.reason}", file=out)

    try:
        return Ingestor(store, embedder, on_outcome=note, **options).run(items)
    finally:
        bar.close()


def reembed_stored(store: CatalogStore, embedder: OpenClipEmbedder, *, progress: bool = True) -> int:
    """Re-embed every stored product from its stored thumbnail (ids and metadata unchanged)."""
    from similarity import images

    done = 0
    with tqdm(total=store.count(), desc="re-embedding", unit="img", disable=not progress, file=sys.stderr) as bar:
        for batch in store.iter_products(batch_size=embedder.batch_size * 4, vectors=False):
            usable = [p for p in batch if p.thumbnail]
            vectors = embedder.embed_images([images.load_image(p.thumbnail).image for p in usable])
            for product, vector in zip(usable, vectors, strict=True):
                product.embedding, product.embedding_model = vector, embedder.model_id
            store.upsert(usable)
            done += len(usable)
            bar.update(len(batch))
    return done


def retag_stored(store: CatalogStore, enrich: Callable[[list, list], None], *, progress: bool = True) -> int:
    """Run ``enrich`` (an overwriting tagging hook) over every stored product's thumbnail and save it."""
    from similarity import images

    done = 0
    with tqdm(total=store.count(), desc="re-tagging", unit="img", disable=not progress, file=sys.stderr) as bar:
        for batch in store.iter_products(batch_size=64, vectors=True):
            usable = [p for p in batch if p.thumbnail]
            enrich(usable, [images.load_image(p.thumbnail).image for p in usable])
            store.upsert(usable)
            done += len(usable)
            bar.update(len(batch))
    return done
