"""The "why this match" engine: patch-token maps from one forward pass of the vision tower."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from similarity.embedder import OpenClipEmbedder
from similarity.explain import Explainer

from .helpers import make_image


class CountingVisual:
    """The real vision tower, counting every forward pass through it."""

    def __init__(self, inner) -> None:
        self.inner, self.passes = inner, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, x):
        self.passes += 1
        return self.inner(x)

    def forward_intermediates(self, x, **kwargs):
        self.passes += 1
        return self.inner.forward_intermediates(x, **kwargs)


class CountingEmbedder:
    """The tiny embedder's preprocessing, and its model with a counting vision tower (the constructor seam)."""

    def __init__(self, inner: OpenClipEmbedder) -> None:
        self.inner = inner
        self.visual = CountingVisual(inner.model.visual)
        self.model = type("Model", (), {"visual": self.visual})()

    def preprocess(self, image):
        return self.inner.preprocess(image)


@pytest.fixture
def pictures():
    return make_image((200, 30, 30), (96, 80)), make_image((30, 40, 200), (120, 90), shape=3)


def test_maps_have_the_model_grid_are_normalised_and_cost_one_pass(tiny_embedder, pictures):
    counting = CountingEmbedder(tiny_embedder)
    explainer = Explainer(counting)
    query_heat, match_heat = explainer.explain(*pictures)
    assert counting.visual.passes == 1  # both pictures in one batch, one pass
    assert explainer.grid() == (2, 2)  # the tiny model: 64 px images, 32 px patches
    for heat in (query_heat, match_heat):
        assert heat.shape == (2, 2) and heat.dtype == np.float32
        assert heat.min() == 0.0 and heat.max() == 1.0


def test_maps_are_the_projected_patch_tokens_against_the_other_embedding(tiny_embedder, pictures):
    query_heat, match_heat = Explainer(tiny_embedder).explain(*pictures)
    visual = copy.deepcopy(tiny_embedder.model.visual)
    visual.output_tokens = True  # open_clip's own route to the tokens, on a private copy
    batch = torch.stack([tiny_embedder.preprocess(p) for p in pictures])
    with torch.inference_mode():
        pooled, tokens = visual(batch)
        tokens = tokens @ visual.proj
    tokens = torch.nn.functional.normalize(tokens, dim=-1).numpy()
    pooled = torch.nn.functional.normalize(pooled, dim=-1).numpy()
    for heat, mine, other in ((query_heat, 0, 1), (match_heat, 1, 0)):
        raw = tokens[mine] @ pooled[other]
        assert heat.ravel() == pytest.approx((raw - raw.min()) / (raw.max() - raw.min()), abs=1e-5)
    assert tiny_embedder.model.visual.output_tokens is False  # the shared model was never switched


def test_overlay_keeps_the_picture_and_colours_it(tiny_embedder, pictures):
    explainer = Explainer(tiny_embedder)
    heat = np.array([[1.0, 0.0], [0.0, 0.0]], np.float32)
    shown = explainer.overlay(pictures[0].convert("RGBA"), heat)
    assert shown.mode == "RGB" and shown.size == pictures[0].size
    pixels, original = np.asarray(shown, dtype=int), np.asarray(pictures[0], dtype=int)
    assert not np.array_equal(pixels, original)
    hot, cold = pixels[5, 5], pixels[-5, -5]  # top-left is hot (red), bottom-right cold (blue)
    assert hot[0] > hot[2] and cold[2] > cold[0]


@pytest.mark.slow
def test_vit_b_32_gives_a_7_by_7_map(pictures):
    embedder = OpenClipEmbedder("ViT-B-32", "none", precision="fp32")
    query_heat, match_heat = Explainer(embedder).explain(*pictures)
    assert query_heat.shape == match_heat.shape == (7, 7)
