"""A small CatalogMap for the Map-tab tests: the interface of ``similarity.map.CatalogMap`` over fixed coordinates."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class FakeCatalogMap:
    """Coordinates from a fixed 2-D projection of the stored vectors (or given ones); counts its calls."""

    def __init__(self, store, *, method: str = "umap", status: str = "ready", coords: dict | None = None) -> None:
        self.store, self.method, self.status = store, method, status
        self.version = "v1"
        if coords is None:
            batch = store.load_vectors()
            projection = np.random.default_rng(0).normal(size=(batch.vectors.shape[1], 2)) if len(batch.ids) else None
            xy = batch.vectors @ projection if projection is not None else np.zeros((0, 2))
            coords = {i: (float(x), float(y)) for i, (x, y) in zip(batch.ids, xy, strict=True)}
        self.coords = dict(sorted(coords.items()))
        self.calls: dict[str, int] = {"points": 0, "place": 0}
        self.placed: list[tuple[list[str], list[float]]] = []

    def points(self, limit: int | None = None, offset: int = 0) -> dict:
        self.calls["points"] += 1
        ids = list(self.coords)
        page = ids[offset : None if limit is None else offset + limit]
        products = {p.id: p for p in self.store.get(page, thumbnails=False)} if page else {}
        points = [
            {"id": i, "x": self.coords[i][0], "y": self.coords[i][1], "category": p.category, "brand": p.brand,
             "colors": list(p.colors), "name": p.name}
            for i in page if (p := products.get(i)) is not None
        ]  # fmt: skip
        note = "PCA preview: the layout is computing" if self.status == "preview" else ""
        return {"method": self.method, "catalog_version": self.version, "points": points, "total": len(ids),
                "status": self.status, "note": note}  # fmt: skip

    def coordinates(self, ids: Sequence[str]) -> dict[str, tuple[float, float]]:
        return {i: self.coords[i] for i in ids if i in self.coords}

    def place(self, ids: Sequence[str], scores: Sequence[float]) -> tuple[float, float] | None:
        self.calls["place"] += 1
        self.placed.append((list(ids), [float(s) for s in scores]))
        found = [(self.coords[i], max(float(s), 1e-6)) for i, s in zip(ids, scores, strict=False) if i in self.coords]
        if not found:
            return None
        xy, w = np.array([c for c, _ in found]), np.array([s for _, s in found])
        x, y = (xy * w[:, None]).sum(axis=0) / w.sum()
        return float(x), float(y)
