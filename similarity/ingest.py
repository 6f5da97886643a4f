"""The ingest pipeline shared by ``data_seed`` and the catalog tab.

Items are read and decoded in worker threads while the previous batch runs through the model;
each batch is upserted atomically, and ids already stored are skipped before any work, so a
rerun adds nothing and a killed run resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from typing import TYPE_CHECKING, Any

from . import images
from .errors import SimilarityError
from .records import Product

if TYPE_CHECKING:
    from .embedder import OpenClipEmbedder
    from .store.base import CatalogStore

log = logging.getLogger(__name__)
LOW_PRIORITY = 19  # nice value of the decode threads


@dataclasses.dataclass
class IngestItem:
    """One image to add: a display key (file name), a way to get its bytes, and known metadata."""

    key: str
    read: Callable[[], bytes]
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class ItemOutcome:
    key: str
    status: str  # added | present | skipped | failed
    id: str | None = None
    reason: str = ""


@dataclasses.dataclass
class IngestReport:
    outcomes: list[ItemOutcome] = dataclasses.field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def added(self) -> int:
        return self.count("added")

    @property
    def present(self) -> int:
        return self.count("present")

    @property
    def skipped(self) -> int:
        return self.count("skipped")

    @property
    def failed(self) -> int:
        return self.count("failed")

    def summary(self) -> str:
        return f"added {self.added}, already present {self.present}, skipped {self.skipped}, failed {self.failed}"

    @property
    def exit_code(self) -> int:
        """Non-zero only when nothing could be added and something went wrong."""
        return 1 if self.added == 0 and self.present == 0 and (self.skipped or self.failed) else 0


@dataclasses.dataclass
class _Prepared:
    item: IngestItem
    id: str
    image: Any
    tensor: Any
    thumbnail: bytes


class Ingestor:
    """Embeds and stores items batch by batch. ``on_outcome`` is called once per item (progress, logs)."""

    def __init__(
        self,
        store: CatalogStore,
        embedder: OpenClipEmbedder,
        *,
        batch_size: int = 32,
        workers: int = 2,
        max_bytes: int = images.MAX_LOCAL_BYTES,
        reembed: bool = False,
        enrich: Callable[[list[Product], list[Any]], None] | None = None,
        on_outcome: Callable[[ItemOutcome], None] | None = None,
        screen: Callable[[list[Product]], dict[str, str]] | None = None,
        skip_screened: bool = False,
    ) -> None:
        self.store, self.embedder = store, embedder
        self.batch_size, self.workers, self.max_bytes = batch_size, workers, max_bytes
        self.reembed = reembed
        self.enrich = enrich  # fills missing metadata (e.g. a tagger) before the batch is stored
        self.on_outcome = on_outcome or (lambda outcome: None)
        # screen: notes per product near-identical to one already stored (similarity.duplicates.SeedScreen);
        # those products are reported (added, with the note) or, with skip_screened, skipped
        self.screen, self.skip_screened = screen, skip_screened
        self._seen: set[str] = set()  # ids handled earlier in this run (batches overlap the store check)

    def run(self, items: Iterable[IngestItem]) -> IngestReport:
        report = IngestReport()
        self.embedder.load()
        # one thread prepares the next batch (using the worker pool) while this one runs the model
        with (
            ThreadPoolExecutor(1, initializer=yield_cpu) as stage,
            ThreadPoolExecutor(self.workers, initializer=yield_cpu) as pool,
        ):
            pending: Future | None = None
            for batch in _batches(iter(items), self.batch_size):
                nxt = stage.submit(self._prepare_batch, pool, batch)
                if pending is not None:
                    self._store_batch(pending.result(), report)
                pending = nxt
            if pending is not None:
                self._store_batch(pending.result(), report)
        return report

    def _prepare_batch(self, pool: ThreadPoolExecutor, batch: list[IngestItem]) -> tuple[list, list]:
        """Read, decode, de-duplicate and preprocess one batch (runs while the previous one embeds)."""
        notes: list[ItemOutcome] = []
        loaded = []
        for result in pool.map(self._load, batch):
            (notes if isinstance(result, ItemOutcome) else loaded).append(result)
        present = set() if self.reembed else self.store.existing([image.sha256 for _, image in loaded])
        fresh: dict[str, tuple[IngestItem, images.LoadedImage]] = {}
        for item, image in loaded:
            if image.sha256 in present or image.sha256 in fresh or image.sha256 in self._seen:
                notes.append(ItemOutcome(item.key, "present", image.sha256))
            else:
                fresh[image.sha256] = (item, image)
        self._seen.update(fresh)
        return notes, list(pool.map(self._preprocess, fresh.values()))

    def _load(self, item: IngestItem) -> tuple[IngestItem, images.LoadedImage] | ItemOutcome:
        try:
            return item, images.load_image(item.read(), max_bytes=self.max_bytes)
        except SimilarityError as exc:
            return ItemOutcome(item.key, "skipped", reason=str(exc))
        except Exception:  # a source's reader may fail in its own way (I/O, dataset decoding)
            log.debug("reading %s failed", item.key, exc_info=True)
            return ItemOutcome(item.key, "skipped", reason="could not be read")

    def _preprocess(self, pair: tuple[IngestItem, images.LoadedImage]) -> _Prepared:
        item, image = pair
        tensor = self.embedder.preprocess(image.image)
        return _Prepared(item, image.sha256, image.image, tensor, images.make_thumbnail(image.image))

    def _store_batch(self, prepared_batch: tuple[list, list], report: IngestReport) -> None:
        notes, prepared = prepared_batch
        for outcome in notes:
            self._note(report, outcome)
        if not prepared:
            return
        import torch

        try:
            vectors = self.embedder.embed_tensors(torch.stack([p.tensor for p in prepared]))
            products = [self._product(p, v) for p, v in zip(prepared, vectors, strict=True)]
            near = self.screen(products) if self.screen is not None else {}
            products = [p for p in products if not (self.skip_screened and p.id in near)]
            if self.enrich is not None:
                self.enrich(products, [p.image for p in prepared if p.id not in near or not self.skip_screened])
            if products:
                self.store.upsert(products)
        except SimilarityError as exc:
            for p in prepared:
                self._note(report, ItemOutcome(p.item.key, "failed", p.id, str(exc)))
            return
        for p in prepared:
            status = "skipped" if self.skip_screened and p.id in near else "added"
            self._note(report, ItemOutcome(p.item.key, status, p.id, near.get(p.id, "")))

    def _product(self, prepared: _Prepared, vector: Any) -> Product:
        meta = {"source": prepared.item.key, **prepared.item.metadata}
        return Product.from_metadata(
            prepared.id, meta, thumbnail=prepared.thumbnail, embedding=vector, embedding_model=self.embedder.model_id
        )

    def _note(self, report: IngestReport, outcome: ItemOutcome) -> None:
        report.outcomes.append(outcome)
        self.on_outcome(outcome)


def yield_cpu() -> None:
    """Run this thread at the lowest CPU priority (Linux: per thread; elsewhere nothing happens).

    The model already keeps every core busy; decoding at normal priority preempts its threads, and
    the others then wait for them. At low priority decoding fills the model's gaps instead, which
    made seeding 3-6% faster on 2 cores (benchmarks/ingest.py).
    """
    if not sys.platform.startswith("linux"):  # elsewhere a thread id passed as a pid could name another process
        return
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOW_PRIORITY)


def _batches(items: Iterator[IngestItem], size: int) -> Iterator[list[IngestItem]]:
    # a smaller first batch (a quarter, at least 8): only its decoding is not overlapped, so the model starts sooner
    first = list(islice(items, min(size, max(8, size // 4))))
    if first:
        yield first
    while batch := list(islice(items, size)):
        yield batch
