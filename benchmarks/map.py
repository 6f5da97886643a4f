"""Catalog map: layout time and memory, neighbourhood preservation against PCA, search p50 while a layout computes.

Layouts run exactly as the app runs them: ``run_in_child`` (a spawned process at nice 19, numba's disk
cache on), fitted on at most ``--sample`` products with the rest placed by their nearest fitted
neighbours. Vectors are the clustered synthetic ones of ``benchmarks/search.py``; the demo catalog
(``data_seed.demo``) is embedded with the ViT-B-32 architecture and random weights (no weights offline).
Search p50 is measured on the exact index at ``--search-size`` products: idle, while the layout fits in
the nice-19 child, and while the same layout fits in a thread of the search process (low thread priority).

    flock /tmp/cpu.lock python -m benchmarks.map [--sizes 10000,100000,1000000] [--sample 50000]
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.common import clustered_vectors, markdown_table, p50, parser, pyplot, queries_like, timed, write_report

K = 10


@dataclasses.dataclass
class LayoutRow:
    n: int
    fitted: int
    umap_s: float
    child_peak_mb: float
    child_anon_mb: float
    pca_s: float
    umap_np: float
    pca_np: float
    fitted_np: float  # UMAP NP over fitted products only
    placed_np: float  # over products placed by neighbours (NaN when all were fitted)


class PeakWatcher:
    """Polls a child's peak resident memory (VmHWM) until it exits."""

    def __init__(self) -> None:
        self.peak_kb = 0  # VmHWM: includes the memory-mapped vectors (file pages, reclaimable)
        self.anon_kb = 0  # the most anonymous memory seen (RssAnon, polled): what the fit itself holds
        self._thread: threading.Thread | None = None

    def __call__(self, child) -> None:
        self._thread = threading.Thread(target=self._watch, args=(child.pid,), daemon=True)
        self._thread.start()

    def _watch(self, pid: int) -> None:
        status = Path(f"/proc/{pid}/status")
        while True:
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                    elif line.startswith("RssAnon:"):
                        self.anon_kb = max(self.anon_kb, int(line.split()[1]))
            except (OSError, ValueError):
                return
            time.sleep(0.1)


def preservation_sample(n: int) -> int:
    return 2000 if n <= 100_000 else 500  # 1M: 500 points x 1M rows keeps the figure to seconds


def layout_row(n: int, sample: int, cache: str) -> LayoutRow:
    from similarity.map import UmapFitter, neighbourhood_preservation, pca_2d
    from similarity.map.layout import normalise
    from similarity.map.worker import run_in_child

    vectors, _ = clustered_vectors(n)
    watcher = PeakWatcher()
    umap_ms, (coords, fitted, _) = timed(
        lambda: run_in_child(vectors, UmapFitter(), sample, numba_cache=cache, started=watcher)
    )
    pca_ms, pca = timed(lambda: normalise(pca_2d(vectors)))
    m = preservation_sample(n)
    placed = np.flatnonzero(~fitted)

    def score(among=None) -> float:
        return neighbourhood_preservation(vectors, coords, K, sample=m, among=among)

    row = LayoutRow(
        n, int(fitted.sum()), umap_ms / 1000, watcher.peak_kb / 1024, watcher.anon_kb / 1024, pca_ms / 1000,
        score(), neighbourhood_preservation(vectors, pca, K, sample=m), score(np.flatnonzero(fitted)),
        score(placed) if len(placed) else float("nan"),
    )  # fmt: skip
    print(row, flush=True)
    return row


def compile_cost(cache: str) -> tuple[float, float]:
    """Seconds for a 2k-product layout in a fresh child: first with an empty numba cache, then with it filled."""
    from similarity.map import UmapFitter
    from similarity.map.worker import run_in_child

    vectors, _ = clustered_vectors(2000, seed=3)
    cold = timed(lambda: run_in_child(vectors, UmapFitter(), 50_000, numba_cache=cache))[0] / 1000
    warm = timed(lambda: run_in_child(vectors, UmapFitter(), 50_000, numba_cache=cache))[0] / 1000
    return cold, warm


def demo_preservation(cache: str) -> tuple[int, float, float, str]:
    """(products, UMAP, PCA, method) on the rendered demo catalog embedded with random-weight ViT-B-32."""
    from data_seed.demo import demo_items
    from similarity.embedder import OpenClipEmbedder
    from similarity.images import load_image
    from similarity.map import UmapFitter, neighbourhood_preservation, pca_2d
    from similarity.map.worker import run_in_child

    embedder = OpenClipEmbedder("ViT-B-32", "none", batch_size=16, precision="fp32")
    pictures = [load_image(item.read()).image for item in demo_items()]
    vectors = embedder.embed_images(pictures)
    coords, _, method = run_in_child(vectors, UmapFitter(), 50_000, numba_cache=cache)
    return (
        len(vectors), neighbourhood_preservation(vectors, coords, K, sample=None),
        neighbourhood_preservation(vectors, pca_2d(vectors), K, sample=None), method,
    )  # fmt: skip


