"""The catalog's vocabularies (categories, colours, audiences) and the normalisers that bring loose metadata
(CSV rows, dataset records, a tagger's answer, an edit) to them: cleaned text, lower-case facet values."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

CATEGORIES = ("bags", "electronics", "shoes", "watches", "snacks", "fruits-vegetables", "other")
COLORS = (
    "black", "white", "grey", "silver", "gold", "red", "orange", "yellow",
    "green", "blue", "navy", "purple", "pink", "brown", "beige", "multicolor",
)  # fmt: skip
AUDIENCES = ("men", "women", "kids", "unisex")

_SPACES = re.compile(r"\s+")
_TAGS = re.compile(r"<[^<>]{0,200}>")
_MARKUP = re.compile(r"[<>`]")
_COLOR_ALIASES = {"gray": "grey", "multi": "multicolor", "multicolour": "multicolor", "tan": "beige"}
_NO_BRAND = {"", "unknown", "n/a", "na", "none", "null", "generic", "unbranded", "-"}


def clean_text(value: object, limit: int) -> str:
    """Trim, collapse whitespace, strip markup characters and clip to ``limit`` characters."""
    text = _MARKUP.sub("", _TAGS.sub(" ", html.unescape(str(value or ""))))
    return _SPACES.sub(" ", text).strip()[:limit].strip()


def facet_value(value: object, limit: int = 40) -> str:
    """Normalise a facet value (category, brand, colour, tag): cleaned and lower-case."""
    return clean_text(value, limit).lower()


def facet_values(values: object, limit: int = 40, max_items: int = 8) -> tuple[str, ...]:
    """Normalise a list (or comma-separated string) of facet values, de-duplicated in order."""
    if isinstance(values, str):
        values = values.split(",")
    elif not isinstance(values, Iterable):
        values = ()  # a stray scalar (e.g. a model answering tags: 5) does not fit: dropped
    seen: dict[str, None] = {}
    for item in values or ():
        value = facet_value(item, limit)
        if value:
            seen.setdefault(value, None)
    return tuple(seen)[:max_items]


def normalize_brand(value: object) -> str | None:
    brand = facet_value(value)
    return None if brand in _NO_BRAND else brand


def normalize_colors(values: object) -> tuple[str, ...]:
    colors = (_COLOR_ALIASES.get(c, c) for c in facet_values(values, max_items=16))
    return tuple(dict.fromkeys(c for c in colors if c in COLORS))[:3]


def normalize_category(value: object) -> str:
    category = facet_value(value).replace(" and ", "-").replace(" & ", "-").replace(" ", "-")
    return category if category in CATEGORIES else "other"


def normalize_price(value: object) -> float | None:
    try:
        price = float(str(value).replace(",", "").strip().lstrip("₹$€£"))
    except (TypeError, ValueError):
        return None
    return round(price, 2) if 0 < price < 1e9 else None
