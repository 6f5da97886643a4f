"""Shared fixtures: a tiny random-init OpenCLIP model (open_clip's own testing style)."""

from __future__ import annotations

import os

import pytest

from similarity.embedder import OpenClipEmbedder

from .helpers import TINY_MODEL, TINY_PRECISION

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never try to reach the model hub


@pytest.fixture(scope="session")
def tiny_embedder() -> OpenClipEmbedder:
    embedder = OpenClipEmbedder(TINY_MODEL, "none", batch_size=8, precision=TINY_PRECISION)
    embedder.load()
    return embedder
