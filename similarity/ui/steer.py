"""Steering on the Search tab: "More of…" / "Less of…" boxes, 👍/👎 on every result (and in the detail view)
shown at once as removable chips, **Refine** (re-search with them), and the price range, sort, relevance
cutoff and near-duplicate controls; plus the API's hidden steering inputs.

The chips live in a ``gr.State`` per page session (guests and signed-in users alike: this is per-search
state, nothing is stored). They stay across filter changes and re-ranks until removed (their ×) or cleared;
a new search uses them with the boxes; "More like this" starts a plain query from the product, as before.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr

from ..arrange import SORTS
from ..errors import SimilarityError
from ..records import PriceRange
from ..search import SearchService
from ..steering import MAX_PER_GROUP, Steering
from .format import product_title
from .handlers import SearchHandlers, SearchOutputs, SearchSession, user_errors
from .ranking import RANK_INPUTS, RankArgs

SORT_LABELS = {"relevance": "Relevance", "price_asc": "Price: low → high", "price_desc": "Price: high → low",
               "newest": "Newest"}  # fmt: skip
VOTES = {"like": "👍", "dislike": "👎"}
STATIC = Path(__file__).parent / "static"  # vote_pins.js and .css: 👍/👎 on each result picture
Chip = dict[str, str]  # {"vote": "like"|"dislike", "id": product id, "label": "👎 Name — brand"}


class SteerHandlers:
    def __init__(self, service: SearchService, search: SearchHandlers) -> None:
        self.service, self.search_handlers = service, search

    # -- searching with the steering -------------------------------------------------------------
    def search(self, more: str, less: str, chips: list[Chip], *rest: Any) -> SearchOutputs:
        """A new search (photo, URL, text) composed with the boxes and the chips."""
        return self.search_handlers.search(*rest, steering=steering_of(more, less, chips))

    def auto_search(self, more: str, less: str, chips: list[Chip], image: Any, *rest: Any) -> SearchOutputs:
        if image is None:  # clearing the photo does nothing
            return SearchOutputs(*(gr.skip() for _ in SearchOutputs._fields))
        return self.search(more, less, chips, image, *rest)

    @user_errors
    def refine(self, more: str, less: str, chips: list[Chip], text_weight: float, *ranking: Any) -> SearchOutputs:
        """Refine: the kept query (photo and text not embedded again) with the boxes and chips."""
        args, session = RankArgs.from_inputs(ranking)
        if session is None:
            raise SimilarityError("Search first, then refine the results.")
        base = self.service.reweight(session.query, float(text_weight))
        query = self.service.steer(base, steering_of(more, less, chips))
        again = SearchSession(query, source=session.source, tag_job=session.tag_job, tags_shown=session.tags_shown)
        return self.search_handlers._show(again, args, gr.skip(), note=_note(query.steering))

    # -- chips ------------------------------------------------------------------------------------
    @user_errors
    def vote(self, chips: list[Chip] | None, evt: gr.EventData) -> tuple[list[Chip], Any]:
        """👍/👎 on a result picture: shown at once as a chip; no search yet."""
        data = getattr(evt, "_data", None) or {}
        return self.add(chips, data.get("id"), data.get("vote"))

    @user_errors
    def vote_shown(self, product_id: str | None, chips: list[Chip] | None, vote: str) -> tuple[list[Chip], Any]:
        """👍/👎 in the detail view."""
        return self.add(chips, product_id, vote)

    def add(self, chips: list[Chip] | None, product_id: Any, vote: Any) -> tuple[list[Chip], Any]:
        if vote not in VOTES or not isinstance(product_id, str) or not product_id:
            raise SimilarityError("Open a result first.")
        found = self.service.store.get([product_id[:200]], thumbnails=False)
        if not found:
            raise SimilarityError("That product is no longer in the catalog.")
        kept = [c for c in chips or [] if c["id"] != product_id]  # a new vote replaces the old one
        if sum(c["vote"] == vote for c in kept) >= MAX_PER_GROUP:
            raise SimilarityError(f"At most {MAX_PER_GROUP} {VOTES[vote]}; remove one first.")
        chip = {"vote": vote, "id": product_id, "label": f"{VOTES[vote]} {product_title(found[0])}"}
        chips = [*kept, chip]
        return chips, chip_view(chips)

    def remove(self, shown: Sequence[str] | None, chips: list[Chip] | None) -> tuple[list[Chip], Any]:
        """A chip's × (or Backspace in the chip box): drop the chips no longer shown."""
        keep = set(shown or ())
        chips = [c for c in chips or [] if chip_key(c) in keep]
        return chips, chip_view(chips)

    @user_errors
    def clear(self, text_weight: float, *ranking: Any) -> tuple:
        """Clear: no chips, empty boxes, and the query as it was before steering."""
        args, session = RankArgs.from_inputs(ranking)
        reset = ([], chip_view([]), "", "")
        if session is None or not session.query.steering:
            return (*reset, *(gr.skip() for _ in SearchOutputs._fields))
        query = self.service.steer(self.service.reweight(session.query, float(text_weight)), Steering())
        again = SearchSession(query, source=session.source, tag_job=session.tag_job, tags_shown=session.tags_shown)
        return (*reset, *self.search_handlers._show(again, args, gr.skip(), note="steering cleared"))

    # -- what the page shows ------------------------------------------------------------------------
    def strip(self, session: SearchSession | None, chips: list[Chip] | None) -> str:
        """👍/👎 buttons for every shown result, in gallery order (pressed where a chip says so)."""
        ids = getattr(session, "ids", None) or []
        if not ids:
            return ""
        products = {p.id: p for p in self.service.store.get(ids, thumbnails=False)}
        votes = {c["id"]: c["vote"] for c in chips or []}
        return strip_html([products[i] for i in ids if i in products], votes)

    def price_note(self, session: SearchSession | None) -> tuple[str, Any, Any]:
        """The catalog's price range (also the boxes' placeholders), and the range among the last candidates."""
        prices = getattr(session, "prices", None)
        here = price_text(prices, "among the candidates") if prices is not None else ""
        catalog = self.catalog_prices()
        note = " · ".join(t for t in (price_text(catalog, "Catalog") if catalog else "", here) if t)
        return note, *price_placeholders(catalog)

    def catalog_prices(self) -> PriceRange | None:
        """The catalog's price range, once the index is loaded (never loads it: the page must not wait)."""
        ranker = self.service.ranker
        if ranker.status in ("loading", "unavailable"):
            return None
        try:
            return ranker.price_range()
        except SimilarityError:
            return None


