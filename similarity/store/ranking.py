"""The ranking contract: ``Ranking``, a ranked page with its facet counts, and ``Ranker``, what ranks a query
vector against a catalog (the shared in-memory index, or a server such as Atlas Vector Search)."""

from __future__ import annotations

import abc
import dataclasses
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..records import Facets, Filters, PriceRange


@dataclasses.dataclass
class Ranking:
    """A ranked page of ids with cosine scores, plus disjunctive facet counts and the candidates'
    price range (under every filter but the price range itself; None: the ranker cannot tell)."""

    ids: list[str]
    scores: list[float]
    facets: Facets
    prices: PriceRange | None = None


class Ranker(abc.ABC):
    """Ranks a query vector against a catalog (shared in-memory index, or a server like Atlas)."""

    @abc.abstractmethod
    def rank(
        self, vector: np.ndarray, filters: Filters, top_k: int, min_score: float | None, facet_n: int
    ) -> Ranking: ...

    @abc.abstractmethod
    def browse(self, filters: Filters, offset: int, limit: int) -> tuple[list[str], int, Facets]:
        """A page of ids in catalog order, the total that pass the filters, and facet counts."""

    def price_range(self) -> PriceRange | None:
        """The catalog's price range and how many products have no price (None: the ranker cannot tell)."""
        return None

    def warm(self) -> None:  # noqa: B027 - optional hook
        """Load what the first query needs ahead of it (a server-side ranker needs nothing)."""

    @property
    def status(self) -> str:
        """``loading``, ``building`` (searchable, still preparing a faster index), ``unavailable`` or ``ready``."""
        return "ready"
