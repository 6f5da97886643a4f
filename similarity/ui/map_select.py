"""Map tab, selections: the products picked on the map (lasso, box, clicks, a cluster's name) as a gallery
with counts per category and brand, and bulk actions on them: export CSV/JSON, "More like these" (the mean
of the selection, ranked through ``RankArgs.rank``), save all (signed in), and set category or brand or
remove (admin token, count confirmation, the catalog's write rate limit).

The browser sends the selection as the custom event ``map_select`` (``{"key", "mask"}``: bits over the
drawn points of one layout version, see ``map_data.MapSnapshot.selected_ids``).
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr

from ..accounts import user_key
from ..catalog import CatalogEditor, ProductEdit
from ..errors import LimitError, SimilarityError
from ..ratelimit import client_key
from ..records import CATEGORIES, Product
from ..saved import SavedProducts, csv_text
from . import format as fmt
from .catalog import CatalogHandlers
from .handlers import user_errors
from .map import MapHandlers
from .ranking import RankArgs

PRIVATE = {"api_visibility": "private"}
SHOWN = 48  # thumbnails in the selection's gallery
MAX_BULK = 10_000  # products one bulk edit may change
FIELDS = ("id", "name", "category", "subcategory", "brand", "colors", "tags", "price", "x", "y")
STALE = "The map was redrawn since this selection; select again."


class Selection(NamedTuple):
    ids: Any  # gr.State
    summary: Any
    gallery: Any
    panel: Any


class SelectionHandlers:
    def __init__(self, maps: MapHandlers, catalog: CatalogHandlers) -> None:
        self.maps = maps
        self.catalog = catalog  # its token check, rate limiter and files
        self.service = maps.service

    # -- reading --------------------------------------------------------------------------------
    def select(self, evt: gr.EventData) -> Selection:
        """The browser's selection: its ids, counts per category and brand, and a gallery of the first ones."""
        data = getattr(evt, "_data", None)
        snap = self.maps.snapshot()
        if not isinstance(data, dict) or snap is None or data.get("key") != snap.key:
            return Selection([], STALE, [], gr.update(visible=True))
        ids = snap.selected_ids(str(data.get("mask") or ""))
        return self.view(ids)

    def view(self, ids: list[str]) -> Selection:
        if not ids:
            return Selection([], "", [], gr.update(visible=False))
        products = self._products(ids)
        gallery = [(self.catalog.files.thumbnail(p), fmt.caption(p)) for p in products[:SHOWN]]
        return Selection([p.id for p in products], summary(products), gallery, gr.update(visible=True))

    def _products(self, ids: list[str]) -> list[Product]:
        found: list[Product] = []
        for start in range(0, len(ids), 5000):
            found += self.service.store.get(ids[start : start + 5000], thumbnails=len(found) < SHOWN)
        return found

    @user_errors
    def export(self, ids: list[str] | None) -> tuple[Any, Any]:
        """CSV and JSON files of the selection (metadata and map coordinates)."""
        products = self._products(list(ids or ()))
        if not products:
            raise SimilarityError("Select products on the map first.")
        coords = self.maps.catalog_map.coordinates([p.id for p in products]) if self.maps.catalog_map else {}
        rows = [_row(p, coords.get(p.id)) for p in products]
        folder = Path(self.catalog.files.export_json({"products": rows}, "map-selection.json")).parent
        (folder / "map-selection.csv").write_text(export_csv(rows), encoding="utf-8")
        return (gr.update(value=str(folder / "map-selection.csv"), interactive=True),
                gr.update(value=str(folder / "map-selection.json"), interactive=True))  # fmt: skip

    @user_errors
    def more_like_these(self, ids: list[str] | None, sent: str, *ranking: Any) -> tuple[Any, Any, str]:
        """Rank the mean of the selection (the selection itself left out): results and the map overlay."""
        if not ids:
            raise SimilarityError("Select products on the map first.")
        args, _ = RankArgs.from_inputs(ranking)
        query = dataclasses.replace(self.service.saved_query(ids), kind="selection")
        result = args.rank(self.service, query)
        gallery = [(self.catalog.files.thumbnail(m.product), fmt.caption(m.product, m.score)) for m in result.matches]
        snap = self.maps.snapshot() if sent else None
        chart = gr.skip() if snap is None else json.dumps({"overlay": self.maps.overlay(snap, query, args, result)})
        line = f"{len(result.matches)} products like the {len(ids)} selected, numbered on the map by rank."
        return gr.update(value=gallery, visible=True), chart, line

    # -- writes ---------------------------------------------------------------------------------
    @user_errors
    def save_all(self, ids: list[str] | None, profile: gr.OAuthProfile | None, request: gr.Request) -> str:
        user = user_key(request, profile)
        if user is None:
            raise SimilarityError("Sign in to save a selection (guests can save products one by one).")
        if not ids:
            raise SimilarityError("Select products on the map first.")
        saved, new = SavedProducts(self.service.store), 0
        try:
            for product_id in ids:
                new += saved.save(user, product_id)
        except LimitError as exc:
            return f"Saved {new} new products, then stopped: {fmt.md(exc)}"
        return f"Saved {new} new products ({len(ids) - new} were saved already)."

    def ask(self, ids: list[str] | None, action: str, value: str | None) -> tuple[Any, str, int]:
        """The count confirmation for a bulk edit or removal (nothing is written)."""
        count = len(ids or ())
        if not count:
            return gr.update(visible=False), "Select products on the map first.", 0
        noun = "product" if count == 1 else "products"
        if action == "remove":
            return gr.update(visible=True), f"Remove all **{count}** selected {noun}? This cannot be undone.", count
        if not (value or "").strip():
            return gr.update(visible=False), f"Give the new {action} first.", 0
        question = f"Set the {action} of **{count}** selected {noun} to **{fmt.md(value.strip())}**?"
        return gr.update(visible=True), question, count

    @user_errors
    def apply(
        self,
        ids: list[str] | None,
        action: str,
        value: str | None,
        expected: float | None,
        token: str | None,
        request: gr.Request | None = None,
    ) -> tuple[Any, str]:
        self.catalog.limiter.check(client_key(request))  # before the token: wrong guesses are limited too
        self.catalog.check_token(token)
        ids = list(ids or ())
        if not ids or len(ids) != int(expected or 0):
            raise SimilarityError(f"The selection has {len(ids)} products, not the {int(expected or 0)} you confirmed.")
        if len(ids) > MAX_BULK:
            raise SimilarityError(f"Change at most {MAX_BULK:,} products at a time.")
        present = self.service.store.existing(ids)
        if action == "remove":
            self.service.store.delete(sorted(present))
            return gr.update(visible=False), _done("Removed", len(present), len(ids))
        edit = ProductEdit(category=value.strip()) if action == "category" else ProductEdit(brand=(value or "").strip())
        editor, changed = CatalogEditor(self.service.store), 0
        for product_id in sorted(present):
            changed += bool(editor.edit(product_id, edit)[1])
        return gr.update(visible=False), _done(f"Set the {action} of", changed, len(ids))


