"""A page of the catalog map's points as ``/catalog_map`` returns them (``CatalogMap.points`` adds the status)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..store.base import CatalogStore
    from .persist import Layout


def points_page(layout: Layout | None, store: CatalogStore, limit: int | None, offset: int) -> dict[str, Any]:
    """Method, catalog_version, the points from ``offset`` (at most ``limit``; removed products left out),
    total and the named clusters; an empty page without a layout."""
    if layout is None:
        return {"method": "none", "catalog_version": "", "points": [], "total": 0, "clusters": []}
    offset = max(0, int(offset or 0))
    stop = len(layout) if limit is None else offset + max(0, int(limit))
    ids = layout.ids[offset:stop]
    products = {p.id: p for p in store.get(ids, thumbnails=False)} if ids else {}
    labels = layout.labels
    points = []
    for row, id_ in enumerate(ids, offset):
        product = products.get(id_)
        if product is None:  # removed since the layout was made
            continue
        x, y = layout.coords[row]
        points.append(
            {
                "id": id_,
                "x": round(float(x), 5),
                "y": round(float(y), 5),
                "category": product.category,
                "brand": product.brand,
                "colors": list(product.colors),
                "name": product.name,
                "cluster": -1 if labels is None else int(labels[row]),
            }
        )
    return {
        "method": layout.method,
        "catalog_version": layout.catalog_version,
        "points": points,
        "total": len(layout),
        "clusters": list(layout.clusters or []),
    }
