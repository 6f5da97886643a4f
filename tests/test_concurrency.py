"""Reads during writes: a SearchService keeps answering while ``data_seed`` writes the same SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from data_seed import seed_source
from similarity.images import image_sha256
from similarity.search import SearchService
from similarity.store.local import LocalStore

from .helpers import TINY_ENV, image_bytes, make_image

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

FIRST, LATER = 6, 32


def _folder(root: Path, n: int, offset: int, size: tuple[int, int]) -> list[bytes]:
    root.mkdir()
    data = []
    for i in range(offset, offset + n):
        colour = ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)
        data.append(image_bytes(make_image(colour, (size[0] + i % 13, size[1]), shape=i)))
        (root / f"p{i:03d}.png").write_bytes(data[-1])
    return data


class Reader(threading.Thread):
    """Searches in a loop until stopped, recording the catalog size each answer came from."""

    def __init__(self, service: SearchService, query: bytes, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.service, self.query, self.stop = service, query, stop
        self.errors: list[BaseException] = []
        self.sizes: list[int] = []  # catalog size (from the index) behind each answer

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                result = self.service.search(self.query, top_k=100)
                assert result.matches and result.matches[0].score > 0.99  # the query photo is in the catalog
                self.sizes.append(len(self.service.ranker.current()))
            except BaseException as exc:  # every failure is reported by the test
                self.errors.append(exc)
                return
            self.stop.wait(0.02)  # leave the writer some CPU on a 2-core machine


def test_searches_keep_answering_while_data_seed_writes(tmp_path, tiny_embedder):
    first = _folder(tmp_path / "first", FIRST, 0, (96, 80))
    later = _folder(tmp_path / "later", LATER, 100, (640, 480))  # photo-sized: the writer runs for seconds
    db = tmp_path / "catalog.db"
    store = LocalStore(db)
    seed_source(f"folder:{tmp_path / 'first'}", store, tiny_embedder, progress=False, batch_size=8)
    service = SearchService(store, tiny_embedder)
    assert len(service.search(first[0]).matches) == FIRST

    env = {**os.environ, **TINY_ENV, "SIMILARITY_STORE": f"sqlite:///{db}", "SIMILARITY_TAGGER": "off"}
    cmd = [sys.executable, "-m", "data_seed", "--source", f"folder:{tmp_path / 'later'}", "--batch-size", "4"]
    writer = subprocess.Popen([*cmd, "--no-progress"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    stop = threading.Event()
    readers = [Reader(service, first[i], stop) for i in range(2)]
    for reader in readers:
        reader.start()
    try:
        out, _ = writer.communicate(timeout=180)
    finally:
        stop.set()
        for reader in readers:
            reader.join(timeout=30)
    assert writer.returncode == 0 and f"added {LATER}," in out
    for reader in readers:
        assert not reader.errors, reader.errors[:1]
        # answers came from partly written catalogs too, and never from a shrinking one
        assert any(FIRST < size < FIRST + LATER for size in reader.sizes), sorted(set(reader.sizes))
        assert reader.sizes == sorted(reader.sizes)

    # after the refresh (the store's version changed) the new products are found
    start = time.perf_counter()
    result = service.search(later[-1], top_k=5)
    assert time.perf_counter() - start < 10
    assert result.matches[0].product.id == image_sha256(later[-1]) and result.matches[0].score > 0.99
    assert store.count() == FIRST + LATER and store.integrity_ok()
    store.close()
