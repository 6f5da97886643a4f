"""The Gradio Blocks layout: components and event wiring (the logic lives in the handler modules)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import gradio as gr

from ..accounts import Accounts
from ..errors import SimilarityError
from ..records import CATEGORIES, COLORS
from ..regions.search import RegionSearch
from ..saved import SavedProducts
from ..search import DEFAULT_TOP_K, SearchService, device_label
from . import format as fmt
from . import steer
from .api import SearchApi, steering_inputs, string_list_info
from .catalog import READ_ONLY, WRITABLE, CatalogHandlers
from .catalog_edit import EditHandlers, build_edit_panel
from .detail import DetailHandlers, detail_view, wire_detail
from .duplicates import DuplicateHandlers, build_duplicates_panel
from .explain import ExplainHandlers, build_explain_panel
from .files import UiFiles
from .handlers import SearchHandlers
from .map import MapHandlers, build_map_tab
from .map_select import SelectionHandlers, build_selection_panel
from .regions import RegionHandlers, build_region_view, wire_regions
from .regions_api import RegionsApi, wire_regions_api
from .saved import SavedHandlers, browser_state, build_saved_tab
from .saved_api import SavedApi, build_saved_api
from .thumbs import DEFAULT_THUMBNAILS, THUMBNAIL_MODES

log = logging.getLogger(__name__)

TITLE = "AI Similar Image Visualizer"
INTRO = (
    "Upload a product photo, paste an image URL or describe what you want: "
    "the closest products in the catalog appear with their similarity scores."
)
PRIVATE = {"api_visibility": "private"}
EXAMPLES = 6
START_HINT = '<div class="source-card"><span>Results appear here.</span></div>'
TAG_HINT = "Search with a photo to see its tags."
# on narrow screens the results sit below the inputs and filters: bring them into view
SCROLL_TO_RESULTS = """() => {
  const el = document.getElementById("results-source");
  if (el && el.getBoundingClientRect().top > window.innerHeight * 0.6) el.scrollIntoView({behavior: "smooth"});
}"""


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
                parts = _search_tab(search, steering, _example_paths(service, files), detail, browser, region_search)
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


class SearchParts(NamedTuple):
    """The Search tab's components that other tabs and panels read."""

    image: Any
    url: Any
    session: Any
    ranking: list  # RANK_INPUTS order
    gallery: Any


