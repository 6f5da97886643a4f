"""Where the model runs: ``SIMILARITY_DEVICE`` = auto | cpu | cuda[:N] | mps, resolved once per embedder.

``auto`` takes the first CUDA GPU torch sees, else the CPU (``mps`` only when asked for: it is not tested
on Apple hardware here). What torch sees comes through the ``Gpus`` seam, so tests can describe a T4, an
H200 or no GPU at all without one.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any, Protocol

from .errors import ConfigError

log = logging.getLogger(__name__)

DEVICE_FORMS = "auto, cpu, cuda, cuda:N or mps"
_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


class Gpus(Protocol):
    """What torch knows about the accelerators (tests pass a fake)."""

    def cuda_count(self) -> int: ...

    def capability(self, index: int) -> tuple[int, int]: ...

    def name(self, index: int) -> str: ...

    def free_bytes(self, index: int) -> int: ...

    def mps_available(self) -> bool: ...


class TorchGpus:
    """The real accelerators, as torch reports them (imports torch on first use)."""

    def cuda_count(self) -> int:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0

    def capability(self, index: int) -> tuple[int, int]:
        import torch

        major, minor = torch.cuda.get_device_capability(index)
        return int(major), int(minor)

    def name(self, index: int) -> str:
        import torch

        return str(torch.cuda.get_device_name(index))

    def free_bytes(self, index: int) -> int:
        import torch

        free, _total = torch.cuda.mem_get_info(index)
        return int(free)

    def mps_available(self) -> bool:
        import torch

        backend = getattr(torch.backends, "mps", None)
        return bool(backend is not None and backend.is_available())


@dataclasses.dataclass(frozen=True)
class Device:
    """A resolved device: ``name`` for torch (``cuda:0``), ``label`` for people (``cuda:0 NVIDIA L4``)."""

    name: str
    label: str
    capability: tuple[int, int] | None = None  # CUDA compute capability

    @property
    def kind(self) -> str:
        return self.name.split(":", 1)[0]

    @property
    def index(self) -> int:
        return int(self.name.split(":", 1)[1]) if ":" in self.name else 0

    @property
    def is_gpu(self) -> bool:
        return self.kind in ("cuda", "mps")


CPU = Device("cpu", "cpu")


def check_spec(value: str) -> str:
    """A device setting of a known form (lower-cased), else ConfigError naming the forms."""
    spec = (value or "").strip().lower()
    if not _PATTERN.match(spec):
        raise ConfigError(f"SIMILARITY_DEVICE={value!r} is not valid; use one of: {DEVICE_FORMS}")
    return spec


def resolve(requested: str, gpus: Gpus | None = None) -> Device:
    """The device ``requested`` names on this machine; an explicit GPU that is not there is a ConfigError."""
    spec = check_spec(requested)
    if spec == "cpu":
        return CPU
    gpus = gpus or TorchGpus()
    if spec == "mps":
        if not gpus.mps_available():
            raise ConfigError("SIMILARITY_DEVICE=mps, but torch sees no Apple GPU (MPS); use auto or cpu")
        return Device("mps", "mps (Apple GPU)")
    count = _cuda_count(gpus)
    if spec == "auto":
        return _cuda(gpus, 0) if count else CPU
    index = int(spec.split(":", 1)[1]) if ":" in spec else 0
    if index >= count:
        seen = f"{count} CUDA GPU{'s' if count != 1 else ''}"
        raise ConfigError(f"SIMILARITY_DEVICE={requested!r}, but torch sees {seen}; use auto or cpu")
    return _cuda(gpus, index)


def _cuda_count(gpus: Gpus) -> int:
    try:
        return gpus.cuda_count()
    except Exception:  # a broken driver must not stop a CPU start: no GPU, with a log line
        log.warning("Could not ask torch for CUDA GPUs; using the CPU", exc_info=True)
        return 0


def _cuda(gpus: Gpus, index: int) -> Device:
    name = f"cuda:{index}"
    return Device(name, f"{name} {gpus.name(index)}", gpus.capability(index))


def device_label(embedder: Any) -> str | None:
    """The embedder's device for people ("cuda:0 NVIDIA L4"); None for an embedder without one (a fake)."""
    device = getattr(embedder, "device_info", None)
    return getattr(device, "label", None)