def search_under_load(n: int, sample: int, cache: str, queries: int) -> dict[str, list[float]]:
    """Search times (ms): idle, while the layout fits in the nice-19 child, and in a low-priority thread."""
    from similarity.index import VectorIndex
    from similarity.map import UmapFitter
    from similarity.map.worker import run_in_child, run_in_thread
    from similarity.records import Filters
    from similarity.store.base import FACET_ATTRIBUTES, VectorBatch

    vectors, _ = clustered_vectors(n, seed=1)
    batch = VectorBatch([f"{i:08d}" for i in range(n)], vectors, {a: [()] * n for a in FACET_ATTRIBUTES})
    index = VectorIndex(batch)
    probes = queries_like(queries, seed=1)

    def search(q: np.ndarray) -> float:
        return timed(lambda: index.rank(q, Filters(), 12, None, 200))[0]

    def while_running(job) -> list[float]:
        worker = threading.Thread(target=job, daemon=True)
        worker.start()
        out, i = [], 0
        while worker.is_alive():  # the whole job: spawn, imports, compilation, fit, placement
            out.append(search(probes[i % len(probes)]))
            i += 1
            time.sleep(0.05)  # a steady trickle of users, not a flood
        worker.join()
        return out

    for q in probes[:5]:
        search(q)
    times = {"idle": [search(q) for q in probes]}
    times["layout in nice-19 child"] = while_running(
        lambda: run_in_child(vectors, UmapFitter(), sample, numba_cache=cache)
    )
    times["idle (between)"] = [search(q) for q in probes]
    times["layout in low-priority thread"] = while_running(lambda: run_in_thread(vectors, UmapFitter(), sample))
    times["idle (after)"] = [search(q) for q in probes]
    return times


def plot(rows: list[LayoutRow], times: dict[str, list[float]], path: Path) -> None:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    ns = [r.n for r in rows]
    left.plot(ns, [r.umap_s for r in rows], "o-", label="UMAP (sampled fit + placement, child)")
    left.plot(ns, [r.pca_s for r in rows], "s-", label="PCA")
    left.set(xscale="log", yscale="log", xlabel="products", ylabel="seconds", title="Layout time")
    left.legend()
    names = list(times)
    right.bar(range(len(names)), [p50(times[k]) for k in names], color=["#888", "#2a7", "#888", "#c54", "#888"])
    right.set_xticks(range(len(names)), [k.replace(" in ", "\nin ") for k in names], fontsize=8)
    right.set(ylabel="search p50 (ms)", title="Search while the layout computes")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    args_parser = parser(__doc__, sizes="10000,100000,1000000", queries=200, help="timed searches per idle phase")
    args_parser.add_argument("--sample", type=int, default=50_000, help="most products a layout is fitted on")
    args_parser.add_argument("--search-size", type=int, default=100_000, help="catalog size of the search timing")
    args_parser.add_argument("--search-sample", type=int, default=20_000, help="layout sample while searches are timed")
    args_parser.add_argument("--skip-demo", action="store_true", help="leave out the demo-catalog figure")
    args = args_parser.parse_args(argv)
    cache = str(Path(tempfile.mkdtemp(prefix="bench-numba-")))
    cold, warm = compile_cost(cache)
    print(f"2k layout in a fresh child: {cold:.1f} s with an empty numba cache, {warm:.1f} s with it", flush=True)
    rows = [layout_row(n, args.sample, cache) for n in args.sizes]
    demo = None if args.skip_demo else demo_preservation(cache)
    times = search_under_load(args.search_size, args.search_sample, cache, args.queries)
    idle = p50([t for k, v in times.items() if k.startswith("idle") for t in v])
    table = markdown_table(
        [
            "products",
            "fitted on",
            "UMAP layout (s)",
            "child peak RSS (MB)",
            "child peak anon (MB)",
            "PCA (s)",
            "UMAP NP@10",
            "PCA NP@10",
            "NP fitted",
            "NP placed",
        ],
        [
            (
                r.n,
                r.fitted,
                r.umap_s,
                r.child_peak_mb,
                r.child_anon_mb,
                r.pca_s,
                r.umap_np,
                r.pca_np,
                r.fitted_np,
                r.placed_np,
            )
            for r in rows
        ],
    )
    search = markdown_table(
        ["phase", "searches", "p50 (ms)", "vs idle"],
        [(k, len(v), p50(v), p50(v) / idle) for k, v in times.items()],
    )
    demo_text = (
        ""
        if demo is None
        else f"Demo catalog ({demo[0]} products, ViT-B-32 random weights): {demo[3]} NP@10 {demo[1]:.3f}, "
        f"PCA {demo[2]:.3f}.\n\n"
    )
    body = f"""
Layouts of clustered synthetic 512-d vectors (`clustered_vectors`, 1000 clusters) computed as the app does:
a fresh child process at nice 19 (`similarity.map.worker.run_in_child`), UMAP fitted on at most
{args.sample:,} products, the rest placed by the similarity-weighted mean of their 10 nearest fitted
neighbours (faiss IVF above {int(4e9 / args.sample):,} placed rows, exact scores below). Times include the
spawn, the transfer through a memory-mapped file and numba compilation with its disk cache warm.
NP@10 = neighbourhood preservation: the mean share of a product's 10 nearest neighbours in 512-d that are
also among its 10 nearest in the layout (over 2,000 sampled products; 500 at 1M); "NP fitted"/"NP placed"
average only over products UMAP saw / products placed by their neighbours. Peak RSS is the child's VmHWM,
which counts the memory-mapped vectors (file pages); peak anon is the most anonymous memory seen (polled).

{table}

A 2,000-product layout in a fresh child took {cold:.1f} s with an empty numba cache and {warm:.1f} s with it
filled (numba compiles UMAP's kernels in every new process; the disk cache keeps part of that).

{demo_text}Search p50 on the exact index at {args.search_size:,} products in one run: {args.queries} searches
per idle phase, and while a {args.search_size:,}-product layout (fitted on {args.search_sample:,}) computes,
one search every 50 ms for the whole job (spawn, imports, numba compilation, fit, placement).
"vs idle" divides by the p50 of all idle phases together.

{search}
"""
    out = write_report("map", "Catalog map: layout time, memory, quality and search under load", body, args.out)
    plot(rows, times, args.out / "map.png")
    print(out.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
