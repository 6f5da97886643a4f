"""The result detail view on the Search tab: a click on a result opens it, with a larger image, the
product's details and score, and the actions **Save** / **Saved ✓** and **More like this**."""

from __future__ import annotations

import html
from typing import Any, NamedTuple

import gradio as gr

from ..accounts import user_key
from ..errors import SimilarityError
from ..records import Product
from ..saved import SavedProducts
from .files import UiFiles
from .format import product_title
from .handlers import user_errors

SAVE, SAVED = "Save", "Saved ✓"


class DetailOutputs(NamedTuple):
    panel: Any
    image: Any
    info: Any
    save: Any
    selected: Any


class DetailHandlers:
    def __init__(self, saved: SavedProducts, files: UiFiles) -> None:
        self.saved, self.files = saved, files

    @user_errors
    def open(
        self, evt: gr.SelectData, session: Any, browser: Any, profile: gr.OAuthProfile | None, request: gr.Request
    ) -> DetailOutputs:
        """A result was clicked: show it in the detail view (its Save button says whether it is saved)."""
        index = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        ids = getattr(session, "ids", None) or []
        if not isinstance(index, int) or not 0 <= index < len(ids):
            raise SimilarityError("That result is no longer shown; search again.")
        product = next(iter(self.saved.store.get([ids[index]])), None)
        if product is None:
            raise SimilarityError("That product is no longer in the catalog.")
        scores = getattr(session, "scores", None) or []
        score = scores[index] if index < len(scores) else None
        saved = self._is_saved(product.id, browser, user_key(request, profile))
        image = self.files.thumbnail(product)
        return DetailOutputs(gr.update(visible=True), image, detail_html(product, score), _label(saved), product.id)

    @user_errors
    def toggle_save(
        self, product_id: str | None, browser: Any, profile: gr.OAuthProfile | None, request: gr.Request
    ) -> tuple[Any, Any]:
        """Save the shown product, or remove it when it is saved already. Returns (button, browser list)."""
        if not product_id:
            raise SimilarityError("Open a result first.")
        user = user_key(request, profile)
        if user is None:  # a guest: the list lives in this browser
            if product_id in (browser or []):
                return _label(False), self.saved.unsave_in_browser(browser, product_id)
            return _label(True), self.saved.save_in_browser(browser, product_id)
        if product_id in self.saved.saved_ids(user):
            self.saved.unsave(user, product_id)
            return _label(False), gr.skip()
        self.saved.save(user, product_id)
        return _label(True), gr.skip()

    def close(self) -> tuple[Any, Any]:
        return gr.update(visible=False), None

    def _is_saved(self, product_id: str, browser: Any, user: str | None) -> bool:
        if user is None:
            return product_id in (browser if isinstance(browser, list) else [])
        return product_id in self.saved.saved_ids(user)


def _label(saved: bool) -> Any:
    return gr.update(value=SAVED if saved else SAVE, variant="secondary" if saved else "primary")


def detail_html(product: Product, score: float | None = None) -> str:
    """Name, brand, category, colours, price and score; every value escaped."""
    rows = [
        ("Brand", product.brand or ""),
        ("Category", " / ".join(v for v in (product.category, product.subcategory) if v)),
        ("Colours", ", ".join(product.colors)),
        ("Price", f"{product.price:,.2f}" if product.price is not None else ""),
        ("Similarity", f"{score:.3f}" if score is not None else ""),
        ("Tags", ", ".join(product.tags)),
    ]
    cells = "".join(f"<dt>{label}</dt><dd>{html.escape(value)}</dd>" for label, value in rows if value)
    about = f"<p>{html.escape(product.description)}</p>" if product.description else ""
    title = html.escape(product_title(product))
    return f'<div class="detail-card"><h3>{title}</h3><dl>{cells}</dl>{about}</div>'


class DetailView(NamedTuple):
    panel: Any
    image: Any
    info: Any
    save: Any
    more: Any
    close: Any
    selected: Any
    like: Any  # 👍 / 👎: steering chips (ui/steer.py wires them)
    dislike: Any


def detail_view() -> DetailView:
    """The detail view's components (hidden until a result is clicked); place it above the results."""
    with gr.Group(visible=False, elem_id="result-detail") as panel, gr.Row(equal_height=False):
        image = gr.Image(show_label=False, interactive=False, height=260, scale=1, min_width=200,
                         buttons=[], elem_id="detail-image")  # fmt: skip
        with gr.Column(scale=2, min_width=240):
            info = gr.HTML(elem_id="detail-info")
            with gr.Row():
                save = gr.Button(SAVE, variant="primary", elem_id="detail-save")
                more = gr.Button("More like this", variant="secondary", elem_id="detail-more")
                like = gr.Button("👍", size="sm", scale=0, min_width=44, elem_id="detail-like")
                dislike = gr.Button("👎", size="sm", scale=0, min_width=44, elem_id="detail-dislike")
                close = gr.Button("Close", size="sm", scale=0, elem_id="detail-close")
    return DetailView(panel, image, info, save, more, close, gr.State(None), like, dislike)


def wire_detail(
    view: DetailView,
    handlers: DetailHandlers,
    gallery: Any,
    similar: Any,
    ranking: list,
    session: Any,
    browser: Any,
    outputs: list,
) -> Any:
    """A result click opens the detail view; More like this searches from it (ranked like the page) and
    closes it; Save toggles the product in the user's (or this browser's) saved list. Returns the More like
    this event."""
    private = {"api_visibility": "private"}
    shown = [view.panel, view.image, view.info, view.save, view.selected]
    gallery.select(handlers.open, [session, browser], shown, **private)
    searched = view.more.click(similar, [view.selected, *ranking, session], outputs, concurrency_id="search", **private)
    searched.success(handlers.close, outputs=[view.panel, view.selected], **private)
    view.save.click(handlers.toggle_save, [view.selected, browser], [view.save, browser], **private)
    view.close.click(handlers.close, outputs=[view.panel, view.selected], **private)
    return searched