def _done(verb: str, count: int, selected: int) -> str:
    gone = f" ({selected - count} were already gone or unchanged)" if count < selected else ""
    return f"{verb} {count} products{gone}. The map redraws once its layout has caught up."


def summary(products: list[Product]) -> str:
    """``N selected`` and the counts per category and brand, largest first."""

    def line(counter: Counter) -> str:
        return " · ".join(f"{fmt.md(k)} {v}" for k, v in counter.most_common(12))

    categories = Counter(p.category for p in products)
    brands = Counter(p.brand or "no brand" for p in products)
    return f"**{len(products)} selected**\n\nCategories: {line(categories)}\n\nBrands: {line(brands)}"


def _row(p: Product, xy: tuple[float, float] | None) -> dict[str, Any]:
    row = {k: v for k, v in p.metadata().items() if k in FIELDS}
    return {**{k: row.get(k) for k in FIELDS}, "id": p.id, "x": xy[0] if xy else None, "y": xy[1] if xy else None}


def export_csv(rows: list[dict[str, Any]]) -> str:
    return csv_text(FIELDS, rows)


def build_selection_panel(handlers: SelectionHandlers, chart: Any, sent: Any, ranking: list[Any]) -> None:
    """The selection panel under the map; ``chart`` sends ``map_select`` and takes the overlay back."""
    with gr.Column(visible=False, elem_id="map-selection") as panel:
        summary_md = gr.Markdown(elem_id="map-selection-summary")
        gallery = gr.Gallery(show_label=False, columns=8, height="auto", object_fit="contain", allow_preview=False,
                             buttons=[], elem_id="map-selection-gallery")  # fmt: skip
        with gr.Row():
            export = gr.Button("Export CSV + JSON", size="sm", elem_id="map-export")
            csv_file = gr.DownloadButton("Download CSV", size="sm", interactive=False, elem_id="map-csv")
            json_file = gr.DownloadButton("Download JSON", size="sm", interactive=False, elem_id="map-json")
            more = gr.Button("More like these", size="sm", variant="primary", elem_id="map-more-these")
            save = gr.Button("Save all", size="sm", elem_id="map-save-all")
        status = gr.Markdown(elem_id="map-selection-status")
        results = gr.Gallery(show_label=False, columns=6, height="auto", object_fit="contain", allow_preview=False,
                             buttons=[], visible=False, elem_id="map-these")  # fmt: skip
        with gr.Accordion("Edit the selection (admin)", open=False):
            with gr.Row():
                category = gr.Dropdown(["", *CATEGORIES], value="", label="New category")
                brand = gr.Textbox(label="New brand", max_lines=1)
            token = gr.Textbox(label="Admin token", type="password", max_lines=1)
            with gr.Row():
                set_category = gr.Button("Set category…", size="sm")
                set_brand = gr.Button("Set brand…", size="sm")
                remove = gr.Button("Remove selected…", size="sm", variant="stop")
            with gr.Row(visible=False) as confirm:
                yes = gr.Button("Yes, do it", variant="stop", elem_id="map-selection-yes")
                no = gr.Button("Cancel")
    ids, action, value, expected = gr.State([]), gr.State(""), gr.State(""), gr.State(0)
    chart.map_select(handlers.select, None, [ids, summary_md, gallery, panel], **PRIVATE)
    export.click(handlers.export, [ids], [csv_file, json_file], **PRIVATE)
    more.click(handlers.more_like_these, [ids, sent, *ranking], [results, chart, status], **PRIVATE)
    save.click(handlers.save_all, [ids], [status], **PRIVATE)
    for button, name, source in ((set_category, "category", category), (set_brand, "brand", brand)):
        button.click(lambda v, n=name: (n, v or ""), [source], [action, value], **PRIVATE).then(
            handlers.ask, [ids, action, value], [confirm, status, expected], **PRIVATE
        )
    remove.click(lambda: ("remove", ""), None, [action, value], **PRIVATE).then(
        handlers.ask, [ids, action, value], [confirm, status, expected], **PRIVATE
    )
    no.click(lambda: gr.update(visible=False), outputs=confirm, **PRIVATE)
    writes = {"concurrency_id": "ingest", "concurrency_limit": 1, **PRIVATE}
    yes.click(handlers.apply, [ids, action, value, expected, token], [confirm, status], **writes)
