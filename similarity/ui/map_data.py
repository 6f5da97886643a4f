"""The Map tab's data: a compact snapshot of the catalog layout for the browser, and the overlay of a query.

The browser gets parallel arrays, not one object per point: coordinates quantised to uint16 and
colour codes as uint8, each base64-encoded (about 10 bytes per point in all). Above ``MAX_DRAWN``
products a fixed random sample is drawn, plus a density grid of every product, and the note says so.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from ..records import COLORS

MAX_DRAWN = 100_000  # points drawn one by one; above this a sample plus a density grid
PAGE = 50_000  # points read from the layout per call (bounded memory for big catalogs)
DENSITY_CELLS = 96  # density grid cells per side
MAX_BRANDS = 12  # brands with their own colour; the rest share "other brands"
OTHER_BRANDS, NO_BRAND, NO_COLOR = "other brands", "no brand", "no colour"
FIELDS = ("category", "brand", "color")
# a distinct, colour-blind friendly palette (Tableau 10 + extras) for categories and brands
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
    "#ff9da7", "#9c755f", "#86bcb6", "#d37295", "#a0cbe8", "#8cd17d",
)  # fmt: skip
GREY = "#9aa3ad"
SWATCHES = {
    "black": "#222222", "white": "#e8e8e8", "grey": "#8c8c8c", "silver": "#b8c0c8", "gold": "#d4a017",
    "red": "#d62728", "orange": "#ff7f0e", "yellow": "#f2cf1d", "green": "#2ca02c", "blue": "#1f77b4",
    "navy": "#1b2a6b", "purple": "#7b3fa0", "pink": "#f06fae", "brown": "#8c564b", "beige": "#d9c7a3",
    "multicolor": "#17becf",
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Field:
    """One way of colouring the points: legend names, their colours and a code per drawn point."""

    names: list[str]
    colors: list[str]
    codes: np.ndarray  # uint8, index into names


@dataclasses.dataclass
class MapSnapshot:
    """The drawn part of one layout version (shared by every session until the layout changes)."""

    key: str  # catalog version + method: changes whenever the browser must redraw
    method: str
    note: str
    total: int
    ids: list[str]
    xy: np.ndarray  # (n, 2) float32, the drawn points
    fields: dict[str, Field]
    density: list[list[float]] | None = None  # [[x, y, count], ...] cell centres of every product
    cell: tuple[float, float] = (0.0, 0.0)
    row_of: dict[str, int] = dataclasses.field(default_factory=dict)
    clusters: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # named clusters of the layout
    cluster_of: np.ndarray | None = None  # int16 per drawn point (-1: none)

    def __post_init__(self) -> None:
        self.row_of = {id_: row for row, id_ in enumerate(self.ids)}

    def payload(self) -> dict[str, Any]:
        """What the browser draws: bounds, quantised coordinates and colour codes (all base64)."""
        lo, hi = _bounds(self.xy)
        span = np.where(hi > lo, hi - lo, 1.0)
        quant = np.rint((self.xy - lo) / span * 65535).astype("<u2") if len(self.xy) else np.zeros((0, 2), "<u2")
        fields = {
            name: {"names": f.names, "colors": f.colors, "codes": _b64(f.codes.astype(np.uint8))}
            for name, f in self.fields.items()
        }
        return {
            "key": self.key,
            "method": self.method,
            "note": self.note,
            "total": self.total,
            "count": len(self.ids),
            "bounds": [float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])],
            "x": _b64(quant[:, 0]),
            "y": _b64(quant[:, 1]),
            "fields": fields,
            "density": self.density,
            "cell": list(self.cell),
            "clusters": self.clusters,
            "cluster": _b64(self._cluster_codes().astype("<i2")),
        }

    def _cluster_codes(self) -> np.ndarray:
        return self.cluster_of if self.cluster_of is not None else np.full(len(self.ids), -1, np.int16)

    def selected_ids(self, mask: str) -> list[str]:
        """The drawn points whose bits are set in ``mask`` (base64, LSB first, as ``mask_payload``)."""
        try:
            bits = np.unpackbits(np.frombuffer(base64.b64decode(mask, validate=True), np.uint8), bitorder="little")
        except (ValueError, TypeError):
            return []
        rows = np.flatnonzero(bits[: len(self.ids)])
        return [self.ids[r] for r in rows]

    def mask_payload(self, passing: Iterable[str]) -> str:
        """Base64 bits (LSB first) of the drawn points that pass the filters."""
        keep = np.zeros(len(self.ids), dtype=bool)
        rows = [self.row_of[i] for i in passing if i in self.row_of]
        keep[rows] = True
        return _b64(np.packbits(keep, bitorder="little"))


def build_snapshot(
    pages: Callable[[int | None, int], Mapping[str, Any]], *, max_drawn: int = MAX_DRAWN, page: int = PAGE
) -> MapSnapshot:
    """Read the layout page by page (``pages(limit, offset)`` = ``CatalogMap.points``) and keep what is drawn."""
    first = pages(page, 0)
    total, key = int(first.get("total", 0)), snapshot_key(first)
    chosen = _sample(total, max_drawn)
    ids: list[str] = []
    every: list[tuple[float, float]] = []  # all coordinates, for the density grid (8 bytes a product)
    kept: list[int] = []
    values: dict[str, list[str]] = {name: [] for name in FIELDS}
    cluster_of: list[int] = []
    offset, data = 0, first
    while True:
        for point in data.get("points") or ():
            row = len(every)
            every.append((float(point["x"]), float(point["y"])))
            if chosen is None or (row < len(chosen) and chosen[row]):
                kept.append(row)
                ids.append(str(point["id"]))
                values["category"].append(str(point.get("category") or "other"))
                values["brand"].append(str(point.get("brand") or NO_BRAND))
                values["color"].append(str((point.get("colors") or [NO_COLOR])[0]))
                cluster_of.append(int(point.get("cluster", -1)))
        offset += page  # pages skip products removed since the layout was made: step by the page size
        if offset >= total or not data.get("points"):
            break
        data = pages(page, offset)
    xy_all = np.asarray(every, dtype=np.float32).reshape(-1, 2)
    fields = {"category": _field(values["category"]), "brand": _field(values["brand"], MAX_BRANDS)}
    fields["color"] = _color_field(values["color"])
    note = str(first.get("note") or "")
    snapshot = MapSnapshot(key, str(first.get("method", "")), note, total, ids, xy_all[kept], fields)
    snapshot.clusters = list(first.get("clusters") or [])
    snapshot.cluster_of = np.asarray(cluster_of, dtype=np.int16)
    if chosen is not None:
        snapshot.density, snapshot.cell = density_grid(xy_all)
        sample = f"A sample of {len(ids):,} of {total:,} products is drawn; the shading shows where all of them lie."
        snapshot.note = f"{note} {sample}".strip()
    return snapshot


def snapshot_key(head: Mapping[str, Any]) -> str:
    """What identifies a drawn layout: catalog version, method and its clusters (named after a restart)."""
    named = len(head.get("clusters") or ())
    return f"{head.get('catalog_version', '')}:{head.get('method', '')}" + (f":{named}" if named else "")


def density_grid(xy: np.ndarray, cells: int = DENSITY_CELLS) -> tuple[list[list[float]], tuple[float, float]]:
    """Non-empty cells of a ``cells`` x ``cells`` histogram: centre x, centre y, count; and the cell size."""
    lo, hi = _bounds(xy)
    counts, xs, ys = np.histogram2d(xy[:, 0], xy[:, 1], bins=cells, range=[[lo[0], hi[0]], [lo[1], hi[1]]])
    cx, cy = (xs[:-1] + xs[1:]) / 2, (ys[:-1] + ys[1:]) / 2
    rows, cols = np.nonzero(counts)
    grid = [
        [round(float(cx[r]), 5), round(float(cy[c]), 5), int(counts[r, c])] for r, c in zip(rows, cols, strict=True)
    ]
    return grid, (float(xs[1] - xs[0]), float(ys[1] - ys[0]))


def _sample(total: int, max_drawn: int) -> np.ndarray | None:
    """A fixed random subset of rows (the same on every call for the same total), or None: draw all."""
    if total <= max_drawn:
        return None
    keep = np.zeros(total, dtype=bool)
    keep[np.random.default_rng(0).choice(total, max_drawn, replace=False)] = True
    return keep


def _field(values: list[str], limit: int | None = None) -> Field:
    """Legend in order of frequency (ties by name); beyond ``limit`` values share one grey entry."""
    names, codes = np.unique(np.asarray(values, dtype=object).astype(str), return_inverse=True)
    counts = np.bincount(codes, minlength=len(names))
    order = sorted(range(len(names)), key=lambda i: (-counts[i], names[i]))
    keep = order if limit is None or len(order) <= limit else order[:limit]
    legend = [str(names[i]) for i in keep]
    new_code = np.full(len(names), len(legend), dtype=np.int64)  # the rest: "other brands"
    new_code[keep] = np.arange(len(keep))
    colors = [GREY if n == NO_BRAND else PALETTE[i % len(PALETTE)] for i, n in enumerate(legend)]
    if len(keep) < len(order):
        legend.append(OTHER_BRANDS)
        colors.append(GREY)
    return Field(legend, colors, new_code[codes].astype(np.uint8) if len(values) else np.zeros(0, np.uint8))


def _color_field(values: list[str]) -> Field:
    """Each drawn product in its first (main) colour; the legend in ``COLORS`` order."""
    present = set(values)
    legend = [c for c in COLORS if c in present] + sorted(present - set(COLORS))  # "no colour" last
    code = {name: n for n, name in enumerate(legend)}
    codes = np.fromiter((code[v] for v in values), dtype=np.uint8, count=len(values))
    return Field(legend, [SWATCHES.get(c, GREY) for c in legend], codes)


def _bounds(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if not len(xy):
        return np.zeros(2), np.ones(2)
    return xy.min(axis=0).astype(np.float64), xy.max(axis=0).astype(np.float64)


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")
