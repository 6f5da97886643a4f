"""The public HTTP API: named endpoints ``/search_image``, ``/search_text`` and ``/similar_to``.

Each returns the documented JSON contract (``SearchResult.to_dict``): matches with id, name, category,
brand, colors, tags, score and a thumbnail (a link the app serves by default; see ``thumbs``), plus
facets and timings. Parameter names are the keyword names clients use (``gradio_client``, MCP tools),
and the docstrings are the MCP tools' descriptions.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..errors import SimilarityError
from ..records import Thumbnails
from ..search import DEFAULT_TOP_K, Query, SearchService
from .files import UiFiles
from .handlers import user_errors
from .ranking import RankArgs
from .thumbs import DEFAULT_THUMBNAILS, ThumbnailLinks


class SearchApi:
    def __init__(self, service: SearchService, files: UiFiles | None = None) -> None:
        self.service = service
        self.thumbs = ThumbnailLinks(files or UiFiles())

    @user_errors
    def search_image(
        self,
        image: str | None = None,
        url: str | None = None,
        text: str | None = None,
        text_weight: float = 0.5,
        top_k: int = DEFAULT_TOP_K,
        min_score: float | None = None,
        categories: list[str] | None = None,
        brands: list[str] | None = None,
        colors: list[str] | None = None,
        tags: list[str] | None = None,
        thumbnails: str = DEFAULT_THUMBNAILS,
        request: gr.Request | None = None,
    ) -> dict[str, Any]:
        """Find catalog products that look like a photo.

        Args:
            image: the photo (a file; JPEG, PNG, WebP, GIF, BMP or TIFF, up to 10 MB).
            url: an http(s) image URL, used when no image file is given.
            text: optional words that refine the photo query, e.g. "red".
            text_weight: how much the text counts against the photo, 0 to 1.
            top_k: how many products to return (1 to 100).
            min_score: leave out products whose cosine similarity is below this.
            categories: keep only these categories, e.g. ["shoes"].
            brands: keep only these brands.
            colors: keep only products with one of these colours.
            tags: keep only products with one of these tags.
            thumbnails: "url" (default; a link to a small JPEG on this app), "data" (inline base64) or "none".
        Returns:
            an object; "matches": the most similar products, best first, each with id, name, category, brand
            colors, tags, price, description and "score" (cosine similarity, higher is closer)
            "thumbnail": per match, an image URL on this app ("url"), a data: URL ("data") or null ("none")
            "facets": counts per category, brand, colour and tag; "timings_ms"; "model"
        """
        if not image and not (url or "").strip():
            raise SimilarityError("Give a photo (image) or an image URL (url) to search with.")
        args = RankArgs.of(top_k, min_score, categories, brands, colors, tags)
        links = self.thumbs.for_request(thumbnails, request)
        query = self.service.encode(image or None, url=url, text=text, text_weight=float(text_weight))
        return self._rank(query, args, links)

    @user_errors
    def search_text(
        self,
        text: str = "",
        top_k: int = DEFAULT_TOP_K,
        min_score: float | None = None,
        categories: list[str] | None = None,
        brands: list[str] | None = None,
        colors: list[str] | None = None,
        tags: list[str] | None = None,
        thumbnails: str = DEFAULT_THUMBNAILS,
        request: gr.Request | None = None,
    ) -> dict[str, Any]:
        """Find catalog products matching a description, e.g. "black leather backpack".

        Args:
            text: what you are looking for.
            top_k: how many products to return (1 to 100).
            min_score: leave out products whose cosine similarity is below this.
            categories: keep only these categories.
            brands: keep only these brands.
            colors: keep only products with one of these colours.
            tags: keep only products with one of these tags.
            thumbnails: "url" (default; a link to a small JPEG on this app), "data" (inline base64) or "none".
        Returns:
            an object; "matches": the most similar products, best first, each with id, name, category, brand
            colors, tags, price, description and "score" (cosine similarity, higher is closer)
            "thumbnail": per match, an image URL on this app ("url"), a data: URL ("data") or null ("none")
            "facets": counts per category, brand, colour and tag; "timings_ms"; "model"
        """
        if not (text or "").strip():
            raise SimilarityError("Type a description to search for (text).")
        args = RankArgs.of(top_k, min_score, categories, brands, colors, tags)
        links = self.thumbs.for_request(thumbnails, request)
        return self._rank(self.service.encode(text=text), args, links)

    @user_errors
    def similar_to(
        self,
        product_id: str = "",
        top_k: int = DEFAULT_TOP_K,
        min_score: float | None = None,
        categories: list[str] | None = None,
        brands: list[str] | None = None,
        colors: list[str] | None = None,
        tags: list[str] | None = None,
        thumbnails: str = DEFAULT_THUMBNAILS,
        request: gr.Request | None = None,
    ) -> dict[str, Any]:
        """Find products similar to a catalog product ("more like this"); the product itself is left out.

        Args:
            product_id: the id of a catalog product (the "id" of a match).
            top_k: how many products to return (1 to 100).
            min_score: leave out products whose cosine similarity is below this.
            categories: keep only these categories.
            brands: keep only these brands.
            colors: keep only products with one of these colours.
            tags: keep only products with one of these tags.
            thumbnails: "url" (default; a link to a small JPEG on this app), "data" (inline base64) or "none".
        Returns:
            an object; "matches": the most similar products, best first, each with id, name, category, brand
            colors, tags, price, description and "score" (cosine similarity, higher is closer)
            "thumbnail": per match, an image URL on this app ("url"), a data: URL ("data") or null ("none")
            "facets": counts per category, brand, colour and tag; "timings_ms"; "model"
        """
        if not (product_id or "").strip():
            raise SimilarityError("Give the id of a catalog product (product_id).")
        args = RankArgs.of(top_k, min_score, categories, brands, colors, tags)
        links = self.thumbs.for_request(thumbnails, request)
        return self._rank(self.service.product_query(product_id.strip()), args, links)

    def _rank(self, query: Query, args: RankArgs, links: Thumbnails) -> dict[str, Any]:
        result = self.service.rank(query, args.filters, args.top_k, args.min_score)
        return result.to_dict(thumbnails=links)
