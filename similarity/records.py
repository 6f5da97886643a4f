"""Plain records shared by every layer: products, filters, matches, results and tag schema."""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator

from .errors import SimilarityError
from .normalize import (
    AUDIENCES,
    CATEGORIES,
    clean_text,
    facet_value,
    facet_values,
    normalize_brand,
    normalize_category,
    normalize_colors,
    normalize_price,
)
from .normalize import COLORS as COLORS  # re-exported: the UI and data_seed read the vocabularies here

# Filter/facet groups: name of the filter argument -> product attribute.
FACET_GROUPS = {"categories": "category", "brands": "brand", "colors": "colors", "tags": "tags"}


@dataclasses.dataclass
class Product:
    """One catalog product. ``id`` is the sha256 of the original image bytes."""

    id: str
    name: str = ""
    category: str = "other"
    subcategory: str = ""
    brand: str | None = None
    colors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    target_audience: str | None = None
    price: float | None = None
    description: str = ""
    thumbnail: bytes | None = dataclasses.field(default=None, repr=False)
    image_url: str | None = None
    source: str = ""
    embedding_model: str = ""
    embedding: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)
    created_at: float = 0.0
    updated_at: float = 0.0

    @classmethod
    def from_metadata(cls, id: str, meta: dict[str, Any], **extra: Any) -> Product:
        """Build a product from loose metadata (CSV row, dataset record, tags), normalising it."""
        meta = {**meta, **extra}
        audience = facet_value(meta.get("target_audience"))
        return cls(
            id=id,
            name=clean_text(meta.get("name"), 80),
            category=normalize_category(meta.get("category")),
            subcategory=facet_value(meta.get("subcategory")),
            brand=normalize_brand(meta.get("brand")),
            colors=normalize_colors(meta.get("colors")),
            tags=facet_values(meta.get("tags")),
            target_audience=audience if audience in AUDIENCES else None,
            price=normalize_price(meta.get("price")),
            description=clean_text(meta.get("description"), 200),
            thumbnail=meta.get("thumbnail"),
            image_url=meta.get("image_url") or None,
            source=clean_text(meta.get("source"), 200),
            embedding_model=str(meta.get("embedding_model") or ""),
            embedding=meta.get("embedding"),
        )

    def facet(self, attribute: str) -> tuple[str, ...]:
        """Values of a facet attribute as a tuple (single-valued attributes give 0 or 1 items)."""
        value = getattr(self, attribute)
        if isinstance(value, tuple):
            return value
        return (value,) if value else ()

    def metadata(self) -> dict[str, Any]:
        """JSON-able metadata (no thumbnail, no embedding)."""
        skip = {"thumbnail", "embedding"}
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip}
        data["colors"], data["tags"] = list(self.colors), list(self.tags)
        return data


@dataclasses.dataclass(frozen=True)
class Filters:
    """Checkbox filters: OR within a group, AND across groups."""

    categories: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    colors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    price_min: float | None = None  # a price range keeps only priced products inside it (bounds included)
    price_max: float | None = None

    @classmethod
    def of(cls, price_min: object = None, price_max: object = None, **groups: object) -> Filters:
        """Normalise loose input (None, strings, lists, labels like ``nike (4)``) into filters."""
        low, high = _price_bound(price_min, "price_min"), _price_bound(price_max, "price_max")
        if low is not None and high is not None and low > high:
            raise SimilarityError("The price range is reversed: price_min is above price_max.")
        return cls(**{name: _filter_values(groups.get(name)) for name in FACET_GROUPS}, price_min=low, price_max=high)

    def groups(self) -> dict[str, tuple[str, ...]]:
        return {name: getattr(self, name) for name in FACET_GROUPS}

    def without(self, group: str) -> Filters:
        return dataclasses.replace(self, **{group: ()})

    @property
    def priced(self) -> bool:
        """A price range is set."""
        return self.price_min is not None or self.price_max is not None

    def without_price(self) -> Filters:
        return dataclasses.replace(self, price_min=None, price_max=None)

    def price_mask(self, prices: np.ndarray) -> np.ndarray:
        """Which of ``prices`` (NaN = no price) fall in the range; no price never does."""
        keep = ~np.isnan(prices)
        if self.price_min is not None:
            keep &= prices >= self.price_min
        if self.price_max is not None:
            keep &= prices <= self.price_max
        return keep

    def __bool__(self) -> bool:
        return any(self.groups().values()) or self.priced


_COUNT_SUFFIX = re.compile(r"\s+\(\d+\)$")


