"""Catalog-tab handlers: paged browsing with filters, store information, and adding products.

Adding products runs the same ingest path as ``data_seed``; it is allowed only when the server has
an admin token and the user enters it (compared with ``hmac.compare_digest``).
"""

from __future__ import annotations

import functools
import hmac
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr

from .. import images
from ..errors import EmptyCatalogError, PermissionDeniedError, SimilarityError
from ..ingest import IngestItem, Ingestor
from ..ratelimit import RateLimiter, client_key
from ..records import FACET_GROUPS, Filters
from ..search import SearchService
from . import format as fmt
from .files import UiFiles
from .handlers import user_errors

PAGE_SIZE = 24
MAX_FILES = 50  # per "add products" submission
READ_ONLY = "The catalog is read-only here. Set `SIMILARITY_ADMIN_TOKEN` on the server to allow adding products."
WRITABLE = "Enter the admin token to add products. Each file is reported as added, duplicate or failed."


class BrowseOutputs(NamedTuple):
    gallery: Any
    page_info: Any
    categories: Any
    brands: Any
    colors: Any
    tags: Any
    page: Any


class CatalogHandlers:
    def __init__(
        self, service: SearchService, files: UiFiles, page_size: int = PAGE_SIZE, limiter: RateLimiter | None = None
    ) -> None:
        self.service = service
        self.files = files
        self.page_size = page_size
        self.limiter = limiter or RateLimiter()  # writes per client address (about 10 a minute)

    @property
    def writable(self) -> bool:
        return bool(self.service.settings.admin_token)

    @user_errors
    def browse(
        self,
        categories: Sequence[str] | None,
        brands: Sequence[str] | None,
        colors: Sequence[str] | None,
        tags: Sequence[str] | None,
        page: float = 1,
    ) -> BrowseOutputs:
        """One page of the catalog under the filters, with facet counts (ticks no longer valid are dropped)."""
        ticked = {g: list(v or ()) for g, v in zip(FACET_GROUPS, (categories, brands, colors, tags), strict=True)}
        try:
            listing = self.service.browse(Filters.of(**ticked), int(page or 1), self.page_size)
        except EmptyCatalogError:
            empty = gr.update(choices=[], value=[])
            return BrowseOutputs([], "The catalog is empty. Add products below or run `python -m data_seed`.",
                                 empty, empty, empty, empty, 1)  # fmt: skip
        pages = max(1, math.ceil(listing.total / self.page_size))
        if int(page or 1) > pages:  # the filters shrank the listing: show its last page
            return self.browse(categories, brands, colors, tags, pages)
        gallery = [(self.files.thumbnail(p), fmt.caption(p)) for p in listing.products]
        updates = []
        for group in FACET_GROUPS:
            choices, keep = fmt.facet_choices(listing.facets.get(group, {}), ticked[group])
            updates.append(gr.update(choices=choices, value=keep, visible=bool(choices)))
        noun = "product" if listing.total == 1 else "products"
        info = f"Page {int(page or 1)} of {pages} · {listing.total} {noun}"
        return BrowseOutputs(gallery, info, *updates, int(page or 1))

    def first_page(self, *groups: Sequence[str] | None) -> BrowseOutputs:
        return self.browse(*groups, 1)

    def next_page(self, *args: Any) -> BrowseOutputs:
        *groups, page = args
        return self.browse(*groups, int(page or 1) + 1)

    def previous_page(self, *args: Any) -> BrowseOutputs:
        *groups, page = args
        return self.browse(*groups, max(1, int(page or 1) - 1))

    def store_info(self) -> str:
        try:
            return fmt.store_markdown(self.service.info())
        except SimilarityError as exc:
            return f"Store information is unavailable: {fmt.md(exc)}"

    @user_errors
    def add_products(
        self,
        files: Sequence[str] | None,
        name: str | None,
        brand: str | None,
        category: str | None,
        price: float | None,
        token: str | None,
        request: gr.Request | None = None,
    ) -> tuple[list[list[str]], str]:
        """Embed and store uploaded images (admin only); returns per-file rows and a summary."""
        self.limiter.check(client_key(request))  # before the token: wrong guesses are limited too
        self.check_token(token)
        paths = [str(f) for f in files or ()]
        if not paths:
            raise SimilarityError("Choose one or more image files to add.")
        if len(paths) > MAX_FILES:
            raise SimilarityError(f"Add at most {MAX_FILES} files at a time.")
        report = self._ingestor().run(self._items(paths, name, brand, category, price))
        failed = report.skipped + report.failed
        summary = f"Added {report.added}, duplicates {report.present}, failed {failed}."
        return fmt.outcome_rows(report.outcomes), summary

    def check_token(self, token: str | None) -> None:
        expected = self.service.settings.admin_token
        if not expected:
            raise PermissionDeniedError("The catalog is read-only: no admin token is configured on the server.")
        if not hmac.compare_digest((token or "").strip().encode(), expected.encode()):
            raise PermissionDeniedError("Wrong admin token.")

    def _items(self, paths: list[str], name: Any, brand: Any, category: Any, price: Any) -> list[IngestItem]:
        tagger = self.service.tagger
        items = []
        for path in paths:
            meta = {"brand": brand, "category": category or None, "price": price, "source": "upload"}
            # without a tagger to name it, a product is named after its file
            meta["name"] = (name or "").strip() or (None if tagger else _title_from_file(path))
            key = Path(path).name
            read = functools.partial(images.read_bytes, path, images.MAX_UPLOAD_BYTES)
            items.append(IngestItem(key, read, {k: v for k, v in meta.items() if v not in (None, "")}))
        return items

    def _ingestor(self) -> Ingestor:
        enrich = None
        if self.service.tagger is not None:
            from ..tagging import make_enricher

            enrich = make_enricher(self.service.tagger, self.service.settings.gemini_concurrency)
        store, embedder = self.service.store, self.service.embedder
        return Ingestor(store, embedder, batch_size=16, workers=2, max_bytes=images.MAX_UPLOAD_BYTES, enrich=enrich)


def _title_from_file(path: str) -> str:
    stem = Path(path).stem.replace("_", " ").replace("-", " ").strip()
    return stem[:1].upper() + stem[1:] if stem else "Product"
