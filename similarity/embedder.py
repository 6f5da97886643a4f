"""OpenCLIP embedder: lazy load, batched inference, L2-normalised float32 vectors."""

from __future__ import annotations

import copy
import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from . import precision as prec
from .device import Device, Gpus, check_spec, resolve
from .errors import ConfigError, ModelError
from .models import RANDOM_SEED, build_model
from .preprocess import CropSpec, normalise_crops

if TYPE_CHECKING:
    from .config import Settings

log = logging.getLogger(__name__)
PROBE_TEXTS = ("a photo of a red leather handbag", "white running shoes")


class OpenClipEmbedder:
    """Embeds images and texts into one space. Thread-safe; the model loads on first use.

    ``device`` (auto | cpu | cuda[:N] | mps, see ``similarity.device``) is resolved on first use;
    ``precision`` (auto | fp32 | bf16 | fp16) is settled when the model loads (see ``similarity.precision``).
    ``cpu``, ``gpus`` and ``probe`` are seams for tests; a resolved ``Device`` may be passed as ``device``.
    ``gpu_call`` wraps the functions that run the model (ZeroGPU's ``spaces.GPU``, see ``similarity.zerogpu``).
    Vectors are float32 whatever the device and precision.
    """

    def __init__(
        self,
        model: str = "ViT-B-32",
        pretrained: str = "laion2b_s34b_b79k",
        *,
        device: str | Device = "auto",
        batch_size: int = 16,
        torch_threads: int = 0,
        precision: str = "auto",
        cpu: prec.CpuInfo | None = None,
        gpus: Gpus | None = None,
        probe: prec.Probe | None = None,
        gpu_call: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None,
    ) -> None:
        if precision not in prec.PRECISIONS:
            choices = ", ".join(prec.PRECISIONS)
            raise ConfigError(f"SIMILARITY_PRECISION={precision!r} is not valid; choose one of: {choices}")
        self.model_name = model
        self.pretrained = pretrained.strip()
        self.requested_device = device if isinstance(device, Device) else check_spec(device)
        self._device: Device | None = device if isinstance(device, Device) else None
        self._gpus = gpus
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
        self.gpu_call = gpu_call  # also for other users of the model (explanations)
        wrap = gpu_call or (lambda fn: fn)
        self._run_images, self._run_texts = wrap(self._encode_images), wrap(self._encode_texts)
        self._probe_runs: tuple[Any, Any] | None = None  # (fp32, half) closures for ``_probe_now``
        self._run_probe = wrap(self._probe_now)  # no arguments: ZeroGPU pickles them, and closures don't pickle

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenClipEmbedder:
        """The embedder the settings describe (on a ZeroGPU Space, its model calls run under ``spaces.GPU``)."""
        from .zerogpu import gpu_call

        return cls(
            settings.clip_model,
            settings.clip_pretrained,
            device=settings.device,
            batch_size=settings.batch_size,
            torch_threads=settings.torch_threads,
            precision=settings.precision,
            gpu_call=gpu_call(settings.zero_gpu),
        )

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
    def device_info(self) -> Device:
        """The resolved device (``auto`` asks torch once; an explicit GPU that is missing raises ConfigError)."""
        if self._device is None:
            self._device = resolve(str(self.requested_device), self._gpus)
        return self._device

    @property
    def device(self) -> str:
        """The torch device name: cpu, cuda:0, mps."""
        return self.device_info.name

    @property
    def precision(self) -> str | None:
        """fp32, bf16 or fp16: settled at load; before it, known unless ``auto`` still has to run its probe."""
        choice = self._choice or prec.decide(self.requested_precision, self._cpu, self.device_info)
        return choice.precision if choice else None

    @property
    def precision_note(self) -> str:
        """Why this precision, with the probe's figures when one ran."""
        if self._choice is not None:
            return self._choice.note
        choice = prec.decide(self.requested_precision, self._cpu, self.device_info)
        half = prec.candidate(self.device_info)
        return choice.note if choice else f"auto: a short probe picks fp32 or {half} when the model loads"

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
        """Choose fp32 or a half precision (probing under ``auto``), log why once, and return the model to keep."""
        device = self.device_info
        choice = prec.decide(self.requested_precision, self._cpu, device)
        if choice is None:
            half = prec.candidate(device)
            candidate = prec.to_half(copy.deepcopy(model), half)
            try:
                low = self._probe_batch(candidate, prec.torch_dtype(half))
                self._probe_runs = (self._probe_batch(model, None), low)
                result = dataclasses.replace(self._run_probe(), candidate=half)
                choice = prec.judge(result, self._cpu, device)
            except Exception as exc:  # an op the half precision cannot run here must not stop the app
                choice = prec.Choice("fp32", f"auto -> fp32: the {half} probe failed ({type(exc).__name__})")
            model = candidate if choice.precision == half else model
        elif choice.precision != "fp32":
            model = prec.to_half(model, choice.precision)
        (log.warning if choice.refused else log.info)("Embedding precision: %s (%s)", choice.note, device.label)
        self._choice, self._dtype = choice, prec.torch_dtype(choice.precision)
        return model

    def _probe_now(self) -> prec.ProbeResult:
        fp32, half = self._probe_runs  # type: ignore[misc]
        try:
            return self._probe(fp32, half)
        finally:
            self._probe_runs = None

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
        prec.configure_threads(self.torch_threads)
        return build_model(self.model_name, self.pretrained, self.device)

    def preprocess(self, image: Image.Image) -> Any:
        """One image -> model input tensor (safe to call from worker threads)."""
        self.load()
        return self._preprocess(image)

    @property
    def crop_spec(self) -> CropSpec | None:
        """The model's resize + crop in plain PIL, for worker processes (None: a pipeline of another shape)."""
        self.load()
        return CropSpec.of(self._preprocess)

    def embed_tensors(self, batch: Any) -> np.ndarray:
        """A stacked batch of preprocessed tensors -> (n, dim) normalised float32."""
        self.load()
        return self._run_images(batch, None)

    def embed_crops(self, crops: np.ndarray, spec: CropSpec) -> np.ndarray:
        """(n, h, w, 3) uint8 crops (``CropSpec``) -> (n, dim) normalised float32; normalised on the device."""
        self.load()
        return self._run_images(crops, spec)

    def _encode_images(self, batch: Any, spec: CropSpec | None) -> np.ndarray:
        import torch

        device = self.device_info
        if spec is not None:  # uint8 crops: to the device first (pinned for a GPU), then ToTensor + Normalize
            batch = normalise_crops(batch, spec, device.name, self._dtype, pin=device.kind == "cuda")
        with torch.inference_mode():  # normalised after the float32 cast: a half-precision norm is off by ~1e-3
            features = self._model.encode_image(batch.to(device.name, dtype=self._dtype))
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
        self.load()
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return self._run_texts(list(texts))

    def _encode_texts(self, texts: list[str]) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                tokens = self._tokenizer(texts[start : start + self.batch_size]).to(self.device)
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
            "device": self.device_info.label,
        }


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)
