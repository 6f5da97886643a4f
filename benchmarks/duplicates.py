"""Near-duplicate scan: candidates, confirmation, total and peak memory at 10k and 100k products; and the
pixel measures that chose the confirmation (re-uploads against different photos).

    flock /work/cpu.lock python -m benchmarks.duplicates [--sizes 10000,100000]

Catalog: the clustered synthetic vectors of ``benchmarks/search.py`` (cosine ~0.5 within a cluster) in a
``memory://`` store, with planted near-duplicates: 1% of the products are re-uploads of another (vector
at cosine ~0.97, thumbnail = a resized/re-encoded/cropped/brightened/watermarked copy) and 0.5% are a
different photo of the same generated product (cosine ~0.93, thumbnail = another shot). Every product
has a thumbnail (a pool of rendered photos for the rest).

Each size runs in a fresh process (``--child N``), so one size's memory and warm-up do not reach the next.
Memory is resident memory (RSS), which counts torch's buffers as well as numpy's: the peak growth over the
scan above the RSS before it (VmHWM reset through ``/proc/self/clear_refs``; where that is not allowed,
``ru_maxrss``, the process's peak so far, an upper bound). Torch is imported and small bf16 and float32 scans
run first (the app has torch loaded for the model): the warm-up's time and memory are columns of their own.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import io
import itertools
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import SHARED_PHOTOS, clustered_vectors, markdown_table, parser, pyplot, write_report
from similarity.duplicates import DEFAULT_THRESHOLD, NEAR, DuplicateFinder
from similarity.duplicates.finder import neighbour_pairs
from similarity.duplicates.pixel import PixelHasher, colour_layout, colour_similarity, dhash, pixel_similarity
from similarity.images import load_image, make_thumbnail
from similarity.records import Product
from similarity.store import open_store
from tests.dup_photos import REUPLOADS, product_photo, reupload

POOL = 400  # rendered thumbnails shared by the products that are not planted
ROOT = Path(__file__).resolve().parents[1]


def _twin(v: np.ndarray, cosine: float, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(v.shape).astype(np.float32)
    noise -= (noise @ v) * v
    noise /= np.linalg.norm(noise)
    return (cosine * v + np.sqrt(1 - cosine**2) * noise).astype(np.float32)


def catalog(n: int) -> tuple[object, set[frozenset]]:
    rng = np.random.default_rng(n)
    vectors, _ = clustered_vectors(n, seed=7)
    pool = [make_thumbnail(product_photo(10_000 + i, 0, (240, 200))) for i in range(POOL)]
    thumbs = [pool[i % POOL] for i in range(n)]
    truth: set[frozenset] = set()
    planted_dups, planted_similar = n // 100, n // 200
    for j in range(planted_dups + planted_similar):
        a, b = 2 * j, 2 * j + 1  # pairs at the front; their vectors and pictures are replaced
        first = product_photo(j, 0, (240, 200))
        thumbs[a] = make_thumbnail(first)
        if j < planted_dups:
            thumbs[b] = make_thumbnail(reupload(first, REUPLOADS[j % len(REUPLOADS)], j))
            vectors[b] = _twin(vectors[a], rng.uniform(0.95, 0.99), rng)
            truth.add(frozenset((f"{a:08d}", f"{b:08d}")))
        else:
            thumbs[b] = make_thumbnail(product_photo(j, 1, (240, 200)))
            vectors[b] = _twin(vectors[a], rng.uniform(0.91, 0.95), rng)
    store = open_store("memory://")
    for start in range(0, n, 5000):
        store.upsert(
            [
                Product(f"{i:08d}", name=f"p{i}", thumbnail=thumbs[i], embedding=vectors[i], embedding_model="bench")
                for i in range(start, min(n, start + 5000))
            ]
        )
    return store, truth


def _status_kib(field: str) -> int | None:
    """A ``/proc/self/status`` figure in KiB (VmRSS, VmHWM); None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


