"""Query benchmark: an image search through SearchService vs the bare minimum, and filter re-rank time.

    python -m benchmarks.query [--sizes 10000,100000] [--queries 12] [--precision auto,fp32]

End-to-end = ``service.search(photo_bytes)``: decode (draft mode), preprocess, one forward pass of the
real ViT-B-32 architecture (random weights: same cost as the trained model), rank with facets, fetch
the page's products. Floor = ``embed_images`` on the already-decoded image + raw ``X @ q`` + argpartition.
Calls are spaced by a short pause (not timed), as a user's clicks are.
Re-rank = ``service.rank(query, filters)`` with the query vector kept, as a filter click does.
Writes ``benchmarks/results/query.md`` and ``query.png``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from similarity import images
from similarity.arrange import Arrange
from similarity.config import Settings
from similarity.embedder import OpenClipEmbedder
from similarity.records import Filters
from similarity.search import Query, SearchService
from similarity.steering import Steering

from . import common
from .common import SHARED_PHOTOS, markdown_table, p50, p95, photo, pyplot, timed, write_report
from .search import build_store, raw_top

PAUSE = 0.1  # between timed calls, like a user's pace: idle BLAS/OpenMP threads stop spinning
FILTERS = {
    "one brand (~5%)": Filters(brands=("brand-00",)),
    "one category (~14%)": Filters(categories=("bags",)),
    "category + colour": Filters(categories=("bags", "shoes"), colors=("red", "blue")),
}


def query_photos() -> list[tuple[str, bytes]]:
    photos = [
        ("generated 4000x3000 JPEG", photo(4000, 3000, 1)),
        ("generated 1600x1200 JPEG", photo(1600, 1200, 2)),
        ("generated 800x800 PNG", photo(800, 800, 3, "PNG")),
    ]
    if SHARED_PHOTOS.is_dir():  # the shared real photos, read in place (never copied)
        photos += [(f"real {p.name}", p.read_bytes()) for p in sorted(SHARED_PHOTOS.iterdir())[:3] if p.is_file()]
    return photos


def floor(embedder: OpenClipEmbedder, matrix: np.ndarray, image: Image.Image) -> np.ndarray:
    """The bare minimum on an already-decoded image: one forward pass and one mat-vec top-k."""
    return raw_top(matrix, embedder.embed_images([image])[0], 12)


def run_size(n: int, embedder: OpenClipEmbedder, photos: list[tuple[str, bytes]], rounds: int, tmp: Path) -> dict:
    print(f"\n== {n:,} products ==", flush=True)
    vectors, labels = common.clustered_vectors(n)
    store, _ = build_store(tmp / f"q-{n}.db", vectors, labels, model=embedder.model_id, thumbnail=b"\xff" * 12_000)
    del vectors
    service = SearchService(store, embedder, settings=Settings(tagger="off"))
    service.search(photos[0][1])  # loads the index (and the ANN graph above the threshold)
    index = service.ranker.current()
    matrix = getattr(index, "exact", index).matrix
    decoded = [images.load_image(data).image for _, data in photos]
    service_ms, floor_ms, stages = [], [], {}
    for i in range(rounds):
        data, image = photos[i % len(photos)][1], decoded[i % len(photos)]
        ms, result = _paused(lambda data=data: service.search(data))
        service_ms.append(ms)
        for stage, value in result.timings_ms.items():
            stages.setdefault(stage, []).append(value)
        floor_ms.append(_paused(lambda image=image: floor(embedder, matrix, image))[0])
    query = service.encode(photos[1][1])
    rerank = {}
    for label, f in FILTERS.items():
        rerank[label] = [_paused(lambda f=f: service.rank(query, f))[0] for _ in range(rounds)]
    rerank.update(steering_runs(service, query, rounds))
    store.close()
    out = {"n": n, "path": type(index).__name__, "service": service_ms, "floor": floor_ms, "stages": stages}
    out["rerank"] = rerank
    print(f"service p50 {p50(service_ms):.1f} ms, floor p50 {p50(floor_ms):.1f} ms, "
          f"overhead {p50(service_ms) / p50(floor_ms) - 1:+.1%}; re-rank " +
          ", ".join(f"{k}: {p50(v):.1f} ms" for k, v in rerank.items()), flush=True)  # fmt: skip
    return out


def steering_runs(service: SearchService, query: Query, rounds: int) -> dict[str, list[float]]:
    """Refine with 4 steering parts (2 texts embedded in one batch, 2 stored vectors), and price re-ranks."""
    top = [m.product.id for m in service.rank(query, Filters()).matches]
    steering = Steering(more=("leather",), less=("red",), liked=(top[3],), disliked=(top[0],))
    priced = Filters(price_min=20.0, price_max=60.0)
    runs = {
        "steering: Refine with 4 parts (2 texts embedded)": lambda: service.rank(service.steer(query, steering)),
        "price 20-60": lambda: service.rank(query, priced),
        "price 20-60, sorted by price": lambda: service.rank(query, priced, arrange=Arrange.of("price_asc")),
        "collapse near-duplicates": lambda: service.rank(query, arrange=Arrange.of(collapse_duplicates=True)),
    }
    return {label: [_paused(fn)[0] for _ in range(rounds)] for label, fn in runs.items()}


def big_photo_prep(embedder: OpenClipEmbedder, rounds: int = 7) -> list[list[object]]:
    """Decode + preprocess of 50 MP photos, the single-query path's heaviest input (target < 0.5 s)."""
    photos = [("generated 8660x5780 JPEG (50 MP)", photo(8660, 5780, 7))]
    real = SHARED_PHOTOS / "S1.jpg"
    if real.is_file():
        photos.append(("real S1.jpg (6520x8150, 53 MP, progressive)", real.read_bytes()))
    rows = []
    for name, data in photos:

        def prep(data: bytes = data) -> object:
            return embedder.preprocess(images.load_image(data, max_bytes=images.MAX_LOCAL_BYTES).image)

        times = [_paused(prep)[0] for _ in range(rounds)]
        rows.append([name, f"{len(data) / 2**20:.1f} MB", p50(times), max(times)])
        print(f"{name}: decode + preprocess p50 {p50(times):.0f} ms", flush=True)
    return rows


