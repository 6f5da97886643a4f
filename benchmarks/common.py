"""Shared benchmark helpers: synthetic catalogs, timing, machine description, Markdown and plots."""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

RESULTS = Path(__file__).resolve().parent / "results"
SHARED_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "photos"  # read in place, never copied


def parser(
    doc: str, *, sizes: str | None = None, queries: int | None = None, help: str = ""
) -> argparse.ArgumentParser:
    """A benchmark's command line: ``--out`` always, ``--sizes`` (catalog sizes) and ``--queries`` when given."""
    out = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    if sizes is not None:
        out.add_argument("--sizes", type=size_list, default=size_list(sizes), help=f"catalog sizes ({sizes})")
    if queries is not None:
        out.add_argument("--queries", type=int, default=queries, help=help or "timed queries per size")
    out.add_argument("--out", type=Path, default=RESULTS, help="where the .md and .png results go")
    return out


def size_list(text: str) -> list[int]:
    """``"10000,100_000,1000000"`` -> ``[10000, 100000, 1000000]``."""
    try:
        return [int(s.strip().replace("_", "")) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of whole numbers: {text!r}") from None


def clustered_vectors(n: int, dim: int = 512, clusters: int = 1000, rank: int = 24, seed: int = 0):
    """A mixture of Gaussian clusters on the unit sphere: (normalised float32 vectors, cluster labels).

    Each cluster is a Gaussian around a random centre whose variance lies mostly in its own random
    ``rank``-dimensional subspace (plus a little isotropic noise): ~0.5 cosine within a cluster, ~0
    across clusters, and a low local intrinsic dimension like real CLIP embeddings. ``rank=0`` gives
    isotropic clusters, a worst case for graph indexes (every dimension is noise).
    """
    centres, bases = _mixture(dim, clusters, rank, seed)
    rng = np.random.default_rng(seed + 1)
    labels = rng.integers(0, clusters, n)
    return _sample(rng, centres, bases, labels), labels


def queries_like(n: int, dim: int = 512, clusters: int = 1000, rank: int = 24, seed: int = 0) -> np.ndarray:
    """Fresh samples from the same mixture as ``clustered_vectors`` with this seed."""
    centres, bases = _mixture(dim, clusters, rank, seed)
    rng = np.random.default_rng(seed + 10_000)
    return _sample(rng, centres, bases, rng.integers(0, clusters, n))


def _mixture(dim: int, clusters: int, rank: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((clusters, dim), dtype=np.float32))
    if not rank:
        return centres, None
    bases = np.stack([np.linalg.qr(rng.standard_normal((dim, rank)))[0] for _ in range(clusters)])
    return centres, bases.astype(np.float32)


def _sample(rng: np.random.Generator, centres: np.ndarray, bases: np.ndarray | None, labels: np.ndarray) -> np.ndarray:
    n, dim = len(labels), centres.shape[1]
    # noise energy ~1 around a unit centre -> ~0.5 cosine to the centre's other samples
    structured, isotropic = (0.0, 1.0) if bases is None else (0.85, 0.15)
    out = centres[labels] + rng.standard_normal((n, dim), dtype=np.float32) * np.float32(np.sqrt(isotropic / dim))
    if bases is not None:
        scale = np.float32(np.sqrt(structured / bases.shape[2]))
        for cluster in np.unique(labels):
            rows = np.flatnonzero(labels == cluster)
            out[rows] += (rng.standard_normal((len(rows), bases.shape[2]), dtype=np.float32) * scale) @ bases[cluster].T
    return _unit(out)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def photo(width: int, height: int, seed: int, fmt: str = "JPEG") -> bytes:
    """A photo-like picture: noisy gradient background and a few shapes."""
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 1, width, dtype=np.float32)[None, :, None] * rng.uniform(60, 200, 3)
    pixels = base + rng.normal(0, 12, (height, 1, 3)).astype(np.float32)
    image = Image.fromarray(np.clip(np.broadcast_to(pixels, (height, width, 3)), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(4):
        x, y = int(rng.integers(0, width // 2)), int(rng.integers(0, height // 2))
        box = (x, y, x + width // 3, y + height // 3)
        draw.ellipse(box, fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    buf = io.BytesIO()
    image.save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """(milliseconds, result) of one call."""
    start = time.perf_counter()
    result = fn()
    return (time.perf_counter() - start) * 1000, result


def interleaved(
    methods: dict[str, Callable[[object], object]], queries: Sequence[object]
) -> tuple[dict[str, list[float]], dict[str, list[object]]]:
    """Time every method on every query, query by query, so drifting load hits them alike.

    Returns per method the milliseconds and the results; query 0 only warms caches and lazy imports.
    """
    times: dict[str, list[float]] = {name: [] for name in methods}
    results: dict[str, list[object]] = {name: [] for name in methods}
    for i, q in enumerate(queries):
        for name, fn in methods.items():
            ms, out = timed(lambda fn=fn, q=q: fn(q))
            if i:
                times[name].append(ms)
                results[name].append(out)
    return times, results


def p50(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def p95(values: Sequence[float]) -> float:
    return float(np.percentile(values, 95)) if values else float("nan")


def machine() -> str:
    """One line: CPU model, cores, memory, Python and key library versions."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    import os

    cores = os.cpu_count()
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = float("nan")
    versions = [f"Python {sys.version.split()[0]}", f"numpy {np.__version__}"]
    for name in ("faiss", "torch"):
        module = sys.modules.get(name)
        if module is not None:
            versions.append(f"{name} {getattr(module, '__version__', '?')}")
    load = "load average {:.1f} / {:.1f} / {:.1f} (shared machine)".format(*os.getloadavg())
    return f"{cpu}, {cores} vCPU, {mem:.0f} GiB RAM; {', '.join(versions)}; {load}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            if value != value:  # NaN
                return "–"
            return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(name: str, title: str, body: str, out: Path = RESULTS) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.md"
    stamp = time.strftime("%Y-%m-%d %H:%M")
    path.write_text(f"# {title}\n\nMeasured {stamp} on: {machine()}\n\n{body.strip()}\n\n![{name}]({name}.png)\n")
    return path


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
