"""The Search tab's region view: every product found in the photo, and the part the shopper points at.

The page's search shows the whole photo's results first, as before; this view fills in right after, in
the same event chain (``find``): the regions are found and their crops embedded in one batched pass,
reusing the whole photo's query. Picking a region (a click, Enter or Space on its box or card, or a box
dragged on the photo) makes its query the session's query, so the gallery, facets, filters, the Map
tab's pin, "Why this match?" and Save follow it; "Whole photo" brings the original back. A filter change,
a Refine or a cleared steering re-ranks each card from the kept vectors (``refresh``), steered and weighted
like the page's query, so a card's best match is the gallery's first result once that region is picked.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from ..errors import SimilarityError
from ..records import thumbnail_data_url
from ..regions.boxes import Region, parse_user_box
from ..regions.search import RegionQuery, RegionSearch, embed_once
from ..steering import Query, steered_like
from .handlers import SearchHandlers, SearchOutputs, SearchSession, user_errors
from .ranking import RankArgs
from .region_html import CSS, data_url, region_view

log = logging.getLogger(__name__)

SCRIPT = Path(__file__).parent / "static" / "region_view.js"
PRIVATE = {"api_visibility": "private"}
THUMB_SIDE = 112


@dataclasses.dataclass
class RegionState:
    """The photo's regions and their vectors (``RegionQuery``) and which one is searched now (None: whole)."""

    prepared: RegionQuery
    selected: int | None = None


class RegionHandlers:
    def __init__(self, search: SearchHandlers, regions: RegionSearch) -> None:
        self.search = search
        self.regions = regions
        self.service = search.service

    def find(self, image: Any, url: str | None, session: SearchSession | None, *ranking: Any) -> tuple[Any, Any]:
        """Chained after a search: find the photo's regions and show them with each one's best match."""
        query = session.query if session is not None else None
        if query is None or "image" not in query.kind or query.source_id or not (image or (url or "").strip()):
            return gr.update(value="", visible=False), None
        try:
            prepared = self.regions.prepare(image or None, url=None if image else url, whole=query)
            args, _ = RankArgs.from_inputs(ranking)
        except SimilarityError as exc:  # the search itself already succeeded: never fail it here
            log.info("region view skipped: %s", exc)
            return gr.update(value="", visible=False), None
        state = RegionState(prepared)
        return gr.update(value=self._view(state, args), visible=True), state

    @user_errors
    def select(self, evt: gr.EventData, state: RegionState | None, *ranking: Any) -> tuple:
        """A region, "Whole photo" or a drawn box was picked: search it (the page's outputs, view, state)."""
        args, session = RankArgs.from_inputs(ranking)
        if state is None or session is None:
            return (*_skip(), gr.skip(), gr.skip())
        data = getattr(evt, "_data", None) or {}
        if isinstance(data.get("box"), list):
            state = self._with_user_box(state, data["box"])
        else:
            index = data.get("index")
            state.selected = index if isinstance(index, int) and 0 <= index < len(state.prepared.regions) else None
        query = self._query(state, state.selected, session)
        crop = None if state.selected is None else state.prepared.crop(state.selected)
        picked = dataclasses.replace(session, query=query, source=None, crop=crop, tags_shown=True)
        note = "whole photo" if state.selected is None else f"region {state.selected + 1}"
        outputs = self.search._show(picked, args, gr.skip(), note=note)
        if state.selected is not None:  # "12 results for region 2 of your photo"
            outputs = outputs._replace(source=outputs.source.replace(" for your photo", f" for {note} of your photo"))
        return (*outputs, self._view(state, args, session), state)

    def refresh(self, state: RegionState | None, *ranking: Any) -> Any:
        """The page re-ranked (filters, price, sort, Refine, steering cleared): each card's best match again,
        from the kept vectors (no embedding). ``ranking`` ends with the page's session where there is one."""
        if state is None:
            return gr.skip()
        try:
            args, session = RankArgs.from_inputs(ranking)
            return self._view(state, args, session)
        except SimilarityError:
            return gr.skip()

    def reset(self) -> tuple[Any, None]:
        return gr.update(value="", visible=False), None

    # -- helpers ---------------------------------------------------------------------------
    def _with_user_box(self, state: RegionState, fractions: list[Any]) -> RegionState:
        """The shopper's dragged box (fractions of the photo) as a "user" region, embedded alone."""
        prepared = state.prepared
        width, height = prepared.size
        try:
            x0, y0, x1, y1 = (float(v) for v in fractions)
        except (TypeError, ValueError):
            raise SimilarityError("That box could not be read; drag again on the photo.") from None
        box = parse_user_box([x0 * width, y0 * height, x1 * width, y1 * height], prepared.size)
        kept = [(r, v) for r, v in zip(prepared.regions, prepared.vectors, strict=True) if r.source != "user"]
        region = Region(box, "user", None, 1.0)
        candidate = dataclasses.replace(prepared, regions=[*(r for r, _ in kept), region])
        vector = embed_once(self.service.embedder, [candidate.crop(len(kept))])
        vectors = [v for _, v in kept] + [vector[0]]
        prepared = dataclasses.replace(candidate, vectors=np.stack(vectors))
        return RegionState(prepared, len(kept))

    def _query(self, state: RegionState, index: int | None, session: SearchSession | None) -> Query:
        """Region ``index``'s query (None: the whole photo) with the page's text weight and steering, as the
        page's query has them now (after a Refine or a text-weight change too); nothing is embedded."""
        query = state.prepared.query(self.service, index)
        if session is None:
            return query
        page = session.query
        if page.text_weight != query.text_weight:
            query = self.service.reweight(query, page.text_weight)
        return steered_like(query, page)

    def _view(self, state: RegionState, args: RankArgs, session: SearchSession | None = None) -> str:
        prepared = state.prepared
        best = []
        for index in range(len(prepared.regions)):
            matches = args.rank(self.service, self._query(state, index, session)).matches
            match = matches[0] if matches else None
            best.append((match, _thumb(match)))
        crops = [prepared.crop(i) for i in range(len(prepared.regions))]
        return region_view(prepared.picture, prepared.size, prepared.regions, crops, best, state.selected)


