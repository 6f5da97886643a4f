"""The Gradio Blocks layout: components and event wiring (the logic lives in the handler modules)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import gradio as gr

from ..accounts import Accounts
from ..device import device_label
from ..records import CATEGORIES, COLORS
from ..regions.search import RegionSearch
from ..saved import SavedProducts
from ..search import DEFAULT_TOP_K, SearchService
from . import format as fmt
from . import steer
from .api import SearchApi, steering_inputs, string_list_info
from .catalog import READ_ONLY, WRITABLE, CatalogHandlers
from .catalog_edit import EditHandlers, build_edit_panel
from .detail import DetailHandlers
from .duplicates import DuplicateHandlers, build_duplicates_panel
from .explain import ExplainHandlers, build_explain_panel
from .files import UiFiles
from .handlers import SearchHandlers
from .map import MapHandlers, build_map_tab
from .map_select import SelectionHandlers, build_selection_panel
from .regions_api import RegionsApi, wire_regions_api
from .saved import SavedHandlers, browser_state, build_saved_tab
from .saved_api import SavedApi, build_saved_api
from .search_tab import build_search_tab, example_paths, filter_groups
from .thumbs import DEFAULT_THUMBNAILS, THUMBNAIL_MODES

log = logging.getLogger(__name__)

TITLE = "AI Similar Image Visualizer"
INTRO = (
    "Upload a product photo, paste an image URL or describe what you want: "
    "the closest products in the catalog appear with their similarity scores."
)
PRIVATE = {"api_visibility": "private"}


def build_blocks(
    service: SearchService,
    files: UiFiles | None = None,
    accounts: Accounts | None = None,
    seeding: Callable[[], Mapping[str, Any]] | None = None,  # the first start's seeding progress (app.py)
) -> gr.Blocks:
    files = files or UiFiles()
    accounts = accounts or Accounts()
    saved = SavedProducts(service.store)
    detail = DetailHandlers(saved, files)
    saved_tab = SavedHandlers(service, saved, files, accounts)
    search = SearchHandlers(service, files)
    steering = steer.SteerHandlers(service, search)
    catalog = CatalogHandlers(service, files)
    region_search = RegionSearch(service)  # one per app: the Gemini boxes' cache is shared by page and API
    info = _info(service)
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(f"# {TITLE}")
        gr.Markdown(INTRO, elem_id="intro")
        if accounts.oauth:  # only on a Space: elsewhere Gradio would switch on a mocked sign-in
            gr.LoginButton(elem_id="login")
        browser = browser_state(accounts)
        if info["random_weights"]:
            gr.HTML(fmt.random_weights_banner(info["model"]), elem_id="weights-banner")
        _loading_status(service, seeding)
        with gr.Tabs():
            with gr.Tab("Search", id="search"):
                parts = build_search_tab(
                    search, steering, example_paths(service, files), detail, browser, region_search
                )
                build_explain_panel(ExplainHandlers(service), parts.image, parts.url, parts.session, parts.gallery)
            with gr.Tab("Saved", id="saved") as saved_page:
                refresh = build_saved_tab(saved_tab, browser, demo)
            saved_page.select(**refresh)
            with gr.Tab("Map", id="map") as map_page:
                maps = MapHandlers(service, files)
                chart, sent = build_map_tab(maps, map_page, parts.session, parts.ranking)
                build_selection_panel(SelectionHandlers(maps, catalog), chart, sent, parts.ranking)
            with gr.Tab("Catalog", id="catalog"):
                _catalog_tab(demo, catalog)
        footer = gr.Markdown(_footer(service), elem_id="footer")
        if info["precision"] is None:  # auto is still probing: each page load shows the choice so far
            demo.load(lambda: _footer(service), outputs=footer, api_visibility="private", queue=False)
        _api(SearchApi(service, files), RegionsApi(service, files, region_search))
        build_saved_api(SavedApi(saved))
    demo.queue(default_concurrency_limit=2, max_size=32)  # 2 vCPUs; a bounded queue sheds load
    return demo


def _loading_status(service: SearchService, seeding: Callable[[], Mapping[str, Any]] | None = None) -> None:
    """Shows what is still loading or seeding in the background (checked every 2 s until nothing is left)."""
    embedder, ranker = service.embedder, service.ranker

    def status() -> tuple[str, gr.Timer]:
        error, index = embedder.load_error, ranker.status
        seed = seeding() if seeding is not None else None
        done = (embedder.loaded or error is not None) and index not in ("loading", "building")
        done = done and not (seed and seed.get("active"))
        text = fmt.loading_status(embedder.loaded, str(error) if error else None, index, seed)
        return text, gr.Timer(active=not done)

    text, timer_state = status()
    line = gr.Markdown(text, elem_id="loading-status")
    timer = gr.Timer(2.0, active=timer_state.active)
    timer.tick(status, outputs=[line, timer], show_progress="hidden", **PRIVATE)


def _catalog_tab(demo: gr.Blocks, handlers: CatalogHandlers) -> None:
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=300):
            with gr.Accordion("Store", open=True):
                store_info = gr.Markdown(elem_id="store-info")
            groups = filter_groups("catalog")
        with gr.Column(scale=5, min_width=320):
            page_info = gr.Markdown(elem_id="catalog-page")
            gallery = gr.Gallery(label="Catalog", show_label=False, columns=6, height="auto", object_fit="contain",
                                 buttons=[], elem_id="catalog-gallery")  # fmt: skip
            with gr.Row():
                previous = gr.Button("← Previous", size="sm")
                following = gr.Button("Next →", size="sm")
            page = gr.State(1)
            _add_products(handlers, store_info, [*groups, page], [gallery, page_info, *groups, page])
            refresh = {"fn": handlers.browse, "inputs": [*groups, page], "outputs": [gallery, page_info, *groups, page]}
            build_edit_panel(EditHandlers(handlers), groups, page, gallery, {**refresh, **PRIVATE})
            build_duplicates_panel(DuplicateHandlers(handlers), {**refresh, **PRIVATE})
    browse = {"outputs": [gallery, page_info, *groups, page], **PRIVATE}
    gr.on([g.input for g in groups], handlers.first_page, inputs=groups, trigger_mode="always_last", **browse)
    previous.click(handlers.previous_page, inputs=[*groups, page], **browse)
    following.click(handlers.next_page, inputs=[*groups, page], **browse)
    demo.load(handlers.first_page, inputs=groups, **browse).then(handlers.store_info, outputs=store_info, **PRIVATE)


def _add_products(handlers: CatalogHandlers, store_info: Any, browse_in: list, browse_out: list) -> None:
    with gr.Accordion("Add products", open=False, elem_id="add-products"):
        gr.Markdown(WRITABLE if handlers.writable else READ_ONLY)
        with gr.Column(visible=handlers.writable):
            uploads = gr.File(label="Images", file_count="multiple", file_types=["image"], type="filepath")
            with gr.Row():
                name = gr.Textbox(label="Name (optional)", max_lines=1)
                brand = gr.Textbox(label="Brand (optional)", max_lines=1)
            with gr.Row():
                category = gr.Dropdown(["", *CATEGORIES], value="", label="Category (optional)")
                price = gr.Number(label="Price (optional)", minimum=0)
            token = gr.Textbox(label="Admin token", type="password", max_lines=1)
            add = gr.Button("Add to catalog", variant="primary")
            summary = gr.Markdown()
            report = gr.Dataframe(headers=["File", "Result", "Detail"], interactive=False, wrap=True)
    inputs = [uploads, name, brand, category, price, token]
    added = add.click(handlers.add_products, inputs, [report, summary], concurrency_id="ingest",
                      concurrency_limit=1, **PRIVATE)  # fmt: skip
    added.success(handlers.browse, browse_in, browse_out, **PRIVATE).then(
        handlers.store_info, outputs=store_info, **PRIVATE
    )


def _api(api: SearchApi, regions: RegionsApi) -> None:
    """Hidden components behind the named endpoints; parameter names come from the functions."""
    with gr.Column(visible=False):
        image = gr.File(label="image", type="filepath")
        url = gr.Textbox(label="url")
        text = gr.Textbox(label="text")
        text_weight = gr.Number(0.5, label="text_weight")
        product_id = gr.Textbox(label="product_id")
        top_k = gr.Number(DEFAULT_TOP_K, label="top_k", precision=0)
        min_score = gr.Number(None, label="min_score")
        filters = [
            gr.Dropdown(list(choices), value=[], multiselect=True, allow_custom_value=True, label=name)
            for name, choices in (("categories", CATEGORIES), ("brands", ()), ("colors", COLORS), ("tags", ()))
        ]
        for free in filters[1::2]:  # brands, tags: any strings, not an empty enum, in the API docs
            free.api_info = string_list_info  # (a Dropdown subclass would make Gradio write a .pyi file)
        thumbnails = gr.Dropdown(list(THUMBNAIL_MODES), value=DEFAULT_THUMBNAILS, label="thumbnails")
        limit = gr.Number(None, label="limit", precision=0)
        offset = gr.Number(0, label="offset", precision=0)
        steering = steering_inputs()  # more, less, liked, disliked, price range, sort, within_best, collapse
        result = gr.JSON(label="result")
        trigger = gr.Button()
    common = [top_k, min_score, *filters, thumbnails, *steering]
    endpoints = [
        (api.search_image, [image, url, text, text_weight, *common], "search_image"),
        (api.search_text, [text, *common], "search_text"),
        (api.similar_to, [product_id, *common], "similar_to"),
    ]
    for fn, inputs, name in endpoints:
        trigger.click(fn, inputs, result, api_name=name, concurrency_id="search")
    trigger.click(api.catalog_map, [limit, offset], result, api_name="catalog_map", concurrency_id="map")
    wire_regions_api(regions, trigger, [image, url, text, text_weight], common, result)


def _info(service: SearchService) -> dict[str, Any]:
    embedder = service.embedder
    return {
        "model": service.model_id,
        "random_weights": bool(getattr(embedder, "random_weights", False)),
        "store": service.store.display_url,
        "tagger": getattr(service.tagger, "name", "off"),
        "precision": getattr(embedder, "precision", "fp32"),
        "device": device_label(embedder),
    }


def _footer(service: SearchService) -> str:
    info = _info(service)
    return fmt.footer_markdown(info["model"], info["store"], info["tagger"], info["precision"], info["device"])
