"""ClipTagger mechanics with the tiny random-init model: shapes, confidences, caching, prompt reuse.

Random weights make the zero-shot answers meaningless, so these tests check mechanics, not accuracy;
only the dominant-colour check (pure pixel arithmetic) is checked for the right answer.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pytest

from similarity.normalize import AUDIENCES, CATEGORIES, COLORS
from similarity.records import ProductTags
from similarity.tagging.clip import TAG_GROUPS, ClipTagger, pixel_colors

from .helpers import make_image

HEADS = 3 + len(TAG_GROUPS)  # kinds, colours, audiences + one per tag group
FIELDS = {"category", "subcategory", "colors", "tags", "target_audience"}


class CountingEmbedder:
    """Wraps the real tiny embedder and counts model work."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.image_calls = 0
        self.classifier_calls = 0
        self._lock = threading.Lock()

    def embed_images(self, images: Sequence) -> np.ndarray:
        with self._lock:
            self.image_calls += 1
        return self.inner.embed_images(images)

    def classifier(self, classnames: Sequence[str], templates: Sequence[str]) -> np.ndarray:
        with self._lock:
            self.classifier_calls += 1
        return self.inner.classifier(classnames, templates)


@pytest.fixture(scope="module")
def counting(tiny_embedder: object) -> CountingEmbedder:
    return CountingEmbedder(tiny_embedder)


def test_result_shape_types_and_confidences(counting: CountingEmbedder) -> None:
    result = ClipTagger(counting).tag(make_image((200, 30, 30)))
    assert result.tagger == "clip" and result.ok and not result.error
    tags = result.tags
    assert isinstance(tags, ProductTags)
    assert tags.category in CATEGORIES and tags.target_audience in (*AUDIENCES, None)
    assert set(tags.colors) <= set(COLORS) and len(tags.colors) <= 3
    assert all(isinstance(t, str) and t == t.lower() for t in tags.tags) and len(tags.tags) <= len(TAG_GROUPS)
    assert tags.brand is None and tags.price is None  # CLIP cannot read brands or prices
    assert set(result.confidence) == FIELDS
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in result.confidence.values())
    assert tags.colors == ["red"]  # the dominant-colour check decides (prompts alone never add a colour)


def test_low_confidence_fields_are_left_empty(counting: CountingEmbedder) -> None:
    strict = ClipTagger(counting, min_confidence=1.01).tag(make_image((30, 150, 60)))
    assert strict.tags == ProductTags()  # nothing guessed: "other", no colours, tags, audience or name
    assert set(strict.confidence) == FIELDS  # the confidences are still reported
    lenient = ClipTagger(counting, min_confidence=0.0).tag(make_image((30, 150, 60)))
    assert lenient.tags.subcategory and lenient.tags.name
    assert len(lenient.tags.tags) == len(TAG_GROUPS)
    assert lenient.tags.colors[0] == "green"


def test_results_are_cached_by_image_hash(counting: CountingEmbedder) -> None:
    tagger = ClipTagger(counting)
    before = counting.image_calls
    first = tagger.tag(make_image((240, 130, 30), shape=1))
    again = tagger.tag(make_image((240, 130, 30), shape=1))  # equal pixels, new object
    assert again is first and counting.image_calls == before + 1
    tagger.tag(make_image((240, 130, 30), shape=2))
    assert counting.image_calls == before + 2


def test_a_given_vector_skips_the_image_model(counting: CountingEmbedder, tiny_embedder: object) -> None:
    image = make_image((120, 50, 160), shape=3)
    vector = tiny_embedder.embed_images([image])[0]
    before = counting.image_calls
    result = ClipTagger(counting).tag(image, vector=vector)
    assert counting.image_calls == before
    assert result.tags == ClipTagger(counting).tag(image).tags  # same answer as embedding it here


def test_prompts_are_embedded_once_per_embedder_even_under_concurrency(tiny_embedder: object) -> None:
    fresh = CountingEmbedder(tiny_embedder)
    images = [make_image((40 * i, 90, 200 - 30 * i), shape=i) for i in range(4)]
    results: list[object] = [None] * 4

    def work(i: int) -> None:
        results[i] = ClipTagger(fresh).tag(images[i])  # a new tagger per thread, one shared embedder

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(r is not None for r in results)
    ClipTagger(fresh).tag(make_image((10, 10, 10)))
    assert fresh.classifier_calls == HEADS


def test_pixel_colours_ignore_the_background() -> None:
    shares = pixel_colors(make_image((40, 90, 200), size=(120, 100), shape=1))  # blue ellipse on white
    assert shares["blue"] > 0.8 and shares["white"] < 0.05
    assert abs(sum(shares.values()) - 1.0) < 1e-6
    full = pixel_colors(make_image((20, 20, 20), size=(60, 60)).crop((20, 20, 40, 40)))  # no border to remove
    assert full["black"] > 0.99


def test_many_colours_become_multicolor(counting: CountingEmbedder) -> None:
    image = make_image((255, 255, 255), size=(80, 80))
    for i, color in enumerate([(200, 30, 30), (40, 150, 60), (40, 90, 200), (240, 220, 40)]):
        image.paste(color, (10 + 15 * i, 10, 25 + 15 * i, 70))
    assert ClipTagger(counting).tag(image).tags.colors == ["multicolor"]