def steering_of(more: str | None, less: str | None, chips: list[Chip] | None) -> Steering:
    chips = chips or []
    liked = [c["id"] for c in chips if c["vote"] == "like"]
    disliked = [c["id"] for c in chips if c["vote"] == "dislike"]
    return Steering.of(_split(more), _split(less), liked, disliked)


def _split(text: str | None) -> list[str]:
    """A box may hold several things, separated by commas: "leather, suede"."""
    return [t for t in (text or "").split(",") if t.strip()]


def chip_key(chip: Chip) -> str:
    return f"{chip['vote']}:{chip['id']}"


def chip_view(chips: list[Chip]) -> Any:
    choices = [(c["label"], chip_key(c)) for c in chips]
    return gr.update(choices=choices, value=[key for _, key in choices], visible=bool(chips))


def strip_html(products: Sequence[Any], votes: dict[str, str]) -> str:
    """The results in gallery order as data (id, title, the chip's vote): vote_pins.js pins a 👍/👎 pair on
    each result picture from it."""
    rows = "".join(
        f'<li data-id="{html.escape(p.id)}" data-title="{html.escape(product_title(p))}" '
        f'data-vote="{votes.get(p.id, "")}"></li>'
        for p in products
    )
    return f'<ol class="vote-data" hidden>{rows}</ol>'


def price_hints(prices: PriceRange | None) -> tuple[str, str]:
    """The price boxes show the catalog's lowest and highest price while empty."""
    if prices is None or prices.min is None or prices.max is None:
        return "", ""
    return f"{prices.min:.2f}", f"{prices.max:.2f}"


def price_placeholders(prices: PriceRange | None) -> tuple[Any, Any]:
    low, high = price_hints(prices)
    return gr.update(placeholder=low), gr.update(placeholder=high)


def price_text(prices: PriceRange, where: str) -> str:
    span = "no prices" if prices.min is None else f"{prices.min:,.2f} – {prices.max:,.2f}"
    missing = f" · {prices.unpriced} without a price" if prices.unpriced else ""
    return f"{where}: {span}{missing}"


def _note(steering: Steering) -> str:
    counts = {"more of": len(steering.more), "less of": len(steering.less), "👍": len(steering.liked),
              "👎": len(steering.disliked)}  # fmt: skip
    parts = [f"{k} {v}" for k, v in counts.items() if v]
    return "refined: " + ", ".join(parts) if parts else "refined"


# -- components --------------------------------------------------------------------------------
class SteerBoxes(NamedTuple):
    more: Any
    less: Any


def steer_boxes() -> SteerBoxes:
    """ "More of…" and "Less of…", beside "Describe it" (commas separate several)."""
    with gr.Row(elem_id="steer-boxes"):
        more = gr.Textbox(label="More of…", placeholder="e.g. leather", max_lines=1, elem_id="steer-more")
        less = gr.Textbox(label="Less of…", placeholder="e.g. red", max_lines=1, elem_id="steer-less")
    return SteerBoxes(more, less)


