"""Load: 16 concurrent gradio_client clients × 20 searches against the launched app, all answers correct.

Loopback only, one overall timeout, and the server is shut down by the test itself. Latency figures
come from ``python -m benchmarks.load`` (benchmarks/results/load.md); this test asserts correctness.
"""

from __future__ import annotations

from collections import Counter

import pytest

from benchmarks.load import KINDS, build_catalog, expected_ids, launched, run_load
from similarity.search import SearchService
from similarity.store import open_store

from .test_app_handlers import tiny_settings

pytestmark = [
    pytest.mark.slow,
    # gradio's queue statistics use pandas options that pandas 3 deprecates (noise, not ours)
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting:Warning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated:Warning"),
]

CLIENTS, SEARCHES = 16, 20


def test_concurrent_clients_get_their_own_correct_answers(tiny_embedder, tmp_path):
    store = open_store("memory://")
    items = build_catalog(store, tiny_embedder, CLIENTS + 8, tmp_path)  # a few products nobody queries
    service = SearchService(store, tiny_embedder, None, tiny_settings())
    expected = expected_ids(service, items)
    assert all(expected[i.id, "image"][0] == i.id for i in items)  # the reference itself is sound
    with launched(service) as url:
        assert url.startswith("http://127.0.0.1:")
        report = run_load(url, items[:CLIENTS], expected, SEARCHES, timeout_s=240)
    assert report.finished, "the clients did not finish within the overall timeout"
    assert not report.errors, [(c.client, c.kind, c.error) for c in report.errors[:5]]
    assert len(report.calls) == CLIENTS * SEARCHES
    assert Counter(c.client for c in report.calls) == dict.fromkeys(range(CLIENTS), SEARCHES)
    assert {c.kind for c in report.calls} == set(KINDS)
