"""Taggers describe a photo as ProductTags: Gemini online, CLIP zero-shot offline.

Every tagger implements :class:`Tagger`: ``tag(image, key=None, vector=None) -> TagResult`` and
raises ``TaggingError`` (short, key-free message) when it cannot. ``make_tagger`` picks one from
``SIMILARITY_TAGGER``; ``safe_tag`` turns failures into a ``TagResult`` for the UI, and
``make_enricher`` fills missing product metadata during ingest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from .errors import ConfigError, SimilarityError, TaggingError
from .records import Product, ProductTags

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from .config import Settings
    from .embedder import OpenClipEmbedder

log = logging.getLogger(__name__)

LABELS = {"gemini": "Gemini", "clip": "CLIP (offline)", "catalog": "catalog metadata", "none": "no tagger"}


@dataclasses.dataclass(frozen=True)
class TagResult:
    """What a tagger saw. ``tagger`` is who produced ``tags`` ("gemini", "clip" or "none" on failure);
    ``error`` is why the preferred tagger failed (set on fallback results and on failures)."""

    tags: ProductTags
    tagger: str
    confidence: dict[str, float] = dataclasses.field(default_factory=dict)
    error: str = ""
    elapsed_ms: float = 0.0

    @classmethod
    def failed(cls, reason: str) -> TagResult:
        return cls(ProductTags(), "none", error=reason)

    @property
    def ok(self) -> bool:
        return self.tagger != "none"

    @property
    def detected_category(self) -> str | None:
        """The category worth ticking in the filter ("other" and failures give None)."""
        category = self.tags.category
        return category if self.ok and category != "other" else None

    @property
    def label(self) -> str:
        """Who produced the tags, for the UI, e.g. ``CLIP (offline) — Gemini timed out``."""
        label = LABELS.get(self.tagger, self.tagger)
        return f"{label} — {self.error}" if self.error else label

    def to_dict(self) -> dict[str, Any]:
        data = self.tags.model_dump()
        data.update(tagger=self.tagger, label=self.label, confidence=self.confidence, error=self.error or None)
        return data


class Tagger(Protocol):
    name: str

    def tag(self, image: Image.Image, *, key: str | None = None, vector: np.ndarray | None = None) -> TagResult:
        """Describe ``image``. ``key``: a stable id (sha256) for caching; ``vector``: its CLIP embedding
        if already computed. Raises ``TaggingError`` with a short, secret-free reason."""
        ...


def image_key(image: Image.Image) -> str:
    """sha256 of the decoded pixels: the cache key for images that arrive without one."""
    digest = hashlib.sha256(f"{image.mode}:{image.size}".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


class TagCache:
    """A small thread-safe LRU of results by image sha256 (failures are never cached)."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._items: OrderedDict[str, TagResult] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> TagResult | None:
        with self._lock:
            result = self._items.get(key)
            if result is not None:
                self._items.move_to_end(key)
            return result

    def put(self, key: str, result: TagResult) -> None:
        with self._lock:
            self._items[key] = result
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


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
    from .tagging_clip import ClipTagger

    if settings.tagger == "clip" or (settings.tagger == "auto" and not settings.gemini_api_key):
        return ClipTagger(embedder)
    if not settings.gemini_api_key:
        raise ConfigError("SIMILARITY_TAGGER=gemini needs GEMINI_API_KEY (or GOOGLE_API_KEY).")
    from .tagging_gemini import GeminiTagger

    gemini = GeminiTagger(settings.gemini_api_key, settings.gemini_model, base_url=settings.gemini_base_url)
    return gemini if settings.tagger == "gemini" else FallbackTagger(gemini, ClipTagger(embedder))


