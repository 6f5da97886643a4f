"""The tagger contract: the ``Tagger`` protocol, ``TagResult``, the result cache and ``safe_tag``.

Every backend (``clip.py``, ``gemini.py``) implements :class:`Tagger`: ``tag(image, key=None,
vector=None) -> TagResult`` and raises ``TaggingError`` (short, key-free message) when it cannot.
Backends import only this module, never the package's ``__init__``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import SimilarityError
from ..records import ProductTags

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

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
