"""Embedding precision: the capability checks, the start-up probe and the fp32/bf16/fp16 choice.

CPU: bf16 weights run ViT-B/32 1.5-2.8x faster on CPUs with AMX or AVX512_BF16, and tens to hundreds of
times *slower* on CPUs without them (pytorch#146508), so bf16 is used only where the CPU has the
instructions and, under ``auto``, only when a short probe shows it pays and keeps the vectors.

CUDA GPU: half-precision weights ran ViT-B/32 6.8x faster than fp32 at batch 256 on an H200. ``auto`` takes
bf16 on compute capability >= 8.0 and fp16 below (a T4 has no bf16 tensor cores, though
``torch.cuda.is_bf16_supported()`` says yes: it counts emulation), through the same probe, whose verdict
there is fidelity only: at batch 1 a GPU is bound by kernel launches, so its timing says nothing of batches.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from .device import Device

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
BF16_CAPABILITY = (8, 0)  # CUDA compute capability with bf16 tensor cores (Ampere and later)
MIN_SPEEDUP = 1.2  # auto takes bf16 only when the probe is at least this much faster
MIN_COSINE = 0.999  # ... and every probe row stays this close to fp32
PROBE_ROUNDS = 3
# torch.cpu checks -> the /proc/cpuinfo flag names people know them by
_CPU_CHECKS = (("amx_tile", "_is_amx_tile_supported"), ("avx512_bf16", "_is_avx512_bf16_supported"))


class CpuInfo(Protocol):
    """The constructor seam: what the embedder needs to know about the CPU (tests pass a fake)."""

    def bf16_supported(self) -> bool: ...

    def describe(self) -> str: ...


class CpuFeatures:
    """This machine's CPU, as torch sees it. A torch without the checks counts as no bf16 support."""

    def flags(self) -> dict[str, bool]:
        import torch

        found = {}
        for flag, check_name in _CPU_CHECKS:
            check = getattr(torch.cpu, check_name, None)
            try:
                found[flag] = bool(check()) if callable(check) else False
            except Exception:  # a private torch helper: any failure means "not known to be there"
                found[flag] = False
        return found

    def bf16_supported(self) -> bool:
        return any(self.flags().values())

    def describe(self) -> str:
        flags = ", ".join(f"{flag} {'yes' if on else 'no'}" for flag, on in self.flags().items())
        return f"{cpu_model()} ({flags})"


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    """One probe: best-of-rounds milliseconds of the same batch in fp32 and in the half precision
    ``candidate`` (bf16 or fp16), and the worst row cosine."""

    fp32_ms: float
    half_ms: float
    min_cosine: float
    candidate: str = "bf16"

    @property
    def speedup(self) -> float:
        return self.fp32_ms / self.half_ms if self.half_ms > 0 else 0.0

    def describe(self, speed_counts: bool = True) -> str:
        needs = f", needs >= {MIN_SPEEDUP}x" if speed_counts else ""
        ms = 1 if self.fp32_ms < 10 else 0
        return (
            f"probe fp32 {self.fp32_ms:.{ms}f} ms, {self.candidate} {self.half_ms:.{ms}f} ms ({self.speedup:.2f}x"
            f"{needs}), min cosine {self.min_cosine:.5f} (needs >= {MIN_COSINE})"
        )


# (run the probe batch in fp32, run it in the half precision) -> result; both return (rows, dim) float32
Probe = Callable[[Callable[[], np.ndarray], Callable[[], np.ndarray]], ProbeResult]


def timing_probe(
    fp32: Callable[[], np.ndarray], half: Callable[[], np.ndarray], rounds: int = PROBE_ROUNDS
) -> ProbeResult:
    """Warm both, then time them alternately; the minimum of each is the least noisy figure on a busy machine.
    (The caller names the half precision: ``dataclasses.replace(result, candidate=...)``.)"""
    reference, candidate = unit_rows(fp32()), unit_rows(half())  # warm-up runs give the vectors
    fp32_ms, half_ms = [], []
    for _ in range(rounds):
        for run, times in ((fp32, fp32_ms), (half, half_ms)):
            start = time.perf_counter()
            run()
            times.append((time.perf_counter() - start) * 1000)
    return ProbeResult(min(fp32_ms), min(half_ms), row_cosines(reference, candidate).min().item())


@dataclasses.dataclass(frozen=True)
class Choice:
    precision: str  # fp32 | bf16 | fp16: what the model runs in
    note: str  # why, with figures
    refused: bool = False  # an explicit half precision this device cannot run well


