"""Thumbnails in API results: a link the app serves ("url"), a self-contained data URL ("data") or none.

A link points at Gradio's own file route, ``<app address>/gradio_api/file=<path>``, for a file in
``UiFiles.thumbs_dir``, the one folder handed to ``gr.set_static_paths``. So the link passes through the
same sign-in check as the page and the API (``launch(auth=...)``), and nothing outside the thumbnails is
reachable through it: Gradio resolves the path (``..``, symlinks) before it checks the folder. The address
comes from the request itself, as Gradio builds its own file links (``X-Forwarded-Host``/``-Proto``, root
path), so links work on localhost, through a share link and on a Space.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

import gradio as gr
from gradio import route_utils

from ..errors import SimilarityError
from ..records import Product, Thumbnails
from .files import UiFiles

THUMBNAIL_MODES = ("url", "data", "none")
DEFAULT_THUMBNAILS = "url"
FILE_ROUTE = "/gradio_api/file="  # Gradio's file route (6.x)


class ThumbnailLinks:
    """Turns a ``thumbnails`` argument and the request into what ``SearchResult.to_dict`` needs."""

    def __init__(self, files: UiFiles) -> None:
        self.files = files
        gr.set_static_paths([files.thumbs_dir])  # served in place (not copied to Gradio's cache)

    def for_request(self, mode: str | None, request: gr.Request | None) -> Thumbnails:
        mode = (mode or DEFAULT_THUMBNAILS).strip().lower()
        if mode not in THUMBNAIL_MODES:
            raise SimilarityError(f"thumbnails must be one of {', '.join(THUMBNAIL_MODES)} (got {mode[:20]!r}).")
        if mode == "none":
            return _no_thumbnail
        base = app_url(request) if mode == "url" else None
        if base is None:  # "data", or called outside a server (no address to link to)
            return True
        return self._linker(base)

    def _linker(self, base: str) -> Callable[[Product], str | None]:
        def link(product: Product) -> str | None:
            if not product.thumbnail:
                return None
            return f"{base}{FILE_ROUTE}{quote(self.files.thumbnail(product))}"

        return link


def app_url(request: gr.Request | None) -> str | None:
    """The app's public address as the client reached it, without a trailing slash (None: no HTTP request)."""
    raw = getattr(request, "request", None) if request is not None else None
    if raw is None:
        return None
    try:
        route = route_utils.get_api_call_path(raw)
    except ValueError:  # not a queue/join or /call request: the path is the route
        route = raw.url.path
    root_path = getattr(raw.scope.get("app"), "root_path", None)  # launch(root_path=...) / GRADIO_ROOT_PATH
    return route_utils.get_root_url(request=raw, route_path=route, root_path=root_path)


def _no_thumbnail(product: Product) -> None:
    return None
