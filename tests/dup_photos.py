"""Generated product photos and their re-uploads, for the near-duplicate tests and benchmark.

``product_photo(family, shot)``: a photo-like picture (shaded background, texture noise, a lit product
shape). Two shots of one family are *different photos of a similar product* (same shape and colour,
another pose, framing and background): not duplicates. ``reupload(photo, kind)`` is the same picture
resized, re-encoded, cropped to 95%, brightened or watermarked: a near-duplicate.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

REUPLOADS = ("resized", "reencoded", "crop95", "brighter", "darker", "watermark")


def product_photo(family: int, shot: int = 0, size: tuple[int, int] = (480, 400)) -> Image.Image:
    fam = np.random.default_rng(family)
    rng = np.random.default_rng(family * 1000 + shot + 1)
    w, h = size
    base = fam.integers(40, 220, 3)
    colour = tuple(int(c) for c in np.clip(base + rng.integers(-15, 16, 3), 0, 255))
    bg_top, bg_bottom = rng.integers(150, 256, 3), rng.integers(90, 200, 3)
    ramp = np.linspace(0, 1, h)[:, None, None]
    background = bg_top * (1 - ramp) + bg_bottom * ramp + np.zeros((h, w, 3))
    angle = rng.uniform(0, np.pi)
    xs, ys = np.meshgrid(np.arange(w), np.arange(h))
    background += 8 * np.sin((xs * np.cos(angle) + ys * np.sin(angle)) / rng.uniform(15, 60))[..., None]
    background += rng.normal(0, 6, (h, w, 3))
    image = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    cx, cy = w * rng.uniform(0.35, 0.65), h * rng.uniform(0.4, 0.6)
    scale = min(w, h) * rng.uniform(0.3, 0.42)
    kind = int(fam.integers(0, 3))
    points = _outline(kind, cx, cy, scale, rng.uniform(-0.4, 0.4), fam)
    draw.polygon(points, fill=colour, outline=tuple(max(0, c - 60) for c in colour))
    shine = tuple(min(255, c + 70) for c in colour)
    draw.ellipse((cx - scale * 0.5, cy - scale * 0.5, cx - scale * 0.1, cy - scale * 0.25), fill=shine)
    accent = tuple(int(c) for c in fam.integers(0, 256, 3))
    draw.rectangle((cx - scale * 0.2, cy + scale * 0.1, cx + scale * 0.25, cy + scale * 0.22), fill=accent)
    return image.filter(ImageFilter.GaussianBlur(0.8))


def _outline(kind: int, cx: float, cy: float, s: float, tilt: float, fam: np.random.Generator) -> list:
    n = 7 + kind * 2
    radii = 0.7 + 0.3 * fam.random(n)
    if kind == 1:  # a wide, low shape (a shoe)
        radii *= np.where(np.arange(n) % 2, 1.0, 0.6)
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False) + tilt
    sx, sy = (1.4, 0.7) if kind == 1 else (1.0, 1.0)
    return [(cx + s * r * sx * np.cos(a), cy + s * r * sy * np.sin(a)) for r, a in zip(radii, angles, strict=True)]


def reupload(photo: Image.Image, kind: str, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = photo.size
    if kind == "resized":
        f = rng.uniform(0.5, 0.8)
        return photo.resize((int(w * f), int(h * f)), Image.Resampling.BICUBIC)
    if kind == "reencoded":
        return Image.open(io.BytesIO(_jpeg(photo, int(rng.integers(55, 75))))).convert("RGB")
    if kind == "crop95":
        dx, dy = int(w * 0.05 * rng.random()), int(h * 0.05 * rng.random())
        return photo.crop((dx, dy, dx + int(w * 0.95), dy + int(h * 0.95)))
    if kind in ("brighter", "darker"):
        f = 1 + (1 if kind == "brighter" else -1) * rng.uniform(0.06, 0.12)
        return ImageEnhance.Brightness(photo).enhance(f)
    if kind == "watermark":
        out = photo.copy()
        draw = ImageDraw.Draw(out)
        x0, y0 = int(w * rng.uniform(0.65, 0.75)), int(h * rng.uniform(0.82, 0.88))
        draw.rectangle((x0, y0, x0 + w // 5, y0 + h // 14), fill=(255, 255, 255))
        draw.text((x0 + 4, y0 + 2), "shop.example", fill=(20, 20, 20))
        return out
    raise ValueError(f"unknown re-upload {kind!r}; known: {', '.join(REUPLOADS)}")


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def encoded(image: Image.Image) -> bytes:
    """PNG bytes (what a test hands to the seeding pipeline)."""
    return _png(image)


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
