"""The "Why this match?" panel's handlers with a fake explainer at the constructor seam (no browser)."""

from __future__ import annotations

import io

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from similarity.search import SearchService
from similarity.ui.explain import NO_PHOTO, ExplainHandlers
from similarity.ui.files import UiFiles
from similarity.ui.handlers import SearchHandlers

from .helpers import make_image
from .test_app_handlers import tiny_settings
from .test_map_tab import ranking, store  # noqa: F401 - the shared catalog fixture


class FakeExplainer:
    """Records what it was asked to explain; heat = a gradient so the overlay is visible."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, int], tuple[int, int]]] = []

    def explain(self, query: Image.Image, match: Image.Image) -> tuple[np.ndarray, np.ndarray]:
        self.calls.append((query.size, match.size))
        heat = np.linspace(0, 1, 49, dtype=np.float32).reshape(7, 7)
        return heat, heat[::-1].copy()

    def overlay(self, image: Image.Image, heat: np.ndarray) -> Image.Image:
        assert heat.shape == (7, 7)
        return image.convert("RGB")


@pytest.fixture
def service(store, tiny_embedder):  # noqa: F811
    return SearchService(store, tiny_embedder, None, tiny_settings())


@pytest.fixture
def search(service, tmp_path):
    return SearchHandlers(service, UiFiles(tmp_path))


@pytest.fixture
def photo(tmp_path) -> str:
    path = tmp_path / "query.png"
    make_image((30, 60, 200), (150, 110), shape=2).save(path)
    return str(path)


def test_explains_the_clicked_result_only_when_asked(service, search, photo):
    fake = FakeExplainer()
    handlers = ExplainHandlers(service, fake)
    session = search.search(photo, "", "", 0.5, *ranking()).session
    picked, hint = handlers.pick(gr.SelectData(None, {"index": 2, "value": None}), session)
    assert picked == session.ids[2] and "#3" in hint and fake.calls == []  # nothing computed yet

    query_map, match_map, caption = handlers.explain(photo, "", session, picked)
    match = service.store.get([picked])[0]
    assert fake.calls == [((150, 110), Image.open(io.BytesIO(match.thumbnail)).size)]
    assert match_map.size == fake.calls[0][1] and query_map.size == (150, 110)
    assert "result #3" in caption and "Approximate" in caption

    handlers.explain(photo, "", session, None)  # nothing clicked: the top result
    assert len(fake.calls) == 2


def test_more_like_this_explains_against_the_source_products_picture(service, search):
    fake = FakeExplainer()
    handlers = ExplainHandlers(service, fake)
    source = service.store.get([service.store.load_vectors().ids[0]])[0]
    session = search.similar(source.id, *ranking()).session
    handlers.explain(None, "", session, session.ids[0])
    source_size = Image.open(io.BytesIO(source.thumbnail)).size
    assert fake.calls[0][0] == source_size


def test_text_searches_and_missing_sessions_get_a_clear_message(service, search):
    handlers = ExplainHandlers(service, FakeExplainer())
    session = search.search(None, "", "red shoes", 0.5, *ranking()).session
    with pytest.raises(gr.Error, match="explains photo searches"):
        handlers.explain(None, "", session, session.ids[0])
    assert "photo" in NO_PHOTO
    with pytest.raises(gr.Error):
        handlers.explain(None, "", None, None)
    assert handlers.pick(gr.SelectData(None, {"index": 99, "value": None}), session)[0] is None
