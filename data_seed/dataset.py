"""The ``hf:`` source: dataset rows -> mapped, category-balanced IngestItems (embedded images or URLs).

Order of work per row: read only the mapped columns, map the columns, map the category, apply the
per-category cap and the limit, skip URLs already in the catalog, and only then touch the image.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator
from functools import partial
from typing import Any

from similarity import images
from similarity.errors import ImageError
from similarity.ingest import IngestItem

from .categories import Balancer, CategoryMapper, load_category_map
from .fetch import UrlImages
from .hf import open_dataset
from .mapping import ColumnMap
from .options import DEFAULT_OPTIONS, DatasetOptions

log = logging.getLogger(__name__)


class DatasetSource:
    """One dataset opened for seeding; ``summary()`` says what was mapped, capped, fetched and passed over."""

    def __init__(
        self,
        name: str,
        options: DatasetOptions = DEFAULT_OPTIONS,
        *,
        limit: int | None = None,
        urls: UrlImages | None = None,
        known_urls: Callable[[], Collection[str]] | None = None,
    ) -> None:
        self.name, self.options, self.limit = name, options, limit
        user_map = dict(load_category_map(options.category_map)) if options.category_map else {}
        user_map.update(options.map_category)  # --map-category wins over the file
        self.categories = CategoryMapper(user_map)
        self.balance = Balancer(options.per_category)
        self.dataset = open_dataset(name, options.split)
        self.columns = ColumnMap.resolve(options.column_map(), self.dataset.columns, f"The dataset {name!r}")
        self.image_kind = self.dataset.image_kind(self.columns.image_column)
        self.urls = (urls or UrlImages(concurrency=options.concurrency)) if self.image_kind == "url" else None
        self._known_urls = known_urls
        self.already_stored = 0  # URL rows passed over because the catalog has their URL

    def items(self) -> Iterator[IngestItem]:
        """The dataset's products; with URLs, the fetching runs ahead in a bounded pool."""
        rows = self._rows()
        if self.urls is None:
            return (IngestItem(key, partial(_embedded_bytes, cell), meta) for key, cell, meta in rows)
        return self.urls.items(self._new_urls(rows))

    def _rows(self) -> Iterator[tuple[str, Any, dict[str, Any]]]:
        taken = 0
        image = self.columns.image_column
        for n, row in enumerate(self.dataset.rows(self.columns.needed_columns(), image)):
            if self.limit is not None and taken >= self.limit:
                return
            meta = self.categories.apply(self.columns.metadata(row))
            if not self.balance.admit(meta["category"]):
                if self.balance.full:
                    return  # every category is full: reading on would only pass rows over
                continue
            taken += 1
            yield f"{self.name}#{n}", row.get(image), {**meta, "source": f"{self.name} #{n}"}

    def _new_urls(self, rows: Iterator[tuple[str, Any, dict[str, Any]]]) -> Iterator[tuple[str, str, dict]]:
        known = set(self._known_urls()) if self._known_urls else set()  # built once, before the first fetch
        for key, url, meta in rows:
            url = url.strip() if isinstance(url, str) else ""
            if url and url in known:
                self.already_stored += 1
                continue
            if url:
                known.add(url)  # the same URL twice in one run is fetched once
            yield key, url, meta

    def summary(self) -> list[str]:
        lines = self.categories.summary() + self.balance.summary()
        if self.urls is not None:
            lines += self.urls.summary()
        if self.already_stored:
            lines.append(f"image URLs already in the catalog (not fetched again): {self.already_stored}")
        return lines


def _embedded_bytes(value: Any) -> bytes:
    """A dataset image cell ({'bytes', 'path'}, raw bytes or a PIL image) -> encoded bytes."""
    if isinstance(value, dict):
        if value.get("bytes"):
            return bytes(value["bytes"])
        if value.get("path"):
            return images.read_bytes(value["path"])
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if hasattr(value, "save"):
        import io

        buf = io.BytesIO()
        value.save(buf, "PNG")
        return buf.getvalue()
    raise ImageError("The dataset row has no image.")


def stored_image_urls(store: Any) -> set[str]:
    """The source URLs of the products already in a catalog (one pass over it, without vectors)."""
    return {p.image_url for batch in store.iter_products(vectors=False) for p in batch if p.image_url}
