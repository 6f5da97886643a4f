"""The launched app's public API, called with gradio_client like any script would."""

from __future__ import annotations

from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

import app
from similarity import ui
from similarity.ui import launch_options

from .helpers import make_image
from .test_app_handlers import seeded_service

ENDPOINTS = {"/search_image", "/search_text", "/similar_to", "/catalog_map", "/search_regions"}
ENDPOINTS |= {"/saved_products", "/save_product", "/unsave_product"}  # accounts: see test_saved_api.py
FILTERS = ["categories", "brands", "colors", "tags"]
STEERING = ["more", "less", "liked", "disliked", "price_min", "price_max", "sort", "within_best", "collapse_duplicates"]


@pytest.fixture(scope="module")
def client(tiny_embedder):
    demo = app.build_demo(seeded_service(tiny_embedder))
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **launch_options())
    try:
        yield Client(url, verbose=False)
    finally:
        demo.close()


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("api") / "query.png"
    make_image((30, 60, 200), (120, 100), shape=2).save(path)
    return str(path)


def check_matches(result: dict, top_k: int, thumbnail: tuple[str, ...] = ("http://", "https://")) -> list[dict]:
    matches = result["matches"]
    assert len(matches) == top_k
    assert {"id", "name", "category", "brand", "colors", "tags", "score", "thumbnail"} <= set(matches[0])
    assert all(m["thumbnail"].startswith(thumbnail) for m in matches)  # links by default
    scores = [m["score"] for m in matches]
    assert scores == sorted(scores, reverse=True)
    assert set(result["facets"]) == {"categories", "brands", "colors", "tags", "price"}
    assert "search" in result["timings_ms"]
    return matches


def test_only_the_three_named_endpoints_are_public(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(endpoints) == ENDPOINTS
    params = {p["parameter_name"]: p for p in endpoints["/search_image"]["parameters"]}
    assert list(params) == [*["image", "url", "text", "text_weight", "top_k", "min_score"], *FILTERS, "thumbnails",
                            *STEERING]  # fmt: skip
    assert params["brands"]["python_type"]["type"] == "list[str]" and params["top_k"]["parameter_default"] == 12
    for name in ("/search_text", "/similar_to"):
        assert [p["parameter_name"] for p in endpoints[name]["parameters"]][-14:] == [*FILTERS, "thumbnails", *STEERING]
    assert not list(Path(ui.__file__).parent.glob("*.pyi"))  # building the app wrote nothing into the package


def test_search_image_with_filters(client, photo):
    result = client.predict(image=handle_file(photo), top_k=4, categories=["shoes"], api_name="/search_image")
    assert {m["category"] for m in check_matches(result, 4)} == {"shoes"}
    assert result["query"]["kind"] == "image" and result["model"] == "tiny-test/none"
    assert result["facets"]["categories"]["bags"] == 6  # disjunctive: other categories still counted


def test_search_image_refines_with_text_and_brand_filter(client, photo):
    result = client.predict(
        image=handle_file(photo), text="blue shoe", text_weight=0.3, brands=["peakrun"], api_name="/search_image"
    )
    assert {m["brand"] for m in check_matches(result, 3)} == {"peakrun"}
    assert result["query"]["kind"] == "image+text"


def test_data_thumbnails_on_request(client):
    result = client.predict(text="red running shoe", top_k=3, thumbnails="data", api_name="/search_text")
    check_matches(result, 3, thumbnail=("data:image/jpeg;base64,",))


def test_search_text_and_similar_to(client):
    found = check_matches(client.predict(text="red running shoe", top_k=5, api_name="/search_text"), 5)
    first = found[0]["id"]
    similar = client.predict(product_id=first, top_k=17, colors=["red", "blue"], api_name="/similar_to")
    # six products are red or blue; the one we started from is never among the results
    matches = check_matches(similar, 5 if {"red", "blue"} & set(found[0]["colors"]) else 6)
    assert first not in {m["id"] for m in matches}
    assert all({"red", "blue"} & set(m["colors"]) for m in matches)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": "   ", "api_name": "/search_text"}, "Type a description"),
        ({"api_name": "/search_image"}, "Give a photo"),
        ({"url": "http://127.0.0.1:1/shoe.png", "api_name": "/search_image"}, "private or local network"),
        ({"url": "ftp://example.com/a.png", "api_name": "/search_image"}, "Refused"),
        ({"product_id": "f" * 64, "api_name": "/similar_to"}, "no longer in the catalog"),
        ({"text": "bag", "top_k": 0, "api_name": "/search_text"}, "top_k"),
    ],
)
def test_mistakes_arrive_as_short_app_errors(client, kwargs, message):
    with pytest.raises(AppError, match=message) as caught:
        client.predict(**kwargs)
    assert "Traceback" not in str(caught.value)


def test_unreadable_upload_is_an_app_error_and_the_app_keeps_serving(client, tmp_path, photo):
    fake = tmp_path / "fake.jpg"
    fake.write_bytes(b"<html>not an image</html>")
    with pytest.raises(AppError, match="not a supported image"):
        client.predict(image=handle_file(str(fake)), api_name="/search_image")
    check_matches(client.predict(image=handle_file(photo), top_k=2, api_name="/search_image"), 2)


def test_steering_keywords(client, photo):
    plain = client.predict(image=handle_file(photo), top_k=6, api_name="/search_image")
    first = plain["matches"][0]["id"]
    steered = client.predict(image=handle_file(photo), top_k=6, disliked=[first[:12]], more=["leather bag"],
                             less=["red"], liked=[plain["matches"][3]["id"]], api_name="/search_image")  # fmt: skip
    assert first not in [m["id"] for m in steered["matches"]]
    assert steered["query"]["steering"]["disliked"] == [first] and steered["query"]["steering"]["less"] == ["red"]
    by_text = client.predict(text="bag", more=["brown"], sort="newest", within_best=1.5, api_name="/search_text")
    assert by_text["query"]["steering"] == {"more": ["brown"]} and by_text["matches"]
    similar = client.predict(product_id=first, collapse_duplicates=True, top_k=4, api_name="/similar_to")
    assert first not in [m["id"] for m in similar["matches"]]


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"disliked": ["no-such-product"]}, "No product has an id starting with 'no-such-product'"),
        ({"price_min": 30, "price_max": 5}, "The price range is reversed"),
        ({"sort": "cheapest"}, "Unknown sort 'cheapest'"),
    ],
)
def test_bad_steering_values_are_short_errors(client, keywords, message):
    with pytest.raises(AppError, match=message):
        client.predict(text="bag", **keywords, api_name="/search_text")
