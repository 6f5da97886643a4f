"""The public HTTP API: named endpoints ``/search_image``, ``/search_text``, ``/similar_to`` and ``/catalog_map``.

Each returns the documented JSON contract (``SearchResult.to_dict``): matches with id, name, category,
brand, colors, tags, score and a thumbnail (a link the app serves by default; see ``thumbs``), plus
facets and timings. Parameter names are the keyword names clients use (``gradio_client``, MCP tools),
and the docstrings are the MCP tools' descriptions.
"""

from __future__ import annotations

import json
from typing import Any

import gradio as gr

from ..arrange import SORTS
from ..errors import SimilarityError
from ..records import Thumbnails
from ..search import DEFAULT_TOP_K, Query, SearchService
from ..steering import Steering
from .files import UiFiles
from .handlers import user_errors
from .ranking import STEER_INPUTS, RankArgs
from .thumbs import DEFAULT_THUMBNAILS, ThumbnailLinks

MAX_MAP_POINTS = 100_000  # points per /catalog_map call (a 1M catalog is paged with offset)
MCP_CALLER = ("x-gradio-user", "mcp")  # the header Gradio's MCP server puts on its calls to the app


def for_caller(data: dict[str, Any], request: gr.Request | None) -> Any:
    """An endpoint's answer: the object itself, or for an MCP tool call its JSON text.

    Gradio's MCP server hands agents ``str()`` of the output, a Python literal; an output that is a JSON
    string (a JSON document whose root is a string, for the ``gr.JSON`` component) reaches them as is."""
    headers = getattr(request, "headers", None) if request is not None else None
    name, value = MCP_CALLER
    if headers is not None and (headers.get(name) or "").lower() == value:
        return json.dumps(json.dumps(data, ensure_ascii=False))
    return data


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
        """Find catalog products that look like a photo.

        Args:
            image: the photo, a file (MCP: a data:image/...;base64 URL); JPEG, PNG, WebP, GIF, BMP or TIFF, up to 10 MB.
            url: an http(s) image URL the app fetches (public addresses only), used when no image is given.
            text: optional words that refine the photo query, e.g. "red".
            text_weight: how much the text counts against the photo, 0 to 1.
            top_k: how many products to return (1 to 100).
            min_score: leave out products whose cosine similarity is below this.
            categories: keep only these categories, e.g. ["shoes"].
            brands: keep only these brands.
            colors: keep only products with one of these colours.
            tags: keep only products with one of these tags.
            thumbnails: "url" (default; a link to a small JPEG on this app), "data" (inline base64) or "none".
            more: texts to get more of, e.g. ["leather"] (each pulls the results towards it).
            less: texts to get less of, e.g. ["red"].
            liked: ids (or unique id prefixes) of products to get more like.
            disliked: ids of products to leave out and get less like.
            price_min: keep only products priced at least this (products without a price are left out).
            price_max: keep only products priced at most this.
            sort: "relevance" (default), "price_asc", "price_desc" or "newest"; reorders only the relevant results.
            within_best: keep only products scoring within this of the best match, e.g. 0.05.
            collapse_duplicates: fold near-identical results into the better-ranked one ("near_identical" ids).
        Returns:
            an object; "matches": the most similar products, best first, each with id, name, category, brand
            colors, tags, price, description and "score" (cosine similarity, higher is closer)
            "thumbnail": per match, an image URL on this app ("url"), a data: URL ("data") or null ("none")
            "facets": counts per category, brand, colour and tag, and "price" (the candidates' range); "timings_ms"
        """
        if not image and not (url or "").strip():
            raise SimilarityError("Give a photo (image) or an image URL (url) to search with.")
        args = RankArgs.of(top_k, min_score, categories, brands, colors, tags, *steer_args(locals()))
        links = self.thumbs.for_request(thumbnails, request)
        steering = Steering.of(more, less, liked, disliked)
        query = self.service.encode(image or None, url=url, text=text, text_weight=float(text_weight))
        return self._rank(query, args, links, steering, request)

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
            more: texts to get more of, e.g. ["leather"] (each pulls the results towards it).
            less: texts to get less of, e.g. ["red"].
            liked: ids (or unique id prefixes) of products to get more like.
            disliked: ids of products to leave out and get less like.
            price_min: keep only products priced at least this (products without a price are left out).
            price_max: keep only products priced at most this.
            sort: "relevance" (default), "price_asc", "price_desc" or "newest"; reorders only the relevant results.
            within_best: keep only products scoring within this of the best match, e.g. 0.05.
            collapse_duplicates: fold near-identical results into the better-ranked one ("near_identical" ids).
        Returns:
            an object; "matches": the most similar products, best first, each with id, name, category, brand
            colors, tags, price, description and "score" (cosine similarity, higher is closer)
            "thumbnail": per match, an image URL on this app ("url"), a data: URL ("data") or null ("none")
            "facets": counts per category, brand, colour and tag, and "price" (the candidates' range); "timings_ms"
        """
        if not (text or "").strip():
            raise SimilarityError("Type a description to search for (text).")
        args = RankArgs.of(top_k, min_score, categories, brands, colors, tags, *steer_args(locals()))
        links = self.thumbs.for_request(thumbnails, request)
        steering = Steering.of(more, less, liked, disliked)
        return self._rank(self.service.encode(text=text), args, links, steering, request)

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
            more: texts to get more of, e.g. ["leather"] (each pulls the results towards it).
            less: texts to get less of, e.g. ["red"].
            liked: ids (or unique id prefixes) of products to get more like.
            disliked: ids of products to leave out and get less like.
            price_min: keep only products priced at least this (products without a price are left out).
            price_max: keep only products priced at most this.
            sort: "relevance" (default), "price_asc", "price_desc" or "newest"; reorders only the relevant results.
            within_best: keep only products scoring within this of the best match, e.g. 0.05.
            collapse_duplicates: fold near-identical results into the better-ranked one ("near_identical" ids).
        Returns:
            an object; "matches": the most similar products, best first, each with id, name, category, brand
            colors, tags, price, description and "score" (cosine similarity, higher is closer)
            "thumbnail": per match, an image URL on this app ("url"), a data: URL ("data") or null ("none")
            "facets": counts per category, brand, colour and tag, and "price" (the candidates' range); "timings_ms"
        """
        if not (product_id or "").strip():
            raise SimilarityError("Give the id of a catalog product (product_id).")
        args = RankArgs.of(top_k, min_score, categories, brands, colors, tags, *steer_args(locals()))
        links = self.thumbs.for_request(thumbnails, request)
        steering = Steering.of(more, less, liked, disliked)
        return self._rank(self.service.product_query(product_id.strip()), args, links, steering, request)

    @user_errors
    def catalog_map(self, limit: int | None = None, offset: int = 0, request: gr.Request | None = None) -> Any:
        """The catalog map: every product's position in a 2-D layout of the embeddings, page by page.

        Args:
            limit: at most this many points (default and maximum: 100000; page with offset beyond that).
            offset: skip this many points first.
        Returns:
            an object; "method": "umap", "pca" (small catalogs) or "pca-preview" (while the layout computes)
            "points": [{"id", "x", "y", "category", "brand", "colors", "name"}], coordinates in [-1, 1]
            "total": how many products the layout holds; "catalog_version"; "status"; "note"
        """
        limit, offset = _whole(limit, "limit", MAX_MAP_POINTS), _whole(offset, "offset", 0)
        catalog_map = self.service.catalog_map
        if catalog_map is None:
            return for_caller({"method": "off", "catalog_version": "", "points": [], "total": 0, "status": "off",
                               "note": "The catalog map is turned off on this server."}, request)  # fmt: skip
        return for_caller(catalog_map.points(min(limit, MAX_MAP_POINTS), offset), request)

    def _rank(
        self, query: Query, args: RankArgs, links: Thumbnails, steering: Steering, request: gr.Request | None
    ) -> Any:
        result = args.rank(self.service, self.service.steer(query, steering) if steering else query)
        return for_caller(result.to_dict(thumbnails=links), request)


def steer_args(values: dict[str, Any]) -> list[Any]:
    """An endpoint's price range, sort, cutoff and collapse values in ``STEER_INPUTS`` order."""
    return [values[name] for name in STEER_INPUTS]


def _whole(value: Any, name: str, default: int) -> int:
    """A non-negative whole number from an API parameter (None: ``default``)."""
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SimilarityError(f"{name} must be a whole number.") from None
    if not number.is_integer() or number < 0:
        raise SimilarityError(f"{name} must be a whole number, 0 or more.")
    return int(number)


def steering_inputs() -> list[Any]:
    """Hidden components behind the endpoints' steering keywords (``more`` … ``collapse_duplicates``)."""
    texts = [
        gr.Dropdown([], value=[], multiselect=True, allow_custom_value=True, label=name)
        for name in ("more", "less", "liked", "disliked")
    ]
    for free in texts:  # any strings, not an empty enum, in the API docs
        free.api_info = string_list_info
    return [
        *texts,
        gr.Number(None, label="price_min"),
        gr.Number(None, label="price_max"),
        gr.Dropdown(list(SORTS), value="relevance", allow_custom_value=True, label="sort"),  # our own message
        gr.Number(None, label="within_best"),
        gr.Checkbox(False, label="collapse_duplicates"),
    ]


def string_list_info() -> dict[str, Any]:
    """A list of strings, in the API docs."""
    return {"type": "array", "items": {"type": "string"}}
