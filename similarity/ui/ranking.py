"""One ranking-arguments value per event (top-k, minimum score, filter ticks), built here for the
Search-tab handlers and the HTTP API alike.

Gradio passes the ranking components by position, in ``RANK_INPUTS`` order; the API receives them by
keyword. Both end in a ``RankArgs``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..arrange import Arrange
from ..errors import SimilarityError
from ..records import FACET_GROUPS, Filters
from ..search import DEFAULT_TOP_K

if TYPE_CHECKING:
    from ..records import SearchResult
    from ..search import Query, SearchService

# the order of the ranking components in the layout (the steering controls are in ui/steer.py)
STEER_INPUTS = ("price_min", "price_max", "sort", "within_best", "collapse_duplicates")
RANK_INPUTS = ("top_k", "min_score", *FACET_GROUPS, *STEER_INPUTS)


@dataclasses.dataclass(frozen=True)
class RankArgs:
    """How to rank: ``top_k``, ``min_score`` (None = no minimum), the ticked values per filter group, the
    price range (applied before top-k) and how to arrange the relevant page (sort, cutoff, collapse)."""

    top_k: int = DEFAULT_TOP_K
    min_score: float | None = None
    groups: Mapping[str, list[str]] = dataclasses.field(default_factory=lambda: {g: [] for g in FACET_GROUPS})
    price: tuple[float | None, float | None] = (None, None)
    arrange: Arrange = dataclasses.field(default_factory=Arrange)

    @classmethod
    def of(
        cls,
        top_k: Any = DEFAULT_TOP_K,
        min_score: Any = None,
        categories: Any = None,
        brands: Any = None,
        colors: Any = None,
        tags: Any = None,
        price_min: Any = None,
        price_max: Any = None,
        sort: Any = None,
        within_best: Any = None,
        collapse_duplicates: Any = None,
        *,
        slider: bool = False,
    ) -> RankArgs:
        """From loose values. ``slider``: the page's sliders, whose 0 means "no minimum" / "no cutoff"
        (cosine scores can be negative, so the API's 0 stays a real threshold)."""
        groups = dict(zip(FACET_GROUPS, (categories, brands, colors, tags), strict=True))
        if slider:  # the page's empty price boxes arrive as 0 (or None): no bound
            price_min, price_max = (v or None for v in (price_min, price_max))
        price = Filters.of(price_min=price_min, price_max=price_max)  # checks the range
        within = None if slider and not within_best else within_best
        arrange = Arrange.of(sort, within, collapse_duplicates)
        return cls(
            _whole(top_k), _threshold(min_score, slider), _ticks(groups), (price.price_min, price.price_max), arrange
        )

    @classmethod
    def from_inputs(cls, values: Sequence[Any]) -> tuple[RankArgs, Any]:
        """The page's ranking component values (``RANK_INPUTS`` order), optionally followed by the session.
        The steering controls (``STEER_INPUTS``, last) may be left off: then no price range and relevance order."""
        full, base = len(RANK_INPUTS), len(RANK_INPUTS) - len(STEER_INPUTS)
        count = full if len(values) in (full, full + 1) else base
        if len(values) not in (count, count + 1):
            raise TypeError(f"expected the {full} ranking inputs ({', '.join(RANK_INPUTS)}) and an optional session")
        session = values[count] if len(values) > count else None
        return cls.of(*values[:count], slider=True), session

    @property
    def filters(self) -> Filters:
        return Filters.of(**self.groups, price_min=self.price[0], price_max=self.price[1])

    def with_groups(self, groups: Mapping[str, Sequence[str] | None]) -> RankArgs:
        return dataclasses.replace(self, groups=_ticks(groups))

    def rank(self, service: SearchService, query: Query) -> SearchResult:
        """Rank ``query`` by these arguments: the one place the page, the API and the map hand them to the service."""
        return service.rank(query, self.filters, self.top_k, self.min_score, self.arrange or None)


def _ticks(groups: Mapping[str, Any]) -> dict[str, list[str]]:
    """Ticks per group as lists (a lone string, e.g. an API call's ``categories="shoes"``, is one tick)."""
    return {g: [v] if isinstance(v := groups.get(g), str) else list(v or ()) for g in FACET_GROUPS}


def _whole(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SimilarityError("top_k must be a whole number.") from None


def _threshold(value: Any, slider: bool) -> float | None:
    if value is None or (slider and not value):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise SimilarityError("min_score must be a number.") from None
