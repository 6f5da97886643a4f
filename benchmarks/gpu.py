"""Device check: what the app chooses on this machine's accelerator, and what it gets from it.

    python -m benchmarks.gpu            # a GPU machine: ~3 minutes; writes results/gpu.md
    python -m benchmarks.gpu --no-gpu   # the same measurements on the CPU, at CPU sizes (results/gpu-cpu.md)

Measures, side by side in one run: the device and precision ``auto`` chooses (with the probe's note); one
query photo through ``embed_images`` (batch 1, p50); batch throughput in fp32 against the chosen precision;
seeding (``Ingestor`` over ~800 px JPEGs into SQLite) at the default workers and at one worker process; and
exact top-10 search, the GPU scorer (``TorchScorer``) against numpy, at 1M rows, plus the device alone at
10M (numpy at 10M is left out: 20 GB and minutes to build). Random ViT-B-32 weights (same compute).
Without a GPU (or with ``--no-gpu``) every step runs on the CPU at sizes a 2-core machine finishes in a few
minutes; torch's CPU fp16 there says nothing of a GPU's speed, only that the path runs.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from similarity.device import CPU, resolve
from similarity.embedder import OpenClipEmbedder
from similarity.index import VectorIndex
from similarity.index.torch_scores import TorchScorer
from similarity.ingest import Ingestor
from similarity.ingest_procs import plan
from similarity.precision import usable_cores
from similarity.records import Filters
from similarity.store.base import VectorBatch
from similarity.store.local import LocalStore

from . import common
from .common import markdown_table, p50, photo, write_report

GPU_SIZES = {"batch": 256, "photos": 3072, "rows": [1_000_000], "device_rows": 10_000_000, "rounds": 5}
CPU_SIZES = {"batch": 16, "photos": 96, "rows": [100_000, 1_000_000], "device_rows": 0, "rounds": 3}


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--no-gpu", action="store_true", help="run on the CPU even where torch sees a GPU")
    parser.add_argument("--photos", type=int, help="JPEGs to seed (default 3072 on a GPU, 96 on a CPU)")
    parser.add_argument("--rows", type=common.size_list, help="catalog sizes for exact search (default by device)")
    args = parser.parse_args(argv)
    device = CPU if args.no_gpu else resolve("auto")
    gpu = device.kind == "cuda"
    sizes = dict(GPU_SIZES if gpu else CPU_SIZES)
    sizes["photos"] = args.photos or sizes["photos"]
    sizes["rows"] = args.rows or sizes["rows"]
    rows: list[list[object]] = []
    started = time.perf_counter()
    auto = OpenClipEmbedder("ViT-B-32", "none", device=device, batch_size=sizes["batch"], precision="auto")
    fp32 = OpenClipEmbedder("ViT-B-32", "none", device=device, batch_size=sizes["batch"], precision="fp32")
    auto.load(), fp32.load()
    rows.append(["device / precision chosen", device.label, f"{auto.precision}: {auto.precision_note}"])
    rows += embedding(auto, fp32, sizes, gpu)
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        rows += seeding(auto, Path(tmp), sizes, device)
    rows += exact_search(device, sizes)
    mode = "GPU" if gpu else "no-GPU mode (CPU)"
    body = (
        f"{mode}; device {device.label}; {usable_cores()} usable cores; ran {time.perf_counter() - started:.0f} s. "
        "ViT-B-32 with random weights (same compute as trained). Figures are medians of interleaved runs.\n\n"
        + markdown_table(["what", "setting", "figure"], rows)
    )
    name = "gpu" if gpu else "gpu-cpu"
    path = write_report(name, "Device check", body, args.out)
    path.write_text(path.read_text().replace(f"\n\n![{name}]({name}.png)", ""))  # a table, no plot
    print(markdown_table(["what", "setting", "figure"], rows))
    return 0


def embedding(auto: OpenClipEmbedder, fp32: OpenClipEmbedder, sizes: dict, gpu: bool) -> list[list[object]]:
    """Batch-1 latency through ``embed_images`` and batch throughput, fp32 against the chosen precision."""
    import torch

    from similarity import images

    picture = images.load_image(photo(800, 600, seed=1)).image
    batch = torch.stack([auto.preprocess(picture)] * sizes["batch"])
    one: dict[str, list[float]] = {"fp32": [], "auto": []}
    rate: dict[str, list[float]] = {"fp32": [], "auto": []}
    for embedder in (fp32, auto):  # warm-up (kernels, allocator)
        embedder.embed_images([picture]), embedder.embed_tensors(batch)
    for _ in range(20 if gpu else 5):
        for name, embedder in (("fp32", fp32), ("auto", auto)):
            one[name].append(timed(lambda e=embedder: e.embed_images([picture]), gpu))
    for _ in range(sizes["rounds"]):
        for name, embedder in (("fp32", fp32), ("auto", auto)):
            rate[name].append(sizes["batch"] / timed(lambda e=embedder: e.embed_tensors(batch), gpu) * 1000)
    chosen = auto.precision
    speedup = p50(rate["auto"]) / p50(rate["fp32"])
    return [
        [
            "one photo through embed_images (ms, p50)",
            f"fp32 / {chosen}",
            f"{p50(one['fp32']):.1f} / {p50(one['auto']):.1f}",
        ],
        [
            f"batch {sizes['batch']} images/s",
            f"fp32 / {chosen}",
            f"{p50(rate['fp32']):,.0f} / {p50(rate['auto']):,.0f} ({speedup:.2f}x)",
        ],
    ]


def timed(fn, gpu: bool) -> float:
    import torch

    if gpu:
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if gpu:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1000


def seeding(embedder: OpenClipEmbedder, tmp: Path, sizes: dict, device) -> list[list[object]]:
    """Products/s seeding ~800 px JPEGs into SQLite: the default plan for this machine against one process."""
    from data_seed.sources import folder_items

    root = tmp / "photos"
    root.mkdir()
    for i in range(sizes["photos"]):
        width, height = (800, 600) if i % 2 else (640, 800)
        (root / f"p{i:05d}.jpg").write_bytes(photo(width, height, seed=5000 + i))
    default = plan(device, usable_cores())
    modes = {f"default ({default.describe()})": default.options(), "one worker process": {"processes": 1}}
    rates: dict[str, list[float]] = {name: [] for name in modes}
    for round_ in range(2):
        for name, options in modes.items():
            store = LocalStore(tmp / f"{round_}-{len(rates[name])}-{name[:3]}.db")
            start = time.perf_counter()
            report = Ingestor(store, embedder, **{"batch_size": default.batch_size, **options}).run(folder_items(root))
            rates[name].append(report.added / (time.perf_counter() - start))
            store.close()
            print(f"  seeding {name}: {rates[name][-1]:.1f} products/s", flush=True)
    label = f"seeding products/s ({sizes['photos']} JPEGs ~800 px)"
    return [[label, name, f"{p50(values):,.1f}"] for name, values in rates.items()]


def exact_search(device, sizes: dict) -> list[list[object]]:
    """Exact top-10 with facets: the torch scorer on the device against numpy, and the device alone at 10M."""
    out = []
    queries = common.queries_like(21, seed=3)
    for n in sizes["rows"]:
        out += compare_at(n, device, queries)
    if sizes["device_rows"]:
        out.append(device_only(device, sizes["device_rows"], queries))
    return out


def compare_at(n: int, device, queries: np.ndarray) -> list[list[object]]:
    vectors, labels = common.clustered_vectors(n, seed=3)
    categories = [("bags", "shoes", "electronics", "watches")[label % 4] for label in labels]
    facets = {"category": [(c,) for c in categories], "brand": [()] * n, "colors": [()] * n, "tags": [()] * n}
    index = VectorIndex(VectorBatch([f"{i:012d}" for i in range(n)], vectors, facets))
    scorer = TorchScorer(device.name)
    ways = {
        "numpy (host)": lambda q: index.rank(q, Filters(), 10, None, 200),
        f"torch fp16 on {device.name}": lambda q: scorer.rank(index, q, Filters(), 10, None, 200),
    }
    times, results = common.interleaved(ways, list(queries))
    same = all(a.ids == b.ids for a, b in zip(*results.values(), strict=True))
    out: list[list[object]] = [
        [f"exact top-10 + facets at {n:,} x 512 (ms, p50)", k, f"{p50(v):.2f}"] for k, v in times.items()
    ]
    out.append([f"same top-10 at {n:,}", "torch vs numpy", "yes" if same else "no (ties or a bug: check)"])
    return out


def device_only(device, n: int, queries: np.ndarray) -> list[object]:
    """fp16 matrix product + top-k on the device at ``n`` rows (random rows made there: no host copy)."""
    import torch

    matrix = torch.randn((n, 512), dtype=torch.float16, device=device.name)
    matrix /= matrix.float().norm(dim=1, keepdim=True).half()
    times = []
    for q in queries:
        query = torch.from_numpy(q).to(device.name, torch.float16)
        times.append(timed(lambda query=query: torch.topk((matrix @ query).float(), 10).indices.cpu(), True))
    return [f"fp16 X @ q + top-10 on the device at {n:,} x 512 (ms, p50)", device.label, f"{p50(times[1:]):.2f}"]


if __name__ == "__main__":
    raise SystemExit(main())