def rank_controls(handlers: SteerHandlers) -> tuple[list[Any], Any]:
    """Price range, sort, relevance cutoff and collapse, in ``STEER_INPUTS`` order; and the price note."""
    note_text, *_ = handlers.price_note(None)
    low_hint, high_hint = price_hints(handlers.catalog_prices())
    with gr.Group(elem_id="steer-controls"):
        with gr.Row():
            low = gr.Number(None, label="Price from", minimum=0, placeholder=low_hint, elem_id="price-min")
            high = gr.Number(None, label="Price to", minimum=0, placeholder=high_hint, elem_id="price-max")
        note = gr.Markdown(note_text, elem_id="price-note", padding=True)
        sort = gr.Dropdown([(SORT_LABELS[s], s) for s in SORTS], value="relevance", label="Sort the relevant results",
                           elem_id="sort")  # fmt: skip
        within = gr.Slider(0, 0.3, 0, step=0.01, label="Within this of the best match", info="0 = no cutoff",
                           elem_id="within-best")  # fmt: skip
        collapse = gr.Checkbox(False, label="Collapse near-duplicates", elem_id="collapse")
    return [low, high, sort, within, collapse], note


class Feedback(NamedTuple):
    chips: Any  # gr.State: the chips of this page session
    view: Any  # the chips, removable
    refine: Any
    clear: Any


def feedback_row() -> Feedback:
    """The chips with Refine and Clear (above the results; hidden until there is a chip)."""
    chips = gr.State([])
    with gr.Row(equal_height=True, elem_id="steer-chips"):
        view = gr.Dropdown([], value=[], multiselect=True, label="Steering (× removes)", visible=False, scale=4,
                           elem_id="steer-chip-box")  # fmt: skip
        refine = gr.Button("Refine", variant="primary", scale=0, min_width=90, elem_id="refine-btn")
        clear = gr.Button("Clear steering", size="sm", scale=0, min_width=90, elem_id="steer-clear")
    return Feedback(chips, view, refine, clear)


def vote_strip() -> Any:
    """The results' data for the 👍/👎 pinned on each picture (the pins live in the gallery, not here)."""
    script = (STATIC / "vote_pins.js").read_text(encoding="utf-8")
    style = (STATIC / "vote_pins.css").read_text(encoding="utf-8")
    return gr.HTML("", js_on_load=script, head=f"<style>{style}</style>", padding=False, elem_id="vote-strip")


def wire(
    handlers: SteerHandlers,
    boxes: SteerBoxes,
    feedback: Feedback,
    strip: Any,
    note: Any,
    detail: Any,
    steps: tuple[Any, list, Any, list],
) -> list[Any]:
    """Events: Refine (button, Enter in a box), 👍/👎 (on each picture and in the detail view), chip removal,
    Clear, and the strip and price note following each search. ``steps``: (text weight, ranking inputs,
    session, outputs). Returns the events that rank the page's query again (Refine, Clear), for the region
    cards to follow."""
    text_weight, ranking, session, outputs = steps
    prices = ranking[RANK_INPUTS.index("price_min") : RANK_INPUTS.index("price_max") + 1]
    private = {"api_visibility": "private"}
    common = {"outputs": outputs, "concurrency_id": "search", **private}
    refine_in = [boxes.more, boxes.less, feedback.chips, text_weight, *ranking, session]
    refined = gr.on([feedback.refine.click, boxes.more.submit, boxes.less.submit], handlers.refine, refine_in,
                    **common)  # fmt: skip
    chips = [feedback.chips, feedback.view]
    strip.vote(handlers.vote, [feedback.chips], chips, **private)
    detail.like.click(
        lambda i, c: handlers.vote_shown(i, c, "like"), [detail.selected, feedback.chips], chips, **private
    )
    detail.dislike.click(lambda i, c: handlers.vote_shown(i, c, "dislike"), [detail.selected, feedback.chips], chips,
                         **private)  # fmt: skip
    feedback.view.input(handlers.remove, [feedback.view, feedback.chips], chips, **private)
    cleared = [*chips, boxes.more, boxes.less, *outputs]
    unsteered = feedback.clear.click(handlers.clear, [text_weight, *ranking, session], cleared, concurrency_id="search",
                                     **private)  # fmt: skip
    shown = {"fn": handlers.strip, "inputs": [session, feedback.chips], "outputs": strip, "show_progress": "hidden"}
    gr.on([session.change, feedback.chips.change], **shown, **private)
    session.change(handlers.price_note, [session], [note, *prices], show_progress="hidden", **private)
    return [refined, unsteered]
