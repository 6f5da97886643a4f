"""Pure builders for MongoDB: ``$vectorSearch`` and facet pipelines, and the Atlas vector index definition.

Everything here is plain data in, plain data out (no connection), so it is unit-tested as data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ...records import FACET_GROUPS, Facets, Filters, PriceRange

EMBEDDING_PATH = "embedding"
MAX_CANDIDATES = 10_000  # Atlas limit for numCandidates (and for limit)
MIN_CANDIDATES = 200
CANDIDATES_PER_RESULT = 20
FILTER_FIELDS = (*FACET_GROUPS.values(), "price")  # category, brand, colors, tags; price for the range filter
PRICE = "price"  # the price range "facet": min, max, priced and unpriced among the candidates
QUANTIZATIONS = ("scalar", "binary")
_SCORE = {"$meta": "vectorSearchScore"}


def num_candidates(limit: int) -> int:
    """``min(10000, max(20 × limit, 200))``: enough candidates for good HNSW recall, within Atlas' cap."""
    return min(MAX_CANDIDATES, max(CANDIDATES_PER_RESULT * int(limit), MIN_CANDIDATES))


def to_cosine(score: float) -> float:
    """Atlas reports (1 + dot) / 2 for dotProduct/cosine; turn it back into the cosine every store reports."""
    return 2.0 * float(score) - 1.0


def to_search_score(cosine: float) -> float:
    return (float(cosine) + 1.0) / 2.0


def match_filter(filters: Filters) -> dict[str, Any]:
    """OR within a group (``$in``), AND across groups (``$and``); ``{}`` when nothing is ticked."""
    clauses = [{FACET_GROUPS[g]: {"$in": list(values)}} for g, values in filters.groups().items() if values]
    if filters.priced:  # a range never matches a missing price ($gte/$lte compare numbers with numbers)
        bounds = {"$gte": filters.price_min, "$lte": filters.price_max}
        clauses.append({"price": {k: float(v) for k, v in bounds.items() if v is not None}})
    if not clauses:
        return {}
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def vector_search_stage(
    vector: np.ndarray | Sequence[float], filters: Filters, limit: int, index: str, *, exact: bool = False
) -> dict[str, Any]:
    """The ``$vectorSearch`` stage (it must be the first stage of the pipeline)."""
    limit = max(1, min(int(limit), MAX_CANDIDATES))
    stage: dict[str, Any] = {
        "index": index,
        "path": EMBEDDING_PATH,
        "queryVector": [float(x) for x in np.asarray(vector, dtype=np.float32)],
        "limit": limit,
    }
    if exact:
        stage["exact"] = True
    else:
        stage["numCandidates"] = num_candidates(limit)
    where = match_filter(filters)
    if where:
        stage["filter"] = where
    return {"$vectorSearch": stage}


def search_pipeline(
    vector: np.ndarray | Sequence[float], filters: Filters, limit: int, index: str, *, exact: bool = False
) -> list[dict[str, Any]]:
    """Ids and raw scores of the best ``limit`` products; no thumbnails (the page is fetched by id)."""
    return [vector_search_stage(vector, filters, limit, index, exact=exact), {"$project": {"_id": 1, "score": _SCORE}}]


def facet_stage(groups: Iterable[str]) -> dict[str, Any]:
    """``$facet`` with one count per value of each group's attribute (``$unwind`` handles lists and scalars)."""
    return {"$facet": {group: _price_range() if group == PRICE else _counts(group) for group in groups}}


def _counts(group: str) -> list[dict[str, Any]]:
    return [
        {"$unwind": f"${FACET_GROUPS[group]}"},
        {"$group": {"_id": f"${FACET_GROUPS[group]}", "count": {"$sum": 1}}},
    ]


def _price_range() -> list[dict[str, Any]]:
    priced = {"$cond": [{"$isNumber": "$price"}, 1, 0]}
    group = {"_id": None, "min": {"$min": "$price"}, "max": {"$max": "$price"}, "priced": {"$sum": priced}}
    return [{"$group": {**group, "count": {"$sum": 1}}}]


