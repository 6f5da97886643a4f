"""``build_service(settings)``: the one place a ``SearchService`` is wired from settings (store, embedder,
tagger, ranker and catalog map); the app and the CLI start through it."""

from __future__ import annotations

from typing import Any

from .config import Settings
from .device import device_label
from .index import default_ranker
from .search import SearchService


def build_service(
    settings: Settings | None = None, *, background_index: bool = False, **overrides: Any
) -> SearchService:
    """Wire store, embedder, tagger and ranker from settings (read once).

    ``background_index``: a large local catalog's ANN graph is prepared in a thread while exact search
    serves (the app); otherwise the first search waits for it (one-shot CLI runs, tests).
    It also makes the catalog map fit its layout in the background; without it, searches only use a
    saved layout and the map is computed when first asked for (``CatalogMap.points``).
    """
    from .embedder import OpenClipEmbedder
    from .store import open_store
    from .tagging import make_tagger

    settings = settings or Settings.from_env()
    embedder = overrides.pop("embedder", None) or OpenClipEmbedder.from_settings(settings)
    device_label(embedder)  # resolved now: a SIMILARITY_DEVICE naming a missing GPU stops the start-up here
    store = overrides.pop("store", None) or open_store(settings.store_url, settings)
    tagger = overrides.pop("tagger", None) or make_tagger(settings, embedder)
    device = getattr(embedder, "device_info", None)  # a CUDA GPU also holds the exact index
    ranker = overrides.pop("ranker", None) or default_ranker(
        store, settings, background=background_index, device=device
    )
    if "catalog_map" not in overrides and settings.map_layout != "off":
        from .map import CatalogMap  # its fitting libraries load only when a layout is computed

        overrides["catalog_map"] = CatalogMap(store, settings, background=background_index)
    service = SearchService(store, embedder, tagger, settings, ranker, **overrides)
    service.check_model()
    return service
