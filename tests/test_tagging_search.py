"""Tagging beside search and ingest: never delays or breaks a search; fallbacks; the ingest enricher."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest

from similarity.config import Settings
from similarity.errors import ConfigError, TaggingError
from similarity.ingest import IngestItem, Ingestor
from similarity.records import ProductTags
from similarity.search import SearchService
from similarity.store.local import LocalStore
from similarity.tagging import FallbackTagger, TagResult, make_enricher, make_tagger
from similarity.tagging.clip import ClipTagger
from similarity.tagging.gemini import GeminiTagger

from .gemini_stub import GeminiStub, Reply
from .helpers import image_bytes, make_image

KEY = "AIzaFAKE-search-key-0042"
COLORS = [(200, 30, 30), (40, 90, 200), (40, 150, 60), (240, 220, 40)]


def seeded_store(embedder: object) -> LocalStore:
    store = LocalStore(":memory:")
    items = [
        IngestItem(
            f"p{i}.png", lambda i=i, c=c: image_bytes(make_image(c, shape=i)), {"name": f"P{i}", "category": "bags"}
        )
        for i, c in enumerate(COLORS)
    ]
    report = Ingestor(store, embedder, batch_size=8).run(items)
    assert report.added == len(COLORS)
    return store


def gemini_service(embedder: object, stub: GeminiStub) -> SearchService:
    gemini = GeminiTagger(KEY, "stub-model", base_url=stub.url, initial_delay_s=0.05, max_delay_s=0.1)
    tagger = FallbackTagger(gemini, ClipTagger(embedder))
    return SearchService(seeded_store(embedder), embedder, tagger)


def test_search_returns_before_a_slow_tagger_and_tags_arrive_later(tiny_embedder: object) -> None:
    with GeminiStub([Reply.tags(delay_s=2.0, category="bags", colors=["red"], name="Red bag")]) as stub:
        service = gemini_service(tiny_embedder, stub)
        picture = make_image(COLORS[0], size=(90, 90))
        service.search(picture, top_k=2)  # warm-up: the first search pays one-off costs
        start = time.monotonic()
        future = service.describe_async(picture)
        result = service.search(picture, top_k=3)
        elapsed = time.monotonic() - start
        assert elapsed < 1.5 and not future.done()  # the results did not wait for the 2 s tagger
        assert len(result.matches) == 3
        tags = future.result(timeout=15)
    assert isinstance(tags, TagResult) and tags.tagger == "gemini" and not tags.error
    assert tags.tags.category == "bags" and tags.tags.colors == ["red"]
    assert tags.detected_category == "bags" and tags.label == "Gemini"
    assert service.info()["tagger"] == "gemini+clip"


def test_broken_gemini_falls_back_to_clip_and_search_still_works(tiny_embedder: object) -> None:
    with GeminiStub([Reply.error(500)]) as stub:
        service = gemini_service(tiny_embedder, stub)
        picture = make_image(COLORS[1], size=(90, 90))
        future = service.describe_async(image_bytes(picture))  # bytes are decoded in the worker
        assert len(service.search(picture, top_k=2).matches) == 2
        tags = future.result(timeout=30)
    assert tags.tagger == "clip" and tags.ok
    assert "Gemini is unavailable" in tags.error and tags.label.startswith("CLIP (offline) — Gemini")
    assert tags.tags.colors == ["blue"]
    assert KEY not in str(tags.to_dict())


def test_describe_never_raises(tiny_embedder: object) -> None:
    with GeminiStub([Reply.tags(delay_s=5.0, category="bags")]) as stub:
        gemini = GeminiTagger(KEY, "stub-model", base_url=stub.url, timeout_s=2, attempts=1)
        service = SearchService(seeded_store(tiny_embedder), tiny_embedder, gemini)
        late = service.describe(make_image(), timeout=0.2)
        assert late is not None and late.tagger == "none" and "longer" in late.error
        bad = service.describe(b"definitely not an image")
    assert bad is not None and bad.tagger == "none" and not bad.ok and bad.error
    assert bad.detected_category is None


def test_describe_for_text_product_and_untagged_services(tiny_embedder: object) -> None:
    store = seeded_store(tiny_embedder)
    service = SearchService(store, tiny_embedder, ClipTagger(tiny_embedder))
    assert service.describe_async(service.encode(text="a red bag")) is None  # nothing to look at
    [product] = service.browse(page_size=1).products
    stored = service.describe(service.product_query(product.id), timeout=10)
    assert stored.tagger == "catalog" and stored.tags.name == product.name
    image_query = service.encode(make_image(COLORS[2]))
    assert service.describe(image_query, timeout=30).tagger == "clip"
    assert SearchService(store, tiny_embedder, None).describe_async(make_image()) is None
    assert SearchService(store, tiny_embedder, None).info()["tagger"] == "off"


def test_make_tagger_follows_the_setting(tiny_embedder: object) -> None:
    assert make_tagger(Settings(tagger="off", gemini_api_key=KEY), tiny_embedder) is None
    assert isinstance(make_tagger(Settings(tagger="clip", gemini_api_key=KEY), tiny_embedder), ClipTagger)
    assert isinstance(make_tagger(Settings(tagger="auto"), tiny_embedder), ClipTagger)
    auto = make_tagger(Settings(tagger="auto", gemini_api_key=KEY, gemini_model="m-lite"), tiny_embedder)
    assert isinstance(auto, FallbackTagger) and auto.name == "gemini+clip"
    assert auto.primary.model == "m-lite" and KEY not in repr(auto.primary)
    assert isinstance(make_tagger(Settings(tagger="gemini", gemini_api_key=KEY), tiny_embedder), GeminiTagger)
    with pytest.raises(ConfigError, match="GEMINI_API_KEY"):
        make_tagger(Settings(tagger="gemini"), tiny_embedder)


class ScriptedTagger:
    """A fake Tagger: fixed tags, fails for chosen product ids, records concurrency.

    The first two calls meet at a barrier, which proves they run at the same time."""

    name = "scripted"

    def __init__(self, fail: set[str]) -> None:
        self.fail = fail
        self.active = self.peak = self.calls = 0
        self._lock = threading.Lock()
        self._meet = threading.Barrier(2, timeout=10)

    def tag(self, image: object, *, key: str | None = None, vector: object = None) -> TagResult:
        with self._lock:
            self.active += 1
            self.calls += 1
            first_two = self.calls <= 2
            self.peak = max(self.peak, self.active)
        try:
            if first_two:
                self._meet.wait()
            time.sleep(0.01)  # simulated latency, so a third concurrent call would show in ``peak``
            if key in self.fail:
                raise TaggingError("Gemini timed out.")
            tags = ProductTags(name="Tagged", category="shoes", colors=["red"], tags=["leather"], brand="acme")
            return TagResult(tags, self.name)
        finally:
            with self._lock:
                self.active -= 1


def test_enricher_fills_only_missing_fields_and_records_failures(tiny_embedder: object) -> None:
    store = LocalStore(":memory:")
    pictures = [image_bytes(make_image(COLORS[i % 4], shape=i)) for i in range(6)]
    meta = [{"name": "Known name", "category": "bags"}] + [{}] * 5
    failing = hashlib.sha256(pictures[1]).hexdigest()
    tagger = ScriptedTagger({failing})
    enrich = make_enricher(tagger, concurrency=2)
    items = [IngestItem(f"i{i}.png", lambda d=d: d, m) for i, (d, m) in enumerate(zip(pictures, meta, strict=True))]
    report = Ingestor(store, tiny_embedder, batch_size=6, enrich=enrich).run(items)
    assert report.added == 6  # the failed one is stored too
    assert enrich.failures == [(failing, "Gemini timed out.")] and enrich.tagged == 5
    assert tagger.peak == 2 and tagger.calls == 6  # two at a time, never more
    products = {p.id: p for p in store.get([hashlib.sha256(d).hexdigest() for d in pictures])}
    first = products[hashlib.sha256(pictures[0]).hexdigest()]
    assert (first.name, first.category, first.colors, first.brand) == ("Known name", "bags", ("red",), "acme")
    failed = products[failing]
    assert (failed.name, failed.category, failed.colors) == ("", "other", ())
    assert "failed 1" in enrich.summary()


def test_data_seed_fills_missing_fields_lists_failures_and_retags(tmp_path, monkeypatch, capsys) -> None:
    from data_seed.cli import main

    from .helpers import TINY_ENV

    for i, color in enumerate(COLORS):
        (tmp_path / "photos").mkdir(exist_ok=True)
        (tmp_path / "photos" / f"item{i}.png").write_bytes(image_bytes(make_image(color, shape=i)))
    store_url = f"sqlite:///{tmp_path / 'catalog.db'}"
    replies = [Reply.error(400, "bad image"), Reply.tags(category="shoes", colors=["red"], tags=["Leather"])]
    with GeminiStub(replies) as stub:
        for name, value in {**TINY_ENV, "GEMINI_API_KEY": KEY, "GEMINI_BASE_URL": stub.url}.items():
            monkeypatch.setenv(name, value)
        args = ["--source", f"folder:{tmp_path / 'photos'}", "--store", store_url, "--no-progress"]
        assert main([*args, "--tagger", "gemini"]) == 0
        seeded = capsys.readouterr()
        assert stub.calls == len(COLORS)  # one call per product, the failed one included
        stub.replies = [Reply.tags(category="watches", name="Watch")]
        assert main(["--retag", "--tagger", "gemini", "--store", store_url, "--no-progress"]) == 0
        retagged = capsys.readouterr()
    assert "added 4" in seeded.out and "tagged 3, tagging failed 1" in seeded.out
    assert seeded.err.count("tagging failed:") == 1 and KEY not in seeded.err + seeded.out
    assert f"re-tagged {len(COLORS)} products with gemini" in retagged.out
    store = LocalStore(str(tmp_path / "catalog.db"))
    products = [p for batch in store.iter_products(vectors=False) for p in batch]
    assert len(products) == 4 and {p.category for p in products} == {"watches"}
    assert {p.name for p in products} == {"Watch"}


def test_close_cancels_pending_tagging_and_closes_the_store(tiny_embedder: object) -> None:
    with GeminiStub([Reply.tags(delay_s=1.0, category="bags")] * 2) as stub:
        gemini = GeminiTagger(KEY, "stub-model", base_url=stub.url, initial_delay_s=0.05, max_delay_s=0.1)
        store = seeded_store(tiny_embedder)
        service = SearchService(store, tiny_embedder, gemini, Settings(gemini_concurrency=1))
        running = service.describe_async(make_image(COLORS[0], size=(90, 90)))
        waiting = service.describe_async(make_image(COLORS[1], size=(90, 90)))  # queued behind the first
        service.close()
        assert waiting.cancelled()
        assert running.result(timeout=15).tagger == "gemini"  # work already started finishes
    with pytest.raises(Exception, match="closed"):
        store.count()
