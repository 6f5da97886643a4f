"""Search-tab handlers: plain functions over the SearchService, testable without a browser.

The embedded query is kept in a per-session ``SearchSession`` (``gr.State``), so filter, slider and
text-weight changes re-rank without decoding or embedding again. Tagging starts in the background
when a photo is searched and is shown by a chained event, so results never wait for it.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, NamedTuple, TypeVar

import gradio as gr

from ..errors import SimilarityError
from ..records import FACET_GROUPS, PriceRange, Product, SearchResult
from ..search import Query, SearchService
from . import format as fmt
from .files import UiFiles
from .ranking import RankArgs

log = logging.getLogger(__name__)

GENERIC_ERROR = "Something went wrong on our side. Please try again."
TAG_WAIT_S = 60.0  # the taggers have their own timeouts; this only bounds a stuck future
NO_TAGGER = "No tagger is configured, so there is no description of the photo (set SIMILARITY_TAGGER)."
NO_PHOTO = "Photo tags appear when you search with a photo."
FROM_PRODUCT = "Searching from a catalog product: its details are in its caption."
TAGGING = "Looking at the photo…"
F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Show domain errors as short ``gr.Error`` messages; log anything else and show a generic one."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except SimilarityError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception:
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(GENERIC_ERROR, print_exception=False) from None

    return wrapper  # type: ignore[return-value]


@dataclasses.dataclass
class SearchSession:
    """What one browser session searched last (kept in ``gr.State``)."""

    query: Query
    ids: list[str] = dataclasses.field(default_factory=list)  # product ids in gallery order
    scores: list[float] = dataclasses.field(default_factory=list)  # their scores (the detail view shows them)
    source: Product | None = None  # the product a "more like this" search started from
    tag_job: Future | None = None
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    tags_shown: bool = False
    prices: PriceRange | None = None  # the last ranking's candidates' price range
    crop: Any = None  # the part of the photo searched now (region view): "Why this match?" explains it


class SearchOutputs(NamedTuple):
    """Values for the result components, in the order the layout wires them."""

    gallery: Any
    source: Any
    categories: Any
    brands: Any
    colors: Any
    tags: Any
    timings: Any
    download: Any
    session: Any
    tag_panel: Any


class SearchHandlers:
    def __init__(self, service: SearchService, files: UiFiles) -> None:
        self.service = service
        self.files = files

    # -- events ----------------------------------------------------------------------------
    # ``*ranking``: the ranking inputs in ``RANK_INPUTS`` order (top-k, min score, the four filter
    # groups), then the session where the event has one; ``RankArgs.from_inputs`` reads them.
    @user_errors
    def search(
        self, image: Any, url: str | None, text: str | None, text_weight: float, *ranking: Any, steering: Any = None
    ) -> SearchOutputs:
        """A new search from the photo, URL and/or text (decodes and embeds once); ``steering`` (ui/steer.py)."""
        args, _ = RankArgs.from_inputs(ranking)
        query = self.service.encode(image or None, url=url, text=text, text_weight=float(text_weight))
        job = self._start_tagging(query)
        query = dataclasses.replace(query, image=None)  # the tagger has it; do not keep pixels in the session
        query = self.service.steer(query, steering) if steering else query
        fresh = SearchSession(query, tag_job=job)
        panel = TAGGING if job is not None else self._no_tags_text(query)
        return self._show(fresh, args, panel)

    def auto_search(self, image: Any, url: str | None, text: str | None, *rest: Any) -> SearchOutputs:
        """Search when a photo arrives (upload, webcam, paste, example); clearing the photo does nothing."""
        if image is None:
            return _skip_all()
        return self.search(image, url, text, *rest)

    @user_errors
    def rerank(self, text_weight: float, *ranking: Any) -> SearchOutputs:
        """Filters, sliders or text weight changed: rank the kept query vector again."""
        args, session = RankArgs.from_inputs(ranking)
        if session is None:
            return _skip_all()
        query = self.service.reweight(session.query, float(text_weight))
        query = dataclasses.replace(query, timings_ms={})
        again = dataclasses.replace(session, query=query, timings={})
        return self._show(again, args, gr.skip(), note="re-ranked, no re-embedding")

    @user_errors
    def similar(self, product_id: str, *ranking: Any) -> SearchOutputs:
        """ "More like this" from the result detail view (ui/detail.py), ranked like the page."""
        return self.similar_with(product_id, RankArgs.from_inputs(ranking)[0])

    def similar_with(self, product_id: str, args: RankArgs) -> SearchOutputs:
        """ "More like this" for a catalog product, ranked by ``args``."""
        query = self.service.product_query(product_id)
        source = next(iter(self.service.store.get([product_id])), None)
        job = self._start_tagging(query)  # a product query gives the product's stored tags
        fresh = SearchSession(query, source=source, tag_job=job)
        panel = TAGGING if job is not None else self._no_tags_text(query)
        return self._show(fresh, args, panel)

    def show_tags(self, session: SearchSession | None) -> tuple[Any, Any]:
        """Chained after a search: wait for the background tagging and fill the panel."""
        if session is None or session.tag_job is None or session.tags_shown:
            return gr.skip(), gr.skip()
        session.tags_shown = True  # a photo cleared later re-runs this chain: nothing new to show
        try:
            result = session.tag_job.result(timeout=TAG_WAIT_S)
        except FutureTimeout:
            return "Describing the photo took too long.", fmt.timings_line(session.timings, "timed out")
        except Exception:
            log.exception("tagging failed")
            return "Could not describe the photo.", fmt.timings_line(session.timings, "failed")
        return fmt.tags_markdown(result), fmt.timings_line(session.timings, result.elapsed_ms)

    @user_errors
    def apply_detected(self, enabled: bool, *ranking: Any) -> SearchOutputs:
        """ "Filter by detected category": tick (or untick) the tagger's category and re-rank."""
        args, session = RankArgs.from_inputs(ranking)
        detected = _detected_category(session)
        if session is None or detected is None:
            return _skip_all()
        categories = args.groups["categories"]
        ticked = [c for c in categories if c != detected] + ([detected] if enabled else [])
        if ticked == categories:
            return _skip_all()
        again = args.with_groups({**args.groups, "categories": ticked})
        return self._show(session, again, gr.skip(), note=f"category: {detected}")

    # -- helpers ---------------------------------------------------------------------------
    def _start_tagging(self, query: Query) -> Future | None:
        describe = getattr(self.service, "describe_async", None)
        return None if describe is None else describe(query)  # None: tagging off, or a text query

    def _no_tags_text(self, query: Query) -> str:
        if query.source_id:
            return FROM_PRODUCT
        return NO_PHOTO if "image" not in query.kind else NO_TAGGER

    def _show(self, session: SearchSession, args: RankArgs, panel: Any, note: str = "") -> SearchOutputs:
        result, updates = self.rank_keeping_valid_ticks(session.query, args)
        session.ids = [m.product.id for m in result.matches]
        session.scores = [m.score for m in result.matches]
        session.timings = dict(result.timings_ms)
        session.prices = result.prices
        gallery = [(self.files.thumbnail(m.product), fmt.caption(m.product, m.score)) for m in result.matches]
        kind = session.query.kind
        source = fmt.source_html(kind, session.query.text, session.source, len(result.matches))
        timings = fmt.timings_line(session.timings, _tag_status(session.tag_job), note)
        export = self.export(result, updates)
        return SearchOutputs(gallery, source, *updates.values(), timings, export, session, panel)

    def rank_keeping_valid_ticks(self, query: Query, args: RankArgs) -> tuple[SearchResult, dict[str, Any]]:
        """Rank, then drop ticks that no longer appear in the facets (and rank again if any did)."""
        result = args.rank(self.service, query)
        valid = {g: fmt.facet_choices(result.facets.get(g, {}), ticks)[1] for g, ticks in args.groups.items()}
        if valid != {g: list(dict.fromkeys(t)) for g, t in args.groups.items()}:
            result = args.with_groups(valid).rank(self.service, query)
        updates = {}
        for group in FACET_GROUPS:
            choices, keep = fmt.facet_choices(result.facets.get(group, {}), valid[group])
            updates[group] = gr.update(choices=choices, value=keep, visible=bool(choices))
        return result, updates

    def export(self, result: SearchResult, updates: dict[str, Any]) -> str:
        data = result.to_dict(thumbnails=False)
        data["filters"] = {group: update["value"] for group, update in updates.items()}
        return self.files.export_json(data)


def _tag_status(job: Future | None) -> str | float | None:
    if job is None:
        return None
    if not job.done() or job.exception() is not None:
        return "…" if not job.done() else None
    return job.result().elapsed_ms


def _detected_category(session: SearchSession | None) -> str | None:
    """The tagged category of the session's photo, once tagging has finished."""
    job = session.tag_job if session is not None else None
    if job is None or not job.done() or job.exception() is not None:
        return None
    return getattr(job.result(), "detected_category", None)


def _skip_all() -> SearchOutputs:
    return SearchOutputs(*(gr.skip() for _ in SearchOutputs._fields))
