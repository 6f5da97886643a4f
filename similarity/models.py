"""OpenCLIP model presets and loading (open_clip's registry style): name + weights -> model, transforms, tokenizer."""

from __future__ import annotations

import logging
from typing import Any

from .errors import ModelError
from .preprocess import numpy_tail

log = logging.getLogger(__name__)

# Tiny random-init architecture for tests (open_clip's own test style): builds in ~0.1 s.
TINY_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 32, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
# Registry of model presets: name -> (open_clip architecture, extra model kwargs).
MODEL_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {"tiny-test": ("ViT-B-32", TINY_CONFIG)}
RANDOM_SEED = 0  # random weights are seeded so every process builds the same "random" model
_MISSING_WEIGHTS_HELP = (
    "Could not load OpenCLIP weights {weights!r} for {model}: they are not cached here and cannot be "
    "downloaded. Pre-download them on a machine with internet access (they go to the Hugging Face cache), "
    "set SIMILARITY_CLIP_PRETRAINED to a local checkpoint file, or set SIMILARITY_CLIP_PRETRAINED=none "
    "for random weights (testing only)."
)


def build_model(name: str, pretrained: str, device: str) -> tuple[Any, Any, Any]:
    """(model in eval mode on ``device``, preprocess with the numpy tail, tokenizer); ModelError if it fails.

    ``pretrained`` ``none`` gives seeded random weights (announced in the log)."""
    import open_clip
    import torch

    arch, kwargs = MODEL_PRESETS.get(name, (name, {}))
    random_weights = pretrained.lower() == "none"
    if pretrained.lower() == "openai" and arch == "ViT-B-32":
        arch = "ViT-B-32-quickgelu"  # OpenAI's weights were trained with QuickGELU
    try:
        if random_weights:
            log.warning("SIMILARITY_CLIP_PRETRAINED=none: using RANDOM weights (%s); results are meaningless", arch)
            with torch.random.fork_rng():
                torch.manual_seed(RANDOM_SEED)
                model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=None, **kwargs)
        else:
            model, _, preprocess = open_clip.create_model_and_transforms(
                arch, pretrained=pretrained, require_pretrained=True, **kwargs
            )
        tokenizer = open_clip.get_tokenizer(arch)
    except Exception as exc:  # open_clip raises many types (RuntimeError, OSError, HF errors)
        log.debug("model load failed: %s", type(exc).__name__)
        if random_weights:
            raise ModelError(f"Could not build the OpenCLIP model {name!r}.") from None
        raise ModelError(_MISSING_WEIGHTS_HELP.format(weights=pretrained, model=arch)) from None
    model.eval().to(device)
    return model, numpy_tail(preprocess), tokenizer
