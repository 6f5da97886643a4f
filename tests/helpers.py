"""Test helpers: generated images, vectors and products (no binary fixtures)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

from similarity.records import Product

TINY_MODEL = "tiny-test"
# fp32 pinned: on a CPU with AVX512_BF16 or AMX, ``auto`` times a bf16 probe, and the tiny model's runs take
# a millisecond or two, so its choice is noise; two processes could then embed the same photo ~3e-3 apart
TINY_PRECISION = "fp32"
TINY_ENV = {
    "SIMILARITY_CLIP_MODEL": TINY_MODEL,
    "SIMILARITY_CLIP_PRETRAINED": "none",
    "HF_HUB_OFFLINE": "1",
    "SIMILARITY_PRECISION": TINY_PRECISION,
}


def make_image(color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (96, 80), shape: int = 0):
    """A small generated product-like picture: a coloured shape on white."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    w, h = size
    box = (w // 6 + shape % 5, h // 6, w - w // 6, h - h // 6 - shape % 7)
    (draw.ellipse if shape % 2 else draw.rectangle)(box, fill=color)
    return image


def image_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def random_unit_vectors(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_products(n: int, dim: int = 8, seed: int = 0, model: str = "test/none") -> list[Product]:
    """Products with known vectors and facet values spread over a few brands/colours/tags."""
    vectors = random_unit_vectors(n, dim, seed)
    categories = ["bags", "shoes", "electronics", "watches"]
    brands = ["acme", "globex", "initech", None]
    colors = ["red", "blue", "black", "green", "white"]
    return [
        Product(
            id=f"{i:064x}",
            name=f"Product {i}",
            category=categories[i % 4],
            brand=brands[i % 4],
            colors=(colors[i % 5],) + ((colors[(i + 2) % 5],) if i % 3 == 0 else ()),
            tags=("leather",) if i % 2 else ("canvas", "travel"),
            price=float(10 + i),
            thumbnail=b"thumb%d" % i,
            embedding=vectors[i],
            embedding_model=model,
            source="test",
        )
        for i in range(n)
    ]
