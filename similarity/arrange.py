"""What happens to the relevant set after ranking: a cutoff relative to the best match, near-duplicates
folded into their better-ranked twin, and a sort that only reorders what is relevant.

The relevant set is the top-k by relevance after the filters (the price range included, applied before
top-k by every ranker) and the score thresholds. A sort never reaches beyond it, so "cheapest first"
means the cheapest of the relevant products, not the cheapest in the catalog.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .duplicates.finder import DEFAULT_THRESHOLD, PIXEL_THRESHOLD
from .duplicates.pixel import PixelHasher
from .errors import SimilarityError
from .records import FACET_GROUPS

if TYPE_CHECKING:
    from .records import Filters, Match, Product
    from .store.base import CatalogStore

SORTS = ("relevance", "price_asc", "price_desc", "newest")
# A result folds into a better-ranked one when their cosine is at least this AND their thumbnails agree pixel
# by pixel (the catalog duplicate finder's test: dHash + colour layout, PIXEL_THRESHOLD). The cosine depends on
# the model (benchmarks/steering.py measures re-uploads against distinct pictures; random weights overlap);
# the pixel test does not, so distinct products never fold, whatever the model. Without thumbnails: cosine only.
COLLAPSE_COSINE = DEFAULT_THRESHOLD
COLLAPSE_HEADROOM = 3  # candidates ranked per wanted result when collapsing, so folded ones are replaced


@dataclasses.dataclass(frozen=True)
class Arrange:
    """``sort`` (one of ``SORTS``), ``within_best`` (keep scores >= best - it; None: no cutoff) and
    ``collapse`` (None: off; else the cosine threshold for folding near-duplicates)."""

    sort: str = "relevance"
    within_best: float | None = None
    collapse: float | None = None

    @classmethod
    def of(cls, sort: Any = None, within_best: Any = None, collapse_duplicates: Any = None) -> Arrange:
        """From loose values: ``collapse_duplicates`` True uses ``COLLAPSE_COSINE``; a number in (0, 1] is
        the threshold itself; False/None/0 is off."""
        return cls(_sort(sort), _within(within_best), _collapse(collapse_duplicates))

    def __bool__(self) -> bool:
        return self.sort != "relevance" or self.within_best is not None or self.collapse is not None

    def candidates(self, top_k: int) -> int:
        """How many ranked candidates the page needs (more when near-duplicates may fold away)."""
        return top_k * COLLAPSE_HEADROOM if self.collapse is not None else top_k

    def select(
        self, pairs: list[tuple[str, float]], top_k: int, store: CatalogStore
    ) -> tuple[list[tuple[str, float]], dict[str, list[str]]]:
        """The relevant page of (id, score) in relevance order, and what folded into each kept id."""
        if self.within_best is not None and pairs:
            floor = pairs[0][1] - self.within_best
            pairs = [(i, s) for i, s in pairs if s >= floor]
        if self.collapse is None or len(pairs) < 2:
            return pairs[:top_k], {}
        return fold(pairs, top_k, store, self.collapse)

    def order(self, matches: list[Match]) -> list[Match]:
        """The page reordered by ``sort`` (stable: ties keep relevance order; no price goes last), renumbered."""
        if self.sort == "price_asc":
            matches = sorted(matches, key=lambda m: _price_key(m, 1.0))
        elif self.sort == "price_desc":
            matches = sorted(matches, key=lambda m: _price_key(m, -1.0))
        elif self.sort == "newest":
            matches = sorted(matches, key=lambda m: -float(m.product.created_at or 0.0))
        for rank, match in enumerate(matches, 1):
            match.rank = rank
        return matches


def fold(
    pairs: Sequence[tuple[str, float]], top_k: int, store: CatalogStore, threshold: float
) -> tuple[list[tuple[str, float]], dict[str, list[str]]]:
    """Walk the ranking best first; a result whose cosine to an already kept one is >= ``threshold`` and whose
    thumbnail matches that one's folds into the best such one. Stops once ``top_k`` are kept."""
    ids = [i for i, _ in pairs]
    batch = store.load_vectors_of(ids)
    rows = {id_: r for r, id_ in enumerate(batch.ids)}
    vectors = np.asarray(batch.vectors, dtype=np.float32)
    pictures = _Pictures(store, ids)
    kept: list[tuple[str, float]] = []
    kept_rows: list[int] = []
    folded: dict[str, list[str]] = {}
    for id_, score in pairs:
        row = rows.get(id_)
        if row is not None and kept_rows:
            close = np.flatnonzero(vectors[kept_rows] @ vectors[row] >= threshold)  # in rank order
            twin = next((kept[int(k)][0] for k in close if pictures.same(kept[int(k)][0], id_)), None)
            if twin is not None:
                folded.setdefault(twin, []).append(id_)
                continue
        if len(kept) == top_k:
            break
        kept.append((id_, score))
        if row is not None:
            kept_rows.append(row)
    return kept, folded


class _Pictures:
    """The candidates' thumbnails, read in one store call on first need and hashed per id on demand."""

    def __init__(self, store: CatalogStore, ids: list[str]) -> None:
        self.store, self.ids = store, ids
        self.thumbnails: dict[str, bytes | None] | None = None
        self.hasher = PixelHasher()

    def same(self, a: str, b: str) -> bool:
        if self.thumbnails is None:
            self.thumbnails = {p.id: p.thumbnail for p in self.store.get(self.ids)}
        for id_ in (a, b):
            self.hasher.add(id_, self.thumbnails.get(id_))
        similarity = self.hasher.similarity(a, b)
        return similarity is None or similarity >= PIXEL_THRESHOLD  # no readable thumbnail: the cosine decides


def _price_key(match: Match, sign: float) -> tuple[int, float]:
    price = match.product.price
    return (1, 0.0) if price is None or math.isnan(price) else (0, sign * float(price))


def _sort(value: Any) -> str:
    sort = str(value or "relevance").strip().lower().replace("-", "_")
    if sort not in SORTS:
        raise SimilarityError(f"Unknown sort {str(value)[:40]!r}; use one of: {', '.join(SORTS)}.")
    return sort


def _within(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SimilarityError("within_best must be a number, e.g. 0.05.") from None
    if not 0.0 <= number <= 2.0 or math.isnan(number):
        raise SimilarityError("within_best must be between 0 and 2 (cosine scores span -1 to 1).")
    return number


def _collapse(value: Any) -> float | None:
    if value is None or value is False or value == "" or value == 0:
        return None
    if value is True or (isinstance(value, str) and value.strip().lower() in ("true", "yes", "on")):
        return COLLAPSE_COSINE
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SimilarityError("collapse_duplicates must be true/false or a cosine threshold in (0, 1].") from None
    if not 0.0 < number <= 1.0:
        raise SimilarityError("collapse_duplicates must be true/false or a cosine threshold in (0, 1].")
    return number


def discount(facets: dict[str, dict[str, int]], products: list[Product], filters: Filters) -> None:
    """Remove ``products`` from disjunctive facet counts (each group counts rows passing the OTHER groups)."""
    for product in products:
        for group, attr in FACET_GROUPS.items():
            others = filters.without(group).groups()
            if all(not wanted or set(product.facet(FACET_GROUPS[g])) & set(wanted) for g, wanted in others.items()):
                counts = facets.get(group, {})
                for value in product.facet(attr):
                    if counts.get(value, 0) > 1:
                        counts[value] -= 1
                    else:
                        counts.pop(value, None)