def _paused(fn):
    time.sleep(PAUSE)
    return timed(fn)


def report(runs: list[dict], photos: list[tuple[str, bytes]], rounds: int, big: list, out: Path) -> str:
    rows = []
    for r in runs:
        overhead = p50(r["service"]) / p50(r["floor"]) - 1
        stages = ", ".join(f"{k} {statistics.median(v):.1f}" for k, v in r["stages"].items() if k != "total")
        rows.append([f"{r['n']:,}", r["path"], "image search (service)", p50(r["service"]), p95(r["service"]), stages])
        rows.append(
            [f"{r['n']:,}", r["path"], "floor: embed decoded image + raw top-k", p50(r["floor"]), p95(r["floor"]), ""]
        )
        rows.append([f"{r['n']:,}", "", "overhead vs floor (target ≤ 20%)", f"{overhead:+.1%}", "", ""])
        for label, values in r["rerank"].items():
            rows.append([f"{r['n']:,}", r["path"], f"filter re-rank: {label}", p50(values), p95(values), ""])
    table = markdown_table(["products", "index", "what", "p50 ms", "p95 ms", "service stages (p50 ms)"], rows)
    names = ", ".join(name for name, _ in photos)
    body = (
        f"{rounds} searches per size, cycling through: {names}. Model: ViT-B-32 architecture with random "
        "weights (same compute as the trained model). Catalog: clustered synthetic 512-d vectors in a SQLite "
        "`LocalStore` with 12 KB thumbnails; the service picks exact or ANN by `SIMILARITY_ANN_THRESHOLD` "
        "(50k). Re-rank: `service.rank(query, filters)` with the query vector kept (target < 50 ms). Steering rows: "
        "Refine = `service.steer` (the two texts through the text tower in one batch, the liked and disliked "
        "products' stored vectors in one read) + rank; price rows: 10% of products without a price; collapse "
        "reads the candidates' vectors and thumbnails (these 12 KB stand-ins are not images, so the cosine decides)."
        "\n\n" + table
    )
    big_table = markdown_table(["photo", "file", "decode + preprocess p50 ms", "max ms"], big)
    body += "\n\nA 50 MP photo on the single-query path: `load_image` (JPEG draft decoding) + CLIP preprocessing, "
    body += "target < 500 ms.\n\n" + big_table
    plot(runs, out / "query.png")
    write_report("query", "Query benchmark", body, out)
    return table + "\n\n" + big_table


def plot(runs: list[dict], path: Path) -> None:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    labels = [f"{r['n']:,}\n{r['path'].split(', ', 1)[-1]}" for r in runs]
    x = np.arange(len(runs))
    left.bar(x - 0.2, [p50(r["service"]) for r in runs], 0.4, label="image search via SearchService")
    left.bar(x + 0.2, [p50(r["floor"]) for r in runs], 0.4, label="floor: embed + raw top-k")
    left.set(xticks=x, xticklabels=labels, xlabel="products", ylabel="p50 ms", title="Upload to results")
    left.legend(fontsize=8)
    width = 0.8 / len(FILTERS)
    for j, label in enumerate(FILTERS):
        right.bar(x + j * width - 0.4 + width / 2, [p50(r["rerank"][label]) for r in runs], width, label=label)
    right.axhline(50, color="k", linestyle="--", linewidth=1)
    right.set(xticks=x, xticklabels=labels, xlabel="products", ylabel="p50 ms", title="Filter click to re-ranked page")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    help = "searches (and re-ranks per filter) per size"
    parser = common.parser(__doc__, sizes="10000,100000", queries=12, help=help)
    parser.add_argument("--precision", default="auto,fp32", help="SIMILARITY_PRECISION values to compare, in one run")
    args = parser.parse_args(argv)
    embedders = {name: OpenClipEmbedder("ViT-B-32", "none", precision=name) for name in args.precision.split(",")}
    for name, embedder in embedders.items():
        embedder.load()
        print(f"precision {name}: {embedder.precision_note}", flush=True)
    photos = query_photos()
    big = big_photo_prep(next(iter(embedders.values())))
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-query-") as tmp:
        for s in args.sizes:
            for name, embedder in embedders.items():  # both precisions per size, one after the other
                (Path(tmp) / name).mkdir(exist_ok=True)
                runs.append(run_size(s, embedder, photos, args.queries, Path(tmp) / name))
                runs[-1]["path"] += f", {name} → {embedder.precision}"
    args.out.mkdir(parents=True, exist_ok=True)
    print("\n" + report(runs, photos, args.queries, big, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
