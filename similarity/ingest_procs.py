"""Seeding's per-item work in worker processes (``Ingestor(processes=N)``), and how many workers to use.

The parent reads each item's bytes (threads: a source may fetch URLs), hashes them and skips what the
catalog already holds, exactly where the thread path does; worker processes decode, crop to the model's
input as uint8 and make the thumbnail (``ingest_items``); the crops are normalised on the model's device.
Processes escape the GIL: threads of one process fed an H200 236 products/s out of 31,000 the model can
embed. Workers are spawned (no fork of a process running torch threads) and exit when the parent dies.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import TYPE_CHECKING

from . import images, ingest_items
from .errors import SimilarityError
from .ingest_items import IngestItem, ItemOutcome
from .preprocess import CropSpec

if TYPE_CHECKING:
    from .device import Device

log = logging.getLogger(__name__)
CPU_BATCH, GPU_BATCH = 32, 256  # products per model batch (a GPU wants big ones)
THREADS = 2  # decoding threads of the thread path (today's default on 2 cores)


@dataclasses.dataclass(frozen=True)
class Plan:
    """How seeding uses the machine: model batch size, decoding threads or worker processes."""

    batch_size: int
    processes: int  # 0: decode in threads of this process
    workers: int = THREADS  # decoding threads (the thread path)

    def options(self) -> dict[str, int]:
        return {"batch_size": self.batch_size, "processes": self.processes, "workers": self.workers}

    def describe(self) -> str:
        how = f"{self.processes} worker processes" if self.processes else f"{self.workers} decoding threads"
        return f"batch {self.batch_size}, {how}"


def plan(device: Device, cores: int, workers: int | None = None, batch_size: int | None = None) -> Plan:
    """``workers`` None: by cores and device (a GPU: cores - 1 processes; a CPU: threads on 2 cores, where the
    model needs both and processes bought nothing, else half the cores); 0: threads; N: N processes."""
    gpu = device.kind == "cuda"
    batch = batch_size or (GPU_BATCH if gpu else CPU_BATCH)
    if workers is None:
        # on a CPU the per-item work costs about the bf16 model's CPU time per item: half the cores decode
        workers = max(1, cores - 1) if gpu else (0 if cores <= 2 else max(2, cores // 2))
    if workers < 0:
        raise SimilarityError("--workers must be 0 (decode in threads) or more (worker processes)")
    return Plan(batch, workers)


class ProcessPrep:
    """A batch's reading, de-duplication and decoding, with a pool of worker processes (a context manager)."""

    def __init__(self, processes: int, spec: CropSpec, max_bytes: int, readers: int = 4) -> None:
        self.spec = spec
        context = multiprocessing.get_context("spawn")
        initargs = (os.getpid(), spec, max_bytes)
        self.pool = ProcessPoolExecutor(
            processes, mp_context=context, initializer=ingest_items.init_worker, initargs=initargs
        )
        self.readers = ThreadPoolExecutor(readers, thread_name_prefix="ingest-read")
        self.chunk = 4  # items per message to a worker

    def __enter__(self) -> ProcessPrep:
        return self

    def __exit__(self, *exc: object) -> None:
        self.readers.shutdown(wait=True, cancel_futures=True)
        self.pool.shutdown(wait=True, cancel_futures=True)

    def read(self, batch: list[IngestItem]) -> list[tuple[IngestItem, str, bytes] | ItemOutcome]:
        """Each item's bytes and their sha256 (the product id), or its skipped outcome."""
        return list(self.readers.map(_read, batch))

    def decode(self, datas: list[bytes]) -> list[ingest_items.Decoded]:
        return list(self.pool.map(ingest_items.decode_item, datas, chunksize=self.chunk))

    def submit(self, data: bytes) -> Future:
        """One item's decoding, in the background: a future of its ``Decoded``."""
        return self.pool.submit(ingest_items.decode_item, data)


def _read(item: IngestItem) -> tuple[IngestItem, str, bytes] | ItemOutcome:
    try:
        data = item.read()
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"a reader returned {type(data).__name__}")
        data = bytes(data)
    except SimilarityError as exc:
        return ItemOutcome(item.key, "skipped", reason=str(exc))
    except Exception:  # a source's reader may fail in its own way (I/O, dataset decoding)
        log.debug("reading %s failed", item.key, exc_info=True)
        return ItemOutcome(item.key, "skipped", reason="could not be read")
    return item, images.image_sha256(data), data
