"""A decoded picture becomes the working image: first frame, upright (EXIF orientation), 8-bit RGB and bounded.

16-bit and float greys are scaled to 8 bits, transparency is flattened onto white, and big pictures are
box-reduced (the JPEG draft decode's effect, for any format) and shrunk to ``max_side``. ``images.py`` is the
door that decodes; this is what it does to the pixels afterwards.
"""

from __future__ import annotations

import struct

import numpy as np
from PIL import Image

# JPEG draft target: big JPEGs decode at the smallest 1/2..1/8 DCT scale whose sides stay >= this,
# 1.5x the model's 224 px input; the cheaper decode and smaller image make every later resize cheaper
DRAFT_SIZE = 336
_HIGH_DEPTH = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Everything Pillow's decoders are known to raise on hostile input; all of it becomes ImageError.
DECODE_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    struct.error,
    EOFError,
    IndexError,
    TypeError,
    KeyError,
    ZeroDivisionError,
    RuntimeError,
    MemoryError,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)


def upright_size(img: Image.Image) -> tuple[int, int]:
    """The picture's width and height once its EXIF rotation is applied."""
    width, height = img.size
    return (height, width) if _orientation(img) in (5, 6, 7, 8) else (width, height)


def _orientation(img: Image.Image) -> int:
    try:
        value = img.getexif().get(0x0112, 1)
    except DECODE_ERRORS:  # a broken EXIF block must not sink a good picture
        return 1
    return value if value in _TRANSPOSE else 1


def _high_depth_to_rgb(img: Image.Image) -> Image.Image:
    arr = np.nan_to_num(np.asarray(img, dtype=np.float64))
    if img.mode.startswith("I;16"):
        arr = arr / 257.0
    else:
        low, high = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        if img.mode == "F" and low >= 0 and high <= 1:
            arr = arr * 255.0
        elif low >= 0 and 255 < high <= 65535:
            arr = arr / 257.0
        elif low < 0 or high > 65535:  # unknown range: stretch what is there
            arr = (arr - low) * (255.0 / (high - low)) if high > low else np.zeros_like(arr)
    gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return Image.fromarray(gray, "L").convert("RGB")


def _flatten_on_white(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _convert_mode(img: Image.Image) -> Image.Image:
    if img.tell() != 0:  # animations: always the first frame
        img.seek(0)
    mode, transparent = img.mode, "transparency" in img.info
    if mode == "RGB" and not transparent:
        return img
    if mode in _HIGH_DEPTH:
        return _high_depth_to_rgb(img)
    if mode in _ALPHA_MODES or transparent:
        return _flatten_on_white(img)
    return img.convert("RGB")


def shrink(
    img: Image.Image,
    max_side: int | None,
    reducing_gap: float = 2.0,
    resample: Image.Resampling = Image.Resampling.BICUBIC,
) -> Image.Image:
    width, height = img.size
    if max_side is None or max(width, height) <= max_side:
        return img
    scale = max_side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return img.resize(size, resample, reducing_gap=reducing_gap)


def _reduce(img: Image.Image) -> Image.Image:
    """Box-reduce by the largest whole factor that keeps both sides >= DRAFT_SIZE (JPEG draft, for any format)."""
    factor = min(img.size) // DRAFT_SIZE
    return img.reduce(factor) if factor >= 2 else img


def normalise(img: Image.Image, max_side: int | None) -> Image.Image:
    orientation = _orientation(img)
    out = _convert_mode(img)
    if max_side is not None:  # a working image: at most max_side long, no more pixels than the model can use
        out = shrink(_reduce(out), max_side)
    if orientation != 1:
        out = out.transpose(_TRANSPOSE[orientation])
    if out is img:
        out = img.copy()  # never hand back (or later mutate) the caller's or the file-backed object
    out.info = {}  # drop EXIF so nobody applies the orientation a second time
    return out