def _price_bound(value: object, name: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SimilarityError(f"{name} must be a number.") from None
    if number != number or number < 0:
        raise SimilarityError(f"{name} must be a number, 0 or more.")
    return number


def _filter_values(values: object) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        values = [values]
    return facet_values((_COUNT_SUFFIX.sub("", str(v)) for v in values), max_items=64)


# A match's ``thumbnail`` in JSON: False = no key, True = a data URL, or a function giving the value (a URL, None)
Thumbnails = bool | Callable[[Product], str | None]


@dataclasses.dataclass
class Match:
    product: Product
    score: float
    rank: int
    folded: tuple[str, ...] = ()  # near-identical results folded into this one (collapse_duplicates)

    def to_dict(self, thumbnails: Thumbnails = False) -> dict[str, Any]:
        """Id, score, rank and metadata; ``thumbnails`` adds a ``thumbnail`` key (see ``Thumbnails``)."""
        data = {"id": self.product.id, "score": round(float(self.score), 6), "rank": self.rank}
        data.update({k: v for k, v in self.product.metadata().items() if k != "id"})
        if self.folded:
            data["near_identical"] = list(self.folded)
        if callable(thumbnails):
            data["thumbnail"] = thumbnails(self.product)
        elif thumbnails:
            data["thumbnail"] = thumbnail_data_url(self.product.thumbnail)
        return data


Facets = dict[str, dict[str, int]]


@dataclasses.dataclass(frozen=True)
class PriceRange:
    """The price range among some products (the candidates, or the catalog) and how many have no price."""

    min: float | None = None
    max: float | None = None
    priced: int = 0
    unpriced: int = 0

    @classmethod
    def of(cls, prices: np.ndarray, count: int) -> PriceRange:
        if not len(prices):
            return cls(None, None, 0, int(count))
        return cls(float(np.min(prices)), float(np.max(prices)), len(prices), int(count) - len(prices))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class SearchResult:
    matches: list[Match]
    facets: Facets
    timings_ms: dict[str, float]
    model: str
    query: dict[str, Any] = dataclasses.field(default_factory=dict)
    precision: str | None = None  # fp32 | bf16: how the query was embedded (the vector space is the same)
    map_position: tuple[float, float] | None = None  # the query on the catalog map (None: no layout yet)
    device: str | None = None  # where the query was embedded, e.g. "cuda:0 NVIDIA L4" or "cpu"
    prices: PriceRange | None = None  # the candidates' price range (JSON: facets["price"])

    def to_dict(self, thumbnails: Thumbnails = False) -> dict[str, Any]:
        """The documented JSON contract: matches, facets, timings_ms, model (and query; "map" with a layout)."""
        out: dict[str, Any] = {
            "matches": [m.to_dict(thumbnails) for m in self.matches],
            "facets": {**self.facets, "price": self.prices.to_dict()} if self.prices else self.facets,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "model": self.model,
            "precision": self.precision,
            "device": self.device,
            "query": self.query,
        }
        if self.map_position is not None:
            out["map"] = {"x": round(self.map_position[0], 5), "y": round(self.map_position[1], 5)}
        return out


def thumbnail_data_url(data: bytes | None) -> str | None:
    if not data:
        return None
    mime = "image/jpeg" if data[:3] == b"\xff\xd8\xff" else "image/webp"
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


class ProductTags(BaseModel):
    """What a tagger sees in a photo. Lenient on input: bad values are clipped or dropped."""

    model_config = ConfigDict(extra="ignore")

    name: str = ""
    category: Literal[CATEGORIES] = "other"  # type: ignore[valid-type]
    subcategory: str = ""
    colors: list[str] = []
    brand: str | None = None
    tags: list[str] = []
    target_audience: Literal[AUDIENCES] | None = None  # type: ignore[valid-type]
    price: float | None = None
    description: str = ""

    _clip = field_validator("name", mode="before")(lambda v: clean_text(v, 80))
    _sub = field_validator("subcategory", mode="before")(lambda v: facet_value(v))
    _desc = field_validator("description", mode="before")(lambda v: clean_text(v, 200))
    _cat = field_validator("category", mode="before")(lambda v: normalize_category(v))
    _colors = field_validator("colors", mode="before")(lambda v: list(normalize_colors(v)))
    _brand = field_validator("brand", mode="before")(lambda v: normalize_brand(v))
    _tags = field_validator("tags", mode="before")(lambda v: list(facet_values(v, 30)))
    _price = field_validator("price", mode="before")(lambda v: normalize_price(v))

    @field_validator("target_audience", mode="before")
    @classmethod
    def _audience(cls, value: object) -> str | None:
        audience = facet_value(value)
        return audience if audience in AUDIENCES else None
