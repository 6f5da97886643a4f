"""/catalog_map and the "map" field of search results, through gradio_client like any script."""

from __future__ import annotations

import math

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

import app
from similarity.map import CatalogMap, PcaFitter
from similarity.search import SearchService
from similarity.store import open_store
from similarity.ui import launch_options

from .test_app_handlers import seed_catalog, tiny_settings


@pytest.fixture(scope="module")
def client(tiny_embedder):
    store = open_store("memory://")
    seed_catalog(store, tiny_embedder)
    catalog_map = CatalogMap(store, fitter=PcaFitter())
    catalog_map.start()  # as the app's warm-up does: no test relies on another having asked for the map first
    service = SearchService(store, tiny_embedder, None, tiny_settings(), catalog_map=catalog_map)
    demo = app.build_demo(service)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **launch_options())
    try:
        yield Client(url, verbose=False), store.count()
    finally:
        demo.close()


def test_catalog_map_returns_every_product_with_coordinates(client):
    api, count = client
    result = api.predict(api_name="/catalog_map")
    assert result["method"] == "pca" and result["total"] == count == len(result["points"])
    assert result["catalog_version"] and result["status"] == "ready"
    for point in result["points"]:
        assert {"id", "x", "y", "category", "brand", "name"} <= set(point)
        assert math.isfinite(point["x"]) and math.isfinite(point["y"])
    assert len({p["id"] for p in result["points"]}) == count


def test_catalog_map_pages_with_limit_and_offset(client):
    api, count = client
    everything = api.predict(api_name="/catalog_map")["points"]
    page = api.predict(limit=4, offset=3, api_name="/catalog_map")
    assert page["points"] == everything[3:7] and page["total"] == count
    assert api.predict(limit=10, offset=count, api_name="/catalog_map")["points"] == []
    with pytest.raises(AppError, match="limit must be a whole number"):
        api.predict(limit=-1, api_name="/catalog_map")


def test_search_results_carry_the_query_position(client):
    api, _ = client
    result = api.predict(text="red bag", top_k=5, api_name="/search_text")
    assert set(result["map"]) == {"x", "y"} and all(math.isfinite(v) and -1 <= v <= 1 for v in result["map"].values())
    nearest = api.predict(product_id=result["matches"][0]["id"], top_k=3, api_name="/similar_to")
    points = {p["id"]: p for p in api.predict(api_name="/catalog_map")["points"]}
    own = points[result["matches"][0]["id"]]
    assert nearest["map"] == pytest.approx({"x": own["x"], "y": own["y"]}, abs=1e-4)  # a product sits on its point