def decide(requested: str, cpu: CpuInfo, device: Device | None = None) -> Choice | None:
    """The choice that needs no measurement, or None when ``auto`` must run the probe (of ``candidate``)."""
    if requested == "fp32":
        return Choice("fp32", "fp32 (SIMILARITY_PRECISION=fp32)")
    if device is not None and device.capability is not None:
        return _decide_cuda(requested, device)
    if device is not None and device.kind == "mps":
        if requested == "fp16":
            return Choice("fp16", f"fp16 (SIMILARITY_PRECISION=fp16; {device.label})")
        note = "half precision is not measured on Apple GPUs here (SIMILARITY_PRECISION=fp16 tries it)"
        return Choice("fp32", f"{'bf16 refused' if requested == 'bf16' else 'auto -> fp32'}: {note}")
    if requested == "fp16":
        note = "SIMILARITY_PRECISION=fp16 refused: fp16 is for GPUs; on a CPU use bf16 or auto; using fp32"
        return Choice("fp32", note, refused=True)
    if not cpu.bf16_supported():
        if requested == "bf16":
            note = (
                f"SIMILARITY_PRECISION=bf16 refused: this CPU, {cpu.describe()}, has neither AMX nor AVX512_BF16, "
                "where bf16 matrix products run tens to hundreds of times slower than fp32; using fp32"
            )
            return Choice("fp32", note, refused=True)
        return Choice("fp32", f"auto -> fp32: {cpu.describe()} has neither AMX nor AVX512_BF16")
    if requested == "bf16":
        return Choice("bf16", f"bf16 (SIMILARITY_PRECISION=bf16; {cpu.describe()})")
    return None


def _decide_cuda(requested: str, device: Device) -> Choice | None:
    where = describe_gpu(device)
    if requested == "fp16":
        return Choice("fp16", f"fp16 (SIMILARITY_PRECISION=fp16; {where})")
    if requested == "bf16":
        if has_bf16(device):
            return Choice("bf16", f"bf16 (SIMILARITY_PRECISION=bf16; {where})")
        note = (
            f"SIMILARITY_PRECISION=bf16 refused: {where} has no bf16 tensor cores (torch would emulate them, "
            "slowly); use fp16 or auto; using fp32"
        )
        return Choice("fp32", note, refused=True)
    return None


def candidate(device: Device | None) -> str:
    """The half precision ``auto`` probes: bf16 on CPUs and on GPUs of compute capability >= 8.0, else fp16."""
    if device is not None and device.capability is not None and not has_bf16(device):
        return "fp16"
    return "bf16"


def has_bf16(device: Device) -> bool:
    """bf16 tensor cores, by compute capability (never ``torch.cuda.is_bf16_supported()``: it counts emulation)."""
    return device.capability is not None and tuple(device.capability) >= BF16_CAPABILITY


def describe_gpu(device: Device) -> str:
    major, minor = device.capability or (0, 0)
    return f"{device.label} (compute capability {major}.{minor})"


def judge(result: ProbeResult, cpu: CpuInfo, device: Device | None = None) -> Choice:
    """``auto``: the half precision when the probe keeps the vectors and, on a CPU, is fast enough."""
    gpu = device is not None and device.capability is not None
    faithful = result.min_cosine >= MIN_COSINE
    chosen = result.candidate if faithful and (gpu or result.speedup >= MIN_SPEEDUP) else "fp32"
    where = describe_gpu(device) if gpu else cpu.describe()  # type: ignore[arg-type]
    return Choice(chosen, f"auto -> {chosen}: {result.describe(speed_counts=not gpu)}; {where}")


def to_half(model: Any, precision: str = "bf16", keep_norms_fp32: bool = True) -> Any:
    """Cast ``model`` in place to bf16 or fp16: open_clip's mixed cast (LayerNorm and embeddings stay fp32)
    or all of it."""
    import open_clip

    dtype = torch_dtype(precision)
    if keep_norms_fp32:
        open_clip.convert_weights_to_lp(model, dtype=dtype)
        return model
    return model.to(dtype)


def torch_dtype(precision: str) -> Any:
    """The torch dtype of a model's inputs in ``precision`` (None: float32, as given)."""
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


def configure_threads(requested: int = 0) -> int:
    """Intra-op threads = ``requested`` or the cores this process may use; inter-op threads 1 (once)."""
    import torch

    threads = requested if requested > 0 else usable_cores()
    torch.set_num_threads(threads)
    if torch.get_num_interop_threads() != 1:
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # allowed once, before any inter-op work: then the pool stays as it is
            log.debug("inter-op threads already fixed at %d", torch.get_num_interop_threads())
    return threads


def usable_cores() -> int:
    """Cores this process may run on (affinity-aware where the platform tells)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


def unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of each row of ``a`` with the same row of ``b``."""
    return np.sum(unit_rows(a) * unit_rows(b), axis=1)
