"""Model input preparation: the numpy tail of OpenCLIP's transforms, and compact uint8 crops for worker processes.

A model's preprocessing is resize (shorter side) -> centre crop -> RGB -> ToTensor -> Normalize. Seeding in
worker processes splits it in two: ``CropSpec.crop`` (PIL only, no torch: cheap to start in a process) gives
the uint8 crop, 4x fewer bytes than float32 to send back; ``normalise_crops`` does ToTensor + Normalize on the
model's device, with the same float32 steps, so both paths give the same tensors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

# torchvision InterpolationMode values -> PIL resampling filters (as torchvision's PIL backend maps them)
_PIL_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
    "lanczos": Image.Resampling.LANCZOS,
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


@dataclasses.dataclass(frozen=True)
class CropSpec:
    """The geometric part of a model's preprocessing, in plain PIL (picklable, torch-free)."""

    size: int  # the shorter side after resizing
    crop: tuple[int, int]  # (height, width) of the centre crop
    resample: int  # PIL filter
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def of(cls, preprocess: Any) -> CropSpec | None:
        """The spec of an OpenCLIP-style pipeline (Resize(int), CenterCrop, RGB, ToTensor, Normalize), else None."""
        steps = list(getattr(preprocess, "transforms", ()))
        names = [type(s).__name__ for s in steps]
        fused = len(steps) == 4 and isinstance(steps[-1], _ToNormalisedTensor)  # after ``numpy_tail``
        plain = len(steps) == 5 and names[3] in ("ToTensor", "MaybeToTensor")
        if not (fused or plain) or names[:3] != ["Resize", "CenterCrop", "MaybeConvertMode"]:
            return None
        resize, centre, tail = steps[0], steps[1], steps[-1]
        size = resize.size if isinstance(resize.size, int) else (resize.size[0] if len(resize.size) == 1 else None)
        mode = getattr(resize.interpolation, "value", None)
        if size is None or resize.max_size is not None or mode not in _PIL_FILTERS:
            return None
        mean, std = (tail.mean, tail.std) if isinstance(tail, _ToNormalisedTensor) else _normalize_of(tail)
        if mean is None:
            return None
        crop = tuple(int(v) for v in centre.size)
        return cls(int(size), crop, int(_PIL_FILTERS[mode]), _floats(mean), _floats(std))  # type: ignore[arg-type]

    def __call__(self, image: Image.Image) -> np.ndarray:
        """An RGB image -> its (height, width, 3) uint8 crop, as torchvision's PIL steps would cut it."""
        image = image if image.mode == "RGB" else image.convert("RGB")
        width, height = image.size
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = self.size, int(self.size * long / short)
        new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
        if (new_w, new_h) != (width, height):
            image = image.resize((new_w, new_h), self.resample)
        crop_h, crop_w = self.crop
        top, left = round((new_h - crop_h) / 2.0), round((new_w - crop_w) / 2.0)
        return np.array(image.crop((left, top, left + crop_w, top + crop_h)), dtype=np.uint8)  # writable


def normalise_crops(
    crops: np.ndarray, spec: CropSpec, device: str = "cpu", dtype: Any = None, pin: bool = False
) -> Any:
    """(n, h, w, 3) uint8 crops -> the model's (n, 3, h, w) input on ``device``: ToTensor + Normalize there,
    in float32 (the same steps as ``_ToNormalisedTensor``), then cast to ``dtype``."""
    import torch

    batch = torch.from_numpy(np.ascontiguousarray(crops))
    if pin:  # page-locked host memory: the copy to the GPU runs asynchronously and faster
        batch = batch.pin_memory()
    batch = batch.to(device, non_blocking=pin).permute(0, 3, 1, 2)
    mean = torch.tensor(spec.mean, dtype=torch.float32, device=batch.device).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32, device=batch.device).view(1, -1, 1, 1)
    scaled = (batch.to(torch.float32) / torch.tensor(255, dtype=torch.float32, device=batch.device) - mean) / std
    return scaled.contiguous() if dtype is None else scaled.to(dtype)


def _normalize_of(step: Any) -> tuple[Any, Any]:
    return (step.mean, step.std) if type(step).__name__ == "Normalize" else (None, None)


def _floats(values: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(values, dtype=np.float32).ravel())
