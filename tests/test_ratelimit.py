"""Catalog writes: a per-client rate limit (checked before the admin token) and the limiter itself."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import gradio as gr
import pytest

from similarity.errors import PermissionDeniedError
from similarity.ratelimit import RateLimiter, client_key
from similarity.search import SearchService
from similarity.store import open_store
from similarity.ui.catalog import CatalogHandlers
from similarity.ui.files import UiFiles

from .helpers import make_image
from .test_app_handlers import tiny_settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def request_from(host: str) -> SimpleNamespace:
    """Stands in for ``gr.Request``: the limiter reads only ``request.client.host``."""
    return SimpleNamespace(client=SimpleNamespace(host=host))


def test_ten_a_minute_per_client_then_a_wait_that_ends():
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    for _ in range(10):
        limiter.check("10.0.0.1")
        clock.now += 1
    with pytest.raises(PermissionDeniedError, match=r"limit is 10 per 60 s\). Try again in 50 s"):
        limiter.check("10.0.0.1")
    limiter.check("10.0.0.2")  # other clients are not affected
    clock.now += 50  # the first attempt leaves the window
    limiter.check("10.0.0.1")
    with pytest.raises(PermissionDeniedError):
        limiter.check("10.0.0.1")
    clock.now += 60
    assert limiter.retry_after("10.0.0.1") == 0


def test_refused_attempts_do_not_extend_the_wait_and_memory_is_bounded():
    clock = Clock()
    limiter = RateLimiter(limit=2, period_s=10, clock=clock, max_keys=3)
    assert [limiter.retry_after("a") for _ in range(2)] == [0, 0]
    for _ in range(5):
        assert limiter.retry_after("a") == 10  # hammering does not push the window out
    clock.now += 10
    assert limiter.retry_after("a") == 0
    for host in "bcdef":
        limiter.retry_after(host)
    assert len(limiter._hits) == 3
    with pytest.raises(ValueError):
        RateLimiter(limit=0)


def test_the_limit_holds_under_concurrent_attempts():
    limiter = RateLimiter(limit=10, period_s=60)
    allowed = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait()
        allowed.extend(limiter.retry_after("1.2.3.4") == 0 for _ in range(5))

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sum(allowed) == 10 and len(allowed) == 40


def test_client_key_reads_the_request_address():
    assert client_key(request_from("203.0.113.9")) == "203.0.113.9"
    assert client_key(None) == client_key(SimpleNamespace(client=None)) == "unknown"


def test_catalog_writes_are_limited_per_client_before_the_token_check(tiny_embedder, tmp_path):
    store = open_store("memory://")
    service = SearchService(store, tiny_embedder, None, tiny_settings(admin_token="right-token"))
    clock = Clock()
    catalog = CatalogHandlers(service, UiFiles(tmp_path / "ui"), limiter=RateLimiter(3, 60, clock=clock))
    photo = tmp_path / "bag.png"
    make_image((120, 70, 30)).save(photo)
    guesser, admin = request_from("198.51.100.7"), request_from("192.0.2.1")
    for guess in ("a", "b", "c"):
        with pytest.raises(gr.Error, match="Wrong admin token"):
            catalog.add_products([str(photo)], "", "", "", None, guess, guesser)
    with pytest.raises(gr.Error, match="Too many catalog changes") as err:
        catalog.add_products([str(photo)], "", "", "", None, "right-token", guesser)  # even the right token
    assert "Try again in 60 s" in err.value.message and store.count() == 0
    _, summary = catalog.add_products([str(photo)], "", "", "", None, "right-token", admin)
    assert summary == "Added 1, duplicates 0, failed 0." and store.count() == 1
    clock.now += 60
    _, again = catalog.add_products([str(photo)], "", "", "", None, "right-token", guesser)
    assert again == "Added 0, duplicates 1, failed 0."
