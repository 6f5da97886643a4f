"""MongoDB catalog store: one document per product, vectors as BSON binary float32 vectors.

Search modes: ``atlas`` ranks on the server with ``$vectorSearch`` (``AtlasRanker``); ``exact`` loads the
vectors once into the shared in-memory index (``similarity.index.StoreIndex``), which reloads only when the
cheap ``version()`` marker changes; ``auto`` picks atlas when the named vector index is queryable.

Writes are bulk upserts (``ordered=False``). MongoDB makes each document write atomic, not the batch
(cross-document atomicity needs replica-set transactions), so a batch is validated completely before anything
is written, and a batch interrupted by an outage converges when it is retried: every write is an idempotent
upsert by product id.

Every pymongo error becomes a ``StoreError`` naming the host with the password masked; pymongo's own
exception text is never shown (it can contain the connection string).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import numpy as np
from pymongo import IndexModel, UpdateOne
from pymongo.errors import BulkWriteError, ConfigurationError, ConnectionFailure, OperationFailure, PyMongoError

from ..config import MONGO_SEARCH_MODES
from ..errors import ConfigError, EmptyCatalogError, StoreError
from ..records import FACET_GROUPS, Facets, Filters, Product
from .base import FACET_ATTRIBUTES, CatalogStore, Ranker, Ranking, UpsertReport, VectorBatch, mask_url
from .mongo_pipelines import (
    MAX_CANDIDATES,
    as_utc,
    binary_vectors,
    browse_facet_pipeline,
    created_at_of,
    definition_key,
    describe_definition,
    facet_plan,
    facet_tuple,
    index_status,
    match_filter,
    merge_facets,
    next_timestamp,
    search_pipeline,
    stack_vectors,
    to_cosine,
    to_document,
    to_product,
    to_vector,
    vector_facet_pipeline,
    vector_index_definition,
)

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

TIMEOUT_MS = 5000
UNSUPPORTED = (
    "This MongoDB server does not support Atlas Vector Search indexes (MongoDB Atlas and the "
    "mongodb/mongodb-atlas-local image do); searches will use exact mode."
)
_VECTOR_PROJECTION = {"_id": 1, "embedding": 1, **{attr: 1 for attr in FACET_ATTRIBUTES}}
_INDEXED = (*FACET_ATTRIBUTES, "updated_at")  # updated_at keeps version() cheap
_NOT_SEARCHABLE = (OperationFailure, NotImplementedError, TypeError, AttributeError)  # plain servers, mongomock
_AUTH_CODES = (13, 18, 8000)  # Unauthorized, AuthenticationFailed, Atlas AtlasError (bad credentials)


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
    ) -> None:
        if client is None and connect is None and collection is None:
            raise ValueError("MongoStore needs a client, a connect() factory or a collection")
        if search not in MONGO_SEARCH_MODES:
            raise ConfigError(f"SIMILARITY_MONGO_SEARCH={search!r} is not valid; choose one of: auto, atlas, exact")
        self.db_name, self.collection_name = db_name, collection_name
        self.search, self.index_name = search, index_name
        self._url = url
        self._client, self._connect, self._collection = client, connect, collection
        self._owns_client = False
        self._lock = threading.RLock()
        self._indexed = False
        self._resolved: str | None = None

    @classmethod
    def from_url(cls, url: str, settings: Settings | None = None) -> MongoStore:
        """A store for ``mongodb://`` / ``mongodb+srv://`` URLs; connects on first use with short timeouts."""
        from ..config import Settings

        settings = settings or Settings()
        return cls(
            db_name=settings.mongo_db,
            collection_name=settings.mongo_collection,
            search=settings.mongo_search,
            index_name=settings.mongo_index,
            url=url,
            connect=lambda: _mongo_client(url),
        )

    # -- plumbing --------------------------------------------------------------------------------
    @property
    def display_url(self) -> str:
        return mask_url(self._url) if self._url else f"mongodb://(client)/{self.db_name}.{self.collection_name}"

    @property
    def host(self) -> str:
        return host_of(self._url) if self._url else "the configured MongoDB client"

    def _coll(self) -> Any:
        with self._lock:
            if self._collection is None:
                if self._client is None:
                    self._client = self._connect()  # type: ignore[misc]  # may raise; nothing is cached then
                    self._owns_client = True
                self._collection = self._client[self.db_name][self.collection_name]
            return self._collection

    @contextlib.contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Turn pymongo errors into short StoreErrors that name the host and never the password."""
        try:
            yield
        except PyMongoError as exc:
            raise StoreError(self._message(exc, action)) from None

    def _message(self, exc: PyMongoError, action: str) -> str:
        where = f"MongoDB at {self.host} ({self.display_url})"
        if isinstance(exc, BulkWriteError):
            errors = exc.details.get("writeErrors", []) if isinstance(exc.details, dict) else []
            return f"{where} rejected {len(errors) or 'some'} product writes; re-run to retry (writes are idempotent)."
        if isinstance(exc, ConnectionFailure):
            return (
                f"Cannot reach {where} to {action}. Check that the server is running and reachable "
                "(on Atlas: the network access list), then try again."
            )
        if isinstance(exc, OperationFailure):
            name = _code_name(exc)
            if exc.code in _AUTH_CODES or "auth" in name.lower():
                return f"{where} refused the credentials or permissions to {action} ({name})."
            return f"{where} refused to {action} ({name})."
        if isinstance(exc, ConfigurationError):
            return f"The MongoDB URL {self.display_url} cannot be used (check the host name and options)."
        return f"{where} failed to {action} ({type(exc).__name__})."

    def _run(self, action: str, fn: Callable[[Any], T]) -> T:
        with self._guard(action):
            return fn(self._coll())

    # -- writes ----------------------------------------------------------------------------------
    def upsert(self, products: Sequence[Product]) -> UpsertReport:
        latest = {p.id: p for p in products}  # a repeated id: the last one wins
        if not latest:
            return UpsertReport()
        vectors = binary_vectors(latest.values())  # validate the whole batch before writing anything
        with self._guard("write products"):
            coll = self._coll()
            self._ensure_indexes(coll)
            now = next_timestamp(_latest_update(coll))
            ops = [
                UpdateOne(
                    {"_id": p.id},
                    {"$set": to_document(p, vectors[p.id], now), "$setOnInsert": {"created_at": created_at_of(p, now)}},
                    upsert=True,
                )
                for p in latest.values()
            ]
            result = coll.bulk_write(ops, ordered=False)
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
        ids = list(ids)
        if not ids:
            return 0
        return self._run("delete products", lambda c: c.delete_many({"_id": {"$in": ids}}).deleted_count)

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
            latest = _latest_update(coll)
            return f"{coll.estimated_document_count()}:{latest.isoformat() if latest else '-'}"

        return self._run("check the catalog version", marker)

    def load_vectors(self) -> VectorBatch:
        def load(coll: Any) -> VectorBatch:
            ids: list[str] = []
            vectors: list[np.ndarray] = []
            facets: dict[str, list[tuple[str, ...]]] = {attr: [] for attr in FACET_ATTRIBUTES}
            for doc in coll.find({}, _VECTOR_PROJECTION).sort("_id", 1).batch_size(2000):
                if doc.get("embedding") is None:
                    continue
                ids.append(doc["_id"])
                vectors.append(to_vector(doc["embedding"]))
                for attr in FACET_ATTRIBUTES:
                    facets[attr].append(facet_tuple(doc.get(attr)))
            return VectorBatch(ids, stack_vectors(vectors), facets)

        return self._run("load the vectors", load)

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
        if self.search != "auto":
            return self.search
        if self._resolved is None:
            queryable = self._index_queryable()
            self._resolved = "atlas" if queryable else "exact"
            reason = "is queryable" if queryable else "is missing or not queryable"
            log.info(
                "MongoDB search mode: %s (vector index %r %s) for %s",
                self._resolved,
                self.index_name,
                reason,
                self.display_url,
            )
        return self._resolved

    def _index_queryable(self) -> bool:
        try:
            entries = self._search_indexes()
        except StoreError:
            raise
        except _NOT_SEARCHABLE:
            return False
        return any(index_status(e)[0] for e in entries)

    def _search_indexes(self) -> list[dict[str, Any]]:
        """The vector index entries; raises ``_NOT_SEARCHABLE`` errors as-is on servers without Atlas Search."""
        coll = self._run("connect", lambda c: c)
        try:
            return list(coll.list_search_indexes(self.index_name))
        except OperationFailure as exc:
            if exc.code in _AUTH_CODES:
                raise StoreError(self._message(exc, "list the search indexes")) from None
            raise
        except ConnectionFailure as exc:
            raise StoreError(self._message(exc, "list the search indexes")) from None

    def create_vector_index(
        self,
        quantization: str | None = None,
        timeout: float = 300,
        poll: float = 5,
        progress: Callable[[str], None] = print,
        *,
        dimensions: int | None = None,
    ) -> None:
        """Create (or update) the Atlas vector index and wait until it is queryable."""
        definition = vector_index_definition(dimensions or self._dimensions(), quantization)
        try:
            entries = self._search_indexes()
        except _NOT_SEARCHABLE:
            raise StoreError(UNSUPPORTED) from None
        target = f"{self.db_name}.{self.collection_name}"
        if not entries:
            from pymongo.operations import SearchIndexModel

            model = SearchIndexModel(definition=definition, name=self.index_name, type="vectorSearch")
            progress(f"Creating vector index {self.index_name!r} on {target} ({describe_definition(definition)})")
            # refusals here are often the M0 limit of 3 search indexes
            self._run("create the vector index (M0 allows 3)", lambda c: c.create_search_index(model))
        elif definition_key(entries[0].get("latestDefinition", {})) != definition_key(definition):
            progress(f"Updating vector index {self.index_name!r} on {target} ({describe_definition(definition)})")
            self._run("update the vector index", lambda c: c.update_search_index(self.index_name, definition))
        else:
            progress(f"Vector index {self.index_name!r} on {target} already has this definition")
        self._wait_queryable(timeout, poll, progress)
        self._resolved = None  # auto mode re-detects on the next ranker() call

    def _wait_queryable(self, timeout: float, poll: float, progress: Callable[[str], None]) -> None:
        start = time.monotonic()
        while True:
            entries = self._search_indexes()
            queryable, status = index_status(entries[0]) if entries else (False, "PENDING")
            elapsed = time.monotonic() - start
            if queryable:
                progress(f"Vector index {self.index_name!r} is queryable ({status}, {elapsed:.0f} s)")
                return
            if status == "FAILED":
                raise StoreError(f"Atlas could not build the vector index {self.index_name!r} (status FAILED).")
            if elapsed >= timeout:
                raise StoreError(
                    f"The vector index {self.index_name!r} is not queryable after {timeout:.0f} s (status {status}). "
                    "Atlas keeps building it; until it is ready, auto mode searches exactly."
                )
            progress(f"Waiting for vector index {self.index_name!r}: {status} ({elapsed:.0f} s)")
            time.sleep(max(0.0, min(poll, timeout - elapsed)))

    def _dimensions(self) -> int:
        doc = self._run("read a vector", lambda c: c.find_one({"embedding": {"$exists": True}}, {"embedding": 1}))
        if not doc:
            raise StoreError("The catalog is empty: seed it first, so the vector index knows the vector size.")
        return len(to_vector(doc["embedding"]))

    # -- misc ------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(database=self.db_name, collection=self.collection_name, search=self.search)
        return info

    def close(self) -> None:
        with self._lock:
            if self._owns_client and self._client is not None:
                self._client.close()
                self._client, self._collection, self._owns_client = None, None, False


class AtlasRanker(Ranker):
    """Ranks on the server with ``$vectorSearch``; scores are converted back to cosine, ties broken by id."""

    def __init__(self, store: MongoStore) -> None:
        self.store = store

    def _aggregate(self, pipeline: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
        return self.store._run(action, lambda c: list(c.aggregate(pipeline)))

    def rank(self, vector: np.ndarray, filters: Filters, top_k: int, min_score: float | None, facet_n: int) -> Ranking:
        rows = self._aggregate(search_pipeline(vector, filters, top_k, self.store.index_name), "run a vector search")
        if not rows and not filters and self.store.count() == 0:
            raise EmptyCatalogError("The catalog is empty. Add products first: python -m data_seed --source demo")
        pairs = sorted((-to_cosine(r["score"]), str(r["_id"])) for r in rows)
        pairs = [(-s, i) for s, i in pairs if min_score is None or -s >= min_score][:top_k]
        facets = self.facets(vector, filters, facet_n, min_score)
        return Ranking([i for _, i in pairs], [s for s, _ in pairs], facets)

    def facets(self, vector: np.ndarray, filters: Filters, facet_n: int, min_score: float | None) -> Facets:
        """Disjunctive counts over the best ``facet_n`` candidates, one ``$vectorSearch`` per distinct filter."""
        limit = min(int(facet_n), MAX_CANDIDATES)
        out: Facets = {}
        for others, groups in facet_plan(filters).items():
            pipeline = vector_facet_pipeline(vector, others, groups, limit, self.store.index_name, min_score)
            rows = self._aggregate(pipeline, "count facets")
            out.update(merge_facets(rows[0] if rows else {}, groups))
        return {group: out[group] for group in FACET_GROUPS}

    def browse(self, filters: Filters, offset: int, limit: int) -> tuple[list[str], int, Facets]:
        where = match_filter(filters)

        def page(coll: Any) -> tuple[list[str], int]:
            total = coll.count_documents(where)
            if limit <= 0:  # pymongo treats limit(0) as "no limit"
                return [], total
            docs = coll.find(where, {"_id": 1}).sort("_id", 1).skip(max(0, offset)).limit(limit)
            return [d["_id"] for d in docs], total

        ids, total = self.store._run("browse the catalog", page)
        facets: Facets = {}
        for others, groups in facet_plan(filters).items():
            rows = self._aggregate(browse_facet_pipeline(others, groups), "count facets")
            facets.update(merge_facets(rows[0] if rows else {}, groups))
        return ids, total, {group: facets[group] for group in FACET_GROUPS}


# -- helpers ---------------------------------------------------------------------------------------
def host_of(url: str) -> str:
    """``mongodb+srv://user:pw@cluster0.x.mongodb.net/db?opts`` -> ``cluster0.x.mongodb.net``."""
    rest = url.split("://", 1)[-1].rsplit("@", 1)[-1]
    return re.split(r"[/?]", rest, maxsplit=1)[0] or "localhost"


def _mongo_client(url: str) -> Any:
    from pymongo import MongoClient

    options = {k.lower() for k, _ in parse_qsl(urlsplit(url).query)}
    defaults = {"serverSelectionTimeoutMS": TIMEOUT_MS, "connectTimeoutMS": TIMEOUT_MS, "appname": "similarity"}
    return MongoClient(url, **{k: v for k, v in defaults.items() if k.lower() not in options})


def _code_name(exc: OperationFailure) -> str:
    details = exc.details if isinstance(exc.details, dict) else {}
    name = str(details.get("codeName") or "")
    return name if re.fullmatch(r"[A-Za-z]{1,60}", name) else f"code {exc.code}"


def _latest_update(coll: Any) -> dt.datetime | None:
    doc = coll.find_one({}, {"updated_at": 1, "_id": 0}, sort=[("updated_at", -1)])
    value = doc.get("updated_at") if doc else None
    return as_utc(value) if isinstance(value, dt.datetime) else None
