"""A deterministic, offline demo catalog rendered with Pillow (clearly labelled as rendered)."""

from __future__ import annotations

import io
import random
from collections.abc import Callable, Iterator

from PIL import Image, ImageDraw

from similarity.ingest import IngestItem

SIZE = 384
PALETTE = {
    "black": (30, 30, 30), "white": (245, 245, 245), "grey": (128, 128, 128), "silver": (192, 192, 200),
    "gold": (212, 175, 55), "red": (200, 30, 40), "orange": (240, 130, 20), "yellow": (245, 210, 40),
    "green": (40, 150, 60), "blue": (30, 90, 200), "navy": (20, 30, 90), "purple": (120, 50, 160),
    "pink": (235, 120, 170), "brown": (120, 70, 30), "beige": (215, 195, 160),
}  # fmt: skip
# category -> (subcategories, brands, tags, price range, drawing function name)
CATALOG = {
    "bags": (
        ("backpack", "tote", "handbag"),
        ("urbanpack", "carryco", "luxe & co"),
        ("travel", "leather", "canvas"),
        (20, 180),
    ),
    "shoes": (
        ("sneakers", "boots", "sandals"),
        ("stride", "peakrun", "solemate"),
        ("running", "casual", "mesh"),
        (30, 150),
    ),
    "watches": (
        ("analog", "chronograph", "digital"),
        ("tempo", "horologe", "ticktock"),
        ("steel", "classic", "sport"),
        (40, 400),
    ),
    "electronics": (
        ("mobiles", "laptops", "smartwatches", "audio"),
        ("voltix", "nimbus", "sonique"),
        ("wireless", "portable", "smart"),
        (50, 1500),
    ),
    "snacks": (
        ("chips", "namkeens"),
        ("crunchy co", "masala house", "snackly"),
        ("spicy", "salted", "party pack"),
        (1, 8),
    ),
    "fruits-vegetables": (
        ("fruits", "vegetables"),
        ("farmfresh", "green basket", None),
        ("organic", "fresh", "seasonal"),
        (1, 6),
    ),
}
PER_CATEGORY = 9  # 6 x 9 = 54 products


def demo_items(limit: int | None = None) -> Iterator[IngestItem]:
    """The demo catalog as ingest items; identical bytes (and so ids) on every run."""
    count = 0
    for category in CATALOG:
        for i in range(PER_CATEGORY):
            if limit is not None and count >= limit:
                return
            meta = _metadata(category, i)
            yield IngestItem(f"demo/{category}-{i + 1}.png", _renderer(category, meta, i), meta)
            count += 1


def _metadata(category: str, i: int) -> dict:
    subs, brands, tags, (low, high) = CATALOG[category]
    rng = random.Random(f"{category}-{i}")
    colors = ("red", "orange", "yellow", "green", "purple") if category == "fruits-vegetables" else tuple(PALETTE)
    color = colors[(i * 7 + len(category)) % len(colors)]  # 7 is coprime with both palettes
    sub, brand = subs[i % len(subs)], brands[i % len(brands)]
    return {
        "name": f"{(brand or 'fresh').title()} {color.title()} {singular(sub).title()}",
        "category": category,
        "subcategory": sub,
        "brand": brand,
        "colors": [color],
        "tags": [tags[i % len(tags)], tags[(i + 1) % len(tags)]],
        "price": round(rng.uniform(low, high), 2),
        "description": f"Rendered demo product ({category}, {sub}); not a real item.",
        "target_audience": ("men", "women", "unisex", "kids")[i % 4]
        if category in ("bags", "shoes", "watches")
        else None,
        "source": "demo (rendered)",
    }


def singular(word: str) -> str:
    """One product of a subcategory: smartwatches -> smartwatch, mobiles -> mobile (chips stay chips)."""
    if word in _KEEP_PLURAL or not word.endswith("s") or word.endswith("ss"):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "zes", "sses")):
        return word[:-2]
    return word[:-1]


_KEEP_PLURAL = {"chips", "audio"}  # one bag of chips is still "chips"