def _thumb(match: Any) -> str | None:
    if match is None or not match.product.thumbnail:
        return None
    try:
        from .. import images

        return data_url(images.load_image(match.product.thumbnail).image, THUMB_SIDE)
    except SimilarityError:
        return thumbnail_data_url(match.product.thumbnail)


def build_region_view() -> tuple[gr.HTML, gr.State]:
    """The view's components, placed where it is called (above the results gallery)."""
    view = gr.HTML("", css_template=CSS, js_on_load=SCRIPT.read_text(encoding="utf-8"), visible=False,
                   elem_id="region-view", padding=False)  # fmt: skip
    return view, gr.State(None)


def wire_regions(
    handlers: RegionHandlers, view: gr.HTML, state: gr.State, searched: list, reranked: list, clear: Any, page: tuple
) -> None:
    """``searched``: the page's new-search events; ``reranked``: its events that rank the kept query again
    (filters, Refine, …); ``page``: (image, url, ranking components in RANK_INPUTS order, session, the
    page's result outputs)."""
    image, url, ranking, session, outputs = page
    for event in searched:  # after the whole photo's results are shown
        event.then(handlers.find, [image, url, session, *ranking], [view, state], show_progress="hidden",
                   concurrency_id="regions", **PRIVATE)  # fmt: skip
    for event in reranked:  # the cards follow the gallery
        event.then(handlers.refresh, [state, *ranking, session], view, show_progress="hidden", **PRIVATE)
    view.region_select(handlers.select, [state, *ranking, session], [*outputs, view, state],
                       concurrency_id="search", **PRIVATE)  # fmt: skip
    clear.click(handlers.reset, outputs=[view, state], **PRIVATE)


def _skip() -> SearchOutputs:
    return SearchOutputs(*(gr.skip() for _ in SearchOutputs._fields))
