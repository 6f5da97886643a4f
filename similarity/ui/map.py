"""The Map tab: the catalog's embedding layout as an interactive scatter, with the last search placed on it.

The scatter runs in the browser (Apache ECharts on a canvas, ``static/map_view.js``); these handlers
send it the drawn points once per layout version (``map_data``), then small overlays: the query's
position (``CatalogMap.place``, the similarity-weighted mean of its top matches), its ranked matches and
the points the active filters leave out. A click on a point comes back as the custom event
``point_click`` and shows the product's card, whose **More like this** ranks that product's neighbours.
"""

from __future__ import annotations

import collections
import dataclasses
import html
import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from ..errors import SimilarityError
from ..records import Filters, SearchResult
from ..search import Query, SearchService
from . import format as fmt
from .files import UiFiles
from .handlers import SearchSession, user_errors
from .map_data import MapSnapshot, build_snapshot, snapshot_key
from .map_html import CARD_CSS, CARD_HINT, CSS, TEMPLATE, product_card, tip
from .ranking import RankArgs

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
LIBRARY = STATIC / "echarts" / "echarts.min.js"  # Apache ECharts 6.1.0 (Apache-2.0), vendored from npm
POLL_S = 5.0  # while the PCA preview is shown, check this often whether the real layout is ready
NO_MAP = "There is no map for this catalog (the layout service is not configured)."
EMPTY = "The catalog is empty: add products to see the map."
GONE = "That point is no longer on the map; it has been redrawn."


@dataclasses.dataclass
class MapFocus:
    """What the map shows as the query when it came from the Map tab itself ("More like this")."""

    query: Query
    ids: list[str]


