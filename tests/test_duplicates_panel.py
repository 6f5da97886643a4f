"""Catalog tab "Duplicates" handlers, called directly: the scan, the groups, keep/remove with its count
confirmation, "not a duplicate" (remembered) and the admin token."""

from __future__ import annotations

import gradio as gr
import pytest

from similarity.config import Settings
from similarity.duplicates import DuplicateScan
from similarity.ingest import IngestItem, Ingestor
from similarity.ratelimit import RateLimiter
from similarity.search import SearchService
from similarity.store import open_store
from similarity.ui.catalog import CatalogHandlers
from similarity.ui.duplicates import DuplicateHandlers
from similarity.ui.files import UiFiles

from .dup_photos import encoded, product_photo, reupload
from .helpers import TINY_MODEL

TOKEN = "s3cret-token"


class Request:
    def __init__(self, host: str = "203.0.113.9") -> None:
        self.client = type("Client", (), {"host": host})()


def _item(key, image):
    data = encoded(image)
    return IngestItem(key, lambda: data, {"name": key, "category": "shoes"})


def make_panel(tmp_path, embedder, token=TOKEN, limiter=None) -> tuple[DuplicateHandlers, dict[str, str]]:
    store = open_store(f"sqlite:///{tmp_path / 'catalog.db'}")
    first, second = product_photo(1, 0), product_photo(2, 0)
    items = [_item("a", first), _item("a-resized", reupload(first, "resized", 1))]
    items += [_item("a-marked", reupload(first, "watermark", 2)), _item("b", second)]
    items += [_item("b-crop", reupload(second, "crop95", 3)), _item("c", product_photo(3, 0))]
    report = Ingestor(store, embedder).run(items)
    keys = {o.key: o.id for o in report.outcomes}
    settings = Settings(clip_model=TINY_MODEL, clip_pretrained="none", store_url="memory://", admin_token=token)
    service = SearchService(store, embedder, None, settings)
    catalog = CatalogHandlers(service, UiFiles(tmp_path / "ui"), limiter=limiter or RateLimiter(1000, 60))
    return DuplicateHandlers(catalog), keys


def scanned(panel: DuplicateHandlers, threshold: float = 0.5):
    panel.start(threshold, Request())
    panel.scan.join(60)
    return panel.poll()


@pytest.fixture
def panel(tmp_path, tiny_embedder):
    return make_panel(tmp_path, tiny_embedder)


def near_groups(panel):
    return [g for g in panel.scan.report.groups if g.kind == "near-identical"]


def test_scan_lists_groups_largest_first_with_both_figures(panel):
    handlers, keys = panel
    result = scanned(handlers)
    assert "near-identical groups" in result.status
    assert result.listed[0] == sorted([keys["a"], keys["a-resized"], keys["a-marked"]])
    assert sorted(result.listed[1]) == sorted([keys["b"], keys["b-crop"]])
    first_label = result.overview[0][1]
    assert first_label.startswith("#1 near-identical · 3 products · cosine ") and "pixel 0." in first_label
    assert result.overview[0][0].endswith(".jpg")  # the group's thumbnails side by side in one picture


def test_keep_one_remove_the_others_needs_the_token_and_the_confirmed_count(panel):
    handlers, keys = panel
    listed = scanned(handlers).listed
    chosen = handlers.choose(listed, gr.SelectData(None, {"index": 0, "value": None}))
    assert len(chosen.gallery) == 3 and chosen.ids == listed[0]
    keep = keys["a-resized"]
    confirm, question, expected = handlers.ask_remove(chosen.ids, keep)
    assert expected == 2 and "**2**" in question and confirm["visible"] is True
    with pytest.raises(gr.Error, match="Wrong admin token"):
        handlers.remove_others(chosen.ids, keep, expected, "guess", Request())
    with pytest.raises(gr.Error, match="not the 1 you confirmed"):
        handlers.remove_others(chosen.ids, keep, 1, TOKEN, Request())
    assert handlers.store.count() == 6  # nothing removed so far
    out = handlers.remove_others(chosen.ids, keep, expected, TOKEN, Request())
    assert out[1].startswith("Removed 2 products.")
    assert handlers.store.existing(list(keys.values())) == {keep, keys["b"], keys["b-crop"], keys["c"]}
    assert all(keep not in ids or len(ids) > 1 for ids in out[3])  # the kept one's group is gone
    assert next(sorted(ids) for ids in out[3]) == sorted([keys["b"], keys["b-crop"]])


def test_not_a_duplicate_is_remembered_across_scans(panel, tmp_path):
    handlers, keys = panel
    listed = scanned(handlers).listed
    pair = sorted([keys["b"], keys["b-crop"]])
    index = [sorted(ids) for ids in listed].index(pair)
    chosen = handlers.choose(listed, gr.SelectData(None, {"index": index, "value": None}))
    with pytest.raises(gr.Error, match="Wrong admin token"):
        handlers.not_duplicate(chosen.ids, "", Request())
    out = handlers.not_duplicate(chosen.ids, TOKEN, Request())
    assert out[0].startswith("Marked 2 products") and pair not in [sorted(ids) for ids in out[2]]
    fresh = DuplicateScan(handlers.store).run_now(0.5)  # a new scan (another process) leaves it out too
    assert pair not in [sorted(g.ids) for g in fresh.groups]


def test_a_read_only_catalog_refuses_writes(tmp_path, tiny_embedder):
    handlers, keys = make_panel(tmp_path, tiny_embedder, token=None)
    ids = [keys["a"], keys["a-resized"]]
    with pytest.raises(gr.Error, match="read-only"):
        handlers.remove_others(ids, ids[0], 1, "anything", Request())
    with pytest.raises(gr.Error, match="read-only"):
        handlers.not_duplicate(ids, "anything", Request())


def test_bad_input_gives_short_messages(panel):
    handlers, _ = panel
    with pytest.raises(gr.Error, match=r"between 0\.5 and 1"):
        handlers.start(3, Request())
    chosen = handlers.choose([], gr.SelectData(None, {"index": 4, "value": None}))
    assert "no longer listed" in chosen.status
    confirm, _question, expected = handlers.ask_remove([], None)
    assert expected == 0 and confirm["visible"] is False
    with pytest.raises(gr.Error, match="Choose a group"):
        handlers.not_duplicate([], TOKEN, Request())


def test_scans_are_rate_limited(tmp_path, tiny_embedder):
    handlers, _ = make_panel(tmp_path, tiny_embedder, limiter=RateLimiter(1, 60))
    scanned(handlers)
    with pytest.raises(gr.Error):
        handlers.start(0.9, Request())
