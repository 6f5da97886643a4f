"""The app's handler functions, called directly (no server, no browser)."""

from __future__ import annotations

import functools
import http.server
import json
import re
import threading
from concurrent.futures import Future
from pathlib import Path

import gradio as gr
import numpy as np
import pytest

from similarity import images
from similarity.config import Settings
from similarity.ingest import IngestItem, Ingestor
from similarity.records import Product, ProductTags
from similarity.saved import SavedProducts
from similarity.search import SearchService
from similarity.store import open_store
from similarity.tagging import TagResult
from similarity.ui import format as fmt
from similarity.ui.catalog import CatalogHandlers
from similarity.ui.detail import DetailHandlers
from similarity.ui.files import UiFiles
from similarity.ui.handlers import GENERIC_ERROR, NO_PHOTO, NO_TAGGER, SearchHandlers, SearchSession

from .helpers import TINY_MODEL, image_bytes, make_image

# (category, brand, colour, rgb, tag): three generated products of each
CATALOG = [
    ("shoes", "stride", "red", (200, 30, 30), "running"),
    ("shoes", "peakrun", "blue", (30, 60, 200), "casual"),
    ("bags", "carryco", "brown", (120, 70, 30), "leather"),
    ("bags", "urbanpack", "black", (30, 30, 30), "travel"),
    ("watches", "tempo", "yellow", (230, 200, 40), "classic"),
    ("electronics", "voltix", "grey", (128, 128, 128), "smart"),
]
CAPTION = re.compile(r"^.+ · -?\d\.\d\d$")


def seed_catalog(store, embedder) -> int:
    """Generated products of several categories, through the same ingest path as data_seed."""
    items = []
    for n, (category, brand, color, rgb, tag) in enumerate(CATALOG):
        for shape in range(3):
            data = image_bytes(make_image(rgb, (96, 80), shape=shape + n))
            meta = {"name": f"{brand.title()} {color} {category} {shape}", "category": category, "brand": brand}
            meta.update(colors=[color], tags=[tag, "demo"])
            items.append(IngestItem(f"{category}-{n}-{shape}.png", lambda d=data: d, meta))
    return Ingestor(store, embedder).run(items).added


def tiny_settings(**overrides) -> Settings:
    return Settings(clip_model=TINY_MODEL, clip_pretrained="none", store_url="memory://", **overrides)


def seeded_service(embedder, **settings) -> SearchService:
    """A SearchService over a fresh memory:// catalog filled by ``seed_catalog``."""
    store = open_store("memory://")
    seed_catalog(store, embedder)
    return SearchService(store, embedder, None, tiny_settings(**settings))


class CountingEmbedder:
    """The real tiny embedder, counting how often it embeds (re-ranks must not embed)."""

    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def embed_images(self, pictures):
        self.calls += 1
        return self.inner.embed_images(pictures)

    def embed_texts(self, texts):
        self.calls += 1
        return self.inner.embed_texts(texts)


class FakeTagger:
    name = "fake"

    def __init__(self, tags: ProductTags) -> None:
        self.tags = tags

    def tag(self, image, *, key=None, vector=None) -> TagResult:
        return TagResult(self.tags, "fake", {"category": 0.91})


class BrokenEmbedder(CountingEmbedder):
    def embed_images(self, pictures):
        raise RuntimeError("secret-password-in-traceback")


@pytest.fixture(scope="module")
def catalog_store(tiny_embedder):
    store = open_store("memory://")
    assert seed_catalog(store, tiny_embedder) == 18
    return store


@pytest.fixture
def embedder(tiny_embedder) -> CountingEmbedder:
    return CountingEmbedder(tiny_embedder)


@pytest.fixture
def handlers(catalog_store, embedder, tmp_path) -> SearchHandlers:
    return SearchHandlers(SearchService(catalog_store, embedder, None, tiny_settings()), UiFiles(tmp_path))


