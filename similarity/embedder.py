"""OpenCLIP embedder: lazy load, batched inference, L2-normalised float32 vectors."""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import precision as prec
from .errors import ConfigError, ModelError

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
PROBE_TEXTS = ("a photo of a red leather handbag", "white running shoes")
_MISSING_WEIGHTS_HELP = (
    "Could not load OpenCLIP weights {weights!r} for {model}: they are not cached here and cannot be "
    "downloaded. Pre-download them on a machine with internet access (they go to the Hugging Face cache), "
    "set SIMILARITY_CLIP_PRETRAINED to a local checkpoint file, or set SIMILARITY_CLIP_PRETRAINED=none "
    "for random weights (testing only)."
)


class OpenClipEmbedder:
    """Embeds images and texts into one space. Thread-safe; the model loads on first use.

    ``precision`` (auto | fp32 | bf16) is settled when the model loads (see ``similarity.precision``);
    ``cpu`` and ``probe`` are seams for tests. Vectors are float32 whatever the precision.
    """

    def __init__(
        self,
        model: str = "ViT-B-32",
        pretrained: str = "laion2b_s34b_b79k",
        *,
        device: str = "cpu",
        batch_size: int = 16,
        torch_threads: int = 0,
        precision: str = "auto",
        cpu: prec.CpuInfo | None = None,
        probe: prec.Probe | None = None,
    ) -> None:
        if precision not in prec.PRECISIONS:
            choices = ", ".join(prec.PRECISIONS)
            raise ConfigError(f"SIMILARITY_PRECISION={precision!r} is not valid; choose one of: {choices}")
        self.model_name = model
        self.pretrained = pretrained.strip()
        self.device = device
        self.batch_size = batch_size
        self.torch_threads = torch_threads
        self.requested_precision = precision
        self._cpu = cpu or prec.CpuFeatures()
        self._probe = probe or prec.timing_probe
        self._choice: prec.Choice | None = None
        self._dtype: Any = None  # torch dtype of the model's inputs (None: float32)
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
    def model(self) -> Any:
        """The loaded OpenCLIP model, read-only (loads it on first use; e.g. for patch-token explanations)."""
        self.load()
        return self._model

    @property
    def dim(self) -> int:
        self.load()
        return int(self._model.text_projection.shape[1]) if hasattr(self._model, "text_projection") else 512

    @property
    def precision(self) -> str | None:
        """fp32 or bf16: settled at load; before it, known unless ``auto`` still has to run its probe."""
        choice = self._choice or prec.decide(self.requested_precision, self._cpu, self.device)
        return choice.precision if choice else None

    @property
    def precision_note(self) -> str:
        """Why this precision, with the probe's figures when one ran."""
        if self._choice is not None:
            return self._choice.note
        choice = prec.decide(self.requested_precision, self._cpu, self.device)
        return choice.note if choice else "auto: a short probe picks fp32 or bf16 when the model loads"

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
                    model, self._preprocess, self._tokenizer = self._build()
                except ModelError as exc:
                    self._error = exc
                    raise
                self._model = self._settle_precision(model)

    def _settle_precision(self, model: Any) -> Any:
        """Choose fp32 or bf16 (probing under ``auto``), log why once, and return the model to keep."""
        import torch

        choice = prec.decide(self.requested_precision, self._cpu, self.device)
        if choice is None:
            candidate = prec.to_bf16(copy.deepcopy(model))
            try:
                result = self._probe(self._probe_batch(model, None), self._probe_batch(candidate, torch.bfloat16))
                choice = prec.judge(result, self._cpu)
            except Exception as exc:  # an op bf16 cannot run here must not stop the app: fp32 always works
                choice = prec.Choice("fp32", f"auto -> fp32: the bf16 probe failed ({type(exc).__name__})")
            model = candidate if choice.precision == "bf16" else model
        elif choice.precision == "bf16":
            model = prec.to_bf16(model)
        (log.warning if choice.refused else log.info)("Embedding precision: %s", choice.note)
        self._choice, self._dtype = choice, (torch.bfloat16 if choice.precision == "bf16" else None)
        return model

    def _probe_batch(self, model: Any, dtype: Any) -> Any:
        """A closure embedding one fixed synthetic photo and two prompts with ``model``: (3, dim) float32."""
        import torch

        pixels = np.random.default_rng(RANDOM_SEED).integers(0, 256, (256, 256, 3), dtype=np.uint8)
        image = self._preprocess(Image.fromarray(pixels)).unsqueeze(0).to(self.device, dtype=dtype)
        tokens = self._tokenizer(list(PROBE_TEXTS)).to(self.device)

        def run() -> np.ndarray:
            with torch.inference_mode():
                rows = [model.encode_image(image), model.encode_text(tokens)]
            return _normalise(torch.cat([r.float() for r in rows]).cpu().numpy())

        return run

    def _build(self) -> tuple[Any, Any, Any]:
        import open_clip
        import torch

        prec.configure_threads(self.torch_threads)
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
        with torch.inference_mode():  # normalised after the float32 cast: a bf16 norm is off by ~1e-3
            features = self._model.encode_image(batch.to(self.device, dtype=self._dtype))
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
                out.append(self._model.encode_text(tokens).float().cpu().numpy())
        return _normalise(np.concatenate(out))

    def classifier(self, classnames: Sequence[str], templates: Sequence[str]) -> np.ndarray:
        """Zero-shot class embeddings (n_classes, dim): each class's prompt ensemble, averaged, normalised.

        As open_clip's ``build_zero_shot_classifier``, but averaged in float32 whatever the model's precision.
        """
        prompts = [template.format(name) for name in classnames for template in templates]
        per_prompt = self.embed_texts(prompts).reshape(len(classnames), len(templates), -1)
        return _normalise(per_prompt.mean(axis=1))

    def info(self) -> dict[str, Any]:
        return {
            "model": self.model_id,
            "random_weights": self.random_weights,
            "loaded": self.loaded,
            "precision": self.precision,
            "precision_note": self.precision_note,
        }


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