def _search_tab(
    handlers: SearchHandlers,
    steering: steer.SteerHandlers,
    examples: list[str],
    detail: DetailHandlers,
    browser: Any,
    region_search: RegionSearch,
) -> SearchParts:
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=300, elem_id="query-column"):
            image = gr.Image(
                label="Product photo",
                sources=["upload", "webcam", "clipboard"],
                type="filepath",
                image_mode=None,  # keep the original file; similarity.images decodes it
                height=240,
                elem_id="query-image",
            )
            url = gr.Textbox(label="…or an image URL", placeholder="https://example.com/shoe.jpg", max_lines=1)
            text = gr.Textbox(label="Describe it (optional)", placeholder="e.g. red leather handbag", max_lines=1)
            boxes = steer.steer_boxes()  # More of… / Less of…
            with gr.Row():
                go = gr.Button("Search", variant="primary", elem_id="search-btn")
                clear = gr.ClearButton(value="Clear")
            with gr.Group(elem_id="search-filters"):
                groups = _filter_groups("search")
            controls, price_note = steer.rank_controls(steering)  # price range, sort, cutoff, collapse
            with gr.Accordion("Search options", open=False):
                text_weight = gr.Slider(0, 1, 0.5, step=0.05, label="Text weight (photo + text searches)")
                top_k = gr.Slider(1, 48, DEFAULT_TOP_K, step=1, label="Results")
                min_score = gr.Slider(0, 1, 0, step=0.01, label="Minimum similarity", info="0 = no minimum")
            if examples:
                gr.Examples([[p] for p in examples], inputs=[image], label="Try a catalog photo",
                            cache_examples=False, examples_per_page=EXAMPLES, **PRIVATE)  # fmt: skip
        with gr.Column(scale=5, min_width=320):
            source = gr.HTML(START_HINT, elem_id="results-source")
            region_view, region_state = build_region_view()  # "Found in your photo" (ui/regions.py)
            shown = detail_view()  # a clicked result: details, Save, More like this, 👍/👎
            feedback = steer.feedback_row()  # the 👍/👎 chips, Refine, Clear steering
            gallery = gr.Gallery(
                label="Similar products",
                show_label=False,
                columns=4,
                height="auto",
                object_fit="contain",
                allow_preview=False,
                buttons=[],
                elem_id="results-gallery",
            )
            strip = steer.vote_strip()  # 👍/👎 for every result
            with gr.Row(equal_height=True):
                timings = gr.Markdown("", elem_id="timings")
                download = gr.DownloadButton("Download JSON", size="sm", scale=0, elem_id="download-json")
            with gr.Group(elem_id="tag-box"):
                gr.Markdown("**What we see in your photo**", padding=True)
                tag_panel = gr.Markdown(TAG_HINT, padding=True, elem_id="tag-panel")
                detect = gr.Checkbox(False, label="Filter by detected category", elem_id="filter-detected")
            session = gr.State(None)

    outputs = [gallery, source, *groups, timings, download, session, tag_panel]
    ranking = [top_k, min_score, *groups, *controls]  # RANK_INPUTS order (ui/ranking.py)
    steered = [boxes.more, boxes.less, feedback.chips]
    new_search = {"fn": steering.search, "inputs": [*steered, image, url, text, text_weight, *ranking, session]}
    common = {"outputs": outputs, "concurrency_id": "search", **PRIVATE}
    tags = {"fn": handlers.show_tags, "inputs": [session], "outputs": [tag_panel, timings], **PRIVATE}
    tags["concurrency_limit"] = 8  # it only waits for the background tagger
    detected = {"fn": handlers.apply_detected, "inputs": [detect, *ranking, session], "show_progress": "hidden"}
    redetected = detect.input(**detected, **common)
    searches = (
        gr.on([go.click, url.submit, text.submit], **new_search, **common),
        image.change(**{**new_search, "fn": steering.auto_search}, **common, trigger_mode="always_last"),
    )
    for searched in searches:
        searched.then(None, js=SCROLL_TO_RESULTS, **PRIVATE)
        searched.then(**tags, show_progress="hidden").then(**detected, **common)
    rerank = {"fn": handlers.rerank, "inputs": [text_weight, *ranking, session], "show_progress": "minimal"}
    triggers = [g.input for g in groups] + [top_k.release, min_score.release, text_weight.release]
    triggers += [*(c.submit for c in controls[:2]), *(c.blur for c in controls[:2]), controls[2].input]
    triggers += [controls[3].release, controls[4].input]  # price range, sort, within best, collapse
    reranked = gr.on(triggers, **rerank, **common, trigger_mode="always_last")
    refined = steer.wire(steering, boxes, feedback, strip, price_note, shown, (text_weight, ranking, session, outputs))
    page = (image, url, ranking, session, outputs)
    regions = RegionHandlers(handlers, region_search)
    wire_regions(regions, region_view, region_state, searches, [reranked, redetected, *refined], clear, page)
    more = wire_detail(shown, detail, gallery, handlers.similar, ranking, session, browser, outputs)
    more.success(regions.reset, outputs=[region_view, region_state], **PRIVATE)  # a product is the query now
    clear.add([image, url, text, gallery, timings, *boxes])
    reset = [session, source, tag_panel, *groups]
    clear.click(lambda: (None, START_HINT, TAG_HINT, *[_hidden_group()] * len(groups)), outputs=reset, **PRIVATE)
    clear.click(lambda: ([], steer.chip_view([])), outputs=[feedback.chips, feedback.view], **PRIVATE)  # chips too
    return SearchParts(image, url, session, ranking, gallery)


def _hidden_group() -> dict[str, Any]:
    return gr.update(choices=[], value=[], visible=False)


def _filter_groups(prefix: str) -> list[gr.CheckboxGroup]:
    labels = {"categories": "Category", "brands": "Brand", "colors": "Colour", "tags": "Tags"}
    return [
        gr.CheckboxGroup([], value=[], label=label, visible=False, elem_id=f"{prefix}-{group}")
        for group, label in labels.items()
    ]


def _catalog_tab(demo: gr.Blocks, handlers: CatalogHandlers) -> None:
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=300):
            with gr.Accordion("Store", open=True):
                store_info = gr.Markdown(elem_id="store-info")
            groups = _filter_groups("catalog")
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


def _example_paths(service: SearchService, files: UiFiles) -> list[str]:
    """Thumbnails of a few catalog products, one per category where possible (empty catalog: none)."""
    try:  # straight from the store: the page must not wait for the catalog index
        products = next(service.store.iter_products(48, vectors=False), [])
    except SimilarityError:
        return []
    picked: dict[str, Any] = {}
    for product in products:
        picked.setdefault(product.category, product)
    chosen = list(picked.values()) + [p for p in products if p not in picked.values()]
    return [files.thumbnail(p) for p in chosen[:EXAMPLES] if p.thumbnail]


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
