"""Generated multi-product scenes (a shopper's photo with several products), for tests and benchmarks.

Products come from the demo catalog's renderer; a scene pastes several of them onto a plain, textured or
gradient background and remembers where each went (``placed``) and where its visible product is
(``visible``: the pixels that differ from the product picture's own background).
"""

from __future__ import annotations

import dataclasses
import io
import random
from collections.abc import Sequence

import numpy as np
from PIL import Image

from .demo import demo_items

CAPTION = 26  # the demo renderer prints the product name in the bottom 22 pixels

KINDS = ("white", "texture", "gradient")


@dataclasses.dataclass
class Scene:
    image: Image.Image
    placed: list[tuple[int, int, int, int]]  # where each product picture was pasted (x0, y0, x1, y1)
    visible: list[tuple[int, int, int, int]]  # the product inside it
    keys: list[str]  # which product (demo item key) each is
    kind: str


def product_pictures(limit: int | None = None) -> list[tuple[str, Image.Image]]:
    """The demo catalog's rendered products (key, picture), without the caption line under each product
    (a scene shows products, not their printed names)."""
    pictures = []
    for item in demo_items(limit):
        picture = Image.open(io.BytesIO(item.read())).convert("RGB")
        pictures.append((item.key, picture.crop((0, 0, picture.width, picture.height - CAPTION))))
    return pictures


def full_bleed(picture: Image.Image) -> Image.Image:
    """The product cropped to its visible box (no blank margin), so its tight box is the whole picture."""
    return picture.crop(_visible_box(picture))


def grid_scene(
    products: Sequence[tuple[str, Image.Image]], kind: str = "white", size: int = 800, seed: int = 0
) -> Scene:
    """Up to four products in a 2x2 grid, each scaled to 60-85% of its cell and jittered."""
    rng = random.Random(seed)
    canvas = background(kind, (size, size), rng)
    cell = size // 2
    scene = Scene(canvas, [], [], [], kind)
    for index, (key, picture) in enumerate(products[:4]):
        side = round(cell * rng.uniform(0.6, 0.85))
        x = (index % 2) * cell + rng.randint(0, cell - side)
        y = (index // 2) * cell + rng.randint(0, cell - side)
        _paste(scene, key, picture, (x, y), side)
    return scene


def pair_scene(products: Sequence[tuple[str, Image.Image]], kind: str = "gradient", seed: int = 0) -> Scene:
    """Two products side by side at different scales (the second 45-70% of the first)."""
    rng = random.Random(seed)
    width, height = 1000, 640
    canvas = background(kind, (width, height), rng)
    scene = Scene(canvas, [], [], [], kind)
    big = round(height * rng.uniform(0.6, 0.8))
    small = round(big * rng.uniform(0.45, 0.7))
    (key_a, pic_a), (key_b, pic_b) = products[:2]
    _paste(scene, key_a, pic_a, (rng.randint(20, 80), rng.randint(20, height - big - 20)), big)
    left = width - small - rng.randint(20, 120)
    _paste(scene, key_b, pic_b, (left, rng.randint(20, height - small - 20)), small)
    return scene


def single_scene(key: str, picture: Image.Image) -> Scene:
    """A clean single-product shot: the picture itself."""
    return Scene(picture.copy(), [(0, 0, *picture.size)], [_visible_box(picture)], [key], "single")


def background(kind: str, size: tuple[int, int], rng: random.Random) -> Image.Image:
    width, height = size
    if kind == "white":
        return Image.new("RGB", size, (255, 255, 255))
    if kind == "gradient":
        start = np.array([rng.randint(150, 210), rng.randint(170, 220), rng.randint(200, 240)], np.float32)
        end = np.array([rng.randint(60, 110), rng.randint(70, 120), rng.randint(110, 170)], np.float32)
        t = np.linspace(0, 1, width, dtype=np.float32)[None, :, None] * 0.7
        t = t + np.linspace(0, 0.3, height, dtype=np.float32)[:, None, None]
        return Image.fromarray((start + (end - start) * t).astype(np.uint8), "RGB")
    if kind == "texture":  # wood-grain-like stripes with noise, the way a table top looks
        gen = np.random.default_rng(rng.randint(0, 2**31))
        base = np.array([rng.randint(120, 170), rng.randint(90, 120), rng.randint(60, 90)], np.float32)
        y, x = np.mgrid[0:height, 0:width].astype(np.float32)
        grain = 18 * np.sin(x / rng.uniform(5, 11) + 3 * np.sin(y / 40.0))[..., None]
        noise = gen.normal(0, 10, (height, width, 1)).astype(np.float32)
        return Image.fromarray(np.clip(base + grain + noise, 0, 255).astype(np.uint8), "RGB")
    raise ValueError(f"unknown background {kind!r}; choose one of: {', '.join(KINDS)}")


def _paste(scene: Scene, key: str, picture: Image.Image, at: tuple[int, int], side: int) -> None:
    scale = side / max(picture.size)
    resized = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))))
    x, y = at
    scene.image.paste(resized, (x, y))
    vx0, vy0, vx1, vy1 = _visible_box(resized)
    scene.placed.append((x, y, x + resized.width, y + resized.height))
    scene.visible.append((x + vx0, y + vy0, x + vx1, y + vy1))
    scene.keys.append(key)


def _visible_box(picture: Image.Image, tolerance: int = 24) -> tuple[int, int, int, int]:
    """The box of the pixels that differ from the picture's corner (its own background)."""
    pixels = np.asarray(picture.convert("RGB"), dtype=np.int16)
    differs = np.abs(pixels - pixels[0, 0]).max(axis=2) > tolerance
    ys, xs = np.nonzero(differs)
    if not len(xs):
        return 0, 0, picture.width, picture.height
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
