"""A small sliding-window rate limiter for catalog writes (per client, in memory, thread-safe)."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from .errors import PermissionDeniedError

WRITES_PER_MINUTE = 10


class RateLimiter:
    """At most ``limit`` attempts per ``period_s`` seconds for each key (e.g. a client address).

    Callers check before the admin token, so wrong-token attempts count too (no quick guessing).
    ``clock`` is injectable for tests; ``max_keys`` bounds memory when many clients come and go.
    """

    def __init__(
        self,
        limit: int = WRITES_PER_MINUTE,
        period_s: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        if limit < 1 or period_s <= 0:
            raise ValueError("limit must be >= 1 and period_s > 0")
        self.limit, self.period_s, self.max_keys = limit, period_s, max_keys
        self._clock = clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> float:
        """Record an attempt for ``key``: 0 when allowed, else the seconds until the next one is."""
        now = self._clock()
        with self._lock:
            hits = self._hits.pop(key, None) or deque()
            while hits and hits[0] <= now - self.period_s:
                hits.popleft()
            wait = 0.0 if len(hits) < self.limit else hits[0] + self.period_s - now
            if not wait:
                hits.append(now)
            self._hits[key] = hits  # most recently seen last
            while len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
            return wait

    def waiting(self, key: str) -> float:
        """Seconds until ``key`` may try again (0 = now), without recording an attempt."""
        now = self._clock()
        with self._lock:
            hits = [t for t in self._hits.get(key, ()) if t > now - self.period_s]
            return 0.0 if len(hits) < self.limit else hits[0] + self.period_s - now

    def check(self, key: str) -> None:
        """Record an attempt; raise ``PermissionDeniedError`` when ``key`` is over its limit."""
        wait = self.retry_after(key)
        if wait:
            raise PermissionDeniedError(
                f"Too many catalog changes from your address (the limit is {self.limit} per "
                f"{self.period_s:g} s). Try again in {math.ceil(wait)} s."
            )


def client_key(request: object) -> str:
    """The client address of a ``gr.Request`` (or "unknown" when there is none, e.g. a direct call)."""
    client = getattr(request, "client", None)
    return str(getattr(client, "host", None) or "unknown")
