"""Atlas Vector Search: the collection's vector index (queryable? create, update, wait) and ``AtlasRanker``.

``AtlasRanker`` ranks on the server with ``$vectorSearch``; scores are converted back to cosine and ties
are broken by id, so Atlas ranks like every other store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from pymongo.errors import ConnectionFailure, OperationFailure

from ...errors import EmptyCatalogError, StoreError
from ...records import FACET_GROUPS, Facets, Filters, PriceRange
from ..ranking import Ranker, Ranking
from .codec import to_vector
from .connection import AUTH_CODES, Connection
from .pipelines import (
    MAX_CANDIDATES,
    PRICE,
    browse_facet_pipeline,
    catalog_price_pipeline,
    definition_key,
    describe_definition,
    facet_plan,
    index_status,
    match_filter,
    merge_facets,
    price_range,
    search_pipeline,
    to_cosine,
    vector_facet_pipeline,
    vector_index_definition,
)

log = logging.getLogger(__name__)
UNSUPPORTED = (
    "This MongoDB server does not support Atlas Vector Search indexes (MongoDB Atlas and the "
    "mongodb/mongodb-atlas-local image do); searches will use exact mode."
)
NOT_SEARCHABLE = (OperationFailure, NotImplementedError, TypeError, AttributeError)  # plain servers, mongomock


class VectorSearchIndex:
    """The named Atlas vector index of one collection."""

    def __init__(self, conn: Connection, name: str) -> None:
        self.conn, self.name = conn, name
        self._mode: str | None = None  # what ``auto`` resolved to; asked again after ``create``

    def search_mode(self, search: str) -> str:
        """The effective mode; ``auto`` asks the server once whether this index is queryable."""
        if search != "auto":
            return search
        if self._mode is None:
            queryable = self.queryable()
            self._mode = "atlas" if queryable else "exact"
            reason = "is queryable" if queryable else "is missing or not queryable"
            log.info(
                "MongoDB search mode: %s (vector index %r %s) for %s", self._mode, self.name, reason,
                self.conn.display_url,
            )  # fmt: skip
        return self._mode

    def entries(self) -> list[dict[str, Any]]:
        """The index's ``list_search_indexes`` entries; raises ``NOT_SEARCHABLE`` errors as-is on servers
        without Atlas Search (auth and connection failures become StoreErrors)."""
        coll = self.conn.run("connect", lambda c: c)
        try:
            return list(coll.list_search_indexes(self.name))
        except OperationFailure as exc:
            if exc.code in AUTH_CODES:
                raise StoreError(self.conn.message(exc, "list the search indexes")) from None
            raise
        except ConnectionFailure as exc:
            raise StoreError(self.conn.message(exc, "list the search indexes")) from None

    def queryable(self) -> bool:
        try:
            entries = self.entries()
        except StoreError:
            raise
        except NOT_SEARCHABLE:
            return False
        return any(index_status(e)[0] for e in entries)

    def create(
        self,
        quantization: str | None = None,
        timeout: float = 300,
        poll: float = 5,
        progress: Callable[[str], None] = print,
        *,
        dimensions: int | None = None,
    ) -> None:
        """Create (or update) the vector index and wait until it is queryable."""
        definition = vector_index_definition(dimensions or self._dimensions(), quantization)
        try:
            entries = self.entries()
        except NOT_SEARCHABLE:
            raise StoreError(UNSUPPORTED) from None
        target = f"{self.conn.db_name}.{self.conn.collection_name}"
        if not entries:
            from pymongo.operations import SearchIndexModel

            model = SearchIndexModel(definition=definition, name=self.name, type="vectorSearch")
            progress(f"Creating vector index {self.name!r} on {target} ({describe_definition(definition)})")
            # refusals here are often the M0 limit of 3 search indexes
            self.conn.run("create the vector index (M0 allows 3)", lambda c: c.create_search_index(model))
        elif definition_key(entries[0].get("latestDefinition", {})) != definition_key(definition):
            progress(f"Updating vector index {self.name!r} on {target} ({describe_definition(definition)})")
            self.conn.run("update the vector index", lambda c: c.update_search_index(self.name, definition))
        else:
            progress(f"Vector index {self.name!r} on {target} already has this definition")
        self._wait_queryable(timeout, poll, progress)
        self._mode = None  # auto mode detects it again

    def _wait_queryable(self, timeout: float, poll: float, progress: Callable[[str], None]) -> None:
        start = time.monotonic()
        while True:
            entries = self.entries()
            queryable, status = index_status(entries[0]) if entries else (False, "PENDING")
            elapsed = time.monotonic() - start
            if queryable:
                progress(f"Vector index {self.name!r} is queryable ({status}, {elapsed:.0f} s)")
                return
            if status == "FAILED":
                raise StoreError(f"Atlas could not build the vector index {self.name!r} (status FAILED).")
            if elapsed >= timeout:
                raise StoreError(
                    f"The vector index {self.name!r} is not queryable after {timeout:.0f} s (status {status}). "
                    "Atlas keeps building it; until it is ready, auto mode searches exactly."
                )
            progress(f"Waiting for vector index {self.name!r}: {status} ({elapsed:.0f} s)")
            time.sleep(max(0.0, min(poll, timeout - elapsed)))

    def _dimensions(self) -> int:
        doc = self.conn.run("read a vector", lambda c: c.find_one({"embedding": {"$exists": True}}, {"embedding": 1}))
        if not doc:
            raise StoreError("The catalog is empty: seed it first, so the vector index knows the vector size.")
        return len(to_vector(doc["embedding"]))


class AtlasRanker(Ranker):
    """Ranks on the server with ``$vectorSearch``; scores are converted back to cosine, ties broken by id."""

    def __init__(self, store: Any) -> None:
        self.store = store  # a MongoStore: its connection and index name
        self.conn: Connection = store.conn

    def _aggregate(self, pipeline: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
        return self.conn.run(action, lambda c: list(c.aggregate(pipeline)))

    def rank(self, vector: np.ndarray, filters: Filters, top_k: int, min_score: float | None, facet_n: int) -> Ranking:
        rows = self._aggregate(search_pipeline(vector, filters, top_k, self.store.index_name), "run a vector search")
        if not rows and not filters and self.store.count() == 0:
            raise EmptyCatalogError("The catalog is empty. Add products first: python -m data_seed --source demo")
        pairs = sorted((-to_cosine(r["score"]), str(r["_id"])) for r in rows)
        pairs = [(-s, i) for s, i in pairs if min_score is None or -s >= min_score][:top_k]
        facets, prices = self.facets(vector, filters, facet_n, min_score)
        return Ranking([i for _, i in pairs], [s for s, _ in pairs], facets, prices)

    def facets(
        self, vector: np.ndarray, filters: Filters, facet_n: int, min_score: float | None
    ) -> tuple[Facets, PriceRange]:
        """Disjunctive counts over the best ``facet_n`` candidates, one ``$vectorSearch`` per distinct filter,
        and the candidates' price range (under every filter but the price range)."""
        limit = min(int(facet_n), MAX_CANDIDATES)
        out: Facets = {}
        prices = PriceRange()
        for others, groups in facet_plan(filters).items():
            pipeline = vector_facet_pipeline(vector, others, groups, limit, self.store.index_name, min_score)
            rows = self._aggregate(pipeline, "count facets")
            out.update(merge_facets(rows[0] if rows else {}, groups))
            if PRICE in groups:
                prices = price_range(rows[0] if rows else {})
        return {group: out[group] for group in FACET_GROUPS}, prices

    def price_range(self) -> PriceRange:
        rows = self._aggregate(catalog_price_pipeline(), "read the price range")
        return price_range({PRICE: rows})

    def browse(self, filters: Filters, offset: int, limit: int) -> tuple[list[str], int, Facets]:
        where = match_filter(filters)

        def page(coll: Any) -> tuple[list[str], int]:
            total = coll.count_documents(where)
            if limit <= 0:  # pymongo treats limit(0) as "no limit"
                return [], total
            docs = coll.find(where, {"_id": 1}).sort("_id", 1).skip(max(0, offset)).limit(limit)
            return [d["_id"] for d in docs], total

        ids, total = self.conn.run("browse the catalog", page)
        facets: Facets = {}
        for others, groups in facet_plan(filters).items():
            rows = self._aggregate(browse_facet_pipeline(others, groups), "count facets")
            facets.update(merge_facets(rows[0] if rows else {}, groups))
        return ids, total, {group: facets[group] for group in FACET_GROUPS}
