"""OpenCLIP embedder: lazy load, batched inference, L2-normalised float32 vectors."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .errors import ModelError

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


class OpenClipEmbedder:
    """Embeds images and texts into one space. Thread-safe; the model loads on first use."""

    def __init__(
        self,
        model: str = "ViT-B-32",
        pretrained: str = "laion2b_s34b_b79k",
        *,
        device: str = "cpu",
        batch_size: int = 16,
        torch_threads: int = 0,
    ) -> None:
        self.model_name = model
        self.pretrained = pretrained.strip()
        self.device = device
        self.batch_size = batch_size
        self.torch_threads = torch_threads
        self._lock = threading.Lock()
        self._model: Any = None
        self._preprocess: Any = None
        self._tokenizer: Any = None
        self._error: ModelError | None = None

    @property
    def random_weights(self) -> bool:
        return self.pretrained.lower() == "none"

    @property
    def model_id(self) -> str:
        """Identifies the vector space; stored with every vector."""
        weights = self.pretrained
        if Path(weights).suffix in (".pt", ".bin", ".safetensors", ".pth"):
            weights = "file:" + Path(weights).name
        return f"{self.model_name}/{'none' if self.random_weights else weights}"

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def dim(self) -> int:
        self.load()
        return int(self._model.text_projection.shape[1]) if hasattr(self._model, "text_projection") else 512

    @property
    def load_error(self) -> ModelError | None:
        """Why loading failed, if it did (the failure is kept: weights don't appear by retrying)."""
        return self._error

    def load(self) -> None:
        """Load the model once (idempotent, thread-safe); a failed load raises the same error again."""
        if self._model is not None:
            return
        with self._lock:
            if self._error is not None:
                raise self._error
            if self._model is None:
                try:
                    self._model, self._preprocess, self._tokenizer = self._build()
                except ModelError as exc:
                    self._error = exc
                    raise

    def _build(self) -> tuple[Any, Any, Any]:
        import open_clip
        import torch

        if self.torch_threads > 0:
            torch.set_num_threads(self.torch_threads)
        arch, kwargs = MODEL_PRESETS.get(self.model_name, (self.model_name, {}))
        if self.pretrained.lower() == "openai" and arch == "ViT-B-32":
            arch = "ViT-B-32-quickgelu"  # OpenAI's weights were trained with QuickGELU
        try:
            if self.random_weights:
                log.warning("SIMILARITY_CLIP_PRETRAINED=none: using RANDOM weights (%s); results are meaningless", arch)
                with torch.random.fork_rng():
                    torch.manual_seed(RANDOM_SEED)
                    model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=None, **kwargs)
            else:
                model, _, preprocess = open_clip.create_model_and_transforms(
                    arch, pretrained=self.pretrained, require_pretrained=True, **kwargs
                )
            tokenizer = open_clip.get_tokenizer(arch)
        except Exception as exc:  # open_clip raises many types (RuntimeError, OSError, HF errors)
            log.debug("model load failed: %s", type(exc).__name__)
            if self.random_weights:
                raise ModelError(f"Could not build the OpenCLIP model {self.model_name!r}.") from None
            raise ModelError(_MISSING_WEIGHTS_HELP.format(weights=self.pretrained, model=arch)) from None
        model.eval().to(self.device)
        return model, numpy_tail(preprocess), tokenizer

    def preprocess(self, image: Image.Image) -> Any:
        """One image -> model input tensor (safe to call from worker threads)."""
        self.load()
        return self._preprocess(image)

    def embed_tensors(self, batch: Any) -> np.ndarray:
        """A stacked batch of preprocessed tensors -> (n, dim) normalised float32."""
        import torch

        self.load()
        with torch.inference_mode():
            features = self._model.encode_image(batch.to(self.device), normalize=True)
        return _normalise(features.float().cpu().numpy())

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        import torch

        if not images:
            return np.zeros((0, self.dim), np.float32)
        out = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            out.append(self.embed_tensors(torch.stack([self.preprocess(im) for im in chunk])))
        return np.concatenate(out)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        self.load()
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                tokens = self._tokenizer(list(texts[start : start + self.batch_size])).to(self.device)
                out.append(self._model.encode_text(tokens, normalize=True).float().cpu().numpy())
        return _normalise(np.concatenate(out))

    def classifier(self, classnames: Sequence[str], templates: Sequence[str]) -> np.ndarray:
        """Zero-shot class embeddings (n_classes, dim): each class's prompt ensemble, averaged, normalised."""
        import open_clip
        import torch

        self.load()
        with torch.inference_mode():
            weights = open_clip.build_zero_shot_classifier(
                self._model, self._tokenizer, list(classnames), list(templates), device=self.device
            )
        return _normalise(weights.T.float().cpu().numpy())

    def info(self) -> dict[str, Any]:
        return {"model": self.model_id, "random_weights": self.random_weights, "loaded": self.loaded}


class _ToNormalisedTensor:
    """torchvision's ToTensor + Normalize done in numpy, with the same float32 steps and results.

    The torch versions run their arithmetic on an OpenMP team per calling thread; from seeding's
    decode workers those teams spin on the cores the model needs (about 2 ms of CPU per image).
    """

    def __init__(self, tail: Any, mean: Sequence[float], std: Sequence[float]) -> None:
        self.tail = tail  # the original steps, for anything that is not a PIL image
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1, 1, 1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1, 1, 1)

    def __call__(self, img: Any) -> Any:
        import torch

        if not isinstance(img, Image.Image) or img.mode != "RGB":
            return self.tail(img)
        scaled = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / np.float32(255)
        return torch.from_numpy(np.ascontiguousarray((scaled - self.mean) / self.std))


def numpy_tail(preprocess: Any) -> Any:
    """``preprocess`` with a trailing ToTensor + Normalize replaced by ``_ToNormalisedTensor`` (else as is)."""
    from torchvision import transforms

    steps = list(getattr(preprocess, "transforms", ()))
    if len(steps) < 2 or type(steps[-2]).__name__ not in ("ToTensor", "MaybeToTensor"):
        return preprocess
    normalize = steps[-1]
    if not isinstance(normalize, transforms.Normalize):
        return preprocess
    tail = transforms.Compose(steps[-2:])
    return transforms.Compose([*steps[:-2], _ToNormalisedTensor(tail, normalize.mean, normalize.std)])


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)
