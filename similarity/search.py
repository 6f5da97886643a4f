"""SearchService: query -> vector -> ranking -> hydrated matches with facets and timings.

``build.build_service(settings)`` wires the embedder, tagger and store once; the app, both CLIs and
the catalog tab all go through it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from . import images
from .arrange import discount
from .config import Settings
from .device import device_label
from .errors import EmptyCatalogError, SimilarityError
from .index import default_ranker
from .records import Filters, Match, Product, SearchResult
from .steering import Query, Steering, combine_parts, query_from_product, query_from_saved, steer
from .tagging import TagResult, TagRunner, describe_job

if TYPE_CHECKING:
    from .arrange import Arrange
    from .embedder import OpenClipEmbedder
    from .map import CatalogMap
    from .store.base import CatalogStore
    from .store.ranking import Ranker

MAX_TOP_K = 100
DEFAULT_TOP_K = 12


@dataclasses.dataclass
class BrowsePage:
    products: list[Product]
    total: int
    facets: dict[str, dict[str, int]]


class SearchService:
    """The engine's front door. Collaborators come in through the constructor (fakes too)."""

    def __init__(
        self,
        store: CatalogStore,
        embedder: OpenClipEmbedder,
        tagger: Any = None,
        settings: Settings | None = None,
        ranker: Ranker | None = None,
        catalog_map: CatalogMap | None = None,
    ) -> None:
        self.store = store
        self.catalog_map = catalog_map  # the 2-D catalog layout: places each query on the map
        self.embedder = embedder
        self.tagger = tagger
        self.settings = settings or Settings()
        self.ranker = ranker or default_ranker(store, self.settings)
        self.url_guard = images.UrlGuard()
        self.filling: Callable[[], str | None] | None = None  # the first start's seeding: why a catalog is empty
        self.tagging = TagRunner(self.settings.gemini_concurrency)  # its threads start on first describe_async

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    # -- queries ---------------------------------------------------------------------------
    def encode(
        self,
        image: images.ImageSource | None = None,
        *,
        url: str | None = None,
        text: str | None = None,
        text_weight: float = 0.5,
    ) -> Query:
        """Decode/fetch and embed an image and/or text into one normalised query vector."""
        timings: dict[str, float] = {}
        text = (text or "").strip() or None
        picture = None
        if url and url.strip() and image is None:
            with _timed(timings, "download"):  # "fetch" is the store read in rank()
                image = images.fetch_url(url.strip(), self.url_guard)
        if image is not None:
            with _timed(timings, "decode"):
                picture = images.load_image(image).image
        if picture is None and text is None:
            raise SimilarityError("Give a photo, an image URL or a description to search for.")
        if not self.embedder.loaded:  # first query pays the model load; report it apart
            with _timed(timings, "load_model"):
                self.embedder.load()
        with _timed(timings, "embed"):
            parts = self._embed_parts(picture, text)
        kind = "+".join(k for k, v in (("image", picture), ("text", text)) if v is not None)
        vector = combine_parts(parts, text_weight)
        return Query(vector, kind, timings, picture, text=text, parts=parts, text_weight=text_weight)

    def _embed_parts(self, picture: Any, text: str | None) -> dict[str, np.ndarray]:
        parts = {}
        if picture is not None:
            parts["image"] = self.embedder.embed_images([picture])[0]
        if text is not None:
            parts["text"] = self.embedder.embed_texts([text])[0]
        return parts

    def reweight(self, query: Query, text_weight: float) -> Query:
        """The same image+text query with another text weight (no decoding or embedding)."""
        if len(query.parts) < 2:
            return query
        vector = combine_parts(query.parts, text_weight, query.terms)
        return dataclasses.replace(query, vector=vector, timings_ms={}, text_weight=text_weight)

    def with_image(self, query: Query, vector: np.ndarray) -> Query:
        """The same query with another image part (e.g. a region of the photo), composed again with its text."""
        parts = {**query.parts, "image": np.asarray(vector, dtype=np.float32)}
        kind = "+".join(k for k in ("image", "text") if k in parts)
        vector = combine_parts(parts, query.text_weight, query.terms)
        return dataclasses.replace(query, vector=vector, parts=parts, kind=kind)

    def steer(self, query: Query, steering: Steering) -> Query:
        """``query`` with more of / less of texts and liked / disliked products (``steering.steer``)."""
        return steer(query, steering, self.store, self.embedder)

    def product_query(self, product_id: str) -> Query:
        """A query from a stored product's vector ("more like this")."""
        return query_from_product(self.store, product_id)

    def saved_query(self, product_ids: Sequence[str]) -> Query:
        """A query from the mean of products' stored vectors ("more like my saved products"; ``steering``)."""
        return query_from_saved(self.store, product_ids)

    def rank(
        self,
        query: Query,
        filters: Filters | None = None,
        top_k: int = DEFAULT_TOP_K,
        min_score: float | None = None,
        arrange: Arrange | None = None,
    ) -> SearchResult:
        """Rank a query (image, text, product) with filters; the product itself is left out.
        ``arrange``: a cutoff relative to the best, near-duplicates folded, a sort of the relevant page."""
        top_k = _check_top_k(top_k)
        filters = filters or Filters()
        timings = dict(query.timings_ms)
        exclude = set(query.exclude) - {query.source_id}
        extra = (1 if query.source_id else 0) + len(exclude)
        wanted = arrange.candidates(top_k) if arrange else top_k
        with _timed(timings, "search"), self._while_filling():
            ranking = self.ranker.rank(query.vector, filters, wanted + extra, min_score, self.settings.facet_candidates)
        pairs = [(i, s) for i, s in zip(ranking.ids, ranking.scores, strict=True) if i != query.source_id]
        pairs = [(i, s) for i, s in pairs if i not in exclude]
        left_out = [query.source_id] if query.source_id else []
        left_out += [i for i in ranking.ids if i in exclude]  # excluded products that made the ranked page
        if left_out:  # products left out of the matches are left out of the counts too
            discount(ranking.facets, self.store.get(left_out, thumbnails=False), filters)
        folded: dict[str, list[str]] = {}
        if arrange:
            with _timed(timings, "arrange"):
                pairs, folded = arrange.select(pairs, top_k, self.store)
        with _timed(timings, "fetch"):
            products = {p.id: p for p in self.store.get([i for i, _ in pairs[:top_k]])}
        matches = [
            Match(products[i], s, rank, tuple(folded.get(i, ())))
            for rank, (i, s) in enumerate(pairs[:top_k], 1)
            if i in products
        ]
        if arrange:
            matches = arrange.order(matches)
        timings["total"] = sum(timings.values())
        precision, device = getattr(self.embedder, "precision", None), device_label(self.embedder)
        position = self._map_position(query, matches)
        return SearchResult(
            matches,
            ranking.facets,
            timings,
            self.model_id,
            query.describe(),
            precision,
            position,
            device,
            ranking.prices,
        )

    @contextmanager
    def _while_filling(self) -> Iterator[None]:
        """An empty catalog that the first start is filling says so, with its progress."""
        try:
            yield
        except EmptyCatalogError:
            note = self.filling() if self.filling is not None else None
            if note:
                raise EmptyCatalogError(note) from None
            raise

    def _map_position(self, query: Query, matches: list[Match]) -> tuple[float, float] | None:
        """Where the query sits on the catalog map (a product query: at the product); None without a layout."""
        if self.catalog_map is None:
            return None
        try:
            if query.source_id and (own := self.catalog_map.coordinates([query.source_id])):
                return own[query.source_id]
            return self.catalog_map.place([m.product.id for m in matches], [m.score for m in matches])
        except SimilarityError:  # a map problem never fails a search
            return None

    def search(
        self,
        image: images.ImageSource | None = None,
        *,
        url: str | None = None,
        text: str | None = None,
        text_weight: float = 0.5,
        filters: Filters | None = None,
        top_k: int = DEFAULT_TOP_K,
        min_score: float | None = None,
    ) -> SearchResult:
        query = self.encode(image, url=url, text=text, text_weight=text_weight)
        return self.rank(query, filters, top_k, min_score)

    def similar_to(
        self,
        product_id: str,
        filters: Filters | None = None,
        top_k: int = DEFAULT_TOP_K,
        min_score: float | None = None,
    ) -> SearchResult:
        return self.rank(self.product_query(product_id), filters, top_k, min_score)

    # -- catalog ---------------------------------------------------------------------------
    def browse(self, filters: Filters | None = None, page: int = 1, page_size: int = 24) -> BrowsePage:
        page, page_size = max(1, int(page)), min(max(1, int(page_size)), MAX_TOP_K)
        ids, total, facets = self.ranker.browse(filters or Filters(), (page - 1) * page_size, page_size)
        return BrowsePage(self.store.get(ids), total, facets)

    def info(self) -> dict[str, Any]:
        info = self.store.describe()
        info.update(self.embedder.info())
        info["embedding_models"] = self.store.embedding_models()
        info["categories"] = self._category_counts()
        info["tagger"] = getattr(self.tagger, "name", "off")
        return info

    def _category_counts(self) -> dict[str, int]:
        try:
            return self.ranker.browse(Filters(), 0, 0)[2].get("categories", {})
        except SimilarityError:
            return {}

    def check_model(self) -> None:
        self.store.check_model(self.model_id)

    # -- tagging: runs beside a search, never delays or fails it ------------------------------
    def describe_async(self, query_or_image: Query | images.ImageSource) -> Future[TagResult] | None:
        """Start tagging in the background and return at once, so it overlaps embedding and ranking.

        Takes a ``Query`` (its decoded image; an image-only query's vector is reused by the CLIP
        tagger; a product query gives the product's stored tags), or a PIL image, image bytes or a
        local file path (decoded in the worker; pass these before ``encode`` for the most overlap).
        Returns None when tagging is off or there is no image (text query).
        The future never raises for tagging failures: it yields a ``TagResult`` whose ``tagger`` is
        who produced the tags ("gemini", "clip", "catalog", or "none" on failure), ``error`` why the
        preferred tagger failed (fallbacks included), and ``label`` a ready UI caption.
        """
        return self.tagging.submit(describe_job(self.tagger, query_or_image, self.store))

    def describe(self, query_or_image: Query | images.ImageSource, timeout: float | None = None) -> TagResult | None:
        """``describe_async`` and wait up to ``timeout`` seconds; never raises for tagging failures."""
        future = self.describe_async(query_or_image)
        return None if future is None else self.tagging.wait(future, timeout)

    def close(self) -> None:
        """Drop pending tagging work and close the store (the app calls this when it stops)."""
        self.tagging.close()
        if self.catalog_map is not None:  # a layout still being fitted is dropped (fitted again next start)
            self.catalog_map.close()
        self.store.close()


def _check_top_k(top_k: int) -> int:
    try:
        top_k = int(top_k)
    except (TypeError, ValueError):
        raise SimilarityError(f"top_k must be a whole number between 1 and {MAX_TOP_K}.") from None
    if not 1 <= top_k <= MAX_TOP_K:
        raise SimilarityError(f"top_k must be between 1 and {MAX_TOP_K}.")
    return top_k


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + (time.perf_counter() - start) * 1000
