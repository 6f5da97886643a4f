"""The store contract and Atlas mode against a real MongoDB server (skipped unless one is configured).

No MongoDB server can run on the build machines, so this suite runs only where
``SIMILARITY_TEST_MONGODB_URI`` points at one (Atlas, or the mongodb/mongodb-atlas-local image).
"""

from __future__ import annotations

import os
import time
import uuid

import pytest

from similarity.config import Settings
from similarity.errors import StoreError
from similarity.index import StoreIndex
from similarity.records import Filters
from similarity.store.mongo import MongoStore

from .helpers import make_products, random_unit_vectors
from .rankings import same_up_to_ties
from .store_contract import StoreContract

URI = os.environ.get("SIMILARITY_TEST_MONGODB_URI", "")
pytestmark = [
    pytest.mark.mongodb,
    pytest.mark.skipif(not URI, reason="set SIMILARITY_TEST_MONGODB_URI to run against a real MongoDB server"),
]


def real_store(collection: str, search: str = "exact") -> MongoStore:
    settings = Settings(mongo_db="similarity_test", mongo_collection=collection, mongo_search=search)
    return MongoStore.from_url(URI, settings)


class TestMongoStoreOnServer(StoreContract):
    @pytest.fixture
    def store(self):
        store = real_store(f"contract_{uuid.uuid4().hex[:12]}")
        yield store
        store._run("drop the test collection", lambda c: c.drop())
        store.close()


@pytest.fixture(scope="module")
def atlas_store():
    """A collection with a queryable vector index (8 dims); skipped on servers without Atlas Search."""
    store = real_store(f"atlas_{uuid.uuid4().hex[:12]}", search="atlas")
    products = make_products(60)
    try:
        store.upsert(products)
        store.create_vector_index(timeout=240, poll=2, progress=lambda message: None, dimensions=8)
    except StoreError as exc:
        store._run("drop the test collection", lambda c: c.drop())
        store.close()
        pytest.skip(f"no Atlas Vector Search on this server: {exc}")
    _wait_until_searchable(store, products)
    yield store, products
    store._run("drop the test collection", lambda c: c.drop())
    store.close()


def _wait_until_searchable(store: MongoStore, products, timeout: float = 120) -> None:
    """Atlas indexes new documents asynchronously: poll (bounded) until every product is found."""
    deadline = time.monotonic() + timeout
    ranker = store.ranker()
    while len(ranker.rank(products[0].embedding, Filters(), 100, None, 10).ids) < len(products):
        if time.monotonic() > deadline:
            pytest.fail("the vector index did not pick up the test documents in time")
        time.sleep(1)


def test_atlas_ranking_equals_exact_ranking(atlas_store):
    store, products = atlas_store
    atlas, exact = store.ranker(), StoreIndex(store)
    assert atlas is not None and store.search_mode() == "atlas"
    filter_sets = [Filters(), Filters.of(categories=["shoes", "watches"]), Filters.of(brands=["acme"], colors=["red"])]
    for query in [products[5].embedding, *random_unit_vectors(3, seed=21)]:
        for filters in filter_sets:
            got = atlas.rank(query, filters, 10, None, 200)
            want = exact.rank(query, filters, 10, None, 200)
            assert same_up_to_ties(got, want, tol=1e-5)  # the server sums in its own order: near-ties may swap
            assert got.facets == want.facets


def test_atlas_browse_equals_exact_browse(atlas_store):
    store, _ = atlas_store
    filters = Filters.of(tags=["leather"])
    assert store.ranker().browse(filters, 3, 10) == StoreIndex(store).browse(filters, 3, 10)


def test_auto_mode_picks_atlas_when_the_index_is_queryable(atlas_store):
    store, _ = atlas_store
    auto = real_store(store.collection_name, search="auto")
    try:
        assert auto.search_mode() == "atlas"
    finally:
        auto.close()
