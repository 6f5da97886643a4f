"""Taggers describe a photo as ProductTags: Gemini online, CLIP zero-shot offline.

The contract lives in ``base.py`` (``Tagger``, ``TagResult``, ``TagCache``, ``image_key``, ``safe_tag``);
one backend per module (``clip.py``, ``gemini.py``), imported only when chosen; seeding enrichment in
``enrich.py``. This module holds the factory by name (``make_tagger``, from ``SIMILARITY_TAGGER``),
``FallbackTagger``, ``describe_job``, the work behind ``SearchService.describe_async``, and ``TagRunner``,
the threads it runs in.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, SimilarityError, TaggingError
from ..records import ProductTags
from .base import LABELS, TagCache, Tagger, TagResult, image_key, safe_tag
from .enrich import Enricher, fill_missing, make_enricher

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from ..config import Settings
    from ..embedder import OpenClipEmbedder


class FallbackTagger:
    """Tries ``primary``; on ``TaggingError`` answers with ``fallback``, noting the primary's reason."""

    def __init__(self, primary: Tagger, fallback: Tagger) -> None:
        self.primary, self.fallback = primary, fallback
        self.name = f"{primary.name}+{fallback.name}"

    def tag(self, image: Image.Image, *, key: str | None = None, vector: np.ndarray | None = None) -> TagResult:
        try:
            return self.primary.tag(image, key=key, vector=vector)
        except TaggingError as exc:
            reason = str(exc)
        result = self.fallback.tag(image, key=key, vector=vector)
        return dataclasses.replace(result, error=reason)


def make_tagger(settings: Settings, embedder: OpenClipEmbedder) -> Tagger | None:
    """The tagger chosen by ``SIMILARITY_TAGGER``: off, clip, gemini, or auto (Gemini with CLIP fallback
    when a key is set, else CLIP)."""
    if settings.tagger == "off":
        return None
    from .clip import ClipTagger

    if settings.tagger == "clip" or (settings.tagger == "auto" and not settings.gemini_api_key):
        return ClipTagger(embedder)
    if not settings.gemini_api_key:
        raise ConfigError("SIMILARITY_TAGGER=gemini needs GEMINI_API_KEY (or GOOGLE_API_KEY).")
    from .gemini import GeminiTagger

    gemini = GeminiTagger(settings.gemini_api_key, settings.gemini_model, base_url=settings.gemini_base_url)
    return gemini if settings.tagger == "gemini" else FallbackTagger(gemini, ClipTagger(embedder))


def describe_job(tagger: Tagger | None, source: Any, store: Any = None) -> Callable[[], TagResult] | None:
    """The work behind ``SearchService.describe_async``: a no-argument callable that never raises,
    or None when there is nothing to tag (tagging off, a text-only query)."""
    if tagger is None or source is None:
        return None
    if hasattr(source, "kind") and hasattr(source, "vector"):  # a search Query
        if source.image is not None:
            vector = source.vector if source.kind == "image" else None  # image-only: reuse its embedding
            return lambda: safe_tag(tagger, source.image, vector=vector)
        if source.source_id and store is not None:
            return lambda: _catalog_tags(store, source.source_id)
        return None
    return lambda: _decode_and_tag(tagger, source)


class TagRunner:
    """Runs ``describe_job`` work beside searches in a pool of ``workers`` threads, started on first use."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], TagResult] | None) -> Future[TagResult] | None:
        """Start ``job`` (None: nothing to tag, nothing started)."""
        if job is None:
            return None
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="describe")
            return self._pool.submit(job)

    @staticmethod
    def wait(future: Future[TagResult], timeout: float | None) -> TagResult:
        """The job's result, or a failed ``TagResult`` after ``timeout`` seconds."""
        try:
            return future.result(timeout)
        except FutureTimeout:
            return TagResult.failed("Tagging is taking longer than expected.")

    def close(self) -> None:
        """Drop pending work; a later ``submit`` starts a new pool."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _decode_and_tag(tagger: Tagger, source: Any) -> TagResult:
    from .. import images

    try:
        loaded = images.load_image(source)
    except SimilarityError as exc:
        return TagResult.failed(str(exc))
    return safe_tag(tagger, loaded.image, key=loaded.sha256)


def _catalog_tags(store: Any, product_id: str) -> TagResult:
    """A catalog product's stored metadata, so "more like this" shows tags without a tagger call."""
    try:
        products = store.get([product_id], thumbnails=False)
    except SimilarityError as exc:
        return TagResult.failed(str(exc))
    if not products:
        return TagResult.failed("That product is no longer in the catalog.")
    return TagResult(ProductTags.model_validate(products[0].metadata()), "catalog")


__all__ = [
    "LABELS",
    "Enricher",
    "FallbackTagger",
    "TagCache",
    "TagResult",
    "TagRunner",
    "Tagger",
    "describe_job",
    "fill_missing",
    "image_key",
    "make_enricher",
    "make_tagger",
    "safe_tag",
]
