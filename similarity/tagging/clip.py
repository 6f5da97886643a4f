"""ClipTagger: offline zero-shot tags from the same OpenCLIP model that embeds the catalog.

Category and subcategory come from prompt ensembles over a flat list of product kinds; colours
blend colour prompts with a dominant-colour count over the product pixels (background removed);
tags come from small vocabularies of materials, styles and uses. Every field has a confidence in
[0, 1]; a field below its threshold is left empty rather than guessed. The prompt embeddings are
built once per embedder (so once per process) and shared by every ClipTagger.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from ..records import ProductTags
from .base import TagCache, TagResult, image_key

if TYPE_CHECKING:
    from ..embedder import OpenClipEmbedder

# category -> product kinds (the subcategories); "other" catches what the catalog does not sell
KINDS: dict[str, tuple[str, ...]] = {
    "bags": ("backpack", "handbag", "tote bag", "duffel bag", "wallet", "suitcase", "laptop bag"),
    "electronics": ("smartphone", "laptop", "smartwatch", "headphones", "earbuds", "speaker", "tablet", "camera"),
    "shoes": ("sneakers", "running shoes", "boots", "sandals", "high heels", "formal shoes", "slippers"),
    "watches": ("wristwatch", "analog watch", "digital watch"),
    "snacks": ("potato chips", "namkeen", "packaged snack", "biscuits", "chocolate bar"),
    "fruits-vegetables": ("apple", "banana", "orange", "mango", "tomato", "potato", "onion", "leafy greens"),
    "other": ("t-shirt", "dress", "furniture", "toy", "book", "kitchenware", "cosmetics", "bottle"),
}
KIND_TEMPLATES = (
    "a photo of a {}.",
    "a product photo of a {}.",
    "a close-up photo of a {}.",
    "a {} on a plain background.",
)
TAG_GROUPS: dict[str, tuple[str, ...]] = {
    "material": ("leather", "canvas", "plastic", "metal", "fabric", "rubber", "wooden", "glass"),
    "style": ("casual", "formal", "sporty", "vintage", "minimalist", "luxury"),
    "use": ("travel", "office", "outdoor", "fitness", "everyday", "party"),
}
TAG_TEMPLATES = ("a photo of a {} product.", "a {} item.")
AUDIENCE_CLASSES = {"men": "men", "women": "women", "kids": "children", "unisex": "everyone"}
AUDIENCE_TEMPLATES = ("a product made for {}.", "a photo of a product for {}.")
COLOR_TEMPLATES = ("a photo of a {} product.", "a {} object.")
# reference RGB values for the dominant-colour check ("multicolor" is decided separately)
PALETTE: dict[str, tuple[int, int, int]] = {
    "black": (20, 20, 20), "white": (245, 245, 245), "grey": (128, 128, 128), "silver": (192, 192, 192),
    "gold": (212, 175, 55), "red": (200, 30, 30), "orange": (240, 130, 30), "yellow": (240, 220, 40),
    "green": (40, 150, 60), "blue": (40, 90, 200), "navy": (20, 30, 80), "purple": (120, 50, 160),
    "pink": (240, 150, 190), "brown": (120, 70, 30), "beige": (225, 205, 165),
}  # fmt: skip
MIN_CONFIDENCE = {"category": 0.4, "subcategory": 0.3, "colors": 0.3, "tags": 0.2, "target_audience": 0.5}
LOGIT_SCALE = 100.0  # CLIP's usual zero-shot temperature
MIN_PIXEL_SHARE = 0.05
BACKGROUND_DISTANCE = 40  # a pixel this close (max channel difference) to the border colour is background


class _Heads:
    """Prompt embeddings for every head: name -> (labels, (n_labels, dim) matrix)."""

    def __init__(self, embedder: Any) -> None:
        kinds = [kind for group in KINDS.values() for kind in group]
        self.kind_category = np.array([cat for cat, group in KINDS.items() for _ in group])
        self.heads: dict[str, tuple[list[str], np.ndarray]] = {
            "kind": (kinds, embedder.classifier(kinds, KIND_TEMPLATES)),
            "colors": (list(PALETTE), embedder.classifier(list(PALETTE), COLOR_TEMPLATES)),
            "audience": (
                list(AUDIENCE_CLASSES),
                embedder.classifier(list(AUDIENCE_CLASSES.values()), AUDIENCE_TEMPLATES),
            ),
        }
        for group, words in TAG_GROUPS.items():
            self.heads[group] = (list(words), embedder.classifier(list(words), TAG_TEMPLATES))

    def probs(self, head: str, vector: np.ndarray) -> tuple[list[str], np.ndarray]:
        labels, weights = self.heads[head]
        logits = LOGIT_SCALE * (weights @ vector)
        exp = np.exp(logits - logits.max())
        return labels, exp / exp.sum()


_HEADS: weakref.WeakKeyDictionary[Any, _Heads] = weakref.WeakKeyDictionary()
_HEADS_LOCK = threading.Lock()


def _heads_for(embedder: Any) -> _Heads:
    """The prompt embeddings of ``embedder``, built on first use (thread-safe, once per embedder)."""
    with _HEADS_LOCK:
        heads = _HEADS.get(embedder)
        if heads is None:
            heads = _HEADS[embedder] = _Heads(embedder)
        return heads


class ClipTagger:
    """Offline zero-shot tagger. ``min_confidence`` overrides per-field thresholds (a float sets all)."""

    name = "clip"

    def __init__(
        self,
        embedder: OpenClipEmbedder,
        min_confidence: Mapping[str, float] | float | None = None,
        cache_size: int = 512,
    ) -> None:
        self.embedder = embedder
        if isinstance(min_confidence, int | float):
            min_confidence = dict.fromkeys(MIN_CONFIDENCE, float(min_confidence))
        self.min_confidence = {**MIN_CONFIDENCE, **(min_confidence or {})}
        self.cache = TagCache(cache_size)

    def tag(self, image: Image.Image, *, key: str | None = None, vector: np.ndarray | None = None) -> TagResult:
        key = key or image_key(image)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        heads = _heads_for(self.embedder)
        if vector is None:
            vector = self.embedder.embed_images([image])[0]
        fields, confidence = self._describe(heads, np.asarray(vector, np.float32), image)
        result = TagResult(ProductTags.model_validate(fields), self.name, confidence)
        self.cache.put(key, result)
        return result

    def _describe(self, heads: _Heads, vector: np.ndarray, image: Image.Image) -> tuple[dict, dict[str, float]]:
        fields: dict[str, Any] = {}
        confidence: dict[str, float] = {}
        ok = self.min_confidence
        category, kind, confidence["category"], confidence["subcategory"] = _category(heads, vector)
        if confidence["category"] >= ok["category"]:
            fields["category"] = category
            if confidence["subcategory"] >= ok["subcategory"]:
                fields["subcategory"] = kind
        fields["colors"], confidence["colors"] = _colors(heads, vector, image, ok["colors"])
        fields["tags"], confidence["tags"] = _tags(heads, vector, ok["tags"])
        labels, probs = heads.probs("audience", vector)
        confidence["target_audience"] = float(probs.max())
        if probs.max() >= ok["target_audience"]:
            fields["target_audience"] = labels[int(probs.argmax())]
        if fields.get("subcategory"):
            fields["name"] = " ".join([*fields["colors"][:1], fields["subcategory"]]).capitalize()
        return fields, {k: round(min(max(v, 0.0), 1.0), 4) for k, v in confidence.items()}


def _category(heads: _Heads, vector: np.ndarray) -> tuple[str, str, float, float]:
    """Best category (its kinds' probabilities summed) and its best kind (absolute probability)."""
    kinds, probs = heads.probs("kind", vector)
    categories = list(KINDS)
    totals = np.array([probs[heads.kind_category == c].sum() for c in categories])
    best = categories[int(totals.argmax())]
    inside = np.where(heads.kind_category == best, probs, -1.0)
    kind = int(inside.argmax())
    return best, kinds[kind], float(totals.max()), float(probs[kind])


def _colors(heads: _Heads, vector: np.ndarray, image: Image.Image, threshold: float) -> tuple[list[str], float]:
    """Up to 3 colours, scored 30% by colour prompts and 70% by the share of product pixels."""
    labels, prompt = heads.probs("colors", vector)
    pixels = pixel_colors(image)
    scores = 0.3 * prompt + 0.7 * np.array([pixels[c] for c in labels])
    strong = [share for share in pixels.values() if share >= 0.12]
    if len(strong) >= 4:  # many strong colours, none dominant
        confidence = 0.7 * sum(strong)
        return (["multicolor"] if confidence >= threshold else []), confidence
    order = np.argsort(-scores)
    # a colour needs some product pixels too: prompts alone are not trusted
    picked = [labels[i] for i in order[:3] if scores[i] >= threshold and pixels[labels[i]] >= MIN_PIXEL_SHARE]
    return picked, float(scores[order[0]])


def _tags(heads: _Heads, vector: np.ndarray, threshold: float) -> tuple[list[str], float]:
    """The best word of each vocabulary group, kept when clearly above chance."""
    picked, best = [], 0.0
    for group in TAG_GROUPS:
        labels, probs = heads.probs(group, vector)
        top = int(probs.argmax())
        best = max(best, float(probs[top]))
        if probs[top] >= max(threshold, 1.5 / len(labels)):
            picked.append(labels[top])
    return picked, best


def pixel_colors(image: Image.Image) -> dict[str, float]:
    """Share of product pixels nearest each palette colour; the border's median colour is background."""
    small = np.asarray(image.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR), dtype=np.float32)
    border = np.concatenate([small[0], small[-1], small[:, 0], small[:, -1]])
    pixels = small.reshape(-1, 3)
    keep = np.abs(pixels - np.median(border, axis=0)).max(axis=1) > BACKGROUND_DISTANCE
    if keep.mean() < 0.03:  # no clear foreground (e.g. a full-frame photo): use everything
        keep[:] = True
    refs = np.array(list(PALETTE.values()), dtype=np.float32)
    nearest = ((pixels[keep, None, :] - refs[None]) ** 2).sum(axis=2).argmin(axis=1)
    shares = np.bincount(nearest, minlength=len(refs)) / max(int(keep.sum()), 1)
    return {name: float(share) for name, share in zip(PALETTE, shares, strict=True)}