def _renderer(category: str, meta: dict, i: int) -> Callable[[], bytes]:
    def render() -> bytes:
        image = Image.new("RGB", (SIZE, SIZE), (250, 250, 248))
        draw = ImageDraw.Draw(image)
        color = PALETTE[meta["colors"][0]]
        accent = PALETTE[list(PALETTE)[(i * 3 + 7) % len(PALETTE)]]
        DRAW[category](draw, color, accent, i)
        draw.text((12, SIZE - 22), f"{meta['name']} #{i + 1} - rendered demo", fill=(90, 90, 90))
        buf = io.BytesIO()
        image.save(buf, "PNG", optimize=False)
        return buf.getvalue()

    return render


def _bag(d: ImageDraw.ImageDraw, c: tuple, a: tuple, i: int) -> None:
    top = 120 + (i % 3) * 10
    d.polygon([(90 + i * 3, top), (294 - i * 3, top), (320, 320), (64, 320)], fill=c, outline=a, width=4)
    d.arc((140, top - 80, 244, top + 40), 180, 360, fill=a, width=10)
    d.rectangle((170, top + 40, 214, top + 70), fill=a)


def _shoe(d: ImageDraw.ImageDraw, c: tuple, a: tuple, i: int) -> None:
    heel = 150 if i % 3 == 1 else 200
    d.polygon([(60, heel), (150, heel), (180, 230), (320, 250), (330, 300), (60, 300)], fill=c, outline=a, width=3)
    d.rectangle((60, 300, 332, 316), fill=a)
    for x in range(150, 230, 18):
        d.line((x, 215, x + 12, 235), fill=a, width=4)


def _watch(d: ImageDraw.ImageDraw, c: tuple, a: tuple, i: int) -> None:
    d.rectangle((162, 40, 222, 344), fill=a)
    if i % 3 == 2:
        d.rounded_rectangle((112, 122, 272, 262), 24, fill=c, outline=(40, 40, 40), width=6)
    else:
        d.ellipse((112, 112, 272, 272), fill=c, outline=(40, 40, 40), width=6)
        d.line((192, 192, 192, 140), fill=(20, 20, 20), width=5)
        d.line((192, 192, 232, 200), fill=(20, 20, 20), width=4)


def _electronics(d: ImageDraw.ImageDraw, c: tuple, a: tuple, i: int) -> None:
    kind = i % 4
    if kind == 0:  # phone
        d.rounded_rectangle((132, 50, 252, 330), 22, fill=c, outline=(20, 20, 20), width=5)
        d.rectangle((144, 74, 240, 300), fill=a)
    elif kind == 1:  # laptop
        d.rectangle((90, 90, 294, 230), fill=c, outline=(20, 20, 20), width=5)
        d.polygon([(60, 240), (324, 240), (344, 280), (40, 280)], fill=a)
    elif kind == 2:  # smartwatch
        d.rectangle((167, 50, 217, 334), fill=a)
        d.rounded_rectangle((132, 132, 252, 252), 28, fill=c, outline=(20, 20, 20), width=5)
    else:  # headphones
        d.arc((100, 80, 284, 280), 180, 360, fill=c, width=18)
        d.rounded_rectangle((80, 180, 130, 280), 18, fill=a)
        d.rounded_rectangle((254, 180, 304, 280), 18, fill=a)


def _snack(d: ImageDraw.ImageDraw, c: tuple, a: tuple, i: int) -> None:
    d.polygon([(110, 60), (274, 60), (290, 330), (94, 330)], fill=c, outline=a, width=4)
    d.rectangle((104, 60, 280, 84), fill=a)
    d.ellipse((150, 160, 234, 244), fill=(240, 200, 90))


def _produce(d: ImageDraw.ImageDraw, c: tuple, a: tuple, i: int) -> None:
    if i % 2:
        d.polygon([(192, 60), (250, 300), (134, 300)], fill=c)  # carrot-like vegetable
        d.line((192, 60, 170, 30), fill=(40, 150, 60), width=8)
    else:
        r = 90 + (i % 3) * 10
        d.ellipse((192 - r, 200 - r, 192 + r, 200 + r), fill=c)
        d.ellipse((192, 90, 240, 120), fill=(40, 150, 60))


DRAW = {
    "bags": _bag, "shoes": _shoe, "watches": _watch, "electronics": _electronics,
    "snacks": _snack, "fruits-vegetables": _produce,
}  # fmt: skip
