"""Ingest benchmark: seeding throughput through ``Ingestor`` vs the model's raw batched ``encode_image``.

    python -m benchmarks.ingest [--photos 64] [--rounds 3] [--batch-size 32] [--workers 0,2] [--precision auto]

A folder of generated photos of mixed sizes and formats (phone-size JPEGs down to small PNGs) is
seeded into a fresh SQLite catalog with the real ViT-B-32 architecture (random weights, same compute).
The raw model rate is measured in the same run on already-preprocessed tensors, so the ratio shows
what reading, decoding, preprocessing, thumbnails and the store cost on top of inference.
If ``../shared/photos`` exists, it is also seeded (read in place). Each ``--precision`` gets its own
embedder, measured one after the other in the same run. Each ``--workers`` value is a decoding mode
(0: threads of this process, as today; N: N worker processes), measured side by side: the rounds alternate
the modes. Writes ``results/ingest.md`` + ``.png``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from data_seed.sources import folder_items
from similarity import images
from similarity.embedder import OpenClipEmbedder
from similarity.ingest import Ingestor
from similarity.store.local import LocalStore

from . import common
from .common import SHARED_PHOTOS, markdown_table, p50, photo, pyplot, write_report

# (width, height, format): a spread like a shop's photo folder
SIZES = [(4000, 3000, "JPEG"), (2048, 1536, "JPEG"), (1200, 900, "JPEG"), (800, 800, "PNG"), (640, 480, "JPEG")]


def make_folder(root: Path, count: int) -> int:
    """``count`` distinct photos in category sub-folders; returns the total bytes written."""
    total = 0
    for i in range(count):
        width, height, fmt = SIZES[i % len(SIZES)]
        folder = root / ("bags", "shoes", "electronics", "watches")[i % 4]
        folder.mkdir(parents=True, exist_ok=True)
        data = photo(width, height, seed=1000 + i, fmt=fmt)
        (folder / f"p{i:04d}.{'jpg' if fmt == 'JPEG' else 'png'}").write_bytes(data)
        total += len(data)
    return total


def raw_rate(embedder: OpenClipEmbedder, root: Path, batch_size: int, count: int) -> float:
    """Images/s of ``embed_tensors`` alone on preprocessed batches (the model's ceiling)."""
    import torch

    paths = sorted(p for p in root.rglob("*") if p.is_file())[:batch_size]
    tensors = [embedder.preprocess(images.load_image(p.read_bytes()).image) for p in paths]
    batch = torch.stack((tensors * (batch_size // len(tensors) + 1))[:batch_size])
    embedder.embed_tensors(batch[:2])  # warm-up
    done, start = 0, time.perf_counter()
    while done < count:
        embedder.embed_tensors(batch)
        done += batch_size
    return done / (time.perf_counter() - start)


def seed_rate(embedder: OpenClipEmbedder, root: Path, db: Path, batch_size: int, workers: int) -> tuple[float, int]:
    """(products/s, products added) for a fresh catalog seeded from ``root``; ``workers`` 0: decoding threads,
    N: N worker processes (their start is part of the time, as it is for a real run)."""
    store = LocalStore(db)
    try:
        start = time.perf_counter()
        ingest = Ingestor(store, embedder, batch_size=batch_size, processes=workers)
        report = ingest.run(folder_items(root))
        seconds = time.perf_counter() - start
    finally:
        store.close()
    return report.added / seconds, report.added


def measure(
    embedder: OpenClipEmbedder, root: Path, tmp: Path, args: argparse.Namespace, modes: list[int]
) -> tuple[dict[int, float], float, int]:
    """Median seeding rate per decoding mode, median raw rate and products added, from alternating rounds
    (raw, then per round each mode's seeding followed by a raw run)."""
    raws = [raw_rate(embedder, root, args.batch_size, args.photos)]
    seeds: dict[int, list[float]] = {mode: [] for mode in modes}
    added = 0
    for round_ in range(args.rounds):
        for mode in modes if round_ % 2 == 0 else modes[::-1]:  # neither mode always goes first
            db = tmp / f"{root.name}-{round_}-{mode}.db"
            rate, added = seed_rate(embedder, root, db, args.batch_size, mode)
            seeds[mode].append(rate)
            raws.append(raw_rate(embedder, root, args.batch_size, args.photos))
            print(f"  {root.name} round {round_ + 1} {describe(mode)}: seeded {rate:.1f}/s, raw {raws[-1]:.1f}/s")
    return {mode: p50(rates) for mode, rates in seeds.items()}, p50(raws), added


def describe(mode: int) -> str:
    return "2 threads" if mode == 0 else f"{mode} processes"


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--photos", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", default="0,2", help="decoding modes to compare: 0 = threads, N = N processes")
    parser.add_argument("--precision", default="auto", help="SIMILARITY_PRECISION values to compare")
    args = parser.parse_args(argv)
    modes = [int(w) for w in args.workers.split(",")]
    embedders = {}
    for name in args.precision.split(","):
        embedders[name] = OpenClipEmbedder("ViT-B-32", "none", batch_size=args.batch_size, precision=name)
        embedders[name].load()
        print(f"precision {name}: {embedders[name].precision_note}", flush=True)
    rows, bars = [], []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        root = Path(tmp) / "photos"
        megabytes = make_folder(root, args.photos) / 2**20
        print(f"{args.photos} photos, {megabytes:.0f} MB", flush=True)
        folders = [(root, f"generated folder ({{}} photos, {megabytes:.0f} MB, mixed sizes)")]
        if SHARED_PHOTOS.is_dir():
            folders.append((SHARED_PHOTOS, "../shared/photos ({} real photos incl. a 53 MP JPEG)"))
        for folder, label in folders:
            for name, embedder in embedders.items():
                (Path(tmp) / name).mkdir(exist_ok=True)  # a fresh catalog per precision
                rates, raw, added = measure(embedder, folder, Path(tmp) / name, args, modes)
                base = rates[modes[0]]
                for mode, rate in rates.items():
                    versus = f"{rate / base:.2f}x" if mode != modes[0] else "1.00x"
                    used = f"{name} → {embedder.precision}"
                    rows.append([label.format(added), used, describe(mode), rate, versus, raw, f"{rate / raw:.1%}"])
                    bars.append((f"{label.format(added).split(' (')[0]} · {name} · {describe(mode)}", rate, raw))
    headers = ["folder", "precision (asked → used)", "decoding", "seeding products/s", f"vs {describe(modes[0])}"]
    table = markdown_table([*headers, "raw encode_image images/s", "ratio"], rows)
    notes = "; ".join(f"`{name}`: {e.precision_note}" for name, e in embedders.items())
    body = (
        f"`Ingestor` (batch {args.batch_size}, intra-op threads = usable cores) into a fresh SQLite catalog: read, "
        "decode, preprocess, thumbnail, embed, upsert; decoding in 2 threads of the process (today's default on "
        "2 cores, `--workers 0`) or in N worker processes sending uint8 crops (`--workers N`), side by side in one "
        "run, rounds alternating the order. Raw = "
        "`embed_tensors` on preprocessed batches of the same size. Raw and seeding runs alternate "
        f"(raw, then {args.rounds} x seed + raw); the table gives the medians of each. "
        f"Model: ViT-B-32 architecture, random weights. Precision: {notes}.\n\n" + table
    )
    plot(bars, args.out / "ingest.png")
    write_report("ingest", "Ingest benchmark", body, args.out)
    print("\n" + table)
    return 0


def plot(bars: list[tuple[str, float, float]], path: Path) -> None:
    plt = pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(9, 4))
    labels = [label.split(" (")[0] for label, _, _ in bars]
    ax.barh([i + 0.2 for i in range(len(bars))], [raw for _, _, raw in bars], 0.4, label="raw encode_image")
    ax.barh([i - 0.2 for i in range(len(bars))], [rate for _, rate, _ in bars], 0.4, label="seeding via Ingestor")
    ax.set(yticks=range(len(bars)), yticklabels=labels, xlabel="images per second", title="Seeding throughput")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
