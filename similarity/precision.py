"""Embedding precision on CPU: the bf16 capability check, the start-up probe and the fp32/bf16 choice.

bf16 weights run ViT-B/32 1.5-2.8x faster on CPUs with AMX or AVX512_BF16, and tens to hundreds of
times *slower* on CPUs without them (pytorch#146508), so bf16 is used only where the CPU has the
instructions and, under ``auto``, only when a short probe shows it pays and keeps the vectors.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16")
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
    """One probe: best-of-rounds milliseconds of the same batch in each precision, and the worst row cosine."""

    fp32_ms: float
    bf16_ms: float
    min_cosine: float

    @property
    def speedup(self) -> float:
        return self.fp32_ms / self.bf16_ms if self.bf16_ms > 0 else 0.0

    def describe(self) -> str:
        return (
            f"probe fp32 {self.fp32_ms:.0f} ms, bf16 {self.bf16_ms:.0f} ms ({self.speedup:.2f}x, needs "
            f">= {MIN_SPEEDUP}x), min cosine {self.min_cosine:.5f} (needs >= {MIN_COSINE})"
        )


# (run the probe batch in fp32, run it in bf16) -> result; both return (rows, dim) float32
Probe = Callable[[Callable[[], np.ndarray], Callable[[], np.ndarray]], ProbeResult]


def timing_probe(
    fp32: Callable[[], np.ndarray], bf16: Callable[[], np.ndarray], rounds: int = PROBE_ROUNDS
) -> ProbeResult:
    """Warm both, then time them alternately; the minimum of each is the least noisy figure on a busy machine."""
    reference, candidate = unit_rows(fp32()), unit_rows(bf16())  # warm-up runs give the vectors
    fp32_ms, bf16_ms = [], []
    for _ in range(rounds):
        for run, times in ((fp32, fp32_ms), (bf16, bf16_ms)):
            start = time.perf_counter()
            run()
            times.append((time.perf_counter() - start) * 1000)
    return ProbeResult(min(fp32_ms), min(bf16_ms), row_cosines(reference, candidate).min().item())


@dataclasses.dataclass(frozen=True)
class Choice:
    precision: str  # fp32 | bf16: what the model runs in
    note: str  # why, with figures
    refused: bool = False  # an explicit bf16 this CPU cannot run fast


def decide(requested: str, cpu: CpuInfo, device: str = "cpu") -> Choice | None:
    """The choice that needs no measurement, or None when ``auto`` must run the probe."""
    if requested == "fp32":
        return Choice("fp32", "fp32 (SIMILARITY_PRECISION=fp32)")
    if device != "cpu":
        return Choice("fp32", f"fp32: the bf16 choice is made for CPUs only (device {device})")
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


def judge(result: ProbeResult, cpu: CpuInfo) -> Choice:
    """``auto`` on a capable CPU: bf16 only when the probe shows enough speed and fidelity."""
    chosen = "bf16" if result.speedup >= MIN_SPEEDUP and result.min_cosine >= MIN_COSINE else "fp32"
    return Choice(chosen, f"auto -> {chosen}: {result.describe()}; {cpu.describe()}")


def to_bf16(model: Any, keep_norms_fp32: bool = True) -> Any:
    """Cast ``model`` in place: open_clip's mixed bf16 (LayerNorm and embeddings stay fp32) or all of it."""
    import open_clip
    import torch

    if keep_norms_fp32:
        open_clip.convert_weights_to_lp(model, dtype=torch.bfloat16)
        return model
    return model.to(torch.bfloat16)


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
