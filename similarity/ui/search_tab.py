"""The Search tab's components and their events: photo, URL, text, steering boxes, filters and options on the
left; the region view, chips, results gallery, timings and photo tags on the right. The logic lives in the
handler modules (ui/handlers.py, ui/steer.py, ui/regions.py, ui/detail.py)."""

from __future__ import annotations

from typing import Any, NamedTuple

import gradio as gr

from ..errors import SimilarityError
from ..regions.search import RegionSearch
from ..search import DEFAULT_TOP_K, SearchService
from . import steer
from .detail import DetailHandlers, detail_view, wire_detail
from .files import UiFiles
from .handlers import SearchHandlers
from .regions import RegionHandlers, build_region_view, wire_regions

PRIVATE = {"api_visibility": "private"}
EXAMPLES = 6
START_HINT = '<div class="source-card"><span>Results appear here.</span></div>'
TAG_HINT = "Search with a photo to see its tags."
# on narrow screens the results sit below the inputs and filters: bring them into view
SCROLL_TO_RESULTS = """() => {
  const el = document.getElementById("results-source");
  if (el && el.getBoundingClientRect().top > window.innerHeight * 0.6) el.scrollIntoView({behavior: "smooth"});
}"""


class SearchParts(NamedTuple):
    """The Search tab's components that other tabs and panels read."""

    image: Any
    url: Any
    session: Any
    ranking: list  # RANK_INPUTS order
    gallery: Any


def build_search_tab(
    handlers: SearchHandlers,
    steering: steer.SteerHandlers,
    examples: list[str],
    detail: DetailHandlers,
    browser: Any,
    region_search: RegionSearch,
) -> SearchParts:
    """The tab's components, placed where it is called, and their events; ``examples``: thumbnail paths."""
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
                groups = filter_groups("search")
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


def filter_groups(prefix: str) -> list[gr.CheckboxGroup]:
    labels = {"categories": "Category", "brands": "Brand", "colors": "Colour", "tags": "Tags"}
    return [
        gr.CheckboxGroup([], value=[], label=label, visible=False, elem_id=f"{prefix}-{group}")
        for group, label in labels.items()
    ]


def example_paths(service: SearchService, files: UiFiles) -> list[str]:
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
