"""Source category values -> the app's categories, and a per-category cap.

A value is looked up in the user's map (``--map-category``, ``--category-map``), then in the built-in
synonym table, then by its last word ("Shoulder Bags" -> bags). A value that none of them knows falls
back to the row's subcategory value, then to ``other``; the source value is kept as the subcategory.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from similarity.errors import ConfigError
from similarity.records import CATEGORIES


def category_key(value: object) -> str:
    """The lookup form of a value: ``meta_Cell_Phones_and_Accessories`` -> ``cell phones and accessories``."""
    text = str(value).strip().lower().replace("&", " and ")
    text = re.sub(r"[^a-z0-9]+", " ", text).strip()
    return text[5:] if text.startswith("meta ") else text  # Amazon Reviews 2023 file names: meta_<Category>


_WORDS = {  # single words; the phrases below are matched whole
    "bags": "bag handbag backpack tote purse clutch clutches wallet luggage rucksack satchel duffel duffle messenger",
    "shoes": "shoe shoes footwear sneaker sneakers heels flats sandal slippers boot loafer trainer",
    "watches": "watch watches wristwatch wristwatches",
    "electronics": "electronics mobile mobiles phone smartphone laptop computer tablet headphones earphones earbuds "
    "audio speaker smartwatch smartwatches camera",
    "snacks": "snack chips crisps namkeen",
    "fruits-vegetables": "fruit vegetable produce",
}
_PHRASES = {
    "bags": ("bags and luggage", "luggage and travel gear", "laptop bag"),
    "shoes": ("sports shoes", "casual shoes", "formal shoes", "flip flops"),
    "watches": ("wrist watches",),
    "electronics": (
        "all electronics",
        "mobile phones",
        "cell phones",
        "cell phones and accessories",
        "computers and accessories",
        "smart watch",
        "smart watches",
        "camera and photo",
        "home audio and theater",
        "portable audio and video",
    ),
    "snacks": ("snack foods",),
    "fruits-vegetables": ("fruits and vegetables", "fresh produce"),
}


def _table() -> dict[str, str]:
    table = {word: category for category, words in _WORDS.items() for word in words.split()}
    table.update({phrase: category for category, phrases in _PHRASES.items() for phrase in phrases})
    table.update({category_key(c): c for c in CATEGORIES})  # the app's own names ("fruits vegetables")
    return table


SYNONYMS: dict[str, str] = _table()


def label(value: object) -> str:
    """A source value as a readable subcategory (``meta_Grocery_and_Gourmet_Food`` -> ``Grocery and Gourmet Food``)."""
    text = " ".join(str(value).replace("_", " ").split())
    return text[5:] if text.lower().startswith("meta ") else text


def load_category_map(path: str | Path) -> dict[str, str]:
    """A category map file: a JSON object ``{"Source value": "category"}`` or ``Source value=category`` lines."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeError):
        raise ConfigError(f"Could not read the category map file {str(path)!r}") from None
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise ConfigError(f"The category map file {str(path)!r} is not valid JSON") from None
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise ConfigError(f"The category map file {str(path)!r} must map text to text")
        return dict(data)
    pairs: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        source, sep, target = line.rpartition("=")
        if not sep or not source.strip() or not target.strip():
            raise ConfigError(f"{str(path)!r} line {number}: expected 'Source value=category'")
        pairs[source.strip()] = target.strip()
    return pairs


class CategoryMapper:
    """Maps each row's category onto the app's categories and counts what it could not map."""

    def __init__(self, user_map: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = user_map.items() if isinstance(user_map, Mapping) else user_map
        self.user: dict[str, str] = {}
        for source, target in pairs:
            key = category_key(target).replace(" ", "-")
            if key not in CATEGORIES:
                raise ConfigError(
                    f"Unknown app category {target!r} for {source!r}; categories: {', '.join(CATEGORIES)}"
                )
            self.user[category_key(source)] = key
        self.unmapped: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()

    def lookup(self, value: object) -> str | None:
        """The app category for one source value, or None."""
        key = category_key(value)
        if not key:
            return None
        for table in (self.user, SYNONYMS):
            found = table.get(key) or (table.get(key[:-1]) if key.endswith("s") else None)
            if found:
                return found
        last = key.rsplit(" ", 1)[-1]
        return SYNONYMS.get(last) if last != key else None  # "shoulder bags" -> bags; user keys match whole only

    def apply(self, meta: dict[str, Any]) -> dict[str, Any]:
        """Set ``meta['category']`` to an app category; the source value is kept as the subcategory when none is."""
        values = _values(meta.get("category"))
        category = next((c for c in map(self.lookup, reversed(values)) if c), None)  # the most specific first
        if category is None:
            category = next((c for c in map(self.lookup, reversed(_values(meta.get("subcategory")))) if c), None)
        if category is None and values:
            self.unmapped[label(values[-1])] += 1
        if values and not meta.get("subcategory") and category_key(values[-1]) != category_key(category or ""):
            meta["subcategory"] = label(values[-1])
        meta["category"] = category or "other"
        self.counts[meta["category"]] += 1
        return meta

    def summary(self, top: int = 10) -> list[str]:
        lines = []
        if self.counts:
            ordered = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
            lines.append("categories: " + ", ".join(f"{c} {n}" for c, n in ordered))
        if self.unmapped:
            ordered = sorted(self.unmapped.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
            common = ", ".join(f"{value!r} ({n})" for value, n in ordered)
            lines.append(f'unmapped categories (now "other"; map them with --map-category "VALUE=CATEGORY"): {common}')
        return lines


class Balancer:
    """``--per-category N``: lets at most N rows of each category through."""

    def __init__(self, per_category: int | None) -> None:
        self.per_category = per_category
        self.taken: Counter[str] = Counter()
        self.dropped = 0

    def admit(self, category: str) -> bool:
        if self.per_category is not None and self.taken[category] >= self.per_category:
            self.dropped += 1
            return False
        self.taken[category] += 1
        return True

    @property
    def full(self) -> bool:
        """Every app category is at its cap: no later row can be taken (the stream can stop)."""
        return self.per_category is not None and all(self.taken[c] >= self.per_category for c in CATEGORIES)

    def summary(self) -> list[str]:
        if self.per_category is None or not self.dropped:
            return []
        return [f"per-category cap {self.per_category}: passed over {self.dropped} rows of full categories"]


def _values(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v) for v in value if str(v).strip()]
    return [str(value)] if value not in (None, "") and str(value).strip() else []
