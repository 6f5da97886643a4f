"""The ingest pipeline shared by ``data_seed`` and the catalog tab.

Items are read and decoded in worker threads, or with ``processes`` in worker processes
(``ingest_procs.py``), while the previous batch runs through the model; each batch is upserted
atomically, and ids already stored are skipped before any decoding, so a rerun adds nothing and
a killed run resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from typing import TYPE_CHECKING, Any

import numpy as np

from . import images
from .errors import SimilarityError
from .ingest_items import LOW_PRIORITY, IngestItem, ItemOutcome
from .records import Product

if TYPE_CHECKING:
    from .embedder import OpenClipEmbedder
    from .store.base import CatalogStore

log = logging.getLogger(__name__)
PROCESS_LOOKAHEAD = 3  # batches whose decoding is in the worker processes' hands while one embeds
__all__ = ["LOW_PRIORITY", "IngestItem", "IngestReport", "Ingestor", "ItemOutcome"]


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
    image: Any  # the decoded picture (threads) or None (processes: rebuilt from the thumbnail if a tagger asks)
    tensor: Any  # the model's input tensor (threads) or its uint8 crop (processes)
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
        processes: int = 0,
        max_bytes: int = images.MAX_LOCAL_BYTES,
        reembed: bool = False,
        enrich: Callable[[list[Product], list[Any]], None] | None = None,
        on_outcome: Callable[[ItemOutcome], None] | None = None,
        screen: Callable[[list[Product]], dict[str, str]] | None = None,
        skip_screened: bool = False,
    ) -> None:
        self.store, self.embedder = store, embedder
        self.batch_size, self.workers, self.max_bytes = batch_size, workers, max_bytes
        self.processes = processes  # > 0: decode in this many worker processes instead of threads
        self._crops: Any = None  # the CropSpec when the batches hold uint8 crops
        self.reembed = reembed
        self.enrich = enrich  # fills missing metadata (e.g. a tagger) before the batch is stored
        self.on_outcome = on_outcome or (lambda outcome: None)
        # screen: notes per product near-identical to one stored or seeded before it (duplicates.SeedScreen);
        # those products are reported (added, with the note) or, with skip_screened, skipped
        self.screen, self.skip_screened = screen, skip_screened
        self._seen: set[str] = set()  # ids handled earlier in this run (batches overlap the store check)
        self._decoding: dict[str, Future] = {}  # processes: ids sent to the workers, not yet stored or skipped
        self._ids_lock = threading.Lock()  # _seen and _decoding: the stage thread reads, the model's thread writes

    def run(self, items: Iterable[IngestItem]) -> IngestReport:
        self.embedder.load()
        spec = self.embedder.crop_spec if self.processes > 0 else None
        if self.processes > 0 and spec is None:
            log.warning("This model's preprocessing is not a plain resize and crop: decoding in threads instead")
        if spec is None:
            with ThreadPoolExecutor(self.workers, initializer=yield_cpu) as pool:
                return self._run(items, lambda batch: self._prepare_batch(pool, batch))
        from .ingest_procs import ProcessPrep

        self._crops = spec
        with ProcessPrep(self.processes, spec, self.max_bytes) as prep:
            return self._run(items, lambda batch: self._prepare_in_processes(prep, batch), PROCESS_LOOKAHEAD)

    def _run(
        self, items: Iterable[IngestItem], prepare: Callable[[list[IngestItem]], Any], ahead: int = 1
    ) -> IngestReport:
        """One thread prepares the next batches (using the worker pool) while this one runs the model: the thread
        path one batch ahead; the process path ``ahead`` batches, whose decoding it only submits, so the worker
        processes never wait for the model or the store."""
        report = IngestReport()
        with ThreadPoolExecutor(1, initializer=yield_cpu) as stage:
            pending: deque[Future] = deque()
            for batch in _batches(iter(items), self.batch_size):
                pending.append(stage.submit(prepare, batch))
                while len(pending) > ahead:
                    self._store_batch(_ready(pending.popleft().result()), report)
            while pending:
                self._store_batch(_ready(pending.popleft().result()), report)
        return report

    def _prepare_batch(self, pool: ThreadPoolExecutor, batch: list[IngestItem]) -> tuple[list, list]:
        """Read, decode, de-duplicate and preprocess one batch (runs while the previous one embeds)."""
        notes: list[ItemOutcome] = []
        loaded = []
        for result in pool.map(self._load, batch):
            (notes if isinstance(result, ItemOutcome) else loaded).append(result)
        fresh = self._fresh([(item, image.sha256, image) for item, image in loaded], notes)
        self._seen.update(fresh)
        return notes, list(pool.map(self._preprocess, fresh.values()))

    def _prepare_in_processes(self, prep: Any, batch: list[IngestItem]) -> Callable[[], tuple[list, list]]:
        """Read and hash here, skip what is stored, and send the rest to the worker processes (decode, crop,
        thumbnail); returns what collects their results, called when the batch's turn to embed comes."""
        notes: list[ItemOutcome] = []
        read = []
        for result in prep.read(batch):
            (notes if isinstance(result, ItemOutcome) else read).append(result)
        held: list[tuple[IngestItem, str, Future | None]] = []  # repeats of items in decoding
        present = self._stored(read)  # (asked outside the lock: the model's thread waits for it)
        with self._ids_lock:
            fresh = self._fresh(read, notes, held, present)
            futures = {sha: prep.submit(data) for sha, (_, data) in fresh.items()}
            self._decoding.update(futures)

        def collect() -> tuple[list, list]:
            prepared, good = [], []
            for sha, (item, _) in fresh.items():
                out = futures[sha].result()
                if out.reason:
                    notes.append(ItemOutcome(item.key, "skipped", reason=out.reason))
                else:
                    good.append(sha)
                    prepared.append(_Prepared(item, sha, None, out.crop, out.thumbnail))
            for item, sha, earlier in held:
                failed = (earlier or futures[sha]).result().reason
                notes.append(
                    ItemOutcome(item.key, "skipped", reason=failed) if failed else ItemOutcome(item.key, "present", sha)
                )
            with self._ids_lock:  # a repeat that comes later is present (decoded) or decoded again (it failed)
                self._seen.update(good)
                for sha in fresh:
                    self._decoding.pop(sha, None)
            return notes, prepared

        return collect

    def _stored(self, hashed: list[tuple[IngestItem, str, Any]]) -> set[str]:
        return set() if self.reembed else set(self.store.existing([sha for _, sha, _ in hashed]))

    def _fresh(
        self,
        hashed: list[tuple[IngestItem, str, Any]],
        notes: list[ItemOutcome],
        held: list | None = None,
        present: set[str] | None = None,
    ) -> dict:
        """sha -> (item, payload) of the items not stored nor seen in this run; the rest noted as present (or,
        with ``held``, repeats of an item still being decoded, whose outcome waits for its decoding)."""
        present = self._stored(hashed) if present is None else present
        fresh: dict[str, tuple[IngestItem, Any]] = {}
        for item, sha, payload in hashed:
            if held is not None and sha not in present and (sha in fresh or sha in self._decoding):
                held.append((item, sha, self._decoding.get(sha)))  # None: decoded with this batch
            elif sha in present or sha in fresh or sha in self._seen:
                notes.append(ItemOutcome(item.key, "present", sha))
            else:
                fresh[sha] = (item, payload)
        return fresh

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
            if self._crops is not None:  # uint8 crops from worker processes: normalised on the model's device
                vectors = self.embedder.embed_crops(np.stack([p.tensor for p in prepared]), self._crops)
            else:
                vectors = self.embedder.embed_tensors(torch.stack([p.tensor for p in prepared]))
            products = [self._product(p, v) for p, v in zip(prepared, vectors, strict=True)]
            near = self.screen(products) if self.screen is not None else {}
            products = [p for p in products if not (self.skip_screened and p.id in near)]
            if self.enrich is not None:
                kept = [p for p in prepared if p.id not in near or not self.skip_screened]
                self.enrich(products, [p.image or images.load_image(p.thumbnail).image for p in kept])
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


def _ready(prepared: Any) -> tuple[list, list]:
    """A prepared batch, or the call that collects it from the worker processes."""
    return prepared() if callable(prepared) else prepared


def _batches(items: Iterator[IngestItem], size: int) -> Iterator[list[IngestItem]]:
    # a smaller first batch (a quarter, at least 8): only its decoding is not overlapped, so the model starts sooner
    first = list(islice(items, min(size, max(8, size // 4))))
    if first:
        yield first
    while batch := list(islice(items, size)):
        yield batch
