"""ZeroGPU Spaces: the model's calls run under ``spaces.GPU``, which lends the Space a GPU for each call.

ZeroGPU's rules (Hugging Face's docs and the ``spaces`` package, 0.51): ``import spaces`` before anything
initialises CUDA; move the model to ``cuda`` at start-up, outside the decorated functions (``spaces``
patches torch so that this is recorded, and replayed on the GPU); touch CUDA only inside decorated functions,
which must not be ``async`` and whose arguments are pickled (so the embedder decorates bound methods taking
tensors, arrays and strings only). Off ZeroGPU (``SPACES_ZERO_GPU`` unset) nothing is imported and nothing
is wrapped: ``spaces.GPU`` would be a no-op there anyway.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any

from .errors import ConfigError

log = logging.getLogger(__name__)

DURATION_S = 30  # seconds asked for per call: a batch of 256 photos takes well under one on a GPU
Wrapper = Callable[[Callable[..., Any]], Callable[..., Any]]


def gpu_call(enabled: bool, spaces: ModuleType | None = None, duration: int = DURATION_S) -> Wrapper | None:
    """``spaces.GPU(duration=...)`` on a ZeroGPU Space (``enabled``: SPACES_ZERO_GPU), else None (no wrapping).

    ``spaces`` is the module (tests pass a fake); by default it is imported here, which must happen before
    torch touches CUDA: ``build.build_service`` calls this before the model is built."""
    if not enabled:
        return None
    module = spaces or _import_spaces()
    log.info("ZeroGPU: the model's calls run under spaces.GPU(duration=%d)", duration)
    return module.GPU(duration=duration)


def _import_spaces() -> ModuleType:
    try:
        return importlib.import_module("spaces")
    except ImportError:
        raise ConfigError(
            "SPACES_ZERO_GPU is set, but the spaces package is not installed: pip install spaces"
        ) from None
