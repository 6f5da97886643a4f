"""Pixel-level confirmation of a candidate pair from the stored thumbnails.

A difference hash (dHash) on a 16x16 grid: each bit says whether a cell is brighter than its right-hand
neighbour, so it survives resizing, re-encoding, a uniform brightness change and a small watermark; a 95%
crop moves the grid, so a pair is also compared over nine 95% crops of either side. A different photo of a
similar product differs in a third of its bits or more. Two different products with alike grey layouts
are told apart by a coarse colour layout (a 4x4 grid, brightness removed). Measured in
benchmarks/duplicates.py. Thumbnails are JPEG: ``draft`` decodes them at a reduced scale.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

HASH_SIDE = 16  # 16x16 = 256 bits
HASH_BYTES = HASH_SIDE * HASH_SIDE // 8
BITS = HASH_SIDE * HASH_SIDE
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def dhash(image: Image.Image) -> np.ndarray:
    """The 256-bit difference hash of ``image`` as 32 uint8 bytes."""
    gray = ImageOps.grayscale(image) if image.mode != "L" else image
    small = gray.resize((HASH_SIDE + 1, HASH_SIDE), Image.Resampling.BOX)
    cells = np.asarray(small, dtype=np.int16)
    return np.packbits(cells[:, 1:] > cells[:, :-1])


def pixel_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """1 - the share of hash bits that differ (1.0: the same picture at this scale)."""
    return 1.0 - float(_POPCOUNT[np.bitwise_xor(a, b)].sum()) / BITS


def pixel_similarities(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise ``pixel_similarity`` of two (n, 32) hash arrays."""
    if not len(a):
        return np.zeros(0, np.float32)
    return 1.0 - _POPCOUNT[np.bitwise_xor(a, b)].sum(axis=1).astype(np.float32) / BITS


# -- aligned comparison: a 95% crop moves the 16x16 grid by up to most of a cell ------------------
CROP = 0.95
SURE = 0.90  # plain hashes this close: the same picture, no alignment needed
HOPELESS = 0.60  # plain hashes this far apart: no crop aligns them (a different photo)


def decode_small(data: bytes, side: int = 128) -> Image.Image | None:
    """A thumbnail in RGB at about ``side`` px (JPEG decodes at a reduced scale)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (side, side))
            return image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError):
        return None


def _crop_hashes(image: Image.Image) -> list[np.ndarray]:
    w, h = image.size
    cw, ch = w * CROP, h * CROP
    boxes = [
        (fx * (w - cw), fy * (h - ch), fx * (w - cw) + cw, fy * (h - ch) + ch)
        for fx in (0, 0.5, 1)
        for fy in (0, 0.5, 1)
    ]
    return [dhash(image.crop(box)) for box in boxes]


COLOR_GATE = 0.70  # colour layouts this far apart: a different product, whatever the grey hash says


def colour_layout(image: Image.Image) -> np.ndarray:
    """Mean colour of a 4x4 grid over the central 90%, less the picture's mean (brightness shifts cancel)."""
    w, h = image.size
    inner = image.crop((w * 0.05, h * 0.05, w * 0.95, h * 0.95)).resize((4, 4), Image.Resampling.BOX)
    cells = np.asarray(inner, dtype=np.float32)
    return cells - cells.mean(axis=(0, 1))


def colour_similarity(a: np.ndarray, b: np.ndarray) -> float:
    return 1.0 - float(np.abs(a - b).mean()) / 64.0


class PixelHasher:
    """Hashes per product id (the plain hash and those of nine 95% crops, 320 bytes an id), computed once
    from its thumbnail; ``similarity`` compares two products."""

    def __init__(self) -> None:
        self._hashes: dict[str, np.ndarray | None] = {}  # id -> (10, 32): plain first, then the crops
        self._colours: dict[str, np.ndarray] = {}  # id -> (4, 4, 3)

    def add(self, id_: str, thumbnail: bytes | None) -> None:
        if id_ in self._hashes:
            return
        image = decode_small(thumbnail) if thumbnail else None
        if image is None:
            self._hashes[id_] = None
            return
        self._colours[id_] = colour_layout(image)
        grey = image.convert("L")
        self._hashes[id_] = np.stack([dhash(grey), *_crop_hashes(grey)])

    def known(self, id_: str) -> bool:
        return id_ in self._hashes

    def __len__(self) -> int:
        return len(self._hashes)

    def similarity(self, a: str, b: str) -> float | None:
        """Pixel similarity in [0, 1]: the hash similarity (the best over 95% crops of either side), capped by
        the colour-layout similarity where the colours disagree; None without readable thumbnails."""
        ha, hb = self._hashes.get(a), self._hashes.get(b)
        if ha is None or hb is None:
            return None
        colour = colour_similarity(self._colours[a], self._colours[b])
        grey = self._grey(ha, hb)
        return min(grey, colour) if colour < COLOR_GATE else grey

    @staticmethod
    def _grey(ha: np.ndarray, hb: np.ndarray) -> float:
        best = pixel_similarity(ha[0], hb[0])
        if best >= SURE or best < HOPELESS:
            return best
        crops = np.concatenate(
            [
                pixel_similarities(ha[1:], np.broadcast_to(hb[0], ha[1:].shape)),
                pixel_similarities(hb[1:], np.broadcast_to(ha[0], hb[1:].shape)),
            ]
        )
        return max(best, float(crops.max()))
