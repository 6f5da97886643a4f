"""Seeding enrichment: fill the metadata a product lacks from a tagger (``Ingestor(enrich=...)``)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from ..records import Product, ProductTags
from .base import Tagger, TagResult, safe_tag

if TYPE_CHECKING:
    from PIL import Image

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
