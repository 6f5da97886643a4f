"""Regions of a query photo: a pixel box, a label, a confidence and where it came from; validation and NMS.

Boxes are ``[x0, y0, x1, y1]`` in the pixels of the photo as uploaded, after EXIF rotation (x1, y1
exclusive). Every source (Gemini, the offline proposer, the user) goes through ``clean_box`` so a bad
box is clamped, straightened or dropped the same way.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any

from ..errors import SimilarityError

MAX_REGIONS = 8  # per photo (the whole photo is always a choice besides)
SOURCES = ("gemini", "auto", "user")
MIN_SIDE_FRACTION = 0.03  # a proposed box narrower than 3% of the photo's side is noise, not a product
NMS_IOU = 0.5


@dataclasses.dataclass(frozen=True)
class Region:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in original pixels (x1, y1 exclusive)
    source: str = "auto"  # gemini | auto | user
    label: str | None = None
    confidence: float = 1.0

    @property
    def area(self) -> int:
        x0, y0, x1, y1 = self.box
        return (x1 - x0) * (y1 - y0)

    def scaled(self, sx: float, sy: float, size: tuple[int, int]) -> Region | None:
        """The same region in another pixel grid (``size`` = that grid's width, height); None if it vanishes."""
        x0, y0, x1, y1 = self.box
        box = clean_box((x0 * sx, y0 * sy, x1 * sx, y1 * sy), size)
        return None if box is None else dataclasses.replace(self, box=box)

    def to_dict(self) -> dict[str, Any]:
        return {"box": list(self.box), "source": self.source, "label": self.label,
                "confidence": round(float(self.confidence), 4)}  # fmt: skip


def clean_box(values: Any, size: tuple[int, int], min_side: int = 1) -> tuple[int, int, int, int] | None:
    """Four numbers -> a box inside ``size`` (width, height): corners swapped if inverted, clamped to the
    photo, rounded outwards; None for anything that is not four finite numbers or leaves a box thinner
    than ``min_side`` pixels."""
    try:
        x0, y0, x1, y1 = (float(v) for v in values)
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        return None
    width, height = size
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    left, top = max(0, math.floor(x0)), max(0, math.floor(y0))
    right, bottom = min(width, math.ceil(x1)), min(height, math.ceil(y1))
    if right - left < min_side or bottom - top < min_side:
        return None
    return left, top, right, bottom


def parse_user_box(text: Any, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A box a person gave (``"x0,y0,x1,y1"`` or four numbers) -> a clean box, or a clear error.

    Unlike proposals, a user box is not clamped silently: one that lies outside the photo or has no
    area is refused, so the shopper knows the search did not use it."""
    values = text.replace(";", ",").split(",") if isinstance(text, str) else text
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        numbers = []
    if len(numbers) != 4 or not all(math.isfinite(v) for v in numbers):
        raise SimilarityError("A box is four numbers: x0,y0,x1,y1 (pixels of the photo).")
    x0, y0, x1, y1 = numbers
    width, height = size
    if x1 - x0 == 0 or y1 - y0 == 0:
        raise SimilarityError("The box has no area; give two opposite corners x0,y0,x1,y1.")
    box = clean_box(numbers, size)
    if box is None or max(x0, x1) <= 0 or max(y0, y1) <= 0 or min(x0, x1) >= width or min(y0, y1) >= height:
        raise SimilarityError(f"The box {_fmt(numbers)} lies outside the photo ({width}x{height} pixels).")
    return box


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``[x0, y0, x1, y1]`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def suppress(regions: Iterable[Region], threshold: float = NMS_IOU, limit: int = MAX_REGIONS) -> list[Region]:
    """Non-maximum suppression: best confidence first (then larger), drop boxes overlapping a kept one."""
    kept: list[Region] = []
    for region in sorted(regions, key=lambda r: (-r.confidence, -r.area, r.box)):
        if all(iou(region.box, k.box) < threshold for k in kept):
            kept.append(region)
        if len(kept) == limit:
            break
    return kept


def reading_order(regions: Iterable[Region]) -> list[Region]:
    """Top-to-bottom rows, left to right within a row, so the numbers on the photo read naturally."""
    items = list(regions)
    if not items:
        return []
    rows: list[list[Region]] = []
    for region in sorted(items, key=lambda r: (r.box[1] + r.box[3]) / 2):
        centre = (region.box[1] + region.box[3]) / 2
        row = rows[-1] if rows else None
        if row and abs(centre - sum((r.box[1] + r.box[3]) / 2 for r in row) / len(row)) < _half_height(row):
            row.append(region)
        else:
            rows.append([region])
    return [r for row in rows for r in sorted(row, key=lambda r: r.box[0])]


def _half_height(row: list[Region]) -> float:
    return min(r.box[3] - r.box[1] for r in row) / 2


def _fmt(numbers: Sequence[float]) -> str:
    return ",".join(f"{v:g}" for v in numbers)
