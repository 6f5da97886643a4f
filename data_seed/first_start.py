"""The app's first start: an empty catalog is filled in a background thread while the page is served.

``SIMILARITY_SEED_SOURCE`` (default ``demo``), ``SIMILARITY_SEED_LIMIT`` and ``SIMILARITY_SEED_ARGS`` (the
dataset options of ``python -m data_seed``) say what with. Each batch is stored as it is embedded, so
searches see what has been seeded so far. If the source fails before anything was added (no network, a
changed dataset), the demo catalog is seeded instead, with a log line and a notice on the page.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from similarity.errors import ConfigError, SimilarityError

from .demo import CATALOG, PER_CATEGORY
from .options import DEFAULT_OPTIONS, DatasetOptions, parse_seed_args
from .sources import SOURCE_FORMS

if TYPE_CHECKING:
    from similarity.config import Settings
    from similarity.embedder import OpenClipEmbedder
    from similarity.ingest import ItemOutcome
    from similarity.store.base import CatalogStore

log = logging.getLogger(__name__)
DEMO = "demo"


@dataclasses.dataclass(frozen=True)
class SeedStatus:
    """What the page shows: ``state`` is idle, seeding or done; ``notice`` explains a fallback or a stop."""

    state: str = "idle"
    done: int = 0
    total: int | None = None
    source: str = ""
    notice: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "active": self.state == "seeding"}

    def filling_note(self) -> str | None:
        """What a search of a still-empty catalog says while seeding runs (None once it has ended)."""
        if self.state != "seeding":
            return None
        of = f" of {self.total:,}" if self.total else ""
        return f"The catalog is being filled: {self.done:,}{of} products; try again in a moment."


def check_spec(spec: str) -> str:
    """A seed source spec of a known form (checked at start-up, before the page is served)."""
    kind, _, arg = spec.strip().partition(":")
    if (kind == DEMO and not arg) or (kind in ("folder", "hf") and arg):
        return spec.strip()
    raise ConfigError(f"SIMILARITY_SEED_SOURCE={spec!r} is not valid; use one of: {SOURCE_FORMS}")


class FirstStartSeeder:
    """Seeds an empty store once, in the background, and reports progress for the page's status line."""

    def __init__(
        self,
        store: CatalogStore,
        embedder: OpenClipEmbedder,
        spec: str = DEMO,
        *,
        limit: int | None = None,
        options: DatasetOptions = DEFAULT_OPTIONS,
        seed: Callable[..., Any] | None = None,
        **seed_options: Any,
    ) -> None:
        from . import seed_source

        self.store, self.embedder = store, embedder
        self.spec, self.limit, self.options = check_spec(spec), limit, options
        self._seed = seed or seed_source  # tests pass the real function with their own URL fetcher
        self._seed_options = seed_options
        self._lock = threading.Lock()
        self._status = SeedStatus(source=self.spec)
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None

    @classmethod
    def from_settings(
        cls, store: CatalogStore, embedder: OpenClipEmbedder, settings: Settings, seed: Callable[..., Any] | None = None
    ) -> FirstStartSeeder:
        """A seeder as the settings say; bad SIMILARITY_SEED_SOURCE/ARGS raise ConfigError here, at start-up."""
        options = parse_seed_args(settings.seed_args)
        return cls(store, embedder, settings.seed_source, limit=settings.seed_limit, options=options, seed=seed)

    def status(self) -> SeedStatus:
        with self._lock:
            return self._status

    def filling_note(self) -> str | None:
        """``SearchService.filling``: the seeding's progress for a search that finds the catalog empty."""
        return self.status().filling_note()

    def start(self) -> threading.Thread:
        """Begin seeding in a daemon thread (the page is served meanwhile)."""
        self._update(state="seeding", total=self._total(self.spec))
        self.thread = threading.Thread(target=self.run, name="first-start seeding", daemon=True)
        self.thread.start()
        return self.thread

    def stop(self, timeout: float = 0.0) -> None:
        """End the seeding after its current batch (the app is shutting down); wait up to ``timeout`` s."""
        self._stop.set()
        if self.thread is not None and timeout > 0:
            self.thread.join(timeout)

    def run(self) -> None:
        """Seed the configured source; fall back to the demo catalog if it fails before adding anything."""
        log.info("The catalog is empty: seeding it from %s into %s", self.spec, self.store.display_url)
        notice = ""
        try:
            report = self._run(self.spec, self.limit, self.options)
            if report.added == 0 and report.present == 0 and self.spec != DEMO and not self._stop.is_set():
                raise ConfigError(f"nothing could be added from {self.spec} ({report.summary()})")
            log.info("First-start seeding: %s", report.summary())
        except Exception as exc:  # any failure of a source (network, changed dataset) must leave a usable app
            reason = str(exc) if isinstance(exc, SimilarityError) else f"unexpected error ({type(exc).__name__})"
            if not isinstance(exc, SimilarityError):
                log.error("First-start seeding from %s failed", self.spec, exc_info=True)
            notice = self._fall_back(reason)
        self._update(state="done", notice=notice)

    def _fall_back(self, reason: str) -> str:
        added = self.store.count()
        if self.spec == DEMO or added or self._stop.is_set():
            log.error("Seeding from %s stopped after %d products: %s", self.spec, added, reason)
            return f"Seeding the catalog from {self.spec} stopped after {added} products: {reason}"
        log.error("Seeding from %s failed: %s. Seeding the demo catalog instead.", self.spec, reason)
        self._update(done=0, total=self._total(DEMO), source=DEMO)
        try:
            self._run(DEMO, None, DEFAULT_OPTIONS)
        except SimilarityError as exc:  # e.g. the model itself failed to load: the page says so too
            log.error("Seeding the demo catalog failed: %s", exc)
            return f"The catalog could not be seeded: {exc}"
        return f"Could not seed the catalog from {self.spec} ({reason}); the demo catalog was seeded instead."

    def _run(self, spec: str, limit: int | None, options: DatasetOptions) -> Any:
        return self._seed(
            spec, self.store, self.embedder, limit=limit, progress=False, options=options,
            on_outcome=self._count, should_stop=self._stop.is_set, **self._seed_options,
        )  # fmt: skip

    def _count(self, outcome: ItemOutcome) -> None:
        with self._lock:
            self._status = dataclasses.replace(self._status, done=self._status.done + 1)

    def _total(self, spec: str) -> int | None:
        if spec == DEMO:
            demo = len(CATALOG) * PER_CATEGORY
            return min(demo, self.limit) if self.limit and spec == self.spec else demo
        return self.limit

    def _update(self, **changes: Any) -> None:
        with self._lock:
            self._status = dataclasses.replace(self._status, **changes)
