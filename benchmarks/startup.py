"""Start-up benchmark: seconds from ``python app.py`` to a served page, with an existing catalog.

    python -m benchmarks.startup [--sizes 1000,100000] [--runs 3] [--timeout 120]

Each run starts ``app.py`` in a subprocess (random ViT-B-32 weights, tagger off, no demo seeding,
offline) on a free port, and polls ``http://127.0.0.1:PORT/`` until it answers 200.
Writes ``benchmarks/results/startup.md`` and ``startup.png``.
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from PIL import Image

from . import common
from .common import RESULTS, markdown_table, p50, pyplot, write_report
from .search import build_store

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def thumbnail() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (96, 96), (180, 60, 60)).save(buf, "JPEG")
    return buf.getvalue()


def time_to_page(db: Path, timeout: float) -> tuple[float | None, str]:
    """Seconds until the page answers 200 (None on timeout or exit), plus the log tail."""
    port = free_port()
    env = {
        **os.environ,
        "SIMILARITY_STORE": f"sqlite:///{db}",
        "SIMILARITY_CLIP_PRETRAINED": "none",
        "SIMILARITY_TAGGER": "off",
        "SIMILARITY_SEED_DEMO": "false",
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
    }
    with tempfile.TemporaryFile() as log:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            while time.perf_counter() - start < timeout and proc.poll() is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                        if response.status == 200:
                            return time.perf_counter() - start, ""
                except (urllib.error.URLError, OSError):
                    time.sleep(0.1)
            return None, _tail(log)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _tail(log) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-600:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000", help="catalog sizes (products)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rows, points = [], []
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        for n in (int(s) for s in args.sizes.split(",") if s):
            db = Path(tmp) / f"catalog-{n}.db"
            vectors, labels = common.clustered_vectors(n)
            build_store(db, vectors, labels, model="ViT-B-32/none", thumbnail=thumbnail())[0].close()
            times, failure = [], ""
            for run in range(args.runs):
                seconds, tail = time_to_page(db, args.timeout)
                print(f"{n:,} products, run {run + 1}: " + (f"{seconds:.1f} s" if seconds else "no page"), flush=True)
                if seconds is None:
                    failure = tail
                    break
                times.append(seconds)
            if failure:
                print(f"app.py did not serve a page:\n{failure}", file=sys.stderr)
            later = times[1:] or times  # the first start may build and save the ANN graph (> 50k products)
            nan = float("nan")
            median, worst, first = (p50(later), max(later), times[0]) if times else (nan, nan, nan)
            rows.append([f"{n:,}", first, median, worst, len(times), f"{TARGET_S:.0f} s"])
            points.append((n, median))
    headers = ["products", "first start s", "p50 s, later starts", "max s, later starts", "runs", "target"]
    table = markdown_table(headers, rows)
    body = (
        "`python app.py` in a subprocess with an existing SQLite catalog (ViT-B-32 architecture, random "
        "weights standing in for cached weights; tagger off; offline), timed until `GET /` answers 200. Above "
        "50k products the first start also builds the ANN graph and saves it next to the catalog; later starts "
        "load it.\n\n" + table
    )
    plot(points, args.out / "startup.png")
    write_report("startup", "Start-up benchmark", body, args.out)
    print("\n" + table)
    return 0


def plot(points: list[tuple[int, float]], path: Path) -> None:
    plt = pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar([f"{n:,}" for n, _ in points], [s for _, s in points])
    ax.axhline(TARGET_S, color="k", linestyle="--", linewidth=1, label="target")
    ax.set(xlabel="products in the catalog", ylabel="seconds to a served page (p50)", title="Cold start")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
