"""Comparing a ranking from one code path with a reference index, equal up to float rounding.

Two code paths (a patched index and a fresh load, ANN and exact, float16 and float32) may sum a dot product in
another order: on an AVX-512 CPU the BLAS kernel's order depends on the matrix's layout, so scores can differ in
the 8th significant digit and near-tied products may swap places. Everything else must hold exactly, so a
real bug (a stale vector, a wrong row, a missed removal, a facet left behind) still fails:

- every returned id is live in the reference, passes the filters there, and its reference score is within
  ``tol`` of the returned score;
- no product the reference scores more than ``tol`` above the page's last score is missing;
- within the ranking, scores do not increase, and exactly equal scores are ordered by id;
- each facet count lies between the count among rows that must be among the facet candidates and that count
  plus the near-tied rows at the candidates' cut (exactly the reference's count when nothing is near-tied).
"""

from __future__ import annotations

import itertools

import numpy as np

from similarity.records import FACET_GROUPS, Filters
from similarity.store.ranking import Ranking

SCORE_TOL = 1e-6


def assert_ranking_matches(
    got: Ranking,
    reference,  # a VectorIndex: the fresh load
    vector: np.ndarray,
    filters: Filters,
    top_k: int,
    facet_n: int,
    min_score: float | None = None,
    tol: float = SCORE_TOL,
) -> None:
    scores = reference.scores(vector)
    row_of = reference.id_rows()
    passing = _passing(reference, filters, scores, min_score)
    assert_tie_order(got)
    assert len(set(got.ids)) == len(got.ids), "an id twice on one page"
    for id_, score in zip(got.ids, got.scores, strict=True):
        assert id_ in row_of, f"{id_[:12]} is not in the catalog"
        row = row_of[id_]
        assert passing[row], f"{id_[:12]} does not pass {filters}"
        assert abs(float(scores[row]) - score) <= tol, f"{id_[:12]}: score {score} against {scores[row]}"
    expected = min(top_k, int(np.count_nonzero(passing)))
    assert len(got.ids) == expected, f"{len(got.ids)} results, {expected} expected"
    if got.ids:
        floor = got.scores[-1] + tol
        better = {reference.ids[r] for r in np.flatnonzero(passing & (scores > floor))}
        assert better <= set(got.ids), f"left out: {sorted(i[:12] for i in better - set(got.ids))}"
    for group, attr in FACET_GROUPS.items():
        _assert_facet_within_ties(got.facets[group], reference, attr, filters.without(group), scores, facet_n, tol,
                                  min_score)  # fmt: skip


def assert_tie_order(ranking: Ranking) -> None:
    """Scores never increase down the page; exactly equal scores are ordered by id (the ranking rule)."""
    pairs = list(zip(ranking.scores, ranking.ids, strict=True))
    for (s1, i1), (s2, i2) in itertools.pairwise(pairs):
        assert s1 >= s2, f"scores increase: {s1} then {s2}"
        if s1 == s2:
            assert i1 < i2, f"tied at {s1}: {i1[:12]} before {i2[:12]}"


def _passing(reference, filters: Filters, scores: np.ndarray, min_score: float | None) -> np.ndarray:
    mask = reference.mask(filters)
    passing = np.ones(reference.rows, dtype=bool) if mask is None else mask.copy()
    if reference.alive is not None:
        passing &= reference.alive
    if min_score is not None:
        passing &= scores >= min_score
    return passing


def _assert_facet_within_ties(
    counts: dict[str, int],
    reference,
    attr: str,
    filters: Filters,
    scores: np.ndarray,
    facet_n: int,
    tol: float,
    min_score: float | None,
) -> None:
    rows = np.flatnonzero(_passing(reference, filters, scores, min_score))
    ranked = rows[np.argsort(-scores[rows], kind="stable")]
    if len(ranked) <= facet_n:  # every candidate is counted: no cut, so counts are exact
        assert counts == reference.counts(attr, ranked), attr
        return
    cut = float(scores[ranked[facet_n - 1]])
    sure = ranked[scores[ranked] > cut + tol]  # above the cut by more than rounding: counted by every path
    near = ranked[np.abs(scores[ranked] - cut) <= tol]  # near-tied at the cut: some of them are counted
    low, extra = reference.counts(attr, sure), reference.counts(attr, near)
    for value in set(counts) | set(low):
        got = counts.get(value, 0)
        assert low.get(value, 0) <= got <= low.get(value, 0) + extra.get(value, 0), (attr, value, got, low, extra)
    if not len(near) or len(sure) + len(near) == facet_n:
        assert counts == reference.counts(attr, ranked[:facet_n]), attr  # no choice at the cut: exact


def assert_ranking_is_reference(got: Ranking, reference: list[tuple[str, float]], top_k: int,
                                tol: float = SCORE_TOL) -> None:  # fmt: skip
    """``got`` is the first ``top_k`` of ``reference`` (every passing (id, score), best first, from another code
    path): position by position the same id, or an id the reference scores within ``tol`` of that position's
    (a near-tie the two paths may order differently); each score within ``tol``; no id twice."""
    assert len(got.ids) == min(top_k, len(reference)), f"{len(got.ids)} results, {min(top_k, len(reference))} expected"
    assert len(set(got.ids)) == len(got.ids), "an id twice on one page"
    score_of = dict(reference)
    for position, (id_, score) in enumerate(zip(got.ids, got.scores, strict=True)):
        want_id, want_score = reference[position]
        assert abs(score - want_score) <= tol, f"position {position}: score {score} against {want_score}"
        if id_ != want_id:
            assert id_ in score_of, f"position {position}: {id_[:12]} does not pass or is not in the catalog"
            assert abs(score_of[id_] - want_score) <= tol, f"position {position}: {id_[:12]} instead of {want_id[:12]}"


def same_up_to_ties(got: Ranking, want: Ranking, tol: float = SCORE_TOL) -> bool:
    """The same page from two code paths: scores equal within ``tol``, ids equal except that ids within a run of
    near-tied scores may come in another order (and, in a run the page cuts off, be other near-tied ids)."""
    if len(got.ids) != len(want.ids) or not np.allclose(got.scores, want.scores, rtol=0, atol=tol):
        return False
    start = 0
    for end in range(1, len(want.ids) + 1):
        if end == len(want.ids) or want.scores[end - 1] - want.scores[end] > tol:
            if end < len(want.ids) and set(got.ids[start:end]) != set(want.ids[start:end]):
                return False
            start = end
    return True
