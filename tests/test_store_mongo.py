"""MongoStore over mongomock (exact mode), the Atlas ranker over a scripted collection, masking and outages."""

from __future__ import annotations

import logging
import time

import mongomock
import mongomock.collection
import numpy as np
import pytest
from pymongo.errors import ServerSelectionTimeoutError

from similarity.config import Settings
from similarity.errors import ConfigError, EmptyCatalogError, StoreError
from similarity.index import StoreIndex, VectorIndex
from similarity.records import Filters
from similarity.store import open_store
from similarity.store.mongo import UNSUPPORTED, AtlasRanker, MongoStore, host_of

from .helpers import make_products, random_unit_vectors
from .store_contract import StoreContract

CLOSED_PORT_URL = "mongodb://user:s3cr3tpw@127.0.0.1:1/?serverSelectionTimeoutMS=300"


def patch_mongomock_bulk(monkeypatch: pytest.MonkeyPatch) -> None:
    """mongomock 4.3 predates pymongo 4.10's ``sort`` argument to bulk updates; drop it when unused."""
    original = mongomock.collection.BulkOperationBuilder.add_update

    def add_update(self, *args, sort=None, **kwargs):
        assert sort is None, "the store never sorts bulk updates"
        return original(self, *args, **kwargs)

    monkeypatch.setattr(mongomock.collection.BulkOperationBuilder, "add_update", add_update)


@pytest.fixture(autouse=True)
def _mongomock_bulk(monkeypatch):
    patch_mongomock_bulk(monkeypatch)


def mongomock_store(client=None, **kwargs) -> MongoStore:
    return MongoStore(client or mongomock.MongoClient(), "similarity", "products", search="exact", **kwargs)


class TestMongoStoreExact(StoreContract):
    def make_store(self):
        return mongomock_store(feed_overlap=0.0)  # one process: no writes to re-report (see the overlap test)


