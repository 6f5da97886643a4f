"""Image URLs fetched through the app's guarded fetcher: bounded, polite per host, retried on 429/5xx.

``UrlImages.items`` turns (key, url, metadata) triples into IngestItems whose bytes are fetched in a small
thread pool while the ingest pipeline works; a failed fetch becomes an item whose read raises the (safe)
ImageError, so the pipeline skips it with one line, and the failures are counted by reason.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from similarity.errors import HttpStatusError, ImageError
from similarity.images import DEFAULT_GUARD, UrlGuard, fetch_url
from similarity.ingest import IngestItem

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class HostLimiter:
    """At most ``per_host`` fetches at once to one host, started at least ``interval`` seconds apart."""

    def __init__(self, per_host: int = 2, interval: float = 0.05) -> None:
        self.per_host, self.interval = per_host, interval
        self._lock = threading.Lock()
        self._slots: dict[str, threading.Semaphore] = {}
        self._next: dict[str, float] = {}

    def run(self, host: str, call: Callable[[], bytes]) -> bytes:
        with self._lock:
            slot = self._slots.setdefault(host, threading.Semaphore(self.per_host))
        with slot:
            with self._lock:  # reserve the next start time for this host
                now = time.monotonic()
                start = max(now, self._next.get(host, now))
                self._next[host] = start + self.interval
            time.sleep(max(0.0, start - now))
            return call()


class UrlImages:
    """Fetches dataset image URLs for seeding (the fetch function and the guard come in here, for tests)."""

    def __init__(
        self,
        guard: UrlGuard = DEFAULT_GUARD,
        *,
        concurrency: int = 8,
        per_host: int = 2,
        interval: float = 0.05,
        retries: int = 3,
        backoff: float = 0.5,
        fetch: Callable[[str, UrlGuard], bytes] = fetch_url,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.guard, self.concurrency, self.retries, self.backoff = guard, concurrency, retries, backoff
        self._fetch, self._sleep = fetch, sleep
        self.limiter = HostLimiter(per_host, interval)
        self.failures: Counter[str] = Counter()
        self.fetched = 0
        self.retried = 0
        self._count_lock = threading.Lock()

    def items(self, rows: Iterable[tuple[str, str, dict[str, Any]]]) -> Iterator[IngestItem]:
        """IngestItems for (key, url, metadata); fetches run ahead in the pool, at most ``concurrency`` at once."""
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="seed-fetch")
        finished = False
        try:
            for key, url, meta in rows:
                future = pool.submit(self.fetch, url)
                yield IngestItem(key, _reader(future), {**meta, "image_url": url})
            finished = True
        finally:  # on a normal end the pipeline still reads the last items: let their fetches finish
            pool.shutdown(wait=finished, cancel_futures=not finished)

    def fetch(self, url: str) -> bytes:
        """One URL with retries and backoff on 429 and 5xx; other failures are not retried."""
        host = urlsplit(url).netloc.lower() if isinstance(url, str) else ""
        for attempt in range(self.retries + 1):
            try:
                data = self.limiter.run(host, lambda: self._fetch(url, self.guard))
            except ImageError as exc:
                status = _status(exc)
                if status in RETRY_STATUSES and attempt < self.retries:
                    with self._count_lock:
                        self.retried += 1
                    self._sleep(self.backoff * 2**attempt * (0.5 + random.random()))  # jitter spreads retries out
                    continue
                self._count(reason=f"HTTP {status}" if status else _reason(exc))
                raise
            self._count()
            return data
        raise AssertionError("unreachable")  # the loop returns or raises

    def _count(self, reason: str | None = None) -> None:
        with self._count_lock:
            if reason is None:
                self.fetched += 1
            else:
                self.failures[reason] += 1

    def summary(self) -> list[str]:
        failed = sum(self.failures.values())
        if not (self.fetched or failed):
            return []
        reasons = ", ".join(f"{why}: {n}" for why, n in self.failures.most_common())
        line = f"image URLs: fetched {self.fetched}, failed {failed}" + (f" ({reasons})" if reasons else "")
        return [line + (f", retried {self.retried} times" if self.retried else "")]


def _reader(future: Future) -> Callable[[], bytes]:
    def read() -> bytes:
        return future.result()  # re-raises the fetch's ImageError in the pipeline's reading thread

    return read


def _status(exc: ImageError) -> int | None:
    return exc.status if isinstance(exc, HttpStatusError) else None


def _reason(exc: ImageError) -> str:
    text = str(exc)
    if "too long" in text:
        return "timeout"
    if "not point to an image" in text:
        return "not an image"
    if "Refused" in text:
        return "refused"
    return "unreachable"
