"""The Atlas pipelines and index definition, checked as plain data."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from bson.binary import Binary, BinaryVectorDtype

from similarity.errors import StoreError
from similarity.records import Filters, PriceRange
from similarity.store.mongo.codec import binary_vectors, next_timestamp, to_document, to_product, to_vector
from similarity.store.mongo.pipelines import (
    browse_facet_pipeline,
    catalog_price_pipeline,
    facet_counts,
    facet_plan,
    match_filter,
    num_candidates,
    price_range,
    search_pipeline,
    to_cosine,
    to_search_score,
    vector_facet_pipeline,
    vector_index_definition,
)

from .helpers import make_products

VECTOR = np.array([0.6, 0.8, 0.0], dtype=np.float32)
SCORE = {"$meta": "vectorSearchScore"}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (Filters(), {}),
        (Filters.of(categories=["shoes"]), {"category": {"$in": ["shoes"]}}),
        (Filters.of(colors=["red", "blue"]), {"colors": {"$in": ["red", "blue"]}}),
        (
            Filters.of(categories=["bags", "shoes"], brands=["acme"], tags=["leather"]),
            {
                "$and": [
                    {"category": {"$in": ["bags", "shoes"]}},
                    {"brand": {"$in": ["acme"]}},
                    {"tags": {"$in": ["leather"]}},
                ]
            },
        ),
    ],
)
def test_filters_are_in_clauses_joined_by_and(filters, expected):
    assert match_filter(filters) == expected
    stage = search_pipeline(VECTOR, filters, 10, "vector_index")[0]["$vectorSearch"]
    assert stage.get("filter") == (expected or None)


def test_search_pipeline_is_vector_search_first_then_ids_and_scores():
    pipeline = search_pipeline(VECTOR, Filters(), 12, "vector_index")
    assert pipeline == [
        {
            "$vectorSearch": {
                "index": "vector_index",
                "path": "embedding",
                "queryVector": pytest.approx([0.6, 0.8, 0.0]),
                "limit": 12,
                "numCandidates": 240,
            }
        },
        {"$project": {"_id": 1, "score": SCORE}},
    ]
    assert all(type(x) is float for x in pipeline[0]["$vectorSearch"]["queryVector"])  # BSON-encodable
    assert "thumbnail" not in str(pipeline)


def test_exact_flag_replaces_num_candidates():
    stage = search_pipeline(VECTOR, Filters(), 5, "vi", exact=True)[0]["$vectorSearch"]
    assert stage["exact"] is True and "numCandidates" not in stage


@pytest.mark.parametrize(
    ("limit", "expected"), [(1, 200), (10, 200), (11, 220), (100, 2000), (500, 10000), (10000, 10000)]
)
def test_num_candidates_bounds(limit, expected):
    assert num_candidates(limit) == expected
    assert num_candidates(limit) >= limit


def test_limit_is_capped_at_the_atlas_maximum():
    stage = search_pipeline(VECTOR, Filters(), 50_000, "vi")[0]["$vectorSearch"]
    assert stage["limit"] == 10_000 and stage["numCandidates"] == 10_000


@pytest.mark.parametrize("cosine", [-1.0, -0.3, 0.0, 0.42, 1.0])
def test_score_conversion_round_trips(cosine):
    assert to_search_score(cosine) == pytest.approx((1 + cosine) / 2)
    assert to_cosine(to_search_score(cosine)) == pytest.approx(cosine)


def test_facet_plan_is_disjunctive_and_shares_queries():
    assert facet_plan(Filters()) == {Filters(): ["categories", "brands", "colors", "tags", "price"]}
    filters = Filters.of(brands=["acme"], colors=["red"])
    assert facet_plan(filters) == {
        Filters.of(brands=["acme"], colors=["red"]): ["categories", "tags", "price"],
        Filters.of(colors=["red"]): ["brands"],
        Filters.of(brands=["acme"]): ["colors"],
    }


def test_vector_facet_pipeline():
    filters = Filters.of(colors=["red"])
    pipeline = vector_facet_pipeline(VECTOR, filters, ["categories", "colors"], 300, "vi", min_score=0.2)
    stage = pipeline[0]["$vectorSearch"]
    assert (stage["limit"], stage["numCandidates"], stage["filter"]) == (300, 6000, {"colors": {"$in": ["red"]}})
    assert pipeline[1] == {"$project": {"score": SCORE, "category": 1, "brand": 1, "colors": 1, "tags": 1, "price": 1}}
    assert pipeline[2] == {"$match": {"score": {"$gte": pytest.approx(0.6)}}}
    assert pipeline[3] == {
        "$facet": {
            "categories": [{"$unwind": "$category"}, {"$group": {"_id": "$category", "count": {"$sum": 1}}}],
            "colors": [{"$unwind": "$colors"}, {"$group": {"_id": "$colors", "count": {"$sum": 1}}}],
        }
    }
    assert len(vector_facet_pipeline(VECTOR, filters, ["brands"], 300, "vi")) == 3  # no min_score stage


def test_browse_facet_pipeline_matches_then_counts():
    pipeline = browse_facet_pipeline(Filters.of(tags=["travel"]), ["brands"])
    assert pipeline[0] == {"$match": {"tags": {"$in": ["travel"]}}}
    assert list(pipeline[1]["$facet"]) == ["brands"]


def test_facet_counts_sorted_and_blanks_dropped():
    rows = [{"_id": "b", "count": 2}, {"_id": None, "count": 9}, {"_id": "a", "count": 2}, {"_id": "c", "count": 5}]
    assert list(facet_counts(rows).items()) == [("c", 5), ("a", 2), ("b", 2)]


def test_index_definition_without_quantization():
    assert vector_index_definition(512) == {
        "fields": [
            {"type": "vector", "path": "embedding", "numDimensions": 512, "similarity": "dotProduct"},
            {"type": "filter", "path": "category"},
            {"type": "filter", "path": "brand"},
            {"type": "filter", "path": "colors"},
            {"type": "filter", "path": "tags"},
            {"type": "filter", "path": "price"},
        ]
    }


def test_index_definition_with_scalar_quantization():
    vector = vector_index_definition(512, "scalar")["fields"][0]
    assert vector["quantization"] == "scalar" and vector["similarity"] == "dotProduct"
    with pytest.raises(ValueError, match="scalar"):
        vector_index_definition(512, "fp8")
    with pytest.raises(ValueError):
        vector_index_definition(0)


def test_document_round_trip_keeps_every_field():
    product = make_products(1)[0]
    product.created_at = 1_700_000_000.5
    now = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
    vector = binary_vectors([product])[product.id]
    doc = {"_id": product.id, **to_document(product, vector, now), "created_at": dt.datetime(2023, 11, 14, 22, 13, 20)}
    assert doc["embedding"].subtype == 9 and isinstance(doc["thumbnail"], Binary)
    back = to_product(doc, vectors=True)
    assert back.metadata() | {"created_at": 0, "updated_at": 0} == product.metadata() | {
        "created_at": 0,
        "updated_at": 0,
    }
    assert back.created_at == 1_700_000_000.0 and back.updated_at == now.timestamp()  # naive = UTC
    assert np.array_equal(back.embedding, product.embedding) and back.thumbnail == product.thumbnail


@pytest.mark.parametrize(
    "stored",
    [
        Binary.from_vector([0.5, -0.25], BinaryVectorDtype.FLOAT32),
        Binary.from_vector([1, -2], BinaryVectorDtype.INT8),
        np.array([0.5, -0.25], np.float32).tobytes(),
        [0.5, -0.25],
    ],
)
def test_vectors_are_read_from_every_storage_form(stored):
    vector = to_vector(stored)
    assert vector.dtype == np.float32 and vector.shape == (2,)


def test_unusable_embeddings_are_refused_before_writing():
    products = make_products(3)
    products[1].embedding = np.array([np.nan] * 8, np.float32)
    with pytest.raises(StoreError, match="unusable embedding"):
        binary_vectors(products)
    products[1].embedding = np.ones(4, np.float32)
    with pytest.raises(StoreError, match="unusable embedding"):
        binary_vectors(products)


def test_timestamps_move_forward_in_whole_milliseconds():
    future = dt.datetime(2999, 1, 1, tzinfo=dt.UTC)
    assert next_timestamp(future) == future + dt.timedelta(milliseconds=1)
    now = next_timestamp(None)
    assert now.microsecond % 1000 == 0 and now.tzinfo is dt.UTC


def test_price_range_filter_is_gte_lte_on_price_inside_vector_search():
    filters = Filters.of(categories=["bags"], price_min=10, price_max="49.5")
    stage = search_pipeline(VECTOR, filters, 12, "vi")[0]["$vectorSearch"]
    assert stage["filter"] == {"$and": [{"category": {"$in": ["bags"]}}, {"price": {"$gte": 10.0, "$lte": 49.5}}]}
    assert match_filter(Filters.of(price_max=20)) == {"price": {"$lte": 20.0}}
    assert match_filter(Filters.of(price_min=0)) == {"price": {"$gte": 0.0}}
    assert "price" in {f["path"] for f in vector_index_definition(512)["fields"] if f["type"] == "filter"}


def test_price_facet_is_the_range_among_candidates_without_the_price_bounds():
    filters = Filters.of(colors=["red"], price_min=5, price_max=9)
    plan = facet_plan(filters)
    assert plan[Filters.of(colors=["red"])] == ["price"]  # the price bounds are left out of their own facet
    assert plan[Filters.of(price_min=5, price_max=9)] == ["colors"]
    pipeline = vector_facet_pipeline(VECTOR, Filters.of(colors=["red"]), ["price"], 300, "vi")
    priced = {"$cond": [{"$isNumber": "$price"}, 1, 0]}
    assert pipeline[-1] == {
        "$facet": {
            "price": [
                {
                    "$group": {
                        "_id": None,
                        "min": {"$min": "$price"},
                        "max": {"$max": "$price"},
                        "priced": {"$sum": priced},
                        "count": {"$sum": 1},
                    }
                }
            ]
        }
    }
    assert price_range({"price": [{"_id": None, "min": 3, "max": 80.5, "priced": 7, "count": 9}]}) == PriceRange(
        3.0, 80.5, 7, 2
    )
    assert price_range({"price": [{"_id": None, "min": None, "max": None, "priced": 0, "count": 4}]}) == PriceRange(
        None, None, 0, 4
    )
    assert price_range({}) == PriceRange()
    assert catalog_price_pipeline()[0]["$group"]["priced"] == {"$sum": priced}


def test_catalog_price_pipeline_runs_on_a_collection():
    """The catalog's price range as Atlas computes it (a plain $group, so mongomock runs it too)."""
    import mongomock

    coll = mongomock.MongoClient().db.products
    coll.insert_many(
        [{"_id": "a", "price": 10.0}, {"_id": "b", "price": None}, {"_id": "c"}, {"_id": "d", "price": 55.5}]
    )
    assert price_range({"price": list(coll.aggregate(catalog_price_pipeline()))}) == PriceRange(10.0, 55.5, 2, 2)
    coll.delete_many({})
    assert price_range({"price": list(coll.aggregate(catalog_price_pipeline()))}) == PriceRange()