@pytest.fixture
def photo(tmp_path) -> str:
    path = tmp_path / "query.png"
    make_image((200, 30, 30), (120, 100), shape=1).save(path)
    return str(path)


def search(handlers, image=None, text="", top_k=6, min_score=0.0, weight=0.5, groups=((), (), (), ())):
    return handlers.search(image, "", text, weight, top_k, min_score, *groups)


def rerank(handlers, session, top_k=6, min_score=0.0, weight=0.5, groups=((), (), (), ())):
    return handlers.rerank(weight, top_k, min_score, *groups, session)


def categories_of(handlers, session: SearchSession) -> set[str]:
    return {p.category for p in handlers.service.store.get(session.ids)}


def test_photo_search_fills_gallery_facets_timings_and_export(handlers, photo):
    out = search(handlers, photo)
    items = out.gallery
    assert len(items) == 6 and all(CAPTION.match(caption) for _, caption in items)
    assert all(Path(path).is_file() for path, _ in items)
    labels = [label for label, _ in out.categories["choices"]]
    assert labels and all(re.fullmatch(r"[a-z-]+ \(\d+\)", label) for label in labels)
    assert out.categories["value"] == [] and out.categories["visible"] is True
    assert "decode" in out.timings and "embed" in out.timings and "search" in out.timings
    assert out.session.query.image is None and out.session.query.vector.shape == (32,)
    assert out.tag_panel == NO_TAGGER
    assert "6 results for your photo" in out.source


def test_json_export_matches_the_gallery(handlers, photo):
    out = search(handlers, photo, groups=(["shoes"], (), (), ()))
    data = json.loads(Path(out.download).read_text())
    assert [m["id"] for m in data["matches"]] == out.session.ids
    scores = [m["score"] for m in data["matches"]]
    assert scores == sorted(scores, reverse=True)
    assert {m["category"] for m in data["matches"]} == {"shoes"}
    assert data["filters"]["categories"] == ["shoes"] and data["model"] == handlers.service.model_id
    assert "thumbnail" not in data["matches"][0]
    assert set(data["facets"]) == {"categories", "brands", "colors", "tags", "price"}


def test_filter_change_reranks_from_the_kept_vector(handlers, embedder, photo):
    session = search(handlers, photo).session
    calls = embedder.calls
    out = rerank(handlers, session, groups=(["bags"], (), (), ()))
    assert embedder.calls == calls  # no decoding or embedding again
    assert categories_of(handlers, out.session) == {"bags"} and len(out.session.ids) == 6
    assert out.categories["value"] == ["bags"]
    assert out.timings.startswith("search ") and out.timings.endswith("(re-ranked, no re-embedding)")
    assert out.tag_panel == gr.skip()