def safe_tag(tagger: Tagger, image: Image.Image, *, key: str | None = None, vector: Any = None) -> TagResult:
    """``tagger.tag`` that never raises: failures become ``TagResult.failed(reason)``."""
    start = time.perf_counter()
    try:
        result = tagger.tag(image, key=key, vector=vector)
    except SimilarityError as exc:  # TaggingError, or a model/image error from the offline tagger
        return TagResult.failed(str(exc))
    except Exception:  # a tagger bug must not break a search; the type is enough for the log
        log.warning("tagger %s failed unexpectedly", getattr(tagger, "name", "?"), exc_info=True)
        return TagResult.failed("Tagging failed.")
    return dataclasses.replace(result, elapsed_ms=(time.perf_counter() - start) * 1000)


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


def _decode_and_tag(tagger: Tagger, source: Any) -> TagResult:
    from . import images

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


# -- ingest --------------------------------------------------------------------------------
TEXT_FIELDS = ("name", "subcategory", "description")


class Enricher:
    """Ingest hook: fills fields missing from each product's metadata from a tagger.

    At most ``concurrency`` tagger calls run at a time. A product whose tagging fails keeps its known
    fields and is recorded in ``failures`` as (product id, reason); ``fallbacks`` counts products
    tagged by the fallback tagger. With ``overwrite`` (re-tagging) every tagger field is replaced.
    """

    def __init__(self, tagger: Tagger, concurrency: int = 4, overwrite: bool = False) -> None:
        self.tagger, self.concurrency, self.overwrite = tagger, max(1, concurrency), overwrite
        self.failures: list[tuple[str, str]] = []
        self.tagged = 0
        self.fallbacks = 0
        self._lock = threading.Lock()

    def __call__(self, products: list[Product], pictures: Sequence[Image.Image]) -> None:
        todo = [(p, im) for p, im in zip(products, pictures, strict=True) if self.overwrite or _missing(p)]
        if not todo:
            return
        with ThreadPoolExecutor(min(self.concurrency, len(todo)), thread_name_prefix="enrich") as pool:
            results = pool.map(lambda pair: safe_tag(self.tagger, pair[1], key=pair[0].id), todo)
            for (product, _), result in zip(todo, results, strict=True):
                self._apply(product, result)

    def _apply(self, product: Product, result: TagResult) -> None:
        with self._lock:
            if not result.ok:
                self.failures.append((product.id, result.error or "tagging failed"))
                return
            self.tagged += 1
            self.fallbacks += bool(result.error)
        fill_missing(product, result.tags, self.overwrite)

    def summary(self) -> str:
        text = f"tagged {self.tagged}, tagging failed {len(self.failures)}"
        return text + (f" (fallback tagger used {self.fallbacks}x)" if self.fallbacks else "")


def make_enricher(tagger: Tagger, concurrency: int = 4, overwrite: bool = False) -> Enricher:
    """An ``Ingestor(enrich=...)`` hook; see :class:`Enricher` (``failures``, ``summary()``)."""
    return Enricher(tagger, concurrency, overwrite)


def _missing(product: Product) -> bool:
    return (
        product.category == "other"
        or not (product.colors and product.tags)
        or product.brand is None
        or product.target_audience is None
        or not all(getattr(product, f) for f in TEXT_FIELDS)
    )


def fill_missing(product: Product, tags: ProductTags, overwrite: bool = False) -> None:
    """Copy tag values into fields the product lacks (all tagger fields when ``overwrite``)."""
    for field in TEXT_FIELDS:
        if getattr(tags, field) and (overwrite or not getattr(product, field)):
            setattr(product, field, getattr(tags, field))
    if tags.category != "other" and (overwrite or product.category == "other"):
        product.category = tags.category
    for field in ("colors", "tags"):
        if getattr(tags, field) and (overwrite or not getattr(product, field)):
            setattr(product, field, tuple(getattr(tags, field)))
    for field in ("brand", "target_audience"):
        if getattr(tags, field) and (overwrite or getattr(product, field) is None):
            setattr(product, field, getattr(tags, field))


__all__ = [
    "Enricher",
    "FallbackTagger",
    "TagCache",
    "TagResult",
    "Tagger",
    "describe_job",
    "fill_missing",
    "image_key",
    "make_enricher",
    "make_tagger",
    "safe_tag",
]