class MapHandlers:
    """Map-tab handlers over the SearchService and a ``CatalogMap`` (a fake one in tests)."""

    def __init__(self, service: SearchService, files: UiFiles, catalog_map: Any = None) -> None:
        self.service = service
        self.files = files
        self.catalog_map = catalog_map if catalog_map is not None else getattr(service, "catalog_map", None)
        self._snapshot: MapSnapshot | None = None
        self._lock = threading.Lock()
        self._masks: collections.OrderedDict[tuple[str, Filters], str] = collections.OrderedDict()

    # -- data ------------------------------------------------------------------------------
    def snapshot(self) -> MapSnapshot | None:
        """The drawn points of the current layout (rebuilt once per layout version, shared by all sessions)."""
        if self.catalog_map is None:
            return None
        head = self.catalog_map.points(0, 0)
        key = snapshot_key(head)
        with self._lock:
            if self._snapshot is None or self._snapshot.key != key:
                self._snapshot = build_snapshot(self.catalog_map.points)
                self._masks.clear()
            return self._snapshot

    def overlay(
        self, snap: MapSnapshot, query: Query | None, args: RankArgs, result: SearchResult | None = None
    ) -> dict[str, Any]:
        """The query marker, its ranked matches and the filter mask, for the browser."""
        dim = self._mask(snap, args.filters) if args.filters else None
        out: dict[str, Any] = {"key": snap.key, "query": None, "matches": [], "dim": dim}
        if query is None or not snap.total:
            return out
        if result is None:
            result = args.rank(self.service, query)
        ids = [m.product.id for m in result.matches]
        coords = self.catalog_map.coordinates(ids)
        for m in result.matches:
            if m.product.id in coords:
                x, y = coords[m.product.id]
                label = tip(m.product, f"#{m.rank} · {m.score:.2f}")
                out["matches"].append({"x": x, "y": y, "rank": m.rank, "id": m.product.id, "label": label})
        source = self.catalog_map.coordinates([query.source_id]).get(query.source_id) if query.source_id else None
        if source is not None:  # "more like this": the query is the product itself (as in the API's "map")
            out["source"] = {"x": source[0], "y": source[1]}
        placed = source or (self.catalog_map.place(ids, [m.score for m in result.matches]) if ids else None)
        if placed is not None:
            out["query"] = {"x": float(placed[0]), "y": float(placed[1]), "label": self._query_label(query)}
        return out

    def _mask(self, snap: MapSnapshot, filters: Filters) -> str:
        """Which drawn points pass ``filters`` (the ranker decides, so the map dims what a search leaves out)."""
        key = (snap.key, filters)
        with self._lock:
            if key in self._masks:
                self._masks.move_to_end(key)
                return self._masks[key]
        passing = self.service.ranker.browse(filters, 0, max(snap.total, 1))[0]
        mask = snap.mask_payload(passing)
        with self._lock:
            self._masks[key] = mask
            while len(self._masks) > 16:
                self._masks.popitem(last=False)
        return mask

    def _query_label(self, query: Query) -> str:
        if query.source_id:
            product = next(iter(self.service.store.get([query.source_id], thumbnails=False)), None)
            name = fmt.product_title(product) if product else "a catalog product"
            return f"<b>Query:</b> like {html.escape(name)}"
        what = {"image": "your photo", "text": "your description"}.get(query.kind, "your photo and description")
        extra = f" “{html.escape(query.text)}”" if query.text else ""
        return f"<b>Query:</b> {what}{extra}<br><small>placed at the weighted mean of its top matches</small>"

    # -- events ----------------------------------------------------------------------------
    @user_errors
    def open_map(self, session: SearchSession | None, focus: MapFocus | None, sent: str, *ranking: Any) -> tuple:
        """The tab was opened (or the poll timer ticked): send the points if this browser lacks them."""
        snap = self.snapshot()
        if snap is None:
            return "", NO_MAP, "", gr.Timer(active=False)
        status = getattr(self.catalog_map, "status", "ready")
        note = self.note(snap, status)
        polling = gr.Timer(active=status == "preview")
        args, _ = RankArgs.from_inputs(ranking)
        message: dict[str, Any] = {"overlay": self.overlay(snap, _query_of(session, focus), args)}
        if sent != snap.key:
            message["points"] = snap.payload()
        return json.dumps(message), note, snap.key, polling

    @user_errors
    def poll(self, session: SearchSession | None, focus: MapFocus | None, sent: str, *ranking: Any) -> tuple:
        """Timer tick: redraw only when the layout changed (e.g. the PCA preview became the real layout)."""
        snap = self.snapshot()
        if snap is not None and snap.key == sent:
            status = getattr(self.catalog_map, "status", "ready")
            return gr.skip(), self.note(snap, status), gr.skip(), gr.Timer(active=status == "preview")
        return self.open_map(session, focus, sent, *ranking)

    def follow_search(self, session: SearchSession | None, sent: str, *ranking: Any) -> tuple[Any, None]:
        """A search ran on the Search tab: the map now shows that query (and forgets its own)."""
        return self.refresh(session, None, sent, *ranking), None

    def refresh(self, session: SearchSession | None, focus: MapFocus | None, sent: str, *ranking: Any) -> Any:
        """Filters or sliders changed: a new overlay for the same query (the points stay).

        It follows every search, so a map problem is logged, never shown: the Search tab reports its own."""
        try:
            snap = self.snapshot() if sent else None
            if snap is None or snap.key != sent:
                return gr.skip()  # not drawn in this browser yet: opening the tab sends everything
            args, _ = RankArgs.from_inputs(ranking)
            return json.dumps({"overlay": self.overlay(snap, _query_of(session, focus), args)})
        except SimilarityError as exc:
            log.warning("map overlay not updated: %s", exc)
            return gr.skip()

    @user_errors
    def show_card(self, evt: gr.EventData) -> tuple[str, Any, str | None]:
        """A point was clicked (``{"key", "index"}``, or ``{"id"}`` for a highlighted match): its card."""
        product_id = self.resolve(getattr(evt, "_data", None))
        product = next(iter(self.service.store.get([product_id]) if product_id else ()), None)
        if product is None:
            raise SimilarityError(GONE)
        return product_card(product), gr.update(visible=True), product.id

    def resolve(self, data: Any) -> str | None:
        """A product id from what the browser sent (None: unknown or stale point)."""
        if not isinstance(data, dict):
            return None
        if isinstance(data.get("id"), str):
            return data["id"][:200]
        snap, index = self.snapshot(), data.get("index")
        if snap is None or data.get("key") != snap.key or not isinstance(index, int) or not 0 <= index < len(snap.ids):
            return None
        return snap.ids[index]

    def hover_card(self, data: Any) -> str:
        """The hover card of a drawn point (called from the browser; never raises)."""
        try:
            product_id = self.resolve(data)
            product = next(iter(self.service.store.get([product_id])), None) if product_id else None
        except SimilarityError:
            return ""
        return tip(product, product.category, thumbnail=True) if product else ""

    @user_errors
    def more_like_this(self, product_id: str | None, sent: str, *ranking: Any) -> tuple[Any, Any, Any, MapFocus]:
        """Rank the clicked product's neighbours: results under its card, and ranked on the map."""
        if not product_id:
            raise SimilarityError("Click a point on the map first.")
        args, _ = RankArgs.from_inputs(ranking)
        query = self.service.product_query(product_id)
        result = args.rank(self.service, query)
        gallery = [(self.files.thumbnail(m.product), fmt.caption(m.product, m.score)) for m in result.matches]
        snap = self.snapshot() if sent else None
        chart = gr.skip() if snap is None else json.dumps({"overlay": self.overlay(snap, query, args, result)})
        focus = MapFocus(query, [m.product.id for m in result.matches])
        return gr.update(value=gallery, visible=True), chart, _results_line(result), focus

    @user_errors
    def pick_result(self, focus: MapFocus | None, evt: gr.SelectData) -> tuple[str, Any, str | None]:
        """A result under the card was clicked: that product's card (its own "More like this" follows)."""
        index = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        if focus is None or not isinstance(index, int) or not 0 <= index < len(focus.ids):
            raise SimilarityError("That result is no longer shown.")
        product = next(iter(self.service.store.get([focus.ids[index]])), None)
        if product is None:
            raise SimilarityError("That product is no longer in the catalog.")
        return product_card(product), gr.update(visible=True), product.id

    @staticmethod
    def note(snap: MapSnapshot, status: str) -> str:
        """The line above the map: the engine's note (method and counts), else a default; preview status."""
        if not snap.total:
            return EMPTY
        method = {"pca-preview": "PCA preview", "pca": "PCA"}.get(snap.method, snap.method.upper() or "Layout")
        text = fmt.md(snap.note) if snap.note else f"**{fmt.md(method)}** layout of {snap.total:,} products."
        return f"{text} The final layout is computing; the map updates by itself." if status == "preview" else text


