"""``MongoStore``: the catalog in a MongoDB collection, one document per product, vectors as BSON float32 vectors.

Search modes: ``atlas`` ranks on the server with ``$vectorSearch`` (``atlas.AtlasRanker``); ``exact`` loads the
vectors once into the shared in-memory index (``similarity.index.StoreIndex``), which reloads only when the
cheap ``version()`` marker changes; ``auto`` picks atlas when the named vector index is queryable.

Writes are bulk upserts (``ordered=False``). MongoDB makes each document write atomic, not the batch
(cross-document atomicity needs replica-set transactions), so a batch is validated completely before anything
is written, and a batch interrupted by an outage converges when it is retried: every write is an idempotent
upsert by product id.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from pymongo import IndexModel, ReturnDocument, UpdateOne
from pymongo.errors import ConnectionFailure, PyMongoError

from ...config import MONGO_SEARCH_MODES
from ...errors import ConfigError
from ...records import Product
from ..base import (
    FACET_ATTRIBUTES,
    CatalogStore,
    ChangeSet,
    UpsertReport,
    VectorBatch,
    check_editable,
)
from ..ranking import Ranker
from . import changes as feed
from .atlas import AtlasRanker, VectorSearchIndex
from .codec import (
    VECTOR_PROJECTION,
    binary_vectors,
    created_at_of,
    next_timestamp,
    to_document,
    to_product,
    to_vector,
    vector_batch,
)
from .connection import Connection, mongo_client
from .saved import MongoSaved

if TYPE_CHECKING:
    from ...config import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

_INDEXED = (*FACET_ATTRIBUTES, "updated_at")  # updated_at keeps version() cheap


class MongoStore(CatalogStore):
    """Catalog in a MongoDB collection. The client is injected (tests: ``mongomock.MongoClient()``) or,
    via ``from_url``, created lazily on first use so construction never touches the network."""

    backend = "mongodb"

    def __init__(
        self,
        client: Any = None,
        db_name: str = "similarity",
        collection_name: str = "products",
        *,
        search: str = "auto",
        index_name: str = "vector_index",
        url: str | None = None,
        connect: Callable[[], Any] | None = None,
        collection: Any = None,
        feed_overlap: float = feed.OVERLAP_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if search not in MONGO_SEARCH_MODES:
            raise ConfigError(f"SIMILARITY_MONGO_SEARCH={search!r} is not valid; choose one of: auto, atlas, exact")
        self.conn = Connection(db_name, collection_name, client=client, connect=connect, collection=collection, url=url)
        self.db_name, self.collection_name = db_name, collection_name
        self.search, self.index_name = search, index_name
        self.vector_index = VectorSearchIndex(self.conn, index_name)
        self.saved = MongoSaved(self.conn)  # the `saved` collection in the same database
        self._indexed = False
        self._feed_ready = False  # the tombstones collection and its horizon exist
        self.feed_overlap = feed_overlap  # seconds of writes the change feed reports again (changes.py)
        self.clock = clock  # seconds since the epoch; stamps writes and the feed's horizon (tests freeze it)

    @classmethod
    def from_url(cls, url: str, settings: Settings | None = None) -> MongoStore:
        """A store for ``mongodb://`` / ``mongodb+srv://`` URLs; connects on first use with short timeouts."""
        from ...config import Settings

        settings = settings or Settings()
        return cls(
            db_name=settings.mongo_db,
            collection_name=settings.mongo_collection,
            search=settings.mongo_search,
            index_name=settings.mongo_index,
            url=url,
            connect=lambda: mongo_client(url),
        )

    # -- plumbing --------------------------------------------------------------------------------
    @property
    def display_url(self) -> str:
        return self.conn.display_url

    @property
    def host(self) -> str:
        return self.conn.host

    @property
    def _client(self) -> Any:
        return self.conn.client

    def _coll(self) -> Any:
        return self.conn.collection()

    def _run(self, action: str, fn: Callable[[Any], T]) -> T:
        return self.conn.run(action, fn)

    # -- writes ----------------------------------------------------------------------------------
    def upsert(self, products: Sequence[Product]) -> UpsertReport:
        latest = {p.id: p for p in products}  # a repeated id: the last one wins
        if not latest:
            return UpsertReport()
        vectors = binary_vectors(latest.values())  # validate the whole batch before writing anything
        with self.conn.guard("write products"):
            coll = self._coll()
            self._ensure_indexes(coll)
            tombstones = self._tombstones(coll)
            now = feed.stamp(coll, tombstones, self.clock)
            ops = [
                UpdateOne(
                    {"_id": p.id},
                    {"$set": to_document(p, vectors[p.id], now), "$setOnInsert": {"created_at": created_at_of(p, now)}},
                    upsert=True,
                )
                for p in latest.values()
            ]
            result = coll.bulk_write(ops, ordered=False)
            tombstones.clear(list(latest))  # stored again: no longer removed
        self.notify_written()
        return UpsertReport(added=result.upserted_count, updated=result.matched_count)

    def _ensure_indexes(self, coll: Any) -> None:
        if self._indexed:
            return
        try:
            coll.create_indexes([IndexModel(attr) for attr in _INDEXED])
        except ConnectionFailure:
            raise
        except (PyMongoError, NotImplementedError):
            log.info("MongoDB at %s did not create the facet indexes; queries still work", self.host)
        self._indexed = True

    def delete(self, ids: Sequence[str]) -> int:
        ids = list(dict.fromkeys(ids))
        if not ids:
            return 0

        def delete(coll: Any) -> int:
            found = [d["_id"] for d in coll.find({"_id": {"$in": ids}}, {"_id": 1})]
            tombstones = self._tombstones(coll)
            # the tombstone goes first: a removal is never missed by the feed, at worst reported early
            tombstones.record(found, feed.stamp(coll, tombstones, self.clock))
            return coll.delete_many({"_id": {"$in": found}}).deleted_count if found else 0

        removed = self._run("delete products", delete)
        self.notify_written()
        return removed

    # -- reads -----------------------------------------------------------------------------------
    def get(self, ids: Sequence[str], *, thumbnails: bool = True) -> list[Product]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        projection = {"embedding": 0} if thumbnails else {"embedding": 0, "thumbnail": 0}
        docs = self._run("read products", lambda c: list(c.find({"_id": {"$in": wanted}}, projection)))
        found = {d["_id"]: to_product(d) for d in docs}
        return [found[i] for i in ids if i in found]

    def existing(self, ids: Sequence[str]) -> set[str]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return set()
        return self._run("read products", lambda c: {d["_id"] for d in c.find({"_id": {"$in": wanted}}, {"_id": 1})})

    def vector(self, id: str) -> np.ndarray | None:
        doc = self._run("read a vector", lambda c: c.find_one({"_id": id}, {"embedding": 1}))
        return to_vector(doc["embedding"]) if doc and doc.get("embedding") is not None else None

    def count(self) -> int:
        return int(self._run("count products", lambda c: c.count_documents({})))

    def version(self) -> str:
        """Count plus latest ``updated_at`` (indexed): two cheap queries, no document scan."""

        def marker(coll: Any) -> str:
            latest = feed.latest_update(coll)
            return f"{coll.estimated_document_count()}:{latest.isoformat() if latest else '-'}"

        return self._run("check the catalog version", marker)

    def load_vectors(self) -> VectorBatch:
        return self._run(
            "load the vectors", lambda c: vector_batch(c.find({}, VECTOR_PROJECTION).sort("_id", 1).batch_size(2000))
        )

    def iter_products(self, batch_size: int = 256, *, vectors: bool = True) -> Iterator[list[Product]]:
        projection = None if vectors else {"embedding": 0}
        query: dict[str, Any] = {}
        while True:
            docs = self._run(
                "read products", lambda c, q=query: list(c.find(q, projection).sort("_id", 1).limit(batch_size))
            )
            if not docs:
                return
            yield [to_product(d, vectors=vectors) for d in docs]
            query = {"_id": {"$gt": docs[-1]["_id"]}}

    def embedding_models(self) -> dict[str, int]:
        pipeline = [{"$group": {"_id": "$embedding_model", "n": {"$sum": 1}}}]
        rows = self._run("read the embedding models", lambda c: list(c.aggregate(pipeline)))
        return {str(r["_id"] or ""): int(r["n"]) for r in rows}

    # -- search mode -----------------------------------------------------------------------------
    def ranker(self) -> Ranker | None:
        """Atlas mode: an ``AtlasRanker``; exact mode: None, so the shared in-memory index is used."""
        return AtlasRanker(self) if self.search_mode() == "atlas" else None

    def search_mode(self) -> str:
        """The effective mode; ``auto`` asks the server once whether the vector index is queryable."""
        return self.vector_index.search_mode(self.search)

    def create_vector_index(self, quantization: str | None = None, **options: Any) -> None:
        """Create (or update) the Atlas vector index and wait until it is queryable (``options``: ``timeout``,
        ``poll``, ``progress``, ``dimensions``, as ``VectorSearchIndex.create`` takes them)."""
        self.vector_index.create(quantization, **options)  # auto mode re-detects on the next ranker() call

    # -- change feed (changes.py) ------------------------------------------------------------------
    def _tombstones(self, coll: Any) -> feed.Tombstones:
        tombstones = feed.Tombstones(coll)
        if not self._feed_ready:
            tombstones.ensure(next_timestamp(None, self.clock))
            self._feed_ready = True
        return tombstones

    def changes(self, since: str | None) -> ChangeSet:
        def read(coll: Any) -> ChangeSet:
            self._tombstones(coll)  # the feed starts here for a catalog written before it existed
            return feed.changes(coll, feed.latest_update(coll), since, self.feed_overlap)

        return self._run("read the catalog changes", read)

    def edit(self, id: str, fields: dict[str, Any]) -> Product | None:
        check_editable(fields)
        values = {k: list(v) if k in ("colors", "tags") else v for k, v in fields.items()}

        def edit(coll: Any) -> dict[str, Any] | None:
            now = feed.stamp(coll, self._tombstones(coll), self.clock)
            return coll.find_one_and_update(
                {"_id": id}, {"$set": {**values, "updated_at": now}}, projection={"embedding": 0},
                return_document=ReturnDocument.AFTER,
            )  # fmt: skip

        doc = self._run("edit a product", edit)
        if not doc:
            return None
        self.notify_written()
        return to_product(doc)

    def ids_with_prefix(self, prefix: str, limit: int = 20) -> list[str]:
        query = {"_id": {"$regex": "^" + re.escape(prefix)}}  # anchored: served by the _id index
        return self._run(
            "read product ids", lambda c: [d["_id"] for d in c.find(query, {"_id": 1}).sort("_id", 1).limit(limit)]
        )

    def load_vectors_of(self, ids: Sequence[str]) -> VectorBatch:
        query = {"_id": {"$in": list(dict.fromkeys(ids))}}
        return self._run("load the vectors", lambda c: vector_batch(c.find(query, VECTOR_PROJECTION)))

    # -- misc ------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(database=self.db_name, collection=self.collection_name, search=self.search)
        return info

    def close(self) -> None:
        self.conn.close()
