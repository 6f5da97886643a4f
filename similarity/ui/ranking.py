"""One ranking-arguments value per event (top-k, minimum score, filter ticks), built here for the
Search-tab handlers and the HTTP API alike.

Gradio passes the ranking components by position, in ``RANK_INPUTS`` order; the API receives them by
keyword. Both end in a ``RankArgs``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import SimilarityError
from ..records import FACET_GROUPS, Filters
from ..search import DEFAULT_TOP_K

if TYPE_CHECKING:
    from ..records import SearchResult
    from ..search import Query, SearchService

RANK_INPUTS = ("top_k", "min_score", *FACET_GROUPS)  # the order of the ranking components in the layout


@dataclasses.dataclass(frozen=True)
class RankArgs:
    """How to rank: ``top_k``, ``min_score`` (None = no minimum) and the ticked values per filter group."""

    top_k: int = DEFAULT_TOP_K
    min_score: float | None = None
    groups: Mapping[str, list[str]] = dataclasses.field(default_factory=lambda: {g: [] for g in FACET_GROUPS})

    @classmethod
    def of(
        cls,
        top_k: Any = DEFAULT_TOP_K,
        min_score: Any = None,
        categories: Any = None,
        brands: Any = None,
        colors: Any = None,
        tags: Any = None,
        *,
        slider: bool = False,
    ) -> RankArgs:
        """From loose values. ``slider``: the page's min-score slider, whose 0 means "no minimum"
        (cosine scores can be negative, so the API's 0 stays a real threshold)."""
        groups = dict(zip(FACET_GROUPS, (categories, brands, colors, tags), strict=True))
        return cls(_whole(top_k), _threshold(min_score, slider), _ticks(groups))

    @classmethod
    def from_inputs(cls, values: Sequence[Any]) -> tuple[RankArgs, Any]:
        """The page's ranking component values (``RANK_INPUTS`` order), optionally followed by the session."""
        count = len(RANK_INPUTS)
        if len(values) not in (count, count + 1):
            raise TypeError(f"expected the {count} ranking inputs ({', '.join(RANK_INPUTS)}) and an optional session")
        session = values[count] if len(values) > count else None
        return cls.of(*values[:count], slider=True), session

    @property
    def filters(self) -> Filters:
        return Filters.of(**self.groups)

    def with_groups(self, groups: Mapping[str, Sequence[str] | None]) -> RankArgs:
        return dataclasses.replace(self, groups=_ticks(groups))

    def rank(self, service: SearchService, query: Query) -> SearchResult:
        """Rank ``query`` by these arguments: the one place the page, the API and the map hand them to the service."""
        return service.rank(query, self.filters, self.top_k, self.min_score)


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
