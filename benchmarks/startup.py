"""Start-up benchmark: seconds from ``python app.py`` to a served page and a first search, with an existing catalog.

    python -m benchmarks.startup [--sizes 1000,100000] [--runs 3] [--timeout 300]

Each run starts ``app.py`` in a subprocess (random ViT-B-32 weights, tagger off, no demo seeding,
offline) on a free port, polls ``http://127.0.0.1:PORT/`` until it answers 200 (target: 20 s), then
runs one text search through ``gradio_client``. A first start above the ANN threshold also waits
for the graph file, so later starts find it.
Writes ``benchmarks/results/startup.md`` and ``startup.png``.
"""

from __future__ import annotations

import dataclasses
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from similarity.config import Settings
from similarity.index.graph import graph_path, meta_path
from similarity.store.local import LocalStore

from . import common
from .common import markdown_table, p50, pyplot, write_report
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


@dataclasses.dataclass
class Start:
    page: float  # s until GET / answers 200
    search: float  # s until the first text search returns results (waits for the index and the model)
    graph: float | None  # s until the ANN graph was saved next to the catalog (first start only)


def start_app(db: Path, timeout: float, wait_for_graph: bool) -> tuple[Start | None, str]:
    """Start ``app.py`` on ``db`` and time it (None on timeout or exit), plus the log tail."""
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
    with LocalStore(db) as store:
        meta = meta_path(graph_path(store))
    with tempfile.TemporaryFile() as log:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}/"
            page = _until(lambda: _answers(url), start, timeout, proc)
            search = page and _until(lambda: _first_search(url), start, timeout, proc)
            graph = search and wait_for_graph and _until(meta.exists, start, timeout, proc)
            if not search:
                return None, _tail(log)
            return Start(page, search, graph or None), ""
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _until(check: Callable[[], bool], start: float, timeout: float, proc: subprocess.Popen) -> float | None:
    """Seconds since ``start`` when ``check()`` first holds (polled), None on timeout or if the app exits."""
    while time.perf_counter() - start < timeout and proc.poll() is None:
        if check():
            return time.perf_counter() - start
        time.sleep(0.1)
    return None


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _first_search(url: str) -> bool:
    from gradio_client import Client

    result = Client(url, verbose=False).predict(text="a red leather handbag", top_k=12, api_name="/search_text")
    return len(result["matches"]) == 12


def _tail(log) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-600:]


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__, sizes="1000,100000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    rows, points = [], []
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        for n in args.sizes:
            db = Path(tmp) / f"catalog-{n}.db"
            vectors, labels = common.clustered_vectors(n)
            build_store(db, vectors, labels, model="ViT-B-32/none", thumbnail=thumbnail())[0].close()
            starts, failure = [], ""
            for run in range(args.runs):
                started, tail = start_app(db, args.timeout, wait_for_graph=run == 0 and n > Settings().ann_threshold)
                print(f"{n:,} products, run {run + 1}: {started or 'no page'}", flush=True)
                if started is None:
                    failure = tail
                    break
                starts.append(started)
            if failure:
                print(f"app.py did not serve a page:\n{failure}", file=sys.stderr)
            if not starts:
                continue
            later = starts[1:] or starts
            first, pages = starts[0], [s.page for s in later]
            graph = f"{first.graph:.1f}" if first.graph else "-"
            searches = p50([s.search for s in later])
            rows.append([f"{n:,}", first.page, first.search, graph, p50(pages), max(pages), searches, len(starts)])
            points.append((n, first.page, p50(pages)))
    headers = ["products", "first start: page s", "first search s", "ANN graph saved s"]
    headers += ["later starts: page p50 s", "page max s", "first search p50 s", "runs"]
    table = markdown_table(headers, rows)
    body = (
        "`python app.py` in a subprocess with an existing SQLite catalog (ViT-B-32 architecture, random "
        "weights standing in for cached weights; tagger off; offline), timed from the process start until "
        "`GET /` answers 200 (page), and until a first text search through `gradio_client` returns 12 results "
        "(it waits for the background load of the catalog index and the model). Above 50k products the first "
        "start also builds the ANN graph in the background while exact search serves, and saves it next to "
        f"the catalog; later starts load it. Target: a served page within {TARGET_S:.0f} s.\n\n" + table
    )
    plot(points, args.out / "startup.png")
    write_report("startup", "Start-up benchmark", body, args.out)
    print("\n" + table)
    return 0


def plot(points: list[tuple[int, float, float]], path: Path) -> None:
    plt = pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    labels = [f"{n:,}" for n, _, _ in points]
    ax.bar([i - 0.2 for i in range(len(points))], [first for _, first, _ in points], 0.4, label="first start")
    ax.bar([i + 0.2 for i in range(len(points))], [later for _, _, later in points], 0.4, label="later starts (p50)")
    ax.set_xticks(range(len(points)), labels)
    ax.axhline(TARGET_S, color="k", linestyle="--", linewidth=1, label="target")
    ax.set(xlabel="products in the catalog", ylabel="seconds to a served page", title="Cold start")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
