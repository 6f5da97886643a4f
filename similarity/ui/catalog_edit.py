"""Catalog tab, "Edit or remove": select a product, edit its metadata, remove it, or remove every product
matching the ticked filters. Every write needs the admin token and counts against the same per-client
rate limit as adding products (``CatalogHandlers.limiter``); asking for a confirmation writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import gradio as gr

from ..catalog import AmbiguousIdError, CatalogEditor, ProductEdit
from ..errors import SimilarityError
from ..ratelimit import client_key
from ..records import CATEGORIES, COLORS, Filters, Product
from . import format as fmt
from .catalog import CatalogHandlers
from .handlers import user_errors

PRIVATE = {"api_visibility": "private"}
HINT = "Click a product in the catalog above (or enter its id) to edit or remove it."
READ_ONLY = "Editing is off here: set `SIMILARITY_ADMIN_TOKEN` on the server to allow changes."


class Form(NamedTuple):
    product_id: Any
    name: Any
    brand: Any
    category: Any
    subcategory: Any
    colors: Any
    tags: Any
    price: Any
    description: Any
    status: Any


class EditHandlers:
    def __init__(self, catalog: CatalogHandlers) -> None:
        self.catalog = catalog  # its token check, rate limiter and page size
        service = catalog.service
        self.editor = CatalogEditor(service.store, service.ranker)

    # -- reading (no token) ----------------------------------------------------------------------
    @user_errors
    def select(self, categories: Any, brands: Any, colors: Any, tags: Any, page: float, evt: gr.SelectData) -> Form:
        """The product clicked in the catalog gallery (found again from the page it was on)."""
        filters = _filters(categories, brands, colors, tags)
        listing = self.catalog.service.browse(filters, int(page or 1), self.catalog.page_size)
        index = evt.index if isinstance(evt.index, int) else -1
        if not 0 <= index < len(listing.products):
            raise SimilarityError("That product is no longer on this page; reload the catalog.")
        return _form(listing.products[index], "")

    @user_errors
    def load(self, ref: str | None) -> Form:
        try:
            return _form(self.editor.product(ref or ""), "")
        except AmbiguousIdError as exc:
            raise SimilarityError(f"{exc} Candidates: {', '.join(exc.candidates)}") from None

    # -- writes (token + rate limit) ---------------------------------------------------------------
    def _authorise(self, token: str | None, request: gr.Request | None) -> None:
        self.catalog.limiter.check(client_key(request))  # before the token: wrong guesses are limited too
        self.catalog.check_token(token)

    @user_errors
    def save(
        self,
        ref: str | None,
        name: str | None,
        brand: str | None,
        category: str | None,
        subcategory: str | None,
        colors: Sequence[str] | None,
        tags: str | None,
        price: float | None,
        description: str | None,
        token: str | None,
        request: gr.Request | None = None,
    ) -> Form:
        self._authorise(token, request)
        edit = ProductEdit(
            name=name or "", brand=brand or "", category=category or "other", subcategory=subcategory or "",
            colors=list(colors or ()), tags=tags or "", price="" if price is None else price,
            description=description or "",
        )  # fmt: skip
        product, changed = self.editor.edit(ref or "", edit)
        status = f"Saved: {', '.join(changed)} changed." if changed else "Nothing changed."
        return _form(product, status)

    def ask_remove(self, ref: str | None) -> tuple[Any, str]:
        """Show the confirmation for removing one product (nothing is written)."""
        try:
            product = self.editor.product(ref or "")
        except SimilarityError as exc:
            return gr.update(visible=False), fmt.md(exc)
        title, short = fmt.md(fmt.product_title(product)), fmt.md(product.id[:12])
        question = f"Remove **{title}** (id {short}…)? This cannot be undone."
        return gr.update(visible=True), question

    @user_errors
    def remove(self, ref: str | None, token: str | None, request: gr.Request | None = None) -> tuple[Any, ...]:
        self._authorise(token, request)
        report = self.editor.remove([ref or ""])
        return (gr.update(visible=False), *_cleared(f"Removed {len(report.removed)} product."))

    def ask_remove_matching(self, categories: Any, brands: Any, colors: Any, tags: Any) -> tuple[Any, str, int]:
        """Show the confirmation for removing every product matching the filters, with the count."""
        filters = _filters(categories, brands, colors, tags)
        try:
            count = len(self.editor.matching(filters))
        except SimilarityError as exc:
            return gr.update(visible=False), fmt.md(exc), 0
        if not count:
            return gr.update(visible=False), "No product matches these filters.", 0
        noun = "product" if count == 1 else "products"
        question = f"Remove all **{count}** {noun} matching {_describe(filters)}? This cannot be undone."
        return gr.update(visible=True), question, count

    @user_errors
    def remove_matching(
        self,
        categories: Any,
        brands: Any,
        colors: Any,
        tags: Any,
        expected: float | None,
        token: str | None,
        request: gr.Request | None = None,
    ) -> tuple[Any, ...]:
        self._authorise(token, request)
        report = self.editor.remove_matching(_filters(categories, brands, colors, tags), int(expected or 0))
        noun = "product" if len(report.removed) == 1 else "products"
        return (gr.update(visible=False), *_cleared(f"Removed {len(report.removed)} {noun}."))


def _filters(categories: Any, brands: Any, colors: Any, tags: Any) -> Filters:
    return Filters.of(categories=categories, brands=brands, colors=colors, tags=tags)


def _describe(filters: Filters) -> str:
    labels = {"categories": "category", "brands": "brand", "colors": "colour", "tags": "tag"}
    parts = [
        f"{labels[g]} {' or '.join(fmt.md(v) for v in values)}" for g, values in filters.groups().items() if values
    ]
    return "; ".join(parts)


def _form(p: Product, status: str) -> Form:
    return Form(p.id, p.name, p.brand or "", p.category, p.subcategory, list(p.colors), ", ".join(p.tags),
                p.price, p.description, fmt.md(status) if status else "")  # fmt: skip


def _cleared(status: str) -> Form:
    return Form("", "", "", "other", "", [], "", None, "", status)


def build_edit_panel(handlers: EditHandlers, groups: list, page: Any, gallery: Any, refresh: dict[str, Any]) -> None:
    """The "Edit or remove" accordion; ``refresh`` re-renders the catalog page after a change."""
    writable = handlers.catalog.writable
    with gr.Accordion("Edit or remove", open=False, elem_id="edit-products"):
        gr.Markdown(HINT if writable else READ_ONLY)
        with gr.Column(visible=writable):
            with gr.Row():
                product_id = gr.Textbox(label="Product id (or its first characters)", max_lines=1, scale=4)
                load = gr.Button("Load", size="sm", scale=1)
            with gr.Row():
                name = gr.Textbox(label="Name", max_lines=1)
                brand = gr.Textbox(label="Brand", max_lines=1)
            with gr.Row():
                category = gr.Dropdown(list(CATEGORIES), value="other", label="Category")
                subcategory = gr.Textbox(label="Subcategory", max_lines=1)
                price = gr.Number(label="Price", minimum=0)
            colors = gr.CheckboxGroup(list(COLORS), value=[], label="Colours (at most 3)")
            tags = gr.Textbox(label="Tags (comma-separated)", max_lines=1)
            description = gr.Textbox(label="Description", lines=2)
            token = gr.Textbox(label="Admin token", type="password", max_lines=1)
            with gr.Row():
                save = gr.Button("Save changes", variant="primary")
                remove = gr.Button("Remove this product", variant="stop")
                remove_all = gr.Button("Remove all matching the filters…", variant="stop")
            status = gr.Markdown(elem_id="edit-status")
            with gr.Row(visible=False) as confirm_one:
                yes_one = gr.Button("Yes, remove it", variant="stop")
                no_one = gr.Button("Cancel")
            with gr.Row(visible=False) as confirm_all:
                yes_all = gr.Button("Yes, remove them all", variant="stop")
                no_all = gr.Button("Cancel")
            expected = gr.State(0)
    form = [product_id, name, brand, category, subcategory, colors, tags, price, description, status]
    gallery.select(handlers.select, [*groups, page], form, **PRIVATE)
    gr.on([load.click, product_id.submit], handlers.load, [product_id], form, **PRIVATE)
    writes = {"concurrency_id": "ingest", "concurrency_limit": 1, **PRIVATE}  # one catalog write at a time
    saved = save.click(handlers.save, [*form[:-1], token], form, **writes)
    saved.success(**refresh)
    remove.click(handlers.ask_remove, [product_id], [confirm_one, status], **PRIVATE)
    no_one.click(lambda: gr.update(visible=False), outputs=confirm_one, **PRIVATE)
    removed = yes_one.click(handlers.remove, [product_id, token], [confirm_one, *form], **writes)
    removed.success(**refresh)
    remove_all.click(handlers.ask_remove_matching, groups, [confirm_all, status, expected], **PRIVATE)
    no_all.click(lambda: gr.update(visible=False), outputs=confirm_all, **PRIVATE)
    removed_all = yes_all.click(handlers.remove_matching, [*groups, expected, token], [confirm_all, *form], **writes)
    removed_all.success(**refresh)
