from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from similarity.build import build_service
from similarity.config import Settings
from similarity.errors import EmptyCatalogError, ModelMismatchError, NotFoundError, SimilarityError
from similarity.ingest import IngestItem, Ingestor
from similarity.records import Filters
from similarity.search import SearchService
from similarity.store import open_store

from .helpers import image_bytes, make_image, make_products

COLOURS = [(220, 30, 30), (30, 30, 220), (30, 160, 60), (240, 200, 40), (20, 20, 20), (160, 60, 200)]
CATEGORIES = ["bags", "shoes", "watches"]


@pytest.fixture
def catalog(tiny_embedder):
    """A memory store with 18 generated products (3 categories x 6 colours)."""
    store = open_store("memory://")
    items = [
        IngestItem(
            f"p{i}.png",
            partial(image_bytes, make_image(COLOURS[i % 6], shape=i)),
            {"name": f"Item {i}", "category": CATEGORIES[i % 3], "brand": ["acme", "zenith"][i % 2]},
        )
        for i in range(18)
    ]
    report = Ingestor(store, tiny_embedder, batch_size=4).run(items)
    assert report.added == 18
    return SearchService(store, tiny_embedder, settings=Settings(store_url="memory://"))


def test_image_search_finds_itself_first(catalog):
    picture = make_image(COLOURS[4], shape=4)
    result = catalog.search(image_bytes(picture), top_k=5)
    assert result.matches[0].product.name == "Item 4"
    assert result.matches[0].score == pytest.approx(1.0, abs=1e-4)
    assert [m.rank for m in result.matches] == [1, 2, 3, 4, 5]
    assert set(result.timings_ms) >= {"decode", "embed", "search", "fetch", "total"}
    assert result.model == "tiny-test/none"


def test_never_returns_more_than_top_k(catalog):
    assert len(catalog.search(text="red bag", top_k=3).matches) == 3
    assert len(catalog.search(text="red bag", top_k=100).matches) == 18


def test_filters_narrow_and_facets_stay_disjunctive(catalog):
    query = catalog.encode(text="a shoe")
    result = catalog.rank(query, Filters.of(categories=["shoes"]), top_k=12)
    assert {m.product.category for m in result.matches} == {"shoes"}
    assert len(result.matches) == 6
    assert result.facets["categories"] == {"bags": 6, "shoes": 6, "watches": 6}
    assert result.facets["brands"] == {"acme": 3, "zenith": 3}


def test_text_weight_moves_between_image_and_text(catalog, tiny_embedder):
    picture = make_image(COLOURS[0], shape=0)
    image_only = catalog.encode(picture).vector
    text_only = catalog.encode(text="blue watch").vector
    half = catalog.encode(picture, text="blue watch", text_weight=0.5).vector
    expected = image_only + text_only
    assert np.allclose(half, expected / np.linalg.norm(expected), atol=1e-5)
    assert np.allclose(catalog.encode(picture, text="blue watch", text_weight=0.0).vector, image_only, atol=1e-6)
    assert catalog.encode(picture, text="x").kind == "image+text"


def test_with_image_swaps_the_image_part_and_keeps_text_and_weight(catalog):
    query = catalog.encode(make_image(COLOURS[0], shape=0), text="blue watch", text_weight=0.3)
    other = catalog.encode(make_image(COLOURS[2], shape=1)).vector
    swapped = catalog.with_image(query, other)
    expected = 0.7 * other + 0.3 * query.parts["text"]
    assert np.allclose(swapped.vector, expected / np.linalg.norm(expected), atol=1e-6)
    assert swapped.text == "blue watch" and swapped.text_weight == 0.3 and swapped.kind == "image+text"
    assert np.array_equal(query.parts["image"], catalog.encode(make_image(COLOURS[0], shape=0)).vector)  # untouched


def test_similar_to_uses_stored_vector_and_leaves_source_out(catalog):
    source = catalog.search(text="anything", top_k=1).matches[0].product.id
    result = catalog.similar_to(source, top_k=4)
    assert source not in [m.product.id for m in result.matches]
    assert len(result.matches) == 4 and result.query["source_id"] == source
    with pytest.raises(NotFoundError):
        catalog.similar_to("0" * 64)


def test_similar_to_facets_leave_the_source_out(catalog):
    source = catalog.search(text="anything", top_k=1).matches[0].product
    result = catalog.similar_to(source.id, top_k=100)
    assert len(result.matches) == 17
    counts = {c: sum(m.product.category == c for m in result.matches) for c in CATEGORIES}
    assert result.facets["categories"] == counts
    narrowed = catalog.similar_to(source.id, Filters.of(brands=[source.brand]), top_k=100)
    assert sum(narrowed.facets["brands"].values()) == 17  # brand counts ignore the brand filter itself
    assert narrowed.facets["categories"] == {
        c: sum(m.product.category == c for m in narrowed.matches)
        for c in CATEGORIES
        if any(m.product.category == c for m in narrowed.matches)
    }


def test_text_weight_must_be_between_0_and_1(catalog):
    with pytest.raises(SimilarityError, match="between 0 and 1"):
        catalog.encode(make_image(), text="red", text_weight=1.5)


@pytest.mark.parametrize("top_k", [0, 101, "many"])
def test_top_k_bounds(catalog, top_k):
    with pytest.raises(SimilarityError, match="top_k"):
        catalog.search(text="bag", top_k=top_k)


def test_no_input_is_a_clear_error(catalog):
    with pytest.raises(SimilarityError, match="photo, an image URL or a description"):
        catalog.search(text="   ")


def test_empty_catalog_is_a_clear_error(tiny_embedder):
    service = SearchService(open_store("memory://"), tiny_embedder)
    with pytest.raises(EmptyCatalogError, match="data_seed"):
        service.search(text="bag")


def test_result_json_contract(catalog):
    data = catalog.search(text="bag", top_k=2).to_dict(thumbnails=True)
    assert set(data) >= {"matches", "facets", "timings_ms", "model"}
    first = data["matches"][0]
    assert set(first) >= {"id", "score", "name", "category", "brand", "colors", "tags", "thumbnail"}
    assert first["thumbnail"].startswith("data:image/jpeg;base64,")


def test_browse_pages_and_counts(catalog):
    page = catalog.browse(Filters.of(categories=["bags"]), page=2, page_size=4)
    assert page.total == 6 and len(page.products) == 2
    assert page.facets["categories"] == {"bags": 6, "shoes": 6, "watches": 6}
    assert catalog.info()["categories"] == {"bags": 6, "shoes": 6, "watches": 6}


def test_build_service_refuses_other_models_catalog(tmp_path, tiny_embedder):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    with open_store(url) as store:
        store.upsert(make_products(3, model="ViT-B-32/openai"))
    settings = Settings(store_url=url, clip_model="tiny-test", clip_pretrained="none", tagger="off")
    with pytest.raises(ModelMismatchError, match="--reembed"):
        build_service(settings, embedder=tiny_embedder)