def facet_plan(filters: Filters) -> dict[Filters, list[str]]:
    """Disjunctive facets: each group counted under the OTHER groups' filters; equal filters share one query."""
    plan: dict[Filters, list[str]] = {}
    for group in FACET_GROUPS:
        plan.setdefault(filters.without(group), []).append(group)
    plan.setdefault(filters.without_price(), []).append(PRICE)  # the range among candidates, whatever its bounds
    return plan


def vector_facet_pipeline(
    vector: np.ndarray | Sequence[float],
    filters: Filters,
    groups: Iterable[str],
    limit: int,
    index: str,
    min_score: float | None = None,
) -> list[dict[str, Any]]:
    """Facet counts over the best ``limit`` candidates that pass ``filters`` (and ``min_score``)."""
    fields = {attr: 1 for attr in FILTER_FIELDS}
    pipeline = [vector_search_stage(vector, filters, limit, index), {"$project": {"score": _SCORE, **fields}}]
    if min_score is not None:
        pipeline.append({"$match": {"score": {"$gte": to_search_score(min_score)}}})
    pipeline.append(facet_stage(groups))
    return pipeline


def browse_facet_pipeline(filters: Filters, groups: Iterable[str]) -> list[dict[str, Any]]:
    """Facet counts over every product passing ``filters`` (the catalog tab)."""
    return [{"$match": match_filter(filters)}, facet_stage(groups)]


def facet_counts(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """``[{"_id": value, "count": n}, …]`` -> ``{value: n}`` sorted by count desc, then value; blanks dropped."""
    counts = {str(r["_id"]): int(r["count"]) for r in rows if r.get("_id") not in (None, "") and r.get("count")}
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def merge_facets(results: Mapping[str, Iterable[Mapping[str, Any]]], groups: Iterable[str]) -> Facets:
    return {group: facet_counts(results.get(group, ())) for group in groups if group != PRICE}


def price_range(results: Mapping[str, Iterable[Mapping[str, Any]]]) -> PriceRange:
    """The ``price`` entry of a ``$facet`` result (or of a plain ``$group``) as a ``PriceRange``."""
    rows = list(results.get(PRICE, ()))
    if not rows:
        return PriceRange()
    row = rows[0]
    priced, count = int(row.get("priced") or 0), int(row.get("count") or 0)
    low, high = row.get("min"), row.get("max")
    return PriceRange(float(low) if priced else None, float(high) if priced else None, priced, count - priced)


def catalog_price_pipeline() -> list[dict[str, Any]]:
    """The catalog's price range and how many products have no price (the price control's bounds)."""
    return _price_range()


def vector_index_definition(dimensions: int, quantization: str | None = None) -> dict[str, Any]:
    """Atlas vector index: normalised vectors -> dotProduct; every filterable facet declared as a filter field."""
    if dimensions < 1:
        raise ValueError("dimensions must be positive")
    vector: dict[str, Any] = {
        "type": "vector",
        "path": EMBEDDING_PATH,
        "numDimensions": int(dimensions),
        "similarity": "dotProduct",
    }
    if quantization:
        if quantization not in QUANTIZATIONS:
            raise ValueError(f"quantization must be one of: {', '.join(QUANTIZATIONS)}")
        vector["quantization"] = quantization
    return {"fields": [vector, *({"type": "filter", "path": attr} for attr in FILTER_FIELDS)]}


def index_status(entry: Mapping[str, Any]) -> tuple[bool, str]:
    """(queryable, status) from one ``list_search_indexes`` document."""
    return bool(entry.get("queryable")), str(entry.get("status", "UNKNOWN"))


def definition_key(definition: dict[str, Any]) -> set[tuple]:
    keys = ("type", "path", "numDimensions", "similarity", "quantization")
    return {tuple(None if f.get(k) in (None, "none") else f.get(k) for k in keys) for f in definition.get("fields", [])}


def describe_definition(definition: dict[str, Any]) -> str:
    vector = definition["fields"][0]
    extra = f", {vector['quantization']} quantization" if vector.get("quantization") else ""
    return f"{vector['numDimensions']} dims, {vector['similarity']}{extra}"