class PeakRss:
    """Peak RSS growth over a block, in MiB: VmHWM reset at its start, or ru_maxrss (an upper bound)."""

    def __enter__(self) -> PeakRss:
        gc.collect()
        # hand freed heap pages back, or the block reuses them unseen (glibc keeps them resident)
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
            self.method = "VmHWM"
        except OSError:
            self.method = "ru_maxrss"
        self.start = _status_kib("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return self

    def __exit__(self, *exc: object) -> None:
        hwm = _status_kib("VmHWM") if self.method == "VmHWM" else None
        peak = hwm or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        self.growth_mib = max(0, peak - self.start) / 1024


def scan_row(n: int) -> dict[str, object]:
    """One size, measured in this process (run it in a fresh one: ``--child N``)."""
    store, truth = catalog(n)
    batch = store.load_vectors()
    warm = np.ascontiguousarray(batch.vectors[:2000])
    with PeakRss() as warm_mem:  # torch's import and its first bf16 and float32 calls (oneDNN's, BLAS's set-up)
        t0 = time.perf_counter()
        neighbour_pairs(warm, DEFAULT_THRESHOLD, half=True)
        neighbour_pairs(warm, DEFAULT_THRESHOLD, half=False)
        warmup = time.perf_counter() - t0
    with PeakRss() as scan_mem:
        t0 = time.perf_counter()
        report = DuplicateFinder(store).scan(batch)
        total = time.perf_counter() - t0
    found = {frozenset(p) for g in report.groups if g.kind == NEAR for p in itertools.combinations(g.ids, 2)}
    hits = len(found & truth)
    t = report.timings_s
    with PeakRss() as f32_mem:
        t0 = time.perf_counter()
        neighbour_pairs(batch.vectors, DEFAULT_THRESHOLD, half=False)
        float32 = time.perf_counter() - t0
    return {
        "row": [
            n, report.candidates, f"{warmup:.2f}", f"{t['candidates']:.2f}", f"{float32:.2f}", f"{t['confirm']:.2f}",
            f"{total:.2f}", f"{warm_mem.growth_mib:.0f}", f"{scan_mem.growth_mib:.0f}", f"{f32_mem.growth_mib:.0f}",
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}",
            f"{batch.vectors.nbytes / 2**20:.0f}", f"{hits / max(1, len(found)):.3f}",
            f"{hits / max(1, len(truth)):.3f}",
        ],
        "method": scan_mem.method,
    }  # fmt: skip