def test_sliders_rerank_top_k_and_min_score(handlers, photo):
    session = search(handlers, photo).session
    assert len(rerank(handlers, session, top_k=3).session.ids) == 3
    scores = [m["score"] for m in json.loads(Path(rerank(handlers, session, top_k=18).download).read_text())["matches"]]
    cut = sorted(scores)[len(scores) // 2]
    kept = json.loads(Path(rerank(handlers, session, top_k=18, min_score=cut).download).read_text())["matches"]
    assert kept and all(m["score"] >= cut for m in kept) and len(kept) < len(scores)


def test_ticks_that_are_still_valid_are_kept(handlers, photo):
    out = search(handlers, photo, groups=(["shoes"], ["stride"], (), ()))
    assert out.categories["value"] == ["shoes"] and out.brands["value"] == ["stride"]
    assert {p.brand for p in handlers.service.store.get(out.session.ids)} == {"stride"}


def test_ticks_gone_from_the_facets_are_dropped_and_results_follow(catalog_store, embedder, photo, tmp_path):
    # facets count only the best candidate here, so a brand other than the top shoe's drops out
    service = SearchService(catalog_store, embedder, None, tiny_settings(facet_candidates=1))
    handlers = SearchHandlers(service, UiFiles(tmp_path))
    top = search(handlers, photo, groups=(["shoes"], (), (), ())).session.ids[0]
    brand = service.store.get([top])[0].brand
    other = ({"stride", "peakrun"} - {brand}).pop()
    out = search(handlers, photo, groups=(["shoes"], [other], (), ()))
    assert out.categories["value"] == ["shoes"] and out.brands["value"] == []
    assert out.brands["choices"] == [(f"{brand} (1)", brand)]
    assert categories_of(handlers, out.session) == {"shoes"} and out.session.ids[0] == top
    assert len({p.brand for p in service.store.get(out.session.ids)}) == 2  # the brand filter is gone


def test_text_weight_change_recombines_without_embedding(handlers, embedder, photo):
    session = search(handlers, photo, text="red shoe", weight=0.2).session
    assert session.query.kind == "image+text"
    calls, before = embedder.calls, session.query.vector.copy()
    out = rerank(handlers, session, weight=0.9)
    assert embedder.calls == calls
    assert not np.allclose(out.session.query.vector, before)
    assert np.isclose(np.linalg.norm(out.session.query.vector), 1.0, atol=1e-5)


def test_more_like_this_starts_from_the_selected_product(handlers, photo, tmp_path):
    # a click opens the result's detail view; its More like this button searches from that product
    detail = DetailHandlers(SavedProducts(handlers.service.store), UiFiles(tmp_path))
    session = search(handlers, photo).session
    picked = session.ids[1]
    opened = detail.open(gr.SelectData(None, {"index": 1, "value": None}), session, [], None, None)
    assert opened.selected == picked and opened.panel["visible"] is True
    out = handlers.similar(opened.selected, 6, 0.0, (), (), (), (), session)
    assert out.session.source.id == picked and picked not in out.session.ids
    assert len(out.session.ids) == 6
    assert fmt.product_title(out.session.source).split(" — ")[0] in out.source and "from the catalog" in out.source
    with pytest.raises(gr.Error, match="no longer shown"):
        detail.open(gr.SelectData(None, {"index": 99, "value": None}), session, [], None, None)


def test_text_search_and_user_errors(handlers):
    out = search(handlers, text="red running shoe")
    assert len(out.session.ids) == 6 and out.tag_panel == NO_PHOTO and "your description" in out.source
    with pytest.raises(gr.Error, match="Give a photo"):
        search(handlers)
    with pytest.raises(gr.Error, match="top_k"):
        search(handlers, text="bag", top_k=0)


def test_unreadable_image_and_unexpected_failures_give_short_messages(catalog_store, tiny_embedder, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is not an image")
    service = SearchService(catalog_store, BrokenEmbedder(tiny_embedder), None, tiny_settings())
    handlers = SearchHandlers(service, UiFiles(tmp_path))
    with pytest.raises(gr.Error, match="not a supported image"):
        search(handlers, str(bad))
    good = tmp_path / "good.png"
    make_image().save(good)
    with pytest.raises(gr.Error) as caught:
        search(handlers, str(good))
    assert caught.value.message == GENERIC_ERROR and "secret" not in str(caught.value)


def test_empty_catalog_is_a_short_error(embedder, tmp_path):
    service = SearchService(open_store("memory://"), embedder, None, tiny_settings())
    handlers = SearchHandlers(service, UiFiles(tmp_path))
    with pytest.raises(gr.Error, match="catalog is empty"):
        search(handlers, text="shoe")


def test_nothing_to_do_skips_instead_of_failing(handlers):
    assert all(v == gr.skip() for v in handlers.auto_search(None, "", "", 0.5, 6, 0, (), (), (), (), None))
    assert all(v == gr.skip() for v in rerank(handlers, None))
    assert handlers.show_tags(None) == (gr.skip(), gr.skip())


def test_tags_panel_fills_in_after_results(catalog_store, embedder, photo, tmp_path):
    tags = ProductTags(name="Red <b>runner</b> *sale*", category="shoes", colors=["red"], tags=["running"])
    service = SearchService(catalog_store, embedder, FakeTagger(tags), tiny_settings())
    handlers = SearchHandlers(service, UiFiles(tmp_path))
    out = search(handlers, photo)
    assert out.tag_panel.startswith("Looking at") and out.session.tag_job is not None
    panel, timings = handlers.show_tags(out.session)
    assert r"shoes \(0\.91\)" in panel and "running" in panel and "by fake" in panel
    assert "<b>" not in panel and r"\*sale\*" in panel  # tagger output is escaped
    assert "tag " in timings and "embed" in timings
    assert handlers.show_tags(out.session) == (gr.skip(), gr.skip())  # shown once per search


def test_filter_by_detected_category_ticks_it_and_reranks(catalog_store, embedder, photo, tmp_path):
    tags = ProductTags(name="Runner", category="watches", colors=["yellow"])
    handlers = SearchHandlers(
        SearchService(catalog_store, embedder, FakeTagger(tags), tiny_settings()), UiFiles(tmp_path)
    )
    out = search(handlers, photo)
    handlers.show_tags(out.session)  # waits for the tagger
    calls = embedder.calls
    on = handlers.apply_detected(True, 12, 0, [], [], [], [], out.session)
    assert on.categories["value"] == ["watches"] and len(on.gallery) == 3
    assert embedder.calls == calls  # re-ranked from the kept vector
    off = handlers.apply_detected(False, 12, 0, ["watches"], [], [], [], out.session)
    assert off.categories["value"] == [] and len(off.gallery) == 12
    untagged = search(handlers, photo)
    untagged.session.tag_job = None
    assert handlers.apply_detected(True, 12, 0, [], [], [], [], untagged.session).gallery == gr.skip()


def test_show_tags_reports_failures_plainly():
    failed: Future = Future()
    failed.set_result(TagResult.failed("Gemini is rate limited."))
    session = SearchSession(query=None, tag_job=failed, timings={"embed": 5.0})  # type: ignore[arg-type]
    panel, timings = SearchHandlers(None, None).show_tags(session)  # type: ignore[arg-type]
    assert panel.startswith("Could not describe the photo: Gemini is rate limited")
    assert timings.startswith("embed 5.0 ms")


def test_format_helpers_escape_and_label():
    product = Product(id="x" * 64, name="Tote [x](javascript:alert)", brand="acme", thumbnail=None)
    assert fmt.caption(product, 0.8349) == "Tote [x](javascript:alert) — acme · 0.83"
    assert "[" not in fmt.md("[x](y)").replace("\\[", "").replace("\\]", "")
    assert "<script>" not in fmt.source_html("text", "<script>alert(1)</script>", count=2)
    choices, keep = fmt.facet_choices({"nike": 4, "puma": 2}, ["puma", "gone"], limit=1)
    assert choices == [("nike (4)", "nike"), ("puma (2)", "puma")] and keep == ["puma"]
    assert fmt.timings_line({"embed": 41.2, "search": 1.234}, 812.0) == "embed 41 ms · search 1.2 ms · tag 812 ms"


# -- catalog tab ---------------------------------------------------------------------------------
@pytest.fixture
def catalog(catalog_store, tiny_embedder, tmp_path) -> CatalogHandlers:
    service = SearchService(catalog_store, tiny_embedder, None, tiny_settings())
    return CatalogHandlers(service, UiFiles(tmp_path), page_size=5)


def test_catalog_pages_with_filters_and_counts(catalog):
    first = catalog.first_page((), (), (), ())
    assert len(first.gallery) == 5 and first.page == 1 and "Page 1 of 4 · 18 products" in first.page_info
    assert ("shoes (6)", "shoes") in first.categories["choices"]
    last = catalog.next_page((), (), (), (), 4)  # past the end: stays on the last page
    assert last.page == 4 and len(last.gallery) == 3
    shoes = catalog.first_page(["shoes"], (), (), ())
    assert "6 products" in shoes.page_info and shoes.categories["value"] == ["shoes"]
    assert {v for _, v in shoes.brands["choices"]} == {"stride", "peakrun"}
    assert catalog.previous_page(["shoes"], (), (), (), 1).page == 1
    assert "Products:** 18" in catalog.store_info() and "shoes 6" in catalog.store_info()


def test_empty_catalog_browses_without_error(tiny_embedder, tmp_path):
    service = SearchService(open_store("memory://"), tiny_embedder, None, tiny_settings())
    out = CatalogHandlers(service, UiFiles(tmp_path)).first_page((), (), (), ())
    assert out.gallery == [] and "empty" in out.page_info


def test_adding_products_is_refused_without_a_configured_token(catalog, photo):
    assert not catalog.writable
    with pytest.raises(gr.Error, match="read-only"):
        catalog.add_products([photo], "", "", "", None, "anything")


def test_adding_products_needs_the_right_token_and_reports_each_file(tiny_embedder, photo, tmp_path):
    store = open_store("memory://")
    service = SearchService(store, tiny_embedder, None, tiny_settings(admin_token="s3cret-token"))
    catalog = CatalogHandlers(service, UiFiles(tmp_path / "ui"))
    assert catalog.writable
    with pytest.raises(gr.Error, match="Wrong admin token"):
        catalog.add_products([photo], "", "", "", None, "s3cret-tokeN")
    assert store.count() == 0
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really")
    copy = tmp_path / "same-photo.png"
    copy.write_bytes(Path(photo).read_bytes())
    rows, summary = catalog.add_products([photo, copy, bad], "", "Acme", "shoes", 12.5, "s3cret-token")
    assert summary == "Added 1, duplicates 1, failed 1."
    results = {row[0]: row[1:] for row in rows}
    assert results["query.png"] == ["added", ""] and results["same-photo.png"] == ["duplicate", ""]
    assert results["broken.jpg"][0] == "failed" and results["broken.jpg"][1]
    (product,) = store.get(store.load_vectors().ids)
    assert (product.name, product.brand, product.category, product.price) == ("Query", "acme", "shoes", 12.5)
    with pytest.raises(gr.Error, match="Choose one or more"):
        catalog.add_products([], "", "", "", None, "s3cret-token")


def test_url_search_goes_through_the_guard(handlers, photo):
    with pytest.raises(gr.Error, match="private or local network"):
        handlers.search(None, "http://10.1.2.3/shoe.png", "", 0.5, 6, 0, (), (), (), ())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(Path(photo).parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"127.0.0.1:{server.server_address[1]}"
    try:
        handlers.service.url_guard = images.UrlGuard(timeout=5, allow_hosts=frozenset({host}))  # this test's server
        out = handlers.search(None, f"http://{host}/query.png", "", 0.5, 6, 0, (), (), (), ())
    finally:
        server.shutdown()
        server.server_close()
    assert len(out.gallery) == 6 and "download" in out.timings and "results for your photo" in out.source


def test_loading_status_line_and_background_warm_up(tmp_path):
    from app import warm_up
    from similarity.embedder import OpenClipEmbedder

    assert "Loading the image model" in fmt.loading_status(False, None, "loading")
    assert "Loading the catalog index" in fmt.loading_status(True, None, "loading")
    assert "searches are exact" in fmt.loading_status(True, None, "building")
    assert fmt.loading_status(True, None) == fmt.loading_status(True, None, "unavailable") == ""
    assert "&lt;b&gt;" in fmt.loading_status(False, "<b>no weights</b>")
    broken = SearchService(open_store("memory://"), OpenClipEmbedder("tiny-test", str(tmp_path / "missing.pt")))
    assert broken.ranker.status == "loading"
    for job in warm_up(broken):  # logs, never raises: the page and each search show the kept error
        job.join(timeout=60)
    assert broken.embedder.load_error is not None and not broken.embedder.loaded
    assert broken.ranker.status == "ready"  # the (empty) catalog index loaded all the same
