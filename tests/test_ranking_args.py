"""RankArgs: the one ranking-arguments value the Search-tab handlers and the HTTP API both build."""

from __future__ import annotations

import pytest

from similarity.errors import SimilarityError
from similarity.records import Filters
from similarity.ui.ranking import RANK_INPUTS, RankArgs


def test_page_inputs_in_layout_order_with_and_without_a_session():
    args, session = RankArgs.from_inputs([12.0, 0, ["shoes"], [], ["red", "blue"], None, "the session"])
    assert (args.top_k, args.min_score, session) == (12, None, "the session")  # the slider's 0 = no minimum
    assert args.groups == {"categories": ["shoes"], "brands": [], "colors": ["red", "blue"], "tags": []}
    assert args.filters == Filters(categories=("shoes",), colors=("red", "blue"))
    args, session = RankArgs.from_inputs([5, 0.3, [], [], [], []])
    assert (args.top_k, args.min_score, session) == (5, 0.3, None)
    with pytest.raises(TypeError, match="ranking inputs"):
        RankArgs.from_inputs([5, 0.3])
    assert RANK_INPUTS == ("top_k", "min_score", "categories", "brands", "colors", "tags",
                           "price_min", "price_max", "sort", "within_best", "collapse_duplicates")  # fmt: skip


def test_api_values_keep_a_zero_threshold_and_read_lone_strings_as_one_tick():
    args = RankArgs.of("7", 0, categories="shoes", brands=None, colors=["Red (3)"], tags=())
    assert (args.top_k, args.min_score) == (7, 0.0)  # cosine can be negative: 0 is a real threshold here
    assert args.filters == Filters(categories=("shoes",), colors=("red",))


@pytest.mark.parametrize(("top_k", "min_score", "message"), [("many", None, "top_k"), (5, "high", "min_score")])
def test_bad_values_are_short_user_errors(top_k, min_score, message):
    with pytest.raises(SimilarityError, match=message):
        RankArgs.of(top_k, min_score)


def test_with_groups_replaces_the_ticks_only():
    args = RankArgs.of(4, 0.5, categories=["bags"])
    again = args.with_groups({**args.groups, "categories": ["bags", "shoes"]})
    assert (again.top_k, again.min_score, again.groups["categories"]) == (4, 0.5, ["bags", "shoes"])
    assert args.groups["categories"] == ["bags"]


def test_page_inputs_with_the_steering_controls():
    values = [6, 0, [], [], [], [], 10, 50.5, "price_asc", 0, True, "the session"]
    args, session = RankArgs.from_inputs(values)
    assert session == "the session" and args.price == (10.0, 50.5)
    assert args.filters == Filters(price_min=10.0, price_max=50.5)
    assert (args.arrange.sort, args.arrange.within_best, args.arrange.collapse is not None) == ("price_asc", None, True)
    args, _ = RankArgs.from_inputs([6, 0, [], [], [], [], None, None, "relevance", 0.05, False])
    assert (args.price, args.arrange.within_best, args.arrange.collapse) == ((None, None), 0.05, None)
    assert not RankArgs.from_inputs([6, 0, [], [], [], []])[0].arrange  # left off: today's behaviour
    args, _ = RankArgs.from_inputs([6, 0, [], [], [], [], 0, 0, "relevance", 0, False])  # empty page boxes: 0
    assert args.price == (None, None) and RankArgs.of(6, None, price_max=0).price == (None, 0.0)


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"price_min": 50, "price_max": 10}, "reversed"),
        ({"price_min": "cheap"}, "price_min must be a number"),
        ({"price_max": -1}, "0 or more"),
        ({"sort": "popularity"}, "Unknown sort 'popularity'; use one of: relevance, price_asc, price_desc, newest"),
        ({"within_best": "close"}, "within_best must be a number"),
        ({"within_best": 3}, "between 0 and 2"),
        ({"collapse_duplicates": 1.5}, "collapse_duplicates"),
        ({"collapse_duplicates": "maybe"}, "collapse_duplicates"),
    ],
)
def test_bad_steering_values_are_short_user_errors(keywords, message):
    with pytest.raises(SimilarityError, match=message):
        RankArgs.of(5, None, **keywords)
