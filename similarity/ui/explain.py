"""The "Why this match?" panel on the Search tab: heatmaps over the query photo and a result's thumbnail.

Nothing is computed until the user asks: the panel remembers the last result clicked (its own
``gallery.select`` listener, beside the detail view's) and the button runs the engine's ``Explainer``
(patch-token similarity from one extra forward pass; approximate) on the query photo and that result.
"""

from __future__ import annotations

import threading
from typing import Any

import gradio as gr
from PIL import Image

from .. import images
from ..errors import SimilarityError
from ..records import Product
from ..search import SearchService
from . import format as fmt
from .handlers import SearchSession, user_errors

PRIVATE = {"api_visibility": "private"}
HINT = "Search with a photo, then click a result (or keep the top one) and press the button."
APPROXIMATE = (
    "**Approximate.** The model sees each picture as a grid of patches (7 × 7 for ViT-B/32); warmer regions "
    "are patches more similar to the other picture as a whole (CLIP patch tokens against the other image's "
    "embedding). It shows where the model looked, not a proof of why."
)
NO_PHOTO = "“Why this match?” explains photo searches: search with a photo or an image URL first."


class ExplainHandlers:
    """``explainer``: anything with ``explain(query, match) -> (heat, heat)`` and ``overlay(image, heat)``."""

    def __init__(self, service: SearchService, explainer: Any = None) -> None:
        self.service = service
        self._explainer = explainer
        self._lock = threading.Lock()

    @property
    def explainer(self) -> Any:
        with self._lock:  # built on first use, never at start-up
            if self._explainer is None:
                from ..explain import Explainer

                self._explainer = Explainer(self.service.embedder)
            return self._explainer

    def pick(self, evt: gr.SelectData, session: SearchSession | None) -> tuple[str | None, str]:
        """A result was clicked (the detail view opens too): remember it for the button."""
        index = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        ids = session.ids if session is not None else []
        if not isinstance(index, int) or not 0 <= index < len(ids):
            return None, HINT
        return ids[index], f"Explains result #{index + 1}."

    @user_errors
    def explain(
        self, image: Any, url: str | None, session: SearchSession | None, picked: str | None
    ) -> tuple[Image.Image, Image.Image, str]:
        """Heatmaps over the query photo and over the chosen result (the top one if none was clicked)."""
        if session is None or not session.ids:
            raise SimilarityError(HINT)
        product_id = picked if picked in session.ids else session.ids[0]
        match = self._product(product_id)
        query = self._query_image(image, url, session)
        thumb = images.load_image(match.thumbnail).image if match.thumbnail else None
        if thumb is None:
            raise SimilarityError("That product has no picture to explain.")
        query_heat, match_heat = self.explainer.explain(query, thumb)
        rank = session.ids.index(product_id) + 1
        title = fmt.md(fmt.product_title(match))
        caption = f"Query photo and result #{rank}, **{title}**.\n\n{APPROXIMATE}"
        return self.explainer.overlay(query, query_heat), self.explainer.overlay(thumb, match_heat), caption

    def _product(self, product_id: str) -> Product:
        product = next(iter(self.service.store.get([product_id])), None)
        if product is None:
            raise SimilarityError("That product is no longer in the catalog.")
        return product

    def _query_image(self, image: Any, url: str | None, session: SearchSession) -> Image.Image:
        """The photo the search used: the upload, the URL, or the catalog product of "more like this"."""
        query = session.query
        if getattr(session, "crop", None) is not None:  # a region of the photo (the region view)
            return session.crop
        if query.source_id:
            source = self._product(query.source_id)
            if source.thumbnail:
                return images.load_image(source.thumbnail).image
        if "image" not in query.kind:
            raise SimilarityError(NO_PHOTO)
        if image:
            return images.load_image(image).image
        if url and url.strip():
            return images.load_image(images.fetch_url(url.strip(), self.service.url_guard)).image
        raise SimilarityError("The query photo is no longer there; search again.")


def build_explain_panel(handlers: ExplainHandlers, image: Any, url: Any, session: Any, gallery: Any) -> None:
    """The accordion under the results; ``image``, ``url``, ``session`` and ``gallery`` are the Search tab's."""
    with gr.Accordion("Why this match?", open=False, elem_id="why-match"):
        hint = gr.Markdown(HINT, elem_id="why-hint")
        with gr.Row(equal_height=True):
            query_map = gr.Image(label="Your photo", interactive=False, height=260, buttons=[], elem_id="why-query")
            match_map = gr.Image(label="The match", interactive=False, height=260, buttons=[], elem_id="why-match-img")
        caption = gr.Markdown("", elem_id="why-caption")
        button = gr.Button("Explain this match", variant="secondary", elem_id="why-btn")
    picked = gr.State(None)
    gallery.select(handlers.pick, [session], [picked, hint], show_progress="hidden", **PRIVATE)
    button.click(handlers.explain, [image, url, session, picked], [query_map, match_map, caption],
                 concurrency_id="explain", concurrency_limit=1, **PRIVATE)  # fmt: skip
