"""Catalog management: find products by id or id prefix, edit their metadata, remove them.

Used by ``python -m similarity edit|remove`` and the Catalog tab. Edited values go through the same
validation as tagger output (``ProductTags``), except that a value the user typed and the lists do not
know (a category, a colour, a price) is refused instead of silently replaced. Edits never touch the
vector; the store keeps ``created_at`` and moves ``updated_at``. Nothing is written unless every id
given resolves to exactly one product.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .errors import NotFoundError, SimilarityError
from .normalize import (
    CATEGORIES,
    COLORS,
    facet_value,
    facet_values,
    normalize_category,
    normalize_colors,
    normalize_price,
)
from .records import Filters, Product, ProductTags

if TYPE_CHECKING:
    from .store.base import CatalogStore
    from .store.ranking import Ranker

MAX_TAGS = 8  # ProductTags keeps at most this many
_CANDIDATES = 10  # ids listed for an ambiguous prefix


class AmbiguousIdError(SimilarityError):
    """An id prefix matches more than one product; ``candidates`` lists some of them."""

    def __init__(self, prefix: str, candidates: Sequence[str]) -> None:
        count = f"{_CANDIDATES}+" if len(candidates) > _CANDIDATES else str(len(candidates))
        super().__init__(f"{prefix!r} matches {count} products; give more of the id. Nothing changed.")
        self.candidates = list(candidates[:_CANDIDATES])


@dataclasses.dataclass(frozen=True)
class ProductEdit:
    """The fields to change; None leaves a field as it is. Tags can be replaced or added/removed."""

    name: str | None = None
    brand: str | None = None
    category: str | None = None
    subcategory: str | None = None
    price: float | str | None = None
    colors: Sequence[str] | str | None = None
    tags: Sequence[str] | str | None = None
    add_tags: Sequence[str] = ()
    remove_tags: Sequence[str] = ()
    description: str | None = None

    def __bool__(self) -> bool:
        return any(v not in (None, ()) for v in dataclasses.asdict(self).values())


@dataclasses.dataclass
class RemoveReport:
    removed: list[str]
    requested: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"removed": self.removed, "count": len(self.removed), "requested": self.requested}


class CatalogEditor:
    """Edits and removals over a store; ``ranker`` (the shared index) lists products matching filters."""

    def __init__(self, store: CatalogStore, ranker: Ranker | None = None) -> None:
        self.store = store
        self.ranker = ranker

    def resolve(self, ref: str) -> str:
        """The one stored id equal to ``ref`` or starting with it."""
        ref = (ref or "").strip()
        if not ref:
            raise SimilarityError("Give a product id (or the first characters of one).")
        if self.store.existing([ref]):
            return ref
        candidates = self.store.ids_with_prefix(ref, _CANDIDATES + 1)
        if not candidates:
            raise NotFoundError(f"No product has an id starting with {ref[:64]!r}. Nothing changed.")
        if len(candidates) > 1:
            raise AmbiguousIdError(ref[:64], candidates)
        return candidates[0]

    def product(self, ref: str) -> Product:
        found = self.store.get([self.resolve(ref)])
        if not found:
            raise NotFoundError("That product is no longer in the catalog.")
        return found[0]

    def edit(self, ref: str, edit: ProductEdit) -> tuple[Product, list[str]]:
        """Apply ``edit`` to one product; returns it as stored and the names of the fields that changed."""
        if not edit:
            raise SimilarityError("Nothing to change: give at least one field to edit.")
        current = self.product(ref)
        fields = validated_fields(current, edit)
        if not fields:
            return current, []
        edited = self.store.edit(current.id, fields)
        if edited is None:
            raise NotFoundError("That product was removed meanwhile. Nothing changed.")
        return edited, sorted(fields)

    def remove(self, refs: Sequence[str]) -> RemoveReport:
        """Remove every product named (ids or prefixes); nothing is removed if any of them does not resolve."""
        if not refs:
            raise SimilarityError("Give at least one product id to remove.")
        ids = list(dict.fromkeys(self.resolve(r) for r in refs))
        self.store.delete(ids)
        return RemoveReport(removed=ids, requested=list(refs))

    def matching(self, filters: Filters) -> list[str]:
        """Ids of every product passing ``filters`` (at least one filter must be ticked)."""
        if not filters:
            raise SimilarityError("Tick at least one filter first: removing the whole catalog is not offered here.")
        if self.ranker is None:
            raise SimilarityError("Listing products by filter needs the catalog index.")
        total = self.ranker.browse(filters, 0, 0)[1]
        return self.ranker.browse(filters, 0, total)[0]

    def remove_matching(self, filters: Filters, expected: int) -> RemoveReport:
        """Remove the products passing ``filters`` if they are still the ``expected`` number (as confirmed)."""
        ids = self.matching(filters)
        if len(ids) != expected:
            raise SimilarityError(
                f"The filters now match {len(ids)} products, not the {expected} you confirmed. Nothing was removed; "
                "check the list and confirm again."
            )
        self.store.delete(ids)
        return RemoveReport(removed=ids, requested=[])


def validated_fields(current: Product, edit: ProductEdit) -> dict[str, Any]:
    """The changed fields, normalised as tagger output is (``ProductTags``); unknown list values are errors."""
    given: dict[str, Any] = {
        k: v
        for k, v in dataclasses.asdict(edit).items()
        if v is not None and k not in ("add_tags", "remove_tags", "tags")
    }
    if "category" in given:
        _check_category(given["category"])
    if "colors" in given:
        given["colors"] = _checked_colors(given["colors"])
    if "price" in given:
        given["price"] = _checked_price(given["price"])
    tags = _edited_tags(current, edit)
    merged = {**current.metadata(), **given, "tags": tags}
    clean = ProductTags.model_validate(merged)
    out = {
        "name": clean.name,
        "brand": clean.brand,
        "category": clean.category,
        "subcategory": clean.subcategory,
        "price": clean.price,
        "colors": tuple(clean.colors),
        "tags": tuple(clean.tags),
        "description": clean.description,
    }
    changed = {*given, "tags"} if tags != list(current.tags) else set(given)
    return {k: v for k, v in out.items() if k in changed and v != getattr(current, k)}


def _check_category(value: object) -> None:
    if normalize_category(value) == "other" and facet_value(value) != "other":
        raise SimilarityError(f"Unknown category {str(value)[:40]!r}; choose one of: {', '.join(CATEGORIES)}.")


def _checked_colors(value: object) -> tuple[str, ...]:
    wanted = facet_values(value, max_items=16)
    unknown = [c for c in wanted if not normalize_colors([c])]
    if unknown:
        raise SimilarityError(f"Unknown colour {unknown[0][:40]!r}; choose from: {', '.join(COLORS)}.")
    colors = normalize_colors(wanted)
    if len(dict.fromkeys(normalize_colors([c])[0] for c in wanted)) > len(colors):
        raise SimilarityError("A product has at most 3 colours.")
    return colors


def _checked_price(value: object) -> float | None:
    if value is None or str(value).strip().lower() in ("", "none"):
        return None  # clears the price
    price = normalize_price(value)
    if price is None:
        raise SimilarityError(f"The price must be a positive number (got {str(value)[:20]!r}).")
    return price


def _edited_tags(current: Product, edit: ProductEdit) -> list[str]:
    tags = list(facet_values(edit.tags, 30, max_items=64)) if edit.tags is not None else list(current.tags)
    drop = set(facet_values(list(edit.remove_tags), 30, max_items=64))
    tags = [t for t in tags if t not in drop]
    tags += [t for t in facet_values(list(edit.add_tags), 30, max_items=64) if t not in tags]
    if len(tags) > MAX_TAGS:
        raise SimilarityError(f"A product has at most {MAX_TAGS} tags; remove some first.")
    return tags