def _query_of(session: SearchSession | None, focus: MapFocus | None) -> Query | None:
    if focus is not None:
        return focus.query
    return session.query if session is not None else None


def _results_line(result: SearchResult) -> str:
    count = len(result.matches)
    return f"{count} similar product{'s' if count != 1 else ''}, numbered on the map by rank."


def build_map_tab(handlers: MapHandlers, tab: gr.Tab, session: gr.State, ranking: Sequence[Any]) -> tuple[Any, Any]:
    """The tab's components and events; ``session`` and ``ranking`` (RANK_INPUTS order) are the Search tab's.
    Returns the chart and the state naming the layout drawn in this browser (for the selection panel)."""
    gr.set_static_paths([LIBRARY.parent])  # the vendored chart library, served by the app itself
    script = "\n".join((STATIC / name).read_text(encoding="utf-8") for name in ("map_view.js", "map_select.js"))
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=360):
            note = gr.Markdown("", elem_id="map-note")
            chart = gr.HTML(
                "", html_template=TEMPLATE.format(lib=html.escape(str(LIBRARY))), css_template=CSS,
                js_on_load=script, server_functions=[_server_hover(handlers)], elem_id="map-view",
            )  # fmt: skip
        with gr.Column(scale=1, min_width=260):
            card = gr.HTML(CARD_HINT, css_template=CARD_CSS, elem_id="map-card")
            more = gr.Button("More like this", variant="primary", visible=False, elem_id="map-more")
            found = gr.Markdown("", elem_id="map-found")
            results = gr.Gallery(show_label=False, columns=2, height="auto", object_fit="contain", allow_preview=False,
                                 buttons=[], visible=False, elem_id="map-results")  # fmt: skip
    sent, focus, picked = gr.State(""), gr.State(None), gr.State(None)
    timer = gr.Timer(POLL_S, active=False)
    private = {"api_visibility": "private"}
    opened = {"inputs": [session, focus, sent, *ranking], "outputs": [chart, note, sent, timer], **private}
    tab.select(handlers.open_map, **opened)
    timer.tick(handlers.poll, **opened, show_progress="hidden")
    session.change(handlers.follow_search, [session, sent, *ranking], [chart, focus], show_progress="hidden", **private)
    changed = [c.change for c in ranking]  # filter ticks, top-k and minimum score
    gr.on(changed, handlers.refresh, [session, focus, sent, *ranking], chart, show_progress="hidden",
          trigger_mode="always_last", **private)  # fmt: skip
    chart.point_click(handlers.show_card, None, [card, more, picked], **private)
    more.click(handlers.more_like_this, [picked, sent, *ranking], [results, chart, found, focus], **private)
    results.select(handlers.pick_result, [focus], [card, more, picked], **private)
    return chart, sent


def _server_hover(handlers: MapHandlers) -> Any:
    def hover_card(data: Any) -> str:  # a plain function: Gradio marks it as a server function
        return handlers.hover_card(data)

    return hover_card
