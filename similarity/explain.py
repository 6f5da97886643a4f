"""Why an image matched: patch-token similarity maps from one extra forward pass (approximate).

Both pictures go through the vision tower together, once. Each picture's patch tokens are projected
into the embedding space (``visual.proj``, as the pooled token is) and compared by cosine with the
OTHER picture's embedding, giving a grid of patch scores (7x7 for ViT-B/32) scaled into [0, 1].
The tokens come from open_clip's public ``forward_intermediates`` (the final block, after ``ln_post``):
the same tensors ``visual.output_tokens = True`` would return, without flipping a flag on the model
that concurrent searches share. It shows where the model "looked", not a faithful attribution.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from .embedder import OpenClipEmbedder

ALPHA = 0.45  # heat over image: the picture stays recognisable under the colours


class Explainer:
    """Why an image matched: patch-token similarity maps from one extra forward pass (approximate).

    ``embedder``: anything with ``preprocess(image) -> tensor`` and a ``model`` whose ``visual`` is an
    open_clip ``VisionTransformer`` (a test can hand in a counting wrapper there).
    """

    approximate = True

    def __init__(self, embedder: OpenClipEmbedder) -> None:
        self.embedder = embedder
        # on a ZeroGPU Space the forward pass runs under spaces.GPU, as the embedder's own calls do
        wrap = getattr(embedder, "gpu_call", None) or (lambda fn: fn)
        self._tokens = wrap(self._forward)

    def _forward(self, batch: Any) -> tuple[np.ndarray, np.ndarray]:
        """Unit patch tokens (2, patches, dim) and unit embeddings (2, dim) of a preprocessed pair."""
        import torch

        visual = self.embedder.model.visual
        # the patch embedding's weights set the input's dtype and device (open_clip's mixed bf16/fp16 cast keeps
        # other parameters, such as the class embedding, in float32)
        conv = getattr(visual, "conv1", None)
        weights = conv.weight if conv is not None else next(iter(visual.parameters()))
        with torch.inference_mode():
            out = visual.forward_intermediates(
                batch.to(weights.device, dtype=weights.dtype), indices=1, normalize_intermediates=True, output_fmt="NLC"
            )
            tokens = out["image_intermediates"][-1]  # (2, patches, width), ln_post applied
            pooled = out["image_features"]  # (2, dim), already projected
            if visual.proj is not None:
                tokens = tokens @ visual.proj
        return _unit(tokens.float().cpu().numpy()), _unit(pooled.float().cpu().numpy())

    def grid(self) -> tuple[int, int]:
        """The model's patch grid (image size / patch size), e.g. (7, 7) for ViT-B/32 at 224 px."""
        visual = self.embedder.model.visual
        return tuple(int(g) for g in visual.grid_size)  # type: ignore[return-value]

    def explain(self, query_image: Image.Image, match_image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
        """Two (grid) float32 maps in [0, 1]: query patches vs the match's embedding, match patches vs the query's."""
        import torch

        batch = torch.stack([self.embedder.preprocess(_rgb(im)) for im in (query_image, match_image)])
        tokens, pooled = self._tokens(batch)
        rows, cols = self.grid()
        query_heat = tokens[0] @ pooled[1]
        match_heat = tokens[1] @ pooled[0]
        return _scaled(query_heat.reshape(rows, cols)), _scaled(match_heat.reshape(rows, cols))

    def overlay(self, image: Image.Image, heat: np.ndarray) -> Image.Image:
        """The heatmap, smoothly resized, in colour over ``image`` (RGB, same size)."""
        base = _rgb(image)
        cells = Image.fromarray(np.uint8(np.clip(np.asarray(heat, dtype=np.float32), 0, 1) * 255), mode="L")
        smooth = np.asarray(cells.resize(base.size, Image.Resampling.BICUBIC), dtype=np.float32) / 255
        colours = Image.fromarray(_colormap(smooth), mode="RGB")
        return Image.blend(base, colours, ALPHA)


def _rgb(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGB" else image.convert("RGB")


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _scaled(heat: np.ndarray) -> np.ndarray:
    """Min-max into [0, 1]; a flat map (no patch stands out) is all zeros."""
    low, high = float(heat.min()), float(heat.max())
    if high - low < 1e-8:
        return np.zeros_like(heat, dtype=np.float32)
    return ((heat - low) / (high - low)).astype(np.float32)


def _colormap(values: np.ndarray) -> np.ndarray:
    """Blue (cold) -> green -> yellow -> red (hot) for values in [0, 1]; (h, w, 3) uint8."""
    anchors = np.array([[40, 60, 200], [40, 190, 120], [250, 220, 50], [220, 40, 40]], dtype=np.float32)
    position = np.clip(values, 0, 1) * (len(anchors) - 1)
    low = np.minimum(position.astype(np.int64), len(anchors) - 2)
    frac = (position - low)[..., None]
    return np.uint8(anchors[low] * (1 - frac) + anchors[low + 1] * frac)
