"""The offline region proposer: foreground against the photo's own background, then connected components.

No model, no network: the photo is shrunk to ``WORK_SIDE`` pixels and smoothed (a box filter, so a
textured background averages out), the background colour is fitted over the border strip as a smooth
surface (a quadratic per channel, so a gradient is background too), and pixels far from that surface
are foreground. Foreground pieces close to each other are grouped (a product's handle and body), small
or frame-filling pieces dropped, and the rest become boxes. One piece, or none, means a single-product
photo: no regions (the whole photo is the answer). ``benchmarks/regions.py`` measures this against
saliency, graph segmentation and CLIP patch evidence.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .boxes import MAX_REGIONS, MIN_SIDE_FRACTION, Region, suppress

WORK_SIDE = 256  # the proposer works on a copy this long; boxes are scaled back
BORDER = 0.04  # the border strip (fraction of the short side) that models the background
SMOOTH = 0.03  # box-filter size (fraction of the long side): averages texture away
TEXTURE = 6.0  # the border's median pixel deviation from its local mean above which it is a texture
MIN_CONTRAST = 24.0  # RGB distance from the background below which nothing is foreground
NOISE_FACTOR = 3.0  # ... nor below this many times the border's own 95th-percentile residual
GROUP = 0.01  # pieces closer than this (fraction of the long side) are one product
MIN_AREA = 0.006  # a product covers at least this fraction of the photo
MIN_RELATIVE = 0.06  # ... and at least this fraction of the largest piece
PART = 0.3  # a piece under this fraction of a neighbour's box area ...
PART_REACH = 0.1  # ... within this fraction of the neighbour's long side is part of it
MAX_COVER = 0.8  # a box covering this much of the photo is the whole photo


class BorderProposer:
    """Finds separate products on plain, gradient and textured backgrounds (``name`` = "auto")."""

    name = "auto"

    def propose(self, image: Image.Image) -> list[Region]:
        """Regions in ``image``'s own pixels; [] for a single product (or nothing found)."""
        small, scale = _shrink(image)
        mask = foreground(np.asarray(small, dtype=np.float32))
        regions = [r.scaled(scale[0], scale[1], image.size) for r in _components(mask)]
        found = [r for r in regions if r is not None]
        return found if len(found) >= 2 else []


def foreground(pixels: np.ndarray) -> np.ndarray:
    """A boolean mask of pixels that differ from the fitted background (``pixels``: H x W x 3, float)."""
    from scipy import ndimage

    height, width = pixels.shape[:2]
    size = max(3, round(SMOOTH * max(height, width)) | 1)
    strip = max(2, round(BORDER * min(height, width)))
    border = np.zeros((height, width), bool)
    border[:strip], border[-strip:], border[:, :strip], border[:, -strip:] = True, True, True, True
    smooth = ndimage.uniform_filter(pixels, size=(size, size, 1), mode="nearest")
    grain = float(np.median(np.abs(pixels - smooth).max(axis=2)[border]))
    if grain < TEXTURE:  # a plain or gradient background: keep the edges sharp
        smooth, size = pixels, 1
    residual, inliers = _background_residual(smooth, border)
    threshold = max(MIN_CONTRAST, NOISE_FACTOR * float(np.percentile(residual[border][inliers], 90)))
    mask = ndimage.binary_fill_holes(ndimage.binary_opening(residual > threshold, iterations=1))
    if size > 1:  # the smoothing widened every piece by half its size (iterations=0 would erode everything)
        mask = ndimage.binary_erosion(mask, iterations=size // 2)
    return mask


def _background_residual(smooth: np.ndarray, border: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance of each pixel from the background surface fitted over the border strip, and which border
    pixels the fit kept: products touching the frame are trimmed away (median start, two refits)."""
    height, width = border.shape
    colours = smooth[border]
    rows = _design(height, width)
    fitted = np.broadcast_to(np.median(colours, axis=0), colours.shape)
    for _ in range(3):
        off_by = np.linalg.norm(colours - fitted, axis=1)
        inliers = off_by <= max(2 * MIN_CONTRAST, 2.5 * float(np.median(off_by)))
        coefficients, *_ = np.linalg.lstsq(rows[border.ravel()][inliers], colours[inliers], rcond=None)
        fitted = rows[border.ravel()] @ coefficients
    off_by = np.linalg.norm(colours - fitted, axis=1)
    inliers = off_by <= max(2 * MIN_CONTRAST, 2.5 * float(np.median(off_by)))
    residual = np.linalg.norm(smooth.reshape(-1, 3) - rows @ coefficients, axis=1).reshape(height, width)
    return residual, inliers


def _design(height: int, width: int) -> np.ndarray:
    """Quadratic surface terms over normalised pixel coordinates, one row per pixel."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    x, y = (x / max(1, width - 1)).ravel(), (y / max(1, height - 1)).ravel()
    return np.stack([np.ones_like(x), x, y, x * y, x * x, y * y], axis=1)


def _components(mask: np.ndarray) -> list[Region]:
    from scipy import ndimage

    height, width = mask.shape
    reach = max(1, round(GROUP * max(height, width)))
    groups, count = ndimage.label(ndimage.binary_dilation(mask, iterations=reach))
    labels = np.where(mask, groups, 0)  # each foreground pixel tagged with its group
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    if not count or areas.max() == 0:
        return []
    largest, total = int(areas.max()), height * width
    regions = []
    for index, found in enumerate(ndimage.find_objects(labels, max_label=count)):
        if found is None:
            continue
        area = int(areas[index])
        ys, xs = found
        box = (xs.start, ys.start, xs.stop, ys.stop)
        box_area = (box[2] - box[0]) * (box[3] - box[1])
        too_thin = min(box[2] - box[0], box[3] - box[1]) < MIN_SIDE_FRACTION * max(height, width)
        if area < MIN_AREA * total or area < MIN_RELATIVE * largest or too_thin or box_area > MAX_COVER * total:
            continue
        regions.append(Region(box, "auto", None, round(area / box_area, 3)))
    return suppress(_attach_parts(regions), limit=MAX_REGIONS)


def _attach_parts(regions: list[Region]) -> list[Region]:
    """A small piece next to a much larger one is part of it (a bag's handle, a fruit's leaf): one box."""
    kept: list[Region] = []
    for region in sorted(regions, key=lambda r: -r.area):
        owner = next((k for k in kept if region.area < PART * k.area and _gap(region.box, k.box) <= _reach(k)), None)
        if owner is None:
            kept.append(region)
            continue
        union = tuple(f(a, b) for f, a, b in zip((min, min, max, max), owner.box, region.box, strict=True))
        kept[kept.index(owner)] = Region(union, "auto", None, owner.confidence)  # type: ignore[arg-type]
    return kept


def _gap(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """Pixels between two boxes (0 when they touch or overlap)."""
    return max(0, max(a[0], b[0]) - min(a[2], b[2]), max(a[1], b[1]) - min(a[3], b[3]))


def _reach(region: Region) -> float:
    x0, y0, x1, y1 = region.box
    return PART_REACH * max(x1 - x0, y1 - y0)


def _shrink(image: Image.Image) -> tuple[Image.Image, tuple[float, float]]:
    picture = image.convert("RGB")
    width, height = picture.size
    factor = WORK_SIDE / max(width, height)
    if factor < 1:
        picture = picture.resize((max(1, round(width * factor)), max(1, round(height * factor))), Image.BILINEAR)
    return picture, (width / picture.size[0], height / picture.size[1])
