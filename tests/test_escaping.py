"""Hostile product text (``<img src=x onerror=alert(1)>``) is stripped on the way in and escaped on the way out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from similarity.records import Product, ProductTags
from similarity.search import SearchService
from similarity.store import open_store
from similarity.tagging import TagResult
from similarity.ui import format as fmt
from similarity.ui.api import SearchApi
from similarity.ui.catalog import CatalogHandlers
from similarity.ui.files import UiFiles
from similarity.ui.handlers import SearchHandlers

from .helpers import make_image
from .test_app_handlers import seed_catalog, seeded_service, tiny_settings

XSS = "<img src=x onerror=alert(1)>"
NO_FILTERS = ([], [], [], [])


def captions(gallery: object) -> list[str]:
    items = gallery["value"] if isinstance(gallery, dict) else gallery
    return [caption for _, caption in items]


def test_markup_typed_into_the_catalog_tab_is_stripped_everywhere_it_shows(tiny_embedder, tmp_path):
    service = seeded_service(tiny_embedder, admin_token="tok")
    store = service.store
    files = UiFiles(tmp_path / "ui")
    catalog = CatalogHandlers(service, files)
    photo = tmp_path / "hostile.png"
    make_image((250, 0, 250), (90, 90), shape=3).save(photo)
    catalog.add_products([str(photo)], f"Bag {XSS}", f"<b onmouseover=x>Acme</b>{XSS}", "bags", None, "tok")
    (added,) = [p for p in store.get(store.load_vectors().ids) if p.source == "upload"]
    assert (added.name, added.brand) == ("Bag", "acme")

    shown = captions(catalog.first_page(["bags"], [], [], []).gallery)  # catalog tab
    out = SearchHandlers(service, files).search(str(photo), None, None, 0.5, 5, 0, *NO_FILTERS)  # search tab
    shown += captions(out.gallery)
    assert "Bag — acme · 1.00" in shown
    export = Path(out.download).read_text(encoding="utf-8")
    api = json.dumps(SearchApi(service).search_image(image=str(photo), top_k=3))
    for text in [*shown, out.source, export, api, catalog.store_info()]:
        assert "<img" not in text and "onerror" not in text and "<b " not in text


def test_markup_already_in_a_store_is_escaped_in_html_and_markdown(tiny_embedder, tmp_path):
    """A catalog written by another tool may hold raw markup: every HTML/Markdown output escapes it."""
    store = open_store("memory://")
    seed_catalog(store, tiny_embedder)
    raw = Product(id="f" * 64, name=XSS, brand=XSS, category="bags", tags=(XSS,), thumbnail=None,
                  embedding=np.ones(32, np.float32) / np.sqrt(32), embedding_model=tiny_embedder.model_id)  # fmt: skip
    store.upsert([raw])
    service = SearchService(store, tiny_embedder, None, tiny_settings())
    handlers = SearchHandlers(service, UiFiles(tmp_path / "ui"))
    out = handlers.similar(raw.id, 5, 0, *NO_FILTERS)
    assert "&lt;img src=x onerror=alert(1)&gt;" in out.source and "<img src=x" not in out.source
    # gallery captions are plain text; Gradio's Gallery escapes them (escape_html) when it renders
    assert all(isinstance(c, str) for c in captions(out.gallery))
    tags = ProductTags.model_construct(name=XSS, category="bags", subcategory="", colors=[], brand=XSS,
                                       tags=[XSS], target_audience=None, description=XSS)  # fmt: skip
    panel = fmt.tags_markdown(TagResult(tags, "gemini"))
    assert "<img" not in panel and "&lt;img" in panel
    info = fmt.store_markdown({"url": XSS, "categories": {XSS: 1}, "model": XSS})
    assert "<img" not in info


def test_notes_are_stripped_when_saved_and_escaped_wherever_they_show(tiny_embedder, tmp_path):
    from similarity.accounts import Accounts
    from similarity.saved import SavedProducts, export_csv
    from similarity.ui.detail import detail_html
    from similarity.ui.saved import SavedHandlers, entry_html

    service = seeded_service(tiny_embedder)
    store = service.store
    saved = SavedProducts(store)
    first, second = store.load_vectors().ids[:2]
    saved.save("local:ann", first, f"gift {XSS}")  # through the app: markup stripped
    assert saved.entries("local:ann")[0].record.note == "gift"
    store.save_product("local:ann", second, XSS)  # written by another tool: raw markup in the store
    raw = Product(id="e" * 64, name=XSS, brand=XSS, category="bags", colors=("red",), tags=(XSS,),
                  embedding=np.ones(32, np.float32) / np.sqrt(32), embedding_model=tiny_embedder.model_id)  # fmt: skip
    store.upsert([raw])
    store.save_product("local:ann", raw.id, XSS)

    class Request:
        username = "ann"

    tab = SavedHandlers(service, saved, UiFiles(tmp_path), Accounts())
    view = tab.refresh([], None, Request())
    entries = saved.entries("local:ann")
    html_out = [entry_html(e) for e in entries] + [detail_html(raw, 0.5), view.who]
    for text in html_out:
        assert "<img" not in text and "onerror=alert(1)>" not in text
    assert any("&lt;img src=x onerror=alert(1)&gt;" in text for text in html_out)  # shown, as text
    assert XSS in captions(view.gallery)[0]  # gallery captions are plain text, escaped by Gradio itself
    data = json.loads(Path(view.json["value"]).read_text())
    assert data["products"][0]["note"] == XSS  # JSON carries the value as data, never as markup
    third = store.load_vectors().ids[2]
    store.save_product("local:ann", third, '=HYPERLINK("http://x")')  # a spreadsheet formula
    exported = export_csv(saved.entries("local:ann"))
    assert "'=HYPERLINK" in exported and ",=HYPERLINK" not in exported  # quoted: shown as text, never run
