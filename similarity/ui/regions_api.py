"""The ``/search_regions`` endpoint (and MCP tool): every product in a photo, each with its own matches."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..errors import SimilarityError
from ..regions.search import RegionSearch
from ..search import DEFAULT_TOP_K, SearchService
from ..steering import Steering
from .api import for_caller, steer_args
from .files import UiFiles
from .handlers import user_errors
from .ranking import RankArgs
from .thumbs import DEFAULT_THUMBNAILS, ThumbnailLinks


class RegionsApi:
    def __init__(self, service: SearchService, files: UiFiles | None = None, regions: RegionSearch | None = None):
        self.regions = regions or RegionSearch(service)
        self.thumbs = ThumbnailLinks(files or UiFiles())

    @user_errors
    def search_regions(
        self,
        image: str | None = None,
        url: str | None = None,
        text: str | None = None,
        text_weight: float = 0.5,
        box: str | None = None,
        top_k: int = DEFAULT_TOP_K,
        min_score: float | None = None,
        categories: list[str] | None = None,
        brands: list[str] | None = None,
        colors: list[str] | None = None,
        tags: list[str] | None = None,
        thumbnails: str = DEFAULT_THUMBNAILS,
        more: list[str] | None = None,
        less: list[str] | None = None,
        liked: list[str] | None = None,
        disliked: list[str] | None = None,
        price_min: float | None = None,
        price_max: float | None = None,
        sort: str = "relevance",
        within_best: float | None = None,
        collapse_duplicates: bool = False,
        request: gr.Request | None = None,
    ) -> Any:
        """Find every product in a photo (two bags on a table, an outfit) and the catalog's matches for each one.

        Args:
            image: the photo, a file (MCP: a data:image/...;base64 URL); JPEG, PNG, WebP, GIF, BMP or TIFF, up to 10 MB.
            url: an http(s) image URL the app fetches (public addresses only), used when no image is given.
            text: optional words that refine every region's query, e.g. "leather".
            text_weight: how much the text counts against the photo, 0 to 1.
            box: search only this part of the photo: "x0,y0,x1,y1" in the photo's pixels (empty: find the products).
            top_k: how many products to return per region and for the whole photo (1 to 100).
            min_score: leave out products whose cosine similarity is below this.
            categories: keep only these categories, e.g. ["shoes"].
            brands: keep only these brands.
            colors: keep only products with one of these colours.
            tags: keep only products with one of these tags.
            thumbnails: "url" (default; a link to a small JPEG on this app), "data" (inline base64) or "none".
            more: texts to get more of in every region, e.g. ["leather"].
            less: texts to get less of, e.g. ["red"].
            liked: ids (or unique id prefixes) of products to get more like.
            disliked: ids of products to leave out and get less like.
            price_min: keep only products priced at least this (products without a price are left out).
            price_max: keep only products priced at most this.
            sort: "relevance" (default), "price_asc", "price_desc" or "newest"; reorders only the relevant results.
            within_best: keep only products scoring within this of the best match, e.g. 0.05.
            collapse_duplicates: fold near-identical results into the better-ranked one.
        Returns:
            an object; "regions": the products found in the photo (at most 8; none for a one-product photo), each
            with "box" [x0, y0, x1, y1] in the photo's pixels, "source" (gemini, auto or user), "label",
            "confidence", "score" (its best match's cosine similarity) and "matches" (as below)
            "matches": the whole photo's most similar products, best first, each with id, name, category, brand
            colors, tags, price, description, "score" and "thumbnail"; "facets"; "timings_ms"; "model"
            "note": says when no separate products were found
        """
        if not image and not (url or "").strip():
            raise SimilarityError("Give a photo (image) or an image URL (url) to search its regions.")
        args = RankArgs.of(top_k, min_score, categories, brands, colors, tags, *steer_args(locals()))
        links = self.thumbs.for_request(thumbnails, request)
        steering = Steering.of(more, less, liked, disliked)
        prepared = self.regions.prepare(
            image or None, url=url, text=text, text_weight=float(text_weight), box=(box or "").strip() or None,
            steering=steering,
        )  # fmt: skip
        return for_caller(self.regions.rank(prepared, args).to_dict(thumbnails=links), request)


def wire_regions_api(api: RegionsApi, trigger: Any, inputs: list, common: list, result: Any) -> None:
    """``/search_regions`` on the hidden API components (``inputs``: image, url, text, text_weight;
    ``common``: the ranking arguments, thumbnails and steering); the box gets its own hidden textbox."""
    box = gr.Textbox(label="box", visible=False)
    trigger.click(api.search_regions, [*inputs, box, *common], result, api_name="search_regions",
                  concurrency_id="search")  # fmt: skip