class FrozenClock:
    """A clock that never moves: every write falls in the millisecond of the feed's horizon and of every
    marker handed out before it (what a fast machine does now and then, pinned)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class TestMongoStoreFrozenClock(StoreContract):
    """The whole contract again with writes landing in the same millisecond as the markers before them."""

    def make_store(self):
        return mongomock_store(feed_overlap=0.0, clock=FrozenClock())


def test_a_write_in_the_horizons_millisecond_is_reported_after_the_first_marker():
    store = mongomock_store(feed_overlap=0.0, clock=FrozenClock())
    start = store.changes(None)  # sets the feed's horizon: this millisecond
    products = make_products(2)
    store.upsert(products)  # the same millisecond by the clock: stamped just after the horizon instead
    change = store.changes(start.marker)
    assert change.complete and set(change.upserted_ids) == {p.id for p in products}
    store.delete([products[0].id])
    assert store.changes(change.marker).removed_ids == (products[0].id,)

    def test_the_feed_reports_recent_writes_again_and_the_index_stays_right(self):
        store = mongomock_store()  # the default overlap covers writers in other processes
        products = make_products(30)
        store.upsert(products[:20])
        index = StoreIndex(store)
        index.current()
        marker = store.changes(None).marker
        store.upsert(products[20:22])
        store.delete([products[0].id])
        change = store.changes(marker)
        assert set(change.upserted_ids) >= {p.id for p in products[1:22]}  # the recent seed is reported again
        assert change.removed_ids == (products[0].id,)
        ranking = index.rank(products[0].embedding, Filters(), 30, None, 30)
        assert products[0].id not in ranking.ids and len(ranking.ids) == 21

    def test_document_schema(self, store):
        product = make_products(1)[0]
        store.upsert([product])
        doc = store._coll().find_one({"_id": product.id})
        assert doc["embedding"].subtype == 9  # BSON binary vector
        assert np.array_equal(np.asarray(doc["embedding"].as_vector().data, np.float32), product.embedding)
        assert bytes(doc["thumbnail"]) == product.thumbnail
        assert doc["colors"] == list(product.colors) and doc["source"] == "test"
        assert doc["embedding_model"] == "test/none"
        assert doc["created_at"] <= doc["updated_at"]
        indexed = {key for info in store._coll().index_information().values() for key, _ in info["key"]}
        assert {"category", "brand", "colors", "tags", "updated_at"} <= indexed

    def test_created_at_is_kept_from_the_source(self, store):
        product = make_products(1)[0]
        product.created_at = 1_600_000_000.25
        store.upsert([product])
        assert store.get([product.id])[0].created_at == pytest.approx(1_600_000_000.25, abs=1e-3)

    def test_repeated_ids_in_one_batch_count_once(self, store):
        products = make_products(3)
        report = store.upsert([*products, products[0]])
        assert (report.added, report.updated) == (3, 0) and store.count() == 3

    def test_reads_vectors_stored_as_plain_arrays(self, store):
        store._coll().insert_one({"_id": "legacy", "embedding": [0.6, 0.8], "category": "bags", "colors": ["red"]})
        assert np.allclose(store.vector("legacy"), [0.6, 0.8])
        assert store.load_vectors().facets["colors"] == [("red",)]

    def test_describe_names_database_and_mode(self, store):
        info = store.describe()
        assert info["backend"] == "mongodb" and info["collection"] == "products" and info["search"] == "exact"


class CountingCollection:
    """A pass-through collection that counts reads of the embedding field."""

    def __init__(self, inner):
        self.inner = inner
        self.vector_reads = 0

    def find(self, *args, **kwargs):
        projection = args[1] if len(args) > 1 else kwargs.get("projection")
        if projection is None or projection.get("embedding"):
            self.vector_reads += 1
        return self.inner.find(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_exact_mode_loads_vectors_once_for_many_searches():
    counting = CountingCollection(mongomock.MongoClient().similarity.products)
    store = mongomock_store(collection=counting)
    products = make_products(30)
    store.upsert(products)
    assert store.ranker() is None  # exact: the service uses the shared StoreIndex
    index = StoreIndex(store)
    for query in random_unit_vectors(10, seed=5):
        assert len(index.rank(query, Filters(), 5, None, 50).ids) == 5
    assert counting.vector_reads == 1
    store.upsert(make_products(31)[30:])
    assert len(index.rank(products[0].embedding, Filters(), 50, None, 50).ids) == 31
    assert counting.vector_reads == 2  # reloaded once after the write, not per query


def test_a_second_client_sees_writes_through_the_version_marker():
    client = mongomock.MongoClient()
    reader, writer = mongomock_store(client), mongomock_store(client)
    products = make_products(8)
    writer.upsert(products[:4])
    index = StoreIndex(reader)
    assert products[6].id not in index.rank(products[6].embedding, Filters(), 10, None, 50).ids
    version = reader.version()
    writer.upsert(products[4:])
    assert reader.version() != version
    assert index.rank(products[6].embedding, Filters(), 10, None, 50).ids[0] == products[6].id
    writer.delete([products[6].id])
    assert products[6].id not in index.rank(products[6].embedding, Filters(), 10, None, 50).ids


def test_version_moves_even_for_writes_in_the_same_millisecond():
    store = mongomock_store()
    product = make_products(1)[0]
    seen = set()
    for _ in range(5):
        store.upsert([product])
        seen.add(store.version())
    assert len(seen) == 5


def test_auto_mode_on_a_server_without_atlas_search_is_exact(caplog):
    store = MongoStore(mongomock.MongoClient(), search="auto")
    with caplog.at_level(logging.INFO, logger="similarity.store.mongo"):
        assert store.ranker() is None
    assert store.search_mode() == "exact" and "search mode: exact" in caplog.text


def test_bad_search_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="auto, atlas, exact"):
        MongoStore(mongomock.MongoClient(), search="fast")


def test_browse_with_plain_queries_matches_the_in_memory_index():
    store = mongomock_store()
    products = make_products(40)
    store.upsert(products)
    reference = VectorIndex(store.load_vectors())
    ranker = AtlasRanker(store)
    for filters in (Filters(), Filters.of(categories=["shoes"]), Filters.of(brands=["acme", "globex"], colors=["red"])):
        for offset, limit in ((0, 7), (5, 100), (0, 0)):
            assert ranker.browse(filters, offset, limit) == reference.browse(filters, offset, limit)


# -- Atlas ranker over a scripted collection ($vectorSearch cannot run on mongomock) ------------------
class ScriptedAtlas:
    """Answers ``aggregate`` like Atlas would (scores, facets) and records the pipelines it was given."""

    def __init__(self, hits, facet_rows=None, indexes=None):
        self.hits, self.facet_rows = hits, facet_rows or {}
        self.indexes = indexes if indexes is not None else [{"name": "vector_index", "queryable": True}]
        self.pipelines = []

    def aggregate(self, pipeline):
        self.pipelines.append(pipeline)
        if "$facet" in pipeline[-1]:
            return iter([{g: self.facet_rows.get(g, []) for g in pipeline[-1]["$facet"]}])
        return iter(self.hits)

    def list_search_indexes(self, name=None):
        return iter(self.indexes)

    def count_documents(self, query):
        return len(self.hits)


def test_auto_mode_uses_atlas_when_the_index_is_queryable():
    store = MongoStore(collection=ScriptedAtlas([]), search="auto")
    assert isinstance(store.ranker(), AtlasRanker) and store.search_mode() == "atlas"
    pending = MongoStore(collection=ScriptedAtlas([], indexes=[{"name": "vector_index", "queryable": False}]))
    assert pending.ranker() is None


def test_atlas_rank_converts_scores_breaks_ties_by_id_and_applies_min_score():
    hits = [
        {"_id": "c", "score": 0.9},
        {"_id": "b", "score": 0.95},
        {"_id": "a", "score": 0.9},
        {"_id": "d", "score": 0.5},
    ]
    facet_rows = {
        "categories": [{"_id": "bags", "count": 2}, {"_id": "shoes", "count": 3}],
        "brands": [{"_id": None, "count": 1}],
    }
    scripted = ScriptedAtlas(hits, facet_rows)
    store = MongoStore(collection=scripted, search="atlas", index_name="idx")
    vector = random_unit_vectors(1)[0]
    ranking = store.ranker().rank(vector, Filters.of(categories=["bags"]), 3, 0.1, 60)
    assert ranking.ids == ["b", "a", "c"]
    assert ranking.scores == pytest.approx([0.9, 0.8, 0.8])
    assert ranking.facets == {"categories": {"shoes": 3, "bags": 2}, "brands": {}, "colors": {}, "tags": {}}
    search, *facet_queries = scripted.pipelines
    stage = search[0]["$vectorSearch"]
    assert stage["index"] == "idx" and stage["limit"] == 3 and stage["filter"] == {"category": {"$in": ["bags"]}}
    # categories are counted without the category filter, the other groups with it: two facet searches
    filters = [q[0]["$vectorSearch"].get("filter") for q in facet_queries]
    assert filters == [None, {"category": {"$in": ["bags"]}}]
    assert all(q[0]["$vectorSearch"]["limit"] == 60 for q in facet_queries)
    assert ranking.ids == ["b", "a", "c"] and min(ranking.scores) >= 0.1
    assert store.ranker().rank(vector, Filters(), 10, 0.85, 60).ids == ["b"]


def test_atlas_rank_on_an_empty_catalog_is_a_clear_error():
    store = MongoStore(collection=ScriptedAtlas([]), search="atlas")
    with pytest.raises(EmptyCatalogError, match="empty"):
        store.ranker().rank(random_unit_vectors(1)[0], Filters(), 5, None, 50)


# -- index management ----------------------------------------------------------------------------------
class ScriptedIndexes:
    """Search-index commands: records the created model and reports the given statuses in turn."""

    def __init__(self, statuses):
        self.statuses, self.created = list(statuses), None

    def list_search_indexes(self, name=None):
        if self.created is None:
            return iter([])
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return iter([{"name": name, "status": status, "queryable": status == "READY"}])

    def create_search_index(self, model):
        self.created = model.document
        return model.document["name"]


def test_create_vector_index_waits_until_queryable():
    scripted = ScriptedIndexes(["PENDING", "BUILDING", "READY"])
    store = MongoStore(collection=scripted, search="auto", index_name="vi")
    messages = []
    store.create_vector_index("scalar", timeout=5, poll=0, progress=messages.append, dimensions=512)
    assert scripted.created["type"] == "vectorSearch" and scripted.created["name"] == "vi"
    vector = scripted.created["definition"]["fields"][0]
    assert vector == {
        "type": "vector",
        "path": "embedding",
        "numDimensions": 512,
        "similarity": "dotProduct",
        "quantization": "scalar",
    }
    assert "Creating vector index" in messages[0] and "queryable" in messages[-1]
    assert any("BUILDING" in m for m in messages)


def test_create_vector_index_times_out_with_a_clear_error():
    store = MongoStore(collection=ScriptedIndexes(["BUILDING"]), index_name="vi")
    with pytest.raises(StoreError, match="not queryable after 0 s"):
        store.create_vector_index(timeout=0.05, poll=0.01, progress=lambda m: None, dimensions=8)


def test_create_vector_index_on_plain_mongodb_says_exact_mode_is_used():
    store = mongomock_store()
    store.upsert(make_products(2))
    with pytest.raises(StoreError, match="exact mode") as err:
        store.create_vector_index(progress=lambda m: None)
    assert str(err.value) == UNSUPPORTED


# -- URLs, outages, masking ----------------------------------------------------------------------------
def test_host_of_strips_credentials_path_and_options():
    assert host_of("mongodb+srv://u:p@cluster0.ab.mongodb.net/db?retryWrites=true") == "cluster0.ab.mongodb.net"
    assert host_of("mongodb://h1:27017,h2:27017/?replicaSet=rs") == "h1:27017,h2:27017"


def test_from_url_is_lazy_and_masked():
    settings = Settings(mongo_db="shop", mongo_collection="items", mongo_search="exact")
    started = time.perf_counter()
    store = open_store(CLOSED_PORT_URL, settings)
    assert time.perf_counter() - started < 0.2 and store._client is None  # no connection yet
    assert store.display_url == "mongodb://user:****@127.0.0.1:1/?serverSelectionTimeoutMS=300"
    assert (store.db_name, store.collection_name, store.search) == ("shop", "items", "exact")


def test_unreachable_server_is_a_quick_masked_store_error(caplog):
    store = open_store(CLOSED_PORT_URL, Settings(mongo_search="exact"))
    caplog.set_level(logging.DEBUG)
    try:
        started = time.perf_counter()
        with pytest.raises(StoreError) as err:
            StoreIndex(store).rank(random_unit_vectors(1)[0], Filters(), 5, None, 50)
        assert time.perf_counter() - started < 3
        message = str(err.value)
        assert "127.0.0.1:1" in message and "user:****@" in message and "s3cr3tpw" not in message
        assert err.value.__cause__ is None and err.value.__suppress_context__
        with pytest.raises(StoreError, match="Cannot reach"):
            store.upsert(make_products(1))
    finally:
        store.close()
    assert "s3cr3tpw" not in caplog.text


class FlakyCollection:
    """Fails like an unreachable server while ``down`` is set, then serves from mongomock again."""

    def __init__(self, inner):
        self.inner, self.down = inner, False

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            if self.down:
                raise ServerSelectionTimeoutError(
                    "db.example.net:27017: timed out, mongodb://u:s3cr3tpw@db.example.net"
                )
            return attr(*args, **kwargs)

        return call


def test_store_and_index_recover_after_an_outage():
    flaky = FlakyCollection(mongomock.MongoClient().similarity.products)
    store = MongoStore(collection=flaky, url="mongodb://u:s3cr3tpw@db.example.net/", search="exact")
    products = make_products(6)
    store.upsert(products[:3])
    index = StoreIndex(store)
    assert len(index.rank(products[0].embedding, Filters(), 10, None, 50).ids) == 3
    flaky.down = True
    for action in (lambda: index.rank(products[0].embedding, Filters(), 10, None, 50), lambda: store.upsert(products)):
        with pytest.raises(StoreError, match=r"db\.example\.net") as err:
            action()
        assert "s3cr3tpw" not in str(err.value) and "timed out" not in str(err.value)
    flaky.down = False
    store.upsert(products[3:])
    assert index.rank(products[4].embedding, Filters(), 10, None, 50).ids[0] == products[4].id


def test_create_vector_index_command_reports_an_unreachable_server_masked(capsys):
    from data_seed.cli import main

    assert main(["--create-vector-index", "--quantization", "scalar", "--store", CLOSED_PORT_URL]) == 1
    err = capsys.readouterr().err
    assert "Cannot reach MongoDB at 127.0.0.1:1" in err and "user:****@" in err and "s3cr3tpw" not in err


def test_search_service_runs_on_a_mongo_catalog(tiny_embedder):
    from similarity.search import SearchService

    store = MongoStore(mongomock.MongoClient(), search="auto")
    products = make_products(12, dim=32, model=tiny_embedder.model_id)
    store.upsert(products)
    service = SearchService(store, tiny_embedder, settings=Settings(mongo_search="auto"))
    service.check_model()
    result = service.rank(service.product_query(products[2].id), Filters.of(categories=["electronics"]), 3)
    assert [m.product.category for m in result.matches] == ["electronics"] * 2  # 3 electronics, minus itself
    assert all(m.product.thumbnail for m in result.matches)
    assert service.browse(page=1, page_size=5).total == 12


def test_create_vector_index_on_an_empty_catalog_takes_the_size_from_the_model():
    from data_seed.cli import _create_index
    from similarity.config import Settings

    class EmptyCollection(ScriptedIndexes):
        def count_documents(self, query):
            return 0

    scripted = EmptyCollection(["READY"])
    store = MongoStore(collection=scripted, index_name="vi")
    _create_index(store, None, Settings(clip_model="tiny-test", clip_pretrained="none"))
    assert scripted.created["definition"]["fields"][0]["numDimensions"] == 32  # the tiny model's width