def scan_in_child(n: int) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.duplicates", "--child", str(n)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode:
        raise SystemExit(f"the {n:,} run failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _grey(image: Image.Image) -> Image.Image:
    data = make_thumbnail(image)
    small = Image.open(io.BytesIO(data))
    small.draft("RGB", (128, 128))
    return small.convert("RGB")


def measure_pixels(photos: list[Image.Image], label: str, shots: list[tuple] = ()) -> list[list[object]]:
    """Per measure: the lowest score of each re-upload kind, and the highest of different photos."""
    hasher = PixelHasher()
    originals = [_grey(p) for p in photos]
    copies = {k: [_grey(reupload(p, k, i * 10 + j)) for i, p in enumerate(photos)] for j, k in enumerate(REUPLOADS)}

    def plain(a: Image.Image, b: Image.Image) -> float:
        return pixel_similarity(dhash(a.convert("L")), dhash(b.convert("L")))

    def aligned(a: Image.Image, b: Image.Image) -> float:
        for key, img in (("a", a), ("b", b)):
            buf = io.BytesIO()
            img.save(buf, "PNG")
            hasher._hashes.pop(key, None)
            hasher.add(key, buf.getvalue())
        return hasher._grey(hasher._hashes["a"], hasher._hashes["b"])

    def final(a: Image.Image, b: Image.Image) -> float:
        colour = colour_similarity(colour_layout(a), colour_layout(b))
        grey = aligned(a, b)
        return min(grey, colour) if colour < 0.70 else grey

    rows = []
    for name, fn in (("dHash 16x16", plain), ("+ 95% crops", aligned), ("+ colour layout (shipped)", final)):
        lows = [min(fn(o, c) for o, c in zip(originals, copies[k], strict=True)) for k in REUPLOADS]
        other = max(fn(originals[a], originals[b]) for a, b in itertools.combinations(range(len(photos)), 2))
        shot = max((fn(_grey(a), _grey(b)) for a, b in shots), default=float("nan"))
        rows.append([label, name, *(f"{v:.3f}" for v in lows), f"{other:.3f}", f"{shot:.3f}"])
    return rows


def main() -> None:
    cli = parser(__doc__, sizes="10000,100000")
    cli.add_argument("--child", type=int, help=argparse.SUPPRESS)  # one size, in this process; prints a JSON row
    args = cli.parse_args()
    if args.child:
        print(json.dumps(scan_row(args.child)))
        return
    children = [scan_in_child(n) for n in args.sizes]
    scans = [c["row"] for c in children]
    method = "VmHWM" if all(c["method"] == "VmHWM" for c in children) else "ru_maxrss (upper bound)"
    families = 30
    pixel_rows = measure_pixels(
        [product_photo(f, 0) for f in range(families)], f"generated ({families})",
        [(product_photo(f, 0), product_photo(f, 1)) for f in range(families)],
    )  # fmt: skip
    real = sorted(SHARED_PHOTOS.glob("*")) if SHARED_PHOTOS.is_dir() else []
    if real:
        pixel_rows += measure_pixels([load_image(str(p)).image for p in real], f"real photos ({len(real)})")
    body = "## Scan\n\n" + markdown_table(
        ["products", "candidate pairs", "warm-up s", "candidates s", "candidates s, float32", "confirm s",
         "total s", "warm-up peak RSS growth MiB",
         "scan peak RSS growth MiB", "float32 candidates peak RSS growth MiB", "process peak RSS MiB",
         "vectors MiB", "precision", "recall"], scans,
    )  # fmt: skip
    body += (
        "\n\nEach size in a fresh process. Candidates: every product scored against the catalog in blocks (32 MiB "
        "of scores a block), the 10 nearest at cosine >= 0.90; bf16 scores on this CPU (AMX), those passing 0.88 "
        "rescored in float32; the float32 column scores everything in float32 (the path of CPUs without bf16 "
        "units). Warm-up: torch's import and a first bf16 and float32 scan of 2,000 vectors (one-time costs of "
        "the process), run before the timed scan. "
        "Confirm: thumbnails read and hashed, pairs compared. Precision and recall over the planted re-upload "
        f"pairs (near-identical groups). Peak RSS growth: the most resident memory above the RSS before the "
        f"block (freed heap pages trimmed first), measured by {method}; the vectors were loaded before it (their own "
        "column). Process peak RSS: the whole child (python, torch, the memory store with its thumbnails, the "
        "catalog's construction).\n\n## Pixel measures (lowest re-upload score, "
        "highest score of two different photos; near-identical at >= 0.82)\n\n"
    )
    body += markdown_table(
        ["photos", "measure", *REUPLOADS, "different photos", "other shot, same product"], pixel_rows
    )
    path = write_report("duplicates", "Near-duplicate scan", body, args.out)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    sizes = [r[0] for r in scans]
    for col, label in ((3, "candidates (bf16)"), (4, "candidates (float32)"), (5, "confirm"), (6, "total")):
        ax.plot(sizes, [float(r[col]) for r in scans], marker="o", label=label)
    ax.set_xscale("log"), ax.set_xlabel("products"), ax.set_ylabel("seconds"), ax.legend()
    ax.set_title("Near-duplicate scan (2 vCPU)")
    fig.tight_layout()
    fig.savefig(args.out / "duplicates.png", dpi=110)
    print(path.read_text())


if __name__ == "__main__":
    main()
