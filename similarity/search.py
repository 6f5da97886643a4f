"""SearchService: query -> vector -> ranking -> hydrated matches with facets and timings.

``build_service(settings)`` wires the embedder, tagger and store once; the app, both CLIs and
the catalog tab all go through it.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from . import images
from .arrange import discount
from .config import Settings
from .errors import EmptyCatalogError, NotFoundError, SimilarityError
from .index import default_ranker
from .records import Filters, Match, Product, SearchResult
from .steering import Query, Steering, combine_parts, steer
from .tagging import TagResult, describe_job

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
        self._tag_pool: ThreadPoolExecutor | None = None  # created on first describe_async
        self._tag_lock = threading.Lock()

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
        vector = self.store.vector(product_id)
        if vector is None:
            raise NotFoundError("That product is no longer in the catalog.")
        return Query(vector, "product", source_id=product_id, parts={"product": vector})

    def saved_query(self, product_ids: Sequence[str]) -> Query:
        """A query from the normalised mean of products' stored vectors ("more like my saved products");
        the products themselves are left out of the matches. Products no longer in the catalog are skipped."""
        ids = tuple(dict.fromkeys(product_ids))
        batch = self.store.load_vectors_of(ids)  # one read, not one per product
        if not batch.ids:
            raise NotFoundError("None of these saved products is in the catalog any more.")
        mean = np.mean(batch.vectors.astype(np.float32), axis=0)
        norm = float(np.linalg.norm(mean))
        if norm < 1e-6:
            raise SimilarityError("These saved products cancel each other out; remove one and try again.")
        vector = (mean / norm).astype(np.float32)
        return Query(vector, "saved", exclude=ids, parts={"saved": vector})

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
        job = describe_job(self.tagger, query_or_image, self.store)
        return None if job is None else self._tag_executor().submit(job)

    def describe(self, query_or_image: Query | images.ImageSource, timeout: float | None = None) -> TagResult | None:
        """``describe_async`` and wait up to ``timeout`` seconds; never raises for tagging failures."""
        future = self.describe_async(query_or_image)
        if future is None:
            return None
        try:
            return future.result(timeout)
        except FutureTimeout:
            return TagResult.failed("Tagging is taking longer than expected.")

    def close(self) -> None:
        """Drop pending tagging work and close the store (the app calls this when it stops)."""
        with self._tag_lock:
            pool, self._tag_pool = self._tag_pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if self.catalog_map is not None:  # a layout still being fitted is dropped (fitted again next start)
            self.catalog_map.close()
        self.store.close()

    def _tag_executor(self) -> ThreadPoolExecutor:
        with self._tag_lock:
            if self._tag_pool is None:
                workers = max(1, self.settings.gemini_concurrency)
                self._tag_pool = ThreadPoolExecutor(workers, thread_name_prefix="describe")
            return self._tag_pool


def build_service(
    settings: Settings | None = None, *, background_index: bool = False, **overrides: Any
) -> SearchService:
    """Wire store, embedder, tagger and ranker from settings (read once).

    ``background_index``: a large local catalog's ANN graph is prepared in a thread while exact search
    serves (the app); otherwise the first search waits for it (one-shot CLI runs, tests).
    It also makes the catalog map fit its layout in the background; without it, searches only use a
    saved layout and the map is computed when first asked for (``CatalogMap.points``).
    """
    from .embedder import OpenClipEmbedder
    from .store import open_store
    from .tagging import make_tagger

    settings = settings or Settings.from_env()
    embedder = overrides.pop("embedder", None) or OpenClipEmbedder.from_settings(settings)
    device_label(embedder)  # resolved now: a SIMILARITY_DEVICE naming a missing GPU stops the start-up here
    store = overrides.pop("store", None) or open_store(settings.store_url, settings)
    tagger = overrides.pop("tagger", None) or make_tagger(settings, embedder)
    device = getattr(embedder, "device_info", None)  # a CUDA GPU also holds the exact index
    ranker = overrides.pop("ranker", None) or default_ranker(
        store, settings, background=background_index, device=device
    )
    if "catalog_map" not in overrides and settings.map_layout != "off":
        from .map import CatalogMap  # its fitting libraries load only when a layout is computed

        overrides["catalog_map"] = CatalogMap(store, settings, background=background_index)
    service = SearchService(store, embedder, tagger, settings, ranker, **overrides)
    service.check_model()
    return service


def device_label(embedder: Any) -> str | None:
    """The embedder's device for people ("cuda:0 NVIDIA L4"); None for an embedder without one (a fake)."""
    device = getattr(embedder, "device_info", None)
    return getattr(device, "label", None)


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
